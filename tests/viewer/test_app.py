"""The viewer driven with Pilot on the fixed sample session: list, detail, threads, timeline."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static
from viewerpilot import plain, run_viewer, until

from krec.recorder.log.reader import LogReader
from krec.viewer import app as app_module
from krec.viewer.app import KrecViewer
from krec.viewer.exchanges import ExchangeIndex
from krec.viewer.screens.help import HelpScreen
from krec.viewer.screens.main import MainScreen
from krec.viewer.screens.threads import ThreadScreen
from krec.viewer.screens.timeline import TimelineScreen
from krec.viewer.widgets.detail_view import JsonTree


def row_text(screen: Any, row: int) -> str:
    return screen.list.render_row(row, 200).plain


def index_of(app: KrecViewer, msg_type: str, n: int = 0) -> int:
    found = [i for i in range(len(app.model)) if app.model.row(i).msg_type == msg_type]
    return found[n]


def test_main_screen_lists_every_record(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        assert screen.list.row_count == 70
        status = str(screen.query_one("#status", Static).content)
        assert "session.krec" in status and "Python 3 (ipykernel)" in status
        assert "70 records" in status
        assert "★ kernel_started" in row_text(screen, 0)
        request = row_text(screen, 7)
        assert "shell   → execute_request" in request and request.endswith("x = 21")
        assert "iopub   ← stream" in row_text(screen, 16)
        assert "stderr: stderr line" in row_text(screen, 16)
        sub = index_of(app, "execute_request", 8)
        assert "[sub sub-1] y = 1" in row_text(screen, sub)
        await pilot.press("end")
        assert screen.list.cursor == 69
        await pilot.press("home")
        assert screen.list.cursor == 0
        await pilot.press("pagedown")
        assert screen.list.cursor == screen.list.page
        await pilot.press("G")
        assert screen.list.cursor == 69
        await pilot.press("g", "j", "j", "k")
        assert screen.list.cursor == 1

    run_viewer(sample_log, body)


def test_index_grows_in_steps(sample_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "FIRST_STEP", 5)
    monkeypatch.setattr(app_module, "INDEX_STEP", 7)

    async def body(app: KrecViewer, pilot: Pilot) -> None:
        await until(pilot, lambda: app.screen.list.row_count == 70, "every row")

    run_viewer(sample_log, body)


def test_detail_pane_shows_the_record(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        screen = app.screen
        error = index_of(app, "error")
        screen.list.set_cursor(error)
        await pilot.press("enter")
        await pilot.pause()
        assert screen.detail_open and screen.detail_index == error
        text = plain(screen.query_one("#detail-body", Static).content)
        assert "ZeroDivisionError: division by zero" in text
        assert "Traceback (most recent call last)" in text
        assert "\x1b" not in text and "[0;31m" not in text  # ANSI rendered, not shown
        tree = screen.query_one(JsonTree)
        sections = [str(node.label).split(" ")[0] for node in tree.root.children]
        assert sections == ["header", "parent_header", "metadata", "content"]
        content = tree.root.children[3]
        assert content.is_expanded
        assert any("division by zero" in str(n.label) for n in content.children)
        # the pane follows the cursor while it is open
        await pilot.press("down")
        assert screen.detail_index == error + 1
        await pilot.press("escape")
        assert not screen.detail_open
        # an image is noted with its type, size and dimensions
        screen.list.set_cursor(index_of(app, "display_data"))
        await pilot.press("enter")
        await pilot.pause()
        text = plain(screen.query_one("#detail-body", Static).content)
        assert "image/png: 26 bytes, 640×480" in text
        await pilot.press("enter")
        assert not screen.detail_open

    run_viewer(sample_log, body)


def test_write_record_as_json(
    sample_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    async def body(app: KrecViewer, pilot: Pilot) -> None:
        app.screen.list.set_cursor(7)
        await pilot.press("w")
        await pilot.press("c")  # the clipboard: headless, but it must not fail

    run_viewer(sample_log, body)
    data = json.loads((tmp_path / "session-7.json").read_text())
    assert data["index"] == 7
    assert data["header"]["msg_type"] == "execute_request"
    assert data["content"]["code"] == "x = 21"


def test_thread_view_and_back(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        main = app.screen
        stream = index_of(app, "stream", 1)  # the stderr line of the second cell
        main.list.set_cursor(stream)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ThreadScreen), "the thread view")
        threads = app.screen
        assert threads.current_record == stream
        rows = [threads.list.render_row(r, 200).plain for r in range(threads.list.row_count)]
        assert len(rows) == 64  # the 5 events and the orphan output belong to no request
        request = index_of(app, "execute_request", 1)
        start = threads.threads.row_of(request)
        assert rows[start].startswith("▶ ") and "✓6.0ms" in rows[start]
        cell = [threads.list.record_at(row) for row in range(start, start + 7)]
        assert [app.model.row(i).msg_type for i in cell] == [
            "execute_request",
            "status",
            "execute_input",
            "stream",
            "stream",
            "execute_reply",
            "status",
        ]
        assert all(row.startswith("  ") for row in rows[start + 1 : start + 7])
        assert rows[start + 7].startswith("▶ ")  # the next request
        # stdin belongs to its cell: the input_reply through its input_request
        reply = index_of(app, "input_reply")
        owner = threads.threads.request_of(reply)
        assert app.model.row(threads.threads.requests[owner]).summary.startswith("name = input")
        await pilot.press("right_square_bracket")
        assert threads.current_record == index_of(app, "execute_request", 2)
        await pilot.press("down", "left_square_bracket")  # from a member: to its request
        assert threads.current_record == index_of(app, "execute_request", 2)
        await pilot.press("left_square_bracket")  # from a request: to the one before
        assert threads.current_record == index_of(app, "execute_request", 1)
        await pilot.press("enter")
        assert threads.detail_open
        await pilot.press("escape")  # closes the detail first
        assert isinstance(app.screen, ThreadScreen) and not threads.detail_open
        await pilot.press("escape")
        assert app.screen is main
        assert main.list.current == index_of(app, "execute_request", 1)

    run_viewer(sample_log, body)


def test_jump_to_request_and_back(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        main = app.screen
        idle = index_of(app, "execute_reply", 2)
        main.list.set_cursor(idle)
        await pilot.press("p")
        await until(pilot, lambda: main.list.current != idle, "the jump")
        assert main.list.current == index_of(app, "execute_request", 2)
        await pilot.press("p")  # on a request: it stays
        assert main.list.current == index_of(app, "execute_request", 2)
        await pilot.press("backspace")
        assert main.list.current == idle
        main.list.set_cursor(0)  # an event answers no request
        await pilot.press("p")
        await pilot.pause()
        assert main.list.current == 0

    run_viewer(sample_log, body)


def test_timeline_spots_the_slow_cell(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, TimelineScreen), "the timeline")
        screen = app.screen
        timeline = screen.timeline
        assert timeline.row_count == 13
        summary = str(screen.query_one("#status", Static).content)
        assert "13 requests in log order" in summary and "slowest 2.00 s" in summary
        slow_row = next(r for r in range(13) if "time.sleep" in timeline.render_row(r, 140).plain)
        line = timeline.render_row(slow_row, 140)
        assert "2.00 s" in line.plain and "█" in line.plain
        bar_style = timeline.row_style("timeline--slow")
        assert any(span.style == bar_style for span in line.spans)
        await pilot.press("s")
        await pilot.pause()
        assert "slowest first" in str(screen.query_one("#status", Static).content)
        assert "running" in timeline.render_row(0, 140).plain
        assert "time.sleep" in timeline.render_row(2, 140).plain
        timeline.set_cursor(2)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ThreadScreen), "the thread")
        assert app.model.row(app.screen.current_record).summary.startswith("import time")
        await pilot.press("escape")
        assert app.screen is screen and timeline.cursor == 2
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)

    run_viewer(sample_log, body, size=(140, 40))


def test_goto_time_and_record(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        main = app.screen
        await pilot.press("colon", *"#10", "enter")
        assert main.list.current == 10
        await pilot.press("colon", *"2", "enter")
        assert main.list.current == 40  # the first record at or after 2 s (the slow cell)
        await pilot.press("backspace")
        assert main.list.current == 10
        await pilot.press("colon", *"soon", "enter")
        assert main.list.current == 10

    run_viewer(sample_log, body)


def test_help_lists_keys_and_closes(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = plain(app.screen.query_one("#help Static", Static).content)
        for what in ("filter", "thread view", "timeline", "follow", "replay", "quit"):
            assert what in text
        await pilot.press("x")
        assert isinstance(app.screen, MainScreen)

    run_viewer(sample_log, body)


def test_quit(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the app to quit")

    run_viewer(sample_log, body)


def test_check_findings_mark_rows(sample_log: Path) -> None:
    from krec.recorder.check import run_checks

    with LogReader(sample_log) as reader:
        expected = run_checks(reader)
    by_index: dict[int, list[Any]] = {}
    for finding in expected:
        by_index.setdefault(finding.index, []).append(finding)
    # the sample's last cell never finished: `krec check` has that to say at least
    assert any(f.rule == "no-reply" for f in expected)
    first = min(by_index)

    async def body(app: KrecViewer, pilot: Pilot) -> None:
        screen = app.screen
        await until(pilot, lambda: app.session.checked == len(app.model), "krec check", timeout=60)
        assert sorted(app.session.findings) == sorted(by_index)
        for index, found in by_index.items():
            error = any(f.severity == "error" for f in found)
            assert row_text(screen, index).startswith("✗ " if error else "⚠ ")
        clean = next(i for i in range(len(app.model)) if i not in by_index)
        assert row_text(screen, clean).startswith("  ")
        assert f"{len(expected)} findings (n/N)" in screen.status_text()
        await pilot.press("n")
        assert screen.list.current == first
        await pilot.press("enter")
        await pilot.pause()
        text = plain(screen.query_one("#detail-body", Static).content)
        for finding in by_index[first]:
            assert f"{finding.severity} {finding.rule}: {finding.text}" in text
        await pilot.press("N")  # none above: the cursor stays
        assert screen.list.current == first

    run_viewer(sample_log, body)


def test_mouse_selects_and_opens(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        screen = app.screen
        await pilot.click("#messages", offset=(20, 5))
        assert screen.list.cursor == 5
        await pilot.click("#messages", offset=(20, 7), times=2)
        await pilot.pause()
        assert screen.list.cursor == 7 and screen.detail_open and screen.detail_index == 7
        await pilot.click("KeyBar", offset=(12, 0))  # "/ Filter"
        await pilot.pause()
        assert app.focused is screen.query_one("#filter-input")

    run_viewer(sample_log, body)


def test_thread_view_opens_before_threading_ends(
    sample_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a big log in miniature: threaded on demand, a few records a step
    monkeypatch.setattr(app_module, "THREADS_AUTO_LIMIT", 0)
    monkeypatch.setattr(app_module, "THREAD_STEP", 4)
    monkeypatch.setattr(app_module, "THREAD_MARGIN", 6)
    update = ExchangeIndex.update
    opened = threading.Event()

    def paced(self: ExchangeIndex, *args: Any, **kw: Any) -> None:
        # threading stops past what the view needs (cursor 9 + margin 6) until the view has
        # opened: it opens before threading ends however the threads are scheduled
        if self.done >= 16:
            opened.wait(60)
        update(self, *args, **kw)

    monkeypatch.setattr(ExchangeIndex, "update", paced)

    async def body(app: KrecViewer, pilot: Pilot) -> None:
        assert app.threads is None
        threaded_at_open: list[int] = []
        push = app.push_screen

        def pushed(screen: Any, *args: Any, **kw: Any) -> Any:
            threaded_at_open.append(app.threads.done if app.threads else -1)
            opened.set()
            return push(screen, *args, **kw)

        monkeypatch.setattr(app, "push_screen", pushed)
        app.screen.list.set_cursor(9)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ThreadScreen), "the thread view")
        screen = app.screen
        await until(pilot, lambda: screen.composed, "the thread view's widgets")
        assert threaded_at_open[0] == 16 < len(app.model)
        assert screen.current_record == 9
        await until(pilot, lambda: app.threads.done == len(app.model), "threading to end")
        await until(pilot, lambda: screen.list.row_count == 64, "every thread row")
        assert screen.current_record == 9

    run_viewer(sample_log, body)
