"""Replay a recorded session against a fresh kernel, itself recorded, then compare the two.

The plan comes from the log: each client request on shell and control is sent
again, as a new message signed with the new kernel's key. A request waits for
every request that had completed before it was originally sent (reply and
``status: idle``), so the replay runs as fast as the kernel allows; a request
that was originally sent while another was still running is sent at the same
offset after that one, so overlaps (interrupts, subshells, queued cells) happen
again. The kernel is launched as the recorded one was (extra arguments, working
directory). Signal interrupts are replayed relative to what the kernel was doing
(into a request, or between two), restarts where the log has them;
``input_request`` is answered with the recorded ``input_reply``; comm, subshell
and request ids are mapped wherever they appear in content; a request that gets
no reply is given up after a bound derived from its recorded duration.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from krec.recorder.errors import KernelSpecError, KrecError
from krec.recorder.kernelspec import all_specs, find_spec
from krec.recorder.log.exchange import Exchange, Session, build_session, load_session
from krec.recorder.log.reader import LogReader
from krec.recorder.replay.diff import Report, compare_sessions, merge_runs
from krec.recorder.replay.launch import Launch, recorded_launch, replay_cwd
from krec.recorder.replay.plan import HUNG_FACTOR, HUNG_FLOOR, Action, hung_bound, plan
from krec.recorder.replay.run import Progress, Replayer, map_ids

__all__ = [  # replay() and its result; the rest is re-exported from where it lives now
    "HUNG_FACTOR",
    "HUNG_FLOOR",
    "Action",
    "Launch",
    "Progress",
    "ReplayResult",
    "Replayer",
    "hung_bound",
    "map_ids",
    "plan",
    "recorded_launch",
    "replay",
]


@dataclass
class ReplayResult:
    """What a replay produced: its own log, the report, and timings (seconds)."""

    log: str
    report: Report
    wall_time: float  # of one replay (the mean, with --repeat)
    busy_time: float
    notes: list[str]
    logs: list[str] = field(default_factory=list)  # every replay's own log (--repeat)

    @property
    def ratio(self) -> float:
        return self.wall_time / self.busy_time if self.busy_time else 0.0


def replay(
    log_path: str,
    *,
    kernel_name: str | None = None,
    output: str | None = None,
    timeout: float = 60.0,
    password: str | None = None,
    ignore: Sequence[str] = (),
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    cwd: str | None = None,
    repeat: int = 1,
) -> ReplayResult:
    """Replay ``log_path`` against a fresh kernel and compare; see the module docstring.

    The kernel is launched as the recorded one was (``recorded_launch``): with its extra
    arguments, in its working directory when that exists here; ``cwd`` overrides.
    ``repeat`` > 1 replays that many times (recorded to ``output``, then ``output``
    with ``-2``, ``-3``... before the suffix) and merges the reports (``merge_runs``).
    """
    if repeat < 1:
        raise KrecError("--repeat must be at least 1")
    session = load_session(log_path)
    name = kernel_name or str((session.header.get("kernel") or {}).get("name") or "")
    if not name:
        raise KrecError(f"{log_path} does not name its kernel; give --kernel NAME")
    try:
        entry = find_spec(name)
    except KernelSpecError:
        known = ", ".join(sorted(all_specs())) or "none"
        whose = f"--kernel {name!r}" if kernel_name else f"the log's kernel {name!r}"
        hint = "" if kernel_name else "; pick one with --kernel NAME"
        raise KernelSpecError(f"{whose} is not installed here{hint} (installed: {known})") from None
    if output is None:
        stem = os.path.splitext(os.path.basename(log_path))[0]
        output = os.path.join("krec-logs", f"{stem}-replay-{time.strftime('%Y%m%d-%H%M%S')}.krec")
    launch = recorded_launch(session)
    kernel_cwd, launch_notes = replay_cwd(launch, cwd)
    if launch.extra_arguments:
        launch_notes.append(
            "the kernel was started with the recorded extra arguments "
            + " ".join(launch.extra_arguments)
        )
    base, ext = os.path.splitext(output)
    results: list[ReplayResult] = []
    for run in range(1, repeat + 1):
        if cancel is not None and cancel.is_set():
            break
        path = output if run == 1 else f"{base}-{run}{ext or '.krec'}"
        replayer = Replayer(
            session,
            entry,
            path,
            timeout=timeout,
            password=password,
            progress=progress,
            cancel=cancel,
            extra_arguments=launch.extra_arguments,
            cwd=kernel_cwd,
        )
        replayer.notes.extend(launch_notes)
        results.append(_run_and_compare(replayer, session, ignore))
    report = merge_runs([r.report for r in results])
    last = results[-1]
    return ReplayResult(
        last.log,
        report,
        sum(r.wall_time for r in results) / len(results),
        last.busy_time,
        report.notes,
        [r.log for r in results],
    )


def _twins(
    replayer: Replayer, session: Session, replayed: Session
) -> list[tuple[Exchange | None, Exchange | None]]:
    """Each recorded request with the request the replay sent for it (by msg_id: the
    replay's log may hold requests sent on two channels in the same instant in either
    order), then any request of the replay's log that is no one's twin."""
    by_id = {e.msg_id: e for e in replayed.exchanges}
    pairs: list[tuple[Exchange | None, Exchange | None]] = []
    used: set[int] = set()
    for ex in session.exchanges:
        live = replayer.live.get(ex.number)
        twin = by_id.get(live.msg_id) if live is not None else None
        if twin is not None:
            used.add(twin.number)
        pairs.append((ex, twin))
    return pairs + [(None, e) for e in replayed.exchanges if e.number not in used]


def _run_and_compare(replayer: Replayer, session: Session, ignore: Sequence[str]) -> ReplayResult:
    replayer.run()
    with LogReader(replayer.output) as reader:
        replayed = build_session(reader)
    outcomes = replayer.outcomes()
    report = compare_sessions(
        session,
        replayed,
        ignore=ignore,
        pairs=_twins(replayer, session, replayed),
        outcomes_b={
            e.number: outcomes[e.msg_id] for e in replayed.exchanges if e.msg_id in outcomes
        },
    )
    report.notes.extend(replayer.notes)
    wall = max(0.0, replayer.last_done - replayer.first_send)
    return ReplayResult(
        replayer.output, report, wall, session.busy_time / 1e9, replayer.notes, [replayer.output]
    )
