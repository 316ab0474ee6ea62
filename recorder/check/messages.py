"""One message record as the rules see it: ``Msg``, its JSON frames parsed by a ``Parser``.

Parsing is most of a check pass's time, so the parser is lean: a frame that repeats
(the parent header of every message a request causes, small contents such as
``status: busy``) is parsed once, and contents can be parsed on first use. A frame
that is not a JSON object parses as ``{}`` and is noted in ``Msg.problems``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import orjson

from krec.recorder.log.record import orjson_agrees

if TYPE_CHECKING:
    from krec.recorder.check.model import Request

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
    if orjson_agrees(data):  # the fast path: orjson, where it gives what json gives
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # json below says why, in its words
        else:
            if value.__class__ is dict:
                return value  # type: ignore[no-any-return]
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


class Parser:
    """Turns message records into Msgs, parsing each repeated frame only once."""

    def __init__(self) -> None:
        self._parents: dict[bytes, tuple[dict[str, Any], bool]] = {}
        self._small: dict[bytes, dict[str, Any]] = {}
        self._versions: dict[str, tuple[int | None, int | None]] = {}
        #: parse every content when reading (a rule reads them all); else on first use
        self.eager_content = True

    def parse(self, index: int, raw: dict[str, Any]) -> Msg:
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
