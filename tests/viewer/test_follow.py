"""Following a live recording: `krec record` writes while the viewer shows the new records."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from viewerpilot import until as until_20s

from krec.recorder.log.reader import LogReader
from krec.viewer.app import KrecViewer
from krec.viewer.screens.main import MainScreen

#: a live recording: waits go up to 30 s
until = partial(until_20s, timeout=30)


@pytest.mark.timeout(180)
def test_follow_a_live_recording(recorder: Callable[..., Any]) -> None:
    rec = recorder()
    kc = rec.client()

    async def main() -> None:
        app = KrecViewer(LogReader(rec.log, index=False), follow=True)

        async def run_cell(code: str) -> None:
            # send only: the blocking client must not wait inside the app's event loop
            # (a helper thread would leave an event loop behind); the log shows the rest
            kc.execute(code)

        def shown(text: str, since: int) -> bool:
            model = app.model
            return any(text in model.row(i).summary for i in range(since, len(model)))

        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.model.complete, "the index")
            screen = app.screen
            assert isinstance(screen, MainScreen)
            before = len(app.model)
            await run_cell("print('hello from the test')")
            await until(pilot, lambda: shown("hello from the test", before), "the new output")
            await until(pilot, lambda: screen.list.row_count == len(app.model), "the new rows")
            # following: the cursor went along to the newest record
            assert screen.list.cursor == screen.list.row_count - 1
            assert "following" in screen.status_text()

            # scrolled up, the cursor stays where the user put it
            screen.list.set_cursor(2)
            before = len(app.model)
            await run_cell("print('second cell')")
            await until(pilot, lambda: shown("second cell", before), "the second output")
            await until(pilot, lambda: screen.list.row_count == len(app.model), "more rows")
            assert screen.list.cursor == 2

            # threads grow with the log too
            await pilot.press("t")
            await until(pilot, lambda: app.screen is not screen, "the thread view")
            threads = app.screen
            requests = len(app.threads or ())
            before = len(app.model)
            await run_cell("print('third cell')")
            await until(pilot, lambda: len(app.threads or ()) > requests, "the new request")
            last = app.threads.requests[-1]  # type: ignore[union-attr]
            assert app.model.row(last).summary == "print('third cell')"
            await until(pilot, lambda: threads.list.row_count == app.threads.row_count(), "rows")

    try:
        asyncio.run(main())
    finally:
        assert rec.stop() == 0, rec.stderr
