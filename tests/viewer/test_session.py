"""ViewerSession without a UI: filter set/clear/error and rescans, findings, replay state;
and the app's screen hooks, which accept only what ScreenHooks declares."""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import LogBuilder, error, stream

from krec.recorder.check import run_checks
from krec.recorder.errors import FilterError
from krec.recorder.filter import compile_filter
from krec.recorder.log.reader import LogReader
from krec.recorder.replay.diff import compare
from krec.recorder.replay.replayer import ReplayResult
from krec.viewer import session as session_module
from krec.viewer.app import KrecViewer
from krec.viewer.model import LogModel
from krec.viewer.screens.base import RecordScreen, ScreenHooks, ViewerScreen
from krec.viewer.screens.main import MainScreen
from krec.viewer.screens.replay import ReplayScreen
from krec.viewer.screens.threads import ThreadScreen
from krec.viewer.screens.timeline import TimelineScreen
from krec.viewer.session import ViewerSession


def write_cells(b: LogBuilder, answer: str = "42\n") -> None:
    b.event("kernel_started", pid=4343)
    b.execute("print(6 * 7)", [stream(answer)], count=1)
    b.execute("1 / 0", [error()], status="error", count=2)
    b.message("execute_request", {"code": "while True: pass"})  # never answered


def indexed(path: Path) -> LogModel:
    model = LogModel(LogReader(path, index=False))
    while model.index_more(1000):
        pass
    return model


@pytest.fixture
def session(tmp_path: Path) -> Iterator[ViewerSession]:
    with LogBuilder(tmp_path / "cells.krec") as b:
        write_cells(b)
    model = indexed(b.path)
    yield ViewerSession(model)
    model.close()


def never() -> threading.Event:
    return threading.Event()


def scan(session: ViewerSession, generation: int) -> bool | None:
    """One scan of the active filter as the app runs it (start, run, done)."""
    flt = session.filter
    assert flt is not None
    start = session.start_scan(flt)
    result = session.run_scan(flt, start, lambda done, total: None, never())
    assert result is not None
    matches, scanned, seconds = result
    assert scanned == len(session.model) and seconds >= 0
    return session.scan_done(generation, matches, scanned)


def expected_matches(session: ViewerSession, expression: str) -> list[int]:
    return list(compile_filter(expression).scan(session.model.reader))


# -- the filter ----------------------------------------------------------------------------


def test_filter_set_scans_and_clears(session: ViewerSession) -> None:
    assert session.filter is None
    flt = session.set_filter("type:error")
    assert flt is session.filter and flt.expression == "type:error"
    assert not flt.ready and not flt.running and flt.scanned == 0
    assert session.filter_to_rescan() is flt  # nothing scanned yet
    assert scan(session, flt.generation) is True  # the first matches
    assert flt.ready and not flt.running
    assert list(flt.matches) == expected_matches(session, "type:error") != []
    assert session.filter_to_rescan() is None  # every record looked at
    assert session.set_filter("") is None
    assert session.filter is None and session.filter_of(flt.generation) is None


def test_bad_filter_raises_and_keeps_the_previous_one(session: ViewerSession) -> None:
    flt = session.set_filter("type:error")
    with pytest.raises(FilterError) as caught:
        session.set_filter("type:error and ch:nope")
    assert caught.value.expression == "type:error and ch:nope"
    assert caught.value.position >= 0
    assert session.filter is flt and session.filter_of(flt.generation) is flt


def test_a_stale_scan_reports_to_no_one(session: ViewerSession) -> None:
    old = session.set_filter("type:status")
    assert old is not None
    start = session.start_scan(old)
    result = session.run_scan(old, start, lambda done, total: None, never())
    assert result is not None
    new = session.set_filter("type:error")
    assert new is not None and new.generation > old.generation
    assert session.filter_of(old.generation) is None
    assert session.scan_done(old.generation, result[0], result[1]) is None
    assert not new.ready and len(new.matches) == 0
    session.clear_filter()
    assert session.scan_done(new.generation, result[0], result[1]) is None


def test_a_growing_log_is_scanned_again(tmp_path: Path) -> None:
    b = LogBuilder(tmp_path / "live.krec")
    write_cells(b)
    b.flush()
    model = indexed(b.path)
    session = ViewerSession(model)
    flt = session.set_filter("type:stream")
    assert flt is not None
    assert scan(session, flt.generation) is True
    assert len(flt.matches) == 1
    b.execute("print('again')", [stream("again\n")], count=3)
    b.close()
    assert model.grow()
    assert session.filter_to_rescan() is flt
    assert scan(session, flt.generation) is False  # more matches, not the first
    assert list(flt.matches) == expected_matches(session, "type:stream")
    assert len(flt.matches) == 2
    model.close()


def test_a_closed_log_is_not_scanned(session: ViewerSession) -> None:
    flt = session.set_filter("type:stream")
    assert flt is not None
    session.model.close()
    assert session.run_scan(flt, 0, lambda done, total: None, never()) is None
    assert session.run_checks(lambda done, total: None) is None


# -- krec check ----------------------------------------------------------------------------


def test_findings(session: ViewerSession) -> None:
    assert session.checked == -1 and not session.findings and session.findings_count == 0
    assert session.start_check()
    assert session.checking and not session.start_check()  # one at a time
    result = session.run_checks(lambda done, total: None)
    assert result is not None
    findings, checked = result
    assert checked == len(session.model)
    expected = run_checks(session.model.reader)
    assert [(f.rule, f.index) for f in findings] == [(f.rule, f.index) for f in expected]
    assert any(f.rule == "no-reply" for f in findings)  # the cell that never finished
    session.checks_done(findings, checked)
    assert not session.checking and session.checked == checked
    assert session.findings_count == len(findings)
    assert sorted(session.findings) == sorted({f.index for f in findings})
    first = findings[0]
    lines = session.findings_for(first.index)
    assert any(line.startswith(f"{first.severity} {first.rule}: {first.text}") for line in lines)
    assert session.findings_for(0) == []  # kernel_started: nothing wrong
    assert not session.start_check()  # nothing new to check
    # a broken rule: the findings so far stay
    session.checks_done([], 0, "RuntimeError: boom")
    assert session.checked == checked and session.findings_count == len(findings)


def test_findings_name_related_records(session: ViewerSession) -> None:
    result = session.run_checks(lambda done, total: None)
    assert result is not None
    session.checks_done(*result)
    related = next(f for f in result[0] if f.related)
    see = ", ".join(f"#{i}" for i in related.related)
    assert f"{related.severity} {related.rule}: {related.text}  (see {see})" in (
        session.findings_for(related.index)
    )


def test_big_logs_are_checked_when_asked(
    session: ViewerSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "CHECK_AUTO_LIMIT", 0)
    assert not session.start_check()
    assert session.start_check(asked=True)
    session.checks_done([], len(session.model))
    assert session.checked == len(session.model) and session.findings == {}


def test_no_check_before_the_index_is_complete(tmp_path: Path) -> None:
    with LogBuilder(tmp_path / "cells.krec") as b:
        write_cells(b)
    model = LogModel(LogReader(b.path, index=False))
    model.index_more(3)
    session = ViewerSession(model)
    assert not model.complete and not session.start_check(asked=True)
    model.close()


# -- replay --------------------------------------------------------------------------------


def result_of(recorded: Path, replayed: Path) -> ReplayResult:
    report = compare(str(recorded), str(replayed))
    return ReplayResult(str(replayed), report, wall_time=0.1, busy_time=0.1, notes=[])


def test_replay_state(session: ViewerSession, tmp_path: Path) -> None:
    assert not session.replaying and session.replay_result is None
    assert session.start_replay()
    assert session.replaying and not session.start_replay()  # one at a time
    assert session.replay_done(None, "no kernel named python3") == (
        "replay failed: no kernel named python3",
        "error",
    )
    assert not session.replaying and session.replay_error == "no kernel named python3"
    assert session.replay_result is None

    recorded = session.model.path
    with LogBuilder(tmp_path / "same.krec") as b:
        write_cells(b)
    with LogBuilder(tmp_path / "other.krec") as b:
        write_cells(b, answer="43\n")
    assert session.start_replay()
    assert session.replay_error == ""  # a new replay forgets the last one's failure
    same = result_of(Path(recorded), tmp_path / "same.krec")
    assert session.replay_done(same) == ("replay done: no divergence", "information")
    assert session.replay_result is same and session.replay_error == ""
    assert session.start_replay() and session.replay_result is None
    other = result_of(Path(recorded), tmp_path / "other.krec")
    assert session.replay_done(other) == ("replay done: 1 requests diverged", "warning")
    assert session.replay_result is other


def test_activity(session: ViewerSession) -> None:
    session.set_activity("check", "checking 40%")
    session.set_activity("replay", "replaying 1/3")
    assert list(session.activity.values()) == ["checking 40%", "replaying 1/3"]
    session.set_activity("check", "")
    session.set_activity("threads", "")  # never started: nothing to forget
    assert session.activity == {"replay": "replaying 1/3"}


# -- screen hooks --------------------------------------------------------------------------


def test_tell_screens_takes_only_declared_hooks(session: ViewerSession) -> None:
    app = KrecViewer(session.model.reader)
    app.tell_screens(ScreenHooks.log_grew)  # not running: told no one, and no error
    with pytest.raises(AttributeError):
        app.tell_screens(ScreenHooks.log_grow)  # type: ignore[attr-defined]
    for not_a_hook in (MainScreen.log_grew, RecordScreen.status_text, print):
        with pytest.raises(TypeError, match="not one of the ScreenHooks"):
            app.tell_screens(not_a_hook)  # type: ignore[arg-type]
    app.model.close()


HOOK_LIKE = re.compile(r"_(grew|changed|progress|finished|error)$")


@pytest.mark.parametrize(
    "screen", [ViewerScreen, RecordScreen, MainScreen, ThreadScreen, TimelineScreen, ReplayScreen]
)
def test_screens_override_only_declared_hooks(screen: type[ViewerScreen]) -> None:
    # a misspelt override would never be called: every hook-like name must be declared
    declared = {name for name, _ in inspect.getmembers(ScreenHooks, inspect.isfunction)}
    own = {name for name in vars(screen) if HOOK_LIKE.search(name)}
    assert own <= declared, own - declared
    for name in own & declared:
        ours = inspect.signature(getattr(screen, name))
        theirs = inspect.signature(getattr(ScreenHooks, name))
        assert list(ours.parameters) == list(theirs.parameters), name
