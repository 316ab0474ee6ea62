"""The header map that starts every .krec log, and who a recording runs as.

docs/format.md lists its fields; compat.py checks and upgrades the headers of logs
read back. The connection fields kept are the public ones: a key never lands here.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from krec.recorder import __version__
from krec.recorder.log import audit
from krec.recorder.log.compat import CURRENT_VERSION, FORMAT_NAME


def log_header(
    kernel: dict[str, Any] | None = None,
    connection: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A header map of the current version. ``connection`` must never carry the key (it is
    dropped here); ``audit=True`` (or ``$KREC_AUDIT``) makes an audit log."""
    conn = {k: v for k, v in (connection or {}).items() if k in _CONNECTION_FIELDS}
    header: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": CURRENT_VERSION,
        "created": time.time(),
        "krec_version": __version__,
        "kernel": dict(kernel or {}),
        "connection": conn,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **recording_user(),
        **audit.header_fields(),
    }
    header.update(extra)
    return header


def recording_user() -> dict[str, str]:
    """Who the recording runs as: ``user`` (the OS user) and, if set, ``jupyterhub_user``."""
    import getpass

    try:
        user = {"user": getpass.getuser()}
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = {"user": str(os.getuid())}
    hub = os.environ.get("JUPYTERHUB_USER")
    if hub:
        user["jupyterhub_user"] = hub
    return user


_CONNECTION_FIELDS = ("transport", "ip", "signature_scheme", "encryption")
