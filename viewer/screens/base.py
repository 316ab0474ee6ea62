"""The screens' bases: the hooks the app calls on them, and what list screens share.

``ScreenHooks`` declares everything the app tells its screens (the log grew,
the filter changed, threading or a replay went on...), each a no-op until a
screen overrides it; the app calls them through ``KrecViewer.tell_screens``,
which accepts nothing else. ``RecordScreen`` is a screen whose list shows
records: Enter on a record opens the detail pane below the list (Enter again,
or Escape, closes it); while it is open it follows the cursor. ``c`` copies the
record as JSON to the clipboard, ``w`` writes it to a file in the current
directory. The status line on top names the log and what is running.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, cast

from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from krec.recorder.errors import FilterError
from krec.viewer.detail import describe
from krec.viewer.messages import FilterDone, FilterProgress, RecordChosen, RecordHighlighted
from krec.viewer.session import ViewerSession
from krec.viewer.widgets.detail_view import DetailView
from krec.viewer.widgets.keybar import KeyBar
from krec.viewer.widgets.records import RecordRows

if TYPE_CHECKING:
    from krec.viewer.app import KrecViewer


class ScreenHooks:
    """What the app tells its screens; a screen overrides the hooks it cares about."""

    def log_grew(self) -> None:
        """More records were indexed (or the log grew on disk)."""

    def filter_changed(self, message: FilterDone | None = None) -> None:
        """The filter was cleared, or its first scan finished (``message``)."""

    def matches_grew(self, message: FilterDone) -> None:
        """A later scan of the same filter found more matches in new records."""

    def filter_progress(self, message: FilterProgress) -> None:
        """The filter's scan went on."""

    def filter_error(self, error: FilterError) -> None:
        """The expression entered does not parse; the previous filter stays."""

    def threads_grew(self) -> None:
        """Threading went through more records."""

    def status_changed(self) -> None:
        """What runs in the background changed: the status line says it."""

    def findings_changed(self) -> None:
        """`krec check` finished: the lists mark other rows now."""

    def replay_progress(self, done: int, total: int) -> None:
        """The replay has completed ``done`` of ``total`` requests."""

    def replay_finished(self) -> None:
        """The replay ended (the session holds its result or error)."""


class ViewerScreen(ScreenHooks, Screen[None]):
    """A screen of the viewer: it reads the session's state and hears the app's hooks."""

    def __init__(self, session: ViewerSession) -> None:
        super().__init__()
        self.session = session
        self.model = session.model
        #: the widgets exist (set first thing in on_mount; the app may call in before)
        self.composed = False

    @property
    def viewer(self) -> KrecViewer:
        return cast("KrecViewer", self.app)

    @property
    def current_record(self) -> int | None:
        """The record under the cursor, if this screen has one (for ``t``)."""
        return None

    def show_record(self, index: int) -> None:
        """Coming back from another screen: put the cursor on record ``index``."""


class RecordScreen(ViewerScreen):
    """A screen whose list shows records and can open one in the detail pane."""

    BINDINGS: list[BindingType] = [
        Binding("c", "copy", "Copy JSON", show=False),
        Binding("w", "write", "Write JSON", show=False),
    ]

    def __init__(self, session: ViewerSession) -> None:
        super().__init__(session)
        self.detail_index: int | None = None

    @property
    def current_record(self) -> int | None:
        """The record under the list's cursor (subclasses say which list)."""
        raise NotImplementedError

    # -- the detail pane ----------------------------------------------------------

    @property
    def detail_open(self) -> bool:
        return any(view.display for view in self.query(DetailView))

    async def detail_view(self) -> DetailView:
        """The detail pane, mounted above the key bar the first time it is needed
        (not before: the first frame must come quickly)."""
        for view in self.query(DetailView):
            return view
        view = DetailView(id="detail")
        await self.mount(view, before=self.query_one(KeyBar))
        return view

    async def open_detail(self, index: int) -> None:
        view = await self.detail_view()
        self.detail_index = index
        detail = describe(self.model.record(index), self.model.reader.start_ns)
        detail.findings.extend(self.session.findings_for(index))
        kernel = self.model.header.get("kernel")
        language = kernel.get("language", "") if isinstance(kernel, dict) else ""
        view.show(detail, str(language or "python"))
        view.display = True

    def close_detail(self) -> None:
        for view in self.query(DetailView):
            view.display = False
        self.detail_index = None

    async def on_record_chosen(self, message: RecordChosen) -> None:
        if self.detail_open and self.detail_index == message.index:
            self.close_detail()
        else:
            await self.open_detail(message.index)

    async def on_record_highlighted(self, message: RecordHighlighted) -> None:
        if self.detail_open:
            await self.open_detail(message.index)

    # -- copy ---------------------------------------------------------------------------

    def record_json(self, index: int) -> str:
        record = self.model.record(index)
        return json.dumps(record.to_json(self.model.reader.start_ns), indent=2, default=str)

    def action_copy(self) -> None:
        index = self.current_record
        if index is None:
            return
        text = self.record_json(index)
        self.app.copy_to_clipboard(text)
        self.notify(f"record #{index} copied as JSON ({len(text):,} characters)")

    def action_write(self) -> None:
        index = self.current_record
        if index is None:
            return
        stem = os.path.splitext(self.model.name)[0]
        path = os.path.abspath(f"{stem}-{index}.json")
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.record_json(index) + "\n")
        except OSError as e:
            self.notify(f"cannot write {path}: {e.strerror}", severity="error")
            return
        self.notify(f"record #{index} written to {path}")

    # -- the status line ------------------------------------------------------------------

    def status_text(self) -> str:
        model = self.model
        parts = [model.name]
        if model.kernel_label:
            parts.append(model.kernel_label)
        count = f"{len(model):,} records"
        if not model.complete:
            count += " (indexing…)"
        parts.append(count)
        parts.extend(self.session.activity.values())
        if self.session.findings:
            parts.append(f"{self.session.findings_count} findings (n/N)")
        parts.extend(f"⚠ {w}" for w in model.warnings)
        return "  ·  ".join(parts)

    def status_changed(self) -> None:
        # query, not query_one: the app may still be telling a screen being torn down
        for status in self.query("#status").results(Static):
            status.update(self.status_text())

    def log_grew(self) -> None:
        self.status_changed()

    def findings_changed(self) -> None:
        if self.composed:
            for lst in self.query(RecordRows):
                lst.clear_cache()
            if self.detail_open and self.detail_index is not None:
                self.run_worker(self.open_detail(self.detail_index))
        self.status_changed()
