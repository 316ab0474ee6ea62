"""The one-line input bars: the filter bar (``/``) and the go-to bar (``:``).

The filter bar posts FilterSubmitted on Enter ("" on Escape: clear); below the
input it shows the scan's progress and match count, or a parse error with a
caret under the offending position. The go-to bar posts GotoSubmitted.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from krec.viewer.messages import FilterSubmitted, GotoSubmitted

FILTER_HINT = "type:execute_request  ch:iopub  from:kernel  status:error  words  not/and/or  ( )"


class FilterBar(Vertical):
    """Filter input plus a status line (progress, match count or error)."""

    BINDINGS: list[BindingType] = [
        Binding("escape", "clear", "Clear filter", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Input(placeholder=f"filter: {FILTER_HINT}", id="filter-input")
        yield Static(id="filter-status")

    @property
    def input(self) -> Input:
        return self.query_one("#filter-input", Input)

    def open(self) -> None:
        """Show the bar with the last expression selected: typing replaces it."""
        self.display = True
        self.input.focus()
        self.input.select_all()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(FilterSubmitted(event.value.strip()))

    def action_clear(self) -> None:
        self.input.value = ""
        self.post_message(FilterSubmitted(""))

    def say(self, text: str | Text) -> None:
        status = self.query_one("#filter-status", Static)
        status.remove_class("error")
        status.update(text)

    def show_error(self, message: str, expression: str, position: int) -> None:
        """A parse error: the message, and a caret under ``position`` of ``expression``."""
        status = self.query_one("#filter-status", Static)
        status.add_class("error")
        text = Text(message)
        if 0 <= position <= len(expression):
            # the input shows the expression after its 1-cell left padding
            text = Text(" " * (position + 1) + "^ ") + text
        status.update(text)


class GotoBar(Input):
    """``:`` — go to a time since the start (12.5, 1:02, 1:02:03) or a record (#1234)."""

    BINDINGS: list[BindingType] = [
        Binding("escape", "close", "Close", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(placeholder="go to: a time (12.5, 1:02, 1:02:03.5) or a record #1234")

    def open(self) -> None:
        self.value = ""
        self.display = True
        self.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.display = False
        self.post_message(GotoSubmitted(event.value.strip()))

    def action_close(self) -> None:
        self.display = False
        self.post_message(GotoSubmitted(""))
