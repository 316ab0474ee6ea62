"""Through the proxy with real clients: every message forwarded and logged, byte for byte."""

from __future__ import annotations

import json
import stat
import time
from collections import defaultdict

import pytest
from conftest import wait_for
from rawclient import RawClient, split
from sessions import interrupted_sleep

from krec.recorder.log.reader import LogReader

pytestmark = pytest.mark.timeout(120)


def messages_by_stream(log) -> dict[tuple[str, str], list[tuple[bytes, ...]]]:
    streams: dict[tuple[str, str], list[tuple[bytes, ...]]] = defaultdict(list)
    with LogReader(log) as reader:
        for rec in reader:
            if not rec.is_event:
                streams[(rec.ch, rec.source)].append(
                    (
                        rec.frame("header"),
                        rec.frame("parent"),
                        rec.frame("metadata"),
                        rec.frame("content"),
                        *rec.buffers,
                    )
                )
    return streams


def assert_all_logged(client: RawClient, log) -> None:
    """Every frame the client sent and received is in the log, in order per channel."""
    logged = messages_by_stream(log)
    seen: dict[tuple[str, str], list[tuple[bytes, ...]]] = defaultdict(list)
    for channel, frames in client.sent:
        h, p, m, c, b = split(frames)
        seen[(channel, "client")].append((h, p, m, c, *b))
    for channel, frames in client.received:
        h, p, m, c, b = split(frames)
        seen[(channel, "kernel")].append((h, p, m, c, *b))
    for key, expected in seen.items():
        ours = set(expected)
        in_log = [m for m in logged[key] if m in ours]
        if key == ("iopub", "kernel"):
            # krec's own welcome is logged as from "krec"; the client saw it like the rest
            from_krec = set(logged[("iopub", "krec")])
            assert any(m in from_krec for m in expected), "the client got no krec welcome"
            expected = [m for m in expected if m not in from_krec]
        assert in_log == expected, f"{key}: log and client differ"


def test_execute_outputs_forwarded_and_logged_verbatim(recorder):
    rec = recorder()
    client = RawClient(rec.connection_file)
    try:
        client.wait_ready()
        code = (
            "import sys\n"
            "print('out')\n"
            "print('err', file=sys.stderr)\n"
            "from IPython.display import display, HTML\n"
            "display(HTML('<b>hi</b>'))\n"
            "6 * 7\n"
        )
        got = client.request("shell", "execute_request", {"code": code, "silent": False})
        types = [m["header"]["msg_type"] for m in got]
        assert {"stream", "display_data", "execute_result", "execute_reply"} <= set(types)
        err = client.request("shell", "execute_request", {"code": "1/0"})
        reply = next(m for m in err if m["header"]["msg_type"] == "execute_reply")
        assert reply["content"]["status"] == "error"
        assert any(m["header"]["msg_type"] == "error" for m in err)
        client.drain(0.3)
    finally:
        client.close()
    assert rec.stop() == 0
    assert_all_logged(client, rec.log)


def test_introspection_requests(recorder):
    rec = recorder()
    client = RawClient(rec.connection_file)
    try:
        client.wait_ready()
        client.request("shell", "execute_request", {"code": "alpha_value = 1"})
        requests = [
            ("complete_request", {"code": "alpha_v", "cursor_pos": 7}, "complete_reply"),
            (
                "inspect_request",
                {"code": "print", "cursor_pos": 5, "detail_level": 0},
                "inspect_reply",
            ),
            (
                "history_request",
                {"hist_access_type": "tail", "n": 5, "output": False, "raw": True},
                "history_reply",
            ),
            ("is_complete_request", {"code": "for i in range(3):"}, "is_complete_reply"),
            ("kernel_info_request", {}, "kernel_info_reply"),
        ]
        for msg_type, content, reply_type in requests:
            got = client.request("shell", msg_type, content)
            reply = next(m for m in got if m["header"]["msg_type"] == reply_type)
            if reply_type == "is_complete_reply":
                assert reply["content"]["status"] == "incomplete"
            else:
                assert reply["content"]["status"] == "ok"
            if reply_type == "complete_reply":
                assert "alpha_value" in reply["content"]["matches"]
        client.drain(0.3)
    finally:
        client.close()
    assert rec.stop() == 0
    assert_all_logged(client, rec.log)
    with LogReader(rec.log) as reader:
        logged = {r.msg_type for r in reader if not r.is_event}
    for _, _, reply_type in requests:
        assert reply_type in logged


def test_input_and_getpass_over_stdin(recorder):
    rec = recorder()
    client = RawClient(rec.connection_file)
    try:
        client.wait_ready()
        got = client.request(
            "shell",
            "execute_request",
            {"code": "name = input('name? ')\nprint('hello', name)", "allow_stdin": True},
            stdin_answer="Ada",
        )
        assert any(m["header"]["msg_type"] == "input_request" for m in got)
        assert any(m["content"].get("text") == "hello Ada\n" for m in got)
        got = client.request(
            "shell",
            "execute_request",
            {
                "code": "import getpass\npw = getpass.getpass('pw? ')\nprint(len(pw))",
                "allow_stdin": True,
            },
            stdin_answer="s3cret-value",
        )
        assert any(m["content"].get("text") == "12\n" for m in got)
        client.drain(0.3)
    finally:
        client.close()
    assert rec.stop() == 0
    raw = rec.log.read_bytes()
    assert b"s3cret-value" not in raw, "a password reached the log"
    assert b"Ada" in raw
    with LogReader(rec.log) as reader:
        records = list(reader)
    redacted = [r for r in records if r.event == "password_redacted"]
    assert len(redacted) == 1 and redacted[0].fields["length"] == 12
    replies = [r for r in records if r.msg_type == "input_reply"]
    assert [r.content["value"] for r in replies] == ["Ada", "<redacted by krec>"]


def test_record_passwords_keeps_the_value(recorder):
    rec = recorder(extra=["--record-passwords"])
    client = RawClient(rec.connection_file)
    try:
        client.wait_ready()
        client.request(
            "shell",
            "execute_request",
            {"code": "import getpass\npw = getpass.getpass('pw? ')", "allow_stdin": True},
            stdin_answer="kept-value",
        )
    finally:
        client.close()
    assert rec.stop() == 0
    assert b"kept-value" in rec.log.read_bytes()


def test_jupyter_client_wait_for_ready_and_interrupt_by_message(recorder):
    rec = recorder()
    kc = rec.client()
    interrupted_sleep(kc)  # over the control channel, as a message-mode frontend does
    assert rec.stop() == 0
    with LogReader(rec.log) as reader:
        records = list(reader)
    assert any(r.event == "interrupt" and r.fields["mode"] == "message" for r in records)
    assert any(r.msg_type == "interrupt_reply" for r in records)


def test_comm_messages_from_ipywidgets(recorder):
    rec = recorder()
    kc = rec.client()
    reply = kc.execute_interactive(
        "import ipywidgets as w\nslider = w.IntSlider(value=3)\ndisplay(slider)", timeout=60
    )
    assert reply["content"]["status"] == "ok"

    # find the slider's comm and change its value from the frontend
    def slider_comm() -> str | None:
        with LogReader(rec.log) as reader:
            for r in reader:
                state = r.content.get("data", {}).get("state", {})
                if r.msg_type == "comm_open" and state.get("_model_name") == "IntSliderModel":
                    return r.content["comm_id"]
        return None

    comm_id = wait_for(slider_comm, 10, "the slider's comm_open in the log")
    msg = kc.session.msg(
        "comm_msg",
        {
            "comm_id": comm_id,
            "data": {"method": "update", "state": {"value": 9}, "buffer_paths": []},
        },
    )
    kc.shell_channel.send(msg)
    time.sleep(0.5)
    seen: list[str] = []
    reply = kc.execute_interactive(
        "print(slider.value)",
        timeout=30,
        output_hook=lambda m: seen.append(m["content"].get("text", "")),
    )
    assert reply["content"]["status"] == "ok"
    assert "9\n" in seen, "the frontend's comm_msg did not reach the widget"
    assert rec.stop() == 0
    with LogReader(rec.log) as reader:
        types = [(r.ch, r.source, r.msg_type) for r in reader if not r.is_event]
    assert ("iopub", "kernel", "comm_open") in types
    assert ("shell", "client", "comm_msg") in types


def test_log_is_private_and_never_holds_the_key(recorder):
    rec = recorder()
    kc = rec.client()
    kc.execute_interactive("x = 1", timeout=30)
    key = json.loads(rec.connection_file.read_text())["key"].encode()
    assert rec.stop() == 0
    assert stat.S_IMODE(rec.log.stat().st_mode) == 0o600
    data = rec.log.read_bytes()
    assert key not in data
    assert key not in rec.stderr.encode()
    with LogReader(rec.log) as reader:
        assert "key" not in reader.header["connection"]
