"""One record of a .krec log: decoding its msgpack map and reading its JSON frames.

``Record`` wraps a decoded map and parses the header, parent, metadata and content
frames on first use (msg_type, msg_id and the parent's are peeked without a parse);
``decode_record`` turns stored bytes into a map, ``loads_json`` is the JSON parser
every reader of frames uses. docs/format.md specifies the record maps.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgpack
import orjson

from krec.recorder.wire import peek_field

#: what a log holds in place of an input_reply's value that krec did not record (a password)
REDACTED = "<redacted by krec>"

CHANNELS = ("shell", "control", "stdin", "iopub")
SOURCES = ("client", "kernel", "krec")
#: the event a record that cannot be decoded reads as, so record positions stay aligned
UNREADABLE = "unreadable_record"
MAX_RECORD = (1 << 31) - 1


def file_unpacker(f: Any) -> msgpack.Unpacker:
    """A streaming decoder of a log file's msgpack objects (header and records)."""
    return msgpack.Unpacker(
        f, raw=False, read_size=1 << 20, max_buffer_size=MAX_RECORD, strict_map_key=False
    )


class Record:
    """One record of a log, decoded from msgpack; JSON frames are parsed on first use."""

    __slots__ = (
        "index",
        "raw",
        "_header",
        "_parent",
        "_metadata",
        "_content",
        "_peeked",
        "_id_and_type",
    )

    def __init__(self, index: int, raw: dict[str, Any]) -> None:
        self.index = index
        self.raw = raw
        self._header: Any = None
        self._parent: Any = None
        self._metadata: Any = None
        self._content: Any = None
        self._peeked: dict[tuple[str, str], str] | None = None
        #: the header's (msg_id, msg_type), peeked together (every listing wants both)
        self._id_and_type: tuple[str, str] | None = None

    def __repr__(self) -> str:
        if self.is_event:
            return f"<Record #{self.index} event {self.event}>"
        return f"<Record #{self.index} {self.ch} {self.source} {self.msg_type}>"

    # -- common fields
    @property
    def t(self) -> int:
        t = self.raw.get("t")
        return t if isinstance(t, int) else 0

    @property
    def is_event(self) -> bool:
        return "event" in self.raw

    @property
    def event(self) -> str | None:
        e = self.raw.get("event")
        return e if isinstance(e, str) else None

    @property
    def fields(self) -> dict[str, Any]:
        """An event's own fields (everything but ``t`` and ``event``)."""
        return {k: v for k, v in self.raw.items() if k not in ("t", "event")}

    # -- message fields, as stored
    @property
    def ch(self) -> str:
        ch = self.raw.get("ch")
        return ch if isinstance(ch, str) else ""

    @property
    def source(self) -> str:
        """Who sent the message: "client", "kernel" or "krec" (the ``from`` field)."""
        s = self.raw.get("from")
        return s if isinstance(s, str) else ""

    @property
    def ids(self) -> list[bytes]:
        ids = self.raw.get("ids")
        return ids if isinstance(ids, list) else []

    @property
    def buffers(self) -> list[bytes]:
        b = self.raw.get("buffers")
        return b if isinstance(b, list) else []

    def frame(self, name: str) -> bytes:
        """A raw JSON frame ("header", "parent", "metadata" or "content")."""
        value = self.raw.get(name)
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode()
        return b"{}"

    @property
    def size(self) -> int:
        """Bytes of the message on the wire (JSON frames and buffers, without ids)."""
        n = sum(len(self.frame(k)) for k in ("header", "parent", "metadata", "content"))
        return n + sum(len(b) for b in self.buffers if isinstance(b, bytes))

    # -- parsed JSON, cached
    @property
    def header(self) -> dict[str, Any]:
        if self._header is None:
            self._header = parse_object(self.frame("header"))
        return self._header

    @property
    def parent(self) -> dict[str, Any]:
        if self._parent is None:
            self._parent = parse_object(self.frame("parent"))
        return self._parent

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = parse_object(self.frame("metadata"))
        return self._metadata

    @property
    def content(self) -> dict[str, Any]:
        if self._content is None:
            self._content = parse_object(self.frame("content"))
        return self._content

    # -- cheap accessors that avoid a full JSON parse
    def _peek(self, frame: str, parsed: Any, key: str) -> str:
        if parsed is not None:
            value = parsed.get(key)
            return value if isinstance(value, str) else ""
        peeked = self._peeked
        if peeked is None:
            peeked = self._peeked = {}
        found = peeked.get((frame, key))
        if found is None:
            value = self.raw.get(frame)
            found = peeked[(frame, key)] = (
                peek_field(self.frame(frame), _QUOTED[key]) or "" if value is not None else ""
            )
        return found

    def _peek_id_and_type(self) -> tuple[str, str]:
        found = self._id_and_type
        if found is None:
            header = self.raw.get("header")
            found = self._id_and_type = (
                peek_id_and_type(self.frame("header")) if header is not None else ("", "")
            )
        return found

    @property
    def msg_type(self) -> str:
        if self._header is not None:
            return self._peek("header", self._header, "msg_type")
        return self._peek_id_and_type()[1]

    @property
    def msg_id(self) -> str:
        if self._header is not None:
            return self._peek("header", self._header, "msg_id")
        return self._peek_id_and_type()[0]

    @property
    def subshell_id(self) -> str:
        """The header's ``subshell_id`` (messaging 5.5), "" for the main shell."""
        return self._peek("header", self._header, "subshell_id")

    @property
    def parent_id(self) -> str:
        return self._peek("parent", self._parent, "msg_id")

    @property
    def parent_type(self) -> str:
        return self._peek("parent", self._parent, "msg_type")

    def to_json(self, start_ns: int = 0) -> dict[str, Any]:
        """The record as plain JSON data: frames parsed, buffers as sizes, bytes as text/hex."""
        out: dict[str, Any] = {"index": self.index, "t": self.t}
        if start_ns:
            out["rel"] = round((self.t - start_ns) / 1e9, 6)
        if self.is_event:
            out["event"] = self.event
            out.update({str(k): _jsonable(v) for k, v in self.fields.items()})
            return out
        out.update(
            {
                "ch": self.ch,
                "from": self.source,
                "ids": [_jsonable(i) for i in self.ids],
                "header": self.header,
                "parent_header": self.parent,
                "metadata": self.metadata,
                "content": self.content,
                "buffers": [len(b) for b in self.buffers if isinstance(b, bytes)],
            }
        )
        return out


_QUOTED = {k: f'"{k}"'.encode() for k in ("msg_type", "msg_id", "subshell_id")}


# every ASCII digit -> "0", every other byte -> "x": a number of 19 digits or more reads as
# _LONG_RUN (orjson turns an integer beyond 64 bits into a float; json keeps it an int)
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
_LONG_RUN = b"0" * 19


def orjson_agrees(data: bytes) -> bool:
    """Does orjson read this frame as json does, when both accept it (no long integer)?"""
    return _LONG_RUN not in data.translate(_DIGITS)


def loads_json(data: bytes | str) -> Any:
    """``json.loads(data)``, through orjson (several times faster) wherever both give the same.

    orjson refuses what json accepts and krec must keep (NaN, lone surrogates, UTF-16,
    a BOM) and reads integers beyond 64 bits as floats; those frames go to json. Raises
    what json.loads raises.
    """
    if data.__class__ is bytes and _LONG_RUN not in data.translate(_DIGITS):  # type: ignore[union-attr]
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def peek_str(frame: bytes, key: bytes) -> str | None:
    """``wire.peek_field(frame, key)``, with its full parse of a nested frame done by
    ``loads_json`` (the same value, several times faster)."""
    if frame.count(b"{") == 1 or frame.find(key) < 0:
        return peek_field(frame, key)
    try:
        parsed = loads_json(frame)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    value = parsed.get(key[1:-1].decode()) if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None


# how jupyter_client and ipykernel write a header: msg_id, then msg_type, first
_ID_AND_TYPE = re.compile(
    rb'\{\s*"msg_id"\s*:\s*"(?!msg_type")([^"\\]*)"'
    rb'\s*,\s*"msg_type"\s*:\s*"([^"\\]*)"'
)


def peek_id_and_type(header: bytes) -> tuple[str, str]:
    """``(peek_field(header, b'"msg_id"') or "", peek_field(header, b'"msg_type"') or "")``
    in one step for a header written as jupyter_client writes them."""
    m = _ID_AND_TYPE.match(header)
    if m is not None and header.count(b"{") == 1:
        # both keys are their first occurrences (only a msg_id "msg_type" could come
        # before the second, and the regex refuses it), the frame is flat: exactly what
        # peek_field's fast path reads
        try:
            return m.group(1).decode(), m.group(2).decode()
        except UnicodeDecodeError:
            pass
    return peek_field(header, b'"msg_id"') or "", peek_field(header, b'"msg_type"') or ""


def parse_object(data: bytes) -> dict[str, Any]:
    try:
        value = loads_json(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def unreadable(reason: str) -> dict[str, Any]:
    return {"t": 0, "event": UNREADABLE, "reason": reason}


def decode_record(data: bytes | memoryview) -> dict[str, Any]:
    """Decode one record's msgpack bytes as stored (``LogReader.decode`` also upgrades
    an older format's); a record that cannot be decoded becomes an unreadable_record event."""
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=False, unicode_errors="replace")
    except Exception as e:
        raw = unreadable(f"cannot decode: {e}")
    if not isinstance(raw, dict):
        raw = unreadable(f"a {type(raw).__name__}, not a map")
    return raw
