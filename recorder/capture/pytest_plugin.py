"""The pytest plugin (entry point ``pytest11``): ``pytest --krec DIR`` records the test's kernels.

Off unless ``--krec DIR`` is given. Then every kernel the session starts (through
jupyter_client, nbclient, papermill, or a subprocess such as ``jupyter nbconvert``)
is recorded, as in ``krec.recorder.recording(DIR)``, to a log named after the
test that started it (its node id made a file name; ``-2``, ``-3``... for more
kernels). A failing test's report shows its logs with the ``krec view`` and
``krec replay`` commands that open them; logs of passing tests are deleted unless
``--krec-keep``. This module is imported by every pytest run in an environment
where krec is installed, so it imports nothing heavy until ``--krec`` is given.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from krec.recorder.log.writer import being_written

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

LOG_PROPERTY = "krec_log"
#: seconds for krec to write what a kernel has sent (it writes each batch at once; this
#: leaves room for a busy machine)
FLUSH_SETTLE = 0.25
_FAILED = pytest.StashKey[bool]()  # an item had a failing report (setup, call or teardown)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("krec", "recording Jupyter kernels (krec)")
    group.addoption(
        "--krec",
        metavar="DIR",
        dest="krec_dir",
        default=None,
        help="record every kernel the tests start to DIR, one log per test named after it; "
        "a failing test shows its log",
    )
    group.addoption(
        "--krec-keep",
        action="store_true",
        dest="krec_keep",
        default=False,
        help="with --krec: keep the logs of passing tests too",
    )


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("krec_dir")
    if directory:
        config.pluginmanager.register(
            KrecPlugin(directory, keep=config.getoption("krec_keep")), "krec-recorder"
        )


def log_stem(nodeid: str) -> str:
    """A file name for a test id: ``t/test_a.py::test_b[x-1]`` -> ``t_test_a.py__test_b_x-1``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.replace("::", "__")).strip("_.") or "test"
    if len(stem) > 120:  # file names stop at 255 bytes; keep distinct tests distinct
        stem = f"{stem[:100]}-{hashlib.sha256(nodeid.encode()).hexdigest()[:12]}"
    return stem


def _shown(path: str) -> str:
    rel = os.path.relpath(path)
    return shlex.quote(path if rel.startswith("..") else rel)


class KrecPlugin:
    """Records a test session's kernels; registered by ``pytest_configure`` with ``--krec``."""

    def __init__(self, directory: str, *, keep: bool) -> None:
        self.directory = os.path.abspath(directory)
        self.keep = keep
        self._recording: contextlib.ExitStack | None = None
        self._sizes: dict[str, int] = {}  # log -> its size when the running test started
        self._mine: set[str] = set()  # logs of kernels this process's tests started
        self._keep_logs: set[str] = set()  # logs a failing test started or used
        self._deferred: set[str] = set()  # passing tests' logs that were still being written
        self._summary: dict[str, list[str]] = {}  # failing test -> its logs

    # -- the session ---------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from krec.recorder.capture.manager import recording
        from krec.recorder.errors import KrecError

        if session.config.pluginmanager.has_plugin("dsession"):
            return  # pytest-xdist's controller: the workers start the kernels and record
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(recording(self.directory))
        except KrecError as e:
            raise pytest.UsageError(f"--krec: {e}") from None
        self._recording = stack

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._recording is not None:
            self._recording.close()
            self._recording = None
        for log in sorted(self._deferred - self._keep_logs):
            with contextlib.suppress(OSError):
                os.unlink(log)
        self._deferred.clear()

    def pytest_terminal_summary(self, terminalreporter: TerminalReporter) -> None:
        if not self._summary:
            return
        terminalreporter.section("krec recordings of failing tests")
        for nodeid, logs in self._summary.items():
            terminalreporter.line(f"{nodeid}: {', '.join(_shown(log) for log in logs)}")
        terminalreporter.line("open one with: krec view LOG    reproduce it with: krec replay LOG")

    # -- each test -------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        from krec.recorder.capture.kernel import LOG_NAME_ENV

        self._sizes = self._log_sizes()
        previous = os.environ.get(LOG_NAME_ENV)
        os.environ[LOG_NAME_ENV] = log_stem(item.nodeid)
        try:
            return (yield)
        finally:
            if previous is None:
                os.environ.pop(LOG_NAME_ENV, None)
            else:
                os.environ[LOG_NAME_ENV] = previous
            own = self._own_logs(item, self._log_sizes())
            self._mine.update(own)
            if not item.stash.get(_FAILED, False) and not self.keep:
                self._drop(own)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.failed:
            item.stash[_FAILED] = True
            logs = self._logs_of(item)
            self._keep_logs.update(logs)
            if logs:
                report.sections.append(("krec", _describe(logs)))
                report.user_properties.extend((LOG_PROPERTY, log) for log in logs)
                # junitxml writes the properties of the item's last (teardown) report
                known = set(item.user_properties)
                item.user_properties.extend(
                    (LOG_PROPERTY, log) for log in logs if (LOG_PROPERTY, log) not in known
                )
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # also runs in xdist's controller, which gets the workers' reports
        logs = [str(v) for k, v in report.user_properties if k == LOG_PROPERTY]
        if report.failed and logs:
            known = self._summary.setdefault(report.nodeid, [])
            known += [log for log in logs if log not in known]

    # -- helpers ---------------------------------------------------------------------

    def _log_sizes(self) -> dict[str, int]:
        sizes = {}
        with contextlib.suppress(OSError), os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith(".krec"):
                    with contextlib.suppress(OSError):
                        sizes[entry.path] = entry.stat().st_size
        return sizes

    def _own_logs(self, item: pytest.Item, now: dict[str, int]) -> list[str]:
        """The logs of the kernels this test started, in the order they started."""
        pattern = re.compile(re.escape(log_stem(item.nodeid)) + r"(?:-(\d+))?\.krec")
        own = []
        for path in now:
            match = pattern.fullmatch(os.path.basename(path))
            if match and path not in self._sizes:
                own.append((int(match.group(1) or 1), path))
        return [path for _, path in sorted(own)]

    def _logs_of(self, item: pytest.Item) -> list[str]:
        """The logs of the kernels this test started, then of earlier ones it used (that grew).

        Only kernels this process's tests started count as used: other xdist workers
        record into the same directory.
        """
        earlier = [log for log in self._mine if log in self._sizes]
        if any(being_written(log) for log in earlier):
            time.sleep(FLUSH_SETTLE)  # a recording kernel's last messages may not be on disk yet
        now = self._log_sizes()
        used = sorted(log for log in earlier if now.get(log, 0) > self._sizes[log])
        return self._own_logs(item, now) + used

    def _drop(self, logs: list[str]) -> None:
        for log in logs:
            if log in self._keep_logs:
                continue
            if being_written(log):
                self._deferred.add(log)  # a longer-lived kernel: a later test may fail with it
            else:
                with contextlib.suppress(OSError):
                    os.unlink(log)


def _describe(logs: list[str]) -> str:
    lines = []
    for log in logs:
        shown = _shown(log)
        lines += [f"recorded to {shown}", f"  browse:    krec view {shown}"]
        lines += [f"  reproduce: krec replay {shown}"]
    return "\n".join(lines)
