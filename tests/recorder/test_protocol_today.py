"""Today's protocol through krec: CurveZMQ transport encryption in every recording mode, and
kernel subshells (messaging 5.5) forwarded concurrently, logged, and replayed."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import run_krec
from rawclient import RawClient

from krec.recorder.log.reader import LogReader
from krec.recorder.replay.replayer import replay

pytestmark = pytest.mark.timeout(240)

DRIVE = textwrap.dedent("""
    import json, sys, time
    from jupyter_client import KernelManager
    km = KernelManager(kernel_name="python3", transport_encryption=sys.argv[1])
    km.start_kernel()
    info = json.load(open(km.connection_file))
    print("CURVE" if "curve_secretkey" in info else "PLAIN", flush=True)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    assert kc.execute_interactive("print('one')", timeout=30)["content"]["status"] == "ok"
    msg_id = kc.execute("import time; print('go', flush=True); time.sleep(30)")
    while kc.get_iopub_msg(timeout=60)["msg_type"] != "stream":
        pass  # the cell runs: the interrupt lands in it, however loaded the machine
    km.interrupt_kernel()
    while True:
        reply = kc.get_shell_msg(timeout=30)
        if reply["parent_header"]["msg_id"] == msg_id:
            break
    assert reply["content"]["ename"] == "KeyboardInterrupt", reply["content"]
    km.restart_kernel()
    kc.wait_for_ready(timeout=60)
    assert kc.execute_interactive("print('two')", timeout=30)["content"]["status"] == "ok"
    kc.stop_channels()
    km.shutdown_kernel()
""")


@pytest.mark.parametrize(
    ("policy", "expect"), [("required", "CURVE"), ("auto", "CURVE"), ("disabled", "PLAIN")]
)
def test_transport_encryption_policies_under_krec_record(tmp_path: Path, policy: str, expect: str):
    script = tmp_path / "drive.py"
    script.write_text(DRIVE)
    logs = tmp_path / "logs"
    proc = run_krec(
        "record", "-o", str(logs), "--", sys.executable, str(script), policy, timeout=200
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == expect
    (log,) = logs.glob("python3-*.krec")
    with LogReader(log) as reader:
        assert not reader.warnings
        assert reader.header["connection"]["encryption"] == ("curve" if expect == "CURVE" else None)
        records = list(reader)
    texts = [r.content.get("text") for r in records if r.msg_type == "stream"]
    assert "one\n" in texts and "two\n" in texts
    assert any(r.event == "interrupt" for r in records)
    assert any(r.event == "restart" for r in records)


def test_wrapper_specs_carry_supported_encryption(tmp_path: Path):
    from krec.recorder.kernelspec import write_shadow_specs

    write_shadow_specs(str(tmp_path), str(tmp_path / "logs"))
    spec = json.loads((tmp_path / "kernels" / "python3" / "kernel.json").read_text())
    assert "curve" in spec["metadata"]["supported_encryption"]
    assert spec["kernel_protocol_version"] == "5.5"


def test_curve_frontend_refuses_plain_clients_and_keys_stay_secret(recorder, tmp_path: Path):
    rec = recorder(extra=["--encrypt"])
    cf = rec.connection_file
    info = json.loads(cf.read_text())
    assert info["curve_publickey"] and info["curve_secretkey"]
    assert (cf.stat().st_mode & 0o777) == 0o600
    # a client without Curve gets nothing through: no reply
    plain = {k: v for k, v in info.items() if not k.startswith("curve")}
    plain_cf = tmp_path / "plain.json"
    plain_cf.write_text(json.dumps(plain))
    intruder = RawClient(plain_cf)
    try:
        intruder.send("shell", "kernel_info_request", {})
        assert intruder.poll(3.0) == []
    finally:
        intruder.close()
    # the real client, with the server key, works
    client = RawClient(cf)
    try:
        client.wait_ready(60)
        got = client.request("shell", "execute_request", {"code": "print('secret ok')"})
        assert any(m["content"].get("text") == "secret ok\n" for m in got)
    finally:
        client.close()
    assert rec.stop() == 0, rec.stderr
    data = rec.log.read_bytes()
    for secret in (info["key"], info["curve_secretkey"]):
        assert secret.encode() not in data
        assert secret not in rec.stderr
    with LogReader(rec.log) as reader:
        assert reader.header["connection"]["encryption"] == "curve"
        assert "curve" not in json.dumps(reader.header["connection"]).replace('"curve"', "")


def test_existing_mode_with_a_curve_kernel(recorder):
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3", transport_encryption="required")
    km.start_kernel()
    try:
        rec = recorder(mode=["--existing", km.connection_file])
        assert "curve_secretkey" in json.loads(rec.connection_file.read_text())
        kc = rec.client()
        reply = kc.execute_interactive("print('via curve')", timeout=30)
        assert reply["content"]["status"] == "ok"
        assert rec.stop() == 0, rec.stderr
        with LogReader(rec.log) as reader:
            assert any(r.content.get("text") == "via curve\n" for r in reader)
    finally:
        km.shutdown_kernel(now=True)
        km.cleanup_resources()


WAIT_FOR_SUBSHELL = """import time
for _ in range(6000):
    if globals().get("subshell_ran"):
        break
    time.sleep(0.01)
print("subshell ran:", bool(globals().get("subshell_ran")))"""
SUBSHELL_CELL = "subshell_ran = True\nprint('from subshell')"


def test_subshell_runs_concurrently_through_krec_and_replays(recorder, tmp_path: Path):
    rec = recorder()
    client = RawClient(rec.connection_file)
    try:
        client.wait_ready(60)
        got = client.request("control", "create_subshell_request", {})
        reply = next(m for m in got if m["header"]["msg_type"] == "create_subshell_reply")
        subshell = reply["content"]["subshell_id"]
        # the main cell ends only once the subshell's cell has run (they share the user
        # namespace): proof of concurrency that does not depend on how loaded the machine is
        main = client.send("shell", "execute_request", {"code": WAIT_FOR_SUBSHELL, "silent": False})
        msg = client.session.msg("execute_request", {"code": SUBSHELL_CELL, "silent": False})
        msg["header"]["subshell_id"] = subshell
        frames = client.session.serialize(msg)
        client.sockets["shell"].send_multipart(frames)
        client.sent.append(("shell", frames))
        replies, main_out, main_idle = set(), [], False
        deadline = time.monotonic() + 90
        # iopub and shell are separate sockets: the cell's output may arrive after its
        # reply, but never after its status: idle on iopub
        while (len(replies) < 2 or not main_idle) and time.monotonic() < deadline:
            for channel, m in client.poll(0.2):
                if channel == "shell" and m["header"]["msg_type"] == "execute_reply":
                    replies.add(m["parent"]["msg_id"])
                mine = m["parent"].get("msg_id") == main["header"]["msg_id"]
                if m["header"]["msg_type"] == "stream" and mine:
                    main_out.append(m["content"]["text"])
                if m["header"]["msg_type"] == "status" and mine:
                    main_idle = main_idle or m["content"]["execution_state"] == "idle"
        assert replies == {msg["header"]["msg_id"], main["header"]["msg_id"]}
        # print may reach iopub in more than one stream message
        ran = "".join(main_out)
        assert ran == "subshell ran: True\n", "the subshell did not run during the cell"
        client.drain(0.5)
    finally:
        client.close()
    assert rec.stop() == 0
    with LogReader(rec.log) as reader:
        records = list(reader)
    # the request carries its subshell_id; ipykernel's reply names it through its parent
    assert any(
        r.msg_type == "execute_request" and r.header.get("subshell_id") == subshell for r in records
    )
    assert any(
        r.msg_type == "execute_reply" and r.parent.get("subshell_id") == subshell for r in records
    )

    result = replay(str(rec.log), output=str(tmp_path / "replay.krec"))
    assert not result.report.diverged, result.report.render()
    with LogReader(result.log) as reader:
        records = list(reader)
    new_id = next(r for r in records if r.msg_type == "create_subshell_reply").content[
        "subshell_id"
    ]
    assert new_id != subshell
    code = {r.msg_id: r.content["code"] for r in records if r.msg_type == "execute_request"}
    sub_request = next(
        r
        for r in records
        if r.msg_type == "execute_request" and r.header.get("subshell_id") == new_id
    )
    assert sub_request.content["code"] == SUBSHELL_CELL
    # the replayed subshell request ran in the new subshell, during the main cell again
    main_out = [
        r.content["text"]
        for r in records
        if r.msg_type == "stream" and code.get(r.parent_id) == WAIT_FOR_SUBSHELL
    ]
    assert main_out == ["subshell ran: True\n"]


def test_kernel_protocol_version_in_header(recorder):
    rec = recorder()
    rec.client()
    assert rec.stop() == 0
    with LogReader(rec.log) as reader:
        assert reader.header["kernel"]["protocol_version"] == "5.5"
        assert any(r.event == "protocol_version" for r in reader)
