"""ThreadScreen: each request with the records whose parent it is, opened with ``t``.

It opens on the thread of the record that was under the cursor; ``[``/``]``
move between requests, Enter opens the detail pane, and Escape (or ``t``) goes
back to the message list with its cursor on the record chosen here.
"""

from __future__ import annotations

from bisect import bisect_left

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from krec.viewer.exchanges import ExchangeIndex
from krec.viewer.screens.base import RecordScreen, ViewerScreen
from krec.viewer.session import ViewerSession
from krec.viewer.widgets.keybar import KeyBar
from krec.viewer.widgets.records import header_text
from krec.viewer.widgets.thread_list import ThreadList

KEYS = [
    ("⏎", "Detail", ""),
    ("[ ]", "Requests", ""),
    ("Esc", "Back to list", "screen.back"),
    ("l", "Timeline", "app.timeline"),
    ("?", "Keys", "app.help"),
    ("q", "Quit", "app.quit"),
]


class ThreadScreen(RecordScreen):
    """Requests as cells, with their replies, outputs and stdin."""

    BINDINGS: list[BindingType] = [
        Binding("escape,t", "back", "Back to list"),
    ]

    def __init__(self, session: ViewerSession, threads: ExchangeIndex, index: int | None) -> None:
        super().__init__(session)
        self.threads = threads
        self.start_index = index

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(header_text(indent=2), id="columns")
        yield ThreadList(self.model, self.threads, self.session.findings, id="threads")
        yield KeyBar(KEYS)

    @property
    def list(self) -> ThreadList:
        return self.query_one(ThreadList)

    @property
    def current_record(self) -> int | None:
        return self.list.current

    def on_mount(self) -> None:
        self.composed = True
        self.list.update_rows()
        self.list.focus()
        self.status_changed()
        index = self.start_index
        if index is None or not self.list.row_count:
            return
        if not self.list.go_to_record(index):
            # an event or an orphan: show the next request instead
            requests = self.threads.requests
            r = min(bisect_left(requests, index), len(requests) - 1)
            self.list.go_to_record(requests[r])
            self.notify(f"record #{index} belongs to no request; showing the nearest one")

    def threads_grew(self) -> None:
        if self.composed:
            self.list.update_rows()
            self.status_changed()

    def status_text(self) -> str:
        return f"threads: {len(self.threads):,} requests  ·  " + super().status_text()

    def action_back(self) -> None:
        if self.detail_open:
            self.close_detail()
            return
        index = self.current_record
        self.app.pop_screen()
        if index is not None and isinstance(self.app.screen, ViewerScreen):
            self.app.screen.show_record(index)
