"""krec serve: a recording answers real frontends (jupyter_client, raw zmq, console, nbclient).

Synthetic logs come from tests/factories.py; the full-session tests serve the
session-scoped ``rich_log``. Every served process is a real `krec serve` started
through the CLI and reaped at the end of its test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import nbformat
import pytest
import zmq
from conftest import KREC, run_krec, wait_for
from factories import LogBuilder, error, stream
from rawclient import RawClient
from sessions import drive_rich_session, execute
from terminal import Pty

from krec.recorder.cli.serve import spec_name
from krec.recorder.connect import CHANNELS, free_ports
from krec.recorder.log.exchange import Session, load_session
from krec.recorder.log.reader import LogReader
from krec.recorder.log.record import Record
from krec.recorder.replay.diff import compare_sessions

# -- helpers ----------------------------------------------------------------------------


class Served:
    """A `krec serve` process on a log, with its connection file and its own log."""

    def __init__(self, tmp: Path, log: Path, extra: list[str], speed: str) -> None:
        self.cf = tmp / "serve-cf.json"
        self.out = tmp / "served.krec"
        self.stderr_path = tmp / "serve.stderr"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*KREC, "serve", str(log), "-f", str(self.cf), "-o", str(self.out)]
            + ["--speed", speed, *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        self.clients: list[Any] = []
        wait_for(
            lambda: self.cf.exists() or self.proc.poll() is not None, 60, "serve's connection file"
        )
        assert self.proc.poll() is None, self.stderr

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def client(self) -> Any:
        from jupyter_client import BlockingKernelClient

        kc = BlockingKernelClient(connection_file=str(self.cf))
        kc.load_connection_file()
        kc.start_channels()
        self.clients.append(kc)
        kc.wait_for_ready(timeout=30)
        return kc

    def raw(self) -> RawClient:
        raw = RawClient(self.cf)
        self.clients.append(raw)
        return raw

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._close_clients()
        self._stderr.close()
        return code

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait()

    def _close_clients(self) -> None:
        for client in self.clients:
            if isinstance(client, RawClient):
                client.close()
            else:
                client.stop_channels()
        self.clients.clear()

    def records(self) -> list[Record]:
        with LogReader(self.out) as reader:
            return list(reader)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r.fields for r in self.records() if r.event == name]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Factory: ``serve(log, *extra, speed="fast")`` starts `krec serve` on ``log``."""
    started: list[Served] = []

    def start(log: Path, *extra: str, speed: str = "fast") -> Served:
        sub = tmp_path / f"serve{len(started)}"
        sub.mkdir(exist_ok=True)  # a test may put a connection file there first
        served = Served(sub, log, list(extra), speed)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
        served.wait()


def collect(
    raw: RawClient, msg: dict[str, Any], *, reply: bool = True, timeout: float = 20
) -> list[dict[str, Any]]:
    """Everything with ``msg`` as parent until its reply (if it has one) and idle.

    Messages answering other requests are kept for a later ``collect``.
    """
    mid = msg["header"]["msg_id"]
    backlog: list[tuple[str, dict[str, Any]]] = raw.__dict__.setdefault("backlog", [])
    out: list[dict[str, Any]] = []
    replied, idle = not reply, False
    deadline = time.monotonic() + timeout
    while not (replied and idle):
        assert time.monotonic() < deadline, f"no reply/idle for {msg['header']['msg_type']}: {out}"
        batch = backlog[:] + raw.poll(0.1)
        backlog.clear()
        for ch, m in batch:
            if m["parent"].get("msg_id") != mid:
                backlog.append((ch, m))
                continue
            m["channel"] = ch
            out.append(m)
            mt = m["header"]["msg_type"]
            replied = replied or (ch in ("shell", "control") and mt.endswith("_reply"))
            idle = idle or (mt == "status" and m["content"]["execution_state"] == "idle")
    return out


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [f"{m['channel']}:{m['header']['msg_type']}" for m in messages]


def of_type(messages: list[dict[str, Any]], msg_type: str) -> dict[str, Any]:
    (found,) = [m for m in messages if m["header"]["msg_type"] == msg_type]
    return found


def execute_content(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "silent": False, "store_history": True, "allow_stdin": True, **extra}


def without(session: Session, msg_type: str) -> Session:
    """The session minus the exchanges of one request type (numbering kept)."""
    keep = [ex for ex in session.exchanges if ex.msg_type != msg_type]
    return replace(session, exchanges=keep, timeline=list(keep))


def small_log(path: Path) -> Path:
    """Three cells, the second one twice with different outputs, and no kernel_info."""
    with LogBuilder(path) as b:
        b.execute("a = 1", count=1)
        b.execute("a += 1; print(a)", [stream("2\n")], count=2)
        b.execute("a += 1; print(a)", [stream("3\n")], count=3)
        b.execute("1 / 0", [error()], status="error", count=4)
    return path


# -- a whole session served back ----------------------------------------------------------


@pytest.mark.timeout(120)
def test_rich_session_served_back_gives_the_recorded_outputs(rich_log: Path, serve):
    srv = serve(rich_log)
    kc = srv.client()
    drive_rich_session(kc)
    assert srv.stop() == 0, srv.stderr
    recorded, served = load_session(str(rich_log)), load_session(str(srv.out))
    # wait_for_ready may ask kernel_info more than once; the cells must all agree
    report = compare_sessions(
        without(recorded, "kernel_info_request"), without(served, "kernel_info_request")
    )
    assert not report.diverged, report.render()
    assert len(served.exchanges) >= len(recorded.exchanges)
    assert served.header["mode"] == "serve"
    assert served.header["serve_of"] == os.path.abspath(rich_log)
    assert not srv.events("no_recording")
    # every message is new: fresh ids, serve's one session, the live request as parent
    with LogReader(rich_log) as reader:
        recorded_ids = {r.msg_id for r in reader if not r.is_event}
    live_requests = {ex.msg_id for ex in served.exchanges}
    sent = [r for r in srv.records() if r.source == "kernel"]
    assert sent and not recorded_ids & {r.msg_id for r in sent}
    assert len({r.header["session"] for r in sent}) == 1
    answers = [r for r in sent if r.msg_type not in ("iopub_welcome",)]
    assert all(r.parent_id in live_requests for r in answers)
    # the password typed into the served getpass() is redacted in serve's log too
    replies = [r for r in srv.records() if r.msg_type == "input_reply"]
    assert [r.content["value"] for r in replies] == ["Ada", "<redacted by krec>"]


def test_realtime_keeps_the_recorded_pace(tmp_path: Path, serve):
    log = tmp_path / "slow.krec"
    with LogBuilder(log) as b:
        b.execute("slow()", [stream("late\n")], count=1, busy_ms=600)
    srv = serve(log, speed="realtime")
    raw = srv.raw()
    raw.wait_ready()
    sent = time.monotonic()
    msg = raw.send("shell", "execute_request", execute_content("slow()"))
    got = collect(raw, msg)
    # the stream was recorded 600 ms after the request: it cannot come sooner
    assert of_type(got, "stream")["content"]["text"] == "late\n"
    assert time.monotonic() - sent >= 0.5
    assert srv.stop() == 0


# -- unmatched requests ------------------------------------------------------------------


def test_unmatched_execute_gets_the_documented_error(rich_log: Path, serve):
    srv = serve(rich_log)
    raw = srv.raw()
    raw.wait_ready()
    msg = raw.send("shell", "execute_request", execute_content("nope()"))
    got = collect(raw, msg)
    # a frontend sees each channel in order (not the interleaving of two sockets)
    assert [t for t in types(got) if t.startswith("iopub")] == [
        "iopub:status",
        "iopub:execute_input",
        "iopub:error",
        "iopub:status",
    ]
    assert [t for t in types(got) if t.startswith("shell")] == ["shell:execute_reply"]
    reply = of_type(got, "execute_reply")["content"]
    assert reply["status"] == "error"
    assert reply["ename"] == "KrecNoRecording"
    assert "no recorded execute_request has this code" in reply["evalue"]
    assert "nearest is request #" in reply["evalue"]
    assert of_type(got, "error")["content"]["ename"] == "KrecNoRecording"
    states = [m["content"]["execution_state"] for m in got if m["header"]["msg_type"] == "status"]
    assert states == ["busy", "idle"]
    # serve goes on: the next recorded cell is answered from the recording
    got = collect(raw, raw.send("shell", "execute_request", execute_content("x * 2")))
    assert of_type(got, "execute_result")["content"]["data"]["text/plain"] == "42"
    assert srv.stop() == 0
    sent = [
        f"{r.ch}:{r.msg_type}"
        for r in srv.records()
        if r.source == "kernel" and r.parent_id == msg["header"]["msg_id"]
    ]
    assert sent == [  # as a kernel sends them
        "iopub:status",
        "iopub:execute_input",
        "iopub:error",
        "shell:execute_reply",
        "iopub:status",
    ]
    (event,) = srv.events("no_recording")
    assert event["msg_type"] == "execute_request"
    assert event["msg_id"] == msg["header"]["msg_id"]
    assert isinstance(event["nearest"], int)
    assert "no recording for execute_request" in srv.stderr


def test_unmatched_requests_of_other_types_get_well_formed_replies(rich_log: Path, serve):
    srv = serve(rich_log)
    raw = srv.raw()
    raw.wait_ready()
    got = collect(raw, raw.send("shell", "complete_request", {"code": "zzz", "cursor_pos": 3}))
    reply = of_type(got, "complete_reply")["content"]
    assert reply["status"] == "error" and reply["ename"] == "KrecNoRecording"
    assert (reply["matches"], reply["cursor_start"], reply["cursor_end"]) == ([], 3, 3)
    got = collect(raw, raw.send("shell", "is_complete_request", {"code": "zz("}))
    assert of_type(got, "is_complete_reply")["content"]["status"] == "unknown"
    got = collect(raw, raw.send("shell", "comm_info_request", {"target_name": "x"}))
    reply = of_type(got, "comm_info_reply")["content"]
    assert reply["comms"] == {}
    assert reply["evalue"] == "the recording has no comm_info_request"
    # a comm_msg has no reply: busy and idle only
    msg = raw.send("shell", "comm_msg", {"comm_id": "nowhere", "data": {}})
    assert types(collect(raw, msg, reply=False)) == ["iopub:status", "iopub:status"]
    assert srv.stop() == 0
    assert len(srv.events("no_recording")) == 4


def test_strict_stops_at_the_first_unmatched_request(rich_log: Path, serve):
    srv = serve(rich_log, "--strict")
    raw = srv.raw()
    raw.wait_ready()
    got = collect(raw, raw.send("shell", "execute_request", execute_content("x = 21")))
    assert of_type(got, "execute_reply")["content"]["status"] == "ok"
    # strict compares bytes: a trailing space is another cell
    got = collect(raw, raw.send("shell", "execute_request", execute_content("x * 2 ")))
    assert of_type(got, "execute_reply")["content"]["ename"] == "KrecNoRecording"
    assert srv.wait() == 1
    assert "no recording for execute_request" in srv.stderr
    assert srv.records()[-2].fields["reason"] == "unmatched request (--strict)"


def test_loose_answers_an_edited_cell_with_the_next_recorded_one(tmp_path: Path, serve):
    srv = serve(small_log(tmp_path / "small.krec"), "--loose")
    raw = srv.raw()
    raw.wait_ready()
    collect(raw, raw.send("shell", "execute_request", execute_content("a=1")))
    got = collect(raw, raw.send("shell", "execute_request", execute_content("a += 1  # edited")))
    assert of_type(got, "stream")["content"]["text"] == "2\n"
    assert srv.stop() == 0
    by = [e["by"] for e in srv.events("matched")]
    assert by[-2:] == ["content", "type"]
    assert "(--loose)" in srv.stderr


# -- protocol: kernel_info, handshake, stdin, signatures, comms, subshells --------------------


def test_kernel_info_synthesized_when_the_log_has_none(tmp_path: Path, serve):
    srv = serve(small_log(tmp_path / "small.krec"))
    kc = srv.client()  # wait_for_ready: a kernel_info reply and an iopub message
    kc.kernel_info()
    reply = kc.get_shell_msg(timeout=10)["content"]
    assert reply["implementation"] == "krec-serve"
    assert reply["language_info"]["name"] == "python"
    assert reply["status"] == "ok"
    # the same cell twice: answered twice, in recorded order
    for _ in range(2):
        assert execute(kc, "a += 1; print(a)")["content"]["status"] == "ok"
    assert srv.stop() == 0
    assert [e["request"] for e in srv.events("matched")][-2:] == [2, 3]


def test_welcome_heartbeat_and_bad_signatures(rich_log: Path, serve):
    srv = serve(rich_log)
    raw = srv.raw()
    welcome = wait_for(
        lambda: [m for _, m in raw.poll(0.1) if m["header"]["msg_type"] == "iopub_welcome"],
        10,
        "iopub_welcome",
    )
    assert welcome[0]["content"] == {"subscription": ""}
    ctx = zmq.Context()
    hb = ctx.socket(zmq.REQ)
    hb.linger = 0
    hb.connect(f"tcp://127.0.0.1:{raw.info['hb_port']}")
    hb.send(b"ping")
    assert hb.poll(10_000), "no heartbeat echo"
    assert hb.recv() == b"ping"
    hb.close()
    ctx.term()
    key = raw.session.key
    raw.session.key = b"not-the-key"
    bad = raw.send("shell", "execute_request", execute_content("x * 2"))
    raw.session.key = key
    good = raw.send("shell", "execute_request", execute_content("x * 2"))
    got = collect(raw, good)
    assert of_type(got, "execute_result")["content"]["data"]["text/plain"] == "42"
    assert not [m for _, m in raw.poll(0.3) if m["parent"].get("msg_id") == bad["header"]["msg_id"]]
    assert srv.stop() == 0
    (event,) = srv.events("bad_message")
    assert (event["ch"], event["reason"], event["from"]) == ("shell", "bad signature", "client")


def test_input_request_waits_for_the_frontend(rich_log: Path, serve):
    srv = serve(rich_log)
    raw = srv.raw()
    raw.wait_ready()
    code = "name = input('name? ')\nprint('hello', name)"
    msg = raw.send("shell", "execute_request", execute_content(code))
    mid = msg["header"]["msg_id"]
    seen: list[tuple[str, dict[str, Any]]] = []

    def prompt() -> dict[str, Any] | None:
        seen.extend((ch, m) for ch, m in raw.poll(0.1) if m["parent"].get("msg_id") == mid)
        return next((m for ch, m in seen if ch == "stdin"), None)

    request = wait_for(prompt, 10, "input_request")
    assert request["content"]["prompt"] == "name? "
    time.sleep(0.3)
    seen.extend((ch, m) for ch, m in raw.poll(0.1) if m["parent"].get("msg_id") == mid)
    assert not [m for ch, m in seen if m["header"]["msg_type"] in ("stream", "execute_reply")]
    raw.send("stdin", "input_reply", {"value": "Grace"}, parent=request["header"])
    got = collect(raw, msg)
    assert of_type(got, "stream")["content"]["text"] == "hello Ada\n"  # what was recorded
    # a frontend that allows no stdin gets the recorded outputs without a prompt
    msg = raw.send("shell", "execute_request", execute_content(code, allow_stdin=False))
    got = collect(raw, msg)
    assert "stdin:input_request" not in types(got)
    assert of_type(got, "stream")["content"]["text"] == "hello Ada\n"
    assert srv.stop() == 0
    assert len(srv.events("input_skipped")) == 1


def test_frontend_comm_ids_are_mapped_onto_the_recorded_ones(tmp_path: Path, serve):
    log = tmp_path / "comm.krec"
    with LogBuilder(log) as b:
        opened = b.message(
            "comm_open", {"comm_id": "rec-comm", "target_name": "echo", "data": {}},
            ch="shell", source="client",
        )  # fmt: skip
        b.message("status", {"execution_state": "busy"}, parent=opened)
        b.message("comm_msg", {"comm_id": "rec-comm", "data": {"hello": 1}}, parent=opened)
        b.message("status", {"execution_state": "idle"}, parent=opened)
        sent = b.message(
            "comm_msg", {"comm_id": "rec-comm", "data": {"ping": 2}}, ch="shell", source="client"
        )
        b.message("status", {"execution_state": "busy"}, parent=sent)
        b.message("comm_msg", {"comm_id": "rec-comm", "data": {"pong": 2}}, parent=sent)
        b.message("status", {"execution_state": "idle"}, parent=sent)
        info = b.message("comm_info_request", {"target_name": "echo"})
        comms = {"rec-comm": {"target_name": "echo"}}
        b.message("status", {"execution_state": "busy"}, parent=info)
        b.message("comm_info_reply", {"status": "ok", "comms": comms}, parent=info)
        b.message("status", {"execution_state": "idle"}, parent=info)
    srv = serve(log)
    raw = srv.raw()
    raw.wait_ready()
    opening = {"comm_id": "live-comm", "target_name": "echo", "data": {}}
    msg = raw.send("shell", "comm_open", opening)
    got = collect(raw, msg, reply=False)
    assert of_type(got, "comm_msg")["content"] == {"comm_id": "live-comm", "data": {"hello": 1}}
    msg = raw.send("shell", "comm_msg", {"comm_id": "live-comm", "data": {"ping": 2}})
    got = collect(raw, msg, reply=False)
    assert of_type(got, "comm_msg")["content"] == {"comm_id": "live-comm", "data": {"pong": 2}}
    got = collect(raw, raw.send("shell", "comm_info_request", {"target_name": "echo"}))
    assert of_type(got, "comm_info_reply")["content"]["comms"] == {
        "live-comm": {"target_name": "echo"}
    }
    assert srv.stop() == 0
    assert [e["request"] for e in srv.events("matched")] == [1, 2, 3]


def test_replies_carry_the_live_subshell_id(tmp_path: Path, serve):
    log = tmp_path / "sub.krec"
    with LogBuilder(log) as b:
        b.execute("on_subshell()", [stream("sub\n")], count=1, subshell_id="rec-sub")
    srv = serve(log)
    raw = srv.raw()
    raw.wait_ready()
    msg = raw.session.msg("execute_request", execute_content("on_subshell()"))
    msg["header"]["subshell_id"] = "live-sub"
    raw.sockets["shell"].send_multipart(raw.session.serialize(msg))
    got = collect(raw, msg)
    assert {m["header"].get("subshell_id") for m in got} == {"live-sub"}
    assert srv.stop() == 0


def test_an_existing_connection_file_is_used_as_a_kernel_would_with_curve(tmp_path: Path, serve):
    public, secret = zmq.curve_keypair()
    ports = dict(zip(CHANNELS, free_ports("127.0.0.1", len(CHANNELS)), strict=True))
    cf = tmp_path / "serve0" / "serve-cf.json"
    cf.parent.mkdir()
    cf.write_text(
        json.dumps(
            {
                "transport": "tcp",
                "ip": "127.0.0.1",
                "key": "a-key-from-the-kernel-manager",
                "signature_scheme": "hmac-sha256",
                "curve_publickey": public.decode(),
                "curve_secretkey": secret.decode(),
                **{f"{c}_port": p for c, p in ports.items()},
            }
        )
    )
    srv = serve(small_log(tmp_path / "small.krec"))
    assert json.loads(srv.cf.read_text())["shell_port"] == ports["shell"]  # not rewritten
    raw = srv.raw()  # a Curve client: RawClient uses the file's public key as server key
    raw.wait_ready()
    got = collect(raw, raw.send("shell", "execute_request", execute_content("1 / 0", silent=True)))
    assert of_type(got, "error")["content"]["ename"] == "ZeroDivisionError"
    got = collect(raw, raw.send("shell", "execute_request", execute_content("no()", silent=True)))
    assert sorted(types(got)) == ["iopub:status", "iopub:status", "shell:execute_reply"]
    assert srv.stop() == 0
    assert srv.cf.exists()  # the kernel manager's file: not serve's to remove


# -- interrupt and shutdown ------------------------------------------------------------


def test_interrupt_hurries_the_running_cell_and_shutdown_ends_serve(tmp_path: Path, serve):
    log = tmp_path / "sleep.krec"
    with LogBuilder(log) as b:
        b.execute(
            "import time; time.sleep(600)",
            [error("KeyboardInterrupt", "")],
            status="error",
            count=1,
            busy_ms=600_000,
        )
    srv = serve(log, speed="realtime")
    raw = srv.raw()
    raw.wait_ready()
    cell = raw.send("shell", "execute_request", execute_content("import time; time.sleep(600)"))
    mid = cell["header"]["msg_id"]
    wait_for(
        lambda: [m for _, m in raw.poll(0.1) if m["parent"].get("msg_id") == mid],
        10,
        "the cell to start",
    )
    got = collect(raw, raw.send("control", "interrupt_request", {}))
    assert of_type(got, "interrupt_reply")["content"] == {"status": "ok"}
    # the recorded KeyboardInterrupt comes now, not 600 s later
    got = collect(raw, cell, timeout=20)
    assert of_type(got, "error")["content"]["ename"] == "KeyboardInterrupt"
    shutdown = raw.send("control", "shutdown_request", {"restart": False})
    replies = wait_for(
        lambda: [
            (ch, m)
            for ch, m in raw.poll(0.1)
            if m["header"]["msg_type"] == "shutdown_reply"
            and m["parent"]["msg_id"] == shutdown["header"]["msg_id"]
        ],
        10,
        "shutdown_reply",
    )
    assert replies[0][0] == "control"
    assert replies[0][1]["content"] == {"status": "ok", "restart": False}
    assert srv.wait() == 0
    assert srv.events("interrupt") == [{"mode": "message"}]
    assert srv.records()[-2].fields["reason"] == "shutdown requested"


def test_a_kernel_manager_restart_goes_on_after_the_recorded_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from jupyter_client import KernelManager

    log = tmp_path / "restart.krec"
    with LogBuilder(log) as b:
        b.execute("n = 1", count=1)
        b.execute("print(n)", [stream("1\n")], count=2)
        b.event("restart", reason="requested")
        b.execute("print(n)", [error("NameError", "name 'n' is not defined")], status="error")
    prefix, logs = tmp_path / "prefix", tmp_path / "logs"
    proc = run_krec(
        "serve", str(log), "--install", "--prefix", str(prefix), "--name", "served",
        "--speed", "fast", "--log-dir", str(logs),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share/jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    km = KernelManager(kernel_name="served")
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        execute(kc, "n = 1")
        assert execute(kc, "print(n)")["content"]["status"] == "ok"
        kc.stop_channels()
        km.restart_kernel(now=False)  # shutdown_request(restart=True), then a new serve
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        # answered from after the recorded restart, not with the first run's "1"
        assert execute(kc, "print(n)")["content"]["status"] == "error"
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=False)
    (served,) = logs.glob("*.krec")  # one log, continued after the restart
    with LogReader(served) as reader:
        records = list(reader)
    assert [r.fields["reason"] for r in records if r.event == "restart"] == ["requested"]
    assert [r.fields["request"] for r in records if r.event == "matched"] == [1, 2, 3]
    assert not list((tmp_path / "runtime" / "krec-serve").glob("*.json"))  # state cleaned up


# -- the command line ------------------------------------------------------------------


def test_cli_errors_are_one_line(tmp_path: Path):
    proc = run_krec("serve", str(tmp_path / "missing.krec"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"krec: error: {tmp_path / 'missing.krec'}: no such file"
    ]
    junk = tmp_path / "junk.krec"
    junk.write_text("not a log")
    proc = run_krec("serve", str(junk))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    # a connection file whose port is taken: the bind error, not a traceback
    log = small_log(tmp_path / "small.krec")
    with zmq.Context() as ctx, ctx.socket(zmq.ROUTER) as taken:
        port = taken.bind_to_random_port("tcp://127.0.0.1")
        cf = tmp_path / "cf.json"
        ports = {f"{c}_port": port for c in ("shell", "iopub", "stdin", "control", "hb")}
        cf.write_text(json.dumps({"ip": "127.0.0.1", "key": "k", "transport": "tcp", **ports}))
        proc = run_krec("serve", str(log), "-f", str(cf), "-o", str(tmp_path / "o.krec"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("krec: error: cannot listen on")
    proc = run_krec("serve", "--help")
    assert proc.returncode == 0 and "examples:" in proc.stdout and "--strict" in proc.stdout


def test_spec_names_are_valid_kernelspec_names():
    assert spec_name("/x/My Session (1).krec") == "krec-serve-my-session-1"
    assert spec_name("python3-20240101-120000-abc.krec") == "krec-serve-python3-20240101-120000-abc"


# -- real frontends ---------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_jupyter_console_shows_the_recorded_outputs(rich_log: Path, serve, tmp_path: Path):
    srv = serve(rich_log)
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    term = Pty(
        [sys.executable, "-m", "jupyter_console", "--existing", str(srv.cf)]
        + ["--simple-prompt", "--no-confirm-exit"],
        tmp_path,
        env,
    )
    try:
        term.expect(r"In \[\d+\]", 120)
        term.send("x * 2\r")
        term.expect(r"Out\[3\]: 42")
        term.send("1 / 0\r")
        term.expect("ZeroDivisionError")
        term.send("nope()\r")
        term.expect("KrecNoRecording")
        # `exit` would be a cell for the kernel to answer (nothing recorded it): Ctrl-D
        term.send("\x04")
        wait_for(lambda: term.proc.poll() is not None, 60, "jupyter console to exit")
        assert term.proc.returncode == 0, term.read()
    finally:
        term.close()
    assert srv.stop() == 0
    served = load_session(str(srv.out))
    codes = [ex.code for ex in served.exchanges if ex.msg_type == "execute_request"]
    assert codes[-3:] == ["x * 2", "1 / 0", "nope()"]


RUN_NBCLIENT = textwrap.dedent("""
    import sys
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    NotebookClient(nb, timeout=60, kernel_name=sys.argv[3], allow_errors=True).execute()
    nbformat.write(nb, sys.argv[2])
""")


def _outputs(path: Path) -> list[list[dict[str, Any]]]:
    nb = nbformat.read(path, as_version=4)
    return [
        [o for o in cell.get("outputs", []) if o.get("name") != "stdin"]  # export shows answers
        for cell in nb.cells
        if cell.cell_type == "code"
    ]


@pytest.mark.timeout(180)
def test_nbclient_reproduces_the_exported_notebook_through_an_installed_spec(
    rich_log: Path, tmp_path: Path
):
    exported = tmp_path / "rich.ipynb"
    proc = run_krec("export", str(rich_log), "--to", "ipynb", "-o", str(exported))
    assert proc.returncode == 0, proc.stderr
    prefix, logs = tmp_path / "prefix", tmp_path / "logs"
    proc = run_krec(
        "serve", str(rich_log), "--install", "--prefix", str(prefix), "--name", "krec-serve-rich",
        "--speed", "fast", "--log-dir", str(logs),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((prefix / "share/jupyter/kernels/krec-serve-rich/kernel.json").read_text())
    assert spec["interrupt_mode"] == "message"
    assert spec["display_name"].endswith(f"(served from {rich_log.name})")
    runner = tmp_path / "run_nb.py"
    runner.write_text(RUN_NBCLIENT)
    executed = tmp_path / "executed.ipynb"
    env = {**os.environ, "JUPYTER_PATH": str(prefix / "share/jupyter")}
    subprocess.run(
        [sys.executable, str(runner), str(exported), str(executed), "krec-serve-rich"],
        check=True,
        timeout=150,
        capture_output=True,
        env=env,
    )
    got, want = _outputs(executed), _outputs(exported)
    assert got == want
    assert got[2][0]["data"]["text/plain"] == "42"
    (log,) = logs.glob("*.krec")
    with LogReader(log) as reader:
        records = list(reader)
    assert not [r for r in records if r.event == "no_recording"]
    assert records[-2].fields["reason"] == "shutdown requested"
