"""Each rule on synthetic conversations: a clean one passes, one broken message is reported once."""

from __future__ import annotations

from pathlib import Path

import pytest
from checklog import ERROR, Conversation, Sent, check, summary

from krec.recorder.check import Checker, all_rules, findings_by_record, resolve_rule_ids
from krec.recorder.errors import KrecError
from krec.recorder.log.reader import LogReader


@pytest.fixture
def conv(tmp_path: Path) -> Conversation:
    """A conversation with a started kernel that answered kernel_info."""
    c = Conversation(tmp_path / "s.krec")
    c.start_kernel()
    c.kernel_info()
    return c


def findings(conv: Conversation, **kw) -> list[tuple[str, int]]:
    return summary(check(conv.close(), **kw))


def test_a_clean_conversation_has_no_findings(conv: Conversation) -> None:
    conv.execute("print(1)", [("stream", {"name": "stdout", "text": "1\n"})])
    conv.execute("x", [("execute_result", {"data": {"text/plain": "1"}, "metadata": {},
                                           "execution_count": 2})])  # fmt: skip
    shown = {"data": {"text/plain": "a"}, "metadata": {}, "transient": {"display_id": "d1"}}
    conv.execute("display", [("display_data", shown), ("update_display_data", shown)])
    conv.execute("1/0", [("error", ERROR)], status="error")
    conv.execute("", silent=True, store_history=False)
    # stdin, answered the way JupyterLab does (the input_request as parent)
    req = conv.request("execute_request", {"code": "input()", "allow_stdin": True})
    conv.status(req, "busy")
    conv.iopub(req, "execute_input", {"code": "input()", "execution_count": 5})
    ask = conv.msg("stdin", "kernel", "input_request", {"prompt": "", "password": False}, req)
    conv.msg("stdin", "client", "input_reply", {"value": "x"}, ask)
    conv.reply(req, {"status": "ok", "execution_count": 5, "user_expressions": {}})
    conv.status(req, "idle")
    conv.count = 5
    # a comm opened by the kernel, updated from the client, closed
    conv.execute("w", [("comm_open", {"comm_id": "c1", "target_name": "t", "data": {}})])
    msg = conv.request("comm_msg", {"comm_id": "c1", "data": {"x": 1}})
    conv.status(msg, "busy")
    conv.status(msg, "idle")
    conv.execute("w.close()", [("comm_close", {"comm_id": "c1", "data": {}})])
    comp = conv.request("complete_request", {"code": "x", "cursor_pos": 1})
    conv.status(comp, "busy")
    conv.reply(comp, {"status": "ok", "matches": ["x"], "cursor_start": 0, "cursor_end": 1,
                      "metadata": {}})  # fmt: skip
    conv.status(comp, "idle")
    down = conv.request("shutdown_request", {"restart": True}, ch="control")
    conv.status(down, "busy")
    conv.reply(down, {"status": "ok", "restart": True})
    conv.status(down, "idle")
    conv.event("kernel_exited", exit_code=0, restart=True)
    conv.event("restart", reason="requested")
    conv.start_kernel()
    conv.count = 0
    conv.kernel_info()
    conv.execute("y = 2")
    conv.event("recording_stopped", reason="stopped")
    assert findings(conv) == []


def test_the_cross_channel_order_of_a_reply_and_its_idle_is_not_judged(conv: Conversation) -> None:
    req = conv.request("execute_request", {"code": "x"})
    conv.reply(req, {"status": "ok", "execution_count": 1})
    conv.status(req, "busy")
    conv.iopub(req, "execute_input", {"code": "x", "execution_count": 1})
    conv.status(req, "idle")
    assert findings(conv) == []


def test_a_request_logged_after_its_first_outputs_is_put_back_first(conv: Conversation) -> None:
    # krec captures each channel in its own thread: a request can be logged a little late
    h = conv.header("execute_request", "client")
    early = Sent(-1, h)
    conv.status(early, "busy")
    conv.iopub(early, "execute_input", {"code": "x", "execution_count": 1})
    req = conv.msg("shell", "client", "execute_request", {"code": "x"}, header=h)
    conv.reply(req, {"status": "ok", "execution_count": 1})
    conv.status(req, "idle")
    assert findings(conv) == []


# -- structure -------------------------------------------------------------------------


def test_frames_not_json_or_not_objects(conv: Conversation) -> None:
    bad = conv.msg("iopub", "kernel", "stream", frames={"content": b"{'name': 1"})
    listy = conv.msg("iopub", "kernel", "stream", frames={"header": b"[1, 2]"})
    found = check(conv.close())
    assert summary(found) == [("frames", bad.index), ("frames", listy.index)]
    assert "content frame is not JSON" in found[0].text
    assert "header frame is a JSON array" in found[1].text


def test_header_fields(conv: Conversation) -> None:
    h = conv.header("status", "kernel")
    h["date"] = "2023-11-14T22:13:20.000000"  # no time zone
    del h["username"]
    a = conv.msg("iopub", "kernel", "status", {"execution_state": "idle"}, header=h)
    h = conv.header("status", "kernel", version="6.0")
    b = conv.msg("iopub", "kernel", "status", {"execution_state": "idle"}, header=h)
    c = conv.msg("iopub", "kernel", "status", {"execution_state": "idle"}, {"date": "x"})
    found = check(conv.close())
    assert summary(found) == [("header", a.index), ("header", b.index), ("header", c.index)]
    assert "no username" in found[0].text and "time zone" in found[0].text
    assert "krec checks messaging 5.x" in found[1].text
    assert "parent header has no string msg_id or msg_type" in found[2].text


def test_channel(conv: Conversation) -> None:
    req = conv.execute()["request"]
    wrong = conv.msg("iopub", "kernel", "execute_reply", {"status": "ok", "execution_count": 1},
                     req)  # fmt: skip
    conv.msg("iopub", "kernel", "my_own_message", {}, req)  # unknown types are not judged
    found = check(conv.close(), rules=resolve_rule_ids(["channel"]))
    assert summary(found) == [("channel", wrong.index)]
    assert "belongs on shell or control, from the kernel" in found[0].text


def test_shutdown_reply_on_iopub_is_a_known_ipykernel_warning(conv: Conversation) -> None:
    req = conv.request("shutdown_request", {"restart": False}, ch="control")
    conv.status(req, "busy")
    copy = conv.iopub(req, "shutdown_reply", {"status": "ok", "restart": False})
    conv.reply(req, {"status": "ok", "restart": False})
    conv.status(req, "idle")
    found = check(conv.close())
    assert summary(found) == [("channel", copy.index)]
    assert found[0].severity == "warning" and "known ipykernel behaviour" in found[0].text


def test_deprecated_forms(tmp_path: Path) -> None:
    conv = Conversation(tmp_path / "s.krec", version="5.4")
    conv.start_kernel()
    conv.kernel_info()
    down = conv.request("shutdown_request", {"restart": False})  # on shell
    conv.status(down, "busy")
    conv.reply(down, {"status": "ok", "restart": False}, ch="shell")
    conv.status(down, "idle")
    req = conv.request("execute_request", {"code": "x"})
    conv.status(req, "busy")
    aborted = conv.reply(req, {"status": "aborted"})
    conv.status(req, "idle")
    found = check(conv.close())
    assert summary(found) == [("deprecated", down.index), ("deprecated", aborted.index)]
    assert all(f.severity == "warning" for f in found)
    assert "no execution_count" not in found[1].text and "carries execution_count" in found[1].text


# -- content ---------------------------------------------------------------------------


def test_content_schema(conv: Conversation) -> None:
    req = conv.execute()["request"]
    stream = conv.iopub(req, "stream", {"name": "stdlog", "text": "x"}, ms=0)
    upd = conv.iopub(req, "update_display_data", {"data": {}, "metadata": {}, "transient": {}})
    comp = conv.request("complete_request", {"code": "x", "cursor_pos": 1})
    conv.status(comp, "busy")
    reply = conv.reply(comp, {"status": "ok", "cursor_start": 0, "cursor_end": 1, "metadata": {}})
    conv.status(comp, "idle")
    found = check(conv.close(), rules=resolve_rule_ids(["content-schema"]))
    assert summary(found) == [
        ("content-schema", stream.index),
        ("content-schema", upd.index),
        ("content-schema", reply.index),
    ]
    assert "matches" in found[2].text


def test_unknown_fields_are_errors_only_for_5_0_and_5_1(tmp_path: Path) -> None:
    for version, expected in (("5.1", 1), ("5.3", 0)):
        conv = Conversation(tmp_path / f"{version}.krec", version=version)
        conv.iopub(None, "stream", {"name": "stdout", "text": "x", "extra": 1})
        found = check(conv.close(), rules=resolve_rule_ids(["content-schema"]))
        assert len(found) == expected, version


def test_reply_status_must_be_ok_error_or_aborted(conv: Conversation) -> None:
    req = conv.request("kernel_info_request")
    conv.status(req, "busy")
    bad = conv.reply(req, {"status": "fine"})
    conv.status(req, "idle")
    assert findings(conv) == [("content-schema", bad.index)]


# -- replies -----------------------------------------------------------------------------


def test_a_reply_with_a_wrong_parent_is_paired_by_order_and_reported_once(
    conv: Conversation,
) -> None:
    req = conv.request("execute_request", {"code": "x"})
    conv.status(req, "busy")
    conv.iopub(req, "execute_input", {"code": "x", "execution_count": 1})
    stranger = {**req.header, "msg_id": "never-sent"}
    reply = conv.reply(req, {"status": "ok", "execution_count": 1}, parent=stranger)
    conv.status(req, "idle")
    found = check(conv.close())
    assert summary(found) == [("reply-parent", reply.index)]
    assert f"by order it answers execute_request #{req.index}" in found[0].text


def test_reply_without_any_request(conv: Conversation) -> None:
    orphan = conv.msg("shell", "kernel", "execute_reply", {"status": "ok", "execution_count": 1})
    assert findings(conv) == [("reply-parent", orphan.index)]


def test_reply_type_channel_and_duplicates(conv: Conversation) -> None:
    req = conv.request("kernel_info_request")
    conv.status(req, "busy")
    wrong = conv.reply(req, {"status": "ok", "execution_count": 1}, msg_type="execute_reply")
    conv.status(req, "idle")
    ctl = conv.request("kernel_info_request", ch="control")
    conv.status(ctl, "busy")
    other = conv.reply(ctl, dict(_info()), ch="shell")
    conv.status(ctl, "idle")
    again = conv.reply(ctl, dict(_info()), ch="control")
    found = check(conv.close(), rules=resolve_rule_ids(["reply-*", "duplicate-*"]))
    assert summary(found) == [
        ("reply-type", wrong.index),
        ("reply-channel", other.index),
        ("duplicate-reply", again.index),
    ]


def _info() -> dict:
    from checklog import KERNEL_INFO

    return KERNEL_INFO


def test_replies_out_of_order_are_a_warning(conv: Conversation) -> None:
    a = conv.request("execute_request", {"code": "a"})
    b = conv.request("kernel_info_request")
    conv.status(b, "busy")
    early = conv.reply(b, _info())
    conv.status(b, "idle")
    conv.status(a, "busy")
    conv.iopub(a, "execute_input", {"code": "a", "execution_count": 1})
    conv.reply(a, {"status": "ok", "execution_count": 1})
    conv.status(a, "idle")
    found = check(conv.close())
    assert summary(found) == [("reply-order", early.index)]
    assert found[0].severity == "warning"


def test_a_reused_request_id(conv: Conversation) -> None:
    first = conv.execute()["request"]
    h = dict(first.header)
    again = conv.msg("shell", "client", "execute_request", {"code": "y"}, header=h)
    found = check(conv.close(), rules=resolve_rule_ids(["duplicate-request"]))
    assert summary(found) == [("duplicate-request", again.index)]


# -- iopub -------------------------------------------------------------------------------


def test_output_before_busy_and_missing_busy(conv: Conversation) -> None:
    a = conv.request("execute_request", {"code": "a"})
    out = conv.iopub(a, "execute_input", {"code": "a", "execution_count": 1})
    conv.status(a, "busy")
    conv.reply(a, {"status": "ok", "execution_count": 1})
    conv.status(a, "idle")
    b = conv.request("kernel_info_request")
    conv.reply(b, _info())
    conv.status(b, "idle")
    c = conv.request("kernel_info_request")
    conv.reply(c, _info())
    conv.status(c, "busy")
    second = conv.status(c, "busy")
    conv.status(c, "idle")
    found = check(conv.close())
    idle_b = b.index + 2
    assert summary(found) == [
        ("status-busy", out.index),
        ("status-busy", idle_b),
        ("status-busy", second.index),
    ]


def test_missing_idle_is_reported_at_the_request(conv: Conversation) -> None:
    a = conv.request("execute_request", {"code": "a"})
    conv.status(a, "busy")
    conv.iopub(a, "execute_input", {"code": "a", "execution_count": 1})
    conv.reply(a, {"status": "ok", "execution_count": 1})
    conv.execute("b", count=2)  # the kernel moved on: a's idle is not coming
    found = check(conv.close())
    assert summary(found) == [("status-idle", a.index)]


def test_missing_idle_at_the_very_end_waits_for_the_grace_time(conv: Conversation) -> None:
    a = conv.request("execute_request", {"code": "a"})
    conv.status(a, "busy")
    conv.iopub(a, "execute_input", {"code": "a", "execution_count": 1})
    conv.reply(a, {"status": "ok", "execution_count": 1})
    conv.event("recording_stopped", ms=5, reason="stopped")  # 5 ms later: may be in flight
    assert findings(conv) == []


def test_a_second_idle_and_output_after_idle(conv: Conversation) -> None:
    cell = conv.execute()
    late = conv.iopub(cell["request"], "stream", {"name": "stdout", "text": "late\n"})
    again = conv.status(cell["request"], "idle")
    found = check(conv.close())
    assert summary(found) == [("output-after-idle", late.index), ("status-idle", again.index)]
    assert found[0].severity == "warning"


def test_execute_input_after_output(conv: Conversation) -> None:
    a = conv.request("execute_request", {"code": "a"})
    conv.status(a, "busy")
    conv.iopub(a, "stream", {"name": "stdout", "text": "x"})
    late = conv.iopub(a, "execute_input", {"code": "a", "execution_count": 1})
    conv.reply(a, {"status": "ok", "execution_count": 1})
    conv.status(a, "idle")
    assert findings(conv) == [("execute-input-order", late.index)]


def test_execution_count_skips_are_reported_at_the_execute_input(conv: Conversation) -> None:
    conv.execute("a")
    skipped = conv.execute("b", count=3)
    conv.count = 3
    conv.execute("c")
    conv.execute("quiet", silent=True, store_history=False, count=0)  # not judged
    conv.execute("no history", store_history=False, count=99)  # not judged
    conv.execute("d")
    assert findings(conv) == [("execution-count", skipped["input"].index)]


def test_execution_count_reply_must_agree_with_execute_input(conv: Conversation) -> None:
    req = conv.request("execute_request", {"code": "a"})
    conv.status(req, "busy")
    conv.iopub(req, "execute_input", {"code": "a", "execution_count": 1})
    res = conv.iopub(req, "execute_result", {"data": {}, "metadata": {}, "execution_count": 2})
    reply = conv.reply(req, {"status": "ok", "execution_count": 7})
    conv.status(req, "idle")
    assert findings(conv) == [("execution-count", res.index), ("execution-count", reply.index)]


def test_execution_count_starts_over_after_a_restart(conv: Conversation) -> None:
    conv.execute("a")
    conv.execute("b")
    conv.event("restart", reason="requested")
    conv.start_kernel()
    conv.count = 0
    conv.execute("c")
    assert findings(conv) == []


# -- stdin -------------------------------------------------------------------------------


def _input_cell(conv: Conversation, allow: bool = True, answer: bool = True) -> dict:
    req = conv.request("execute_request", {"code": "input()", "allow_stdin": allow})
    conv.status(req, "busy")
    ask = conv.msg("stdin", "kernel", "input_request", {"prompt": "", "password": False}, req)
    out = {"request": req, "ask": ask}
    if answer:
        out["answer"] = conv.msg("stdin", "client", "input_reply", {"value": "x"}, ask)
    conv.count += 1
    out["reply"] = conv.reply(req, {"status": "ok", "execution_count": conv.count})
    conv.status(req, "idle")
    return out


def test_input_request_needs_allow_stdin(conv: Conversation) -> None:
    cell = _input_cell(conv, allow=False)
    assert findings(conv) == [("stdin-allowed", cell["ask"].index)]


def test_a_reply_while_the_prompt_is_never_answered(conv: Conversation) -> None:
    cell = _input_cell(conv, answer=False)
    conv.execute("b")
    assert findings(conv) == [("stdin-order", cell["reply"].index)]


def test_an_input_reply_with_no_prompt(conv: Conversation) -> None:
    conv.execute("a")
    stray = conv.msg("stdin", "client", "input_reply", {"value": "stray"})
    assert findings(conv) == [("stdin-order", stray.index)]


def test_a_reply_while_unanswered_is_reported_when_the_kernel_asks_again(
    conv: Conversation,
) -> None:
    first = _input_cell(conv, answer=False)
    second = _input_cell(conv)
    assert findings(conv) == [("stdin-order", first["reply"].index)]
    assert second["answer"].index > first["reply"].index


def test_an_answer_captured_after_the_reply_is_in_order(conv: Conversation) -> None:
    # stdin and shell are separate sockets: under load krec can capture the client's
    # input_reply a few records after the kernel's reply that it caused (seen in CI)
    cell = _input_cell(conv, answer=False)
    conv.msg("stdin", "client", "input_reply", {"value": "x"}, cell["ask"])
    conv.execute("b")
    assert findings(conv) == []


def test_an_interrupt_cancels_a_prompt(conv: Conversation) -> None:
    req = conv.request("execute_request", {"code": "input()", "allow_stdin": True})
    conv.status(req, "busy")
    ask = conv.msg("stdin", "kernel", "input_request", {"prompt": "", "password": False}, req)
    conv.event("interrupt", mode="signal")
    conv.iopub(req, "error", ERROR)
    conv.reply(req, {"status": "error", "execution_count": 1, **ERROR})
    conv.status(req, "idle")
    conv.msg("stdin", "client", "input_reply", {"value": "too late"}, ask)
    assert findings(conv) == []


def test_input_reply_without_parent_is_the_known_jupyter_client_warning(
    conv: Conversation,
) -> None:
    req = conv.request("execute_request", {"code": "input()", "allow_stdin": True})
    conv.status(req, "busy")
    conv.msg("stdin", "kernel", "input_request", {"prompt": "", "password": False}, req)
    answer = conv.msg("stdin", "client", "input_reply", {"value": "x"})
    conv.reply(req, {"status": "ok", "execution_count": 1})
    conv.status(req, "idle")
    found = check(conv.close())
    assert summary(found) == [("stdin-reply-parent", answer.index)]
    assert found[0].severity == "warning" and "jupyter_client" in found[0].text


# -- comms and display -----------------------------------------------------------------------


def test_comms(conv: Conversation) -> None:
    cell = conv.execute("w", [("comm_open", {"comm_id": "c1", "target_name": "t", "data": {}})])
    req = cell["request"]
    dup = conv.iopub(req, "comm_open", {"comm_id": "c1", "target_name": "t", "data": {}})
    ghost = conv.iopub(req, "comm_msg", {"comm_id": "c2", "data": {}})
    conv.iopub(req, "comm_close", {"comm_id": "c1", "data": {}})
    closed = conv.iopub(req, "comm_msg", {"comm_id": "c1", "data": {}})
    found = check(conv.close(), rules=resolve_rule_ids(["comms"]))
    assert summary(found) == [
        ("comm-duplicate", dup.index),
        ("comm-unknown", ghost.index),
        ("comm-unknown", closed.index),
    ]


def test_a_client_message_captured_before_the_kernels_comm_open(conv: Conversation) -> None:
    # the client answered a comm_open it had seen on iopub; krec captured its shell
    # message first (separate sockets): in order. One for a comm never opened is not.
    req = conv.request("execute_request", {"code": "w", "silent": False})
    conv.status(req, "busy")
    conv.request("comm_msg", {"comm_id": "c1", "data": {"method": "request_state"}})
    conv.iopub(req, "comm_open", {"comm_id": "c1", "target_name": "t", "data": {}})
    ghost = conv.request("comm_msg", {"comm_id": "never", "data": {}})
    found = check(conv.close(), rules=resolve_rule_ids(["comms"]))
    assert summary(found) == [("comm-unknown", ghost.index)]


def test_a_restart_closes_every_comm(conv: Conversation) -> None:
    conv.execute("w", [("comm_open", {"comm_id": "c1", "target_name": "t", "data": {}})])
    conv.event("restart", reason="requested")
    conv.start_kernel()
    stale = conv.request("comm_msg", {"comm_id": "c1", "data": {}})
    found = check(conv.close(), rules=resolve_rule_ids(["comms"]))
    assert summary(found) == [("comm-unknown", stale.index)]


def test_attached_logs_only_warn_about_unknown_comms(tmp_path: Path) -> None:
    conv = Conversation(tmp_path / "s.krec", mode="existing")
    ghost = conv.iopub(None, "comm_msg", {"comm_id": "from-before", "data": {}})
    found = check(conv.close())
    assert summary(found) == [("comm-unknown", ghost.index)]
    assert found[0].severity == "warning"


def test_update_display_needs_a_displayed_id(conv: Conversation) -> None:
    upd = {"data": {"text/plain": "b"}, "metadata": {}, "transient": {"display_id": "nope"}}
    cell = conv.execute("u", [("update_display_data", upd)])
    assert findings(conv) == [("display-id", cell["update_display_data"].index)]


# -- errors --------------------------------------------------------------------------------


def test_error_reply_fields_and_error_output(conv: Conversation) -> None:
    cell = conv.execute("1/0", status="error")  # no error output
    req = conv.request("execute_request", {"code": "2/0"})
    conv.status(req, "busy")
    conv.iopub(req, "error", {**ERROR, "ename": "ValueError"})
    bad = conv.reply(req, {"status": "error", "execution_count": 2, "ename": "X"})
    conv.status(req, "idle")
    found = check(conv.close())
    assert summary(found) == [
        ("error-output", cell["reply"].index),
        ("error-reply", bad.index),
        ("error-output", bad.index),
    ]
    assert "no error output" in found[0].text
    assert "evalue" in found[1].text
    assert "'X'" in found[2].text


def test_silent_errors_publish_nothing(conv: Conversation) -> None:
    conv.execute("1/0", status="error", silent=True, store_history=False)
    assert findings(conv) == []


# -- timing and log ---------------------------------------------------------------------------


def test_no_reply_when_the_log_ends(conv: Conversation) -> None:
    req = conv.request("execute_request", {"code": "while True: pass"})
    conv.status(req, "busy")
    conv.event("kernel_died", exit_code=-9)
    found = check(conv.close())
    assert summary(found) == [("no-reply", req.index)]
    assert "the kernel died after it" in found[0].text


def test_slow_kernel_info_threshold(tmp_path: Path) -> None:
    from krec.recorder.check import CheckOptions

    conv = Conversation(tmp_path / "s.krec")
    req = conv.request("kernel_info_request")
    conv.status(req, "busy", ms=3000)
    reply = conv.reply(req, _info())
    conv.status(req, "idle")
    path = conv.close()
    assert summary(check(path)) == []
    found = check(path, options=CheckOptions(kernel_info_timeout=2.5))
    assert summary(found) == [("slow-kernel-info", reply.index)]


def test_heartbeat_lost_unless_shutting_down(conv: Conversation) -> None:
    lost = conv.event("heartbeat_lost", after=3.0)
    down = conv.request("shutdown_request", {"restart": False}, ch="control")
    conv.status(down, "busy")
    conv.reply(down, {"status": "ok", "restart": False})
    conv.status(down, "idle")
    conv.event("heartbeat_lost", after=3.0)
    found = check(conv.close())
    assert summary(found) == [("heartbeat-lost", lost)]
    assert found[0].ch == "" and found[0].msg_type == "heartbeat_lost"


def test_events_krec_logged_about_the_wire(conv: Conversation) -> None:
    bad = conv.event("bad_message", ch="shell", reason="bad signature", **{"from": "client"})
    lost = conv.event("records_dropped", count=12, error="No space left on device")
    found = check(conv.close())
    assert summary(found) == [("bad-message", bad), ("records-dropped", lost)]
    assert "bad signature" in found[0].text and "12 records" in found[1].text


# -- the API ------------------------------------------------------------------------------------


def test_rules_are_documented_and_unique() -> None:
    rules = all_rules()
    assert len({r.id for r in rules}) == len(rules)
    for r in rules:
        assert r.id and r.family and r.summary and r.help, r
        assert r.severity in ("error", "warning"), r
        assert r.spec_url().startswith("https://jupyter-client.readthedocs.io/"), r


def test_choosing_rules(tmp_path: Path) -> None:
    assert [r.id for r in resolve_rule_ids(["comms"])] == ["comm-unknown", "comm-duplicate"]
    assert [r.id for r in resolve_rule_ids(["status-*"], ["status-idle"])] == ["status-busy"]
    everything = resolve_rule_ids()
    assert len(resolve_rule_ids([], ["timing"])) == len(everything) - 3
    with pytest.raises(KrecError, match="no rule matches 'nope'"):
        resolve_rule_ids(["nope"])


def test_checker_is_incremental_and_findings_group_by_record(conv: Conversation) -> None:
    a = conv.request("execute_request", {"code": "a"})
    out = conv.iopub(a, "stream", {"name": "nope", "text": "x"})
    path = conv.close()
    with LogReader(path) as reader:
        checker = Checker(reader.header, start_ns=reader.start_ns)
        for i in range(len(reader)):
            checker.feed(i, reader.raw_record(i))
        found = checker.finish()
    assert found == check(path)
    by_record = findings_by_record(found)
    assert sorted(f.rule for f in by_record[out.index]) == ["content-schema", "status-busy"]
    assert [f.rule for f in by_record[a.index]] == ["no-reply"]
    data = found[0].to_json()
    assert set(data) == {"rule", "severity", "index", "t", "rel", "ch", "from", "msg_type",
                         "msg_id", "text", "spec", "related"}  # fmt: skip
    assert data["rel"] > 0 and data["spec"].startswith("https://")
