"""Stdin rules: input_request only when allowed, and answered before the request's reply."""

from __future__ import annotations

from krec.recorder.check.base import KERNEL_REPLIES, Deviation, Rule
from krec.recorder.check.messages import At, Msg
from krec.recorder.check.model import Context, Request


class StdinAllowed(Rule):
    id = "stdin-allowed"
    family = "stdin"
    summary = "an input_request only for an execute_request sent with allow_stdin true"
    help = (
        "'If allow_stdin is False, the kernel must not send stdin_request': a frontend that "
        "cannot answer would leave the kernel blocked forever. Only execute_request carries "
        "allow_stdin, so an input_request parented to anything else (or to nothing) is "
        "reported too."
    )
    spec = "stdin-messages"
    msg_types = frozenset({"input_request"})

    def message(self, msg: Msg) -> None:
        if msg.source != "kernel":
            return
        req = msg.request
        if req is None:
            if not msg.parent_id:
                self.report(msg, "input_request without a parent request")
            return
        if req.msg_type != "execute_request":
            self.report(
                msg,
                f"input_request for {req.msg_type} #{req.index}: only an execute_request "
                "can allow stdin",
                related=(req.index,),
            )
        elif not req.allow_stdin:
            self.report(
                msg,
                f"input_request for execute_request #{req.index}, which has allow_stdin false",
                related=(req.index,),
            )


class StdinOrder(Rule):
    id = "stdin-order"
    family = "stdin"
    summary = "each input_request is answered by one input_reply, before the request's reply"
    help = (
        "A kernel that sends input_request blocks until the input_reply arrives, so the "
        "request's reply comes after it. Reported: a reply to a request whose "
        "input_request is never answered (by the end of the log, or before the kernel "
        "asks that client again), and an input_reply with no input_request to answer "
        "(from that client). Stdin and shell are separate sockets, so an answer captured "
        "just after the request's reply still counts: only the stdin channel's own order "
        "is judged. An interrupt in between excuses both: it cancels the prompt."
    )
    spec = "stdin-messages"
    where = frozenset({("stdin", "kernel"), ("stdin", "client"), *KERNEL_REPLIES})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        #: client identity -> (input_request record, its request or None)
        self.pending: dict[tuple[bytes, ...], tuple[At, Request | None]] = {}
        #: client identity -> (input_request record, the reply that came while it was
        #: unanswered): judged when the client answers (no finding), when the kernel asks
        #: that client again or at the end of the log (a finding at the reply)
        self.replied: dict[tuple[bytes, ...], tuple[At, At, Request]] = {}
        #: identities whose last input_request was cancelled by an interrupt
        self.cancelled: set[tuple[bytes, ...]] = set()

    def restart(self) -> None:
        self.pending.clear()
        self.replied.clear()
        self.cancelled.clear()

    def finish(self) -> None:
        for ids in list(self.replied):
            self._unanswered(ids)

    def message(self, msg: Msg) -> None:
        ch = msg.ch
        if ch == "stdin":
            if msg.msg_type == "input_request" and msg.source == "kernel":
                if msg.ids in self.replied:
                    self._unanswered(msg.ids)
                self.pending[msg.ids] = (At.of(msg), msg.request)
                self.cancelled.discard(msg.ids)
            elif msg.msg_type == "input_reply" and msg.source == "client":
                if self.replied.pop(msg.ids, None) is not None:
                    return  # the answer, captured after the reply it preceded
                prompt = self.pending.pop(msg.ids, None)
                if prompt is not None and self._interrupted_since(prompt[0]):
                    return
                if prompt is None and msg.ids not in self.cancelled:
                    self.report(msg, "input_reply with no pending input_request for this client")
                self.cancelled.discard(msg.ids)
            return
        if msg.how == "parent":
            req = msg.request
            if req is None or not self.pending:
                return
            for ids, (prompt, asked_for) in list(self.pending.items()):
                if asked_for is not req:
                    continue
                del self.pending[ids]
                if self._interrupted_since(prompt):
                    self.cancelled.add(ids)
                else:
                    self.replied[ids] = (prompt, At.of(msg), req)

    def _unanswered(self, ids: tuple[bytes, ...]) -> None:
        prompt, reply, req = self.replied.pop(ids)
        self.report(
            reply,
            f"reply to {req.msg_type} #{req.index} while its input_request "
            f"#{prompt.index} is unanswered",
            related=(req.index, prompt.index),
        )

    def _interrupted_since(self, prompt: At) -> bool:
        return self.ctx.last_interrupt_index > prompt.index


JUPYTER_CLIENT_INPUT = Deviation(
    "jupyter_client",
    "sends input_reply with an empty parent header (KernelClient.input)",
    "a kernel has one prompt open per client, so it knows what the reply answers",
)


class StdinReplyParent(Rule):
    id = "stdin-reply-parent"
    family = "stdin"
    severity = "warning"
    summary = "an input_reply's parent header is its input_request's header"
    help = (
        "Like every reply, input_reply should carry the header of the message it answers, "
        "the input_request. Kernels match it by client instead, so a missing parent is "
        "harmless in practice, hence a warning."
    )
    spec = "parent-header"
    msg_types = frozenset({"input_request", "input_reply"})
    deviations = (JUPYTER_CLIENT_INPUT,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.last_prompt: dict[tuple[bytes, ...], str] = {}

    def message(self, msg: Msg) -> None:
        if msg.ch != "stdin":
            return
        if msg.msg_type == "input_request":
            self.last_prompt[msg.ids] = msg.msg_id
            return
        prompt = self.last_prompt.pop(msg.ids, None)
        if prompt is None or msg.parent_id == prompt:
            return
        if not msg.parent_id:
            self.report(msg, "input_reply without a parent header", deviation=JUPYTER_CLIENT_INPUT)
        else:
            self.report(msg, "input_reply whose parent is not the pending input_request")


RULES = [StdinAllowed, StdinOrder, StdinReplyParent]
