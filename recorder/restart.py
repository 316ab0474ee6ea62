"""Restart state: a small JSON file a kernel process leaves for the one that replaces it.

A frontend restarts a kernel by starting the same command again with the same
connection file, so the state is keyed by that file: the wrapper finds its
predecessor's log this way, `krec serve` its matching state. The folder is private
(0700) and a file is replaced atomically, so a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any


def state_file(connection_file: str, folder: str) -> str:
    """Where the state of ``connection_file`` lives: runtime-dir/FOLDER/<digest>.json."""
    from jupyter_core.paths import jupyter_runtime_dir

    digest = hashlib.sha256(os.path.abspath(connection_file).encode()).hexdigest()[:32]
    return os.path.join(jupyter_runtime_dir(), folder, f"{digest}.json")


def read_state(path: str) -> dict[str, Any] | None:
    """The state at ``path``; None when there is none or it is not a JSON object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_state(path: str, data: dict[str, Any]) -> None:
    """Replace the state at ``path`` with ``data`` (atomically, in a 0700 folder)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)
