"""Snapshot tests: the look of the main screens on the fixed sample session.

Run `pytest tests/viewer/test_snapshots.py --snapshot-update` after an intended change
of look, and check the SVGs under __snapshots__ (pytest writes a report to compare).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from krec.recorder.log.reader import LogReader
from krec.viewer.app import KrecViewer
from krec.viewer.screens.threads import ThreadScreen
from krec.viewer.screens.timeline import TimelineScreen

SIZE = (140, 40)
Snap = Callable[..., bool]


def viewer(path: Path) -> KrecViewer:
    return KrecViewer(LogReader(path, index=False))


async def wait(pilot: Pilot, predicate: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def settled(pilot: Pilot) -> None:
    """Wait for the background work (index, threads, krec check) that changes the look."""
    app = pilot.app
    assert isinstance(app, KrecViewer)
    await wait(pilot, lambda: app.model.complete and app.threads is not None)
    await wait(pilot, lambda: not app.session.activity and app.session.checked == len(app.model))
    await pilot.pause()


def on_record(index: int, *keys: str) -> Callable[[Pilot], Any]:
    async def run_before(pilot: Pilot) -> None:
        await settled(pilot)
        pilot.app.screen.list.set_cursor(index)
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


def test_main_screen(snap_compare: Snap, sample_log: Path) -> None:
    assert snap_compare(viewer(sample_log), terminal_size=SIZE, run_before=settled)


def test_detail_of_an_error(snap_compare: Snap, sample_log: Path) -> None:
    assert snap_compare(viewer(sample_log), terminal_size=SIZE, run_before=on_record(34, "enter"))


def test_thread_view(snap_compare: Snap, sample_log: Path) -> None:
    async def run_before(pilot: Pilot) -> None:
        await settled(pilot)
        pilot.app.screen.list.set_cursor(16)
        await pilot.press("t")
        await wait(pilot, lambda: isinstance(pilot.app.screen, ThreadScreen))
        await pilot.pause()

    assert snap_compare(viewer(sample_log), terminal_size=SIZE, run_before=run_before)


def test_timeline(snap_compare: Snap, sample_log: Path) -> None:
    async def run_before(pilot: Pilot) -> None:
        await settled(pilot)
        await pilot.press("l")
        await wait(pilot, lambda: isinstance(pilot.app.screen, TimelineScreen))
        await pilot.pause()

    assert snap_compare(viewer(sample_log), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare: Snap, sample_log: Path) -> None:
    async def run_before(pilot: Pilot) -> None:
        await settled(pilot)
        await pilot.press("question_mark")

    assert snap_compare(viewer(sample_log), terminal_size=SIZE, run_before=run_before)
