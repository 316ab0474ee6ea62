"""HelpScreen: every key of every screen (``?``); any key or a click closes it."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Everywhere",
        [
            ("q", "quit"),
            ("?", "this help"),
            ("t", "thread view: each request with its replies and outputs"),
            ("l", "timeline: requests as bars from request to idle"),
            ("r", "replay the log against a fresh kernel, then compare"),
            ("!", "run krec check (on its own for logs up to 20,000 records)"),
        ],
    ),
    (
        "Lists",
        [
            ("↑ ↓  j k", "move"),
            ("PgUp PgDn  Space", "page"),
            ("Home End  g G", "first / last"),
            ("Enter, double click", "open or close the detail pane"),
            ("c", "copy the record as JSON to the clipboard"),
            ("w", "write the record as JSON to a file"),
            ("Tab", "move the focus to the detail pane (fold the JSON with Enter)"),
        ],
    ),
    (
        "Message list",
        [
            ("/", "filter: type:execute_request ch:iopub from:kernel status:error words…"),
            ("Escape", "close the detail pane, then clear the filter"),
            (":", "go to a time (12.5, 1:02, 1:02:03.5) or a record (#1234)"),
            ("p", "go to the request this message answers"),
            ("n N", "next / previous record with a krec check finding (✗ ⚠)"),
            ("Backspace", "go back where you were before a jump"),
            ("f", "follow: keep the cursor on the newest record as the log grows"),
        ],
    ),
    (
        "Thread view",
        [
            ("[ ]", "previous / next request"),
            ("Escape, t", "back to the message list, on the record under the cursor"),
        ],
    ),
    (
        "Timeline",
        [
            ("s", "sort by time or by duration (slowest first)"),
            ("Enter", "open the request's thread"),
            ("Escape, l", "back"),
        ],
    ),
    (
        "Replay",
        [
            ("Enter", "start; on the report, go to the recorded message"),
            ("r", "replay again"),
            ("Escape", "back (a running replay goes on)"),
        ],
    ),
]


def keys_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for title, keys in KEYS:
        table.add_row(Text(title, style="bold underline"), "")
        for key, what in keys:
            table.add_row(key, what)
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    """The keys, grouped by screen."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(keys_table())
            yield Static("press any key to close", id="help-close")

    def on_key(self, event: events.Key) -> None:
        event.stop()
        self.dismiss()

    def on_click(self, event: events.Click) -> None:
        self.dismiss()
