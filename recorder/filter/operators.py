"""The built-in operators over message fields: type:, ch:, from:, ids, status:, event:, t<>.

Every predicate works on a record map as stored, JSON frames still raw bytes,
and looks at the cheapest evidence first: a substring test on the raw frame
rules out nearly every record before anything is parsed, and only candidates
are decoded (a flat header by a text search, content by ``json.loads``).
Free text and ``re:`` live in text.py.
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING, Any, ClassVar

from krec.recorder.filter.tree import Fields, Needle, Node, Operator, Predicate, frame_bytes
from krec.recorder.log.record import CHANNELS, SOURCES, UNREADABLE
from krec.recorder.wire import peek_field

if TYPE_CHECKING:
    from krec.recorder.log.reader import LogReader

_MSG_TYPE = b'"msg_type"'
_MSG_ID = b'"msg_id"'
_SUBSHELL_ID = b'"subshell_id"'


class Type(Operator):
    name = "type"
    syntax = "type:GLOB"
    help = "msg_type matches the glob: type:execute_request, type:comm_*, type:*_reply"
    cost = 2

    def compile(self, fields: Fields) -> Predicate:
        key = fields.header
        value = self.value
        literal = _glob_literal(value)
        exact = literal == value
        must = f'"{value}"'.encode() if exact else literal.encode()
        match = re.compile(fnmatch.translate(value)).match

        def pred(i: int, d: dict[Any, Any]) -> bool:
            h = d.get(key)
            if h.__class__ is not bytes:
                h = frame_bytes(h)
            if h.find(must) < 0:  # find is cheaper than `in` on bytes
                return False
            mt = peek_field(h, _MSG_TYPE)
            return mt is not None and (mt == value if exact else match(mt) is not None)

        return pred

    def needle(self) -> Needle | None:
        literal = _glob_literal(self.value)
        if literal == self.value:
            return ((f'"{literal}"'.encode(), False),)
        return ((literal.encode(), False),) if len(literal) >= 3 else None


def _glob_literal(pattern: str) -> str:
    """The longest run of plain characters in a glob (all of it when it has no wildcard)."""
    parts = re.split(r"\*|\?|\[[^\]]*\]?", pattern)
    return max(parts, key=len)


class _Choice(Operator):
    """An operator over a stored string field with a fixed set of values."""

    choices: ClassVar[tuple[str, ...]]
    #: values common enough that a byte search finds nearly every record
    common: ClassVar[tuple[str, ...]] = ()

    def check(self, value: str) -> str:
        value = super().check(value).lower()
        if value not in self.choices:
            raise ValueError(f"{self.name}: must be one of {', '.join(self.choices)}")
        return value

    def field(self, fields: Fields) -> Any:
        raise NotImplementedError

    def compile(self, fields: Fields) -> Predicate:
        key = self.field(fields)
        want = fields.key(self.value)
        return lambda i, d: d.get(key) == want

    def needle(self) -> Needle | None:
        return None if self.value in self.common else ((self.value.encode(), False),)


class Channel(_Choice):
    name = "ch"
    syntax = "ch:CHANNEL"
    help = "channel: shell, control, stdin or iopub"
    choices = CHANNELS
    common = ("shell", "iopub")

    def field(self, fields: Fields) -> Any:
        return fields.ch


class Source(_Choice):
    name = "from"
    syntax = "from:SIDE"
    help = "who sent it: client (the frontend), kernel, or krec itself"
    choices = SOURCES
    common = ("client", "kernel")

    def field(self, fields: Fields) -> Any:
        return fields.source


_SHORT_ID = re.compile(r"(.+)_(\d+)")


class _Id(Operator):
    """A message id given as a prefix, or as the short form ``krec show`` prints."""

    frame: ClassVar[str]
    key: ClassVar[bytes] = _MSG_ID
    cost = 2

    def compile(self, fields: Fields) -> Predicate:
        key = fields.header if self.frame == "header" else fields.parent
        field = self.key
        matches = id_matcher(self.value)
        must = self._literal().encode()

        def pred(i: int, d: dict[Any, Any]) -> bool:
            f = d.get(key)
            if f.__class__ is not bytes:
                f = frame_bytes(f)
            if f.find(must) < 0:
                return False
            found = peek_field(f, field)
            return found is not None and matches(found)

        return pred

    def _literal(self) -> str:
        m = _SHORT_ID.fullmatch(self.value)
        return m.group(1) if m else self.value

    def needle(self) -> Needle | None:
        m = _SHORT_ID.fullmatch(self.value)
        if m is None:
            return ((self.value.encode(), False),)
        # the whole value (a prefix match), or the short form's end of an id: _N"
        return ((self.value.encode(), False), (f'_{m.group(2)}"'.encode(), False))


def id_matcher(value: str) -> Any:
    """Does an id start with ``value``, or fit its short form ``PREFIX_N`` (starts with
    PREFIX, ends with ``_N``, as in ``d7f3_45`` for ``d7f3d2ef-..._6809_45``)?"""
    m = _SHORT_ID.fullmatch(value)
    if m is None:
        return lambda found: found.startswith(value)
    prefix, tail = m.group(1), "_" + m.group(2)
    return lambda found: (
        found.startswith(value) or (found.startswith(prefix) and found.endswith(tail))
    )


class Msg(_Id):
    name = "msg"
    syntax = "msg:ID"
    help = "the message whose msg_id starts with ID, or has the short id krec show prints"
    frame = "header"


class Parent(_Id):
    name = "parent"
    syntax = "parent:ID"
    help = "messages whose parent is request ID: its reply, outputs, status, input requests"
    frame = "parent"


class Subshell(_Id):
    name = "subshell"
    syntax = "subshell:ID"
    help = "messages whose header names subshell ID (kernel subshells, messaging 5.5)"
    frame = "header"
    key = _SUBSHELL_ID


_REPLY_STATUS = ("ok", "error", "aborted")
_EXECUTION_STATE = ("busy", "idle", "starting")


class Status(Operator):
    name = "status"
    syntax = "status:STATE"
    help = (
        "status:error is every error reply and error output; ok, aborted: replies; "
        "busy, idle, starting: kernel status"
    )
    cost = 3

    def check(self, value: str) -> str:
        value = super().check(value).lower()
        if value not in _REPLY_STATUS + _EXECUTION_STATE:
            raise ValueError(
                f"status: must be one of {', '.join(_REPLY_STATUS + _EXECUTION_STATE)}"
            )
        return value

    def compile(self, fields: Fields) -> Predicate:
        hkey, ckey = fields.header, fields.content
        value = self.value
        quoted = f'"{value}"'.encode()
        state = value in _EXECUTION_STATE

        def pred(i: int, d: dict[Any, Any]) -> bool:
            c = d.get(ckey)
            if c.__class__ is not bytes:
                c = frame_bytes(c)
            h = d.get(hkey)
            if h.__class__ is not bytes:
                h = frame_bytes(h)
            if value == "error" and h.find(b'"error"') >= 0 and peek_field(h, _MSG_TYPE) == "error":
                return True
            if c.find(quoted) < 0:
                return False
            mt = peek_field(h, _MSG_TYPE) or ""
            if state:
                return mt == "status" and peek_field(c, b'"execution_state"') == value
            return mt.endswith("_reply") and peek_field(c, b'"status"') == value

        return pred

    def needle(self) -> Needle | None:
        if self.value in ("ok", "busy", "idle"):
            return None
        return ((f'"{self.value}"'.encode(), False),)


class Event(Operator):
    name = "event"
    syntax = "event:GLOB"
    help = "krec events: event:restart, event:kernel_*; event:* is every event"
    cost = 2

    def compile(self, fields: Fields) -> Predicate:
        key = fields.event
        value = self.value
        if _glob_literal(value) == value:
            want = fields.key(value)
            return lambda i, d: d.get(key) == want
        match = re.compile(fnmatch.translate(value)).match
        text = fields.text

        def pred(i: int, d: dict[Any, Any]) -> bool:
            name = text(d.get(key))
            return name is not None and match(name) is not None

        return pred

    def needle(self) -> Needle | None:
        if fnmatch.fnmatchcase(UNREADABLE, self.value):
            return None  # a record that cannot be decoded reads as this event: no bytes to find
        # an event record holds its name, and the key "event" in any msgpack str form
        literal = _glob_literal(self.value)
        return ((literal.encode() if len(literal) >= 3 else b"event", False),)


# -- time -------------------------------------------------------------------

_UNITS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?")


def parse_duration(text: str) -> int:
    """``5s``, ``1.5m``, ``250ms``, ``2h`` (a bare number is seconds) -> nanoseconds."""
    from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation  # exact, and slow to import

    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"bad duration {text!r}: use a number with ms, s, m or h, e.g. 5s")
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"bad duration {text!r}") from None
    unit = _UNITS[m.group(2) or "s"]
    return int((number * unit).to_integral_value(ROUND_HALF_EVEN))


def spell_duration(ns: int) -> str:
    """The shortest exact spelling of ``ns`` that parse_duration reads back."""
    from decimal import Decimal

    for unit in ("h", "m", "s", "ms"):
        if ns % _UNITS[unit] == 0 and (ns or unit == "s"):
            return f"{ns // _UNITS[unit]}{unit}"
    return f"{format(Decimal(ns).scaleb(-6).normalize(), 'f')}ms"


class Time(Node):
    """``t>5s``: time since the recording started."""

    syntax: ClassVar[str] = "t>TIME, t<TIME"
    help: ClassVar[str] = (
        "time since the recording started (also t>= and t<=), in ms, s, m or h: "
        "t>5s, t<1.5m, t>=250ms"
    )
    OPS: ClassVar[tuple[str, ...]] = ("<", ">", "<=", ">=")

    def __init__(self, op: str, ns: int) -> None:
        if op not in self.OPS:
            raise ValueError(f"bad comparison {op!r}")
        self.op = op
        self.ns = ns
        self.start_ns: int | None = None

    def _key(self) -> tuple[Any, ...]:
        return (self.op, self.ns)

    def __str__(self) -> str:
        return f"t{self.op}{spell_duration(self.ns)}"

    def prepare(self, reader: LogReader) -> None:
        self.start_ns = reader.start_ns

    def compile(self, fields: Fields) -> Predicate:
        if self.start_ns is None:
            raise RuntimeError("a time filter needs the log: call Filter.prepare(reader) first")
        key = fields.t
        limit = self.start_ns + self.ns
        op = self.op
        # one flat function per comparison: this runs for every record of a scan
        if op == ">":

            def after(i: int, d: dict[Any, Any]) -> bool:
                t = d.get(key)
                return (t if t.__class__ is int else 0) > limit

            return after
        if op == ">=":

            def from_(i: int, d: dict[Any, Any]) -> bool:
                t = d.get(key)
                return (t if t.__class__ is int else 0) >= limit

            return from_
        if op == "<":

            def before(i: int, d: dict[Any, Any]) -> bool:
                t = d.get(key)
                return (t if t.__class__ is int else 0) < limit

            return before

        def until(i: int, d: dict[Any, Any]) -> bool:
            t = d.get(key)
            return (t if t.__class__ is int else 0) <= limit

        return until
