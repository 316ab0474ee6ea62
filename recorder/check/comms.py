"""Comm rules: comm_msg and comm_close only for an open comm; no comm_open for an open id.

Comms are symmetrical: either side opens, messages and closes them (the kernel on
iopub, a client on shell). A kernel restart closes every comm.
"""

from __future__ import annotations

from krec.recorder.check.base import PARTIAL, Rule
from krec.recorder.check.messages import At, Msg
from krec.recorder.check.model import Context
from krec.recorder.check.protocol import COMMS


class _CommRule(Rule):
    family = "comms"
    msg_types = COMMS

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        #: open comm id -> record that opened it
        self.open: dict[str, int] = {}

    def restart(self) -> None:
        self.open.clear()

    def message(self, msg: Msg) -> None:
        comm_id = msg.content.get("comm_id")
        if not isinstance(comm_id, str):
            return  # content-schema's business
        self.judge(msg, comm_id)
        mt = msg.msg_type
        if mt == "comm_open":
            self.open.setdefault(comm_id, msg.index)
        elif mt == "comm_close":
            self.open.pop(comm_id, None)

    def judge(self, msg: Msg, comm_id: str) -> None:  # pragma: no cover - overridden
        pass


class CommUnknown(_CommRule):
    id = "comm-unknown"
    summary = "comm_msg and comm_close name a comm that is open"
    help = (
        "A comm exists from its comm_open until its comm_close, on either side. A comm_msg "
        "or comm_close for an id that was never opened, or already closed, reaches no one "
        "(ipywidgets logs 'No such comm'). A restart closes every comm. A client's message "
        "for a comm the kernel opens later in the log is not reported: the client saw the "
        "comm_open on iopub, and krec captures iopub and shell on separate sockets."
    )
    spec = "comm-messages"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        #: comm id -> a client's messages naming it before any comm_open for it was captured
        self.early: dict[str, list[At]] = {}

    def restart(self) -> None:
        self.finish()
        super().restart()

    def finish(self) -> None:
        for comm_id, places in self.early.items():
            for at in places:
                self._unknown(at, at.msg_type, comm_id)
        self.early.clear()

    def judge(self, msg: Msg, comm_id: str) -> None:
        if msg.msg_type == "comm_open":
            if msg.source == "kernel":
                self.early.pop(comm_id, None)
            return
        if comm_id in self.open:
            return
        if msg.source == "client":
            self.early.setdefault(comm_id, []).append(At.of(msg))
        else:
            self._unknown(msg, msg.msg_type, comm_id)

    def _unknown(self, where: Msg | At, msg_type: str, comm_id: str) -> None:
        text = f"{msg_type} for comm {comm_id!r}, which is not open"
        if self.ctx.partial:
            self.report(where, text + PARTIAL, severity="warning")
        else:
            self.report(where, text)


class CommDuplicate(_CommRule):
    id = "comm-duplicate"
    summary = "no comm_open for a comm id that is already open"
    help = (
        "Every comm has its own id; opening an id that is open replaces or confuses the "
        "existing comm on the other side."
    )
    spec = "opening-a-comm"

    def judge(self, msg: Msg, comm_id: str) -> None:
        if msg.msg_type == "comm_open" and comm_id in self.open:
            first = self.open[comm_id]
            self.report(msg, f"comm {comm_id!r} is already open (#{first})", related=(first,))


RULES = [CommUnknown, CommDuplicate]
