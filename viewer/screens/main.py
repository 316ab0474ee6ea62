"""MainScreen: the message list with its filter bar, go-to bar, detail pane and status line.

``/`` filters (the app runs the scan; this screen shows progress, the match
count or the parse error), ``:`` goes to a time or a record, ``p`` jumps to the
request a message answers and Backspace jumps back, ``f`` follows the end of a
growing log. Escape closes the detail pane, then clears the filter.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from krec.recorder.errors import FilterError
from krec.viewer.messages import FilterDone, FilterProgress, FilterSubmitted, GotoSubmitted
from krec.viewer.model import parse_time
from krec.viewer.screens.base import RecordScreen
from krec.viewer.session import ViewerSession
from krec.viewer.widgets.bars import FilterBar, GotoBar
from krec.viewer.widgets.keybar import KeyBar
from krec.viewer.widgets.records import MessageList, header_text

KEYS = [
    ("⏎", "Detail", ""),
    ("/", "Filter", "screen.filter"),
    ("t", "Threads", "app.threads"),
    ("l", "Timeline", "app.timeline"),
    ("f", "Follow", "screen.follow"),
    ("r", "Replay", "app.replay"),
    ("?", "Keys", "app.help"),
    ("q", "Quit", "app.quit"),
]


class MainScreen(RecordScreen):
    """Every record (or the filter's matches), one per row."""

    BINDINGS: list[BindingType] = [
        Binding("slash", "filter", "Filter"),
        Binding("f", "follow", "Follow"),
        Binding("colon", "goto", "Go to", show=False),
        Binding("p", "to_request", "To request", show=False),
        Binding("n", "next_finding(1)", "Next finding", show=False),
        Binding("N", "next_finding(-1)", "Previous finding", show=False),
        Binding("backspace", "jump_back", "Back", show=False),
        Binding("escape", "escape", "Close", show=False),
    ]

    def __init__(self, session: ViewerSession, *, follow: bool = False) -> None:
        super().__init__(session)
        self.follow_on_start = follow
        self.jumps: list[int] = []
        self._pending_jump: int | None = None

    def compose(self) -> ComposeResult:
        # the filter and go-to bars are mounted when first needed: the first frame
        # must come quickly, and their Inputs cost style sheets to parse
        yield Static(id="status")
        yield Static(header_text(), id="columns")
        yield MessageList(self.model, self.session.findings, id="messages")
        yield KeyBar(KEYS)

    def on_mount(self) -> None:
        self.composed = True
        self.list.follow = self.follow_on_start
        self.list.focus()
        self.log_grew()

    @property
    def list(self) -> MessageList:
        return self.query_one(MessageList)

    @property
    def current_record(self) -> int | None:
        return self.list.current

    # -- the app tells us (ScreenHooks) ---------------------------------------------------------

    def log_grew(self) -> None:
        if not self.composed:
            return
        flt = self.session.filter
        if flt is None or not flt.ready:
            first = self.list.row_count == 0
            self.list.grow(len(self.model))
            if first and self.list.follow:
                self.list.action_last()
        self.status_changed()

    async def filter_bar(self) -> FilterBar:
        """The filter bar, mounted below the status line the first time it is needed."""
        for bar in self.query(FilterBar):
            return bar
        bar = FilterBar(id="filter-bar")
        await self.mount(bar, after="#status")
        return bar

    def say(self, text: str) -> None:
        """Put ``text`` on the filter bar's status line (in order with other updates)."""

        async def update() -> None:
            (await self.filter_bar()).say(text)

        self.call_later(update)

    def filter_changed(self, message: FilterDone | None = None) -> None:
        flt = self.session.filter
        if flt is None:
            self.list.show_all(len(self.model))
            for bar in self.query(FilterBar):
                bar.say("")
                bar.display = False
            if self._pending_jump is not None:
                self.list.go_to_record(self._pending_jump, center=True)
                self._pending_jump = None
        else:
            self.list.show_matches(flt.matches)
            seconds = f" in {message.seconds:.2f} s" if message is not None else ""
            self.say(f"{len(flt.matches):,} matches{seconds}")
        self.status_changed()

    def matches_grew(self, message: FilterDone) -> None:
        flt = self.session.filter
        if flt is not None:
            self.list.grow(len(flt.matches))
            self.say(f"{len(flt.matches):,} matches")

    def filter_progress(self, message: FilterProgress) -> None:
        pct = 100 * message.done // max(message.total, 1)
        self.say(f"scanning {pct}% of {message.total:,} records  (Escape cancels)")

    def filter_error(self, error: FilterError) -> None:
        message = str(error.args[0]) if error.args else str(error)

        async def show() -> None:
            bar = await self.filter_bar()
            bar.display = True
            bar.show_error(message, error.expression, error.position)

        self.call_later(show)

    def status_text(self) -> str:
        text = super().status_text()
        flt = self.session.filter
        if flt is not None:
            text += f"  ·  filter: {flt.expression}"
        if self.list.follow:
            text += "  ·  following"
        return text

    # -- keys -------------------------------------------------------------------------

    async def action_filter(self) -> None:
        (await self.filter_bar()).open()

    def on_filter_submitted(self, message: FilterSubmitted) -> None:
        # the app runs the filter; the list takes the focus back
        if not message.expression:
            for bar in self.query(FilterBar):
                bar.display = False
        self.list.focus()

    async def action_goto(self) -> None:
        bars = self.query(GotoBar)
        goto = bars.first() if bars else GotoBar()
        if not bars:
            await self.mount(goto, before="#columns")
        goto.open()

    def on_goto_submitted(self, message: GotoSubmitted) -> None:
        message.stop()
        self.list.focus()
        target = message.target
        if not target:
            return
        if target.startswith("#"):
            try:
                index = int(target[1:].replace(",", ""))
            except ValueError:
                self.notify(f"not a record number: {target}", severity="error")
                return
            self.jump_to(max(0, min(index, len(self.model) - 1)))
            return
        try:
            seconds = parse_time(target)
        except ValueError:
            self.notify(f"not a time or #record: {target}", severity="error")
            return
        row = self.model.find_time(int(seconds * 1e9), self.list.view)
        if self.list.row_count:
            self.remember()
            self.list.set_cursor(row, center=True)

    def remember(self) -> None:
        current = self.current_record
        if current is not None:
            self.jumps.append(current)

    def jump_to(self, index: int) -> None:
        """Move to record ``index``, clearing the filter if it hides it; Backspace returns."""
        self.remember()
        if not self.list.shows(index):
            self.notify("the filter hid that record: filter cleared")
            self._pending_jump = index
            self.post_message(FilterSubmitted(""))
            return
        self.list.go_to_record(index, center=True)

    def action_to_request(self) -> None:
        index = self.current_record
        if index is None:
            return

        def jump() -> None:
            threads = self.viewer.threads
            assert threads is not None
            r = threads.request_of(index)
            if r < 0:
                self.notify("this record answers no request in the log")
            elif threads.requests[r] == index:
                self.notify("this is a request: t shows its thread")
            else:
                self.jump_to(threads.requests[r])

        self.viewer.with_threads(jump, upto=index)

    def action_next_finding(self, step: int) -> None:
        """Go to the next (``step`` 1) or previous (-1) record with a `krec check` finding."""
        findings = sorted(self.session.findings)
        current = self.current_record
        if not findings or current is None:
            self.notify("no findings" + ("" if self.session.findings else " (! runs krec check)"))
            return
        pos = bisect_right(findings, current) if step > 0 else bisect_left(findings, current) - 1
        if not 0 <= pos < len(findings):
            self.notify("no more findings " + ("below" if step > 0 else "above"))
            return
        self.jump_to(findings[pos])

    def action_jump_back(self) -> None:
        if self.jumps:
            self.list.go_to_record(self.jumps.pop(), center=True)

    def action_follow(self) -> None:
        self.list.follow = not self.list.follow
        if self.list.follow:
            self.list.action_last()
        self.notify("following the end of the log" if self.list.follow else "follow off")
        self.status_changed()

    def action_escape(self) -> None:
        if self.detail_open:
            self.close_detail()
        elif self.session.filter is not None:
            self.post_message(FilterSubmitted(""))

    def show_record(self, index: int) -> None:
        """Put the cursor on record ``index`` (from another screen)."""
        self.jump_to(index)
