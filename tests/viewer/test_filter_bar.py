"""The filter bar (``/``): the language of `krec show -f`, run by the app in a worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static
from viewerpilot import run_viewer, until

from krec.recorder.filter import compile_filter
from krec.recorder.log.reader import LogReader
from krec.recorder.log.writer import LogWriter
from krec.viewer import app as app_module
from krec.viewer.app import KrecViewer


def expected(path: Path, text: str) -> list[int]:
    """What `krec show -f` would list: the filter module itself decides."""
    flt = compile_filter(text)
    with LogReader(path) as reader:
        flt.prepare(reader)
        return [r.index for r in reader if flt.matches(r)]


def shown(app: KrecViewer) -> list[int]:
    lst = app.screen.list
    return [lst.record_at(row) for row in range(lst.row_count)]


def bar_status(app: KrecViewer) -> str:
    return str(app.screen.query_one("#filter-status", Static).content)


async def apply(pilot: Pilot, app: KrecViewer, text: str) -> None:
    await pilot.press("slash")
    app.screen.query_one("#filter-input", Input).value = text
    await pilot.press("enter")
    session = app.session
    await until(pilot, lambda: session.filter is None or not session.filter.running, "the scan")
    await pilot.pause()


def test_filter_shows_the_matches(sample_log: Path) -> None:
    want = expected(sample_log, "type:execute_reply or stderr")

    async def body(app: KrecViewer, pilot: Pilot) -> None:
        app.screen.list.set_cursor(30)
        await apply(pilot, app, "type:execute_reply or stderr")
        assert shown(app) == want and len(want) == 12
        assert bar_status(app).startswith("12 matches in ")
        assert "filter: type:execute_reply or stderr" in app.screen.status_text()
        # the cursor stays near where it was: on the first match after record 30
        assert app.screen.list.current == min(i for i in want if i >= 30)
        assert app.focused is app.screen.list

    run_viewer(sample_log, body)


def test_bad_filter_says_why_and_keeps_the_result(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        await apply(pilot, app, "type:error")
        before = shown(app)
        assert len(before) == 1
        await apply(pilot, app, "type:error and ch:nope")
        assert shown(app) == before
        assert app.session.filter is not None and app.session.filter.expression == "type:error"
        status = app.screen.query_one("#filter-status", Static)
        assert status.has_class("error")
        # the caret sits under the bad value, after the input's one-cell padding
        assert str(status.content) == " " * 19 + "^ ch: must be one of shell, control, stdin, iopub"
        await apply(pilot, app, "(type:error")
        assert "'(' is never closed" in str(status.content) and shown(app) == before

    run_viewer(sample_log, body)


def test_escape_clears(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        await apply(pilot, app, "ch:stdin")
        assert len(shown(app)) == 2
        await pilot.press("escape")  # from the list
        await pilot.pause()
        assert app.session.filter is None and app.screen.list.row_count == 70
        assert not app.screen.query_one("#filter-bar").display
        await pilot.press("slash", *"ch:stdin")
        await pilot.press("escape")  # from the input
        await pilot.pause()
        assert app.session.filter is None and app.screen.list.row_count == 70
        assert app.focused is app.screen.list

    run_viewer(sample_log, body)


def test_filter_given_at_start(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        session = app.session
        await until(
            pilot, lambda: session.filter is not None and session.filter.ready, "the filter"
        )
        assert shown(app) == expected(sample_log, "ch:control")

    run_viewer(sample_log, body, filter_text="ch:control")


def test_filter_while_indexing(sample_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "FIRST_STEP", 3)
    monkeypatch.setattr(app_module, "INDEX_STEP", 4)
    want = expected(sample_log, "type:status")

    async def body(app: KrecViewer, pilot: Pilot) -> None:
        session = app.session
        await until(
            pilot, lambda: session.filter is not None and session.filter.ready, "the filter"
        )
        await until(pilot, lambda: app.screen.list.row_count == len(want), "every match")
        assert shown(app) == want

    run_viewer(sample_log, body, filter_text="type:status")


def test_new_records_are_filtered_as_they_come(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        await apply(pilot, app, "event:heartbeat_*")
        assert shown(app) == []
        with LogWriter(sample_log, append=True) as w:
            w.write_event("heartbeat_lost", t=10**18, after=3.0)
            w.write_event("heartbeat_restored", t=10**18 + 1, after=3.0)
        await until(pilot, lambda: len(shown(app)) == 2, "the new matches")
        assert shown(app) == [70, 71]

    run_viewer(sample_log, body)


def test_jump_to_a_request_the_filter_hides(sample_log: Path) -> None:
    async def body(app: KrecViewer, pilot: Pilot) -> None:
        await apply(pilot, app, "type:error")
        error = shown(app)[0]
        await pilot.press("p")
        await until(pilot, lambda: app.session.filter is None, "the filter to clear")
        await pilot.pause()
        assert app.model.row(app.screen.list.current).summary == "1 / 0"
        await pilot.press("backspace")
        assert app.screen.list.current == error

    run_viewer(sample_log, body)
