"""Secrets stay secret: the HMAC key and CurveZMQ secret keys never reach a log, a report,
an export, an error message or a repr; files are 0600; leaving loopback warns."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import run_krec
from rawclient import RawClient

from krec.recorder.connect import ConnectionInfo
from krec.recorder.errors import KrecError
from krec.recorder.log.reader import LogReader
from krec.recorder.wire import Signer

pytestmark = pytest.mark.timeout(240)


def test_no_artifact_holds_a_secret(recorder, tmp_path: Path):
    rec = recorder(extra=["--encrypt"])
    log = rec.log
    info = json.loads(rec.connection_file.read_text())
    client = RawClient(rec.connection_file)
    try:
        client.wait_ready(60)
        client.request(
            "shell",
            "execute_request",
            {"code": "import getpass\npw = getpass.getpass('pw? ')\n1/0", "allow_stdin": True},
            stdin_answer="my-password-123",
        )
    finally:
        client.close()
    assert rec.stop(60) == 0
    secrets = [info["key"].encode(), info["curve_secretkey"].encode(), b"my-password-123"]
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    artifacts = {"log": log.read_bytes(), "stderr": rec.stderr.encode()}
    for name, args in {
        "show": ["show", str(log)],
        "show --json": ["show", str(log), "--json"],
        "stats": ["stats", str(log)],
        "export jsonl": ["export", str(log), "--to", "jsonl"],
        "export ipynb": ["export", str(log), "--to", "ipynb"],
        "check": ["check", str(log), "--json"],
        "replay": ["replay", str(log), "-o", str(tmp_path / "replay.krec"), "--json"],
    }.items():
        proc = run_krec(*args, cwd=tmp_path)
        assert proc.returncode in (0, 1), (name, proc.stderr)
        artifacts[name] = (proc.stdout + proc.stderr).encode()
    artifacts["replay log"] = (tmp_path / "replay.krec").read_bytes()
    for name, data in artifacts.items():
        for secret in secrets:
            assert secret not in data, f"a secret leaked into {name}"


def test_reprs_and_errors_never_show_keys(tmp_path: Path):
    info = ConnectionInfo(
        key=b"super-secret-key", curve_publickey=b"P" * 40, curve_secretkey=b"S" * 40
    )
    assert "super-secret-key" not in repr(info) and "S" * 40 not in repr(info)
    assert "super-secret-key" not in repr(Signer(b"super-secret-key"))
    cf = tmp_path / "cf.json"
    info.with_free_ports().write(cf)
    assert stat.S_IMODE(cf.stat().st_mode) == 0o600
    data = json.loads(cf.read_text())
    data.pop("shell_port")
    cf.write_text(json.dumps(data))
    with pytest.raises(KrecError) as raised:
        ConnectionInfo.load(cf)
    assert "super-secret-key" not in str(raised.value)
    assert "super-secret-key" not in json.dumps(info.public())


def test_listening_beyond_loopback_warns(recorder):
    rec = recorder(extra=["--ip", "0.0.0.0"])
    assert json.loads(rec.connection_file.read_text())["ip"] == "0.0.0.0"
    # the kernel itself stays on loopback whatever address frontends are offered
    with LogReader(rec.log) as reader:
        argv = next(r for r in reader if r.event == "kernel_started").fields["argv"]
    inner = json.loads(Path(argv[argv.index("-f") + 1]).read_text())
    assert inner["ip"] == "127.0.0.1"
    assert rec.stop(60) == 0
    assert "warning: listening on 0.0.0.0" in rec.stderr
