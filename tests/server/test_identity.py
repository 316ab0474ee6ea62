"""krec.server with a real Jupyter Server under `krec record --`: token authentication by
a custom IdentityProvider with two users, a session made through the REST API, and two
websocket clients on one kernel; each connection's identity precedes its first request."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import KREC, free_port, wait_for

from krec.recorder.capture.provisioner import provisioner_spec
from krec.recorder.kernelspec import find_spec
from krec.recorder.log.reader import LogReader
from krec.recorder.log.storage import local_log, log_locations

pytestmark = pytest.mark.timeout(240)
TESTS = Path(__file__).resolve().parent.parent


class Server:
    """A Jupyter Server with token authentication for alice and bob, started either under
    `krec record --` (krec.server on automatically, wrapper kernelspecs) or plainly with
    krec.server enabled by hand and a kernelspec recorded through krec-provisioner."""

    def __init__(self, tmp: Path, mode: str, destination: str = "") -> None:
        self.port = free_port()
        self.logs = tmp / "logs"
        self.destination = destination or str(self.logs)
        self.stderr = open(tmp / "server.stderr", "wb")  # noqa: SIM115
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        }
        env["JUPYTER_CONFIG_DIR"] = str(tmp / "config")  # nothing of the user's
        (tmp / "root").mkdir()
        server = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            f"--port={self.port}",
            "--ip=127.0.0.1",
            "--port-retries=0",
            f"--ServerApp.root_dir={tmp / 'root'}",
            "--ServerApp.identity_provider_class=identity_users.TwoUsers",
        ]
        if mode.startswith("record"):
            self.kernel = "python3"
            argv = [*KREC, "record", "-o", self.destination, "--", *server]
        else:
            self.kernel = "python3-krec"
            folder = tmp / "jupyter" / "kernels" / self.kernel
            folder.mkdir(parents=True)
            spec = provisioner_spec(find_spec("python3"), str(self.logs))
            (folder / "kernel.json").write_text(json.dumps(spec))
            env["JUPYTER_PATH"] = str(tmp / "jupyter")
            argv = [*server, "--ServerApp.jpserver_extensions=krec.server=True"]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self.stderr,
            stderr=self.stderr,
            env=env,
        )

    def request(self, method: str, path: str, token: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
        return json.loads(text) if text else None

    def up(self) -> bool:
        assert self.proc.poll() is None, Path(self.stderr.name).read_text()
        try:
            return self.request("GET", "/api/status", "alice-token") is not None
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.stderr.close()


def _message(session: str, user: str, code: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "session": session,
            "username": user,
            "msg_type": "execute_request",
            "version": "5.3",
            "date": "2026-01-01T00:00:00Z",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
        },
        "channel": "shell",
        "buffers": [],
    }


async def _two_users(port: int, kernel_id: str) -> dict[str, str]:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    sessions = {"alice": uuid.uuid4().hex, "bob": uuid.uuid4().hex}
    sockets = {}
    for user, session in sessions.items():
        request = HTTPRequest(
            f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels?session_id={session}",
            headers={"Authorization": f"token {user}-token"},
        )
        sockets[user] = await asyncio.wait_for(websocket_connect(request), 60)
    for user, ws in sockets.items():
        msg = _message(sessions[user], user, f"who = {user!r}")
        await ws.write_message(json.dumps(msg))
        while True:
            raw = await asyncio.wait_for(ws.read_message(), 60)
            assert raw is not None, "the websocket closed"
            reply = json.loads(raw)
            mine = reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]
            if mine and reply["msg_type"] == "execute_reply":
                assert reply["content"]["status"] == "ok"
                break
    for ws in sockets.values():
        ws.close()
        while await asyncio.wait_for(ws.read_message(), 30) is not None:
            pass  # until the server's close frame: the socket is then closed
    return sessions


@pytest.mark.parametrize("mode", ["record", "provisioner", "record-s3"])
def test_each_websocket_connection_is_recorded_with_its_user_before_its_requests(
    tmp_path: Path, mode: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = ""
    if mode == "record-s3":  # a JupyterLab-style session whose log goes to a bucket
        bucket = request.getfixturevalue("s3_bucket")
        destination = f"{bucket.url}/hub"
        monkeypatch.setenv("KREC_SPOOL", str(tmp_path / "spool"))
        monkeypatch.setenv("KREC_CACHE", str(tmp_path / "cache"))
    server = Server(tmp_path, mode, destination)
    try:
        wait_for(server.up, 90, "jupyter server")
        assert server.request("GET", "/api/me", "bob-token")["identity"]["username"] == "bob"
        session = server.request(
            "POST",
            "/api/sessions",
            "alice-token",
            {
                "path": "work/nb.ipynb",
                "type": "notebook",
                "name": "nb.ipynb",
                "kernel": {"name": server.kernel},
            },
        )
        kernel_id = session["kernel"]["id"]
        sessions = asyncio.run(_two_users(server.port, kernel_id))
        server.request("DELETE", f"/api/sessions/{session['id']}", "alice-token")
    finally:
        server.stop()
    if destination:
        (log,) = {local_log(url) for url in log_locations([destination])}
        assert not any((tmp_path / "spool").rglob("*.krec"))
    else:
        (log,) = server.logs.glob("*.krec")
    with LogReader(log) as reader:
        assert reader.header["user"]
        records = list(reader)
    identities = [r for r in records if r.event == "client_identity"]
    assert sorted(r.fields["user"] for r in identities) == ["alice", "bob"]
    for r in identities:
        assert r.fields["session_path"] == "work/nb.ipynb"
        assert r.fields["kernel_id"] == kernel_id
    for user, client_session in sessions.items():
        (identity,) = [r for r in identities if r.fields["user"] == user]
        first = next(
            r
            for r in records
            if not r.is_event and r.source == "client" and r.header.get("session") == client_session
        )
        assert identity.index < first.index
