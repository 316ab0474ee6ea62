"""The forwarding device: five channels between a frontend and a kernel, frames verbatim.

Each of shell, control, stdin and iopub is relayed by pyzmq's ``monitored_queue``
(a C loop that releases the GIL) in a thread of its own; every relayed message is
also pushed, with a one-byte channel/direction prefix, to the capture thread that
writes the log. Heartbeat is relayed by ``zmq.proxy``. Nothing on the forwarding
path parses JSON or re-signs: the same HMAC key is valid on both sides.

Frontend side (krec binds, acting as the kernel): ROUTER shell/control/stdin,
XPUB iopub (verbose, so every subscriber is seen and welcomed), ROUTER hb.
Kernel side (krec connects, acting as a client): DEALER shell/control/stdin with
shell and stdin sharing one identity (so the kernel can route ``input_request``),
XSUB iopub (subscribed to everything, plus krec's own welcome publisher), DEALER hb.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq
from zmq.devices import monitored_queue
from zmq.utils.monitor import parse_monitor_message

from krec.recorder.capture.thread import CaptureThread, name_thread
from krec.recorder.connect import ConnectionInfo
from krec.recorder.errors import ProxyError
from krec.recorder.log.writer import LogWriter
from krec.recorder.wire import Signer

if TYPE_CHECKING:
    from krec.recorder.capture.traces import LiveTraces

_MONITOR_EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
_KERNEL_EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED
_KERNEL_CHANNELS = frozenset({"shell", "control", "stdin", "iopub"})


class Proxy:
    """Forward a frontend's five channels to a kernel and record them to ``writer``.

    ``frontend`` describes the ports krec binds (port 0: any free port; the bound
    ports are written back into ``frontend``); ``kernel`` the ports krec connects to.
    Both must carry the same HMAC key.
    """

    def __init__(
        self,
        frontend: ConnectionInfo,
        kernel: ConnectionInfo,
        writer: LogWriter,
        *,
        record_passwords: bool = False,
        on_control: Callable[[str, dict[str, Any]], None] | None = None,
        heartbeat_interval: float = 3.0,
        warn: Callable[[str], None] | None = None,
        traces: LiveTraces | None = None,
    ) -> None:
        if frontend.key != kernel.key:
            raise ProxyError("frontend and kernel must share one HMAC key")
        self.frontend = frontend
        self.kernel = kernel
        self._tag = f"{os.getpid()}-{id(self):x}"
        # the kernel routes input_request to the identity of the shell socket that sent the
        # request, so krec's kernel-side shell and stdin sockets must share this one
        self.identity = b"krec-" + os.urandom(8).hex().encode()
        self._fctx = zmq.Context()
        self._cctx = zmq.Context()
        # spans (--otlp): the capture thread's records are also queued to the span thread
        self.traces = traces
        self.capture = CaptureThread(
            writer=traces.tee(writer) if traces is not None else writer,
            capture_ctx=self._cctx,
            forward_ctx=self._fctx,
            capture_addr=f"inproc://krec-capture-{self._tag}",
            inject_addr=f"inproc://krec-inject-{self._tag}",
            signer=Signer(frontend.key, frontend.signature_scheme),
            record_passwords=record_passwords,
            on_control=on_control,
            warn=warn,
        )
        self._threads: list[_Forwarder] = []
        self._watcher: _Watcher | None = None
        # channel -> when krec's socket last connected to the kernel (absent: not connected)
        self._kernel_links: dict[str, float] = {}
        self._links_changed = threading.Condition()
        self._heartbeat_interval = heartbeat_interval
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Bind and connect every socket; raise ProxyError if one cannot be bound."""
        if self.traces is not None:
            self.traces.start()
        self.capture.start()
        self.capture.ready.wait(timeout)
        capture_addr = f"inproc://krec-capture-{self._tag}"
        inject_addr = f"inproc://krec-inject-{self._tag}"
        # the watcher listens to the sockets' monitors before the sockets exist (inproc
        # allows connect before bind), so not one connection event can be missed
        monitors: dict[str, tuple[str, str]] = {}  # address -> (side, channel)
        for channel, pair in _PAIRS.items():
            if channel == "shell":
                monitors[self._monitor_addr("client", channel)] = ("client", channel)
            if pair[2]:
                monitors[self._monitor_addr("kernel", channel)] = ("kernel", channel)
        self._watcher = _Watcher(self, monitors, self._heartbeat_interval)
        self._watcher.start()
        self._watcher.ready.wait(timeout)
        for channel, pair in _PAIRS.items():
            fwd = _Forwarder(
                channel,
                self,
                pair,
                capture_addr=capture_addr if pair[2] else "",
                inject_addr=inject_addr if channel == "iopub" else "",
                monitor_addr=self._monitor_addr("client", channel) if channel == "shell" else "",
                kernel_monitor_addr=self._monitor_addr("kernel", channel) if pair[2] else "",
            )
            self._threads.append(fwd)
            fwd.start()
        errors = []
        for fwd in self._threads:
            if not fwd.ready.wait(timeout):
                errors.append(f"{fwd.channel}: not ready after {timeout:.0f} s")
            elif fwd.error:
                errors.append(fwd.error)
        if errors:
            self.stop("start failed")
            raise ProxyError("; ".join(errors))

    def _monitor_addr(self, side: str, channel: str) -> str:
        return f"inproc://krec-monitor-{side}-{channel}-{self._tag}"

    def wait_kernel_connected(self, since: float, timeout: float) -> bool:
        """Wait until krec's shell, control, stdin and iopub sockets have all connected to
        the kernel after ``since`` (a time.monotonic() value, e.g. when it was launched).

        Until then the kernel could not route an ``input_request`` to krec.
        """
        deadline = time.monotonic() + timeout
        with self._links_changed:
            while True:
                links = self._kernel_links
                if all(links.get(ch, 0.0) > since for ch in _KERNEL_CHANNELS):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._links_changed.wait(left)

    def _kernel_link(self, channel: str, up: bool) -> None:
        with self._links_changed:
            if up:
                self._kernel_links[channel] = time.monotonic()
            else:
                self._kernel_links.pop(channel, None)
            self._links_changed.notify_all()

    def event(self, name: str, **fields: Any) -> None:
        """Record an event (thread-safe)."""
        self.capture.event(name, **fields)

    @property
    def recording_failed(self) -> BaseException | None:
        return self.capture.failure

    def stop(self, reason: str = "stopped", **fields: Any) -> None:
        """Stop forwarding, record what is still queued, close the log. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.capture.release_forward_sockets()
        # a context's term() waits for every socket of it to close: never let that hang krec
        _in_background(self._fctx.term, 10)
        for fwd in self._threads:
            fwd.join(5)
        if self._watcher is not None:
            self._watcher.join(5)
        if self.capture.is_alive():
            self.capture.drain_and_stop(reason, **fields)
        _in_background(self._cctx.term, 10)
        if self.traces is not None:
            self.traces.close()


def _in_background(func: Callable[[], object], timeout: float) -> None:
    thread = threading.Thread(target=func, name="krec-term", daemon=True)
    thread.start()
    thread.join(timeout)


# channel -> (frontend socket type, kernel socket type, recorded?, client prefix, kernel prefix)
_PAIRS: dict[str, tuple[int, int, bool, bytes, bytes]] = {
    "shell": (zmq.ROUTER, zmq.DEALER, True, b"s", b"S"),
    "control": (zmq.ROUTER, zmq.DEALER, True, b"c", b"C"),
    "stdin": (zmq.ROUTER, zmq.DEALER, True, b"i", b"I"),
    "iopub": (zmq.XPUB, zmq.XSUB, True, b"o", b"O"),
    "hb": (zmq.ROUTER, zmq.DEALER, False, b"", b""),
}


class _Forwarder(threading.Thread):
    """One channel: creates, binds, relays and closes its sockets in its own thread."""

    def __init__(
        self,
        channel: str,
        proxy: Proxy,
        pair: tuple[int, int, bool, bytes, bytes],
        *,
        capture_addr: str,
        inject_addr: str,
        monitor_addr: str,
        kernel_monitor_addr: str,
    ) -> None:
        super().__init__(name=f"krec-{channel}", daemon=True)
        self.channel = channel
        self._proxy = proxy
        self._pair = pair
        self._capture_addr = capture_addr
        self._inject_addr = inject_addr
        self._monitor_addr = monitor_addr
        self._kernel_monitor_addr = kernel_monitor_addr
        self.ready = threading.Event()
        self.error = ""

    def run(self) -> None:
        name_thread(self.name)
        proxy = self._proxy
        front_type, kernel_type, _, client_prefix, kernel_prefix = self._pair
        sockets: list[zmq.Socket] = []
        try:
            front = proxy._fctx.socket(front_type)
            sockets.append(front)
            _configure_frontend(front, proxy.frontend)
            if front_type == zmq.XPUB:
                front.setsockopt(zmq.XPUB_VERBOSE, 1)
            if self._monitor_addr:
                front.monitor(self._monitor_addr, _MONITOR_EVENTS)
            port = proxy.frontend.port(self.channel)
            try:
                if port:
                    front.bind(proxy.frontend.endpoint(self.channel))
                else:
                    port = _bind_any(front, proxy.frontend)
                    setattr(proxy.frontend, f"{self.channel}_port", port)
            except zmq.ZMQError as e:
                self.error = (
                    f"cannot listen on {proxy.frontend.endpoint(self.channel, port)} "
                    f"for {self.channel}: {e.strerror}"
                )
                return
            back = proxy._fctx.socket(kernel_type)
            sockets.append(back)
            _configure_kernel(back, proxy.kernel)
            if self.channel in ("shell", "stdin"):
                back.identity = proxy.identity
            if self._kernel_monitor_addr:
                back.monitor(self._kernel_monitor_addr, _KERNEL_EVENTS)
            back.connect(proxy.kernel.endpoint(self.channel))
            if kernel_type == zmq.XSUB:
                back.connect(self._inject_addr)
                back.send(b"\x01")  # record everything, even with no frontend subscribed
            mon = None
            if self._capture_addr:
                mon = proxy._cctx.socket(zmq.PUSH)
                mon.sndhwm = 0
                mon.linger = -1
                mon.connect(self._capture_addr)
                sockets.append(mon)
        except zmq.ZMQError as e:
            self.error = f"{self.channel}: {e.strerror}"
            return
        finally:
            self.ready.set()
            if self.error:
                for s in sockets:
                    s.close(linger=0)
        try:
            if mon is None:
                zmq.proxy(front, back)
            elif front_type == zmq.XPUB:
                monitored_queue(back, front, mon, kernel_prefix, client_prefix)
            else:
                monitored_queue(front, back, mon, client_prefix, kernel_prefix)
        except zmq.ZMQError as e:
            if e.errno != zmq.ETERM:
                self.error = f"{self.channel}: {e.strerror}"
                proxy.event("forwarding_failed", ch=self.channel, error=str(e.strerror))
        finally:
            with contextlib.suppress(zmq.ZMQError):
                if self._monitor_addr:
                    front.disable_monitor()
                if self._kernel_monitor_addr:
                    back.disable_monitor()
            for s in sockets:
                s.close()


def _configure_frontend(sock: zmq.Socket, info: ConnectionInfo) -> None:
    sock.sndhwm = 0
    sock.rcvhwm = 0
    sock.linger = 500  # let the last replies (shutdown_reply) reach the frontend
    if info.curve:
        sock.curve_secretkey = info.curve_secretkey
        sock.curve_publickey = info.curve_publickey
        sock.curve_server = True


def _configure_kernel(sock: zmq.Socket, info: ConnectionInfo) -> None:
    sock.sndhwm = 0
    sock.rcvhwm = 0
    sock.linger = 0
    # connect within milliseconds of the kernel binding (the default retry is 100 ms):
    # a kernel's input_request to krec before krec's stdin socket is connected is lost
    sock.reconnect_ivl = 10
    if info.curve:
        public, secret = zmq.curve_keypair()
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_serverkey = info.curve_publickey


def _bind_any(sock: zmq.Socket, info: ConnectionInfo) -> int:
    if info.transport == "ipc":
        n = 1
        while True:
            path = f"{info.ip}-{n}"
            if not os.path.exists(path):
                sock.bind(f"ipc://{path}")
                return n
            n += 1
    return sock.bind_to_random_port(f"{info.transport}://{info.ip}")


class _Watcher(threading.Thread):
    """Turns socket-monitor events into client_connected/disconnected records and the
    proxy's view of its links to the kernel, and pings the kernel's heartbeat on its own
    socket to record heartbeat_lost/restored."""

    def __init__(self, proxy: Proxy, monitors: dict[str, tuple[str, str]], interval: float) -> None:
        super().__init__(name="krec-watcher", daemon=True)
        self._proxy = proxy
        self._monitors = monitors
        self._interval = interval
        self.ready = threading.Event()

    def run(self) -> None:
        name_thread(self.name)
        ctx = self._proxy._fctx
        pairs: dict[zmq.Socket, tuple[str, str]] = {}
        try:
            for addr, what in self._monitors.items():
                s = ctx.socket(zmq.PAIR)
                s.linger = 0
                s.connect(addr)
                pairs[s] = what
            self.ready.set()
            self._loop(ctx, pairs)
        except zmq.ZMQError as e:
            if e.errno != zmq.ETERM:
                self._proxy.event("watcher_failed", error=str(e.strerror))
        finally:
            self.ready.set()
            for s in pairs:
                s.close(linger=0)

    def _monitor_event(self, what: tuple[str, str], frames: list[bytes]) -> None:
        side, channel = what
        msg = parse_monitor_message(frames)
        event = msg["event"]
        proxy = self._proxy
        if side == "client":
            if event == zmq.EVENT_ACCEPTED:
                proxy.event("client_connected", ch=channel)
            elif event == zmq.EVENT_DISCONNECTED:
                proxy.event("client_disconnected", ch=channel)
            return
        if not str(msg.get("endpoint", b""), "utf-8", "replace").startswith(proxy.kernel.transport):
            return  # the iopub socket's inproc link to krec's own welcome publisher
        if event in (zmq.EVENT_CONNECTED, zmq.EVENT_DISCONNECTED):
            proxy._kernel_link(channel, event == zmq.EVENT_CONNECTED)

    def _loop(self, ctx: zmq.Context, pairs: dict[zmq.Socket, tuple[str, str]]) -> None:
        proxy = self._proxy
        hb = None
        alive_once = False
        lost = False
        next_ping = time.monotonic()
        waiting_since = 0.0
        try:
            while True:
                now = time.monotonic()
                if hb is None and self._interval > 0:
                    hb = ctx.socket(zmq.REQ)
                    hb.linger = 0
                    _configure_kernel(hb, proxy.kernel)
                    hb.connect(proxy.kernel.endpoint("hb"))
                    waiting_since = 0.0
                if hb is not None and not waiting_since and now >= next_ping:
                    hb.send(b"krec-ping")
                    waiting_since = now
                poller = zmq.Poller()
                for s in pairs:
                    poller.register(s, zmq.POLLIN)
                if hb is not None:
                    poller.register(hb, zmq.POLLIN)
                timeout = max(0.05, min(self._interval or 1.0, 1.0))
                for sock, _ in poller.poll(timeout * 1000):
                    if sock is hb:
                        hb.recv()
                        waiting_since = 0.0
                        next_ping = time.monotonic() + self._interval
                        if lost:
                            proxy.event("heartbeat_restored")
                        lost = False
                        alive_once = True
                    else:
                        self._monitor_event(pairs[sock], sock.recv_multipart())
                if (
                    hb is not None
                    and waiting_since
                    and time.monotonic() - waiting_since > self._interval
                ):
                    # lazy pirate: a REQ that lost its reply must be replaced
                    hb.close(linger=0)
                    hb = None
                    next_ping = time.monotonic()
                    if alive_once and not lost:
                        lost = True
                        proxy.event("heartbeat_lost", after=self._interval)
        finally:
            if hb is not None:
                hb.close(linger=0)
