"""ViewerSession: what the viewer knows about one log beyond its index, as a plain object.

The active filter (expression, compiled form, matches, how far the scan got),
the `krec check` findings, the last replay and what runs in the background live
here, not on the Textual app, so they can be driven and tested without a UI.
The app owns the workers and the screens: it calls the ``run_*`` methods from
worker threads (they only read the log) and the other methods on the UI thread
when the workers report back, then tells its screens what changed.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Callable
from typing import Any, Literal

from krec.viewer.model import LogModel

#: logs up to this many records are checked (`krec check`, ~75 us a record) on their own;
#: bigger ones on `!`
CHECK_AUTO_LIMIT = 20_000

Progress = Callable[[int, int], None]
#: how loud a message to the user is (Textual's notify severities)
Severity = Literal["information", "warning", "error"]


class FilterState:
    """The active filter: its expression, compiled form and matches so far."""

    def __init__(self, expression: str, compiled: Any, generation: int) -> None:
        self.expression = expression
        self.compiled = compiled
        self.generation = generation
        self.matches: array[int] = array("Q")  # what Filter.scan returns
        self.scanned = 0  # records 0..scanned have been looked at
        self.running = False
        self.ready = False  # the first scan has finished: the list shows the matches


class ViewerSession:
    """The filter, the findings, the replay and the background activity of one viewed log."""

    def __init__(self, model: LogModel) -> None:
        self.model = model
        self.filter: FilterState | None = None
        self._filter_generation = 0
        #: what runs in the background, for the status line ("threading 40%")
        self.activity: dict[str, str] = {}
        #: `krec check` findings by record index; lists mark their rows from it (the
        #: same dict for the whole session: the lists hold on to it)
        self.findings: dict[int, list[Any]] = {}
        self.checking = False
        self.checked = -1  # records covered by the last check (-1: none yet)
        self._check_asked = False
        #: the last replay (a krec.recorder.replay.replayer.ReplayResult) or why it failed
        self.replaying = False
        self.replay_result: Any = None
        self.replay_error = ""

    def set_activity(self, name: str, text: str) -> None:
        """Say what ``name`` is doing for the status line ("" once it is done)."""
        if text:
            self.activity[name] = text
        else:
            self.activity.pop(name, None)

    # -- the filter -------------------------------------------------------------------

    def set_filter(self, expression: str) -> FilterState | None:
        """Make ``expression`` the filter ("" clears it) and return its new state.

        A bad expression raises FilterError (from krec.recorder.filter) and leaves the
        filter as it was: the previous result stays on screen."""
        if not expression:
            self.clear_filter()
            return None
        # imported on first use: the first frame of `krec view` does not wait for it (~10 ms)
        from krec.recorder.filter import compile_filter

        compiled = compile_filter(expression)
        self._filter_generation += 1
        self.filter = FilterState(expression, compiled, self._filter_generation)
        return self.filter

    def clear_filter(self) -> None:
        self.filter = None
        self._filter_generation += 1  # a scan still running reports to no one

    def filter_of(self, generation: int) -> FilterState | None:
        """The active filter if scan number ``generation`` is its scan (else None)."""
        flt = self.filter
        return flt if flt is not None and flt.generation == generation else None

    def filter_to_rescan(self) -> FilterState | None:
        """The active filter if it is idle and records past its last scan were indexed."""
        flt = self.filter
        if flt is not None and not flt.running and flt.scanned < len(self.model):
            return flt
        return None

    def start_scan(self, flt: FilterState) -> int:
        """Mark ``flt``'s next scan as running; return the record it starts from."""
        flt.running = True
        return flt.scanned

    def run_scan(
        self, flt: FilterState, start: int, progress: Progress, cancel: threading.Event
    ) -> tuple[array[int], int, float] | None:
        """Scan the records from ``start`` to those indexed now (in a worker): the matches,
        where the scan stopped and how long it took; None if the log closed."""
        model = self.model
        began = time.perf_counter()
        # the lock keeps the index still (and the file open) for the whole scan
        with model.lock:
            if model.closed:
                return None
            stop = len(model)
            found = flt.compiled.scan(
                model.reader, start=start, stop=stop, progress=progress, cancel=cancel
            )
        return found, stop, time.perf_counter() - began

    def scan_done(self, generation: int, matches: array[int], scanned: int) -> bool | None:
        """Add the matches of scan number ``generation``, which looked at the records up to
        ``scanned``. True if they are the filter's first, False if they add to those on
        screen, None if the scan is stale (the filter changed since it started)."""
        flt = self.filter_of(generation)
        if flt is None or not flt.running:
            return None
        flt.running = False
        flt.matches.extend(matches)
        flt.scanned = scanned
        first = not flt.ready
        flt.ready = True
        return first

    # -- krec check -------------------------------------------------------------------

    def start_check(self, asked: bool = False) -> bool:
        """Whether a check should start now (it then counts as running): the log is fully
        indexed, has grown since the last check and is small enough, or ``asked`` (`!`)."""
        self._check_asked = self._check_asked or asked
        n = len(self.model)
        if self.checking or not self.model.complete or n == self.checked:
            return False
        if n > CHECK_AUTO_LIMIT and not self._check_asked:
            return False
        self.checking = True
        return True

    def run_checks(self, progress: Progress) -> tuple[list[Any], int] | None:
        """Run `krec check` over the indexed records (in a worker): the findings and how
        many records they cover; None if the log closed."""
        from krec.recorder.check import run_checks

        model = self.model
        with model.lock:
            if model.closed:
                return None
            checked = len(model)
            return run_checks(model.reader, progress=progress), checked

    def checks_done(self, findings: list[Any], checked: int, error: str = "") -> None:
        """The check of the first ``checked`` records ended with ``findings``; on an
        ``error`` (a broken rule) the findings so far stay."""
        self.checking = False
        if error:
            return
        self.checked = checked
        self.findings.clear()
        for finding in findings:
            self.findings.setdefault(finding.index, []).append(finding)

    @property
    def findings_count(self) -> int:
        return sum(len(f) for f in self.findings.values())

    def findings_for(self, index: int) -> list[str]:
        """What `krec check` found wrong with record ``index`` (for the detail pane)."""
        lines = []
        for f in self.findings.get(index, []):
            related = f"  (see {', '.join(f'#{i}' for i in f.related)})" if f.related else ""
            lines.append(f"{f.severity} {f.rule}: {f.text}{related}")
        return lines

    # -- replay -----------------------------------------------------------------------

    def start_replay(self) -> bool:
        """Whether a replay should start now (False while one runs); forgets the last one."""
        if self.replaying:
            return False
        self.replaying = True
        self.replay_error = ""
        self.replay_result = None
        return True

    def run_replay(self, progress: Progress, cancel: threading.Event) -> tuple[Any, str]:
        """Replay the log against a fresh kernel (in a worker): the result, or why not."""
        from krec.recorder.errors import KrecError
        from krec.recorder.replay.replayer import replay

        try:
            return replay(self.model.path, progress=progress, cancel=cancel), ""
        except KrecError as e:
            return None, str(e)
        except Exception as e:  # the viewer stays up and says what went wrong
            return None, f"{type(e).__name__}: {e}"

    def replay_done(self, result: Any, error: str = "") -> tuple[str, Severity]:
        """Keep the replay's ``result`` (or ``error``); return what to tell the user and
        its severity."""
        self.replaying = False
        self.replay_result = result
        self.replay_error = error
        if error:
            return f"replay failed: {error}", "error"
        diverged = len({d.request for d in result.report.divergences})
        if diverged:
            return f"replay done: {diverged} requests diverged", "warning"
        return "replay done: no divergence", "information"
