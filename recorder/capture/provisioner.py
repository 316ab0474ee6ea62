"""krec-provisioner: a jupyter_client kernel provisioner that records the kernel any other
provisioner launches.

The kernelspec's ``metadata.kernel_provisioner`` names ``krec-provisioner`` and, in its
config, an inner provisioner (``inner: {provisioner_name, config}``). The inner one
launches the kernel as it always would (a local process, or a pod through
gateway_provisioners) on a connection file of krec's own; krec then binds a recording
Proxy, in the kernel manager's process, in front of the connection info the inner one
returns and hands the proxy's ports to the kernel manager, so the manager and every
client only ever talk through krec. Signals, interrupts, shutdown and cleanup go to the
inner provisioner. The proxy lives as long as the kernel: it stops when the kernel is
cleaned up, and a restart starts a new one on the same ports that appends to the same
log after a ``restart`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import replace
from importlib.metadata import entry_points
from typing import Any

from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from traitlets import Bool, Dict, Float, Integer, Unicode

from krec.recorder.capture.identity import IdentityListener
from krec.recorder.capture.kernel import kernel_fields
from krec.recorder.capture.proxy import Proxy
from krec.recorder.capture.traces import live_traces
from krec.recorder.capture.upload import SpooledLog, leftovers_in_background, open_new_log
from krec.recorder.connect import CHANNELS, ConnectionInfo
from krec.recorder.errors import KrecError
from krec.recorder.export.otlp import OtlpSettings
from krec.recorder.kernelspec import WRAPPER_MARK, find_spec, install_spec, recorded_display_name
from krec.recorder.log.header import log_header
from krec.recorder.log.seal import load_key

GROUP = "jupyter_client.kernel_provisioners"
NAME = "krec-provisioner"


class ProvisionerError(KrecError):
    """krec-provisioner's configuration cannot be used."""


def inner_provisioner_class(name: str) -> type[KernelProvisionerBase]:
    """The class registered as provisioner ``name``; ProvisionerError if there is none."""
    if name == NAME:
        raise ProvisionerError("krec-provisioner cannot wrap itself")
    found = entry_points(group=GROUP, name=name)
    if not found:
        known = ", ".join(sorted({ep.name for ep in entry_points(group=GROUP)} - {NAME}))
        raise ProvisionerError(
            f"unknown inner kernel provisioner {name!r} (installed: {known or 'none'})"
        )
    return next(iter(found)).load()


_leftovers_started = False


def _upload_leftovers_once(destination: str) -> None:
    """What crashed recordings left in this machine's spool: uploaded once per process."""
    global _leftovers_started
    if not _leftovers_started and leftovers_in_background(destination) is not None:
        _leftovers_started = True


class KrecProvisioner(KernelProvisionerBase):  # type: ignore[misc]
    """Records the kernel that the inner provisioner of its config launches."""

    inner = Dict(
        help='The provisioner that launches the kernel: {"provisioner_name": ..., "config": {}}'
    ).tag(config=True)
    log_dir = Unicode(
        "krec-logs", help="Directory or fsspec URL (s3://bucket/prefix) the logs go to"
    ).tag(config=True)
    ip = Unicode("", help="Address the proxy listens on (default: the kernel manager's ip)").tag(
        config=True
    )
    record_passwords = Bool(False, help="Store getpass() answers instead of redacting them").tag(
        config=True
    )
    segment_size = Integer(0, help="Upload a segment every this many bytes (0: default)").tag(
        config=True
    )
    segment_seconds = Float(0.0, help="Upload a segment at least this often (0: default)").tag(
        config=True
    )
    audit = Bool(False, help="Write audit logs: no output payloads (docs/audit.md)").tag(
        config=True
    )
    seal_key = Unicode("", help="File whose bytes key the logs' seals (HMAC-SHA-256)").tag(
        config=True
    )
    otlp = Unicode(
        "", help="Export kernel activity live as OpenTelemetry traces to this OTLP/HTTP URL"
    ).tag(config=True)
    otlp_content = Bool(False, help="With otlp: spans carry code, outputs and error values").tag(
        config=True
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        name = str(self.inner.get("provisioner_name") or "local-provisioner")
        config = self.inner.get("config") or {}
        if not isinstance(config, dict):
            raise ProvisionerError(f"the config of inner provisioner {name!r} is not a map")
        self.inner_name = name
        self._inner: KernelProvisionerBase = inner_provisioner_class(name)(
            kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self.parent, **config
        )
        self._proxy: Proxy | None = None
        self._log: SpooledLog | None = None
        self._identities: IdentityListener | None = None
        self._kernel_file = ""
        self._front_ports: dict[str, int] = {}
        self._launched_at = 0.0
        self._header: dict[str, Any] = {}
        self._otlp = OtlpSettings.from_options(self.otlp, self.otlp_content)

    # -- launching ----------------------------------------------------------------

    @property
    def has_process(self) -> bool:
        return self._inner.has_process

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Let the inner provisioner prepare the kernel on a connection file of krec's own."""
        km = self.parent
        if km is None:
            return await self._inner.pre_launch(**kwargs)
        if not km.connection_file:
            from jupyter_core.paths import jupyter_runtime_dir
            from jupyter_core.utils import ensure_dir_exists

            runtime = jupyter_runtime_dir()
            ensure_dir_exists(runtime, 0o700)  # a fresh home has none yet (jupyter_server's way)
            km.connection_file = os.path.join(runtime, f"kernel-{self.kernel_id}.json")
        front_file = km.connection_file
        front_written = km._connection_file_written
        kept = {c: int(getattr(km, f"{c}_port") or 0) for c in CHANNELS}
        if not self._front_ports and any(kept.values()):
            self._front_ports = kept  # ports the user gave the kernel manager: the proxy's
        # the inner provisioner writes the kernel's own connection file (fresh ports), so
        # the kernel never reads the one the manager's clients use (the proxy's ports)
        base, _ = os.path.splitext(front_file)
        self._kernel_file = f"{base}-krec-inner.json"
        with contextlib.suppress(OSError):
            os.unlink(self._kernel_file)
        km.connection_file = self._kernel_file
        km._connection_file_written = False
        for c in CHANNELS:
            setattr(km, f"{c}_port", 0)
        try:
            kwargs = await self._inner.pre_launch(**kwargs)
        finally:
            km.connection_file = front_file
            for c in CHANNELS:
                setattr(km, f"{c}_port", self._front_ports.get(c, 0))
            km._connection_file_written = front_written and os.path.exists(front_file)
        return kwargs

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:
        """Launch through the inner provisioner, then start the proxy in front of it."""
        info = await self._inner.launch_kernel(cmd, **kwargs)
        self._launched_at = time.monotonic()
        kernel = ConnectionInfo.from_dict(dict(info))
        km = self.parent
        ip = self.ip or (getattr(km, "ip", "") if km is not None else "") or "127.0.0.1"
        if ip == "localhost":
            ip = "127.0.0.1"
        frontend = replace(
            kernel,
            transport="tcp",
            ip=ip,
            extra={},
            **{f"{c}_port": self._front_ports.get(c, 0) for c in CHANNELS},
        )
        try:
            self._start_recording(frontend, kernel)
        except BaseException:
            await self._inner.kill()
            await self._inner.cleanup(restart=False)
            raise
        self._front_ports = {c: frontend.port(c) for c in CHANNELS}
        self.connection_info = {**dict(info), **frontend.to_dict()}
        self.connection_info["key"] = kernel.key
        for key in ("curve_publickey", "curve_secretkey"):
            if key in info:
                self.connection_info[key] = info[key]
        return self.connection_info

    def _start_recording(self, frontend: ConnectionInfo, kernel: ConnectionInfo) -> None:
        km = self.parent
        name = getattr(km, "kernel_name", "") or "kernel"
        spec = self.kernel_spec.to_dict() if self.kernel_spec is not None else {}
        entry = {"name": name, "spec": spec}
        if self._log is None:
            header = log_header(
                kernel=kernel_fields(entry),
                connection=frontend.public(),
                mode="provisioner",
                provisioner=self.inner_name,
                kernel_id=self.kernel_id,
                **({"audit": True} if self.audit else {}),
            )
            self._header = header
            _upload_leftovers_once(self.log_dir)
            self._log = open_new_log(
                self.log_dir,
                name,
                header,
                segment_size=self.segment_size or None,
                segment_seconds=self.segment_seconds or None,
                warn=lambda text: self.log.warning("krec: %s", text),
                seal_key=load_key(self.seal_key) if self.seal_key else None,
            )
        else:
            key = load_key(self.seal_key) if self.seal_key else None
            self._log.reopen(seal_key=key).write_event("restart", reason="requested")
        self._proxy = Proxy(
            frontend,
            kernel,
            self._log.writer,
            record_passwords=self.record_passwords,
            warn=lambda text: self.log.warning("krec: %s", text),
            traces=live_traces(
                self._otlp, self._header, warn=lambda text: self.log.warning("krec: %s", text)
            ),
        )
        try:
            self._proxy.start()
        except KrecError:
            self._log.writer.close()
            self._log.finish()
            self._proxy = None
            raise
        self._proxy.event(
            "kernel_started",
            pid=getattr(self._inner, "pid", None),
            kernel=name,
            provisioner=self.inner_name,
            kernel_ip=kernel.ip,
        )
        if km is not None and km.connection_file:
            self._identities = IdentityListener(km.connection_file, frontend.key, self._proxy)
            self._identities.start()

    async def post_launch(self, **kwargs: Any) -> None:
        await self._inner.post_launch(**kwargs)
        proxy = self._proxy
        if proxy is not None and not await asyncio.to_thread(
            proxy.wait_kernel_connected, self._launched_at, 30.0
        ):
            proxy.event("kernel_links_unconfirmed", waited=30.0)

    # -- the running kernel: all the inner provisioner's ------------------------------

    async def poll(self) -> int | None:
        return await self._inner.poll()

    async def wait(self) -> int | None:
        return await self._inner.wait()

    async def send_signal(self, signum: int) -> None:
        if signum == signal.SIGINT and self._proxy is not None:
            self._proxy.event("interrupt", mode="signal")
        await self._inner.send_signal(signum)

    async def kill(self, restart: bool = False) -> None:
        await self._inner.kill(restart=restart)

    async def terminate(self, restart: bool = False) -> None:
        await self._inner.terminate(restart=restart)

    async def shutdown_requested(self, restart: bool = False) -> None:
        await self._inner.shutdown_requested(restart=restart)

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return self._inner.get_shutdown_wait_time(recommended)

    def get_stable_start_time(self, recommended: float = 10.0) -> float:
        getter = getattr(self._inner, "get_stable_start_time", None)
        return getter(recommended) if getter is not None else recommended

    def resolve_path(self, path_str: str) -> str | None:
        resolve = getattr(self._inner, "resolve_path", None)
        return resolve(path_str) if resolve is not None else None

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await self._inner.get_provisioner_info()
        if self._log is not None:
            info["krec_log"] = self._log.location
        return info

    async def load_provisioner_info(self, provisioner_info: dict[str, Any]) -> None:
        await self._inner.load_provisioner_info(provisioner_info)

    async def cleanup(self, restart: bool = False) -> None:
        """The kernel is gone: stop recording (a restart keeps the log open for the next)."""
        try:
            await self._inner.cleanup(restart=restart)
        finally:
            await asyncio.to_thread(self._stop_recording, restart)

    def _stop_recording(self, restart: bool) -> None:
        if self._identities is not None:
            self._identities.stop()
            self._identities = None
        if self._proxy is not None:
            self._proxy.stop("kernel restarting" if restart else "kernel shut down")
            self._proxy = None
        if self._log is not None:
            self._log.finish(keep=restart)
            if not restart:
                self._log = None
                self._front_ports = {}
        with contextlib.suppress(OSError):
            if self._kernel_file:
                os.unlink(self._kernel_file)


def provisioner_spec(
    entry: dict[str, Any],
    log_dir: str,
    *,
    inner: str | None = None,
    segment_size: int = 0,
    segment_seconds: float = 0.0,
    audit: bool = False,
    seal_key: str = "",
    otlp: OtlpSettings | None = None,
) -> dict[str, Any]:
    """The kernel.json of ``entry``'s kernel recorded through krec-provisioner."""
    spec = dict(entry["spec"])
    metadata = dict(spec.get("metadata") or {})
    own = dict(metadata.get("kernel_provisioner") or {})
    if own.get("provisioner_name") == NAME or metadata.get(WRAPPER_MARK):
        raise ProvisionerError(f"{entry['name']!r} is already recorded by krec")
    if inner:
        own = {"provisioner_name": inner, "config": {}}
    own.setdefault("provisioner_name", "local-provisioner")
    own.setdefault("config", {})
    inner_provisioner_class(own["provisioner_name"])  # unknown: one line, exit 2, now
    config: dict[str, Any] = {"inner": own, "log_dir": log_dir}
    if segment_size:
        config["segment_size"] = segment_size
    if segment_seconds:
        config["segment_seconds"] = segment_seconds
    if audit:
        config["audit"] = True
    if seal_key:
        config["seal_key"] = seal_key
    if otlp is not None:
        config["otlp"] = otlp.url
        if otlp.include_content:
            config["otlp_content"] = True
    metadata["kernel_provisioner"] = {"provisioner_name": NAME, "config": config}
    spec["metadata"] = metadata
    spec["display_name"] = recorded_display_name(spec.get("display_name", entry["name"]))
    return spec


def install_provisioner_spec(
    name: str,
    log_dir: str,
    *,
    inner: str | None = None,
    segment_env: dict[str, str] | None = None,
    user: bool = False,
    prefix: str | None = None,
    otlp: OtlpSettings | None = None,
) -> tuple[str, str]:
    """Install ``NAME-krec``, kernel ``name`` recorded through krec-provisioner."""
    from krec.recorder.capture.upload import SEGMENT_SECONDS_ENV, SEGMENT_SIZE_ENV
    from krec.recorder.log.audit import AUDIT_ENV
    from krec.recorder.log.seal import KEY_ENV

    env = segment_env or {}
    entry = find_spec(name)
    data = provisioner_spec(
        entry,
        log_dir,
        inner=inner,
        segment_size=int(env.get(SEGMENT_SIZE_ENV, 0)),
        segment_seconds=float(env.get(SEGMENT_SECONDS_ENV, 0)),
        audit=env.get(AUDIT_ENV) == "1",
        seal_key=env.get(KEY_ENV, ""),
        otlp=otlp,
    )
    return install_spec(entry, f"{name}-krec", data, user=user, prefix=prefix)
