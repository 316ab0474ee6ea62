"""IOPub rules: busy/idle around each request, execute_input first, execution_count by one.

Only the order of messages on one channel is judged: iopub and shell are separate
sockets, so whether a reply is captured before or after its request's idle says
nothing about the kernel (ipykernel publishes iopub from its own thread).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from krec.recorder.check.base import KERNEL_IOPUB, Rule
from krec.recorder.check.messages import At, Msg
from krec.recorder.check.model import Context, Request
from krec.recorder.check.protocol import BRACKETED


def _bracketed(req: Request) -> bool:
    return req.msg_type in BRACKETED


class StatusBusy(Rule):
    id = "status-busy"
    family = "iopub"
    summary = "a request's `status: busy` comes before anything else published for it"
    help = (
        "'The kernel receives that request and immediately publishes a status: busy "
        "message on IOPub', with the request as parent, for every request it handles "
        "(since 5.0 not just execute) and for comm messages. Reported: an output, "
        "execute_input or idle published for a request before its busy; a second busy; "
        "a handled request (it got its reply) that never got a busy. Requests sent before "
        "the kernel's first iopub message reached krec are not judged: a kernel drops what "
        "it publishes before its subscriber is connected (ipykernel's first busy often goes)."
    )
    spec = "request-reply"
    where = KERNEL_IOPUB

    def message(self, msg: Msg) -> None:
        req = msg.request
        if req is None:
            return
        if msg.msg_type == "status":
            state = msg.content.get("execution_state")
            if state == "busy":
                if req.busy is not None and req.once("busy2"):
                    self.report(
                        msg,
                        f"second status: busy for {req.msg_type} #{req.index} (first: #{req.busy})",
                        related=(req.index, req.busy),
                    )
                return
            if state != "idle":
                return
        if req.busy is None and not req.early and req.once("busy"):
            what = "status: idle" if msg.msg_type == "status" else msg.msg_type
            self.report(
                msg,
                f"{what} for {req.msg_type} #{req.index} before any status: busy for it",
                related=(req.index,),
            )

    def request_done(self, req: Request, at_end: bool) -> None:
        if req.early or req.busy is not None or not _bracketed(req):
            return
        if req.reply is not None and req.once("busy"):
            self.report(
                req,
                f"{req.msg_type} was handled (reply #{req.reply}) without a status: busy",
                related=(req.reply,),
            )


class StatusIdle(Rule):
    id = "status-idle"
    family = "iopub"
    summary = "every handled request ends with one `status: idle` parented to it"
    help = (
        "After handling a request and publishing its outputs, 'the kernel publishes a "
        "status: idle message'; frontends wait for it to know a request's output is "
        "complete (jupyter_client's execute_interactive hangs without it). Reported: a "
        "request that got its reply but no idle, once the kernel has published a status "
        "for something else or the log goes on for a while (see the timing options); "
        "a second idle for one request."
    )
    spec = "kernel-status"
    msg_types = frozenset({"status"})
    where = KERNEL_IOPUB

    def message(self, msg: Msg) -> None:
        req = msg.request
        if (
            req is not None
            and req.idle is not None
            and msg.content.get("execution_state") == "idle"
            and req.once("idle2")
        ):
            self.report(
                msg,
                f"second status: idle for {req.msg_type} #{req.index} (first: #{req.idle})",
                related=(req.index, req.idle),
            )

    def request_done(self, req: Request, at_end: bool) -> None:
        if req.idle is not None or req.reply is None or req.early or not _bracketed(req):
            return
        ctx = self.ctx
        later = ctx.last_status_index > req.reply
        waited = (ctx.last_t - req.reply_t) / 1e9 >= ctx.options.idle_grace
        if (later or waited) and req.once("idle"):
            self.report(
                req,
                f"{req.msg_type} got its reply (#{req.reply}) but never a status: idle",
                related=(req.reply,),
            )


class OutputAfterIdle(Rule):
    id = "output-after-idle"
    family = "iopub"
    severity = "warning"
    summary = "nothing is published for a request after its `status: idle`"
    help = (
        "Idle 'indicates that IOPub messages associated with a given request have all been "
        "received'. The spec allows one exception it leaves undefined: asynchronous output "
        "from background threads may arrive after idle, and notebooks still show it. So this "
        "is a warning: usually a thread printing late, sometimes a kernel publishing idle "
        "too early."
    )
    spec = "kernel-status"
    where = KERNEL_IOPUB

    @classmethod
    def applies(cls, ch: str, source: str, msg_type: str) -> bool:
        return msg_type != "status" and super().applies(ch, source, msg_type)

    def message(self, msg: Msg) -> None:
        req = msg.request
        if req is not None and req.idle is not None and req.once("late"):
            self.report(
                msg,
                f"{msg.msg_type} for {req.msg_type} #{req.index} after its status: idle "
                f"(#{req.idle})",
                related=(req.index, req.idle),
            )


class ExecuteInputOrder(Rule):
    id = "execute-input-order"
    family = "iopub"
    summary = "execute_input is published once, before the request's outputs"
    help = (
        "The kernel re-broadcasts the code it is about to run as execute_input, so that "
        "every frontend can show it before its outputs. Reported: an execute_input after "
        "an output of the same request, or a second one."
    )
    spec = "code-inputs"
    msg_types = frozenset({"execute_input"})
    where = KERNEL_IOPUB

    def message(self, msg: Msg) -> None:
        req = msg.request
        if req is None:
            return
        if req.execute_input is not None:
            self.report(
                msg,
                f"second execute_input for {req.msg_type} #{req.index} "
                f"(first: #{req.execute_input})",
                related=(req.index, req.execute_input),
            )
        elif req.first_output is not None:
            self.report(
                msg,
                f"execute_input after output #{req.first_output} of {req.msg_type} #{req.index}",
                related=(req.index, req.first_output),
            )


class ExecutionCount(Rule):
    id = "execution-count"
    family = "iopub"
    summary = "execution_count goes up by one per execution with store_history"
    help = (
        "'A single, monotonically increasing counter of all execution requests that are "
        "made with store_history=True', returned in execute_input and execute_reply (and "
        "execute_result). Each such execution's count is the previous one plus one (the "
        "first one krec sees, and the first after a restart, set the start); its "
        "execute_input, execute_result and reply agree. A skipped or repeated count is "
        "reported at the execute_input (at the reply when there is none). Executions "
        "without store_history (or silent) are not judged (ipykernel shows the next count "
        "in their execute_input). On subshells, where executions overlap, only a count "
        "used twice is reported."
    )
    spec = "execution-counter"
    msg_types = frozenset({"execute_input", "execute_reply", "execute_result"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.last: int | None = None
        self.recent: deque[int] = deque(maxlen=64)
        #: request msg_id -> [what is wrong with its count or None, execute_input, reply]
        self.seen: dict[str, list[Any]] = {}

    def restart(self) -> None:
        self.last = None
        self.recent.clear()

    def message(self, msg: Msg) -> None:
        req = msg.request
        if req is None or req.msg_type != "execute_request" or not req.store_history:
            return
        c = msg.content
        count = c.get("execution_count")
        if not isinstance(count, int) or isinstance(count, bool):
            return  # content-schema's business
        mt = msg.msg_type
        if mt == "execute_result":
            if req.count is not None and count != req.count and req.once("count-result"):
                self.report(
                    msg,
                    f"execute_result count {count}, but the execution's count is {req.count}",
                    related=(req.index,),
                )
            return
        if mt == "execute_reply" and (
            msg.how not in ("parent", "fallback") or c.get("status") not in ("ok", "error")
        ):
            return
        seen = self.seen.setdefault(req.msg_id, [None, None, None])
        seen[1 if mt == "execute_input" else 2] = At.of(msg)
        if req.count is not None:
            if count != req.count and req.once("count-agree"):
                self.report(
                    msg,
                    f"{mt} count {count}, but the same execution already showed {req.count}",
                    related=(req.index,),
                )
            return
        # the first count this execution shows is judged now (so the next one is judged
        # against it) and reported when the request is done, at its execute_input
        req.count = count
        last = self.last
        if req.subshell is not None:
            if count in self.recent:
                seen[0] = f"execution_count {count} was already used"
        elif last is not None and count != last + 1:
            seen[0] = f"execution_count {count} after {last}: expected {last + 1}"
        self.recent.append(count)
        if last is None or req.subshell is None or count > last:
            self.last = count

    def request_done(self, req: Request, at_end: bool) -> None:
        seen = self.seen.pop(req.msg_id, None)
        if seen is None or seen[0] is None:
            return
        self.report(seen[1] or seen[2], seen[0], related=(req.index,))


RULES = [StatusBusy, StatusIdle, OutputAfterIdle, ExecuteInputOrder, ExecutionCount]
