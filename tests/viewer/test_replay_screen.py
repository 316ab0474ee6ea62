"""Replay from the viewer (``r``): a real recording replayed against a fresh kernel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sessions import execute
from textual.widgets import Static
from viewerpilot import plain
from viewerpilot import until as until_20s

from krec.recorder.log.reader import LogReader
from krec.viewer.app import KrecViewer
from krec.viewer.screens.main import MainScreen
from krec.viewer.screens.replay import ReplayScreen, side_by_side
from krec.viewer.widgets.report_list import ReportList

#: a real kernel: waits go up to 30 s
until = partial(until_20s, timeout=30)


@pytest.mark.timeout(240)
def test_replay_shows_divergences_side_by_side(
    recorder: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = recorder()
    kc = rec.client()
    execute(kc, "x = 6 * 7\nprint(x)")
    execute(kc, "import random\nprint(random.random())")
    assert rec.stop() == 0, rec.stderr
    monkeypatch.chdir(tmp_path)  # the replay's own log goes to ./krec-logs

    async def main() -> None:
        app = KrecViewer(LogReader(rec.log, index=False))
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.model.complete, "the index")
            await pilot.press("r")
            assert isinstance(app.screen, ReplayScreen)
            assert not app.session.replaying  # nothing runs before the user says so
            info = str(app.screen.query_one("#replay-info", Static).content)
            assert "Enter starts the replay" in info
            await pilot.press("enter")
            assert app.session.replaying
            await until(pilot, lambda: not app.session.replaying, "the replay", timeout=180)
            assert app.session.replay_error == ""
            await until(pilot, lambda: app.screen.query(ReportList), "the report")
            screen = app.screen
            report_list = screen.query_one(ReportList)
            statuses = [r.status for r in report_list.report.rows]
            assert statuses.count("diverged") == 1, statuses
            info = plain(screen.query_one("#replay-info", Static).content)
            assert "1 of " in info and "requests diverged" in info
            # the cursor starts on the divergence; the panes show both outputs
            await until(pilot, lambda: report_list.report.rows[report_list.cursor].status
                        == "diverged", "the cursor on the divergence")  # fmt: skip
            await pilot.pause()
            (divergence,) = report_list.divergences_at(report_list.cursor)
            assert divergence.field == "stdout"
            recorded = plain(screen.query_one("#replay-expected", Static).content)
            replayed = plain(screen.query_one("#replay-actual", Static).content)
            assert divergence.expected.strip() in recorded
            assert divergence.actual.strip() in replayed
            row = report_list.render_row(report_list.cursor, 160).plain
            assert row.startswith("✗ diverged") and "print(random.random())" in row
            # Enter goes to the recorded message in the list
            await pilot.press("enter")
            assert isinstance(app.screen, MainScreen)
            assert app.screen.list.current == divergence.expected_records[0]
            # the result stays: r shows the same report again
            await pilot.press("r")
            assert app.screen.query_one(ReportList).report is report_list.report

    asyncio.run(main())
    assert list((tmp_path / "krec-logs").glob("session-replay-*.krec"))


def test_side_by_side_colours_only_the_lines_that_differ() -> None:
    left, right = side_by_side("a\nb\nc", "a\nB\nc\nd")
    assert left.plain == "a\nb\nc\n" and right.plain == "a\nB\nc\nd\n"
    red = [left.plain[s.start : s.end] for s in left.spans if s.style == "red"]
    green = [right.plain[s.start : s.end] for s in right.spans if s.style == "green"]
    assert red == ["b\n"] and green == ["B\n", "d\n"]
