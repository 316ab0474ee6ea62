"""TimelineScreen: the requests as a waterfall (``l``); Enter opens a request's thread.

The status line sums it up (busy time against the whole recording, the slowest
request, how many stand out as slow); the axis line above the bars gives the
time span of the rows on screen.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from krec.viewer.exchanges import ExchangeIndex
from krec.viewer.messages import RequestChosen, TimelineWindow
from krec.viewer.model import format_duration, format_rel
from krec.viewer.screens.base import ViewerScreen
from krec.viewer.session import ViewerSession
from krec.viewer.widgets.keybar import KeyBar
from krec.viewer.widgets.timeline import W_LABEL, Timeline

#: seconds between updates of the timeline while the log grows
UPDATE_EVERY = 1.0

KEYS = [
    ("⏎", "Thread", ""),
    ("s", "Sort by time/duration", "focused.toggle_sort"),
    ("Esc", "Back to list", "screen.back"),
    ("?", "Keys", "app.help"),
    ("q", "Quit", "app.quit"),
]


class TimelineScreen(ViewerScreen):
    """One bar per request, from request to idle."""

    BINDINGS: list[BindingType] = [
        Binding("escape,l", "back", "Back to list"),
    ]

    def __init__(self, session: ViewerSession, threads: ExchangeIndex) -> None:
        super().__init__(session)
        self.threads = threads
        self._update_pending = False
        self._sorted_shown = False

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(id="axis")
        yield Timeline(self.model, self.threads, id="timeline")
        yield KeyBar(KEYS)

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    def on_mount(self) -> None:
        self.composed = True
        self.timeline.update_rows()
        self.timeline.focus()
        self.status_changed()

    def threads_grew(self) -> None:
        # a live log grows four times a second; summing up every request costs O(requests)
        if self.composed and not self._update_pending:
            self._update_pending = True
            self.set_timer(UPDATE_EVERY, self._update)

    def _update(self) -> None:
        self._update_pending = False
        self.timeline.update_rows()
        self.status_changed()

    def status_changed(self) -> None:
        for status in self.query("#status").results(Static):
            status.update(self.summary())

    def summary(self) -> str:
        threads = self.threads
        n = len(threads)
        if not n:
            return f"{self.model.name}  ·  no requests"
        durations = [d for d in threads.durations() if d >= 0]
        busy = sum(durations)
        first = threads.t_request[0]
        last = max(threads.end(r) for r in range(max(0, n - 50), n)) or first
        span = max(last - first, 1)
        slow_from = self.timeline.slow
        slow = sum(1 for d in durations if d >= slow_from)
        slowest = max(durations, default=0)
        order = "slowest first" if self.timeline.sorted_by_duration else "in log order"
        running = "".join(f"  ·  {text}" for text in self.session.activity.values())
        return (
            f"{self.model.name}  ·  {n:,} requests {order}  ·  busy {format_duration(busy)} "
            f"of {format_duration(span)} ({100 * busy / span:.0f}%)  ·  slowest "
            f"{format_duration(slowest)}  ·  {slow} slow (≥ {format_duration(self.timeline.slow)})"
            + running
        )

    def on_timeline_window(self, message: TimelineWindow) -> None:
        width = max(self.timeline.scrollable_content_region.width - W_LABEL, 10)
        if self.timeline.sorted_by_duration:
            left, right = "0", format_duration(message.end - message.start)
        else:
            left, right = f"+{format_rel(message.start)}", f"+{format_rel(message.end)}"
        fill = max(width - len(left) - len(right) - 2, 1)
        axis = Text(" " * (W_LABEL - 1) + "│")
        axis.append(f"{left} " + "─" * fill + f" {right}", style="dim")
        head = f"{'#':>7} {'time':>10} {'request':<18} {'code / content':<26} {'duration':>9}"
        self.query_one("#axis", Static).update(Text(head + "\n") + axis)
        if self._sorted_shown != self.timeline.sorted_by_duration:
            self._sorted_shown = self.timeline.sorted_by_duration
            self.status_changed()

    def on_request_chosen(self, message: RequestChosen) -> None:
        from krec.viewer.screens.threads import ThreadScreen

        self.app.push_screen(
            ThreadScreen(self.session, self.threads, self.threads.requests[message.request])
        )

    def show_record(self, index: int) -> None:
        """Coming back from a thread: put the cursor on that record's request."""
        r = self.threads.request_of(index)
        if r >= 0:
            self.timeline.set_cursor(self.timeline.row_of_request(r), center=True)

    def action_back(self) -> None:
        self.app.pop_screen()
