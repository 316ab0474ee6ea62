"""enduser.id from a real Jupyter Server: two users on one kernel under `krec record --`,
each user's spans (from `krec export --to otlp` of the log, the builder the live
export shares) name that user, the kernel id and the notebook path."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest
from conftest import run_krec, wait_for
from otlpreceiver import attributes

pytestmark = pytest.mark.timeout(240)

_spec = importlib.util.spec_from_file_location(
    "krec_tests_identity", Path(__file__).with_name("test_identity.py")
)
assert _spec is not None and _spec.loader is not None
_identity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_identity)


def test_each_users_spans_carry_that_user(tmp_path: Path) -> None:
    server = _identity.Server(tmp_path, "record")
    try:
        wait_for(server.up, 90, "jupyter server")
        session = server.request(
            "POST",
            "/api/sessions",
            "alice-token",
            {"path": "work/nb.ipynb", "type": "notebook", "name": "nb.ipynb",
             "kernel": {"name": server.kernel}},
        )  # fmt: skip
        kernel_id = session["kernel"]["id"]
        sessions = asyncio.run(_identity._two_users(server.port, kernel_id))
        server.request("DELETE", f"/api/sessions/{session['id']}", "alice-token")
    finally:
        server.stop()
    (log,) = server.logs.glob("*.krec")
    out = tmp_path / "spans.json"
    proc = run_krec("export", str(log), "--to", "otlp", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    (resource,) = json.loads(out.read_text())["resourceSpans"]
    spans = [s for scope in resource["scopeSpans"] for s in scope["spans"]]
    for user, client_session in sessions.items():
        mine = [s for s in spans if attributes(s).get("jupyter.session") == client_session]
        assert "execute" in [s["name"] for s in mine]  # and the server's kernel_info nudges
        for span in mine:
            attrs = attributes(span)
            assert attrs["enduser.id"] == user, attrs
            assert attrs["jupyter.kernel_id"] == kernel_id
            assert attrs["jupyter.session_path"] == "work/nb.ipynb"
    users = {attributes(s).get("enduser.id") for s in spans}
    assert users <= {"alice", "bob", None}
