"""Who connected to a recorded kernel: how krec's server extension reaches its recording.

The process recording a kernel (the wrapper, or krec-provisioner inside the server)
listens on a ZeroMQ ipc socket whose path is derived from the kernel's connection
file, in a directory only this user can enter. Jupyter Server knows the connection
file and key of every kernel it manages, so for each websocket connection the
extension (krec.server) sends one request, signed with the kernel's key, naming the
user, the notebook path and the kernel id. The reply comes only once the
``client_identity`` event is written to the log, and the extension lets the
connection through only then: the event precedes that connection's first request.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import tempfile
import threading
import time
from typing import Any

import zmq

from krec.recorder.capture.proxy import Proxy
from krec.recorder.capture.thread import name_thread

EVENT = "client_identity"
_FIELDS = ("user", "session_path", "kernel_id")


def identity_socket(connection_file: str) -> str:
    """The ipc path a recording of the kernel of ``connection_file`` listens on."""
    digest = hashlib.sha256(os.path.abspath(connection_file).encode()).hexdigest()[:24]
    return os.path.join(tempfile.gettempdir(), f"krec-{os.getuid()}", f"{digest}.identity")


def _sign(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).hexdigest().encode()


class IdentityListener(threading.Thread):
    """Records each identity it is sent as a ``client_identity`` event, then replies."""

    def __init__(self, connection_file: str, key: bytes, proxy: Proxy) -> None:
        super().__init__(name="krec-identity", daemon=True)
        self.path = identity_socket(connection_file)
        self._key = key
        self._proxy = proxy
        self._stop_event = threading.Event()
        self._ready = threading.Event()

    def start(self) -> None:
        super().start()
        self._ready.wait(5)

    def run(self) -> None:
        name_thread(self.name)
        ctx = zmq.Context()
        sock = ctx.socket(zmq.REP)
        sock.linger = 0
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            sock.bind(f"ipc://{self.path}")
            os.chmod(self.path, 0o600)
        except (OSError, zmq.ZMQError) as e:
            self._proxy.event("identity_channel_failed", error=str(e))
            sock.close()
            ctx.term()
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop_event.is_set():
                if not sock.poll(200):
                    continue
                frames = sock.recv_multipart()
                sock.send(self._handle(frames))
        finally:
            sock.close()
            ctx.term()
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _handle(self, frames: list[bytes]) -> bytes:
        if len(frames) != 2 or not hmac.compare_digest(_sign(self._key, frames[0]), frames[1]):
            return b"error: bad signature"
        try:
            data = json.loads(frames[0])
        except ValueError:
            return b"error: not JSON"
        if not isinstance(data, dict):
            return b"error: not a JSON object"
        fields = {k: str(data.get(k) or "") for k in _FIELDS}
        written = threading.Event()
        self._proxy.capture.event(EVENT, _written=written, **fields)
        return b"ok" if written.wait(10) else b"error: not recorded in time"

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(5)


def send_identity(
    connection_file: str,
    key: bytes,
    fields: dict[str, Any],
    *,
    recorded: bool = False,
    timeout: float = 10.0,
) -> str:
    """Tell the recording of this kernel who connected; "ok", "unrecorded" or "error: ...".

    ``recorded``: the kernel is known to be recorded (a krec kernelspec), so wait up to
    ``timeout`` for its recording to listen (a wrapper may still be starting).
    """
    path = identity_socket(connection_file)
    deadline = time.monotonic() + (timeout if recorded else 0.0)
    while not os.path.exists(path):
        if time.monotonic() >= deadline:
            return "error: the recording does not listen" if recorded else "unrecorded"
        time.sleep(0.05)
    body = json.dumps(fields).encode()
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    try:
        sock.connect(f"ipc://{path}")
        sock.send_multipart([body, _sign(key, body)])
        if not sock.poll(int(timeout * 1000)):
            return "error: no answer from the recording"
        return sock.recv().decode(errors="replace")
    finally:
        sock.close()
