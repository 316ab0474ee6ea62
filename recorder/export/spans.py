"""The span model of a kernel session: log records in, one finished span per request out.

``SpanBuilder`` is fed records in log order (live, from the capture thread's queue, or
from a LogReader for ``krec export --to otlp``) and returns ``KrecSpan`` objects as
requests complete: a span runs from the client's request to the later of its reply and
its ``status: idle`` (a ``comm_*`` message, which has no reply, ends at idle), carries
the outputs and stdin traffic as events (type and size; contents only when
``include_content``), and ends with an error status when the recording or the kernel
stops before the reply. Ownership of a record follows log/owner.py's rule. Span and
trace ids derive from the request (msg_id and capture time), so a live export and an
export of the same log give the same ids. This module needs no OpenTelemetry package;
otlp.py turns its spans into the SDK's.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from krec.recorder.log.exchange import REQUEST_CHANNELS, Exchange, _owner, _stdin_owner
from krec.recorder.log.record import Record
from krec.recorder.wire import peek_field

#: request types that the messaging spec answers with no reply: they end at idle
NO_REPLY = frozenset({"comm_msg", "comm_open", "comm_close"})
#: events after which no open request can be answered any more
_ENDING_EVENTS = {
    "recording_stopped": "the recording stopped",
    "kernel_died": "the kernel died",
    "kernel_exited": "the kernel exited",
    "kernel_stopped": "the kernel was stopped",
    "restart": "the kernel restarted",
}
#: an attribute value made from message content is cut to this many characters
CONTENT_LIMIT = 32 * 1024
#: open requests kept at most; beyond, the oldest ends as unanswered
MAX_OPEN = 10_000


def max_events() -> int:
    """Events kept per span: the SDK's limit (``OTEL_SPAN_EVENT_COUNT_LIMIT``, default 128).
    Beyond it the SDK would drop them anyway, so they are only counted
    (``krec.events_dropped``) and cost no more work."""
    try:
        return max(0, int(os.environ.get("OTEL_SPAN_EVENT_COUNT_LIMIT", "128")))
    except ValueError:
        return 128


_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_NAME = b'"name"'
_STATE = b'"execution_state"'


@dataclass
class KrecSpan:
    """One finished span, in plain data (ids as bytes, times in ns since the epoch)."""

    name: str
    trace_id: bytes
    span_id: bytes
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    error: str | None = None  # the status description when the status is ERROR
    parent_span_id: bytes | None = None  # a W3C traceparent's parent, remote
    trace_flags: int = 1
    trace_state: str = ""
    request_index: int = -1  # the request's record index in the log


def parse_traceparent(value: object) -> tuple[bytes, bytes, int] | None:
    """(trace_id, parent span_id, flags) of a W3C traceparent, None when it is not one."""
    if not isinstance(value, str):
        return None
    m = _TRACEPARENT.match(value.strip().lower())
    if m is None or m.group(1) == "ff" or (m.group(1) == "00" and m.group(5)):
        return None
    trace_id, span_id = bytes.fromhex(m.group(2)), bytes.fromhex(m.group(3))
    if not any(trace_id) or not any(span_id):
        return None
    return trace_id, span_id, int(m.group(4), 16)


def _ids(msg_id: str, t: int) -> tuple[bytes, bytes]:
    digest = hashlib.sha256(f"krec\0{msg_id}\0{t}".encode()).digest()
    trace_id, span_id = digest[:16], digest[16:24]
    return trace_id, span_id if any(span_id) else b"\0" * 7 + b"\1"


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= CONTENT_LIMIT else text[:CONTENT_LIMIT] + "...[truncated by krec]"


def _frame_text(rec: Record, name: str) -> str:
    return _text(rec.frame(name).decode("utf-8", "replace"))


@dataclass
class _Open:
    """A request whose span has not ended: its exchange and the events gathered so far."""

    exchange: Exchange
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    parent: tuple[bytes, bytes, int] | None = None
    trace_state: str = ""
    dropped: int = 0  # events beyond max_events()


class SpanBuilder:
    """Turns the records of one log, fed in order, into finished spans.

    ``include_content`` adds code, output contents and error values to spans; it is
    forced off for a log whose header says ``audit: true`` (audit mode: spans never
    carry content).
    """

    def __init__(self, header: dict[str, Any], *, include_content: bool = False) -> None:
        self.include_content = bool(include_content) and not header.get("audit")
        kernel = header.get("kernel") if isinstance(header.get("kernel"), dict) else {}
        self._base: dict[str, Any] = {}
        if isinstance(kernel.get("name"), str) and kernel["name"]:
            self._base["jupyter.kernel_name"] = kernel["name"]
        if isinstance(header.get("kernel_id"), str) and header["kernel_id"]:
            self._base["jupyter.kernel_id"] = header["kernel_id"]
        self._max_events = max_events()
        hub = header.get("jupyterhub_user")
        self._default_user = hub if isinstance(hub, str) and hub else ""
        self._open: dict[str, list[_Open]] = {}  # msg_id -> open requests with that id
        self._order: dict[int, _Open] = {}  # request index -> open request, oldest first
        self._prompts: dict[str, Exchange] = {}
        self._pending_prompt: dict[tuple[bytes, ...], Exchange] = {}
        self._number = 0
        self._next_index = 0
        # identities the server announced, not yet tied to a session; then who is who
        self._unbound: list[dict[str, str]] = []
        self._by_session: dict[str, dict[str, str] | None] = {}  # None: nobody announced

    # -- feeding ------------------------------------------------------------------

    def feed_raw(self, raw: dict[str, Any]) -> list[KrecSpan]:
        """Feed a record map as the log stores it (live: the capture thread's records)."""
        rec = Record(self._next_index, raw)
        return self.feed(rec)

    def feed(self, rec: Record) -> list[KrecSpan]:
        """Take the next record of the log; return the spans it ends."""
        self._next_index = rec.index + 1
        if rec.is_event:
            return self._event(rec)
        if rec.source == "client" and rec.ch in REQUEST_CHANNELS:
            return self._request(rec)
        if rec.ch == "stdin":
            owner = _stdin_owner(rec, self._exchanges(rec), self._prompts, self._pending_prompt)
            if owner is not None:
                self._stdin_event(self._order.get(owner.request.index), rec)
            return []
        candidates = self._open.get(rec.parent_id)
        if not candidates:
            return []
        if len(candidates) == 1:  # the usual case: msg_ids rarely repeat
            op = candidates[0]
        else:
            ex = _owner(rec, [o.exchange for o in candidates])
            op = self._order.get(ex.request.index) if ex is not None else None
            if op is None:
                return []
        ex = op.exchange
        ch, msg_type = rec.ch, rec.msg_type
        if ch == ex.ch and rec.source == "kernel" and msg_type.endswith("_reply"):
            if ex.reply is None:
                ex.reply = rec
                self._reply(op, rec)
        elif ch == "iopub":
            if msg_type == "status":
                state = peek_field(rec.frame("content"), _STATE)
                if state == "busy" and ex.busy_t is None:
                    ex.busy_t = rec.t
                elif state == "idle":
                    ex.idle_t = rec.t
            elif len(op.events) < self._max_events:
                op.events.append((msg_type or "iopub", rec.t, self._output(rec)))
            else:
                op.dropped += 1
        else:
            return []
        if ex.idle_t is not None and (ex.reply is not None or ex.msg_type in NO_REPLY):
            return [self._finish(op, None)]
        return []

    def close(self, reason: str = "the log ended") -> list[KrecSpan]:
        """End every open request (unanswered ones with an error): the log is over."""
        return self._end_all(None, reason)

    # -- requests -------------------------------------------------------------------

    def _exchanges(self, rec: Record) -> dict[str, list[Exchange]]:
        return {rec.parent_id: [o.exchange for o in self._open.get(rec.parent_id, [])]}

    def _request(self, rec: Record) -> list[KrecSpan]:
        self._number += 1
        ex = Exchange(number=self._number, request=rec, records=[rec.index])
        header = rec.header
        msg_type = rec.msg_type
        attrs: dict[str, Any] = {
            "jupyter.msg_type": msg_type,
            "jupyter.msg_id": rec.msg_id,
            "jupyter.channel": rec.ch,
            **self._base,
        }
        session = header.get("session")
        if isinstance(session, str) and session:
            attrs["jupyter.session"] = session
        if rec.subshell_id:
            attrs["jupyter.subshell_id"] = rec.subshell_id
        identity = self._identity(rec, session if isinstance(session, str) else "")
        user = (identity or {}).get("user") or self._default_user
        if user:
            attrs["enduser.id"] = user
        if identity and identity.get("kernel_id") and "jupyter.kernel_id" not in attrs:
            attrs["jupyter.kernel_id"] = identity["kernel_id"]
        if identity and identity.get("session_path"):
            attrs["jupyter.session_path"] = identity["session_path"]
        if self.include_content:
            content = rec.content
            code = content.get("code")
            if isinstance(code, str):
                attrs["jupyter.code"] = _text(code)
            else:
                attrs["jupyter.content"] = _frame_text(rec, "content")
        metadata = rec.metadata
        op = _Open(ex, attrs, parent=parse_traceparent(metadata.get("traceparent")))
        state = metadata.get("tracestate")
        if op.parent is not None and isinstance(state, str):
            op.trace_state = state
        self._open.setdefault(rec.msg_id, []).append(op)
        self._order[rec.index] = op
        if len(self._order) > MAX_OPEN:
            oldest = next(iter(self._order.values()))
            return [self._finish(oldest, f"more than {MAX_OPEN} requests open at once")]
        return []

    def _reply(self, op: _Open, rec: Record) -> None:
        content = rec.content
        attrs = op.attributes
        status = content.get("status")
        if isinstance(status, str):
            attrs["jupyter.status"] = status
        ename = content.get("ename")
        if isinstance(ename, str) and ename:
            attrs["jupyter.ename"] = ename
            if self.include_content and isinstance(content.get("evalue"), str):
                attrs["jupyter.evalue"] = _text(content["evalue"])
        count = content.get("execution_count")
        if isinstance(count, int) and not isinstance(count, bool):
            attrs["jupyter.execution_count"] = count
        if self.include_content and rec.msg_type != "execute_reply":
            attrs["jupyter.reply_content"] = _frame_text(rec, "content")

    def _output(self, rec: Record) -> dict[str, Any]:
        attrs: dict[str, Any] = {"jupyter.msg_type": rec.msg_type, "jupyter.size": rec.size}
        if rec.buffers:
            attrs["jupyter.buffers"] = len(rec.buffers)
        msg_type = rec.msg_type
        if msg_type == "stream":
            name = peek_field(rec.frame("content"), _NAME)
            if name:
                attrs["jupyter.stream.name"] = name
        elif msg_type in ("display_data", "execute_result", "update_display_data"):
            data = rec.content.get("data")
            if isinstance(data, dict):
                attrs["jupyter.mime_types"] = sorted(str(k) for k in data)
        elif msg_type == "error":
            ename = rec.content.get("ename")
            if isinstance(ename, str):
                attrs["jupyter.ename"] = ename
        if self.include_content:
            attrs["jupyter.content"] = _frame_text(rec, "content")
        return attrs

    def _stdin_event(self, op: _Open | None, rec: Record) -> None:
        if op is None:
            return
        if len(op.events) >= self._max_events:
            op.dropped += 1
            return
        attrs: dict[str, Any] = {
            "jupyter.msg_type": rec.msg_type,
            "jupyter.size": rec.size,
            "jupyter.from": rec.source,
        }
        if rec.msg_type == "input_request":
            attrs["jupyter.password"] = bool(rec.content.get("password"))
        if self.include_content:
            attrs["jupyter.content"] = _frame_text(rec, "content")
        op.events.append((rec.msg_type or "stdin", rec.t, attrs))

    # -- identities -------------------------------------------------------------------

    def _event(self, rec: Record) -> list[KrecSpan]:
        name = rec.event or ""
        if name == "client_identity":
            fields = rec.raw
            self._unbound.append(
                {k: str(fields.get(k) or "") for k in ("user", "session_path", "kernel_id")}
            )
            return []
        reason = _ENDING_EVENTS.get(name)
        if reason is None:
            return []
        return self._end_all(rec.t, reason)

    def _identity(self, rec: Record, session: str) -> dict[str, str] | None:
        """Who sent ``rec``: krec.server announces each websocket connection just before
        its first request, and Jupyter Server sends a connection's requests (its own
        kernel_info nudges too) with the frontend's session id, whatever zmq socket it
        uses; so an announced identity belongs to the first new session after it."""
        if not session:
            return None
        if session in self._by_session:
            return self._by_session[session]
        identity = self._unbound.pop(0) if self._unbound else None
        self._by_session[session] = identity
        return identity

    # -- ending -----------------------------------------------------------------------

    def _end_all(self, t: int | None, reason: str) -> list[KrecSpan]:
        ended = []
        for op in list(self._order.values()):
            ex = op.exchange
            answered = ex.reply is not None or (ex.msg_type in NO_REPLY and ex.idle_t is not None)
            ended.append(self._finish(op, None if answered else f"no reply: {reason}", t))
        return ended

    def _finish(self, op: _Open, error: str | None, t: int | None = None) -> KrecSpan:
        ex = op.exchange
        self._order.pop(ex.request.index, None)
        same = self._open.get(ex.msg_id, [])
        if op in same:
            same.remove(op)
        if not same:
            self._open.pop(ex.msg_id, None)
        attrs = op.attributes
        if op.dropped:
            attrs["krec.events_dropped"] = op.dropped
        if error is not None:
            attrs["krec.unanswered"] = True
            end = max(ex.request.t, t if t is not None else ex.request.t, *_seen(op))
        else:
            end = ex.done_t if ex.done_t is not None else ex.request.t
            if ex.idle_t is None:
                attrs["krec.idle_missing"] = True
        status = attrs.get("jupyter.status")
        if error is None and status == "error":
            error = str(attrs.get("jupyter.ename") or "error")
        elif error is None and status == "aborted":
            error = "aborted"
        trace_id, span_id = _ids(ex.msg_id, ex.request.t)
        parent_span = None
        flags = 1
        if op.parent is not None:
            trace_id, parent_span, flags = op.parent
        name = ex.msg_type.removesuffix("_request") if ex.msg_type else "request"
        return KrecSpan(
            name=name,
            trace_id=trace_id,
            span_id=span_id,
            start_ns=ex.request.t,
            end_ns=max(end, ex.request.t),
            attributes=attrs,
            events=op.events,
            error=error,
            parent_span_id=parent_span,
            trace_flags=flags,
            trace_state=op.trace_state,
            request_index=ex.request.index,
        )


def _seen(op: _Open) -> list[int]:
    """Times of what answered ``op`` so far (its end when it never completes)."""
    ex = op.exchange
    times = [t for _, t, _ in op.events]
    times += [t for t in (ex.busy_t, ex.idle_t, ex.reply.t if ex.reply else None) if t]
    return times
