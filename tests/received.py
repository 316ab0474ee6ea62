"""What a frontend received, message by message, for durability checks.

``run_cells`` drives a jupyter_client client through quick cells and notes every
message it gets (msg_id, channel, wall-clock time of receipt); ``kill_now`` runs
a manager's ``shutdown_kernel(now=True)`` (or ``restart_kernel(now=True)``) at
once, noting the time; ``missing_from_log`` names what the client had received
at least ``margin`` seconds before the kill that the log does not hold. Scripts
run under ``krec record --`` import this module too (tests/ on sys.path) and dump
``Received.to_json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUICK_CELLS = [
    "x = 1",
    "print('one', x)",
    "x += 1; x",
    "import sys; print('two', file=sys.stderr)",
    "from IPython.display import display; display({'text/plain': 'shown'}, raw=True)",
    "[i * i for i in range(5)]",
]

#: DESIGN.md section 3: nothing the frontend received this long before a SIGKILL is lost
MARGIN = 0.005


@dataclass
class Received:
    """Messages a frontend received: (msg_id, channel, msg_type, time.time() on receipt)."""

    messages: list[tuple[str, str, str, float]] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)

    def note(self, channel: str, msg: dict[str, Any]) -> None:
        self.messages.append((msg["header"]["msg_id"], channel, msg["msg_type"], time.time()))

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"messages": self.messages, "kills": self.kills}))

    @classmethod
    def from_json(cls, path: str | Path) -> Received:
        data = json.loads(Path(path).read_text())
        return cls([tuple(m) for m in data["messages"]], data["kills"])


def run_cells(kc: Any, received: Received, cells: list[str] = QUICK_CELLS) -> None:
    """Execute each cell, noting every shell and iopub message until its reply and idle."""
    for code in cells:
        msg_id = kc.execute(code)
        reply = idle = False
        deadline = time.monotonic() + 60
        while not (reply and idle):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply and idle for {code!r}")
            for channel, get in (("shell", kc.get_shell_msg), ("iopub", kc.get_iopub_msg)):
                try:
                    msg = get(timeout=0.01)
                except Exception:  # queue.Empty: nothing on this channel yet
                    continue
                received.note(channel, msg)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "execute_reply":
                    reply = True
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True


def kill_now(km: Any, received: Received, restart: bool = False) -> None:
    """``shutdown_kernel(now=True)`` (or ``restart_kernel(now=True)``) right away."""
    received.kills.append(time.time())
    if restart:
        km.restart_kernel(now=True)
    else:
        km.shutdown_kernel(now=True)


def missing_from_log(received: Received, log_msg_ids: set[str], margin: float = MARGIN) -> list:
    """Messages received at least ``margin`` s before the next kill that the log lacks."""
    missing = []
    for msg_id, channel, msg_type, t in received.messages:
        later = [k for k in received.kills if k >= t]
        if later and later[0] - t < margin:
            continue  # received within the margin of a kill: the target does not cover it
        if msg_id not in log_msg_ids:
            missing.append((msg_id, channel, msg_type))
    return missing


def checked(received: Received, margin: float = MARGIN) -> int:
    """How many received messages the margin rule covers (the test asserts it is most)."""
    count = 0
    for _msg_id, _channel, _msg_type, t in received.messages:
        later = [k for k in received.kills if k >= t]
        if not later or later[0] - t >= margin:
            count += 1
    return count
