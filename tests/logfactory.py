"""A factory of synthetic logs written with LogWriter, deterministic to the byte (like tflow).

``SessionWriter`` writes messages the way jupyter_client and ipykernel send them,
at fixed times with fixed ids. ``write_sample_session`` is a small session with a
bit of everything a reader meets: events, kernel_info, cells with streams, a
result, an image, a traceback with ANSI colours, stdin, a comm, a subshell
request, a slow cell, an orphan output and a request that never finished.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

from krec.recorder.logfile import LogWriter, make_header

CREATED = 1_700_000_000.0
T0 = int(CREATED * 1e9)
KERNEL = {
    "name": "python3",
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
    "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
}
TRACEBACK = [
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
    "\x1b[0;31mZeroDivisionError\x1b[0m                         Traceback (most recent call last)",
    "Cell \x1b[0;32mIn[4], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m \x1b[38;5;241m1\x1b[39m "
    "\x1b[38;5;241m/\x1b[39m \x1b[38;5;241m0\x1b[39m",
    "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero",
]


def png_bytes(width: int, height: int) -> bytes:
    """The start of a PNG: enough for its type and dimensions."""
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + b"\x08\x06"


class SessionWriter:
    """Writes messages the way jupyter_client and ipykernel send them, at fixed times."""

    def __init__(self, path: Path, header: dict[str, Any] | None = None) -> None:
        self.writer = LogWriter(
            path,
            header
            or make_header(
                KERNEL,
                {"transport": "tcp", "ip": "127.0.0.1", "signature_scheme": "hmac-sha256"},
                created=CREATED,
                host="example",
                pid=4242,
                mode="kernel",
            ),
        )
        self.t = T0
        self.n = 0
        self.count = 0

    def tick(self, ms: float) -> None:
        self.t += int(ms * 1e6)

    def event(self, name: str, **fields: Any) -> None:
        self.tick(1)
        self.writer.write_event(name, t=self.t, **fields)
        self.count += 1

    def send(
        self,
        ch: str,
        source: str,
        msg_type: str,
        content: dict[str, Any],
        parent: bytes = b"{}",
        *,
        ms: float = 1.0,
        subshell: str | None = None,
        buffers: tuple[bytes, ...] = (),
    ) -> bytes:
        """Write one message ``ms`` after the previous record; return its header (a parent)."""
        self.tick(ms)
        self.n += 1
        side = "k" if source == "kernel" else "c"
        header: dict[str, Any] = {
            "msg_id": f"{side}{self.n:07d}-0000-4000-8000-000000000000",
            "session": f"{side}session",
            "username": "ada",
            "date": "2023-11-14T22:13:20.000000Z",
            "msg_type": msg_type,
            "version": "5.3",
        }
        if subshell:
            header["subshell_id"] = subshell
        raw = json.dumps(header).encode()
        ids = [] if ch == "iopub" else [b"\x00\x80\x00\x00\x29"]
        self.writer.write_message(
            self.t, ch, source, ids, raw, parent, b"{}", json.dumps(content).encode(), buffers
        )
        self.count += 1
        return raw

    def execute(
        self,
        code: str,
        count: int,
        outputs: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
        *,
        status: str = "ok",
        busy_ms: float = 3.0,
        subshell: str | None = None,
        reply: dict[str, Any] | None = None,
    ) -> bytes:
        req = self.send(
            "shell",
            "client",
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "allow_stdin": True},
            subshell=subshell,
        )
        self.send("iopub", "kernel", "status", {"execution_state": "busy"}, req, ms=0.4)
        self.send("iopub", "kernel", "execute_input", {"code": code, "execution_count": count}, req)
        for msg_type, content in outputs:
            self.send("iopub", "kernel", msg_type, content, req, ms=busy_ms / max(len(outputs), 1))
        content = {"status": status, "execution_count": count, **(reply or {})}
        self.send("shell", "kernel", "execute_reply", content, req)
        self.send("iopub", "kernel", "status", {"execution_state": "idle"}, req, ms=0.3)
        return req

    def close(self) -> None:
        self.writer.close()


def write_sample_session(path: Path) -> int:
    """The fixed sample session; returns how many records it has."""
    w = SessionWriter(path)
    w.event("kernel_started", pid=4343, argv=["python", "-m", "ipykernel_launcher"])
    w.event("client_connected", ch="shell")
    w.event("client_subscribed", topic="")
    req = w.send("shell", "client", "kernel_info_request", {}, ms=20)
    w.send("iopub", "kernel", "status", {"execution_state": "busy"}, req)
    w.send(
        "shell",
        "kernel",
        "kernel_info_reply",
        {
            "status": "ok",
            "protocol_version": "5.3",
            "implementation": "ipython",
            "implementation_version": "8.31.0",
            "language_info": {"name": "python", "version": "3.11.9"},
            "banner": "Python 3.11.9",
        },
        req,
    )
    w.send("iopub", "kernel", "status", {"execution_state": "idle"}, req)
    w.execute("x = 21", 1)
    w.execute(
        "print('stdout line')\nimport sys\nprint('stderr line', file=sys.stderr)",
        2,
        [
            ("stream", {"name": "stdout", "text": "stdout line\n"}),
            ("stream", {"name": "stderr", "text": "stderr line\n"}),
        ],
    )
    w.execute(
        "x * 2", 3, [("execute_result", {"data": {"text/plain": "42"}, "execution_count": 3})]
    )
    png = base64.b64encode(png_bytes(640, 480)).decode()
    w.execute(
        "plot()",
        4,
        [("display_data", {"data": {"image/png": png, "text/plain": "<Figure size 640x480>"},
                           "metadata": {}, "transient": {}})],
    )  # fmt: skip
    error = {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": TRACEBACK}
    w.execute("1 / 0", 5, [("error", error)], status="error", reply=error)
    w.execute(
        "import time\ntime.sleep(2)", 6, [("stream", {"name": "stdout", "text": "done\n"})],
        busy_ms=2000,
    )  # fmt: skip
    # stdin: input_request from the kernel, input_reply from the frontend
    req = w.send(
        "shell",
        "client",
        "execute_request",
        {"code": "name = input('name? ')", "allow_stdin": True},
    )
    w.send("iopub", "kernel", "status", {"execution_state": "busy"}, req)
    ask = w.send("stdin", "kernel", "input_request", {"prompt": "name? ", "password": False}, req)
    w.send("stdin", "client", "input_reply", {"value": "Ada"}, ask, ms=400)
    w.send("shell", "kernel", "execute_reply", {"status": "ok", "execution_count": 7}, req)
    w.send("iopub", "kernel", "status", {"execution_state": "idle"}, req)
    # a widget's comm
    req = w.execute(
        "s = IntSlider()",
        8,
        [("comm_open", {"comm_id": "c0ffee00aa", "target_name": "jupyter.widget",
                        "data": {"state": {"value": 1}}})],
    )  # fmt: skip
    w.send("shell", "client", "comm_msg", {"comm_id": "c0ffee00aa", "data": {"method": "update",
           "state": {"value": 5}}})  # fmt: skip
    # a subshell
    ctrl = w.send("control", "client", "create_subshell_request", {})
    w.send("control", "kernel", "create_subshell_reply", {"status": "ok", "subshell_id": "sub-1"},
           ctrl)  # fmt: skip
    w.execute("y = 1", 9, subshell="sub-1")
    # output whose request is not in the log, an interrupt, a cell that never finished
    w.send("iopub", "kernel", "stream", {"name": "stdout", "text": "orphan\n"},
           b'{"msg_id": "elsewhere", "msg_type": "execute_request"}')  # fmt: skip
    req = w.send("shell", "client", "execute_request", {"code": "while True: pass"})
    w.send("iopub", "kernel", "status", {"execution_state": "busy"}, req)
    w.event("interrupt", mode="signal")
    w.event("recording_stopped", reason="SIGINT")
    w.close()
    return w.count
