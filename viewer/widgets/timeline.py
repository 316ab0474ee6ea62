"""Timeline: the requests as a waterfall of bars from request to idle; the slow ones stand out.

One row per request: its record number, time, type, code and duration, then a
bar. In log order the bars are a waterfall on a time axis spanning the rows on
screen: the dim part is the wait before the kernel went busy, the solid part is
busy until idle, and the gaps between bars are the kernel sitting idle. Sorted
slowest first (``s``) the bars are durations on one scale. Requests slower than
4x the median (and at least 100 ms) are drawn in the slow colour.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip

from krec.recorder.log.oneline import one_line
from krec.viewer.exchanges import ABORTED, ERROR, ExchangeIndex
from krec.viewer.messages import RecordHighlighted, RequestChosen, TimelineWindow
from krec.viewer.model import LogModel, format_duration, format_rel
from krec.viewer.widgets.rowlist import Piece, RowList

W_LABEL = 7 + 1 + 10 + 1 + 18 + 1 + 26 + 1 + 9 + 1


class Timeline(RowList):
    """Requests as bars; Enter opens a request's thread."""

    BINDINGS: list[BindingType] = [
        Binding("s", "toggle_sort", "Sort by time/duration"),
    ]

    COMPONENT_CLASSES = RowList.COMPONENT_CLASSES | {
        "timeline--label",
        "timeline--queued",
        "timeline--busy",
        "timeline--slow",
        "timeline--running",
        "timeline--error",
    }

    def __init__(self, model: LogModel, threads: ExchangeIndex, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.threads = threads
        self.order: list[int] | None = None  # None: log order; else slowest first
        self.slow = 1 << 62
        self.window = (0, 1)
        self._log_end = 0

    # -- rows -----------------------------------------------------------------

    def update_rows(self) -> None:
        """Pick up requests threaded since the last call."""
        if self.order is not None:
            self.order = self.threads.by_duration()
        self.slow = self.threads.slow_threshold()
        n = len(self.model)
        self._log_end = self.model.row(n - 1).t + self.model.reader.start_ns if n else 0
        self.set_row_count(len(self.threads))
        self.clear_cache()

    def request_at(self, row: int) -> int:
        return self.order[row] if self.order is not None else row

    def row_of_request(self, r: int) -> int:
        return self.order.index(r) if self.order is not None else r

    @property
    def sorted_by_duration(self) -> bool:
        return self.order is not None

    def action_toggle_sort(self) -> None:
        current = self.request_at(self.cursor) if self.row_count else 0
        self.order = None if self.order is not None else self.threads.by_duration()
        self.clear_cache()
        self._window_changed()
        if self.row_count:
            self.set_cursor(self.row_of_request(current), center=True)

    def highlighted_message(self, row: int) -> Message | None:
        return RecordHighlighted(self.threads.requests[self.request_at(row)])

    def chosen_message(self, row: int) -> Message | None:
        return RequestChosen(self.request_at(row))

    # -- the time axis of the rows on screen ------------------------------------

    def _end_of(self, r: int) -> int:
        return self.threads.end(r) or self._log_end

    def render_lines(self, crop: Region) -> list[Strip]:
        self._window_changed()
        return super().render_lines(crop)

    def _window_changed(self) -> None:
        top = self.scroll_offset.y
        rows = range(top, min(top + self.scrollable_content_region.height, self.row_count))
        requests = [self.request_at(row) for row in rows]
        if not requests:
            return
        t_request = self.threads.t_request
        if self.order is None:
            window = (min(t_request[r] for r in requests), max(self._end_of(r) for r in requests))
        else:
            window = (0, max(self._end_of(r) - t_request[r] for r in requests))
        if window[1] <= window[0]:
            window = (window[0], window[0] + 1)
        if window != self.window:
            self.window = window
            self._strips.clear()
            start = self.model.reader.start_ns if self.order is None else 0
            self.post_message(TimelineWindow(window[0] - start, window[1] - start))

    # -- painting -----------------------------------------------------------------

    def render_pieces(self, row: int, width: int) -> list[Piece]:
        threads = self.threads
        r = self.request_at(row)
        index = threads.requests[r]
        rec = self.model.row(index)
        label = self.row_style("timeline--label")
        duration = threads.duration(r)
        status = threads.status[r]
        pieces: list[Piece] = [
            (f"{index:>7} {format_rel(rec.t):>10} ", label),
            (f"{rec.msg_type.removesuffix('_request')[:18]:<18} ", None),
            (f"{one_line(rec.summary, 26):<26} ", label),
        ]
        if duration < 0:
            pieces.append((f"{'running':>9} ", self.row_style("timeline--running")))
        else:
            tone = "timeline--slow" if duration >= self.slow else None
            if status in (ERROR, ABORTED):
                tone = "timeline--error"
            text = f"{format_duration(duration):>9} "
            pieces.append((text, self.row_style(tone) if tone else None))
        pieces.extend(self._bar(r, max(width - W_LABEL, 10), duration))
        return pieces

    def _bar(self, r: int, width: int, duration: int) -> list[Piece]:
        threads = self.threads
        start, end = self.window
        span = end - start
        t0 = threads.t_request[r]
        t1 = self._end_of(r)
        busy = threads.t_busy[r] or t0
        if self.order is not None:
            busy, t1, t0 = busy - t0, t1 - t0, 0

        def col(t: int) -> int:
            return max(0, min(width, round((t - start) * width / span)))

        a, b, c = min(col(t0), width - 1), col(busy), col(t1)
        c = max(c, a + 1)
        b = min(max(b, a), c)
        if b == c and threads.t_busy[r] and b > a:
            b -= 1  # a busy time too short for a cell still gets one
        if duration < 0:
            solid = "timeline--running"
        elif duration >= self.slow:
            solid = "timeline--slow"
        else:
            solid = "timeline--busy"
        return [
            (" " * a, None),
            ("╌" * (b - a), self.row_style("timeline--queued")),
            ("█" * (c - b), self.row_style(solid)),
        ]
