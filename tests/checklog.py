"""A factory of protocol conversations written with LogWriter, for the `krec check` tests.

``Conversation`` writes messages the way jupyter_client and ipykernel send them
(fixed ids and times), one call per message or per well-behaved exchange, and
returns ``Sent`` handles (record index and header) so a test can break exactly one
thing and assert that `krec check` reports exactly that, at that record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from krec.recorder.check import Finding, run_checks
from krec.recorder.log.header import log_header
from krec.recorder.log.reader import LogReader
from krec.recorder.log.writer import LogWriter

CREATED = 1_700_000_000.0
T0 = int(CREATED * 1e9)
CLIENT = b"client-1"


@dataclass
class Sent:
    """A message written to the log: its record index and header."""

    index: int
    header: dict[str, Any]

    @property
    def msg_id(self) -> str:
        return self.header["msg_id"]


class Conversation:
    """Writes one log; every method appends records and returns what it wrote."""

    def __init__(self, path: Path, version: str = "5.3", **header: Any) -> None:
        self.path = path
        self.version = version
        fields = {"created": CREATED, "mode": "kernel", **header}
        self.writer = LogWriter(
            path,
            log_header({"name": "python3", "language": "python", "argv": []}, None, **fields),
        )
        self.t = T0
        self.index = -1
        self.n = 0
        self.count = 0
        self.kernel_session = "kernel-session"

    # -- records ---------------------------------------------------------------

    def tick(self, ms: float = 1.0) -> int:
        self.t += int(ms * 1e6)
        return self.t

    def event(self, name: str, ms: float = 1.0, **fields: Any) -> int:
        self.writer.write_event(name, t=self.tick(ms), **fields)
        self.index += 1
        return self.index

    def header(self, msg_type: str, source: str, **extra: Any) -> dict[str, Any]:
        self.n += 1
        kernel = source != "client"
        return {
            "msg_id": f"{'k' if kernel else 'c'}-{self.n:06d}",
            "msg_type": msg_type,
            "username": "ada",
            "session": self.kernel_session if kernel else "client-session",
            "date": "2023-11-14T22:13:20.000000Z",
            "version": self.version,
            **extra,
        }

    def msg(
        self,
        ch: str,
        source: str,
        msg_type: str,
        content: dict[str, Any] | None = None,
        parent: Sent | dict[str, Any] | None = None,
        *,
        header: dict[str, Any] | None = None,
        ids: list[bytes] | None = None,
        frames: dict[str, bytes] | None = None,
        ms: float = 1.0,
    ) -> Sent:
        """One message; ``frames`` replaces raw frames (to write broken JSON)."""
        h = header if header is not None else self.header(msg_type, source)
        p = parent.header if isinstance(parent, Sent) else (parent or {})
        raw = {
            "header": json.dumps(h).encode(),
            "parent": json.dumps(p).encode(),
            "metadata": b"{}",
            "content": json.dumps(content or {}).encode(),
            **(frames or {}),
        }
        if ids is None:
            ids = [] if ch == "iopub" else [CLIENT]
        self.writer.write_message(
            self.tick(ms), ch, source, ids, raw["header"], raw["parent"], raw["metadata"],
            raw["content"],
        )  # fmt: skip
        self.index += 1
        return Sent(self.index, h)

    # -- exchanges -------------------------------------------------------------

    def request(self, msg_type: str, content: dict[str, Any] | None = None, ch: str = "shell",
                **kw: Any) -> Sent:  # fmt: skip
        return self.msg(ch, "client", msg_type, content or {}, **kw)

    def reply(self, req: Sent, content: dict[str, Any] | None = None, **kw: Any) -> Sent:
        mt = req.header["msg_type"].replace("_request", "_reply")
        ch = kw.pop("ch", "control" if req.header["msg_type"] in _CONTROL else "shell")
        parent = kw.pop("parent", req)
        mt = kw.pop("msg_type", mt)
        return self.msg(ch, "kernel", mt, content or {"status": "ok"}, parent, **kw)

    def status(self, req: Sent | None, state: str, **kw: Any) -> Sent:
        return self.msg("iopub", "kernel", "status", {"execution_state": state}, req, **kw)

    def iopub(self, req: Sent | None, msg_type: str, content: dict[str, Any], **kw: Any) -> Sent:
        return self.msg("iopub", "kernel", msg_type, content, req, **kw)

    def start_kernel(self) -> None:
        self.event("kernel_started", pid=1234, argv=["python"], kernel="python3")
        self.iopub(None, "iopub_welcome", {"subscription": ""})
        self.status(None, "starting")

    def kernel_info(self) -> Sent:
        req = self.request("kernel_info_request")
        self.status(req, "busy")
        self.reply(req, KERNEL_INFO)
        self.status(req, "idle")
        return req

    def execute(
        self,
        code: str = "x = 1",
        outputs: list[tuple[str, dict[str, Any]]] | None = None,
        *,
        status: str = "ok",
        count: int | None = None,
        **request: Any,
    ) -> dict[str, Sent]:
        """A whole well-behaved cell; returns its messages by name (request, busy, input,
        the output types, reply, idle)."""
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
            **request,
        }
        sent: dict[str, Sent] = {}
        req = sent["request"] = self.request("execute_request", content)
        sent["busy"] = self.status(req, "busy")
        history = content["store_history"] and not content["silent"]
        if history:
            self.count += 1
        n = self.count if count is None else count
        if not content["silent"]:
            sent["input"] = self.iopub(req, "execute_input", {"code": code, "execution_count": n})
        for msg_type, out in outputs or []:
            sent[msg_type] = self.iopub(req, msg_type, out)
        reply: dict[str, Any] = {"status": status, "execution_count": n}
        if status == "ok":
            reply.update(user_expressions={}, payload=[])
        elif status == "error":
            reply.update(ERROR)
        sent["reply"] = self.reply(req, reply)
        sent["idle"] = self.status(req, "idle")
        return sent

    def close(self) -> Path:
        self.writer.close()
        return self.path


_CONTROL = {
    "interrupt_request",
    "debug_request",
    "create_subshell_request",
    "delete_subshell_request",
    "list_subshell_request",
    "shutdown_request",
}

KERNEL_INFO = {
    "status": "ok",
    "protocol_version": "5.3",
    "implementation": "ipython",
    "implementation_version": "9.0",
    "language_info": {"name": "python", "version": "3.11"},
    "banner": "Python",
}
ERROR = {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": ["tb"]}


def check(path: Path, **kw: Any) -> list[Finding]:
    with LogReader(path) as reader:
        return run_checks(reader, **kw)


def summary(findings: list[Finding]) -> list[tuple[str, int]]:
    """(rule, record index) of each finding: what most tests compare."""
    return [(f.rule, f.index) for f in findings]


def violation_log(path: Path) -> Path:
    """A short session with one protocol violation: an error reply without its error output."""
    conv = Conversation(path)
    conv.start_kernel()
    conv.kernel_info()
    conv.execute("1/0", [], status="error")
    return conv.close()
