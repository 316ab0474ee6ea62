"""`krec record` in its modes: wrapper kernel, krec-owned kernel, existing kernel, and CMD.

Each mode puts a Proxy between a frontend connection file and a kernel, and
decides what happens when the kernel exits (restart it, or stop), when the
frontend asks for a restart, and when krec itself is told to stop. No mode ever
leaves a kernel it started running.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
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

from .connect import ConnectionInfo, new_key
from .errors import KrecError
from .kernelspec import (
    find_spec,
    kernel_argv,
    kernel_env,
    launch_kernel,
    load_inner_spec,
    stop_kernel,
    write_shadow_specs,
)
from .logfile import LogWriteError, LogWriter, make_header
from .proxy import Proxy


def log_name(kernel_name: str) -> str:
    """KERNELNAME-YYYYmmdd-HHMMSS-SHORTID.krec"""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{kernel_name or 'kernel'}-{stamp}-{os.urandom(3).hex()}.krec"


#: a name for new logs in a log directory, set in the environment of whatever starts
#: the kernel (the pytest plugin names each test's logs after the test)
LOG_NAME_ENV = "KREC_LOG_NAME"


def new_log(log_dir: str, kernel_name: str, header: dict[str, Any]) -> LogWriter:
    """A new log in ``log_dir``: ``$KREC_LOG_NAME.krec`` (``-2``, ``-3``... when taken)
    if that is set, else ``log_name(kernel_name)``."""
    stem = os.environ.get(LOG_NAME_ENV, "")
    if not stem or os.sep in stem or stem.startswith("."):
        return LogWriter(os.path.join(log_dir, log_name(kernel_name)), header)
    for n in itertools.count(1):
        path = os.path.join(log_dir, f"{stem}.krec" if n == 1 else f"{stem}-{n}.krec")
        if os.path.lexists(path):
            continue
        try:
            return LogWriter(path, header)
        except LogWriteError:
            if not os.path.lexists(path):  # not a race with another kernel of this test
                raise
    raise AssertionError("unreachable")


def _say(text: str) -> None:
    print(f"krec: {text}", file=sys.stderr, flush=True)


def kernel_fields(entry: dict[str, Any]) -> dict[str, Any]:
    spec = entry["spec"]
    fields = {
        "name": entry.get("name", ""),
        "display_name": spec.get("display_name", ""),
        "language": spec.get("language", ""),
        "argv": list(spec.get("argv", [])),
        "interrupt_mode": spec.get("interrupt_mode", "signal"),
    }
    if "kernel_protocol_version" in spec:
        fields["protocol_version"] = spec["kernel_protocol_version"]
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


class _Signals:
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
    ) -> None:
        self.entry = entry
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
            argv, kernel_env(self.entry, self._strip_path), output=self.kernel_output
        )
        self.shutdown_requested = self.restart_requested = False
        self.proxy.event("kernel_started", pid=self.proc.pid, argv=argv, kernel=self.entry["name"])

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
        left = max(1.0, deadline - time.monotonic())
        if not self.proxy.wait_kernel_connected(self.launched_at, left):
            raise KrecError(f"krec could not connect to kernel {self.entry['name']}")

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


# -- wrapper mode (kernelspecs written by `krec record --` and `krec install`) -------------


def _session_file(connection_file: str) -> str:
    from jupyter_core.paths import jupyter_runtime_dir

    digest = hashlib.sha256(os.path.abspath(connection_file).encode()).hexdigest()[:32]
    return os.path.join(jupyter_runtime_dir(), "krec-sessions", f"{digest}.json")


def _read_session(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("log"), str) and os.path.exists(data["log"]):
        return data
    return None


def _write_session(path: str, data: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def run_wrapper(
    connection_file: str,
    *,
    log_dir: str | None = None,
    log: str | None = None,
    inner_spec: str | None = None,
    kernel_name: str | None = None,
    shadow_dir: str | None = None,
    record_passwords: bool = False,
    extra_arguments: Sequence[str] = (),
) -> int:
    """Be the kernel a frontend launched: record the real kernel behind a proxy.

    The log is ``log`` or a new file in ``log_dir`` (see ``new_log``); a restart
    (same connection file) appends to its predecessor's log, with ``log`` only
    when that log is ``log``.
    """
    if (log is None) == (log_dir is None):
        raise KrecError("wrap needs one of --log FILE, --log-dir DIR")
    parent_pid = os.getppid()
    frontend = ConnectionInfo.load(connection_file)
    if inner_spec:
        entry = load_inner_spec(inner_spec)
    elif kernel_name:
        entry = find_spec(kernel_name)
    else:
        raise KrecError("wrap needs --inner-spec or --kernel")
    session_path = _session_file(connection_file)
    previous = _read_session(session_path)
    if previous and log is not None and os.path.realpath(previous["log"]) != os.path.realpath(log):
        previous = None  # a stale session file: this connection file now starts a new log
    header = make_header(
        kernel=kernel_fields(entry),
        connection=frontend.public(),
        mode="wrapper",
    )
    if previous:
        log_path = previous["log"]
        writer = LogWriter(log_path, append=True)
        writer.write_event(
            "restart",
            reason="requested" if previous.get("restart") else "kernel_replaced",
            previous_pid=previous.get("pid"),
        )
    elif log is not None:
        log_path = log
        writer = LogWriter(log_path, header)
    else:
        assert log_dir is not None
        writer = new_log(log_dir, entry.get("name", ""), header)
        log_path = writer.path
    recording = KernelRecording(
        entry,
        frontend,
        writer,
        record_passwords=record_passwords,
        strip_path=shadow_dir,
        extra_arguments=extra_arguments,
    )
    signals = _Signals(on_interrupt=recording.interrupt)
    try:
        recording.start_proxy()
    except KrecError:
        writer.close()
        raise
    _write_session(session_path, {"log": log_path, "pid": os.getpid(), "restart": False})
    reason = "kernel exited"
    code: int | None = None
    try:
        recording.launch()
        code = recording.wait(signals.stop, parent_pid)
        if code is None:
            reason = signals.reason or "frontend exited"
        else:
            recording.note_exit(code)
    except KrecError as e:
        reason = f"error: {e}"
        raise
    finally:
        keep = recording.restart_requested or (
            code is not None and not recording.shutdown_requested
        )
        if keep:
            _write_session(
                session_path,
                {"log": log_path, "pid": os.getpid(), "restart": recording.restart_requested},
            )
        else:
            with contextlib.suppress(OSError):
                os.unlink(session_path)
        final = recording.close(reason)
    if code is None:
        code = final if final is not None else 0
    return 0 if code in (0, -signal.SIGTERM) else (code if code > 0 else 128 - code)


# -- krec-owned kernel (`krec record --kernel NAME`) -----------------------------------


def default_connection_file(kernel_name: str) -> str:
    from jupyter_core.paths import jupyter_runtime_dir

    return os.path.join(
        jupyter_runtime_dir(), f"kernel-krec-{kernel_name}-{os.urandom(4).hex()}.json"
    )


def run_owned(
    kernel_name: str,
    *,
    output: str | None,
    connection_file: str | None,
    ip: str = "127.0.0.1",
    record_passwords: bool = False,
    encryption: bool = False,
) -> int:
    """Start kernel NAME behind the proxy and record until Ctrl-C or the kernel exits."""
    entry = find_spec(kernel_name)
    frontend = ConnectionInfo(ip=ip, key=new_key(), kernel_name=kernel_name)
    if encryption:
        frontend.curve_publickey, frontend.curve_secretkey = zmq.curve_keypair()
    output = output or f"{kernel_name}-{time.strftime('%Y%m%d-%H%M%S')}.krec"
    connection_file = connection_file or default_connection_file(kernel_name)
    header = make_header(kernel=kernel_fields(entry), connection=frontend.public(), mode="kernel")
    writer = LogWriter(output, header)
    recording = KernelRecording(entry, frontend, writer, record_passwords=record_passwords)
    signals = _Signals(stop_on_int=True)
    try:
        recording.start_proxy()
    except KrecError:
        writer.close()
        raise
    reason = "stopped"
    try:
        recording.launch()
        recording.wait_heartbeat()
        frontend.write(connection_file)
        _say(f"recording kernel {kernel_name} to {output}")
        _say(f"attach a frontend with: jupyter console --existing {connection_file}")
        _say("stop with Ctrl-C")
        while True:
            code = recording.wait(signals.stop)
            if code is None:
                reason = f"{signals.reason or 'SIGINT'} received"
                break
            recording.note_exit(code)
            if recording.restart_requested:
                recording.proxy.event("restart", reason="requested")
                recording.launch()
                continue
            reason = "kernel exited"
            break
    finally:
        recording.close(reason)
        with contextlib.suppress(OSError):
            os.unlink(connection_file)
    _say(f"recording saved to {output}")
    return 0


# -- attach to a running kernel (`krec record --existing CF`) ------------------------------


def run_existing(
    kernel_file: str,
    *,
    output: str | None,
    connection_file: str | None,
    ip: str = "127.0.0.1",
    record_passwords: bool = False,
) -> int:
    """Put the proxy in front of a kernel krec does not own; never stop that kernel."""
    kernel = ConnectionInfo.load(kernel_file)
    name = kernel.kernel_name or "kernel"
    frontend = replace(
        kernel,
        transport="tcp",
        ip=ip,
        shell_port=0,
        iopub_port=0,
        stdin_port=0,
        control_port=0,
        hb_port=0,
        extra={},
    )
    output = output or f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.krec"
    connection_file = connection_file or default_connection_file(name)
    header = make_header(
        kernel={"name": name, "display_name": "", "language": "", "argv": []},
        connection=frontend.public(),
        mode="existing",
    )
    writer = LogWriter(output, header)
    shutdown = threading.Event()

    def on_control(msg_type: str, content: dict[str, Any]) -> None:
        if msg_type == "shutdown_request" and not content.get("restart"):
            shutdown.set()

    proxy = Proxy(
        frontend, kernel, writer, record_passwords=record_passwords, on_control=on_control
    )
    signals = _Signals(stop_on_int=True)
    try:
        proxy.start()
    except KrecError:
        writer.close()
        raise
    reason = "stopped"
    try:
        frontend.write(connection_file)
        proxy.event("attached", kernel_connection_file=os.path.abspath(kernel_file))
        _say(f"recording the kernel of {kernel_file} to {output}")
        _say(f"attach a frontend with: jupyter console --existing {connection_file}")
        _say("stop with Ctrl-C (the kernel keeps running)")
        while not signals.stop.wait(0.2):
            if shutdown.is_set():
                time.sleep(1.0)  # let the shutdown reply and last outputs through
                reason = "kernel shut down by the frontend"
                break
        else:
            reason = f"{signals.reason or 'SIGINT'} received"
    finally:
        proxy.stop(reason)
        with contextlib.suppress(OSError):
            os.unlink(connection_file)
    _say(f"recording saved to {output}")
    return 0


# -- `krec record -- CMD` -------------------------------------------------------------------

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_SI_KERNEL = 0x80  # si_code of a signal the kernel generated (the terminal's Ctrl-C)


def _run_forwarding_signals(cmd: list[str], env: dict[str, str]) -> int:
    """Run CMD in our process group and wait; pass it the signals krec is sent.

    Ctrl-C on a terminal reaches CMD directly (same foreground group), so a SIGINT
    the terminal generated is not forwarded again (that would be a second Ctrl-C);
    one sent with kill(1) is.
    """
    blocked = {*_FORWARDED, signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)

    def unblock() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    try:
        try:
            child = subprocess.Popen(cmd, env=env, preexec_fn=unblock)  # noqa: PLW1509
        except OSError as e:
            raise KrecError(f"cannot run {cmd[0]}: {e.strerror}") from None
        while True:
            code = child.poll()
            if code is not None:
                return code
            info = signal.sigtimedwait(blocked, 0.5)
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            if info.si_signo == signal.SIGINT and info.si_code == _SI_KERNEL:
                continue
            child.send_signal(info.si_signo)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def run_command(cmd: list[str], *, log_dir: str, record_passwords: bool = False) -> int:
    """Run CMD with wrapper kernelspecs first on JUPYTER_PATH; return CMD's exit status."""
    log_dir = os.path.abspath(log_dir)
    try:
        os.makedirs(log_dir, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=log_dir, prefix=".krec-probe-")  # noqa: SIM115
        probe.close()
    except OSError as e:
        raise KrecError(f"cannot write logs to {log_dir}: {e.strerror}") from None
    if shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
        raise KrecError(f"command not found: {cmd[0]}")
    shadow = tempfile.mkdtemp(prefix="krec-specs-")
    try:
        names = write_shadow_specs(shadow, log_dir, record_passwords=record_passwords)
        env = dict(os.environ)
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (shadow, env.get("JUPYTER_PATH")) if p)
        env["KREC_LOG_DIR"] = log_dir
        before = set(os.listdir(log_dir))
        code = _run_forwarding_signals(cmd, env)
        new = sorted(set(os.listdir(log_dir)) - before)
        logs = [n for n in new if n.endswith(".krec")]
        if logs:
            shown = ", ".join(os.path.join(log_dir, n) for n in logs[:5])
            more = f" and {len(logs) - 5} more" if len(logs) > 5 else ""
            _say(f"recorded {len(logs)} kernel session(s): {shown}{more}")
        elif names:
            _say(f"no kernel was started (wrapped: {', '.join(names)})")
        else:
            _say("no kernelspecs are installed, nothing was recorded")
    finally:
        shutil.rmtree(shadow, ignore_errors=True)
    return code if code >= 0 else 128 - code
