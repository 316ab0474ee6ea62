"""The built-in filter operators: free text, type:, ch:, from:, ids, status:, event:, t<>, re:.

Every predicate works on a record map as stored, JSON frames still raw bytes,
and looks at the cheapest evidence first: a substring test on the raw frame
rules out nearly every record before anything is parsed, and only candidates
are decoded (a flat header by a text search, content by ``json.loads``).
"""

from __future__ import annotations

import fnmatch
import json
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar

from krec.recorder.logfile import CHANNELS, SOURCES, peek_field

from .tree import Fields, Needle, Node, Operator, Predicate, frame_bytes, register, word_text

if TYPE_CHECKING:
    from krec.recorder.logfile import LogReader

_MSG_TYPE = b'"msg_type"'
_MSG_ID = b'"msg_id"'
_SUBSHELL_ID = b'"subshell_id"'

# -- message text -------------------------------------------------------------

_TEXT_KEYS = ("code", "text", "ename", "evalue", "prompt", "value")


def message_text(content: dict[str, Any]) -> str:
    """The text a person reads in a message: code, stream text, text/plain, ename, evalue,
    input prompt and reply, one per line."""
    parts = [v for v in (content.get(k) for k in _TEXT_KEYS) if isinstance(v, str)]
    data = content.get("data")
    plain = data.get("text/plain") if isinstance(data, dict) else None
    if isinstance(plain, str):  # the protocol sends strings (a list is nbformat's form)
        parts.append(plain)
    return "\n".join(parts)


_memo: tuple[bytes, str, str] = (b"", "", "")


def _text_of(content: bytes) -> tuple[str, str]:
    """(text, lower-cased text) of a raw content frame; the last one is remembered, so
    several text operators in one filter parse a record's content once."""
    global _memo
    memo = _memo  # one read: other threads may replace it
    if memo[0] is content:
        return memo[1], memo[2]
    try:
        parsed = json.loads(content)
    except (ValueError, RecursionError):
        parsed = None
    text = message_text(parsed) if isinstance(parsed, dict) else ""
    _memo = (content, text, text.lower())  # holding ``content`` keeps its id unique
    return text, _memo[2]


def _searchable(word: str) -> bool:
    """A word that a byte search of the lower-cased JSON can find: printable ASCII that
    JSON encoders write as is (no quote, backslash or slash, which they may escape)."""
    return word.isascii() and all(" " <= c <= "~" and c not in '"\\/' for c in word)


def _hiding_places(word: str) -> tuple[bytes, ...]:
    """Byte strings in whose presence a text may hold ``word`` without the bytes of it.

    Lower-casing İ gives "i" plus a combining dot, and the Kelvin sign gives "k" (the
    only non-ASCII characters that lower-case to ASCII); HTML-safe encoders (Go's)
    write <, >, & and ' as \\u00XX escapes.
    """
    places: list[bytes] = []
    if word.endswith("i"):
        places += [b"\xc4\xb0", b"\\u0130"]
    if "k" in word:
        places += [b"\xe2\x84\xaa", b"\\u212a", b"\\u212A"]
    if any(c in word for c in "<>&'"):
        places.append(b"\\u00")
    return tuple(places)


@register
class Text(Node):
    """Free words and quoted phrases."""

    syntax: ClassVar[str] = 'WORD, "A PHRASE"'
    help: ClassVar[str] = (
        "message text contains it, any case: code, stream text, text/plain, "
        "ename, evalue, input prompt and reply"
    )
    cost = 5

    def __init__(self, text: str) -> None:
        if not text:
            raise ValueError("empty phrase")
        self.text = text

    def _key(self) -> tuple[Any, ...]:
        return (self.text,)

    def __str__(self) -> str:
        return word_text(self.text)

    def compile(self, fields: Fields) -> Predicate:
        word = self.text.lower()
        needle = word.encode() if _searchable(word) else None
        places = _hiding_places(word)
        key = fields.content

        def pred(i: int, d: dict[Any, Any]) -> bool:
            c = d.get(key)
            if c.__class__ is not bytes:
                c = frame_bytes(c)
            if needle is not None and needle not in c.lower() and not any(p in c for p in places):
                return False
            return word in _text_of(c)[1]

        return pred

    def needle(self) -> Needle | None:
        word = self.text.lower()
        if not _searchable(word):
            return None
        return ((word.encode(), True), *((p, False) for p in _hiding_places(word)))


@register
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
            if must not in h:
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


@register
class Channel(_Choice):
    name = "ch"
    syntax = "ch:CHANNEL"
    help = "channel: shell, control, stdin or iopub"
    choices = CHANNELS
    common = ("shell", "iopub")

    def field(self, fields: Fields) -> Any:
        return fields.ch


@register
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
            if must not in f:
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


@register
class Msg(_Id):
    name = "msg"
    syntax = "msg:ID"
    help = "the message whose msg_id starts with ID, or has the short id krec show prints"
    frame = "header"


@register
class Parent(_Id):
    name = "parent"
    syntax = "parent:ID"
    help = "messages whose parent is request ID: its reply, outputs, status, input requests"
    frame = "parent"


@register
class Subshell(_Id):
    name = "subshell"
    syntax = "subshell:ID"
    help = "messages whose header names subshell ID (kernel subshells, messaging 5.5)"
    frame = "header"
    key = _SUBSHELL_ID


_REPLY_STATUS = ("ok", "error", "aborted")
_EXECUTION_STATE = ("busy", "idle", "starting")


@register
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
            if value == "error" and b'"error"' in h and peek_field(h, _MSG_TYPE) == "error":
                return True
            if quoted not in c:
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


@register
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
        # an event record holds its name, and the key "event" in any msgpack str form
        literal = _glob_literal(self.value)
        return ((literal.encode() if len(literal) >= 3 else b"event", False),)


def _regex_literal(pattern: re.Pattern[str]) -> str:
    """The longest run of plain characters every match of ``pattern`` contains ("" if none
    can be read off safely: a case-insensitive pattern, or characters JSON may escape)."""
    if pattern.flags & re.IGNORECASE:
        return ""
    try:
        from re import _parser  # type: ignore[attr-defined]

        items = list(_parser.parse(pattern.pattern, pattern.flags))
    except Exception:  # a private module: if it changes, scan without a needle
        return ""
    best, run = "", ""
    for op, arg in items:
        c = chr(arg) if str(op) == "LITERAL" and isinstance(arg, int) else ""
        if c and _searchable(c):
            run += c
            best = max(best, run, key=len)
        else:
            run = ""
    return best


@register
class Regex(Operator):
    name = "re"
    syntax = "re:PATTERN"
    help = (
        "message text matches the Python regex, case-sensitive unless (?i): "
        're:"x\\s*=\\s*\\d+", re:(?i)^import'
    )
    cost = 8

    def check(self, value: str) -> str:
        value = super().check(value)
        try:
            self.pattern = re.compile(value)
        except re.error as e:
            raise ValueError(f"re: bad pattern: {e}") from None
        self.literal = _regex_literal(self.pattern)
        return value

    def _places(self) -> tuple[bytes, ...]:
        # case-sensitive: only escapes can hide the literal's bytes
        return (b"\\u00",) if any(c in self.literal for c in "<>&'") else ()

    def compile(self, fields: Fields) -> Predicate:
        key = fields.content
        search = self.pattern.search
        must = self.literal.encode() if len(self.literal) >= 2 else None
        places = self._places()

        def pred(i: int, d: dict[Any, Any]) -> bool:
            c = d.get(key)
            if c.__class__ is not bytes:
                c = frame_bytes(c)
            if must is not None and must not in c and not any(p in c for p in places):
                return False
            return len(c) > 2 and search(_text_of(c)[0]) is not None

        return pred

    def needle(self) -> Needle | None:
        if len(self.literal) < 3:
            return None
        return ((self.literal.encode(), False), *((p, False) for p in self._places()))


# -- time -------------------------------------------------------------------

_UNITS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?")


def parse_duration(text: str) -> int:
    """``5s``, ``1.5m``, ``250ms``, ``2h`` (a bare number is seconds) -> nanoseconds."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"bad duration {text!r}: use a number with ms, s, m or h, e.g. 5s")
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"bad duration {text!r}") from None
    unit = _UNITS[m.group(2) or "s"]
    return int((number * unit).to_integral_value(ROUND_HALF_EVEN))


def format_duration(ns: int) -> str:
    """The shortest exact spelling of ``ns`` that parse_duration reads back."""
    for unit in ("h", "m", "s", "ms"):
        if ns % _UNITS[unit] == 0 and (ns or unit == "s"):
            return f"{ns // _UNITS[unit]}{unit}"
    return f"{format(Decimal(ns).scaleb(-6).normalize(), 'f')}ms"


@register
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
        return f"t{self.op}{format_duration(self.ns)}"

    def prepare(self, reader: LogReader) -> None:
        self.start_ns = reader.start_ns

    def compile(self, fields: Fields) -> Predicate:
        if self.start_ns is None:
            raise RuntimeError("a time filter needs the log: call Filter.prepare(reader) first")
        key = fields.t
        limit = self.start_ns + self.ns
        op = self.op

        def t_of(d: dict[Any, Any]) -> int:
            t = d.get(key)
            return t if t.__class__ is int else 0

        if op == ">":
            return lambda i, d: t_of(d) > limit
        if op == ">=":
            return lambda i, d: t_of(d) >= limit
        if op == "<":
            return lambda i, d: t_of(d) < limit
        return lambda i, d: t_of(d) <= limit
