"""Small factories of log records for reader, filter and export tests (like mitmproxy's tflow).

``LogBuilder`` writes one message or event at a time with LogWriter, at fixed
times with fixed ids, inferring channel and sender from the message type the way
the protocol assigns them; ``execute`` writes a whole cell. Every test that needs
a synthetic log builds it here, so no test spells out record dicts by hand.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from krec.recorder.log import header as log_headers
from krec.recorder.log.writer import LogWriter

CREATED = 1_700_000_000.0
T0 = int(CREATED * 1e9)
KERNEL = {
    "name": "python3",
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
    "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
}
CLIENT_SESSION = "c1a2b3c4-d5e6f7a8b9c0d1e2f3a4b5c6"
KERNEL_SESSION = "e7f8a9b0-c1d2e3f4a5b6c7d8e9f0a1b2"
CONTROL_TYPES = ("interrupt", "shutdown", "debug", "create_subshell", "delete_subshell",
                 "list_subshell")  # fmt: skip


def log_header(**extra: Any) -> dict[str, Any]:
    """A fixed version-1 header."""
    fields: dict[str, Any] = {"created": CREATED, "host": "example", "pid": 4242, "mode": "kernel"}
    fields.update(extra)
    conn = {"transport": "tcp", "ip": "127.0.0.1", "signature_scheme": "hmac-sha256"}
    return log_headers.log_header(KERNEL, conn, **fields)


def route(msg_type: str) -> tuple[str, str]:
    """(channel, sender) of a message type, as the messaging spec assigns them."""
    if msg_type == "input_request":
        return "stdin", "kernel"
    if msg_type == "input_reply":
        return "stdin", "client"
    kind = msg_type.rsplit("_", 1)
    if len(kind) == 2 and kind[1] in ("request", "reply"):
        ch = "control" if kind[0] in CONTROL_TYPES else "shell"
        return ch, "client" if kind[1] == "request" else "kernel"
    return "iopub", "kernel"


class LogBuilder:
    """Writes a log record by record; times advance 1 ms per record unless told."""

    def __init__(self, path: Path, header: dict[str, Any] | None = None, **writer: Any) -> None:
        self.path = Path(path)
        self.writer = LogWriter(self.path, header or log_header(), **writer)
        self.t = T0
        self.counts = {"client": 0, "kernel": 0}
        self.records = 0

    def __enter__(self) -> LogBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> Path:
        self.writer.close()
        return self.path

    def flush(self) -> None:
        """Make what is written so far visible to readers (a live recording does this)."""
        self.writer.flush()

    def tick(self, ms: float) -> int:
        self.t += int(ms * 1e6)
        return self.t

    def message(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        parent: dict[str, Any] | None = None,
        ch: str | None = None,
        source: str | None = None,
        ms: float = 1.0,
        msg_id: str | None = None,
        subshell_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: tuple[bytes, ...] = (),
        raw_content: bytes | None = None,
        date: str = "2023-11-14T22:13:20.000000Z",
    ) -> dict[str, Any]:
        """Write one message; return its header (pass it as ``parent`` to answer it).
        ``date`` is its header's (when its sender sent it), whatever its place in the log."""
        default_ch, default_source = route(msg_type)
        ch = ch or default_ch
        source = source or default_source
        side = "kernel" if source == "kernel" else "client"
        self.counts[side] += 1
        session = KERNEL_SESSION if side == "kernel" else CLIENT_SESSION
        pid = 4343 if side == "kernel" else 4242
        header: dict[str, Any] = {
            "msg_id": msg_id or f"{session}_{pid}_{self.counts[side]}",
            "msg_type": msg_type,
            "username": "ada",
            "session": session,
            "date": date,
            "version": "5.4",
        }
        if subshell_id is not None:
            header["subshell_id"] = subshell_id
        body = raw_content if raw_content is not None else json.dumps(content or {}).encode()
        ids = [] if ch == "iopub" else [CLIENT_SESSION.encode()]
        self.writer.write_message(
            self.tick(ms),
            ch,
            source,
            ids,
            json.dumps(header).encode(),
            json.dumps(parent or {}).encode(),
            json.dumps(metadata or {}).encode(),
            body,
            buffers,
        )
        self.records += 1
        return header

    def event(self, name: str, *, ms: float = 1.0, **fields: Any) -> None:
        self.writer.write_event(name, t=self.tick(ms), **fields)
        self.records += 1

    def execute(
        self,
        code: str,
        outputs: list[tuple[str, dict[str, Any]]] | tuple[()] = (),
        *,
        status: str = "ok",
        count: int | None = None,
        busy_ms: float = 1.0,
        subshell_id: str | None = None,
    ) -> dict[str, Any]:
        """A whole cell: request, busy, execute_input, outputs, reply, idle."""
        req = self.message("execute_request", {"code": code, "silent": False,
                           "store_history": True, "allow_stdin": True},
                           subshell_id=subshell_id)  # fmt: skip
        self.message("status", {"execution_state": "busy"}, parent=req)
        if count is not None:
            self.message("execute_input", {"code": code, "execution_count": count}, parent=req)
        for msg_type, content in outputs:
            self.message(msg_type, content, parent=req, ms=busy_ms)
        reply: dict[str, Any] = {"status": status, "execution_count": count}
        if status == "error":
            reply.update(ename="Error", evalue="failed", traceback=[])
        self.message("execute_reply", reply, parent=req)
        self.message("status", {"execution_state": "idle"}, parent=req)
        return req


def stream(text: str, name: str = "stdout") -> tuple[str, dict[str, Any]]:
    return "stream", {"name": name, "text": text}


def display(data: dict[str, Any], display_id: str | None = None) -> tuple[str, dict[str, Any]]:
    transient = {"display_id": display_id} if display_id else {}
    return "display_data", {"data": data, "metadata": {}, "transient": transient}


def error(ename: str = "ZeroDivisionError", evalue: str = "division by zero"):
    return "error", {"ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}


def synthetic_log(path: Path, count: int, seed: int = 1) -> Path:
    """A realistic log of about ``count`` messages (benchmarks/synth.py's mix)."""
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("synth", root / "benchmarks" / "synth.py")
    assert spec is not None and spec.loader is not None
    synth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synth)
    synth.synthesize(str(path), count, seed=seed)
    return path
