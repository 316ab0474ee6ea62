"""A frontend on raw pyzmq that keeps every frame it sends and receives, for byte-level checks."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.session import Session

DELIM = b"<IDS|MSG>"


def split(frames: list[bytes]) -> tuple[bytes, bytes, bytes, bytes, list[bytes]]:
    i = frames.index(DELIM)
    return frames[i + 2], frames[i + 3], frames[i + 4], frames[i + 5], frames[i + 6 :]


class RawClient:
    """DEALERs for shell/control/stdin (shell and stdin share the session identity), SUB iopub."""

    def __init__(self, connection_file: Path | str) -> None:
        info = json.loads(Path(connection_file).read_text())
        self.info = info
        self.session = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"])
        self.ctx = zmq.Context()
        self.sockets: dict[str, zmq.Socket] = {}
        for channel, kind in (
            ("shell", zmq.DEALER),
            ("control", zmq.DEALER),
            ("stdin", zmq.DEALER),
            ("iopub", zmq.SUB),
        ):
            s = self.ctx.socket(kind)
            s.linger = 0
            if channel in ("shell", "stdin"):
                s.identity = self.session.bsession
            if kind == zmq.SUB:
                s.subscribe(b"")
            if info.get("curve_publickey"):
                pub, sec = zmq.curve_keypair()
                s.curve_publickey, s.curve_secretkey = pub, sec
                s.curve_serverkey = info["curve_publickey"].encode()
            s.connect(f"{info['transport']}://{info['ip']}:{info[channel + '_port']}")
            self.sockets[channel] = s
        self.sent: list[tuple[str, list[bytes]]] = []
        self.received: list[tuple[str, list[bytes]]] = []
        self.poller = zmq.Poller()
        for s in self.sockets.values():
            self.poller.register(s, zmq.POLLIN)

    def send(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        msg = self.session.msg(msg_type, content, parent=parent)
        frames = self.session.serialize(msg)
        self.sockets[channel].send_multipart(frames)
        self.sent.append((channel, frames))
        return msg

    def poll(self, timeout: float) -> list[tuple[str, dict[str, Any]]]:
        got = []
        for sock, _ in self.poller.poll(timeout * 1000):
            channel = next(c for c, s in self.sockets.items() if s is sock)
            frames = sock.recv_multipart()
            self.received.append((channel, frames))
            header, parent, _, content, _ = split(frames)
            got.append(
                (
                    channel,
                    {
                        "header": json.loads(header),
                        "parent": json.loads(parent),
                        "content": json.loads(content),
                    },
                )
            )
        return got

    def wait_ready(self, timeout: float = 30) -> None:
        """kernel_info until a reply and some iopub message have both arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.send("shell", "kernel_info_request", {})
            replied = iopub = False
            end = time.monotonic() + 1
            while time.monotonic() < end and not (replied and iopub):
                for channel, m in self.poll(0.1):
                    if channel == "iopub":
                        iopub = True
                    if (
                        m["parent"].get("msg_id") == msg["header"]["msg_id"]
                        and m["header"]["msg_type"] == "kernel_info_reply"
                    ):
                        replied = True
            if replied and iopub:
                self.drain(0.3)
                return
        raise TimeoutError("kernel not ready")

    def drain(self, quiet: float) -> None:
        while self.poll(quiet):
            pass

    def request(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        timeout: float = 30,
        stdin_answer: str | None = None,
    ) -> list[dict[str, Any]]:
        """Send a request; collect everything with it as parent until reply and idle."""
        msg = self.send(channel, msg_type, content)
        mid = msg["header"]["msg_id"]
        out: list[dict[str, Any]] = []
        replied = idle = False
        deadline = time.monotonic() + timeout
        while not (replied and idle):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply/idle for {msg_type}")
            for ch, m in self.poll(0.2):
                if m["parent"].get("msg_id") != mid:
                    continue
                m["channel"] = ch
                out.append(m)
                mt = m["header"]["msg_type"]
                if ch == "stdin" and mt == "input_request" and stdin_answer is not None:
                    self.send("stdin", "input_reply", {"value": stdin_answer}, parent=m["header"])
                if ch == channel and mt.endswith("_reply"):
                    replied = True
                if ch == "iopub" and mt == "status" and m["content"]["execution_state"] == "idle":
                    idle = True
        return out

    def close(self) -> None:
        for s in self.sockets.values():
            s.close(linger=0)
        self.ctx.term()
