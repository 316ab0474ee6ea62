"""krec.recorder: record, read, filter and replay Jupyter kernel sessions.

This package never imports Textual; the terminal UI lives in ``krec.viewer``.
The Python API (docs/api.md): ``RecordingKernelManager``,
``AsyncRecordingKernelManager`` and ``recording`` are imported on first use, so
``import krec.recorder`` stays light.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from typing import TYPE_CHECKING, Any

from krec.recorder.errors import KrecError

if TYPE_CHECKING:
    from krec.recorder.capture.manager import (
        AsyncRecordingKernelManager,
        RecordingKernelManager,
        recording,
    )

__all__ = [
    "AsyncRecordingKernelManager",
    "KrecError",
    "RecordingKernelManager",
    "__version__",
    "recording",
]

_LAZY = {
    "AsyncRecordingKernelManager": "capture.manager",
    "RecordingKernelManager": "capture.manager",
    "recording": "capture.manager",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
