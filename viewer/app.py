"""KrecViewer: the Textual app behind `krec view`; it owns the model and the slow work.

The app indexes the log in a thread worker (the first screen shows as soon as
the first rows are indexed), follows the file as it grows, runs filter scans
and the threading pass in workers, and tells its screens what changed. The
screens own their widgets: the message list (main), the thread view, the
timeline, the help and the replay report.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import get_current_worker

from krec.recorder.errors import FilterError, KrecError
from krec.recorder.logfile import LogReader
from krec.viewer.exchanges import ExchangeIndex
from krec.viewer.messages import (
    ChecksDone,
    ChecksProgress,
    ExchangesProgress,
    ExchangesReady,
    FilterDone,
    FilterProgress,
    FilterSubmitted,
    IndexGrew,
    ReplayFinished,
    ReplayProgress,
)
from krec.viewer.model import LogModel

#: records indexed before the first screen, then per step (seconds after the first frame)
FIRST_STEP = 2_000
INDEX_STEP = 100_000
INDEX_DELAY = 0.1
#: how often a growing log is looked at (seconds)
FOLLOW_INTERVAL = 0.25
#: logs up to this many records are checked (`krec check`, ~75 us a record) on their own;
#: bigger ones on `!`
CHECK_AUTO_LIMIT = 20_000
#: logs up to this many records are threaded as soon as they are indexed (~3 us a
#: record); bigger ones when the thread view, the timeline or `p` first needs it
THREADS_AUTO_LIMIT = 200_000
#: records threaded per step, and past the record a view opens on before it opens
THREAD_STEP = 25_000
THREAD_MARGIN = 20_000
#: a live log is checked again at most this often
CHECK_AGAIN_AFTER = 2.0


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


def compile_filter(expression: str) -> Any:
    """The filter language lives in krec.recorder.filter; the viewer never reimplements it."""
    try:
        from krec.recorder.filter import compile_filter as compile_expression
    except ImportError:
        raise FilterError("this krec has no filter support yet", expression, -1) from None
    return compile_expression(expression)


class KrecViewer(App[None]):
    """Browse, filter, thread and replay one .krec log."""

    CSS_PATH = "viewer.tcss"
    TITLE = "krec view"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS: list[BindingType] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Keys"),
        Binding("t", "threads", "Threads"),
        Binding("l", "timeline", "Timeline"),
        Binding("r", "replay", "Replay"),
        Binding("exclamation_mark", "check", "Check", show=False),
    ]

    def __init__(
        self,
        reader: LogReader,
        *,
        follow: bool = False,
        filter_text: str = "",
    ) -> None:
        super().__init__()
        self.model = LogModel(reader)
        self.follow_on_start = follow
        self.initial_filter = filter_text
        self.threads: ExchangeIndex | None = None
        self.filter: FilterState | None = None
        self._filter_generation = 0
        self._threading = False
        self._after_threads: list[tuple[int, Callable[[], None]]] = []
        #: what runs in the background, for the status line ("threading 40%")
        self.activity: dict[str, str] = {}
        #: `krec check` findings by record index; lists mark their rows from it
        self.findings: dict[int, list[Any]] = {}
        self._checking = False
        self._checked = -1  # records covered by the last check
        self._check_asked = False
        #: the last replay (a krec.recorder.replay.replayer.ReplayResult) or why it failed
        self.replaying = False
        self.replay_result: Any = None
        self.replay_error = ""

    # -- screens ----------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        from krec.viewer.screens.main import MainScreen

        return MainScreen(self.model, follow=self.follow_on_start)

    def _screens(self) -> list[Any]:
        return list(self.screen_stack)

    def on_mount(self) -> None:
        # the first rows are indexed here, before the first paint; the rest in a worker
        if not self.model.complete and len(self.model) == 0:
            self.model.index_more(FIRST_STEP)
        self._tell_screens("log_grew")
        # indexing competes for the GIL with rendering and writing the first frame
        # (~70 ms after mount): start it once that frame is out
        self.set_timer(INDEX_DELAY, self._index)
        self.set_interval(FOLLOW_INTERVAL, self._follow_tick)
        if self.initial_filter:
            self.post_message(FilterSubmitted(self.initial_filter))

    def _tell_screens(self, method: str, *args: Any) -> None:
        if not self.is_running:
            return  # shutting down: the screens' widgets may be gone already
        for screen in self._screens():
            handler = getattr(screen, method, None)
            if handler is not None:
                handler(*args)

    # -- indexing and following --------------------------------------------------

    @work(thread=True, group="index", exit_on_error=True)
    def _index(self) -> None:
        worker = get_current_worker()
        model = self.model
        while not worker.is_cancelled:
            more = model.index_more(INDEX_STEP)
            self.post_message(IndexGrew(len(model), not more))
            if not more:
                return

    def _follow_tick(self) -> None:
        if self.model.grow():
            self.post_message(IndexGrew(len(self.model), True))

    def on_index_grew(self, message: IndexGrew) -> None:
        self._tell_screens("log_grew")
        if message.complete:
            self.check()
        flt = self.filter
        if flt is not None and not flt.running and flt.scanned < len(self.model):
            self._start_scan(flt)
        if self.threads is None and message.complete and len(self.model) <= THREADS_AUTO_LIMIT:
            self.threads = ExchangeIndex()  # small enough to thread now: t, l and p are instant
        if self.threads is not None and not self._threading:
            self._start_threading()

    # -- filtering ------------------------------------------------------------------

    def on_filter_submitted(self, message: FilterSubmitted) -> None:
        expression = message.expression
        if not expression:
            self.filter = None
            self._filter_generation += 1
            self.workers.cancel_group(self, "filter")
            self._tell_screens("filter_changed")
            return
        try:
            compiled = compile_filter(expression)
        except FilterError as e:
            # a bad filter says why and keeps the previous result on screen
            self._tell_screens("filter_error", e)
            return
        self.workers.cancel_group(self, "filter")
        self._filter_generation += 1
        self.filter = FilterState(expression, compiled, self._filter_generation)
        self._start_scan(self.filter)

    def _start_scan(self, flt: FilterState) -> None:
        flt.running = True
        self._scan(flt, flt.scanned)

    @work(thread=True, group="filter", exit_on_error=True)
    def _scan(self, flt: FilterState, start: int) -> None:
        cancel: threading.Event = get_current_worker().cancelled_event
        model = self.model
        began = time.perf_counter()
        last_post = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last_post
            now = time.perf_counter()
            if now - last_post >= 0.1:
                last_post = now
                self.post_message(FilterProgress(flt.generation, done, total))

        # the lock keeps the index still (and the file open) for the whole scan
        with model.lock:
            if model.closed:
                return
            stop = len(model)
            found = flt.compiled.scan(
                model.reader, start=start, stop=stop, progress=progress, cancel=cancel
            )
        if not cancel.is_set():
            seconds = time.perf_counter() - began
            self.post_message(FilterDone(flt.generation, found, stop, seconds))

    def on_filter_progress(self, message: FilterProgress) -> None:
        flt = self.filter
        if flt is not None and flt.generation == message.generation:
            self._tell_screens("filter_progress", message)

    def on_filter_done(self, message: FilterDone) -> None:
        flt = self.filter
        if flt is None or flt.generation != message.generation or not flt.running:
            return
        flt.running = False
        flt.matches.extend(message.matches)
        flt.scanned = message.scanned
        first = not flt.ready
        flt.ready = True
        self._tell_screens("filter_changed" if first else "matches_grew", message)
        if flt.scanned < len(self.model):
            self._start_scan(flt)

    # -- threads ----------------------------------------------------------------------

    def with_threads(self, then: Callable[[], None], upto: int | None = None) -> None:
        """Call ``then`` once the records up to ``upto`` (and a margin for what answers
        them) are threaded, or every record indexed so far when ``upto`` is None; start
        threading if needed. The views opened this way grow as threading goes on."""
        n = len(self.model)
        target = n if upto is None else min(n, upto + THREAD_MARGIN)
        if self.threads is None:
            self.threads = ExchangeIndex()
        if self.threads.done >= target and (upto is not None or not self._threading):
            then()
            return
        self._after_threads.append((target, then))
        if not self._threading:
            self._start_threading()

    def _threads_reached(self, everything: bool) -> None:
        assert self.threads is not None
        if not self.is_running:
            return
        done = self.threads.done
        waiting, self._after_threads = self._after_threads, []
        for target, then in waiting:
            if everything or target <= done:
                then()
            else:
                self._after_threads.append((target, then))

    def _start_threading(self) -> None:
        self._threading = True
        self._thread_log()

    @work(thread=True, group="threads", exit_on_error=True)
    def _thread_log(self) -> None:
        worker = get_current_worker()
        threads, model = self.threads, self.model
        assert threads is not None
        while not worker.is_cancelled:
            total = len(model)
            if threads.done >= total:
                break
            stop = min(total, threads.done + THREAD_STEP)
            threads.update(model.iter_packed(threads.done, stop))
            self.post_message(ExchangesProgress(threads.done, total))
        self.post_message(ExchangesReady(len(threads)))

    def on_exchanges_progress(self, message: ExchangesProgress) -> None:
        self._activity("threads", f"threading {100 * message.done // max(message.total, 1)}%")
        self._threads_reached(everything=False)
        self._tell_screens("threads_grew")

    def _activity(self, name: str, text: str) -> None:
        if text:
            self.activity[name] = text
        else:
            self.activity.pop(name, None)
        self._tell_screens("status_changed")

    def on_exchanges_ready(self, message: ExchangesReady) -> None:
        self._threading = False
        self._activity("threads", "")
        assert self.threads is not None
        if self.threads.done < len(self.model):
            self._threads_reached(everything=False)
            self._start_threading()
            return
        self._threads_reached(everything=True)
        self._tell_screens("threads_grew")
        self._tell_screens("status_changed")

    # -- krec check -------------------------------------------------------------------

    def check(self, asked: bool = False) -> None:
        """Run `krec check` over the log in a worker (on its own for small logs)."""
        self._check_asked = self._check_asked or asked
        n = len(self.model)
        if self._checking or not self.model.complete or n == self._checked:
            return
        if n > CHECK_AUTO_LIMIT and not self._check_asked:
            return
        self._checking = True
        self._activity("check", "checking")
        self._run_checks()

    @work(thread=True, group="check")
    def _run_checks(self) -> None:
        from krec.recorder.check import run_checks

        model = self.model

        def progress(done: int, total: int) -> None:
            self.post_message(ChecksProgress(done, total))

        try:
            with model.lock:
                if model.closed:
                    return
                checked = len(model)
                findings = run_checks(model.reader, progress=progress)
        except Exception as e:  # a broken rule must not take the viewer down: say so
            self.post_message(ChecksDone([], 0, f"{type(e).__name__}: {e}"))
            return
        self.post_message(ChecksDone(findings, checked))

    def on_checks_progress(self, message: ChecksProgress) -> None:
        self._activity("check", f"checking {100 * message.done // max(message.total, 1)}%")

    def on_checks_done(self, message: ChecksDone) -> None:
        self._checking = False
        self._activity("check", "")
        if message.error:
            self.notify(f"krec check failed: {message.error}", severity="error")
            return
        self._checked = message.checked
        self.findings.clear()
        for finding in message.findings:
            self.findings.setdefault(finding.index, []).append(finding)
        self._tell_screens("findings_changed")
        if len(self.model) > self._checked:  # a live log: again, a little later
            self.set_timer(CHECK_AGAIN_AFTER, self.check)

    @property
    def checked(self) -> int:
        """How many records the last `krec check` covered (-1: none yet)."""
        return self._checked

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

    def action_check(self) -> None:
        if self._checking:
            self.notify("the check is running")
        elif len(self.model) == self._checked:
            self.notify(f"{self.findings_count} findings in {self._checked:,} records")
        else:
            self.check(asked=True)

    # -- actions ------------------------------------------------------------------------

    def action_help(self) -> None:
        from krec.viewer.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    def action_threads(self, index: int | None = None) -> None:
        """Open the thread view on record ``index`` (default: the one under the cursor)."""
        from krec.viewer.screens.threads import ThreadScreen

        if isinstance(self.screen, ThreadScreen):
            return
        if index is None:
            index = getattr(self.screen, "current_record", None)

        def open_view() -> None:
            assert self.threads is not None
            self.push_screen(ThreadScreen(self.model, self.threads, index))

        self.with_threads(open_view, upto=index if index is not None else 0)

    def action_timeline(self) -> None:
        from krec.viewer.screens.timeline import TimelineScreen

        if isinstance(self.screen, TimelineScreen):
            return

        def open_view() -> None:
            assert self.threads is not None
            self.push_screen(TimelineScreen(self.model, self.threads))

        self.with_threads(open_view, upto=0)

    def action_replay(self) -> None:
        from krec.viewer.screens.replay import ReplayScreen

        if not isinstance(self.screen, ReplayScreen):
            self.push_screen(ReplayScreen(self.model))

    # -- replay ---------------------------------------------------------------------------

    def start_replay(self) -> None:
        """Replay the log against a fresh kernel in a worker (krec.recorder.replay.replayer)."""
        if self.replaying:
            return
        self.replaying = True
        self.replay_error = ""
        self.replay_result = None
        self._activity("replay", "replaying")
        self._replay()

    @work(thread=True, group="replay")
    def _replay(self) -> None:
        from krec.recorder.replay.replayer import replay

        cancel = get_current_worker().cancelled_event

        def progress(done: int, total: int) -> None:
            self.post_message(ReplayProgress(done, total))

        try:
            result = replay(self.model.path, progress=progress, cancel=cancel)
        except KrecError as e:
            self.post_message(ReplayFinished(None, str(e)))
        except Exception as e:  # the viewer stays up and says what went wrong
            self.post_message(ReplayFinished(None, f"{type(e).__name__}: {e}"))
        else:
            self.post_message(ReplayFinished(result))

    def on_replay_progress(self, message: ReplayProgress) -> None:
        self._activity("replay", f"replaying {message.done}/{message.total}")
        self._tell_screens("replay_progress", message.done, message.total)

    def on_replay_finished(self, message: ReplayFinished) -> None:
        self.replaying = False
        self.replay_result = message.result
        self.replay_error = message.error
        self._activity("replay", "")
        if message.error:
            self.notify(f"replay failed: {message.error}", severity="error")
        else:
            report = message.result.report
            diverged = len({d.request for d in report.divergences})
            self.notify(
                f"replay done: {diverged} requests diverged"
                if diverged
                else "replay done: no divergence",
                severity="warning" if diverged else "information",
            )
        self._tell_screens("replay_finished")

    def on_unmount(self) -> None:
        self.workers.cancel_all()
        self.model.close()


def run_viewer(reader: LogReader, *, follow: bool = False, filter_text: str = "") -> None:
    """Run the viewer on an opened reader until the user quits."""
    app = KrecViewer(reader, follow=follow, filter_text=filter_text)
    try:
        app.run()
    finally:
        app.model.close()  # the app closes it on exit; this is for an app that failed to start
