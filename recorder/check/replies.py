"""Sequencing on shell and control: one reply of the matching type per request, parented to it."""

from __future__ import annotations

import re

from krec.recorder.check.base import CLIENT_REQUESTS, KERNEL_REPLIES, PARTIAL, Deviation, Rule
from krec.recorder.check.messages import Msg
from krec.recorder.check.protocol import REQUESTS


def _short(msg_id: str) -> str:
    return msg_id if len(msg_id) <= 12 else msg_id[:8] + "…" + msg_id[-4:]


class KernelReplyRule(Rule):
    """A rule about what the kernel sends back on shell or control."""

    where = KERNEL_REPLIES

    def message(self, msg: Msg) -> None:
        self.reply(msg)

    def reply(self, msg: Msg) -> None:  # pragma: no cover - overridden
        pass


class ReplyParent(KernelReplyRule):
    id = "reply-parent"
    family = "replies"
    summary = "a reply's parent header is the header of the request it answers"
    help = (
        "`_reply messages MUST have a parent_header`, a copy of the request's header: it is "
        "how a client routes the reply. Reported: a reply with no parent, or whose parent "
        "names no request the client sent, or whose parent is not a copy of the request's "
        "header. When the parent is wrong, krec still pairs the reply with the oldest "
        "unanswered request of the matching type from the same client, so the other rules "
        "(and `no-reply`) are not thrown off by one bad parent."
    )
    spec = "parent-header"

    def reply(self, msg: Msg) -> None:
        if not msg.msg_type.endswith("_reply"):
            return
        req = msg.request
        if msg.how == "fallback" and req is not None:
            what = (
                "has no parent header"
                if not msg.parent_id
                else f"names msg_id {_short(msg.parent_id)}, which no client request has"
            )
            self.report(
                msg,
                f"parent {what}; by order it answers {req.msg_type} #{req.index}",
                related=(req.index,),
            )
        elif msg.how is None:
            what = "no parent header" if not msg.parent_id else f"parent {_short(msg.parent_id)}"
            text = f"{what}: answers no request krec saw on {msg.ch}"
            if self.ctx.partial and msg.parent_id:
                self.report(msg, text + PARTIAL, severity="warning")
            else:
                self.report(msg, text)
        elif msg.how == "parent" and req is not None:
            p = msg.parent
            bad = [
                k
                for k, mine in (("msg_type", req.msg_type), ("session", req.session))
                if k in p and p[k] != mine
            ]
            if bad:
                self.report(
                    msg,
                    f"the parent header's {', '.join(bad)} differ from request #{req.index}'s "
                    "header, so it is not a copy of it",
                    related=(req.index,),
                )


class ReplyType(KernelReplyRule):
    id = "reply-type"
    family = "replies"
    summary = "a reply's type matches its request (execute_request -> execute_reply)"
    help = (
        "The answer to `<action>_request` is `<action>_reply`. Also reported: a reply to "
        "a message that expects none (comm messages)."
    )
    spec = "request-reply"

    def reply(self, msg: Msg) -> None:
        req = msg.request
        if req is None or msg.how != "parent":
            return
        if req.reply_type is None:
            self.report(msg, f"{req.msg_type} #{req.index} expects no reply", related=(req.index,))
        elif req.reply_type != msg.msg_type:
            self.report(
                msg,
                f"answers {req.msg_type} #{req.index} with {msg.msg_type}, "
                f"expected {req.reply_type}",
                related=(req.index,),
            )


class ReplyChannel(KernelReplyRule):
    id = "reply-channel"
    family = "replies"
    summary = "a reply comes back on the channel its request went out on"
    help = (
        "A request sent on control is answered on control, one sent on shell on shell: a "
        "client listens for the reply on the socket it used."
    )
    spec = "request-reply"

    def reply(self, msg: Msg) -> None:
        req = msg.request
        if req is not None and msg.how == "parent" and req.ch != msg.ch:
            self.report(
                msg,
                f"reply on {msg.ch} to {req.msg_type} #{req.index}, which was sent on {req.ch}",
                related=(req.index,),
            )


class DuplicateReply(KernelReplyRule):
    id = "duplicate-reply"
    family = "replies"
    summary = "each request gets exactly one reply"
    help = (
        "A request is answered once. A second reply naming the same request confuses a "
        "client that already settled it (jupyter_client drops it; a notebook may rerun "
        "its callbacks)."
    )
    spec = "request-reply"

    def reply(self, msg: Msg) -> None:
        req = msg.request
        if req is not None and msg.how == "duplicate":
            first = f" (first: #{req.reply})" if req.reply is not None else ""
            self.report(
                msg,
                f"second reply to {req.msg_type} #{req.index}{first}",
                related=tuple(i for i in (req.index, req.reply) if i is not None),
            )


class ReplyOrder(KernelReplyRule):
    id = "reply-order"
    family = "replies"
    severity = "warning"
    summary = "replies to one client on one channel (and subshell) come in request order"
    help = (
        "A kernel handles the requests of a shell (or control) channel one after another, "
        "so a client sees their replies in the order it sent them. A reply that overtakes "
        "an older unanswered request from the same client, on the same channel and "
        "subshell, is reported: usually the older request was lost or the kernel runs "
        "requests concurrently without subshells. Only requests the spec defines count "
        "(a kernel need not answer types it does not know)."
    )
    spec = "messages-on-the-shell-router-dealer-channel"

    def reply(self, msg: Msg) -> None:
        req = msg.request
        if req is None or msg.how not in ("parent", "fallback"):
            return
        for older in self.ctx.routes.get((req.ch, req.ids), ()):
            if older is req:
                return
            if older.subshell == req.subshell and older.msg_type in REQUESTS:
                self.report(
                    msg,
                    f"answers {req.msg_type} #{req.index} before the older "
                    f"{older.msg_type} #{older.index} from the same client",
                    related=(req.index, older.index),
                )
                return


_JUPYTER_CLIENT_ID = re.compile(r"_\d+_\d+\Z")

SESSION_CLONE = Deviation(
    "jupyter_client",
    "gives a KernelManager and the clients it makes (Session.clone) the same session id "
    "and each its own message counter from 0, so the manager's shutdown_request (on its "
    "own control socket) repeats the msg_id of the client's first requests",
    "by then the repeated request was answered; krec pairs later messages with the newest "
    "request of that id, as the kernel's replies do",
)


class DuplicateRequest(Rule):
    id = "duplicate-request"
    family = "replies"
    summary = "a client never reuses the msg_id of an earlier request"
    help = (
        "msg_id 'must be unique per message': replies and outputs find their request by "
        "it, so a reused id makes them ambiguous."
    )
    spec = "message-header"
    where = CLIENT_REQUESTS
    deviations = (SESSION_CLONE,)

    def message(self, msg: Msg) -> None:
        if not msg.msg_id:
            return
        old = self.ctx.lookup(msg.msg_id)
        if old is None:
            return
        text = f"msg_id {_short(msg.msg_id)} was already used by {old.msg_type} #{old.index}"
        clone = old.ids != msg.ids and _JUPYTER_CLIENT_ID.search(msg.msg_id) is not None
        self.report(msg, text, related=(old.index,), deviation=SESSION_CLONE if clone else None)


RULES = [ReplyParent, ReplyType, ReplyChannel, DuplicateReply, ReplyOrder, DuplicateRequest]
