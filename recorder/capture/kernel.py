"""A kernel process that krec starts, behind a recording proxy, and the log it records to.

Used by the wrapper kernel, by `krec record --kernel` and by replay: it picks
private loopback ports (and fresh CurveZMQ keys when the frontend uses Curve) for
the real kernel, launches it so that it dies with krec, forwards interrupts, and
notices a frontend's shutdown and restart requests on the way through.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import IO, Any

import zmq

from krec.recorder.capture.proxy import Proxy
from krec.recorder.connect import ConnectionInfo
from krec.recorder.errors import KrecError
from krec.recorder.kernelspec import find_spec, kernel_argv, kernel_env, launch_kernel, stop_kernel
from krec.recorder.log.writer import LogWriteError, LogWriter


def log_name(kernel_name: str) -> str:
    """KERNELNAME-YYYYmmdd-HHMMSS-SHORTID.krec"""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{kernel_name or 'kernel'}-{stamp}-{os.urandom(3).hex()}.krec"


#: a name for new logs in a log directory, set in the environment of whatever starts
#: the kernel (the pytest plugin names each test's logs after the test)
LOG_NAME_ENV = "KREC_LOG_NAME"


def new_log(
    log_dir: str, kernel_name: str, header: dict[str, Any], seal_key: bytes | None = None
) -> LogWriter:
    """A new log in ``log_dir``: ``$KREC_LOG_NAME.krec`` (``-2``, ``-3``... when taken)
    if that is set, else ``log_name(kernel_name)``."""
    stem = os.environ.get(LOG_NAME_ENV, "")
    if not stem or os.sep in stem or stem.startswith("."):
        return LogWriter(os.path.join(log_dir, log_name(kernel_name)), header, seal_key=seal_key)
    for n in itertools.count(1):
        path = os.path.join(log_dir, f"{stem}.krec" if n == 1 else f"{stem}-{n}.krec")
        if os.path.lexists(path):
            continue
        try:
            return LogWriter(path, header, seal_key=seal_key)
        except LogWriteError:
            if not os.path.lexists(path):  # not a race with another kernel of this test
                raise
    raise AssertionError("unreachable")


def say(text: str) -> None:
    print(f"krec: {text}", file=sys.stderr, flush=True)


#: stands for the connection file's path in a header's ``launch_argv`` (the real, temporary
#: path is in the ``kernel_started`` event)
CONNECTION_FILE_ARG = "{connection_file}"


def kernel_fields(
    entry: dict[str, Any], extra_arguments: Sequence[str] = (), cwd: str | None = None
) -> dict[str, Any]:
    """The header's ``kernel`` map: the kernelspec, and how krec launches the kernel
    (``launch_argv``: the spec's argv as launched plus ``extra_arguments``, the
    arguments a frontend appended; ``cwd``: the kernel's working directory)."""
    spec = entry["spec"]
    fields = {
        "name": entry.get("name", ""),
        "display_name": spec.get("display_name", ""),
        "language": spec.get("language", ""),
        "argv": list(spec.get("argv", [])),
        "interrupt_mode": spec.get("interrupt_mode", "signal"),
        "launch_argv": kernel_argv(entry, CONNECTION_FILE_ARG) + list(extra_arguments),
        "extra_arguments": list(extra_arguments),
        "cwd": os.path.abspath(cwd or os.getcwd()),
    }
    if "kernel_protocol_version" in spec:
        fields["protocol_version"] = spec["kernel_protocol_version"]
    return fields


def existing_kernel_fields(kernel_file: str, name: str) -> dict[str, Any]:
    """The header's ``kernel`` map for a kernel krec attaches to, with its launch when it
    can be known: a local process (Linux /proc) that was given ``kernel_file`` as a kernel
    is (after ``-f``, or where kernelspec ``name`` puts it) gives ``launch_argv``, ``cwd``
    and, when ``name`` is a kernelspec whose argv it extends, ``extra_arguments``."""
    fields: dict[str, Any] = {"name": name, "display_name": "", "language": "", "argv": []}
    try:
        spec: dict[str, Any] | None = find_spec(name)
    except KrecError:
        spec = None
    spec_argv = [str(a) for a in spec["spec"].get("argv", [])] if spec else []
    at = spec_argv.index("{connection_file}") if "{connection_file}" in spec_argv else -1
    target = os.path.realpath(kernel_file)
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return fields
    for pid in pids:
        if pid in (os.getpid(), os.getppid()):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        places = [
            i
            for i, a in enumerate(argv)
            if a.endswith(".json") and os.path.realpath(os.path.join(cwd, a)) == target
        ]
        if not any(i == at or (i > 0 and argv[i - 1] == "-f") for i in places):
            continue
        fields.update(launch_argv=argv, cwd=cwd)
        if spec is not None and at in places and len(argv) >= len(spec_argv):
            known = kernel_fields(spec)
            fields.update({k: known[k] for k in ("display_name", "language", "argv")})
            fields["extra_arguments"] = argv[len(spec_argv) :]
        break
    return fields


def inner_connection(frontend: ConnectionInfo, curve: bool) -> ConnectionInfo:
    """Loopback ports for the inner kernel, the frontend's key, fresh Curve keys if used."""
    info = replace(
        frontend,
        transport="tcp",
        ip="127.0.0.1",
        curve_publickey=None,
        curve_secretkey=None,
        extra={},
    ).with_free_ports()
    if curve:
        public, secret = zmq.curve_keypair()
        info.curve_publickey, info.curve_secretkey = public, secret
    return info


class StopSignals:
    """Turns SIGTERM/SIGHUP (and optionally SIGINT) into a stop flag; SIGINT may interrupt."""

    def __init__(self, on_interrupt: Any = None, stop_on_int: bool = False) -> None:
        self.stop = threading.Event()
        self.reason = ""
        self._on_interrupt = on_interrupt
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._stop)
        if stop_on_int:
            signal.signal(signal.SIGINT, self._stop)
        elif on_interrupt is not None:
            signal.signal(signal.SIGINT, self._interrupt)

    def _stop(self, signum: int, frame: Any) -> None:
        self.reason = signal.Signals(signum).name
        self.stop.set()

    def _interrupt(self, signum: int, frame: Any) -> None:
        self._on_interrupt()


class KernelRecording:
    """A proxy in front of a kernel process that krec starts (wrapper and --kernel modes)."""

    def __init__(
        self,
        entry: dict[str, Any],
        frontend: ConnectionInfo,
        writer: LogWriter,
        *,
        record_passwords: bool = False,
        strip_path: str | None = None,
        extra_arguments: Sequence[str] = (),
        kernel_output: IO[bytes] | None = None,
        cwd: str | None = None,
        traces: Any = None,
    ) -> None:
        self.entry = entry
        self.cwd = cwd  # the kernel's working directory (None: krec's own)
        self.kernel_output = kernel_output
        self._extra_arguments = list(extra_arguments)
        self.frontend = frontend
        self.kernel = inner_connection(frontend, frontend.curve)
        self._strip_path = strip_path
        self._dir = tempfile.mkdtemp(prefix="krec-")
        self.kernel_file = os.path.join(self._dir, "kernel.json")
        self.kernel.write(self.kernel_file)
        self.shutdown_requested = False
        self.restart_requested = False
        self.proc: subprocess.Popen | None = None
        self.launched_at = 0.0
        self.proxy = Proxy(
            frontend,
            self.kernel,
            writer,
            record_passwords=record_passwords,
            on_control=self._on_control,
            traces=traces,
        )

    def _on_control(self, msg_type: str, content: dict[str, Any]) -> None:
        if msg_type == "shutdown_request":
            self.shutdown_requested = True
            self.restart_requested = bool(content.get("restart"))

    def start_proxy(self) -> None:
        self.proxy.start()

    def launch(self) -> None:
        self.launched_at = time.monotonic()
        argv = kernel_argv(self.entry, self.kernel_file) + self._extra_arguments
        self.proc = launch_kernel(
            argv, kernel_env(self.entry, self._strip_path), cwd=self.cwd, output=self.kernel_output
        )
        self.shutdown_requested = self.restart_requested = False
        self.proxy.event(
            "kernel_started",
            pid=self.proc.pid,
            argv=argv,
            kernel=self.entry["name"],
            cwd=os.path.abspath(self.cwd or os.getcwd()),
        )

    def wait_heartbeat(self, timeout: float = 60.0) -> None:
        """Until the kernel echoes a heartbeat: frontends that attach by connection file
        give up on a kernel whose heartbeat is silent for a second."""
        ctx = zmq.Context.instance()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise KrecError(f"kernel {self.entry['name']} exited while starting")
            sock = ctx.socket(zmq.REQ)
            sock.linger = 0
            if self.kernel.curve:
                sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
                sock.curve_serverkey = self.kernel.curve_publickey
            sock.connect(self.kernel.endpoint("hb"))
            try:
                sock.send(b"krec-ready")
                if sock.poll(500):
                    sock.recv()
                    break
            finally:
                sock.close(linger=0)
        else:
            raise KrecError(f"kernel {self.entry['name']} did not start within {timeout:.0f} s")
        self.wait_connected(max(10.0, deadline - time.monotonic()))

    def wait_connected(self, timeout: float) -> None:
        """Until krec's sockets are connected to the kernel launched last (so that its first
        input_request has a route). Not confirmed in time: an event, and go on."""
        if not self.proxy.wait_kernel_connected(self.launched_at, timeout):
            self.proxy.event("kernel_links_unconfirmed", waited=timeout)

    def interrupt(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            self.proxy.event("interrupt", mode="signal")

    def wait(self, stop: threading.Event, parent_pid: int | None = None) -> int | None:
        """Until the kernel exits (its status) or ``stop`` is set / the parent dies (None)."""
        assert self.proc is not None
        while True:
            code = self.proc.poll()
            if code is not None:
                return code
            if stop.wait(0.1):
                return None
            if parent_pid is not None and os.getppid() != parent_pid:
                stop.set()
                return None

    def note_exit(self, code: int) -> None:
        time.sleep(0.2)  # let the kernel's last iopub messages through the proxy
        # the shutdown_request it may have obeyed is seen (a loaded capture thread lags)
        self.proxy.capture.sync()
        if self.shutdown_requested:
            self.proxy.event("kernel_exited", exit_code=code, restart=self.restart_requested)
        else:
            self.proxy.event("kernel_died", exit_code=code)

    def close(self, reason: str) -> int | None:
        code = None
        if self.proc is not None:
            running = self.proc.poll() is None
            code = stop_kernel(self.proc)
            if running:
                self.proxy.event("kernel_stopped", exit_code=code)
        self.proxy.stop(reason)
        shutil.rmtree(self._dir, ignore_errors=True)
        return code
