"""Secrets stay secret: the HMAC key and CurveZMQ secret keys never reach a log, a report,
an export, an error message or a repr; files are 0600; leaving loopback warns."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import KREC, run_krec, wait_for
from rawclient import RawClient

from krec.recorder.connect import ConnectionInfo
from krec.recorder.errors import KrecError
from krec.recorder.wire import Signer

pytestmark = pytest.mark.timeout(240)


def test_no_artifact_holds_a_secret(tmp_path: Path):
    log, cf, err = tmp_path / "s.krec", tmp_path / "cf.json", tmp_path / "stderr"
    with open(err, "wb") as stderr:
        krec = subprocess.Popen(
            [
                *KREC,
                "record",
                "--kernel",
                "python3",
                "--encrypt",
                "-o",
                str(log),
                "--connection-file",
                str(cf),
            ],
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for(cf.exists, 60, "the connection file")
            info = json.loads(cf.read_text())
            client = RawClient(cf)
            try:
                client.wait_ready(60)
                client.request(
                    "shell",
                    "execute_request",
                    {
                        "code": "import getpass\npw = getpass.getpass('pw? ')\n1/0",
                        "allow_stdin": True,
                    },
                    stdin_answer="my-password-123",
                )
            finally:
                client.close()
        finally:
            krec.send_signal(signal.SIGINT)
            assert krec.wait(60) == 0
    secrets = [info["key"].encode(), info["curve_secretkey"].encode(), b"my-password-123"]
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    artifacts = {"log": log.read_bytes(), "stderr": err.read_bytes()}
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


def test_listening_beyond_loopback_warns(tmp_path: Path):
    log, cf = tmp_path / "s.krec", tmp_path / "cf.json"
    krec = subprocess.Popen(
        [
            *KREC,
            "record",
            "--kernel",
            "python3",
            "--ip",
            "0.0.0.0",
            "-o",
            str(log),
            "--connection-file",
            str(cf),
        ],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for(cf.exists, 60, "the connection file")
        assert json.loads(cf.read_text())["ip"] == "0.0.0.0"
    finally:
        krec.send_signal(signal.SIGINT)
        _, err = krec.communicate(timeout=60)
    assert "warning: listening on 0.0.0.0" in err
    # the kernel itself stays on loopback whatever frontends are offered
    from krec.recorder.logfile import LogReader

    with LogReader(log) as reader:
        started = next(r for r in reader if r.event == "kernel_started")
    assert started.fields["argv"]
