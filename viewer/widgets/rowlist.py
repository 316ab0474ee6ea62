"""RowList: a virtual list of one-line rows with a cursor, the base of every list in the viewer.

Built on Textual's line API: only the rows on screen are rendered, each on
demand through ``render_pieces``, so the list can be a million rows long. A row
is a list of (text, style) pieces turned straight into segments (no rich Text
layout on the hot path: a page of new rows must render in a few ms). RowList
owns the cursor, keys (arrows, vi keys, pages, Home/End, g/G), mouse (click to
move, double click to choose) and scrolling; subclasses say how many rows there
are, how a row looks and what message a highlighted or chosen row posts.
"""

from __future__ import annotations

from collections import OrderedDict

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

STRIP_CACHE = 512

#: a piece of a row: its text and style (None: the list's own)
Piece = tuple[str, Style | None]


def fit(pieces: list[Piece], width: int, base: Style) -> list[Segment]:
    """Segments of exactly ``width`` cells: cut with an ellipsis, or padded."""
    out: list[Segment] = []
    remaining = width
    for text, style in pieces:
        if remaining <= 0:
            break
        n = cell_len(text)
        if n > remaining:
            text = set_cell_size(text, remaining - 1) + "…"
            n = remaining
        out.append(Segment(text, base + style if style is not None else base))
        remaining -= n
    if remaining > 0:
        out.append(Segment(" " * remaining, base))
    return out


class RowList(ScrollView, can_focus=True):
    """A cursor over ``row_count`` rows; subclasses implement ``render_row``."""

    BINDINGS: list[BindingType] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
        Binding("pagedown,ctrl+f,space", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("enter", "choose", "Open"),
    ]

    COMPONENT_CLASSES = {"rowlist--cursor", "rowlist--cursor-blurred"}

    cursor: reactive[int] = reactive(0, repaint=False, init=False)

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.row_count = 0
        self._base = Style()
        self._strips: OrderedDict[tuple[int, int, bool, bool], Strip] = OrderedDict()

    # -- what subclasses provide ----------------------------------------------

    def render_pieces(self, row: int, width: int) -> list[Piece]:
        """The styled pieces of ``row`` (at most ``width`` cells are shown)."""
        raise NotImplementedError

    def render_row(self, row: int, width: int) -> Text:
        """``row`` as rich Text (what the screen shows, for tests and copying)."""
        return Text.assemble(*self.render_pieces(row, width), no_wrap=True, end="")

    def highlighted_message(self, row: int) -> Message | None:
        """The message to post when the cursor lands on ``row``."""
        return None

    def chosen_message(self, row: int) -> Message | None:
        """The message to post when ``row`` is chosen (Enter, double click)."""
        return None

    # -- size and caching -----------------------------------------------------

    def set_row_count(self, count: int) -> None:
        """Grow or shrink the list to ``count`` rows; keeps the cursor where it can."""
        if count == self.row_count:
            return
        self.row_count = count
        self.virtual_size = Size(self.size.width, count)
        if self.cursor >= count:
            self.set_cursor(max(count - 1, 0), post=False)
        self.refresh()

    def clear_cache(self) -> None:
        """Forget rendered rows (after the rows' content or styles changed)."""
        self._strips.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        self._strips.clear()
        super().notify_style_update()

    def _on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.row_count)
        self._strips.clear()
        # a detail pane opening below shrinks the list: keep the cursor in sight
        self.call_after_refresh(self.scroll_to_cursor)

    # -- rendering ----------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # the widget's style walks the DOM: look it up once per render, not once per row
        self._base = self.rich_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        row = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if row >= self.row_count or width <= 0:
            return Strip.blank(width, self._base)
        selected = row == self.cursor
        key = (row, width, selected, self.has_focus)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._make_strip(row, width, selected)
            self._strips[key] = strip
            if len(self._strips) > STRIP_CACHE:
                self._strips.popitem(last=False)
        return strip

    def _make_strip(self, row: int, width: int, selected: bool) -> Strip:
        # no per-row meta for the mouse (Strip.apply_meta costs more than the rest of a
        # row together): a click finds its row from its position
        strip = Strip(fit(self.render_pieces(row, width), width, self._base), width)
        if selected:
            name = "rowlist--cursor" if self.has_focus else "rowlist--cursor-blurred"
            strip = strip.apply_style(self.get_component_rich_style(name))
        return strip

    def row_style(self, name: str) -> Style:
        """The rich style of a component class (cached by Textual)."""
        return self.get_component_rich_style(name, partial=True)

    def _on_focus(self, event: events.Focus) -> None:
        self.refresh_row(self.cursor)

    def _on_blur(self, event: events.Blur) -> None:
        self.refresh_row(self.cursor)

    def refresh_row(self, row: int) -> None:
        self.refresh(Region(0, row - self.scroll_offset.y, self.size.width, 1))

    # -- the cursor ---------------------------------------------------------------

    def set_cursor(self, row: int, *, post: bool = True, center: bool = False) -> None:
        """Move the cursor to ``row`` (clamped) and scroll it into view."""
        row = max(0, min(row, self.row_count - 1))
        old = self.cursor
        self.set_reactive(RowList.cursor, row)
        self.refresh_row(old)
        self.refresh_row(row)
        self.scroll_to_cursor(center=center)
        if post and (row != old or center):
            message = self.highlighted_message(row)
            if message is not None:
                self.post_message(message)

    def scroll_to_cursor(self, center: bool = False) -> None:
        height = self.scrollable_content_region.height
        top = self.scroll_offset.y
        row = self.cursor
        if center and height:
            self.scroll_to(y=max(row - height // 2, 0), animate=False, force=True)
        elif row < top:
            self.scroll_to(y=row, animate=False, force=True)
        elif height and row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False, force=True)

    @property
    def page(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def action_cursor_up(self) -> None:
        self.set_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.set_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.scroll_to(y=self.scroll_offset.y - self.page, animate=False, force=True)
        self.set_cursor(self.cursor - self.page)

    def action_page_down(self) -> None:
        self.scroll_to(y=self.scroll_offset.y + self.page, animate=False, force=True)
        self.set_cursor(self.cursor + self.page)

    def action_first(self) -> None:
        self.set_cursor(0)

    def action_last(self) -> None:
        self.set_cursor(self.row_count - 1)

    def action_choose(self) -> None:
        if self.row_count:
            message = self.chosen_message(self.cursor)
            if message is not None:
                self.post_message(message)

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = self.scroll_offset.y + offset.y
        if not 0 <= row < self.row_count:
            return
        self.focus()
        self.set_cursor(row)
        if event.chain >= 2:
            self.action_choose()
