"""`krec serve`: a kernel stand-in that answers a live frontend from a recording.

One thread owns every socket: ROUTER shell, control and stdin, XPUB iopub (it
sends a signed ``iopub_welcome`` for every subscription, JEP 65) and a ROUTER
heartbeat that echoes. Each request a frontend sends is verified (a bad
signature is dropped and logged), matched to a recorded request (match.py) and
answered with the recorded kernel side (playback.py): new msg_ids, this
server's session, the live request as parent, signed with the live key, at the
recorded pace (``realtime``) or at once (``fast``). Shell requests queue like a
kernel's (one lane per subshell), control requests have their own lane, and
interrupt and shutdown are answered at once. Everything received and sent goes
to serve's own log (mode ``serve``), with an event for each match and each
request nothing matched.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq

from krec.recorder.connect import ConnectionInfo
from krec.recorder.errors import ProxyError
from krec.recorder.log.exchange import build_session
from krec.recorder.log.header import log_header
from krec.recorder.log.reader import LogReader
from krec.recorder.log.record import REDACTED
from krec.recorder.log.writer import LogWriter
from krec.recorder.serve.match import NORMAL, STRICT, Matcher, describe
from krec.recorder.serve.playback import (
    REPLY,
    CommIds,
    LiveRequest,
    Playback,
    Step,
    as_object,
    interrupt_steps,
    kernel_info_steps,
    no_recording_steps,
    recorded_steps,
    shutdown_steps,
)
from krec.recorder.wire import (
    Signer,
    WireError,
    WireMessage,
    new_id,
    now_iso,
    serialize,
    split_frames,
)

REALTIME, FAST = "realtime", "fast"
SPEEDS = (REALTIME, FAST)
_SOCKETS = {
    "shell": zmq.ROUTER,
    "control": zmq.ROUTER,
    "stdin": zmq.ROUTER,
    "iopub": zmq.XPUB,
    "hb": zmq.ROUTER,
}


@dataclass
class _Lane:
    queue: deque[LiveRequest] = field(default_factory=deque)
    current: Playback | None = None


class Server:
    """Serves the recording at ``log_path`` on ``info``'s ports, logging to ``output``."""

    def __init__(
        self,
        log_path: str,
        info: ConnectionInfo,
        output: str,
        *,
        strictness: str = NORMAL,
        speed: str = REALTIME,
        notify: Callable[[str], None] | None = None,
        watch_parent: bool = False,
        resume: dict[str, Any] | None = None,
    ) -> None:
        if speed not in SPEEDS:
            raise ValueError(f"unknown speed {speed!r}")
        self.log_path = log_path
        self.reader = LogReader(log_path)
        self.session = build_session(self.reader)
        self.matcher = Matcher(self.session.exchanges, strictness)
        self.info = info
        self.strictness = strictness
        self.speed = speed
        self.notify = notify or (lambda text: None)
        self.signer = Signer(info.key, info.signature_scheme)
        self.session_id = new_id()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.exit_status = 0
        self.reason = ""
        self.restart_requested = False
        self.answered = 0
        self.unmatched = 0
        self.execution_count = 0
        self.comms = CommIds()
        self._lanes: dict[str, _Lane] = {}
        self._socks: dict[str, zmq.Socket] = {}
        self._parent = os.getppid() if watch_parent else None
        kernel = dict(self.session.header.get("kernel") or {})
        header = log_header(
            kernel=kernel,
            connection=info.public(),
            mode="serve",
            serve_of=os.path.abspath(log_path),
            strictness=strictness,
            speed=speed,
        )
        appending = resume is not None and os.path.exists(output)
        try:
            self.writer = LogWriter(output, append=True) if appending else LogWriter(output, header)
        except BaseException:
            self.reader.close()
            raise
        self.output = output
        if resume is not None:
            # a kernel manager restarted us: go on where the previous serve stopped
            self.matcher.used = {int(n) for n in resume.get("used", [])}
            self.matcher.cursor = int(resume.get("cursor", 0))
            self.matcher.restarted(self.session.timeline)
            if appending:
                self.writer.write_event("restart", reason="requested")

    def state(self) -> dict[str, Any]:
        """What a restarted serve needs to go on (see ``resume``)."""
        return {"used": sorted(self.matcher.used), "cursor": self.matcher.cursor}

    # -- running ------------------------------------------------------------------

    def run(self, on_bound: Callable[[ConnectionInfo], None] | None = None) -> int:
        """Bind, call ``on_bound(info)`` (ports filled in), serve until stopped; exit status."""
        ctx = zmq.Context()
        reason = "stopped"
        try:
            self._bind(ctx)
            if on_bound is not None:
                on_bound(self.info)
            self.ready.set()
            reason = self._loop()
        finally:
            self.ready.set()
            for sock in self._socks.values():
                sock.close(linger=1000)  # let the last replies (shutdown_reply) out
            ctx.term()
            self.writer.write_event("recording_stopped", reason=reason)
            self.writer.close()
            self.reader.close()
        return self.exit_status

    def _bind(self, ctx: zmq.Context) -> None:
        info = self.info
        if info.transport == "ipc" and not all(info.port(c) for c in _SOCKETS):
            self.info = info = info.with_free_ports()
        for channel, kind in _SOCKETS.items():
            sock = ctx.socket(kind)
            self._socks[channel] = sock
            sock.sndhwm = sock.rcvhwm = 0
            sock.linger = 1000
            if kind == zmq.XPUB:
                sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            if info.curve:
                sock.curve_secretkey = info.curve_secretkey
                sock.curve_publickey = info.curve_publickey
                sock.curve_server = True
            port = info.port(channel)
            try:
                if port:
                    sock.bind(info.endpoint(channel))
                else:
                    port = sock.bind_to_random_port(f"{info.transport}://{info.ip}")
                    setattr(info, f"{channel}_port", port)
            except zmq.ZMQError as e:
                raise ProxyError(
                    f"cannot listen on {info.endpoint(channel, port)} for {channel}: {e.strerror}"
                ) from None

    def _loop(self) -> str:
        poller = zmq.Poller()
        by_sock = {}
        for channel, sock in self._socks.items():
            poller.register(sock, zmq.POLLIN)
            by_sock[sock] = channel
        while not self.stop.is_set():
            timeout = self._advance()
            if self.stop.is_set():
                break
            for sock, _ in poller.poll(timeout * 1000):
                self._drain(by_sock[sock], sock)
            self.writer.write_through()
            if self._parent is not None and os.getppid() != self._parent:
                return "the process that started serve exited"
        return self.reason or "stopped"

    def _finish(self, reason: str, status: int = 0) -> None:
        self.reason = reason
        self.exit_status = status
        self.stop.set()

    def _drain(self, channel: str, sock: zmq.Socket) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if channel == "hb":
                sock.send_multipart(frames)
            elif channel == "iopub":
                self._subscription(frames)
            else:
                self._received(channel, frames)

    # -- what the frontend sends ------------------------------------------------------

    def _subscription(self, frames: list[bytes]) -> None:
        frame = frames[0] if frames else b""
        if not frame or frame[0] not in (0, 1):
            return
        topic = frame[1:].decode("utf-8", "replace")
        if frame[0] == 0:
            self.writer.write_event("client_unsubscribed", topic=topic)
            return
        self.writer.write_event("client_subscribed", topic=topic)
        header = {
            "msg_id": new_id(),
            "session": self.session_id,
            "username": "krec",
            "date": now_iso(),
            "msg_type": "iopub_welcome",
            "version": "5.4",
        }
        self._emit("iopub", [frame[1:]] if topic else [], header, {"subscription": topic})

    def _received(self, channel: str, frames: list[bytes]) -> None:
        t = time.time_ns()
        try:
            wire = split_frames(frames)
        except WireError as e:
            return self._bad(channel, str(e))
        if not self.signer.verify(wire.signature, wire.signed_parts):
            return self._bad(channel, "bad signature")
        try:
            header = json.loads(wire.header)
            content = json.loads(wire.content)
        except ValueError:
            return self._bad(channel, "a JSON frame does not parse")
        if not isinstance(header, dict) or not isinstance(content, dict):
            return self._bad(channel, "header or content is not a JSON object")
        live = LiveRequest(channel, wire.ids, header, wire.header, content, time.monotonic())
        if channel == "stdin":
            return self._input_reply(live, t, wire)
        self.writer.write_message(
            t, channel, "client", wire.ids, wire.header, wire.parent, wire.metadata, wire.content,
            wire.buffers,
        )  # fmt: skip
        if live.msg_type == "interrupt_request":
            self.writer.write_event("interrupt", mode="message")
            for lane in self._lanes.values():
                if lane.current is not None:
                    lane.current.interrupted = True
                    lane.current.waiting = None
            self._play_now(live, interrupt_steps())
        elif live.msg_type == "shutdown_request":
            restart = self.restart_requested = bool(content.get("restart"))
            self._play_now(live, shutdown_steps(restart))
            self._finish("shutdown requested" + (" (restart)" if restart else ""))
        else:
            key = "control" if channel == "control" else f"shell:{live.subshell_id or ''}"
            self._lanes.setdefault(key, _Lane()).queue.append(live)

    def _bad(self, channel: str, reason: str) -> None:
        self.writer.write_event("bad_message", ch=channel, reason=reason, **{"from": "client"})
        self.notify(f"dropped a message on {channel}: {reason}")

    def _input_reply(self, live: LiveRequest, t: int, wire: WireMessage) -> None:
        waiting = [
            lane.current
            for lane in self._lanes.values()
            if lane.current is not None and lane.current.waiting is not None
        ]
        owner = next((pb for pb in waiting if pb.request.ids == live.ids), None)
        owner = owner or (waiting[0] if waiting else None)
        content = wire.content
        if owner is not None and owner.waiting is not None:
            prompt = as_object(owner.waiting.content)
            if prompt.get("password") and isinstance(live.content.get("value"), str):
                length = len(live.content["value"])
                self.writer.write_event(
                    "password_redacted", length=length, parent_msg_id=owner.prompt_id
                )
                content = json.dumps({**live.content, "value": REDACTED}).encode()
        self.writer.write_message(
            t, "stdin", "client", wire.ids, wire.header, wire.parent, wire.metadata, content,
            wire.buffers,
        )  # fmt: skip
        if owner is None or owner.waiting is None:
            self.writer.write_event("unexpected_input_reply", msg_id=live.msg_id)
            return
        step, owner.waiting = owner.waiting, None
        owner.base = time.monotonic() - (step.resume or step.at) / 1e9

    # -- answering ----------------------------------------------------------------------

    def _advance(self) -> float:
        """Start queued requests and send every due step; seconds until the next one is due."""
        now = time.monotonic()
        wait = 0.1
        for lane in self._lanes.values():
            while not self.stop.is_set():
                if lane.current is None:
                    if not lane.queue:
                        break
                    lane.current = self._start(lane.queue.popleft(), now)
                pb = lane.current
                due = self._send_due(pb, now)
                if not pb.done:
                    if due is not None:
                        wait = min(wait, max(0.0, due - now))
                    break
                lane.current = None
                self.answered += 1
                if pb.stop_after:
                    self._finish("unmatched request (--strict)", 1)
        return wait

    def _start(self, live: LiveRequest, now: float) -> Playback:
        content = self.comms.recorded_content(live.content)
        found = self.matcher.match(live.msg_type, content)
        if found is not None:
            ex = found.exchange
            self.writer.write_event(
                "matched", msg_id=live.msg_id, request=ex.number, by=found.by, reused=found.reused
            )
            if found.by == "type":
                self.notify(f"{live.msg_type}: nothing matched its content; answered with "
                            f"{describe(ex)} (--loose)")  # fmt: skip
            if live.msg_type == "comm_open":
                self.comms.learn(
                    str(ex.request.content.get("comm_id", "")), str(live.content.get("comm_id", ""))
                )
            records = [self.reader[i] for i in ex.records]
            steps, latency = recorded_steps(ex, records)
            realtime = self.speed == REALTIME
            base = max(now, live.arrived + latency / 1e9) if realtime else now
            return Playback(live, steps, base, realtime=realtime)
        if live.msg_type == "kernel_info_request":
            kernel = dict(self.session.header.get("kernel") or {})
            return Playback(live, kernel_info_steps(kernel, self.log_path), now)
        self.unmatched += 1
        reason = self.matcher.unmatched_reason(live.msg_type, content)
        near = self.matcher.nearest(live.msg_type, content)
        self.writer.write_event(
            "no_recording",
            msg_id=live.msg_id,
            msg_type=live.msg_type,
            reason=reason,
            nearest=near.number if near is not None else None,
        )
        self.notify(f"no recording for {live.msg_type}: {reason}")
        if live.msg_type == "execute_request" and not live.content.get("silent"):
            self.execution_count += 1
        steps = no_recording_steps(live.msg_type, live.content, reason, self.execution_count)
        return Playback(live, steps, now, stop_after=self.strictness == STRICT)

    def _send_due(self, pb: Playback, now: float) -> float | None:
        """Send the steps of ``pb`` that are due; when the next one is due (None: none/waiting)."""
        while pb.pos < len(pb.steps) and pb.waiting is None:
            step = pb.steps[pb.pos]
            due = pb.base + step.at / 1e9
            if pb.realtime and not pb.interrupted and due > now:
                return due
            pb.pos += 1
            if step.waits_for_input:
                if pb.interrupted or pb.request.content.get("allow_stdin") is False:
                    # a kernel would raise; the recording goes on as if it had been answered
                    self.writer.write_event("input_skipped", msg_id=pb.request.msg_id)
                    pb.base = now - (step.resume or step.at) / 1e9
                    continue
                pb.prompt_id = self._send(pb, step)
                pb.waiting = step
                return None
            self._send(pb, step)
        return None

    def _play_now(self, live: LiveRequest, steps: list[Step]) -> None:
        pb = Playback(live, steps, time.monotonic())
        for step in steps:
            self._send(pb, step)

    def _send(self, pb: Playback, step: Step) -> str:
        """Send one step as a fresh message answering ``pb``'s request; return its msg_id."""
        live = pb.request
        header = dict(step.header)
        header.update(msg_id=new_id(), session=self.session_id, date=now_iso())
        if "subshell_id" in header or live.subshell_id is not None:
            header["subshell_id"] = live.subshell_id
        content = step.content
        topic = step.topic
        if self.comms.applies(step.msg_type):
            content, topic = self.comms.live_content(content, topic)
        if step.msg_type in ("execute_input", "execute_reply"):
            count = as_object(content).get("execution_count")
            if isinstance(count, int):
                self.execution_count = max(self.execution_count, count)
        ch = live.ch if step.ch == REPLY else step.ch
        ids = topic if ch == "iopub" else live.ids
        self._emit(ch, ids, header, content, live.header_raw, step.metadata, step.buffers)
        return str(header["msg_id"])

    def _emit(
        self,
        ch: str,
        ids: list[bytes],
        header: dict[str, Any],
        content: bytes | dict[str, Any],
        parent: bytes | None = None,
        metadata: bytes | dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        frames = serialize(
            self.signer, header, content, parent=parent, metadata=metadata,
            buffers=buffers or [], ids=ids,
        )  # fmt: skip
        self._socks[ch].send_multipart(frames)
        h, p, m, c = frames[len(ids) + 2 : len(ids) + 6]
        self.writer.write_message(time.time_ns(), ch, "kernel", ids, h, p, m, c, buffers or [])


def default_output(log_path: str, log_dir: str = "krec-logs") -> str:
    """``LOG_DIR/STEM-serve-YYYYmmdd-HHMMSS-XXXXXX.krec``: where serve logs by default."""
    stem = os.path.splitext(os.path.basename(log_path))[0]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join(log_dir, f"{stem}-serve-{stamp}-{os.urandom(3).hex()}.krec")
