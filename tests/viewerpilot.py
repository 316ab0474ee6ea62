"""Helpers for the viewer's Pilot tests: wait for a condition, run the app on a log, plain text."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot

from krec.recorder.log.reader import LogReader
from krec.viewer.app import KrecViewer

Body = Callable[[KrecViewer, Pilot], Awaitable[None]]


async def until(pilot: Pilot, predicate: Callable[[], object], what: str, timeout: float = 20):
    """Let the app run until ``predicate()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def run_viewer(path: Path, body: Body, size: tuple[int, int] = (160, 48), **kw: Any) -> None:
    """Run the viewer on ``path`` until its index is complete, then ``body``."""

    async def main() -> None:
        app = KrecViewer(LogReader(path, index=False), **kw)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.model.complete, "the index")
            await pilot.pause()
            await body(app, pilot)

    asyncio.run(main())


def plain(renderable: Any, width: int = 200) -> str:
    """What ``renderable`` prints as, without colours."""
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()
