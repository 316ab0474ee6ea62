"""What `krec serve` sends for one live request: the recorded kernel side, as timed steps.

A ``Step`` is one message to send ``at`` ns after the playback's anchor (the
kernel's first recorded message for the request). Recorded steps carry the
recorded header fields, metadata, content and buffers; the server gives each a
new msg_id, the live session and the live request as parent when it sends it.
Synthesized steps answer what the recording cannot: kernel_info when the log
has none, a request nothing matches (a ``KrecNoRecording`` error), interrupt and
shutdown. An ``input_request`` step makes the playback wait for the frontend's
``input_reply``; ``resume`` is where the recording went on after its answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from krec.recorder import __version__
from krec.recorder.log.exchange import Exchange
from krec.recorder.log.record import Record
from krec.recorder.wire import PROTOCOL_VERSION

NO_RECORDING = "KrecNoRecording"
REPLY = "reply"  # a step sent on the live request's own channel (shell or control)


@dataclass
class Step:
    """One message of a playback."""

    ch: str  # REPLY, "iopub" or "stdin"
    header: dict[str, Any]  # msg_type, username, version... (ids and date replaced on sending)
    content: bytes | dict[str, Any]
    metadata: bytes | dict[str, Any] = b"{}"
    buffers: list[bytes] = field(default_factory=list)
    topic: list[bytes] = field(default_factory=list)  # iopub routing frames
    at: int = 0  # ns after the anchor
    resume: int | None = None  # input_request: ns after the anchor where the recording resumed
    record: int | None = None  # index of the recorded record, None when synthesized

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def waits_for_input(self) -> bool:
        return self.ch == "stdin" and self.msg_type == "input_request"


@dataclass
class LiveRequest:
    """A request as the frontend sent it."""

    ch: str
    ids: list[bytes]
    header: dict[str, Any]
    header_raw: bytes
    content: dict[str, Any]
    arrived: float  # time.monotonic()

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def msg_id(self) -> str:
        return str(self.header.get("msg_id", ""))

    @property
    def subshell_id(self) -> str | None:
        sub = self.header.get("subshell_id")
        return sub if isinstance(sub, str) else None


@dataclass
class Playback:
    """The steps answering one live request, and how far they have been sent."""

    request: LiveRequest
    steps: list[Step]
    base: float  # monotonic time of the anchor: a step is due at base + at
    realtime: bool = False  # wait for each step's recorded offset (else send at once)
    pos: int = 0
    waiting: Step | None = None  # an input_request sent, its input_reply not yet received
    prompt_id: str = ""  # msg_id of that input_request as sent
    interrupted: bool = False  # send the rest at once, ask for no more input
    stop_after: bool = False  # --strict: stop serving once this is sent

    @property
    def done(self) -> bool:
        return self.pos >= len(self.steps) and self.waiting is None


def as_object(content: bytes | dict[str, Any]) -> dict[str, Any]:
    """A content frame as a dict ({} when a recorded frame is not a JSON object)."""
    if isinstance(content, dict):
        return dict(content)
    try:
        data = json.loads(content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class CommIds:
    """Comm ids the frontend chose for comms it opened, mapped onto the recorded ones.

    Comms the kernel opened keep their recorded ids (the frontend adopts them);
    a frontend's own ``comm_open`` carries a fresh id, so a later ``comm_msg`` is
    matched under the recorded id and the recorded answers name the live one.
    """

    def __init__(self) -> None:
        self.to_live: dict[str, str] = {}
        self.to_recorded: dict[str, str] = {}

    def learn(self, recorded: str, live: str) -> None:
        if recorded and live and recorded != live:
            self.to_live[recorded] = live
            self.to_recorded[live] = recorded

    def recorded_content(self, content: dict[str, Any]) -> dict[str, Any]:
        """A live request's content with its comm id as the recording knows it."""
        cid = content.get("comm_id")
        if isinstance(cid, str) and cid in self.to_recorded:
            return {**content, "comm_id": self.to_recorded[cid]}
        return content

    def applies(self, msg_type: str) -> bool:
        return bool(self.to_live) and msg_type.startswith("comm_")

    def live_content(
        self, content: bytes | dict[str, Any], topic: list[bytes]
    ) -> tuple[bytes | dict[str, Any], list[bytes]]:
        """A recorded message's content (and iopub topic) with the frontend's comm ids."""
        data = as_object(content)
        cid, comms = data.get("comm_id"), data.get("comms")
        mapped = isinstance(cid, str) and cid in self.to_live
        if not mapped and not isinstance(comms, dict):
            return content, topic  # nothing to map (or not JSON): sent as recorded
        if isinstance(cid, str) and mapped:
            old, new = f"comm-{cid}".encode(), f"comm-{self.to_live[cid]}".encode()
            data["comm_id"] = self.to_live[cid]
            topic = [new if t == old else t for t in topic]
        if isinstance(comms, dict):  # comm_info_reply
            data["comms"] = {self.to_live.get(k, k): v for k, v in comms.items()}
        return data, topic


def recorded_steps(ex: Exchange, records: Sequence[Record]) -> tuple[list[Step], int]:
    """The kernel side of a recorded exchange as steps, and its request-to-first-message ns.

    ``records`` are the exchange's records in log order (``Exchange.records``).
    """
    kernel = [r for r in records if r.source == "kernel" and not r.is_event]
    anchor = max(ex.t, min((r.t for r in kernel), default=ex.t))
    steps: list[Step] = []
    for i, rec in enumerate(records):
        if rec.source != "kernel" or rec.is_event:
            continue
        ch = "iopub" if rec.ch == "iopub" else "stdin" if rec.ch == "stdin" else REPLY
        step = Step(
            ch=ch,
            header=dict(rec.header),
            content=rec.frame("content"),
            metadata=rec.frame("metadata"),
            buffers=list(rec.buffers),
            topic=list(rec.ids) if ch == "iopub" else [],
            at=max(0, rec.t - anchor),
            record=rec.index,
        )
        if step.waits_for_input:
            answer = next(
                (
                    r
                    for r in records[i + 1 :]
                    if r.source == "client" and r.msg_type == "input_reply"
                ),
                None,
            )
            step.resume = max(step.at, answer.t - anchor) if answer is not None else step.at
        steps.append(step)
    return steps, anchor - ex.t


def _header(msg_type: str, version: str) -> dict[str, Any]:
    return {
        "msg_id": "",
        "session": "",
        "username": "krec",
        "date": "",
        "msg_type": msg_type,
        "version": version,
    }


def status(state: str, version: str = PROTOCOL_VERSION) -> Step:
    return Step("iopub", _header("status", version), {"execution_state": state}, topic=[b"status"])


def synthesized(
    reply_type: str | None,
    content: dict[str, Any],
    outputs: Sequence[tuple[str, dict[str, Any]]] = (),
    version: str = PROTOCOL_VERSION,
) -> list[Step]:
    """busy, outputs, the reply (if the request has one), idle: as a kernel answers."""
    steps = [status("busy", version)]
    for msg_type, body in outputs:
        steps.append(Step("iopub", _header(msg_type, version), body, topic=[msg_type.encode()]))
    if reply_type is not None:
        steps.append(Step(REPLY, _header(reply_type, version), content))
    steps.append(status("idle", version))
    return steps


def reply_type(msg_type: str) -> str | None:
    """``foo_request`` -> ``foo_reply``; None for messages that get no reply (comm_msg...)."""
    if msg_type.endswith("_request"):
        return msg_type[: -len("_request")] + "_reply"
    return None


def kernel_info_steps(kernel: dict[str, Any], log_path: str) -> list[Step]:
    """A kernel_info_reply for a log that has none, so frontends still consider serve ready."""
    language = str(kernel.get("language") or "")
    info: dict[str, Any] = {"name": language or "unknown", "version": "", "mimetype": "text/plain"}
    if language == "python":
        info.update(
            mimetype="text/x-python",
            file_extension=".py",
            pygments_lexer="ipython3",
            codemirror_mode={"name": "ipython", "version": 3},
            nbconvert_exporter="python",
        )
    content = {
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "krec-serve",
        "implementation_version": __version__,
        "language_info": info,
        "banner": f"krec serve: answering from the recording {os.path.basename(log_path)}\n",
        "help_links": [],
        "debugger": False,
    }
    return synthesized("kernel_info_reply", content)


def no_recording_steps(
    msg_type: str, request: dict[str, Any], evalue: str, execution_count: int
) -> list[Step]:
    """The well-formed error answer to a request no recording matches (docs/serve.md)."""
    error = {
        "ename": NO_RECORDING,
        "evalue": evalue,
        "traceback": [f"{NO_RECORDING}: {evalue}"],
    }
    kind = reply_type(msg_type)
    content: dict[str, Any] = {"status": "error", **error}
    outputs: list[tuple[str, dict[str, Any]]] = []
    if msg_type == "execute_request":
        content.update(execution_count=execution_count, user_expressions={}, payload=[])
        if not request.get("silent"):
            code = request.get("code", "")
            outputs = [
                ("execute_input", {"code": code, "execution_count": execution_count}),
                ("error", dict(error)),
            ]
    elif msg_type == "complete_request":
        cursor = request.get("cursor_pos", 0)
        content.update(matches=[], cursor_start=cursor, cursor_end=cursor, metadata={})
    elif msg_type == "inspect_request":
        content.update(found=False, data={}, metadata={})
    elif msg_type == "is_complete_request":
        content["status"] = "unknown"  # the only statuses this reply may have
    elif msg_type == "history_request":
        content["history"] = []
    elif msg_type == "comm_info_request":
        content["comms"] = {}
    return synthesized(kind, content, outputs)


def interrupt_steps() -> list[Step]:
    return synthesized("interrupt_reply", {"status": "ok"})


def shutdown_steps(restart: bool) -> list[Step]:
    """Like ipykernel: the reply on control, and the same on iopub for other frontends."""
    content = {"status": "ok", "restart": restart}
    steps = synthesized("shutdown_reply", content)
    steps.insert(-1, Step("iopub", _header("shutdown_reply", PROTOCOL_VERSION), dict(content)))
    return steps
