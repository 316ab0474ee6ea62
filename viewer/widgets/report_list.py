"""ReportList: the divergence report of a replay, one row per request pair.

Each row shows whether the replayed request behaved the same (✓), diverged (✗),
is missing from the replay (−) or is extra in it (+), with its type, code and
the fields that differ. Moving the cursor posts DivergenceHighlighted for the
screen's side-by-side panes; Enter posts RecordChosen for the recorded record
where the first divergence of that request shows.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from krec.recorder.log.oneline import one_line
from krec.viewer.messages import DivergenceHighlighted, RecordChosen
from krec.viewer.widgets.rowlist import Piece, RowList

MARKS = {"same": "✓", "diverged": "✗", "missing": "−", "extra": "+"}


class ReportList(RowList):
    """The report's rows; ``report`` is a krec.recorder.replay.diff.Report."""

    COMPONENT_CLASSES = RowList.COMPONENT_CLASSES | {
        "report--same",
        "report--diverged",
        "report--missing",
        "report--extra",
        "report--label",
    }

    def __init__(self, report: Any, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report = report
        self.by_request: dict[int, list[Any]] = {}
        for d in report.divergences:
            self.by_request.setdefault(d.request, []).append(d)

    def on_mount(self) -> None:
        self.set_row_count(len(self.report.rows))

    def divergences_at(self, row: int) -> list[Any]:
        item = self.report.rows[row]
        if item.status == "same":
            return []
        return self.by_request.get(item.request, [])

    def render_pieces(self, row: int, width: int) -> list[Piece]:
        item = self.report.rows[row]
        tone = self.row_style(f"report--{item.status}")
        label = self.row_style("report--label")
        other = f"→{item.other}" if item.other is not None else ""
        return [
            (f"{MARKS.get(item.status, '?')} {item.status:<8} ", tone),
            (f"{item.request:>5}{other:<6} ", label),
            (f"{item.msg_type.removesuffix('_request'):<16} ", None),
            (f"{one_line(item.code or '', 40):<40} ", label),
            (", ".join(item.fields), tone),
        ]

    def highlighted_message(self, row: int) -> Message | None:
        return DivergenceHighlighted(row)

    def chosen_message(self, row: int) -> Message | None:
        for d in self.divergences_at(row):
            if d.expected_records:
                return RecordChosen(d.expected_records[0])
        return None
