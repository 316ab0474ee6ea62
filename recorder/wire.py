"""Jupyter wire frames <-> message fields, and HMAC signing of what krec itself sends.

The forwarding path never calls anything here: frames cross the proxy verbatim.
This module is used by the capture thread (to split frames into log fields), and
by everything that originates messages (the iopub welcome, replay, serve).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from binascii import b2a_hex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from krec.recorder.errors import KrecError

DELIM = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.4"

_SCHEMES = {
    "hmac-sha256": hashlib.sha256,
    "hmac-sha1": hashlib.sha1,
    "hmac-md5": hashlib.md5,
    "hmac-sha512": hashlib.sha512,
}


class WireError(KrecError):
    """A multipart message is not a well-formed Jupyter message."""


@dataclass(slots=True)
class WireMessage:
    """The frames of one Jupyter message, split but not parsed."""

    ids: list[bytes]
    signature: bytes
    header: bytes
    parent: bytes
    metadata: bytes
    content: bytes
    buffers: list[bytes] = field(default_factory=list)

    @property
    def signed_parts(self) -> tuple[bytes, bytes, bytes, bytes]:
        return (self.header, self.parent, self.metadata, self.content)


def split_frames(frames: Sequence[bytes]) -> WireMessage:
    """Split a multipart message at ``<IDS|MSG>``; raise WireError naming what is wrong."""
    try:
        i = frames.index(DELIM)
    except ValueError:
        raise WireError("no <IDS|MSG> delimiter") from None
    if len(frames) < i + 6:
        raise WireError(f"{len(frames) - i - 1} frames after the delimiter, expected at least 5")
    return WireMessage(
        ids=list(frames[:i]),
        signature=frames[i + 1],
        header=frames[i + 2],
        parent=frames[i + 3],
        metadata=frames[i + 4],
        content=frames[i + 5],
        buffers=list(frames[i + 6 :]),
    )


class Signer:
    """HMAC signing and verification with a connection file's key and scheme.

    The key is kept private and never appears in a repr.
    """

    __slots__ = ("_mac", "scheme")

    def __init__(self, key: bytes, scheme: str = "hmac-sha256") -> None:
        if scheme not in _SCHEMES:
            raise KrecError(f"unsupported signature scheme {scheme!r}")
        self.scheme = scheme
        self._mac = hmac.new(key, digestmod=_SCHEMES[scheme]) if key else None

    def __repr__(self) -> str:
        return f"Signer(scheme={self.scheme!r}, key={'set' if self._mac else 'empty'})"

    @property
    def enabled(self) -> bool:
        return self._mac is not None

    def sign(self, parts: Sequence[bytes]) -> bytes:
        """Hex digest over the four JSON frames (empty when signing is off)."""
        if self._mac is None:
            return b""
        mac = self._mac.copy()
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode("ascii")

    def verify(self, signature: bytes, parts: Sequence[bytes]) -> bool:
        if self._mac is None:
            return True
        return hmac.compare_digest(signature, self.sign(parts))


def new_id() -> str:
    """A random message or session id in jupyter_client's style."""
    buf = os.urandom(16)
    return "-".join(b2a_hex(x).decode("ascii") for x in (buf[:4], buf[4:]))


def now_iso() -> str:
    """The current UTC time as ISO 8601 with a time zone, as message headers carry it."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def dumps(obj: Any) -> bytes:
    """Encode a JSON frame the way jupyter_client does."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_json_default).encode()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def make_header(
    msg_type: str,
    session: str,
    *,
    username: str = "krec",
    version: str = PROTOCOL_VERSION,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    header = {
        "msg_id": new_id(),
        "session": session,
        "username": username,
        "date": now_iso(),
        "msg_type": msg_type,
        "version": version,
    }
    if extra:
        header.update(extra)
    return header


def serialize(
    signer: Signer,
    header: dict[str, Any],
    content: Any,
    *,
    parent: dict[str, Any] | bytes | None = None,
    metadata: dict[str, Any] | bytes | None = None,
    buffers: Sequence[bytes] = (),
    ids: Sequence[bytes] = (),
) -> list[bytes]:
    """Frames for a message krec originates, signed with ``signer``."""
    parts = [
        dumps(header),
        parent if isinstance(parent, bytes) else dumps(parent or {}),
        metadata if isinstance(metadata, bytes) else dumps(metadata or {}),
        content if isinstance(content, bytes) else dumps(content),
    ]
    return [*ids, DELIM, signer.sign(parts), *parts, *buffers]


_STR_VALUE = re.compile(rb'\s*:\s*(?:"([^"\\]*)"|null)')


def peek_field(frame: bytes, key: bytes) -> str | None:
    """The top-level string field ``key`` of a JSON object frame, without parsing all of it.

    ``key`` is the quoted name (``b'"msg_type"'``). Jupyter headers are flat objects
    of strings, so the first occurrence of the key is the field; anything unusual
    (nested objects, an escape in the value, the key inside a string) falls back to
    a full parse. None when the field is absent, null or not a string. The one JSON
    peeker of krec: the log, the filter, the viewer and the capture thread all use it.
    """
    i = frame.find(key)
    if i < 0:
        return None
    # one "{": no nested object can hold the key first; not \"key\" inside a string
    if frame[i - 1] != 0x5C and frame.count(b"{") == 1:
        m = _STR_VALUE.match(frame, i + len(key))
        if m is not None:
            value = m.group(1)
            if value is None:
                return None
            try:
                return value.decode()
            except UnicodeDecodeError:
                pass
    try:
        parsed = json.loads(frame)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    value = parsed.get(key[1:-1].decode()) if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None


def peek_msg_id(header: bytes) -> str:
    """The msg_id of a raw header frame without a full JSON parse ('' if absent)."""
    return peek_field(header, b'"msg_id"') or ""
