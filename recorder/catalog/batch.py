"""Batch `krec check` and `krec replay`: one task per log on Dask distributed.

``run_batch`` submits one task per log location to a cluster (a LocalCluster
sized to this machine unless a scheduler address is given) and hands each
Outcome back as it completes. A task never raises for a bad log: a log that is
not krec, is damaged or names a missing kernel comes back as an ``error``
outcome, so the rest of the batch goes on. A worker that dies while running a
task makes the scheduler run that task again on another worker (Dask's
``allowed-failures``); only a log whose task keeps killing workers becomes an
error. Workers read logs through storage.local_log, so every location a worker
can reach (a shared path, an object-store URL) works.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from krec.recorder.errors import KrecError
from krec.recorder.log.storage import is_url, local_log, redact_url

#: how often a task may lose its worker before its log is reported as an error
ALLOWED_FAILURES = 2
CONNECT_TIMEOUT_S = 10.0
_ADDRESS = re.compile(r"^(?:[a-z][a-z0-9+]*://)?(?:\[[0-9a-fA-F:]+\]|[^:/\s\[\]]+):\d+/?$")


class SchedulerError(KrecError):
    """The Dask scheduler cannot be reached or the cluster cannot start."""


@dataclass
class Outcome:
    """The verdict of one log: ``clean``, ``violations``, ``diverged`` or ``error``."""

    location: str
    status: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a KrecError often starts with the path already: say it once
        for prefix in (f"{self.location}: ",):
            if self.summary.startswith(prefix):
                self.summary = self.summary[len(prefix) :]

    @property
    def line(self) -> str:
        return f"{redact_url(self.location)}: {self.status}" + (
            f" ({self.summary})" if self.summary else ""
        )

    def to_json(self) -> dict[str, Any]:
        return {"log": self.location, "status": self.status, "summary": self.summary, **self.data}


def _named(text: str, path: str, location: str) -> str:
    """An error about the local copy of a log, told about the log itself."""
    return text.replace(path, redact_url(location)) if path != location else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def check_one(
    location: str,
    select: Sequence[str],
    ignore: Sequence[str],
    options: dict[str, float],
    strict: bool,
) -> Outcome:
    """Run krec check on one log (a worker task)."""
    path = location
    try:
        from krec.recorder.check import CheckOptions, resolve_rule_ids
        from krec.recorder.check.runner import check_log
        from krec.recorder.log.reader import LogReader

        rules = resolve_rule_ids(select, ignore)
        path = local_log(location)
        with LogReader(path) as reader:
            checker = check_log(reader, rules, CheckOptions(**options))
            findings = checker.findings
            warnings_ = list(reader.warnings)
            records = len(reader)
    except KrecError as e:
        return Outcome(location, "error", _named(str(e), path, location))
    except Exception as e:  # a bug must not sink the batch: it is this log's error
        return Outcome(location, "error", f"{type(e).__name__}: {e}")
    errors = sum(f.severity == "error" for f in findings)
    warns = len(findings) - errors
    data = {
        "records": records,
        "errors": errors,
        "warnings": warns,
        "protocol": checker.protocol(),
        "log_warnings": warnings_,
        "findings": [f.to_json() for f in findings],
    }
    if errors or (warns and strict):
        first = findings[0]
        summary = (
            f"{_plural(errors, 'error')}, {_plural(warns, 'warning')}; first: "
            f"{first.rule} at record {first.index}"
        )
        return Outcome(location, "violations", summary, data)
    found = f"{_plural(warns, 'warning')} in " if warns else "no findings in "
    return Outcome(location, "clean", found + _plural(records, "record"), data)


def replay_one(
    location: str,
    kernel: str | None,
    output_dir: str,
    timeout: float,
    password: str | None,
    ignore: Sequence[str],
) -> Outcome:
    """Replay one log against a fresh kernel on the worker (a worker task)."""
    path = location
    try:
        from krec.recorder.replay.replayer import replay

        path = local_log(location)
        stem = os.path.splitext(os.path.basename(location.rstrip("/")))[0] or "log"
        tag = hashlib.sha256(location.encode()).hexdigest()[:6]
        os.makedirs(output_dir, exist_ok=True)
        output = os.path.join(
            output_dir, f"{stem}-{tag}-replay-{time.strftime('%Y%m%d-%H%M%S')}.krec"
        )
        result = replay(
            path,
            kernel_name=kernel,
            output=output,
            timeout=timeout,
            password=password,
            ignore=ignore,
        )
    except KrecError as e:
        return Outcome(location, "error", _named(str(e), path, location))
    except Exception as e:
        return Outcome(location, "error", f"{type(e).__name__}: {e}")
    report = result.report
    data = {
        "replay_log": result.log,
        "wall_time": result.wall_time,
        "busy_time": result.busy_time,
        "report": report.to_json(),
    }
    requests = len([r for r in report.rows if r.status != "extra"])
    first = report.first
    if first is not None:
        summary = f"at request {first.request} ({first.msg_type}, {first.field} differs)"
        return Outcome(location, "diverged", summary, data)
    return Outcome(location, "clean", f"{_plural(requests, 'request')} agree", data)


def worker_count(logs: int) -> int:
    """Workers for a LocalCluster: one per core, no more than there are logs."""
    return max(1, min(os.cpu_count() or 1, logs))


@contextlib.contextmanager
def cluster_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A distributed Client on ``scheduler``, or on a LocalCluster of ``workers`` processes."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        if not _ADDRESS.match(scheduler):
            raise SchedulerError(f"not a scheduler address: {scheduler} (tcp://HOST:PORT)")
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise SchedulerError(
                f"cannot reach the Dask scheduler at {scheduler}: {_first_line(e)}"
            ) from None
        except ValueError as e:
            raise SchedulerError(f"not a scheduler address: {scheduler} ({e})") from None
        with client:
            yield client
        return
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=50,  # a worker's shutdown chatter is not the user's business
        )
    try:
        with Client(cluster, set_as_default=False) as client:
            yield client
    finally:
        cluster.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def run_batch(
    task: Callable[..., Outcome],
    locations: Sequence[str],
    args: Sequence[Any],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    on_outcome: Callable[[Outcome, int, int], None] | None = None,
) -> list[Outcome]:
    """Run ``task(location, *args)`` for every location on the cluster; outcomes in input order.

    ``on_outcome(outcome, done, total)`` is called as each log finishes.
    """
    from distributed import as_completed
    from distributed.client import FutureCancelledError

    total = len(locations)
    absolute = [loc if is_url(loc) else os.path.abspath(loc) for loc in locations]
    outcomes: list[Outcome | None] = [None] * total
    with cluster_client(scheduler, workers or worker_count(total)) as client:
        futures = {}
        for i, location in enumerate(absolute):
            key = f"krec-{task.__name__}-{i}-{hashlib.sha256(location.encode()).hexdigest()[:8]}"
            future = client.submit(task, location, *args, key=key, pure=False)
            futures[future] = i
        for done, future in enumerate(as_completed(futures, loop=client.loop), 1):
            i = futures[future]
            try:
                outcome = future.result()
            except (KrecError, FutureCancelledError, Exception) as e:
                outcome = _failed(locations[i], e)
            if outcome.location != locations[i]:
                outcome = Outcome(locations[i], outcome.status, outcome.summary, outcome.data)
            outcomes[i] = outcome
            if on_outcome is not None:
                on_outcome(outcome, done, total)
    return [o for o in outcomes if o is not None]


def _failed(location: str, error: BaseException) -> Outcome:
    name = type(error).__name__
    if name == "KilledWorker":
        return Outcome(location, "error", "the workers running it died too often (KilledWorker)")
    return Outcome(location, "error", f"{name}: {_first_line(error)}")
