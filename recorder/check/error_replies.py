"""Error rules: an error reply carries ename/evalue/traceback, and an execution's error is shown."""

from __future__ import annotations

from krec.recorder.check.base import KERNEL_REPLIES, Rule
from krec.recorder.check.messages import At, Msg
from krec.recorder.check.model import Context, Request
from krec.recorder.check.schemas import check_error_reply


class ErrorReply(Rule):
    id = "error-reply"
    family = "errors"
    summary = "a `status: error` reply carries ename, evalue and traceback"
    help = (
        "'When status is error, the usual content of a successful reply should be omitted, "
        "instead the following fields should be present': ename and evalue (strings) and "
        "traceback (a list of strings). An execute_reply also keeps its execution_count "
        "'regardless of its status'."
    )
    spec = "request-reply"
    where = KERNEL_REPLIES

    def message(self, msg: Msg) -> None:
        c = msg.content
        if c.get("status") != "error" or not msg.msg_type.endswith("_reply"):
            return
        why = check_error_reply(c)
        if msg.msg_type == "execute_reply" and "execution_count" not in c:
            why = f"{why}; no execution_count" if why else "no execution_count"
        if why is not None:
            self.report(msg, f"error {msg.msg_type}: {why}")


class ErrorOutput(Rule):
    id = "error-output"
    family = "errors"
    summary = "an execute_reply with `status: error` matches an `error` published on iopub"
    help = (
        "When code fails, the kernel publishes the error on iopub (so every frontend shows "
        "the traceback) and answers `status: error`. Reported, once the request is done: "
        "an error reply to a non-silent execute_request with no `error` output for it, or "
        "whose ename differs from the published one."
    )
    spec = "execution-errors"
    msg_types = frozenset({"execute_reply"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        #: request msg_id -> (the error reply, its ename)
        self.failed: dict[str, tuple[At, object]] = {}

    def message(self, msg: Msg) -> None:
        req = msg.request
        if (
            req is not None
            and msg.how in ("parent", "fallback")
            and msg.content.get("status") == "error"
            and req.msg_type == "execute_request"
            and not req.silent
        ):
            self.failed[req.msg_id] = (At.of(msg), msg.content.get("ename"))

    def request_done(self, req: Request, at_end: bool) -> None:
        failed = self.failed.pop(req.msg_id, None)
        if failed is None:
            return
        reply, ename = failed
        if not req.error_enames and not req.early:
            self.report(
                reply,
                f"status: error, but no error output was published for execute_request "
                f"#{req.index}",
                related=(req.index,),
            )
        elif isinstance(ename, str) and req.error_enames and ename not in req.error_enames:
            shown = ", ".join(repr(e) for e in req.error_enames)
            self.report(
                reply,
                f"ename {ename!r}, but the published error says {shown}",
                related=(req.index,),
            )


RULES = [ErrorReply, ErrorOutput]
