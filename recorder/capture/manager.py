"""Kernel managers that record, and ``recording()``: krec for people who drive kernels from Python.

``RecordingKernelManager`` and ``AsyncRecordingKernelManager`` are jupyter_client's
KernelManager and AsyncKernelManager whose kernelspec is krec's wrapper of the
requested kernel (``python -m krec.recorder wrap`` with the kernel's own spec and
an explicit log file), so start, restart, interrupt, shutdown and ``client()``
all go through krec's proxy and one session is one log, ``log_path``.
``recording(DIR)`` records every kernel this process starts while it is active,
as ``krec record -- CMD`` does for a command: wrapper kernelspecs first on
JUPYTER_PATH.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets import Bool, HasTraits, Unicode, default

from krec.recorder.capture.kernel import log_name
from krec.recorder.errors import KernelSpecError, KrecError
from krec.recorder.export.otlp import OtlpSettings
from krec.recorder.kernelspec import INNER_SPEC_FILE, WRAPPER_MARK, load_inner_spec, wrapped_spec
from krec.recorder.log.writer import LogWriteError

__all__ = ["AsyncRecordingKernelManager", "Recording", "RecordingKernelManager", "recording"]

DEFAULT_LOG_DIR = "krec-logs"
#: stands for the log file in a wrapper spec's argv until a start decides it
_LOG_ARG = "{krec_log}"

_scratch: str | None = None


def scratch_dir() -> str:
    """A private directory for this process's wrapper specs, removed when the process exits.

    Kept for the whole process, not one manager or one ``recording()`` block, so a
    kernel started inside a block can still be restarted (and recorded) after it.
    """
    global _scratch
    if _scratch is None or not os.path.isdir(_scratch):
        _scratch = tempfile.mkdtemp(prefix="krec-specs-")
        atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
    return _scratch


def _entry(name: str, spec: KernelSpec) -> dict[str, Any]:
    data = {k: v for k, v in spec.to_dict().items() if v not in ("", None)}
    return {"name": name, "resource_dir": spec.resource_dir, "spec": data}


def inner_entry(ksm: KernelSpecManager, name: str) -> dict[str, Any]:
    """The real kernel behind ``name`` as {"name", "resource_dir", "spec"}.

    ``name`` may itself be a krec wrapper (a ``krec install``ed NAME-krec, or a
    shadow spec while ``recording()`` or ``krec record --`` is active): the kernel
    it wraps is returned, so a recording manager never records through two proxies.
    Unknown names raise jupyter_client's NoSuchKernel, as KernelManager does.
    """
    entry = _entry(name, ksm.get_kernel_spec(name))
    for _ in range(8):
        spec = entry["spec"]
        if not (spec.get("metadata") or {}).get(WRAPPER_MARK):
            return entry
        inner_file = os.path.join(entry["resource_dir"], INNER_SPEC_FILE)
        argv = [str(a) for a in spec.get("argv", [])]
        if os.path.exists(inner_file):
            entry = load_inner_spec(inner_file)
        elif "--kernel" in argv[:-1]:
            inner = argv[argv.index("--kernel") + 1]
            entry = _entry(inner, ksm.get_kernel_spec(inner))
        else:
            break
    raise KernelSpecError(f"cannot find the kernel that the krec wrapper {name!r} wraps")


def wrapper_kernel_spec(entry: dict[str, Any]) -> KernelSpec:
    """A KernelSpec that runs krec's wrapper around ``entry``, logging to ``{krec_log}``."""
    text = json.dumps(entry, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    inner_file = os.path.join(scratch_dir(), f"{entry['name'] or 'kernel'}-{digest}.json")
    if not os.path.exists(inner_file):
        with open(inner_file, "w", encoding="utf-8") as f:
            f.write(text)
    argv = [sys.executable, "-m", "krec.recorder", "wrap", "--inner-spec", inner_file]
    argv += ["--log", _LOG_ARG, "-f", "{connection_file}"]
    spec = entry["spec"]
    data = wrapped_spec(spec, argv, spec.get("display_name", entry["name"]))
    return KernelSpec(name=entry["name"], resource_dir=entry["resource_dir"], **data)


# seconds a wrapper recording to a URL gets to exit at shutdown (jupyter_client's default: 5)
UPLOAD_SHUTDOWN_WAIT = 30.0


class _Recording(HasTraits):
    """What both recording managers add to their jupyter_client base class."""

    log_path = Unicode(
        help="The .krec file this kernel's session is recorded to (restarts append to it): "
        "a path or an fsspec URL (s3://bucket/prefix/NAME.krec, spooled locally and uploaded). "
        "Default: a new file in ./krec-logs. Changing it takes effect at the next start.",
    ).tag(config=True)
    record_passwords = Bool(False, help="Store getpass() answers instead of redacting them.").tag(
        config=True
    )
    audit = Bool(False, help="Write an audit log: no output payloads (docs/audit.md).").tag(
        config=True
    )
    seal_key = Unicode(help="File whose bytes key the log's seals (HMAC-SHA-256).").tag(config=True)
    otlp = Unicode(
        "",
        help="Also export the kernel's activity live as OpenTelemetry traces to this OTLP/HTTP "
        "collector URL (e.g. http://localhost:4318; needs krec[otel]). Empty: no export.",
    ).tag(config=True)
    otlp_content = Bool(
        False, help="With otlp: spans carry code, outputs and error values, not only types."
    ).tag(config=True)

    _default_log_path: str = ""
    _session_log: str | None = None  # the log of the running session; None between sessions

    @default("log_path")
    def _log_path_default(self) -> str:
        name = getattr(self, "kernel_name", "") or "kernel"
        self._default_log_path = os.path.abspath(os.path.join(DEFAULT_LOG_DIR, log_name(name)))
        return self._default_log_path

    @property
    def kernel_spec(self) -> KernelSpec | None:
        """krec's wrapper around the kernel named ``kernel_name``."""
        km: Any = self
        if km._kernel_spec is None and km.kernel_name != "":
            entry = inner_entry(km.kernel_spec_manager, km.kernel_name)
            km._kernel_spec = wrapper_kernel_spec(entry)
        return km._kernel_spec

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The wrapper's command line, with this session's log file."""
        cmd = super().format_kernel_cmd(extra_arguments)  # type: ignore[misc]
        log = [self._session_log or self._begin_session_log()]
        if self.record_passwords:
            log.append("--record-passwords")
        if self.audit:
            log.append("--audit")
        if self.seal_key:
            log += ["--seal-key", os.path.abspath(os.path.expanduser(self.seal_key))]
        otlp = OtlpSettings.from_options(self.otlp, self.otlp_content)
        if otlp is not None:
            log += otlp.wrapper_args()
        return [a for arg in cmd for a in (log if arg == _LOG_ARG else [arg])]

    def _begin_session_log(self) -> str:
        from krec.recorder.log.storage import is_url

        if is_url(self.log_path) and not self.log_path.startswith("file://"):
            self._session_log = self.log_path  # the wrapper spools it and uploads
            return self.log_path
        path = os.path.abspath(self.log_path.removeprefix("file://"))
        while os.path.lexists(path):
            if path != self._default_log_path:
                raise LogWriteError(f"{path} already exists; krec never overwrites a log")
            path = self.log_path = self._log_path_default()  # this manager's next session
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as e:
            raise LogWriteError(
                f"cannot write logs to {os.path.dirname(path)}: {e.strerror}"
            ) from None
        self._session_log = path
        return path

    async def _async_finish_shutdown(
        self, waittime: float | None = None, pollinterval: float = 0.1, restart: bool = False
    ) -> None:
        # a wrapper that records to a URL uploads its last segment as it exits: give it
        # time before SIGTERM and SIGKILL (a killed one leaves its log to the next krec)
        from krec.recorder.log.storage import is_url

        if waittime is None and self._session_log and is_url(self._session_log):
            km: Any = self
            waittime = max(km.shutdown_wait_time, UPLOAD_SHUTDOWN_WAIT)
        await super()._async_finish_shutdown(  # type: ignore[misc]
            waittime=waittime, pollinterval=pollinterval, restart=restart
        )

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        # a restart keeps the session (the new wrapper appends); a full shutdown ends it
        if not restart:
            self._session_log = None
        await super()._async_cleanup_resources(restart=restart)  # type: ignore[misc]


class RecordingKernelManager(_Recording, KernelManager):
    """A KernelManager whose kernel runs behind krec's proxy, recorded to ``log_path``.

    Use it wherever a KernelManager class is accepted, e.g.
    ``NotebookClient(nb, kernel_manager_class=RecordingKernelManager)``.
    """


class AsyncRecordingKernelManager(_Recording, AsyncKernelManager):
    """An AsyncKernelManager whose kernel runs behind krec's proxy, recorded to ``log_path``."""


class Recording:
    """The logs of one ``recording()`` block: ``log_dir`` and the ``logs`` written so far."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self._before = set(os.listdir(log_dir))

    @property
    def logs(self) -> list[str]:
        """Paths of the logs created in ``log_dir`` since the block started, oldest first."""
        new = [
            os.path.join(self.log_dir, n)
            for n in os.listdir(self.log_dir)
            if n.endswith(".krec") and n not in self._before
        ]
        return sorted(new, key=lambda p: (os.stat(p).st_mtime_ns, p))


@contextlib.contextmanager
def recording(
    log_dir: str | os.PathLike[str] = DEFAULT_LOG_DIR,
    *,
    record_passwords: bool = False,
    otlp: str | None = None,
    otlp_content: bool = False,
) -> Iterator[Recording]:
    """Record every kernel started in this process inside the block to its own log in ``log_dir``.

    Puts krec's wrapper kernelspecs first on ``os.environ["JUPYTER_PATH"]`` for the
    duration, so any kernel manager created inside (nbclient, papermill,
    ``start_new_kernel``, subprocesses such as ``jupyter nbconvert``) starts a
    recorded kernel; logs are named ``KERNEL-YYYYmmdd-HHMMSS-ID.krec``. Kernel
    managers created before the block are not affected. Kernels started inside
    keep being recorded (restarts too) after it ends. ``otlp``: also export each
    kernel's activity as OpenTelemetry traces to this OTLP/HTTP URL (docs/otel.md).
    """
    from krec.recorder.kernelspec import write_shadow_specs

    directory = os.path.abspath(os.fspath(log_dir))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise KrecError(f"cannot write logs to {directory}: {e.strerror}") from None
    shadow = tempfile.mkdtemp(prefix="recording-", dir=scratch_dir())
    settings = OtlpSettings.from_options(otlp, otlp_content)
    write_shadow_specs(
        shadow,
        directory,
        record_passwords=record_passwords,
        extra_args=settings.wrapper_args() if settings else (),
    )
    rec = Recording(directory)
    _prepend_jupyter_path(shadow)
    try:
        yield rec
    finally:
        _remove_jupyter_path(shadow)


def _prepend_jupyter_path(path: str) -> None:
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (path, old) if p)


def _remove_jupyter_path(path: str) -> None:
    # remove only our entry: blocks may be nested, or exited out of order from threads
    parts = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p and p != path]
    if parts:
        os.environ["JUPYTER_PATH"] = os.pathsep.join(parts)
    else:
        os.environ.pop("JUPYTER_PATH", None)
