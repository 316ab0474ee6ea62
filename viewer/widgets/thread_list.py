"""ThreadList: every request followed by the records it caused, like a cell and its outputs.

A virtual list over the ExchangeIndex's flattened rows: a request row (with its
reply status and duration in the parent column) then its replies, iopub output
and stdin exchange, indented. ``[`` and ``]`` move between requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.binding import Binding, BindingType
from textual.message import Message

from krec.viewer.exchanges import ABORTED, ERROR, OK, ExchangeIndex
from krec.viewer.messages import RecordChosen, RecordHighlighted
from krec.viewer.model import LogModel, format_duration_short
from krec.viewer.widgets.records import RecordRows
from krec.viewer.widgets.rowlist import Piece

STATUS_MARKS = {OK: "✓", ERROR: "✗", ABORTED: "⊘"}


class ThreadList(RecordRows):
    """Requests and their members, in log order."""

    BINDINGS: list[BindingType] = [
        Binding("right_square_bracket", "next_request", "Next request"),
        Binding("left_square_bracket", "previous_request", "Previous request"),
    ]

    def __init__(
        self,
        model: LogModel,
        threads: ExchangeIndex,
        findings: Mapping[int, Sequence[Any]] | None = None,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(model, findings, id=id)
        self.threads = threads

    def update_rows(self) -> None:
        """Pick up requests and members threaded since the last call."""
        self.set_row_count(self.threads.row_count())
        self.clear_cache()

    def record_at(self, row: int) -> int:
        return self.threads.locate(row)[1]

    @property
    def current(self) -> int | None:
        return self.record_at(self.cursor) if self.row_count else None

    def go_to_record(self, index: int) -> bool:
        """Put the cursor on record ``index``; False if it belongs to no request."""
        row = self.threads.row_of(index)
        if row < 0:
            return False
        self.set_cursor(row, center=True)
        return True

    def duration_piece(self, r: int) -> Piece:
        """The request's reply status and duration, for its parent column."""
        threads = self.threads
        duration = threads.duration(r)
        if duration < 0:
            return ("…", self.row_style("row--warning"))
        mark = STATUS_MARKS.get(threads.status[r], " ")
        tone = {ERROR: "row--error", ABORTED: "row--warning"}.get(threads.status[r])
        return (f"{mark}{format_duration_short(duration)}", self.row_style(tone) if tone else None)

    def render_pieces(self, row: int, width: int) -> list[Piece]:
        r, index = self.threads.locate(row)
        if index == self.threads.requests[r]:
            bold = self.row_style("row--request")
            pieces = self.paint(self.model.row(index), "▶ ", self.duration_piece(r))
            return [(text, bold + style if style is not None else bold) for text, style in pieces]
        return self.paint(self.model.row(index), "  ")

    def highlighted_message(self, row: int) -> Message | None:
        return RecordHighlighted(self.record_at(row))

    def chosen_message(self, row: int) -> Message | None:
        return RecordChosen(self.record_at(row))

    def action_next_request(self) -> None:
        r, _ = self.threads.locate(self.cursor)
        if r + 1 < len(self.threads):
            self.go_to_record(self.threads.requests[r + 1])

    def action_previous_request(self) -> None:
        r, index = self.threads.locate(self.cursor)
        if index != self.threads.requests[r]:
            self.go_to_record(self.threads.requests[r])
        elif r > 0:
            self.go_to_record(self.threads.requests[r - 1])
