"""The exchange model: a log grouped into requests and what answered them."""

from __future__ import annotations

from pathlib import Path

from factories import LogBuilder, stream

from krec.recorder.log.exchange import Marker, load_session


def _prompt_log(path: Path) -> Path:
    """A cell asking for input, answered jupyter_client's way (an empty parent)."""
    with LogBuilder(path) as b:
        req = b.message("execute_request", {"code": "input()", "allow_stdin": True})
        b.message("status", {"execution_state": "busy"}, parent=req)
        b.message("input_request", {"prompt": "", "password": False}, parent=req)
        b.message("input_reply", {"value": "x"})  # no parent header
        b.message("execute_reply", {"status": "ok", "execution_count": 1}, parent=req)
        b.message("status", {"execution_state": "idle"}, parent=req)
    return path


def test_an_input_reply_without_parent_joins_its_prompts_exchange(tmp_path: Path) -> None:
    session = load_session(str(_prompt_log(tmp_path / "p.krec")))
    (ex,) = session.exchanges
    assert [r.msg_type for r in ex.stdin] == ["input_request", "input_reply"]
    assert [r.msg_type for r in ex.input_replies()] == ["input_reply"]
    assert ex.records == list(range(6))
    assert ex.reply is not None and ex.busy_t is not None and ex.idle_t is not None


def test_output_logged_before_its_request_and_reused_ids(tmp_path: Path) -> None:
    path = tmp_path / "r.krec"
    with LogBuilder(path) as b:
        early = {"msg_id": "later", "msg_type": "execute_request"}
        b.message("stream", {"name": "stdout", "text": "early\n"}, parent=early)
        req = b.message("execute_request", {"code": "1"}, msg_id="later")
        b.message("execute_reply", {"status": "ok"}, parent=req)
        # the manager's shutdown_request reuses the id of the client's request
        shut = b.message("shutdown_request", {"restart": True}, msg_id="later")
        b.message("shutdown_reply", {"status": "ok", "restart": True}, parent=shut)
        b.event("restart")
        b.execute("2", [stream("two\n")], count=1)
    session = load_session(str(path))
    first, shutdown, cell = session.exchanges
    assert [r.content["text"] for r in first.outputs] == ["early\n"]
    assert first.reply is not None and first.reply.msg_type == "execute_reply"
    assert shutdown.reply is not None and shutdown.reply.msg_type == "shutdown_reply"
    assert [r.msg_type for r in cell.outputs] == ["execute_input", "stream"]
    assert [type(e).__name__ for e in session.timeline] == [
        "Exchange", "Exchange", "Marker", "Exchange"
    ]  # fmt: skip
    marker = session.timeline[2]
    assert isinstance(marker, Marker) and marker.event == "restart"
    assert first.index == first.request.index == 1
