"""`krec serve`: a kernel stand-in that answers a live frontend from a recording.

``Server`` (krec.recorder.serve.server) owns the sockets; match decides which
recorded request a live one stands for, playback turns the recorded kernel side
into the steps sent back. The names here are loaded on first use, so importing
match or playback does not import zmq.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from krec.recorder.serve.server import Server, default_output

__all__ = ["Server", "default_output"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module("krec.recorder.serve.server"), name)
