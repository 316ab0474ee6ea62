"""Record rows: how one record looks in a list (columns, channel colours), and the message list.

``RecordRows`` paints a model Row as aligned columns (number, relative time,
channel, direction, msg_type, short parent, subshell badge, summary) with its
colours from viewer.tcss; ``MessageList`` is the main list over every record
or over the matches of a filter, which it receives as an array of indexes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.message import Message

from krec.viewer.messages import RecordChosen, RecordHighlighted
from krec.viewer.model import LogModel, Row, format_rel
from krec.viewer.widgets.rowlist import Piece, RowList

ARROWS = {"client": "→", "kernel": "←", "krec": "•"}
#: column widths: record number, time, channel, arrow, msg_type, parent
W_INDEX, W_TIME, W_CH, W_TYPE, W_PARENT = 7, 10, 7, 22, 10


def header_text(indent: int = 0) -> Text:
    """The column titles, aligned with the rows."""
    return Text(
        " " * (indent + 2)
        + f"{'#':>{W_INDEX}} {'time':>{W_TIME}} {'channel':<{W_CH}}   "
        + f"{'msg_type':<{W_TYPE}} {'parent':<{W_PARENT}} summary",
        no_wrap=True,
        overflow="ellipsis",
    )


class RecordRows(RowList):
    """A list whose rows are records, painted the same way everywhere."""

    COMPONENT_CLASSES = RowList.COMPONENT_CLASSES | {
        "row--index",
        "row--time",
        "row--shell",
        "row--control",
        "row--stdin",
        "row--iopub",
        "row--event",
        "row--parent",
        "row--badge",
        "row--error",
        "row--warning",
        "row--request",
    }

    def __init__(
        self,
        model: LogModel,
        findings: Mapping[int, Sequence[Any]] | None = None,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.model = model
        #: `krec check` findings by record index (each with a ``severity``): rows get a mark
        self.findings: Mapping[int, Sequence[Any]] = findings if findings is not None else {}

    def paint(self, row: Row, indent: str = "", parent: Piece | None = None) -> list[Piece]:
        """``row`` as columns; ``parent`` replaces the parent column (e.g. a duration)."""
        style = self.row_style
        pieces: list[Piece] = [(indent, None)] if indent else []
        add = pieces.append
        found = self.findings.get(row.index)
        if found:
            error = any(f.severity == "error" for f in found)
            add(("✗ " if error else "⚠ ", style("row--error" if error else "row--warning")))
        else:
            add(("  ", None))
        add((f"{row.index:>{W_INDEX}} ", style("row--index")))
        add((f"{format_rel(row.t):>{W_TIME}} ", style("row--time")))
        if row.is_event:
            add((f"{'event':<{W_CH}} ★ {row.event:<{W_TYPE}} ", style("row--event")))
            add((" " * (W_PARENT + 1), None))
            add((row.summary, style(f"row--{row.tone}") if row.tone else style("row--event")))
            return pieces
        ch_style = style(f"row--{row.ch}") if row.ch in CHANNELS else style("row--index")
        msg_type = row.msg_type
        if len(msg_type) > W_TYPE:
            msg_type = msg_type[: W_TYPE - 1] + "…"
        add((f"{row.ch:<{W_CH}} {ARROWS.get(row.source, '?')} {msg_type:<{W_TYPE}} ", ch_style))
        if parent is None:
            add((f"{row.parent[:W_PARENT]:<{W_PARENT}} ", style("row--parent")))
        else:
            add((f"{parent[0][:W_PARENT]:<{W_PARENT}} ", parent[1]))
        if row.subshell:
            add((f"[sub {row.subshell[:8]}] ", style("row--badge")))
        add((row.summary, style(f"row--{row.tone}") if row.tone else None))
        return pieces


CHANNELS = frozenset({"shell", "control", "stdin", "iopub"})


class MessageList(RecordRows):
    """Every record of the log, or the matches of a filter, one row each."""

    def __init__(
        self,
        model: LogModel,
        findings: Mapping[int, Sequence[Any]] | None = None,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(model, findings, id=id)
        self.view: Sequence[int] | None = None  # None: every record
        #: keep the cursor on the last row when the log grows
        self.follow = False

    def record_at(self, row: int) -> int:
        return self.view[row] if self.view is not None else row

    def row_of(self, index: int) -> int:
        """The row showing record ``index``, or the row of the next record shown."""
        if self.view is None:
            return index
        return bisect_left(self.view, index)

    def shows(self, index: int) -> bool:
        """True when record ``index`` has a row (the filter does not hide it)."""
        if self.view is None:
            return 0 <= index < self.row_count
        row = bisect_left(self.view, index)
        return row < len(self.view) and self.view[row] == index

    @property
    def current(self) -> int | None:
        """The record under the cursor."""
        return self.record_at(self.cursor) if self.row_count else None

    def render_pieces(self, row: int, width: int) -> list[Piece]:
        return self.paint(self.model.row(self.record_at(row)))

    def highlighted_message(self, row: int) -> Message | None:
        return RecordHighlighted(self.record_at(row))

    def chosen_message(self, row: int) -> Message | None:
        return RecordChosen(self.record_at(row))

    def show_all(self, count: int) -> None:
        """Show every record (``count`` of them so far)."""
        self._switch(None, count)

    def show_matches(self, matches: array[int]) -> None:
        """Show only these record indexes (sorted)."""
        self._switch(matches, len(matches))

    def _switch(self, view: Sequence[int] | None, count: int) -> None:
        keep = self.current
        self.view = view
        self.row_count = -1  # force set_row_count to act
        self.set_row_count(count)
        self.clear_cache()
        if keep is not None and count:
            self.go_to_record(keep, center=True)

    def go_to_record(self, index: int, *, center: bool = False) -> None:
        """Put the cursor on record ``index`` (or the next record shown)."""
        self.set_cursor(self.row_of(index), center=center)

    def grow(self, count: int) -> None:
        """The view now has ``count`` rows (the log grew, or more matches came in)."""
        # only a cursor already on the last row follows: one scrolled up stays put
        at_end = self.row_count == 0 or self.cursor >= self.row_count - 1
        self.set_row_count(count)
        if self.follow and at_end and count:
            self.set_cursor(count - 1)
