"""A small frontend on raw pyzmq for the messages krec itself sends (replay).

Shell and stdin share one identity so the kernel can route ``input_request``;
every message received is signature-checked, and frames that fail are dropped
and counted rather than trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import zmq

from krec.recorder.connect import ConnectionInfo
from krec.recorder.wire import (
    DELIM,
    Signer,
    WireError,
    make_header,
    new_id,
    serialize,
    split_frames,
)

CLIENT_CHANNELS = ("shell", "control", "stdin", "iopub")


@dataclass
class Incoming:
    """A message received from the kernel, JSON frames parsed."""

    channel: str
    header: dict[str, Any]
    parent: dict[str, Any]
    metadata: dict[str, Any]
    content: dict[str, Any]
    buffers: list[bytes]

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def parent_id(self) -> str:
        return str(self.parent.get("msg_id", ""))


class KernelConnection:
    """DEALER shell/control/stdin and SUB iopub connected to one kernel (or proxy)."""

    def __init__(self, info: ConnectionInfo, *, username: str = "krec") -> None:
        self.info = info
        self.session = new_id()
        self.username = username
        self.signer = Signer(info.key, info.signature_scheme)
        self.bad_signatures = 0
        self._ctx = zmq.Context()
        self.sockets: dict[str, zmq.Socket] = {}
        identity = self.session.encode()
        for channel in CLIENT_CHANNELS:
            sock = self._ctx.socket(zmq.SUB if channel == "iopub" else zmq.DEALER)
            sock.linger = 0
            if channel in ("shell", "stdin"):
                sock.identity = identity
            if channel == "iopub":
                sock.subscribe(b"")
            if info.curve:
                public, secret = zmq.curve_keypair()
                sock.curve_publickey, sock.curve_secretkey = public, secret
                sock.curve_serverkey = info.curve_publickey
            sock.connect(info.endpoint(channel))
            self.sockets[channel] = sock
        self._poller = zmq.Poller()
        self._by_socket = {}
        for channel, sock in self.sockets.items():
            self._poller.register(sock, zmq.POLLIN)
            self._by_socket[sock] = channel

    def send(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any] | bytes,
        *,
        parent: dict[str, Any] | None = None,
        metadata: dict[str, Any] | bytes | None = None,
        buffers: list[bytes] | None = None,
        header_extra: dict[str, Any] | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        """Sign and send a new message; return its header."""
        kw = {"version": version} if version else {}
        header = make_header(
            msg_type, self.session, username=self.username, extra=header_extra, **kw
        )
        frames = serialize(
            self.signer, header, content, parent=parent, metadata=metadata, buffers=buffers or []
        )
        self.sockets[channel].send_multipart(frames)
        return header

    def poll(self, timeout: float) -> list[Incoming]:
        """Messages that arrive within ``timeout`` seconds (at least one poll)."""
        got: list[Incoming] = []
        for sock, _ in self._poller.poll(max(0, timeout) * 1000):
            channel = self._by_socket[sock]
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                msg = self._parse(channel, frames)
                if msg is not None:
                    got.append(msg)
        return got

    def _parse(self, channel: str, frames: list[bytes]) -> Incoming | None:
        if DELIM not in frames:
            return None
        try:
            wire = split_frames(frames)
        except WireError:
            return None
        if not self.signer.verify(wire.signature, wire.signed_parts):
            self.bad_signatures += 1
            return None
        try:
            return Incoming(
                channel,
                json.loads(wire.header),
                json.loads(wire.parent),
                json.loads(wire.metadata),
                json.loads(wire.content),
                wire.buffers,
            )
        except ValueError:
            return None

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close(linger=0)
        self._ctx.term()

    def __enter__(self) -> KernelConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
