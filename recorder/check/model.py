"""The session model a check pass builds as it reads: messages, requests and what answered them.

``Msg`` is one message record with its JSON frames parsed. ``Request`` is what a
client sent on shell or control, annotated as the pass goes on (its reply, its
``status: busy``/``idle``, its first output...). ``Context`` owns the requests,
matches each reply and iopub/stdin message to its request, collects findings and
retires a request once its reply and its idle are both seen (keeping the last few
thousand, so late or duplicate messages still find them).
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .base import CheckOptions, Finding, spec_link

if TYPE_CHECKING:
    from .base import Rule

_RECENT = 4096
_PARENT_CACHE = 512
#: content frames up to this size are parsed once per distinct value
_SMALL = 64
_SMALL_CACHE = 1024
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.\d+)?\Z")


class Msg:
    """One message record; JSON frames parsed (an unusable frame parses as ``{}``).

    Built by ``Context.message`` for every message of a log, so it sets only what a
    record has and the rest falls back to these class-level defaults (never mutated).
    """

    ids: tuple[bytes, ...] = ()
    header: dict[str, Any] = {}
    parent: dict[str, Any] = {}
    #: the parent is empty or carries a string msg_id and msg_type
    parent_ok = True
    metadata: dict[str, Any] = {}
    _content: dict[str, Any] | None = None
    _raw_content: Any = None
    msg_type = ""
    msg_id = ""
    parent_id = ""
    #: protocol version from the header ("5.3" -> 5, 3); None when unusable
    major: int | None = None
    minor: int | None = None
    subshell: str | None = None
    #: the request this message answers or belongs to (resolved by Context.before)
    request: Request | None = None
    #: how a reply was matched: "parent", "fallback", "duplicate" or None
    how: str | None = None
    #: (frame, what is wrong) for unusable frames (the `frames` rule reports them)
    problems: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()
    #: the raw content frame when it is small (and so parsed once): a cache key
    content_key: bytes | None = None

    def __init__(self, index: int, t: int, ch: str, source: str) -> None:
        self.index = index
        self.t = t
        self.ch = ch
        self.source = source

    @property
    def content(self) -> dict[str, Any]:
        """The content, parsed on first use when the pass does not need every content."""
        c = self._content
        if c is None:
            c = self._content = _object(self._raw_content, "content", self)
        return c

    @property
    def broken(self) -> bool:
        """True when the header is unusable, so only structure rules can look at it."""
        return not self.msg_type

    def __repr__(self) -> str:
        return f"<Msg #{self.index} {self.ch} {self.source} {self.msg_type}>"


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


class At:
    """A place to report a finding that is not the message at hand (an event, a past reply).

    For an event, ``ch`` and ``source`` are empty and ``msg_type`` is the event name.
    """

    __slots__ = ("index", "t", "ch", "source", "msg_type", "msg_id")

    def __init__(
        self,
        index: int,
        t: int,
        ch: str = "",
        source: str = "",
        msg_type: str = "",
        msg_id: str = "",
    ) -> None:
        self.index = index
        self.t = t
        self.ch = ch
        self.source = source
        self.msg_type = msg_type
        self.msg_id = msg_id

    @classmethod
    def of(cls, msg: Msg) -> At:
        return cls(msg.index, msg.t, msg.ch, msg.source, msg.msg_type, msg.msg_id)


_JSON_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


_decode = json.JSONDecoder().raw_decode
_BLANK = " \t\n\r"


def _object(data: Any, name: str, msg: Msg) -> dict[str, Any]:
    """A JSON object frame, parsed; ``{}`` (and a problem noted in ``msg``) when it is not one."""
    if data.__class__ is not bytes:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        else:
            _problem(msg, name, "missing" if data is None else f"a msgpack {type(data).__name__}")
            return {}
    if data == b"{}":
        return {}
    # json.loads, minus its encoding detection: the wire is UTF-8 (3x faster on headers)
    try:
        text = data.decode()
        if text[:1] in _BLANK:
            text = text.lstrip(_BLANK)
        value, end = _decode(text)
        if end != len(text) and text[end:].strip(_BLANK):
            raise ValueError(f"extra data at char {end}")
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        _problem(msg, name, f"not JSON ({_short(e)})")
        return {}
    if value.__class__ is not dict:
        _problem(msg, name, f"a JSON {_JSON_NAMES.get(type(value), 'value')}, not an object")
        return {}
    return value


def _problem(msg: Msg, frame: str, what: str) -> None:
    if not msg.problems:
        msg.problems = []
    msg.problems.append((frame, what))  # type: ignore[union-attr]


def _short(e: Exception) -> str:
    text = str(e)
    return text if len(text) < 80 else text[:77] + "..."


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
        self._parents: dict[bytes, tuple[dict[str, Any], bool]] = {}
        self._small: dict[bytes, dict[str, Any]] = {}
        self._versions: dict[str, tuple[int | None, int | None]] = {}
        #: parse every content when reading (a rule reads them all); else on first use
        self.eager_content = True

    # -- building messages ------------------------------------------------------

    def message(self, index: int, raw: dict[str, Any]) -> Msg:
        """Parse a message record (this is most of a pass's time: keep it lean)."""
        get = raw.get
        t = get("t")
        ch = get("ch")
        source = get("from")
        msg = Msg(
            index,
            t if t.__class__ is int else 0,
            ch if ch.__class__ is str else "",
            source if source.__class__ is str else "",
        )
        ids = get("ids")
        if ids.__class__ is list and ids and ch != "iopub":  # iopub ids are mere topics
            ids = tuple(ids)
            try:
                hash(ids)
            except TypeError:  # an odd log: ids are keys of the model's tables
                ids = tuple(repr(i).encode() for i in ids)
            msg.ids = ids
        header = msg.header = _object(get("header"), "header", msg)
        # the parent frame repeats for every message a request causes: parse it once
        parent_raw = get("parent")
        cached = self._parents.get(parent_raw) if parent_raw.__class__ is bytes else None
        if cached is None:
            n = len(msg.problems)
            p = _object(parent_raw, "parent", msg)
            ok = not p or (p.get("msg_id").__class__ is str and p.get("msg_type").__class__ is str)
            cached = (p, ok)
            if len(msg.problems) == n and parent_raw.__class__ is bytes:
                if len(self._parents) >= _PARENT_CACHE:
                    self._parents.clear()
                self._parents[parent_raw] = cached
        p, ok = cached
        if p:
            msg.parent = p
            pid = p.get("msg_id")
            if pid.__class__ is str:
                msg.parent_id = pid
        if not ok:
            msg.parent_ok = False
        meta = get("metadata")
        if meta != b"{}":
            msg.metadata = _object(meta, "metadata", msg)
        content = get("content")
        if content.__class__ is bytes and len(content) <= _SMALL:
            # small contents repeat (status busy/idle...): parse each once
            parsed = self._small.get(content)
            if parsed is None:
                n = len(msg.problems)
                parsed = _object(content, "content", msg)
                if len(msg.problems) == n:
                    if len(self._small) >= _SMALL_CACHE:
                        self._small.clear()
                    self._small[content] = parsed
            msg._content = parsed
            msg.content_key = content
        elif self.eager_content:
            msg._content = _object(content, "content", msg)
        else:
            msg._raw_content = content
        hget = header.get
        mt = hget("msg_type")
        if mt.__class__ is str:
            msg.msg_type = mt
        mid = hget("msg_id")
        if mid.__class__ is str:
            msg.msg_id = mid
        version = hget("version")
        if version.__class__ is str:
            parsed_version = self._versions.get(version)
            if parsed_version is None:
                m = _VERSION.match(version)
                parsed_version = (int(m.group(1)), int(m.group(2))) if m else (None, None)
                if len(self._versions) < 64:
                    self._versions[version] = parsed_version
            msg.major, msg.minor = parsed_version
        sub = hget("subshell_id")
        if sub.__class__ is str:
            msg.subshell = sub
        return msg

    # -- the model, around the rules ---------------------------------------------

    def lookup(self, msg_id: str) -> Request | None:
        req = self.requests.get(msg_id)
        if req is None:
            req = self.recent.get(msg_id)
        return req

    def before(self, msg: Msg) -> None:
        """Resolve the request a message belongs to (rules then judge it)."""
        if msg.ch in ("shell", "control"):
            if msg.source != "client":
                self._resolve_reply(msg)
        elif msg.parent_id:
            msg.request = self.lookup(msg.parent_id)

    def _resolve_reply(self, msg: Msg) -> None:
        req = self.lookup(msg.parent_id) if msg.parent_id else None
        if req is not None:
            msg.request = req
            msg.how = "duplicate" if req.reply is not None else "parent"
            return
        # the parent names no request: a reply still answers the oldest request of its
        # type from the same client on the same channel (kernels handle them in order)
        for cand in self.routes.get((msg.ch, msg.ids), ()):
            if cand.reply_type == msg.msg_type:
                msg.request = cand
                msg.how = "fallback"
                return

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
