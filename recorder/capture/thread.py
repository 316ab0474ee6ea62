"""The capture thread: turns frames copied off the forwarding path into log records.

Forwarders (proxy.py) push every message they relay, prefixed with a one-byte
channel/direction code, to one inproc PULL socket owned by this thread. This
thread splits the frames (no JSON parsing except on the rare control and stdin
messages), stamps them, and appends them to the LogWriter, which hands every batch
to the operating system before the thread waits again (a SIGKILL of krec loses
nothing the frontend has seen) and fsyncs at least every 100 ms. It also answers
each new iopub subscription with krec's own signed ``iopub_welcome`` (JEP 65),
redacts password input, and logs events that other threads hand it through
``event()``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

from krec.recorder.log.record import REDACTED
from krec.recorder.log.writer import LogWriter
from krec.recorder.wire import DELIM, Signer, make_header, new_id, peek_msg_id, serialize

#: prefix code -> (channel, source). Lower case: from the client side; upper: kernel side.
CODES: dict[bytes, tuple[str, str]] = {
    b"s": ("shell", "client"),
    b"S": ("shell", "kernel"),
    b"c": ("control", "client"),
    b"C": ("control", "kernel"),
    b"i": ("stdin", "client"),
    b"I": ("stdin", "kernel"),
    b"O": ("iopub", "kernel"),
    b"o": ("iopub", "client"),  # subscription frames from the frontend-side XPUB
}
_KNOWN_REQUESTS = 20000

# Batching under load: while messages keep coming (more than one per drain, or drains less
# than _BATCH_SLEEP apart) wait _BATCH_SLEEP between drains: one wakeup then records many,
# and the forwarders need not signal this thread for each. A lone message is stamped at once.
_BATCH_SLEEP = 0.002
_CAPTURE_NICE = 5
# after these events the kernel sends nothing: the messages waiting are recorded first
_ENDING_EVENTS = frozenset({"kernel_stopped", "kernel_died", "kernel_exited", "restart"})
_SYNC = ""  # sync(): drains like an ending event, writes nothing
_DRAINING = _ENDING_EVENTS | {_SYNC}
_DRAIN_BATCHES = 20  # at most this many batches of them


class CaptureThread(threading.Thread):
    """Owns the capture PULL socket and the LogWriter; the only thread that writes the log."""

    def __init__(
        self,
        *,
        writer: LogWriter,
        capture_ctx: zmq.Context,
        forward_ctx: zmq.Context,
        capture_addr: str,
        inject_addr: str,
        signer: Signer,
        record_passwords: bool = False,
        on_control: Callable[[str, dict[str, Any]], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(name="krec-capture", daemon=True)
        self.writer = writer
        self._capture_ctx = capture_ctx
        self._forward_ctx = forward_ctx
        self._capture_addr = capture_addr
        self._inject_addr = inject_addr
        self._signer = signer
        self._record_passwords = record_passwords
        self._on_control = on_control
        self._warn = warn or (lambda text: print(f"krec: {text}", file=sys.stderr, flush=True))
        self._events: queue.SimpleQueue[tuple[int, str, dict[str, Any]]] = queue.SimpleQueue()
        self._deferred_events: list[tuple[int, str, dict[str, Any]]] = []
        self._session = ""
        self._welcomes: set[bytes] = set()
        self._requests: dict[str, None] = {}  # msg_ids of recent client requests, in order
        self._held: list[tuple[Any, ...]] = []  # iopub records waiting for their request
        self._inject: zmq.Socket | None = None
        self._password_prompts: dict[tuple[bytes, ...], str] = {}
        # input_request prompts written and not yet answered, per client identity; an
        # input_reply read before its prompt (the capture socket takes turns between the
        # forwarders, so a busy moment can swap them) waits for it, at most to batch end
        self._open_prompts: dict[tuple[bytes, ...], int] = {}
        self._early_replies: list[tuple[Any, ...]] = []
        self._client_version_seen = False
        self._release_inject = threading.Event()
        self._inject_released = threading.Event()
        self._drain = threading.Event()
        self._stopped_by: dict[str, Any] = {"reason": "stopped"}
        self.ready = threading.Event()
        self.messages = 0
        self.failure: BaseException | None = None
        self._warned_write = False
        self._warned_removed = False
        self._next_removal_check = 0.0

    # -- API for other threads ------------------------------------------------

    def event(self, name: str, **fields: Any) -> None:
        """Queue an event record (thread-safe); it is stamped now."""
        self._events.put((time.time_ns(), name, fields))

    def sync(self, timeout: float = 5.0) -> bool:
        """Until everything forwarded so far is recorded and seen by ``on_control``."""
        done = threading.Event()
        self._events.put((0, _SYNC, {"_written": done}))
        return self.is_alive() and done.wait(timeout)

    def release_forward_sockets(self, timeout: float = 5.0) -> None:
        """Close this thread's socket in the forwarding context so it can terminate."""
        self._release_inject.set()
        self._inject_released.wait(timeout)

    def drain_and_stop(self, reason: str, timeout: float = 10.0, **fields: Any) -> None:
        """Record everything still queued, then ``recording_stopped``, fsync and close."""
        self._stopped_by = {"reason": reason, **fields}
        self._release_inject.set()
        self._drain.set()
        self.join(timeout)

    # -- the loop ---------------------------------------------------------------

    def run(self) -> None:
        name_thread(self.name)
        # Recording can lag a little; forwarding cannot. Under CPU contention (two cores
        # shared with the kernel and the frontend) this thread yields to the others.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _CAPTURE_NICE)
        pull = self._capture_ctx.socket(zmq.PULL)
        pull.rcvhwm = 0
        pull.linger = 0
        # a blocking receive with a timeout, not a poller: on a VM a poller's wakeup costs
        # several times what the message does
        pull.rcvtimeo = 50
        pull.bind(self._capture_addr)
        inject: zmq.Socket | None = self._forward_ctx.socket(zmq.PUB)
        inject.sndhwm = 0
        inject.linger = 0
        inject.bind(self._inject_addr)
        self._inject = inject
        self._pull = pull
        self._session = new_id()
        self.ready.set()
        writer = self.writer
        woke = 0.0
        try:
            while True:
                if self._inject is not None and self._release_inject.is_set():
                    self._inject.close()
                    self._inject = None
                    self._inject_released.set()
                draining = self._drain.is_set()
                self._write_events()
                n = self._receive(pull, block=not draining)
                # to the OS before waiting again: what a frontend has seen survives a SIGKILL
                writer.write_through()
                self._check_writer()
                if n:
                    woke, last_woke = time.monotonic(), woke
                    if n > 1 or woke - last_woke < _BATCH_SLEEP:
                        # a stream: let messages pile up a little so each wakeup records
                        # many (a lone message, the usual interactive case, is stamped at once)
                        time.sleep(_BATCH_SLEEP)
                if draining and n == 0:
                    self._write_events()
                    writer.write_event("recording_stopped", **self._stopped_by)
                    break
        except BaseException as e:  # crash visibly: the session must know it is unrecorded
            self.failure = e
            self._warn(f"recording failed: {e!r}; messages are still forwarded but not recorded")
        finally:
            if self._inject is not None:
                self._inject.close()
                self._inject = None
            self._inject_released.set()
            pull.close()
            writer.close()

    def _receive(self, pull: zmq.Socket, block: bool) -> int:
        """Record the messages waiting on the capture socket (up to a batch).

        Every channel's forwarder pushes here, and the socket takes turns between
        them, so a kernel's first outputs for a request can come out before the
        request itself (pushed by another forwarder just before). An iopub message
        whose request has not been seen is held back, with the iopub messages after
        it, until that request is written or the batch ends.
        """
        # This loop is the hot path. recv_multipart asks getsockopt(RCVMORE) after every
        # frame, which costs more than the receive itself; a non-copying receive carries
        # the flag on the Frame, so frames are received that way and copied once here.
        recv = pull.recv
        flags = 0 if block else zmq.NOBLOCK
        write = self.writer.write_message
        now = time.time_ns
        requests = self._requests
        held = self._held
        n = 0
        while n < 5000:
            try:
                frame = recv(flags, copy=False)
            except zmq.Again:
                break
            if flags != zmq.NOBLOCK and not self._events.empty():
                # events other threads queued while this one waited (an interrupt krec
                # sent, an identity) come before the messages that woke it; an ending
                # event waits until the messages already forwarded are recorded
                self._write_events(defer_ending=True)
            flags = zmq.NOBLOCK
            frames = [frame.bytes]
            while frame.more:
                frame = recv(0, copy=False)
                frames.append(frame.bytes)
            n += 1
            code = frames[0]
            if code == b"O" or code == b"S":
                # the hot path: kernel output and replies, recorded as they are
                ch, source = CODES[code]
                try:
                    i = frames.index(DELIM, 1)
                except ValueError:
                    self._bad(now(), ch, source, frames[1:], "no <IDS|MSG> delimiter")
                    continue
                if len(frames) < i + 6:
                    self._bad(now(), ch, source, frames[1:], "too few frames after <IDS|MSG>")
                    continue
                header, parent = frames[i + 2], frames[i + 3]
                record = (
                    now(),
                    ch,
                    source,
                    frames[1:i],
                    header,
                    parent,
                    frames[i + 4],
                    frames[i + 5],
                    frames[i + 6 :],
                )
                if code == b"O":
                    if self._welcomes and header in self._welcomes:
                        self._welcomes.discard(header)
                        record = (record[0], ch, "krec", *record[3:])
                    if held or (len(parent) > 2 and peek_msg_id(parent) not in requests):
                        held.append(record)
                        continue
                write(*record)
            elif code == b"o":
                self._subscription(now(), frames[1:])
            elif code in CODES:
                ch, source = CODES[code]
                self._rare(now(), ch, source, frames[1:])
            else:
                self._bad(now(), "", "", frames, "unknown capture code")
        self._release_held()
        for record in self._early_replies:  # no prompt came for them in this batch
            self.writer.write_message(*record)
        self._early_replies.clear()
        self.messages += n
        return n

    def _release_held(self) -> None:
        write = self.writer.write_message
        for record in self._held:
            write(*record)
        self._held.clear()

    def _stdin_in_order(self, record: tuple[Any, ...], msg_type: str) -> bool:
        """Write a prompt's answer after the prompt: False when ``record`` is held back."""
        who = tuple(record[3])
        prompts = self._open_prompts
        if msg_type == "input_request" and record[2] == "kernel":
            self.writer.write_message(*record)
            early = next((r for r in self._early_replies if tuple(r[3]) == who), None)
            if early is not None:
                self._early_replies.remove(early)
                self.writer.write_message(*early)
            else:
                prompts[who] = prompts.get(who, 0) + 1
            return False
        if msg_type == "input_reply" and record[2] == "client":
            if prompts.get(who, 0) > 0:
                prompts[who] -= 1
                return True
            self._early_replies.append(record)
            return False
        return True

    def _rare(self, t: int, ch: str, source: str, frames: list[bytes]) -> None:
        """Shell requests, control and stdin: verify, parse the few fields krec acts on."""
        try:
            i = frames.index(DELIM)
        except ValueError:
            self._bad(t, ch, source, frames, "no <IDS|MSG> delimiter")
            return
        if len(frames) < i + 6:
            self._bad(t, ch, source, frames, "too few frames after <IDS|MSG>")
            return
        signature, header, parent, metadata, content = frames[i + 1 : i + 6]
        ids, buffers = frames[:i], frames[i + 6 :]
        if source == "client":
            # what a client sends is forwarded whatever it is (the kernel decides), but flagged
            problem = ""
            if not self._signer.verify(signature, (header, parent, metadata, content)):
                problem = "bad signature"
            elif not _loads(header).get("msg_type"):
                problem = "header is not a JSON object with a msg_type"
            if problem:
                self.writer.write_event(
                    "bad_message", t=t, ch=ch, reason=problem, **{"from": source}
                )
        request = source == "client" and ch != "stdin"
        if request:
            self._remember_request(header)
        if ch == "shell":
            if source == "client" and not self._client_version_seen:
                self._note_client_version(t, header)
        else:
            h = _loads(header)
            msg_type = h.get("msg_type", "")
            if ch == "control" and source == "client":
                c = _loads(content)
                if msg_type == "interrupt_request":
                    self.writer.write_event("interrupt", t=t, mode="message")
                if self._on_control is not None and msg_type:
                    self._on_control(msg_type, c)
            elif ch == "stdin":
                content = self._stdin(t, source, msg_type, h, ids, parent, content)
        record = (t, ch, source, ids, header, parent, metadata, content, buffers)
        if ch == "stdin" and not self._stdin_in_order(record, msg_type):
            return
        self.writer.write_message(*record)
        if request and self._held:  # outputs that overtook this request follow it
            self._release_held()

    def _stdin(
        self,
        t: int,
        source: str,
        msg_type: str,
        header: dict,
        ids: list[bytes],
        parent: bytes,
        content: bytes,
    ) -> bytes:
        """Redact the answer to a password prompt (unless told to keep it).

        jupyter_client sends ``input_reply`` with an empty parent header, so a reply
        is matched to the last prompt sent to the same client identity.
        """
        who = tuple(ids)
        if msg_type == "input_request" and source == "kernel":
            if _loads(content).get("password"):
                self._password_prompts[who] = header.get("msg_id", "")
            else:
                self._password_prompts.pop(who, None)
        elif msg_type == "input_reply" and source == "client":
            prompt_id = self._password_prompts.pop(who, None)
            parent_id = _loads(parent).get("msg_id", "")
            if parent_id and parent_id != prompt_id:
                prompt_id = None
            if prompt_id is not None and not self._record_passwords:
                c = _loads(content)
                value = c.get("value", "")
                c["value"] = REDACTED
                self.writer.write_event(
                    "password_redacted",
                    t=t,
                    length=len(value) if isinstance(value, str) else 0,
                    parent_msg_id=prompt_id,
                )
                return json.dumps(c).encode()
        return content

    def _remember_request(self, header: bytes) -> None:
        requests = self._requests
        requests[peek_msg_id(header)] = None
        if len(requests) > _KNOWN_REQUESTS:
            for key in list(itertools.islice(requests, len(requests) // 2)):
                del requests[key]

    def _note_client_version(self, t: int, header: bytes) -> None:
        version = _loads(header).get("version")
        if isinstance(version, str):
            self._client_version_seen = True
            self.writer.write_event("protocol_version", t=t, client=version)

    def _subscription(self, t: int, frames: list[bytes]) -> None:
        frame = frames[0] if frames else b""
        if not frame or frame[0] not in (0, 1):
            self._bad(t, "iopub", "client", frames, "unexpected frame from a subscriber")
            return
        topic = frame[1:].decode("utf-8", "replace")
        if frame[0] == 1:
            self.writer.write_event("client_subscribed", t=t, topic=topic)
            if self._inject is not None:
                self._send_welcome(self._inject, topic)
        else:
            self.writer.write_event("client_unsubscribed", t=t, topic=topic)

    def _send_welcome(self, inject: zmq.Socket, topic: str) -> None:
        header = make_header("iopub_welcome", self._session)
        ids = [topic.encode()] if topic else []
        frames = serialize(self._signer, header, {"subscription": topic}, ids=ids)
        self._welcomes.add(frames[len(ids) + 2])
        inject.send_multipart(frames)

    def _bad(self, t: int, ch: str, source: str, frames: list[bytes], reason: str) -> None:
        self.writer.write_event(
            "bad_message", t=t, ch=ch, reason=reason, frames=list(frames), **{"from": source}
        )

    def _write_events(self, defer_ending: bool = False) -> None:
        deferred = self._deferred_events
        while True:
            late = bool(deferred) and not defer_ending  # messages were written before it
            if late:
                t, name, fields = deferred.pop(0)
            else:
                try:
                    t, name, fields = self._events.get_nowait()
                except queue.Empty:
                    return
                if defer_ending and (deferred or name in _DRAINING):
                    deferred.append((t, name, fields))  # the events after it wait too
                    continue
            if name in _DRAINING and (self._drain_pull() or late):
                # what was forwarded before the kernel went away comes before it went
                # away, and the log's times stay in order
                t = max(t, time.time_ns())
            written = fields.pop("_written", None)  # a threading.Event set once it is written
            if name != _SYNC:
                self.writer.write_event(name, t=t, **fields)
            if written is not None:
                self.writer.flush()
                written.set()

    def _drain_pull(self) -> int:
        """Record the messages already waiting: an ending event is queued once the kernel
        is gone, so they were forwarded before it, however far this thread lags."""
        total = 0
        for _ in range(_DRAIN_BATCHES):
            n = self._receive(self._pull, block=False)
            total += n
            if not n:
                break
        return total

    def _check_writer(self) -> None:
        writer = self.writer
        if writer.error is not None and not self._warned_write:
            self._warned_write = True
            self._warn(
                f"cannot write {writer.path}: {writer.error.strerror or writer.error}; "
                "the session goes on, records are dropped until writing works again"
            )
        elif writer.error is None and self._warned_write:
            self._warned_write = False
            self._warn(f"writing {writer.path} again")
        now = time.monotonic()
        if self._warned_removed or now < self._next_removal_check:
            return
        self._next_removal_check = now + 1.0
        if writer.file_removed():
            self._warned_removed = True
            self._warn(f"{writer.path} was removed while recording; new records are lost")


def _loads(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


@functools.cache
def _prctl() -> Any:
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl


def name_thread(name: str) -> None:
    """Give the calling thread an OS-level name (seen in top -H, /proc/PID/task)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            _prctl()(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
