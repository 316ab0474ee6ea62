"""Audit mode: what an audit log keeps and drops, with a real kernel and with factories."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_krec, wait_for
from factories import LogBuilder, display, log_header, stream
from sessions import execute

from krec.recorder.log.audit import redact_record
from krec.recorder.log.reader import LogReader
from krec.recorder.log.seal import verify_log

# every marker is built by the code at run time, so the code (which an audit log keeps)
# never contains it: a marker in the file can only be an output that leaked
CELLS = [
    "print('STREAM' + 'MARK1')",
    "import sys; print('STDERR' + 'MARK2', file=sys.stderr)",
    "'RESULT' + 'MARK3'",
    "from IPython.display import display, HTML\n"
    "display(HTML('DISPLAY' + 'MARK4'), metadata={'m': 'META' + 'MARK5'})",
    "h = display('FIRST' + 'MARK6', display_id=True)\nh.update('UPDATE' + 'MARK7')",
    "from ipykernel.comm import Comm\n"
    "c = Comm(target_name='audit', data={'v': 'COMMOPEN' + 'MARK8'})\n"
    "c.send({'v': 'COMMMSG' + 'MARK9'}, buffers=[b'BUFFER' + b'MARK10'])",
    "raise ValueError('kept ' + 'evalue')",
]
MARKERS = [b"STREAMMARK1", b"STDERRMARK2", b"RESULTMARK3", b"DISPLAYMARK4", b"METAMARK5",
           b"FIRSTMARK6", b"UPDATEMARK7", b"COMMOPENMARK8", b"COMMMSGMARK9", b"BUFFERMARK10",
           b"INPUTMARK11", b"CLIENTCOMMMARK12"]  # fmt: skip


def test_no_output_byte_of_a_real_session_reaches_an_audit_log(recorder):
    rec = recorder(extra=["--audit"])
    kc = rec.client()
    replies = [execute(kc, code) for code in CELLS]
    assert [r["content"]["status"] for r in replies] == ["ok"] * 6 + ["error"]
    reply = execute(kc, "answer = input('who? ')\nlen(answer)", stdin=["INPUT" + "MARK11"])
    assert reply["content"]["status"] == "ok"
    comm_id = "c0mm-from-client"
    kc.shell_channel.send(
        kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"v": "CLIENTCOMM" + "MARK12"}})
    )
    execute(kc, "'done'")
    assert rec.stop() == 0, rec.stderr
    raw = rec.log.read_bytes()
    leaked = [m for m in MARKERS if m in raw]
    assert leaked == []
    # what an auditor needs is there: the code, statuses, the error, and the sizes dropped
    assert b"'STREAM' + 'MARK1'" in raw and b"ValueError" in raw and b"kept evalue" in raw
    with LogReader(rec.log) as r:
        assert r.header["audit"] is True
        records = list(r)
    by_type: dict[str, list] = {}
    for record in records:
        by_type.setdefault(record.msg_type or record.event or "", []).append(record)
    streams = [s for s in by_type["stream"] if s.source == "kernel"]
    assert {s.content["name"] for s in streams} == {"stdout", "stderr"}
    assert all(s.content["text"] == "" for s in streams)
    # "STREAMMARK1\n", "STDERRMARK2\n" (and warnings the kernel printed, e.g. of Comm)
    assert [s.raw["dropped"]["text"] for s in streams].count(12) == 2
    shown = by_type["display_data"][0]
    assert shown.content["data"] == {"text/plain": "", "text/html": ""}
    assert shown.raw["dropped"]["data"]["text/html"] == len("DISPLAYMARK4")
    sent = next(m for m in by_type["comm_msg"] if m.source == "kernel")
    assert sent.buffers == [] and sent.raw["dropped"]["buffers"] == [len(b"BUFFERMARK10")]
    answer = by_type["input_reply"][0]
    assert answer.content["value"] == "" and answer.raw["dropped"]["value"] == 11
    errors = [m for m in by_type["execute_reply"] if m.content["status"] == "error"]
    assert [(e.content["ename"], e.content["evalue"]) for e in errors] == [
        ("ValueError", "kept evalue")
    ]
    assert verify_log(str(rec.log)).status == "intact"
    # the reading commands work on it
    for command in (["show"], ["stats"], ["export", "--to", "jsonl"]):
        out = run_krec(*command, str(rec.log))
        assert out.returncode == 0, (command, out.stderr)
        assert not [m for m in MARKERS if m.decode() in out.stdout]
    shown = run_krec("show", "-f", "type:stream", str(rec.log)).stdout
    assert "stdout:  [12 bytes not recorded]" in shown  # says what is missing
    checked = run_krec("check", "--json", str(rec.log))
    assert checked.returncode in (0, 1), checked.stderr
    # the session's own two findings (a comm the client never opened; jupyter_client's
    # input_reply without a parent), none about a payload that is not there
    rules = {f["rule"] for f in json.loads(checked.stdout)["findings"]}
    assert rules <= {"comm-unknown", "stdin-reply-parent"}, rules


def _audit_builder(path: Path) -> LogBuilder:
    return LogBuilder(path, log_header(audit=True))


def test_each_kind_of_output_keeps_its_shape_and_size(tmp_path):
    with _audit_builder(tmp_path / "a.krec") as b:
        req = b.execute(
            "x", [stream("secret\n"), display({"text/plain": "'s'", "image/png": "QUJD"})]
        )
        expressions = {"a": {"status": "ok", "data": {"text/plain": "42"}}}
        payload = [{"source": "page", "data": {"text/plain": "doc"}}]
        b.message("execute_reply", {"status": "ok", "execution_count": 1,
                  "user_expressions": expressions, "payload": payload}, parent=req)  # fmt: skip
        b.message("error", {"ename": "E", "evalue": "v", "traceback": ["line with secret"]})
        b.message("inspect_reply", {"status": "ok", "found": True, "data": {"text/plain": "x=1"},
                  "metadata": {}})  # fmt: skip
        b.message("complete_reply", {"status": "ok", "matches": ["secret_var"], "cursor_start": 0,
                  "cursor_end": 1, "metadata": {}})  # fmt: skip
        b.message("history_reply", {"status": "ok", "history": [[0, 1, "code"]]})
        b.message("usage_reply", {"cpu": 3})  # a kernel message krec does not know
        b.message("comm_open", {"comm_id": "w", "target_name": "t", "data": {"state": 1}},
                  source="client", ch="shell")  # fmt: skip
        b.message("debug_reply", {"seq": 1, "type": "response", "success": True,
                  "command": "variables", "body": {"variables": [{"value": "1"}]}})  # fmt: skip
    with LogReader(tmp_path / "a.krec") as r:
        found = {rec.msg_type: rec for rec in r if not rec.is_event}
    assert found["execute_request"].content["code"] == "x"
    assert found["stream"].raw["dropped"] == {"text": 7}
    assert found["display_data"].content["data"] == {"text/plain": "", "image/png": ""}
    assert found["display_data"].raw["dropped"]["data"] == {"text/plain": 3, "image/png": 4}
    reply = found["execute_reply"].content
    assert reply["user_expressions"] == {} and reply["payload"] == [] and reply["status"] == "ok"
    assert found["error"].content == {"ename": "E", "evalue": "v", "traceback": []}
    assert found["inspect_reply"].content["data"] == {"text/plain": ""}
    assert found["complete_reply"].content["matches"] == []
    assert found["complete_reply"].content["cursor_end"] == 1
    assert found["history_reply"].content["history"] == []
    assert found["usage_reply"].content == {} and found["usage_reply"].raw["dropped"]["content"]
    assert found["comm_open"].content == {"comm_id": "w", "target_name": "t", "data": {}}
    debug = found["debug_reply"].content
    assert debug["body"] == {} and debug["command"] == "variables" and debug["success"] is True
    assert found["status"].raw.get("dropped") is None


def test_a_malformed_message_keeps_no_frames(tmp_path):
    record = {"t": 1, "event": "bad_message", "reason": "x", "frames": [b"secret", b"ab"]}
    out = redact_record(record)
    assert out["frames"] == [] and out["dropped"] == {"frames": [6, 2]}
    assert record["frames"] == [b"secret", b"ab"]  # the input is not changed


def test_record_mode_with_a_key_seals_with_hmac(recorder, tmp_path):
    key = tmp_path / "seal.key"
    key.write_bytes(b"k" * 32)
    rec = recorder(extra=["--audit", "--seal-key", str(key)])
    kc = rec.client()
    execute(kc, "print('x' * 3)")
    # the kernel never sees where the key is
    reply = execute(kc, "import os\nassert 'KREC_SEAL_KEY' not in os.environ")
    assert reply["content"]["status"] == "ok"
    assert rec.stop() == 0, rec.stderr
    wait_for(lambda: rec.log.exists(), 10, "the log")
    with LogReader(rec.log) as r:
        assert r.header["seal"]["alg"] == "hmac-sha256" and r.header["audit"] is True
    out = run_krec("verify", "--seal-key", str(key), str(rec.log))
    assert out.returncode == 0 and "keyed" in out.stdout, out


def test_replaying_an_audit_log_compares_outcomes(recorder, tmp_path):
    data = tmp_path / "input.txt"
    data.write_text("forty-two")
    rec = recorder(extra=["--audit"])
    kc = rec.client()
    execute(kc, f"text = open({str(data)!r}).read()\nprint(text)")
    execute(kc, "from IPython.display import HTML\nHTML(text)")
    execute(kc, "1 / 0")
    assert rec.stop() == 0, rec.stderr
    again = tmp_path / "again.krec"
    out = run_krec("replay", str(rec.log), "-o", str(again), timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "outputs were not recorded" in out.stdout
    with LogReader(again) as r:
        assert r.header["audit"] is True  # the replay of an audit log keeps no output either
    assert b"forty-two" not in again.read_bytes()
    # the file is gone: the first cell now fails, and the replay says so
    data.unlink()
    out = run_krec("replay", str(rec.log), "-o", str(tmp_path / "third.krec"), timeout=180)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FileNotFoundError" in out.stdout and "outputs were not recorded" in out.stdout


def test_install_writes_the_audit_options_where_recordings_read_them(tmp_path):
    key = tmp_path / "seal.key"
    key.write_bytes(b"s" * 32)
    done = run_krec("install", "--prefix", str(tmp_path), "--log-dir", str(tmp_path / "l"),
                    "--audit", "--seal-key", str(key), "python3")  # fmt: skip
    assert done.returncode == 0, done.stderr
    spec = json.loads((tmp_path / "share/jupyter/kernels/python3-krec/kernel.json").read_text())
    assert spec["env"]["KREC_AUDIT"] == "1" and spec["env"]["KREC_SEAL_KEY"] == str(key)
    assert "ssss" not in json.dumps(spec)  # the key file's path, never the key
    done = run_krec("install", "--prefix", str(tmp_path / "p"), "--provisioner", "--log-dir",
                    str(tmp_path / "l"), "--audit", "--seal-key", str(key), "python3")  # fmt: skip
    assert done.returncode == 0, done.stderr
    kernels = tmp_path / "p/share/jupyter/kernels/python3-krec/kernel.json"
    config = json.loads(kernels.read_text())["metadata"]["kernel_provisioner"]["config"]
    assert config["audit"] is True and config["seal_key"] == str(key)
    bad = run_krec("install", "--prefix", str(tmp_path / "q"), "--seal-key", str(tmp_path / "no"))
    assert bad.returncode == 2 and "no such file" in bad.stderr


def test_recording_kernel_manager_audit_and_keyed_restart(tmp_path):
    from krec.recorder import RecordingKernelManager

    key = tmp_path / "seal.key"
    key.write_bytes(b"m" * 32)
    log = tmp_path / "km.krec"
    km = RecordingKernelManager(kernel_name="python3", log_path=str(log), audit=True,
                                seal_key=str(key))  # fmt: skip
    km.start_kernel()
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        assert execute(kc, "print('KM' + 'MARK')")["content"]["status"] == "ok"
        km.restart_kernel()  # the new wrapper appends to the log, continuing its keyed chain
        kc.wait_for_ready(timeout=60)
        assert execute(kc, "print('AFTER' + 'RESTART')")["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    raw = log.read_bytes()
    assert b"KMMARK" not in raw and b"AFTERRESTART" not in raw
    with LogReader(log) as r:
        assert r.header["audit"] is True and r.header["seal"]["alg"] == "hmac-sha256"
        assert "restart" in [rec.event for rec in r]
    out = run_krec("verify", "--seal-key", str(key), str(log))
    assert out.returncode == 0 and "intact" in out.stdout, out
