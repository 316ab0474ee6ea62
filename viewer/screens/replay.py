"""ReplayScreen (``r``): replay the log against a fresh kernel, then show the divergences.

Replaying runs the recorded code again, so it starts only when asked (Enter).
The app runs it in a worker (krec.recorder.replay.replayer) with progress; it goes on
if you leave this screen. The report lists every request pair; the panes below
show the recorded and the replayed output of the request under the cursor side
by side, the lines that differ coloured. Enter jumps to the recorded message.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import ProgressBar, Static

from krec.viewer.messages import DivergenceHighlighted, RecordChosen
from krec.viewer.screens.base import ViewerScreen
from krec.viewer.session import ViewerSession
from krec.viewer.widgets.keybar import KeyBar
from krec.viewer.widgets.report_list import ReportList

KEYS = [
    ("⏎", "Start / go to the recorded message", ""),
    ("r", "Replay again", "screen.again"),
    ("Esc", "Back to list", "screen.back"),
    ("?", "Keys", "app.help"),
    ("q", "Quit", "app.quit"),
]


class ReplayScreen(ViewerScreen):
    """Start a replay, watch it, read its report."""

    BINDINGS: list[BindingType] = [
        Binding("escape", "back", "Back to list"),
        Binding("enter", "start", "Start replay", show=False),
        Binding("r", "again", "Replay again"),
    ]

    def __init__(self, session: ViewerSession) -> None:
        super().__init__(session)
        self.shown: Any = None  # the result whose report is on screen

    @property
    def kernel_name(self) -> str:
        kernel = self.model.header.get("kernel")
        name = kernel.get("name") if isinstance(kernel, dict) else None
        return str(name or "?")

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(id="replay-info")
        yield ProgressBar(id="replay-progress", show_eta=False)
        with Horizontal(id="replay-sides"):
            with VerticalScroll():
                yield Static(id="replay-expected")
            with VerticalScroll():
                yield Static(id="replay-actual")
        yield KeyBar(KEYS)

    def on_mount(self) -> None:
        self.composed = True
        self.query_one("#status", Static).update(
            f"replay  ·  {self.model.name} against a fresh {self.kernel_name} kernel"
        )
        self.refresh_state()

    # -- what the app tells us (ScreenHooks) -----------------------------------------------------

    def replay_progress(self, done: int, total: int) -> None:
        if self.composed:
            self.query_one(ProgressBar).update(total=max(total, 1), progress=done)

    def replay_finished(self) -> None:
        if self.composed:
            self.refresh_state()

    def refresh_state(self) -> None:
        session = self.session
        info = self.query_one("#replay-info", Static)
        progress = self.query_one(ProgressBar)
        sides = self.query_one("#replay-sides")
        progress.display = session.replaying
        if session.replaying:
            sides.display = False
            info.update(
                f"replaying {self.model.name} against a fresh {self.kernel_name} kernel…  "
                "(Escape: back to the list; the replay goes on)"
            )
            return
        if session.replay_error:
            sides.display = False
            info.update(Text(f"replay failed: {session.replay_error}", style="bold red"))
            return
        result = session.replay_result
        if result is None:
            sides.display = False
            info.update(
                f"Replaying sends every recorded request of {self.model.name} again, to a "
                f"fresh {self.kernel_name} kernel (the code runs again, on this machine), "
                "records that run too, and compares the outputs.\n\n"
                "Enter starts the replay; Escape goes back."
            )
            return
        if result is not self.shown:
            self.show_report(result)

    def show_report(self, result: Any) -> None:
        self.shown = result
        report = result.report
        requests = [r for r in report.rows if r.status != "extra"]
        bad = sorted({d.request for d in report.divergences})
        if bad:
            head = Text(
                f"{len(bad)} of {len(requests)} requests diverged (first at request {bad[0]})",
                style="bold red",
            )
        else:
            head = Text(
                f"no divergence: {len(requests)} requests, all the same after normalization",
                style="bold green",
            )
        lines: list[RenderableType] = [head]
        lines.extend(Text(f"note: {n}", style="italic") for n in report.notes)
        lines.append(
            Text(
                f"replay recorded to {os.path.relpath(result.log)}  ·  wall {result.wall_time:.2f}"
                f" s for {result.busy_time:.2f} s of recorded busy time  ·  Enter on a request "
                "goes to its recorded message, r replays again",
                style="dim",
            )
        )
        self.query_one("#replay-info", Static).update(Group(*lines))
        for old in self.query(ReportList):
            old.remove()
        report_list = ReportList(report, id="replay-rows")
        self.mount(report_list, after=self.query_one("#replay-info"))
        self.query_one("#replay-sides").display = True
        report_list.focus()
        first = next((i for i, r in enumerate(report.rows) if r.status != "same"), 0)
        if report.rows:
            self.call_after_refresh(report_list.set_cursor, first, center=True)

    # -- the side-by-side panes -------------------------------------------------------

    def on_divergence_highlighted(self, message: DivergenceHighlighted) -> None:
        report_list = self.query_one(ReportList)
        item = report_list.report.rows[message.row]
        divergences = report_list.divergences_at(message.row)
        left: list[RenderableType] = [Text("recorded", style="bold underline")]
        right: list[RenderableType] = [Text("replayed", style="bold underline")]
        if not divergences:
            same = {"same": "the same after normalization", "missing": "not replayed",
                    "extra": "only in the replay"}.get(item.status, item.status)  # fmt: skip
            left.append(Text(f"request {item.request}: {same}", style="dim"))
        for d in divergences:
            title = f"\n{d.field}" + (f"  ({d.note})" if d.note else "")
            left.append(Text(title, style="bold"))
            right.append(Text(title, style="bold"))
            old, new = side_by_side(d.expected, d.actual)
            left.append(old)
            right.append(new)
            if d.expected_records:
                left.append(Text(f"records {_numbers(d.expected_records)}", style="dim"))
            if d.actual_records:
                right.append(
                    Text(f"records {_numbers(d.actual_records)} of the replay's log", style="dim")
                )
        self.query_one("#replay-expected", Static).update(Group(*left))
        self.query_one("#replay-actual", Static).update(Group(*right))

    def on_record_chosen(self, message: RecordChosen) -> None:
        message.stop()
        self.app.pop_screen()
        if isinstance(self.app.screen, ViewerScreen):
            self.app.screen.show_record(message.index)

    # -- keys ------------------------------------------------------------------------------

    def action_start(self) -> None:
        """Enter: start, unless a report is already on screen (Enter there jumps)."""
        if self.session.replay_result is None:
            self.action_again()

    def action_again(self) -> None:
        if not self.session.replaying:
            self.viewer.start_replay()
            self.refresh_state()

    def action_back(self) -> None:
        self.app.pop_screen()


def side_by_side(expected: str, actual: str) -> tuple[Text, Text]:
    """Both texts, with the lines the other side lacks coloured (red left, green right)."""
    a, b = expected.splitlines(), actual.splitlines()
    left, right = Text(), Text()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        for line in a[i1:i2]:
            left.append(line + "\n", style=None if op == "equal" else "red")
        for line in b[j1:j2]:
            right.append(line + "\n", style=None if op == "equal" else "green")
    return left, right


def _numbers(records: list[int]) -> str:
    shown = ", ".join(f"#{i}" for i in records[:8])
    return shown + (f" and {len(records) - 8} more" if len(records) > 8 else "")
