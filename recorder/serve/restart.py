"""What `krec serve` keeps for its restart: which recorded requests it has answered.

A kernel manager restarts serve (shutdown_request with restart=true) by starting it
again with the same connection file; the new serve picks up the matching state its
predecessor left (see krec.recorder.restart) instead of answering from the start.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from krec.recorder.restart import read_state, state_file, write_state


def serve_state_file(connection_file: str) -> str:
    """Where serve keeps the restart state of ``connection_file``."""
    return state_file(connection_file, "krec-serve")


def load_serve_state(path: str, log_path: str) -> dict[str, Any] | None:
    """The state a serve left for its restart, if it served the same log."""
    state = read_state(path)
    if state is None or state.get("log") != os.path.abspath(log_path):
        return None
    used, cursor = state.get("used"), state.get("cursor")
    if not isinstance(cursor, int) or not (
        isinstance(used, list) and all(isinstance(n, int) for n in used)
    ):
        return None
    return state


def save_serve_state(path: str, log_path: str, output: str, server: Any) -> None:
    """Keep the matching state for a restart (shutdown_request restart=true); else forget it."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    if not server.restart_requested:
        return
    state = {"log": os.path.abspath(log_path), "output": os.path.abspath(output), **server.state()}
    with contextlib.suppress(OSError):
        write_state(path, state)
