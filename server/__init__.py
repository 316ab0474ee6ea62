"""krec.server: a Jupyter Server extension that writes who connected to each recorded kernel.

For every websocket connection to a kernel, before the connection is let through
(and so before its first request reaches the kernel), it tells the kernel's
recording (krec.recorder.capture.identity) the user jupyter_server's IdentityProvider
authenticated (``/api/me``'s ``username``), the notebook path of the kernel's
session and the kernel id; the recording writes a ``client_identity`` event. Kernels
that are not recorded are left alone. ``krec record -- jupyter lab|server`` enables
it; elsewhere: ``jupyter server extension enable krec.server``.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["identity_connection_class"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "krec.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    settings = serverapp.web_app.settings
    base = settings.get("kernel_websocket_connection_class")
    if base is None or getattr(base, "_krec_identity", False):
        return
    cls = identity_connection_class(base)
    settings["kernel_websocket_connection_class"] = cls
    serverapp.kernel_websocket_connection_class = cls
    serverapp.log.info("krec: recording who connects to recorded kernels")


def identity_connection_class(base: type) -> type:
    """``base`` (the server's kernel websocket connection class) announcing each connection."""

    async def prepare(self: Any) -> None:
        await _announce(self)
        await base.prepare(self)

    return type(f"Krec{base.__name__}", (base,), {"prepare": prepare, "_krec_identity": True})


async def _announce(connection: Any) -> None:
    from krec.recorder.capture.identity import send_identity
    from krec.recorder.kernelspec import recorded_by_krec

    km = connection.kernel_manager
    ready = getattr(km, "ready", None)
    if ready is not None:  # the recording starts with the kernel
        if not isinstance(ready, asyncio.Future):
            ready = asyncio.wrap_future(ready)
        try:
            await ready
        except Exception:
            return  # the base class reports a kernel that failed to start
    handler = connection.websocket_handler
    user = handler.current_user
    username = getattr(user, "username", None) or (user if isinstance(user, str) else "")
    kernel_id = connection.kernel_id
    fields = {
        "user": username,
        "session_path": await _session_path(handler, kernel_id),
        "kernel_id": kernel_id,
    }
    connection_file = getattr(km, "connection_file", "")
    if not connection_file:
        return
    spec = getattr(km, "kernel_spec", None)
    recorded = spec is not None and recorded_by_krec({"metadata": spec.metadata})
    answer = await asyncio.to_thread(
        send_identity, connection_file, km.session.key, fields, recorded=recorded
    )
    if answer not in ("ok", "unrecorded"):
        connection.log.warning("krec: identity of %s not recorded: %s", kernel_id, answer)


async def _session_path(handler: Any, kernel_id: str) -> str:
    sessions = handler.settings.get("session_manager")
    if sessions is None:
        return ""
    try:
        model = await sessions.get_session(kernel_id=kernel_id)
    except Exception:  # no session (a kernel started through /api/kernels)
        return ""
    return str(model.get("path") or "")
