"""What `krec serve` sends for one request (krec.recorder.serve.playback), without sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import KERNEL, LogBuilder, stream

from krec.recorder.log.exchange import load_session
from krec.recorder.log.reader import LogReader
from krec.recorder.serve.playback import (
    NO_RECORDING,
    REPLY,
    CommIds,
    Step,
    as_object,
    interrupt_steps,
    kernel_info_steps,
    no_recording_steps,
    recorded_steps,
    reply_type,
    shutdown_steps,
)


def _played(path: Path) -> tuple[list[Step], int]:
    """The recorded steps of the log's one exchange, as serve computes them."""
    (ex,) = load_session(str(path)).exchanges
    with LogReader(path) as reader:
        return recorded_steps(ex, [reader[i] for i in ex.records])


def _kinds(steps: list[Step]) -> list[str]:
    return [f"{s.ch}:{s.msg_type}" for s in steps]


def test_recorded_steps_are_the_kernel_side_timed_from_its_first_message(tmp_path: Path):
    with LogBuilder(tmp_path / "p.krec") as b:
        b.execute("print(1)", [stream("1\n")], count=1, busy_ms=5)
    steps, latency = _played(tmp_path / "p.krec")
    assert _kinds(steps) == [
        "iopub:status",
        "iopub:execute_input",
        "iopub:stream",
        f"{REPLY}:execute_reply",
        "iopub:status",
    ]
    assert latency == 1_000_000  # the busy came 1 ms after the request
    # offsets from the first kernel message: busy, +1 ms input, +5 ms stream, +1, +1
    assert [s.at for s in steps] == [0, 1_000_000, 6_000_000, 7_000_000, 8_000_000]
    assert steps[2].topic == [] and as_object(steps[2].content) == {"name": "stdout", "text": "1\n"}
    assert all(s.record is not None for s in steps)
    assert not any(s.waits_for_input for s in steps)


def test_an_input_request_step_resumes_where_the_recording_got_its_answer(tmp_path: Path):
    with LogBuilder(tmp_path / "p.krec") as b:
        req = b.message("execute_request", {"code": "input()"})
        b.message("status", {"execution_state": "busy"}, parent=req)
        b.message("input_request", {"prompt": "? ", "password": False}, parent=req)
        b.message("input_reply", {"value": "yes"}, parent=req, ms=250)
        b.message("execute_reply", {"status": "ok", "execution_count": 1}, parent=req)
        b.message("status", {"execution_state": "idle"}, parent=req)
    steps, _ = _played(tmp_path / "p.krec")
    (prompt,) = [s for s in steps if s.waits_for_input]
    assert prompt.ch == "stdin" and prompt.at == 1_000_000
    assert prompt.resume == 251_000_000  # the answer came 250 ms after the prompt
    assert "stdin:input_reply" not in _kinds(steps)  # the frontend's side is not played


def test_synthesized_answers_are_busy_reply_idle():
    assert reply_type("complete_request") == "complete_reply"
    assert reply_type("comm_msg") is None
    assert _kinds(interrupt_steps()) == [
        "iopub:status",
        f"{REPLY}:interrupt_reply",
        "iopub:status",
    ]
    shutdown = shutdown_steps(restart=True)
    assert _kinds(shutdown) == [
        "iopub:status",
        f"{REPLY}:shutdown_reply",
        "iopub:shutdown_reply",
        "iopub:status",
    ]
    assert shutdown[1].content == shutdown[2].content == {"status": "ok", "restart": True}
    assert [s.content for s in shutdown if s.msg_type == "status"] == [
        {"execution_state": "busy"},
        {"execution_state": "idle"},
    ]


def test_kernel_info_is_synthesized_from_the_logged_kernelspec():
    steps = kernel_info_steps(KERNEL, "/logs/session.krec")
    (reply,) = [s for s in steps if s.ch == REPLY]
    assert reply.msg_type == "kernel_info_reply"
    assert reply.content["implementation"] == "krec-serve"
    assert reply.content["language_info"]["name"] == "python"
    assert reply.content["language_info"]["mimetype"] == "text/x-python"
    assert "session.krec" in reply.content["banner"]
    other = kernel_info_steps({"language": "R"}, "r.krec")
    assert [s.content["language_info"] for s in other if s.ch == REPLY] == [
        {"name": "R", "version": "", "mimetype": "text/plain"}
    ]


def test_no_recording_is_a_well_formed_error_per_request_type():
    steps = no_recording_steps("execute_request", {"code": "x"}, "nothing", 7)
    assert _kinds(steps) == [
        "iopub:status",
        "iopub:execute_input",
        "iopub:error",
        f"{REPLY}:execute_reply",
        "iopub:status",
    ]
    reply = steps[3].content
    assert reply["ename"] == NO_RECORDING and reply["execution_count"] == 7
    assert reply["traceback"] == [f"{NO_RECORDING}: nothing"]
    silent = no_recording_steps("execute_request", {"code": "x", "silent": True}, "nothing", 7)
    assert "iopub:error" not in _kinds(silent)
    (complete,) = [
        s.content
        for s in no_recording_steps("complete_request", {"cursor_pos": 3}, "e", 0)
        if s.ch == REPLY
    ]
    assert (complete["matches"], complete["cursor_start"], complete["cursor_end"]) == ([], 3, 3)
    (is_complete,) = [
        s.content for s in no_recording_steps("is_complete_request", {}, "e", 0) if s.ch == REPLY
    ]
    assert is_complete["status"] == "unknown"
    assert f"{REPLY}:" not in "".join(_kinds(no_recording_steps("comm_msg", {}, "e", 0)))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        (b'{"a": 1}', {"a": 1}),
        (b"[1, 2]", {}),
        (b"\xff not json", {}),
    ],
)
def test_as_object(content, expected):
    assert as_object(content) == expected


def test_comm_ids_map_the_frontends_comms_onto_the_recorded_ones():
    ids = CommIds()
    assert not ids.applies("comm_msg")
    ids.learn("rec-1", "live-1")
    ids.learn("same", "same")  # a kernel-opened comm keeps its id: nothing to map
    assert ids.applies("comm_msg") and not ids.applies("execute_request")
    assert ids.recorded_content({"comm_id": "live-1", "data": {}}) == {
        "comm_id": "rec-1",
        "data": {},
    }
    content, topic = ids.live_content(
        json.dumps({"comm_id": "rec-1", "data": {"x": 1}}).encode(), [b"comm-rec-1"]
    )
    assert content == {"comm_id": "live-1", "data": {"x": 1}} and topic == [b"comm-live-1"]
    info, _ = ids.live_content({"status": "ok", "comms": {"rec-1": {"target_name": "t"}}}, [])
    assert info["comms"] == {"live-1": {"target_name": "t"}}
    raw = b'{"comm_id": "other"}'
    assert ids.live_content(raw, [b"comm-other"]) == (raw, [b"comm-other"])
