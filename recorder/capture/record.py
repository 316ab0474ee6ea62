"""`krec record` with a krec-owned kernel (--kernel), an existing kernel (--existing), or
around a command (``-- CMD``, with wrapper kernelspecs first on JUPYTER_PATH).

Each mode puts a Proxy between frontends and a kernel and decides what happens
when the kernel exits (restart it, or stop) and when krec itself is told to stop.
No mode ever leaves a kernel it started running, nor stops one it did not start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from typing import Any

import zmq

from krec.recorder.capture.kernel import (
    KernelRecording,
    StopSignals,
    existing_kernel_fields,
    kernel_fields,
    say,
)
from krec.recorder.capture.proxy import Proxy
from krec.recorder.capture.traces import live_traces
from krec.recorder.capture.upload import check_destination, leftovers_in_background, open_log_file
from krec.recorder.connect import ConnectionInfo, default_connection_file, new_key
from krec.recorder.errors import KrecError
from krec.recorder.export.otlp import OtlpSettings
from krec.recorder.kernelspec import find_spec, write_shadow_specs
from krec.recorder.log.header import log_header
from krec.recorder.log.storage import is_url, log_locations, redact_url

# -- krec-owned kernel (`krec record --kernel NAME`) -----------------------------------


def run_owned(
    kernel_name: str,
    *,
    output: str | None,
    connection_file: str | None,
    ip: str = "127.0.0.1",
    record_passwords: bool = False,
    encryption: bool = False,
    otlp: OtlpSettings | None = None,
) -> int:
    """Start kernel NAME behind the proxy and record until Ctrl-C or the kernel exits."""
    entry = find_spec(kernel_name)
    frontend = ConnectionInfo(ip=ip, key=new_key(), kernel_name=kernel_name)
    if encryption:
        frontend.curve_publickey, frontend.curve_secretkey = zmq.curve_keypair()
    output = output or f"{kernel_name}-{time.strftime('%Y%m%d-%H%M%S')}.krec"
    connection_file = connection_file or default_connection_file(kernel_name)
    header = log_header(kernel=kernel_fields(entry), connection=frontend.public(), mode="kernel")
    leftovers = _prepare_destination(output)
    spooled = open_log_file(output, header)
    recording = KernelRecording(
        entry,
        frontend,
        spooled.writer,
        record_passwords=record_passwords,
        traces=live_traces(otlp, header),
    )
    signals = StopSignals(stop_on_int=True)
    try:
        recording.start_proxy()
    except KrecError:
        spooled.finish()
        raise
    reason = "stopped"
    try:
        recording.launch()
        recording.wait_heartbeat()
        frontend.write(connection_file)
        say(f"recording kernel {kernel_name} to {output}")
        say(f"attach a frontend with: jupyter console --existing {connection_file}")
        say("stop with Ctrl-C")
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
        spooled.finish()
        with contextlib.suppress(OSError):
            os.unlink(connection_file)
        _join(leftovers)
    say(f"recording saved to {redact_url(output)}")
    return 0


# -- attach to a running kernel (`krec record --existing CF`) ------------------------------


def run_existing(
    kernel_file: str,
    *,
    output: str | None,
    connection_file: str | None,
    ip: str = "127.0.0.1",
    record_passwords: bool = False,
    otlp: OtlpSettings | None = None,
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
    header = log_header(
        kernel=existing_kernel_fields(kernel_file, name),
        connection=frontend.public(),
        mode="existing",
    )
    leftovers = _prepare_destination(output)
    spooled = open_log_file(output, header)
    writer = spooled.writer
    shutdown = threading.Event()

    def on_control(msg_type: str, content: dict[str, Any]) -> None:
        if msg_type == "shutdown_request" and not content.get("restart"):
            shutdown.set()

    proxy = Proxy(
        frontend,
        kernel,
        writer,
        record_passwords=record_passwords,
        on_control=on_control,
        traces=live_traces(otlp, header),
    )
    signals = StopSignals(stop_on_int=True)
    try:
        proxy.start()
    except KrecError:
        spooled.finish()
        raise
    reason = "stopped"
    try:
        frontend.write(connection_file)
        proxy.event("attached", kernel_connection_file=os.path.abspath(kernel_file))
        say(f"recording the kernel of {kernel_file} to {output}")
        say(f"attach a frontend with: jupyter console --existing {connection_file}")
        say("stop with Ctrl-C (the kernel keeps running)")
        while not signals.stop.wait(0.2):
            if shutdown.is_set():
                time.sleep(1.0)  # let the shutdown reply and last outputs through
                reason = "kernel shut down by the frontend"
                break
        else:
            reason = f"{signals.reason or 'SIGINT'} received"
    finally:
        proxy.stop(reason)
        spooled.finish()
        with contextlib.suppress(OSError):
            os.unlink(connection_file)
        _join(leftovers)
    say(f"recording saved to {redact_url(output)}")
    return 0


def _prepare_destination(location: str) -> threading.Thread | None:
    """Refuse an unusable store at start; upload what crashed recordings left behind."""
    if is_url(location) and not location.startswith("file://"):
        parent = location.rstrip("/").rsplit("/", 1)[0] if location.endswith(".krec") else location
        check_destination(parent)
    return leftovers_in_background(location)


def _join(thread: threading.Thread | None) -> None:
    if thread is not None:
        thread.join(120)


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


def run_command(
    cmd: list[str],
    *,
    log_dir: str,
    record_passwords: bool = False,
    segment_env: dict[str, str] | None = None,
    otlp: OtlpSettings | None = None,
) -> int:
    """Run CMD with wrapper kernelspecs first on JUPYTER_PATH; return CMD's exit status.

    ``log_dir`` is a directory or an fsspec URL (logs are spooled and uploaded);
    ``segment_env`` sets the upload segment size/interval for the wrappers.
    """
    remote = is_url(log_dir) and not log_dir.startswith("file://")
    if remote:
        check_destination(log_dir)
    else:
        log_dir = os.path.abspath(log_dir.removeprefix("file://"))
        try:
            os.makedirs(log_dir, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=log_dir, prefix=".krec-probe-")  # noqa: SIM115
            probe.close()
        except OSError as e:
            raise KrecError(f"cannot write logs to {log_dir}: {e.strerror}") from None
    if shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
        raise KrecError(f"command not found: {cmd[0]}")
    leftovers = leftovers_in_background(log_dir)
    shadow = tempfile.mkdtemp(prefix="krec-specs-")
    try:
        names = write_shadow_specs(
            shadow,
            log_dir,
            record_passwords=record_passwords,
            extra_args=otlp.wrapper_args() if otlp else (),
        )
        env = dict(os.environ)
        env.update(segment_env or {})
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (shadow, env.get("JUPYTER_PATH")) if p)
        # krec.server: who connected to each kernel, under `krec record -- jupyter lab|server`
        config = write_server_config(shadow)
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            p for p in (config, env.get("JUPYTER_CONFIG_PATH")) if p
        )
        env["KREC_LOG_DIR"] = log_dir
        before = set(_listing(log_dir))
        code = _run_forwarding_signals(cmd, env)
        new = sorted(set(_listing(log_dir)) - before)
        logs = [n for n in new if n.rstrip("/").endswith(".krec")]
        if logs:
            shown = ", ".join(redact_url(n) for n in logs[:5])
            more = f" and {len(logs) - 5} more" if len(logs) > 5 else ""
            say(f"recorded {len(logs)} kernel session(s): {shown}{more}")
        elif names:
            say(f"no kernel was started (wrapped: {', '.join(names)})")
        else:
            say("no kernelspecs are installed, nothing was recorded")
    finally:
        shutil.rmtree(shadow, ignore_errors=True)
        _join(leftovers)
    return code if code >= 0 else 128 - code


def _listing(log_dir: str) -> list[str]:
    if not is_url(log_dir):
        return [os.path.join(log_dir, n) for n in os.listdir(log_dir)]
    try:
        return log_locations([log_dir])
    except KrecError as e:
        say(f"warning: {e}")
        return []


def write_server_config(directory: str) -> str:
    """A Jupyter config directory that enables krec.server; return its path."""
    import json

    config = os.path.join(directory, "config")
    target = os.path.join(config, "jupyter_server_config.d")
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "krec.json"), "w", encoding="utf-8") as f:
        json.dump({"ServerApp": {"jpserver_extensions": {"krec.server": True}}}, f)
    return config
