"""Replay a recorded session against a fresh kernel and compare the two.

``replay(log)`` (krec.recorder.replay.replayer) returns a ``ReplayResult`` whose
``report`` is a ``Report`` (krec.recorder.replay.diff). The modules: plan (what to
send when, from a log), launch (how the kernel is started), run (the ``Replayer``
driving the kernel through the plan), client (the replay's own connection),
normalize and diff (what counts as the same result). The names here are loaded on
first use, so importing diff or normalize does not start the kernel machinery.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from krec.recorder.replay.diff import Report, compare
    from krec.recorder.replay.replayer import ReplayResult, replay

_HOMES = {
    "replay": "krec.recorder.replay.replayer",
    "ReplayResult": "krec.recorder.replay.replayer",
    "Report": "krec.recorder.replay.diff",
    "compare": "krec.recorder.replay.diff",
}
__all__ = ["Report", "ReplayResult", "compare", "replay"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
