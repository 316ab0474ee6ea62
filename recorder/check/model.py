"""The session model a check pass builds as it reads: the requests and what answered them.

``Request`` is what a client sent on shell or control, annotated as the pass goes
on (its reply, its ``status: busy``/``idle``, its first output...). ``Context``
parses each record into a ``Msg`` (messages.py), owns the requests,
matches each reply and iopub/stdin message to its request, collects findings and
retires a request once its reply and its idle are both seen (keeping the last few
thousand, so late or duplicate messages still find them).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from krec.recorder.check.base import CheckOptions, Finding, spec_link
from krec.recorder.check.messages import At, Msg, Parser
from krec.recorder.log.owner import owner

if TYPE_CHECKING:
    from krec.recorder.check.base import Rule

_RECENT = 4096


class Request:
    """A message a client sent on shell or control, and what the kernel did with it."""

    __slots__ = (
        "index",
        "t",
        "msg_id",
        "msg_type",
        "ch",
        "ids",
        "subshell",
        "session",
        "reply_type",
        "silent",
        "store_history",
        "allow_stdin",
        "reply",
        "reply_t",
        "reply_status",
        "busy",
        "idle",
        "execute_input",
        "first_output",
        "outputs",
        "error_enames",
        "count",
        "reported",
        "early",
    )

    source = "client"

    def __init__(self, msg: Msg, early: bool = False) -> None:
        self.index = msg.index
        self.t = msg.t
        self.msg_id = msg.msg_id
        self.msg_type = msg.msg_type
        self.ch = msg.ch
        self.ids = msg.ids
        self.subshell = msg.subshell
        session = msg.header.get("session")
        self.session = session if isinstance(session, str) else ""
        mt = msg.msg_type
        #: the reply type this request expects, or None (comm messages expect none)
        self.reply_type = mt[:-8] + "_reply" if mt.endswith("_request") else None
        c = msg.content
        self.silent = c.get("silent") is True
        history = c.get("store_history", not self.silent)
        self.store_history = history is True and not self.silent
        self.allow_stdin = c.get("allow_stdin") is True
        self.reply: int | None = None
        self.reply_t = 0
        self.reply_status: Any = None
        self.busy: int | None = None
        self.idle: int | None = None
        self.execute_input: int | None = None
        self.first_output: int | None = None
        self.outputs = 0
        self.error_enames: list[Any] | None = None
        self.count: Any = None
        self.reported: set[str] | None = None
        #: sent before krec's iopub subscription was known to work: its busy (and more)
        #: may have been published before anyone listened, so it is not judged on them
        self.early = early

    def once(self, key: str) -> bool:
        """True the first time ``key`` is asked for this request (report something once)."""
        if self.reported is None:
            self.reported = set()
        if key in self.reported:
            return False
        self.reported.add(key)
        return True

    def __repr__(self) -> str:
        return f"<Request #{self.index} {self.ch} {self.msg_type}>"


class Context:
    """Everything a pass knows so far; rules read it, the runner updates it around each message."""

    def __init__(
        self,
        header: dict[str, Any] | None = None,
        options: CheckOptions | None = None,
        start_ns: int | None = None,
    ) -> None:
        self.header = header or {}
        self.options = options or CheckOptions()
        created = self.header.get("created", 0)
        if start_ns is None:
            start_ns = int(float(created) * 1e9) if isinstance(created, (int, float)) else 0
        self.start_ns = start_ns
        #: the log attached to a running kernel: it may start in the middle of a session
        self.partial = self.header.get("mode") == "existing"
        self.findings: list[Finding] = []
        self.requests: dict[str, Request] = {}
        self.recent: OrderedDict[str, Request] = OrderedDict()
        self.routes: dict[tuple[str, tuple[bytes, ...]], list[Request]] = {}
        #: input_request msg_id -> its request (the last few thousand), and per client
        #: the request of the prompt open on its stdin: what an input_reply answers
        self.prompts: OrderedDict[str, Request] = OrderedDict()
        self.open_prompt: dict[tuple[bytes, ...], Request] = {}
        self.on_done: Callable[[Request, bool], None] = lambda req, at_end: None
        self.first_t: int | None = None
        self.last_t = 0
        self.records = 0
        self.last_status_index = -1
        self.last_interrupt_index = -1
        self.last_interrupt_t = 0
        #: has the current kernel's iopub reached krec yet? (see Request.early)
        self.iopub_connected = False
        self.client_version: str | None = None
        self.kernel_version: str | None = None
        self.parser = Parser()
        #: parse a message record into a Msg
        self.message = self.parser.parse

    # -- building messages ------------------------------------------------------

    # -- the model, around the rules ---------------------------------------------

    def lookup(self, msg_id: str) -> Request | None:
        req = self.requests.get(msg_id)
        if req is None:
            req = self.recent.get(msg_id)
        return req

    def before(self, msg: Msg) -> None:
        """Resolve the request a message belongs to (rules then judge it), by owner.py."""
        if msg.ch in ("shell", "control"):
            if msg.source != "client":
                self._resolve_reply(msg)
        elif msg.ch == "stdin" and msg.msg_type == "input_reply":
            asked = self.prompts.get(msg.parent_id) if msg.parent_id else None
            msg.request = owner(
                [asked] if asked is not None else None,
                index=msg.index,
                ch=msg.ch,
                msg_type=msg.msg_type,
                prompt=self.open_prompt.get(msg.ids),
            )
            if asked is None:
                self.open_prompt.pop(msg.ids, None)
        elif msg.parent_id:
            req = self.lookup(msg.parent_id)
            msg.request = owner(
                [req] if req is not None else None,
                index=msg.index,
                ch=msg.ch,
                msg_type=msg.msg_type,
            )

    def _resolve_reply(self, msg: Msg) -> None:
        req = self.lookup(msg.parent_id) if msg.parent_id else None
        # the parent names no request: a reply still answers the oldest request of its
        # type from the same client on the same channel (kernels handle them in order)
        waiting = None
        if req is None:
            routed = self.routes.get((msg.ch, msg.ids), ())
            waiting = next((c for c in routed if c.reply_type == msg.msg_type), None)
        found = owner(
            [req] if req is not None else None,
            index=msg.index,
            ch=msg.ch,
            msg_type=msg.msg_type,
            waiting=waiting,
        )
        if found is None:
            return
        msg.request = found
        if found is waiting:
            msg.how = "fallback"
        else:
            msg.how = "duplicate" if found.reply is not None else "parent"

    def after(self, msg: Msg) -> None:
        """Update the model with a message the rules have judged."""
        self.last_t = max(self.last_t, msg.t)
        ch = msg.ch
        if ch in ("shell", "control"):
            if msg.source == "client":
                if msg.msg_id:
                    # a reused msg_id (an error, reported by duplicate-request) names the
                    # newest request from now on: what follows answers that one
                    older = self.requests.pop(msg.msg_id, None)
                    if older is not None:
                        self._unroute(older)
                        self.on_done(older, True)
                    self.recent.pop(msg.msg_id, None)
                    req = Request(msg, early=not self.iopub_connected)
                    self.requests[msg.msg_id] = req
                    if req.reply_type is not None:
                        self.routes.setdefault((ch, msg.ids), []).append(req)
                if self.client_version is None and isinstance(msg.header.get("version"), str):
                    self.client_version = msg.header["version"]
                return
            req = msg.request
            if req is not None and msg.how in ("parent", "fallback"):
                req.reply = msg.index
                req.reply_t = msg.t
                req.reply_status = msg.content.get("status")
                self._unroute(req)
                self._maybe_done(req)
            if msg.msg_type == "kernel_info_reply":
                pv = msg.content.get("protocol_version")
                if isinstance(pv, str):
                    self.kernel_version = pv
            return
        if ch == "stdin":
            if msg.msg_type == "input_request" and msg.request is not None:
                self.prompts[msg.msg_id] = msg.request
                if len(self.prompts) > _RECENT:
                    self.prompts.popitem(last=False)
                self.open_prompt[msg.ids] = msg.request
            return
        if ch != "iopub":
            return
        if msg.source == "kernel":
            self.iopub_connected = True
        req = msg.request
        mt = msg.msg_type
        if mt == "status":
            if msg.source == "kernel":
                self.last_status_index = msg.index
            if req is None:
                return
            state = msg.content.get("execution_state")
            if state == "busy":
                if req.busy is None:
                    req.busy = msg.index
            elif state == "idle" and req.idle is None:
                req.idle = msg.index
                self._maybe_done(req)
            return
        if req is None:
            return
        if mt == "execute_input":
            if req.execute_input is None:
                req.execute_input = msg.index
            return
        req.outputs += 1
        if req.first_output is None:
            req.first_output = msg.index
        if mt == "error":
            if req.error_enames is None:
                req.error_enames = []
            req.error_enames.append(msg.content.get("ename"))

    def _unroute(self, req: Request) -> None:
        route = self.routes.get((req.ch, req.ids))
        if route is not None and req in route:
            route.remove(req)
            if not route:
                del self.routes[(req.ch, req.ids)]

    def _maybe_done(self, req: Request) -> None:
        if req.idle is None or (req.reply is None and req.reply_type is not None):
            return
        if self.requests.get(req.msg_id) is not req:
            return  # already retired (a late duplicate)
        del self.requests[req.msg_id]
        self.on_done(req, False)
        self.recent[req.msg_id] = req
        if len(self.recent) > _RECENT:
            self.recent.popitem(last=False)

    def kernel_started(self) -> None:
        """A new kernel process: iopub is not connected to it until its first message."""
        self.iopub_connected = False

    def finish(self) -> None:
        """The log ended: every request still open is done as it is."""
        for req in list(self.requests.values()):
            self.on_done(req, True)
        self.requests.clear()

    # -- findings ---------------------------------------------------------------

    def rel(self, t: int) -> float:
        return (t - self.start_ns) / 1e9 if t and self.start_ns else 0.0

    def add(
        self,
        rule: Rule,
        where: Msg | Request | At,
        text: str,
        related: tuple[int, ...],
        severity: str,
    ) -> None:
        self.findings.append(
            Finding(
                rule=rule.id,
                severity=severity,
                index=where.index,
                t=where.t,
                rel=self.rel(where.t),
                ch=where.ch,
                source=where.source,
                msg_type=where.msg_type,
                msg_id=where.msg_id,
                text=text,
                spec=spec_link(rule.spec),
                related=related,
            )
        )
