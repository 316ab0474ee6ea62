"""One-line summaries: each message type people scan for gets its short form."""

from __future__ import annotations

from factories import LogBuilder, error, stream

from krec.recorder.log.oneline import (
    one_line,
    short_id,
    summarize,
    summarize_event,
    summarize_message,
    tone,
)
from krec.recorder.log.reader import LogReader


def test_one_line_marks_newlines_and_cuts() -> None:
    assert one_line("a\nb\n") == "a ⏎ b"
    assert one_line("x" * 300, 10) == "x" * 9 + "…"
    assert one_line(42) == "42"


def test_messages() -> None:
    cases = {
        ("execute_request", (("code", "x = 1\ny = 2"),)): "x = 1 ⏎ y = 2",
        ("execute_request", (("code", ""),)): "(empty)",
        ("execute_input", (("code", "x"), ("execution_count", 3))): "[3] x",
        ("execute_reply", (("status", "ok"), ("execution_count", 3))): "[3] ok",
        ("stream", (("name", "stdout"), ("text", "hi\n"))): "stdout: hi",
        ("error", (("ename", "KeyError"), ("evalue", "'a'"))): "KeyError: 'a'",
        ("status", (("execution_state", "idle"),)): "idle",
        ("input_request", (("prompt", "pw: "), ("password", True))): "'pw: ' (password)",
        ("complete_request", (("code", "ab"), ("cursor_pos", 1))): "a▏b",
        ("shutdown_request", (("restart", True),)): "restart",
        ("comm_open", (("comm_id", "0123456789"), ("target_name", "jupyter.widget"))): (
            "01234567 jupyter.widget"
        ),
        ("something_new", (("a", 1), ("b", "x"))): "a=1, b='x'",
    }
    for (msg_type, content), expected in cases.items():
        assert summarize_message(msg_type, dict(content)) == expected, msg_type


def test_rich_outputs_name_their_mime_types() -> None:
    data = {"text/plain": "<Figure>", "image/png": "iVBOR", "text/html": "<b>"}
    assert summarize_message("execute_result", {"data": data, "execution_count": 2}) == (
        "[2] {image/png, text/html} <Figure>"
    )
    content = {"data": {"text/plain": "second"}, "transient": {"display_id": "d1"}}
    assert summarize_message("update_display_data", content) == "<d1> second"


def test_error_reply_and_malformed_content() -> None:
    reply = {"status": "error", "ename": "NameError", "evalue": "name 'y' is not defined"}
    assert summarize_message("execute_reply", reply) == ("error NameError: name 'y' is not defined")
    # a kernel that sends nonsense must not break the list
    assert summarize_message("complete_reply", {"matches": 5}) == "matches=5"


def test_events() -> None:
    assert summarize_event({"pid": 12, "argv": ["python"]}) == "pid=12 argv=['python']"
    assert summarize_event({"frames": [b"ab", b"c"], "key": b"xyz"}) == (
        "frames=<2 frames> key=<3 bytes>"
    )


def test_short_ids() -> None:
    assert short_id("d7f3d2ef-492af83b112ada756075a837_6809_45") == "d7f3_45"
    assert short_id("8f2c3d4e-9a0b1c2d3e4f5a6b7c8d9e0f") == "8f2c3d4e"
    assert short_id("") == ""


def test_tone_and_subshell(tmp_path) -> None:
    with LogBuilder(tmp_path / "t.krec") as log:
        log.message(*stream("careful\n", "stderr"))
        log.message("execute_reply", {"status": "aborted"})
        log.message(*error())
        log.message("execute_request", {"code": "x"}, subshell_id="abcdef123")
        log.event("kernel_died", exit_code=-9)
    with LogReader(log.path) as reader:
        # the seal written at close (format 2) is an event with no tone
        assert [tone(r) for r in reader] == ["warning", "warning", "error", "", "error", ""]
        assert reader[5].event == "seal"
        assert summarize(reader[3]) == "[subshell abcdef12] x"
        assert summarize(reader[4]) == "exit_code=-9"
