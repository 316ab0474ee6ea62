"""The wrapper kernel: what a krec kernelspec starts in place of the real kernel.

A frontend launches ``python -m krec.recorder wrap ... -f CF`` as if it were the
kernel. The wrapper binds CF's ports, starts the real kernel behind the proxy and
records the session. When the frontend restarts the kernel (a new wrapper with the
same connection file), the new wrapper finds its predecessor's log through a small
session file keyed by CF and appends to it after a ``restart`` event: one
notebook session is one log.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from typing import Any

from krec.recorder.capture.identity import IdentityListener
from krec.recorder.capture.kernel import KernelRecording, StopSignals, kernel_fields
from krec.recorder.capture.traces import live_traces
from krec.recorder.capture.upload import (
    leftovers_in_background,
    open_log_file,
    open_new_log,
    resume_log,
)
from krec.recorder.connect import ConnectionInfo
from krec.recorder.errors import KrecError
from krec.recorder.export.otlp import OtlpSettings
from krec.recorder.kernelspec import find_spec, load_inner_spec
from krec.recorder.log.header import log_header
from krec.recorder.log.storage import is_url
from krec.recorder.restart import read_state, state_file, write_state


def _read_session(path: str) -> dict[str, Any] | None:
    """The previous wrapper's session, if its log is still there."""
    data = read_state(path)
    if data is not None and isinstance(data.get("log"), str) and os.path.exists(data["log"]):
        return data
    return None


def _same_log(previous: dict[str, Any], log: str) -> bool:
    if is_url(log) or is_url(previous.get("location", "")):
        return previous.get("location") == log
    return os.path.realpath(previous["log"]) == os.path.realpath(log)


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
    otlp: OtlpSettings | None = None,
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
    session_path = state_file(connection_file, "krec-sessions")
    previous = _read_session(session_path)
    if previous and log is not None and not _same_log(previous, log):
        previous = None  # a stale session file: this connection file now starts a new log
    leftovers = leftovers_in_background(log or log_dir or "")
    header = log_header(
        kernel=kernel_fields(entry, extra_arguments),
        connection=frontend.public(),
        mode="wrapper",
    )
    if previous:
        spooled = resume_log(previous["log"])
        spooled.writer.write_event(
            "restart",
            reason="requested" if previous.get("restart") else "kernel_replaced",
            previous_pid=previous.get("pid"),
        )
    elif log is not None:
        spooled = open_log_file(log, header)
    else:
        assert log_dir is not None
        spooled = open_new_log(log_dir, entry.get("name", ""), header)
    writer, log_path = spooled.writer, spooled.path
    session = {"log": log_path, "location": spooled.location, "pid": os.getpid()}
    recording = KernelRecording(
        entry,
        frontend,
        writer,
        record_passwords=record_passwords,
        strip_path=shadow_dir,
        extra_arguments=extra_arguments,
        traces=live_traces(otlp, header),
    )
    signals = StopSignals(on_interrupt=recording.interrupt)
    try:
        recording.start_proxy()
    except KrecError:
        spooled.finish()
        raise
    identities = IdentityListener(connection_file, frontend.key, recording.proxy)
    identities.start()
    write_state(session_path, {**session, "restart": False})
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
            write_state(session_path, {**session, "restart": recording.restart_requested})
        else:
            with contextlib.suppress(OSError):
                os.unlink(session_path)
        identities.stop()
        final = recording.close(reason)
        spooled.finish(keep=keep)
        if leftovers is not None:
            leftovers.join(10)  # what is left then, a later krec uploads
    if code is None:
        code = final if final is not None else 0
    return 0 if code in (0, -signal.SIGTERM) else (code if code > 0 else 128 - code)
