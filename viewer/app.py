"""KrecViewer: the Textual app behind `krec view`; it owns the model and the slow work.

The app indexes the log in a thread worker (the first screen shows as soon as
the first rows are indexed), follows the file as it grows, runs filter scans,
`krec check`, replays and the threading pass in workers, keeps what they find in
its ViewerSession (viewer/session.py) and tells its screens what changed through
their declared hooks (ScreenHooks, viewer/screens/base.py). The screens own
their widgets: the message list (main), the thread view, the timeline, the help
and the replay report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import get_current_worker

from krec.recorder.errors import FilterError
from krec.recorder.log.reader import LogReader
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
from krec.viewer.screens.base import ScreenHooks, ViewerScreen
from krec.viewer.session import FilterState, ViewerSession

#: records indexed before the first screen, then per step (seconds after the first frame)
FIRST_STEP = 2_000
INDEX_STEP = 100_000
INDEX_DELAY = 0.1
#: how often a growing log is looked at (seconds)
FOLLOW_INTERVAL = 0.25
#: logs up to this many records are threaded as soon as they are indexed (~3 us a
#: record); bigger ones when the thread view, the timeline or `p` first needs it
THREADS_AUTO_LIMIT = 200_000
#: records threaded per step, and past the record a view opens on before it opens
THREAD_STEP = 25_000
THREAD_MARGIN = 20_000
#: a live log is checked again at most this often
CHECK_AGAIN_AFTER = 2.0


P = ParamSpec("P")


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
        #: the filter, the findings, the replay: what the screens show beyond the index
        self.session = ViewerSession(self.model)
        self.threads: ExchangeIndex | None = None
        self._threading = False
        self._after_threads: list[tuple[int, Callable[[], None]]] = []

    # -- screens ----------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        from krec.viewer.screens.main import MainScreen

        return MainScreen(self.session, follow=self.follow_on_start)

    def on_mount(self) -> None:
        # the first rows are indexed here, before the first paint; the rest in a worker
        if not self.model.complete and len(self.model) == 0:
            self.model.index_more(FIRST_STEP)
        self.tell_screens(ScreenHooks.log_grew)
        # indexing competes for the GIL with rendering and writing the first frame
        # (~70 ms after mount): start it once that frame is out
        self.set_timer(INDEX_DELAY, self._index)
        self.set_interval(FOLLOW_INTERVAL, self._follow_tick)
        if self.initial_filter:
            self.post_message(FilterSubmitted(self.initial_filter))

    def tell_screens(
        self, hook: Callable[Concatenate[ScreenHooks, P], None], *args: P.args, **kw: P.kwargs
    ) -> None:
        """Call ``hook`` (a ScreenHooks method, e.g. ``ScreenHooks.log_grew``) on every
        screen of the stack, as each screen overrides it; anything else is a TypeError."""
        name = getattr(hook, "__name__", "")
        if name.startswith("_") or getattr(ScreenHooks, name, None) is not hook:
            raise TypeError(f"{hook!r} is not one of the ScreenHooks")
        if not self.is_running:
            return  # shutting down: the screens' widgets may be gone already
        for screen in list(self.screen_stack):
            if isinstance(screen, ViewerScreen):
                getattr(screen, name)(*args, **kw)

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
        self.tell_screens(ScreenHooks.log_grew)
        if message.complete:
            self.check()
        flt = self.session.filter_to_rescan()
        if flt is not None:
            self._start_scan(flt)
        if self.threads is None and message.complete and len(self.model) <= THREADS_AUTO_LIMIT:
            self.threads = ExchangeIndex()  # small enough to thread now: t, l and p are instant
        if self.threads is not None and not self._threading:
            self._start_threading()

    # -- filtering ------------------------------------------------------------------

    def on_filter_submitted(self, message: FilterSubmitted) -> None:
        try:
            flt = self.session.set_filter(message.expression)
        except FilterError as e:
            # a bad filter says why and keeps the previous result on screen
            self.tell_screens(ScreenHooks.filter_error, e)
            return
        self.workers.cancel_group(self, "filter")
        if flt is None:
            self.tell_screens(ScreenHooks.filter_changed)
        else:
            self._start_scan(flt)

    def _start_scan(self, flt: FilterState) -> None:
        self._scan(flt, self.session.start_scan(flt))

    @work(thread=True, group="filter", exit_on_error=True)
    def _scan(self, flt: FilterState, start: int) -> None:
        cancel = get_current_worker().cancelled_event
        last_post = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last_post
            now = time.perf_counter()
            if now - last_post >= 0.1:
                last_post = now
                self.post_message(FilterProgress(flt.generation, done, total))

        scanned = self.session.run_scan(flt, start, progress, cancel)
        if scanned is not None and not cancel.is_set():
            self.post_message(FilterDone(flt.generation, *scanned))

    def on_filter_progress(self, message: FilterProgress) -> None:
        if self.session.filter_of(message.generation) is not None:
            self.tell_screens(ScreenHooks.filter_progress, message)

    def on_filter_done(self, message: FilterDone) -> None:
        first = self.session.scan_done(message.generation, message.matches, message.scanned)
        if first is None:
            return  # a scan of a filter since replaced
        if first:
            self.tell_screens(ScreenHooks.filter_changed, message)
        else:
            self.tell_screens(ScreenHooks.matches_grew, message)
        flt = self.session.filter_to_rescan()
        if flt is not None:
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
        self.tell_screens(ScreenHooks.threads_grew)

    def _activity(self, name: str, text: str) -> None:
        self.session.set_activity(name, text)
        self.tell_screens(ScreenHooks.status_changed)

    def on_exchanges_ready(self, message: ExchangesReady) -> None:
        self._threading = False
        self._activity("threads", "")
        assert self.threads is not None
        if self.threads.done < len(self.model):
            self._threads_reached(everything=False)
            self._start_threading()
            return
        self._threads_reached(everything=True)
        self.tell_screens(ScreenHooks.threads_grew)
        self.tell_screens(ScreenHooks.status_changed)

    # -- krec check -------------------------------------------------------------------

    def check(self, asked: bool = False) -> None:
        """Run `krec check` over the log in a worker (on its own for small logs)."""
        if self.session.start_check(asked):
            self._activity("check", "checking")
            self._run_checks()

    @work(thread=True, group="check")
    def _run_checks(self) -> None:
        def progress(done: int, total: int) -> None:
            self.post_message(ChecksProgress(done, total))

        try:
            checked = self.session.run_checks(progress)
        except Exception as e:  # a broken rule must not take the viewer down: say so
            self.post_message(ChecksDone([], 0, f"{type(e).__name__}: {e}"))
            return
        if checked is not None:
            self.post_message(ChecksDone(*checked))

    def on_checks_progress(self, message: ChecksProgress) -> None:
        self._activity("check", f"checking {100 * message.done // max(message.total, 1)}%")

    def on_checks_done(self, message: ChecksDone) -> None:
        session = self.session
        self._activity("check", "")
        session.checks_done(message.findings, message.checked, message.error)
        if message.error:
            self.notify(f"krec check failed: {message.error}", severity="error")
            return
        self.tell_screens(ScreenHooks.findings_changed)
        if len(self.model) > session.checked:  # a live log: again, a little later
            self.set_timer(CHECK_AGAIN_AFTER, self.check)

    def action_check(self) -> None:
        session = self.session
        if session.checking:
            self.notify("the check is running")
        elif len(self.model) == session.checked:
            self.notify(f"{session.findings_count} findings in {session.checked:,} records")
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
        if index is None and isinstance(self.screen, ViewerScreen):
            index = self.screen.current_record

        def open_view() -> None:
            assert self.threads is not None
            self.push_screen(ThreadScreen(self.session, self.threads, index))

        self.with_threads(open_view, upto=index if index is not None else 0)

    def action_timeline(self) -> None:
        from krec.viewer.screens.timeline import TimelineScreen

        if isinstance(self.screen, TimelineScreen):
            return

        def open_view() -> None:
            assert self.threads is not None
            self.push_screen(TimelineScreen(self.session, self.threads))

        self.with_threads(open_view, upto=0)

    def action_replay(self) -> None:
        from krec.viewer.screens.replay import ReplayScreen

        if not isinstance(self.screen, ReplayScreen):
            self.push_screen(ReplayScreen(self.session))

    # -- replay ---------------------------------------------------------------------------

    def start_replay(self) -> None:
        """Replay the log against a fresh kernel in a worker (krec.recorder.replay.replayer)."""
        if self.session.start_replay():
            self._activity("replay", "replaying")
            self._replay()

    @work(thread=True, group="replay")
    def _replay(self) -> None:
        def progress(done: int, total: int) -> None:
            self.post_message(ReplayProgress(done, total))

        result, error = self.session.run_replay(progress, get_current_worker().cancelled_event)
        self.post_message(ReplayFinished(result, error))

    def on_replay_progress(self, message: ReplayProgress) -> None:
        self._activity("replay", f"replaying {message.done}/{message.total}")
        self.tell_screens(ScreenHooks.replay_progress, message.done, message.total)

    def on_replay_finished(self, message: ReplayFinished) -> None:
        text, severity = self.session.replay_done(message.result, message.error)
        self._activity("replay", "")
        self.notify(text, severity=severity)
        self.tell_screens(ScreenHooks.replay_finished)

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
