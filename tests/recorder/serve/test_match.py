"""Matching a live request to a recorded one (krec.recorder.serve.match), per strictness."""

from __future__ import annotations

from pathlib import Path

from factories import LogBuilder

from krec.recorder.log.exchange import load_session
from krec.recorder.serve.match import LOOSE, NORMAL, STRICT, Matcher, normalize_code


def test_code_normalization_per_strictness():
    code = "\n\nx = 1   \r\nif x:\r\n    y = 2\t\n\n"
    assert normalize_code(code, STRICT) == code
    assert normalize_code(code, NORMAL) == "x = 1\nif x:\n    y = 2"
    assert normalize_code(code, LOOSE) == "x=1ifx:y=2"


def test_matcher_takes_the_next_unused_then_reuses_in_order(tmp_path: Path):
    with LogBuilder(tmp_path / "m.krec") as b:
        for code in ("A", "B", "A", "A"):
            b.execute(code)
    session = load_session(str(tmp_path / "m.krec"))
    m = Matcher(session.exchanges)

    def number(code: str) -> int:
        found = m.match("execute_request", {"code": code})
        assert found is not None
        return found.exchange.number

    # after B (#2), the next unused A is the one after it (#3), then the first unused (#1)
    assert [number("B"), number("A"), number("A"), number("A")] == [2, 3, 4, 1]
    # all used: the next one after the last match, wrapping around
    assert [number("A"), number("A"), number("A")] == [3, 4, 1]
    assert m.match("execute_request", {"code": "C"}) is None


def test_matcher_strictness_and_loose_fallback(tmp_path: Path):
    with LogBuilder(tmp_path / "m.krec") as b:
        b.execute("x = 1\nprint(x)")
        b.execute("y = 2")
        b.message("complete_request", {"code": "x.re", "cursor_pos": 4})
    session = load_session(str(tmp_path / "m.krec"))
    edited = {"code": "x = 1   \r\nprint(x)\n"}
    assert Matcher(session.exchanges, STRICT).match("execute_request", edited) is None
    assert Matcher(session.exchanges, NORMAL).match("execute_request", edited) is not None
    spaced = {"code": "x=1\nprint( x )"}
    assert Matcher(session.exchanges, NORMAL).match("execute_request", spaced) is None
    loose = Matcher(session.exchanges, LOOSE)
    assert loose.match("execute_request", spaced).by == "content"
    # nothing matches "z = 3": loose takes the next unused execute_request (#2), then none is left
    fallback = loose.match("execute_request", {"code": "z = 3"})
    assert (fallback.exchange.number, fallback.by) == (2, "type")
    assert loose.match("execute_request", {"code": "z = 3"}) is None
    # complete_request matches on code and cursor
    normal = Matcher(session.exchanges)
    assert normal.match("complete_request", {"code": "x.re", "cursor_pos": 4}) is not None
    assert normal.match("complete_request", {"code": "x.re", "cursor_pos": 3}) is None
    reason = normal.unmatched_reason("execute_request", {"code": "y = 3"})
    assert "nearest is request #2 (execute_request 'y = 2')" in reason
    assert normal.unmatched_reason("history_request", {}) == "the recording has no history_request"
