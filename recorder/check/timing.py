"""Timing rules (warnings): unanswered requests, a slow kernel_info reply, a lost heartbeat."""

from __future__ import annotations

from typing import Any

from krec.recorder.check.base import Rule
from krec.recorder.check.messages import At, Msg
from krec.recorder.check.model import Context, Request


class NoReply(Rule):
    id = "no-reply"
    family = "timing"
    severity = "warning"
    summary = "every request has its reply by the end of the log"
    help = (
        "The kernel 'always sends a reply' to execute and kernel_info, and answers every "
        "request type it handles. A request still unanswered when the log ends is reported, "
        "noting when a restart or the kernel's death came in between. A warning, since the "
        "recording may simply have stopped early, and a kernel need not answer a type it "
        "does not know."
    )
    spec = "request-reply"
    events = frozenset({"restart", "kernel_died", "kernel_exited"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.kernel_gone: list[tuple[int, str]] = []

    def event(self, index: int, t: int, name: str, raw: dict[str, Any]) -> None:
        what = {"restart": "a restart", "kernel_died": "the kernel died"}.get(name)
        if what is None:
            what = "the kernel exited"
        self.kernel_gone.append((index, what))
        if len(self.kernel_gone) > 64:
            del self.kernel_gone[0]

    def request_done(self, req: Request, at_end: bool) -> None:
        if req.reply is not None or req.reply_type is None:
            return
        after = next((what for i, what in self.kernel_gone if i > req.index), None)
        why = f" ({after} after it)" if after else ""
        self.report(req, f"no {req.reply_type} when the log ends{why}")


class SlowKernelInfo(Rule):
    id = "slow-kernel-info"
    family = "timing"
    severity = "warning"
    summary = "kernel_info_reply comes within --kernel-info-timeout seconds (default 10)"
    help = (
        "Frontends send kernel_info_request to learn that a kernel is ready and wait a "
        "limited time for the reply (jupyter_client's wait_for_ready, JupyterLab's "
        "connection status). A reply slower than the threshold is reported; a first "
        "request sent before the kernel started includes the start-up time."
    )
    spec = "msging-kernel-info"
    msg_types = frozenset({"kernel_info_reply"})

    def message(self, msg: Msg) -> None:
        req = msg.request
        if req is None or msg.how not in ("parent", "fallback") or not msg.t or not req.t:
            return
        delay = (msg.t - req.t) / 1e9
        limit = self.ctx.options.kernel_info_timeout
        if delay > limit:
            self.report(
                msg,
                f"kernel_info_reply {delay:.1f} s after its request #{req.index} "
                f"(threshold {limit:g} s)",
                related=(req.index,),
            )


class HeartbeatLost(Rule):
    id = "heartbeat-lost"
    family = "timing"
    severity = "warning"
    summary = "the kernel answers heartbeats while it is running"
    help = (
        "The kernel echoes heartbeat pings (from a thread, even while busy); frontends "
        "declare a kernel dead that stops. krec logs `heartbeat_lost` when the kernel "
        "stops echoing. Reported unless the kernel was shutting down, restarting or gone."
    )
    spec = "kernel-heartbeat"
    msg_types = frozenset({"shutdown_request", "status"})
    events = frozenset(
        {
            "heartbeat_lost",
            "kernel_started",
            "kernel_exited",
            "kernel_died",
            "kernel_stopped",
            "recording_stopped",
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.stopping = False

    def message(self, msg: Msg) -> None:
        if msg.msg_type == "shutdown_request" and msg.source == "client":
            self.stopping = True
        elif msg.msg_type == "status" and msg.content.get("execution_state") == "starting":
            self.stopping = False

    def event(self, index: int, t: int, name: str, raw: dict[str, Any]) -> None:
        if name == "kernel_started":
            self.stopping = False
        elif name != "heartbeat_lost":
            self.stopping = True
        elif not self.stopping:
            after = raw.get("after")
            text = "the kernel stopped answering heartbeats"
            if isinstance(after, (int, float)):
                text += f" (no echo for {after:g} s)"
            self.report(At(index, t, msg_type=name), text)


RULES = [NoReply, SlowKernelInfo, HeartbeatLost]
