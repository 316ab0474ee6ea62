"""What the detail pane shows for one record, as plain data: texts, images, JSON sections.

``describe(record)`` pulls out what a person wants to read (code, stream text,
text/plain, tracebacks with their ANSI colours, input prompts), notes images by
type, size and dimensions instead of dumping base64, and lists the JSON parts
(header, parent header, metadata, content, event fields) for a foldable tree.
No widget code: the detail widget renders a Detail.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from krec.recorder.log.record import Record
from krec.viewer.model import format_rel


@dataclass(frozen=True, slots=True)
class Text:
    """A piece of text to show as such: ``kind`` is "code", "ansi" or "plain"."""

    label: str
    text: str
    kind: str = "plain"


@dataclass(slots=True)
class Detail:
    """Everything the detail pane shows for one record."""

    index: int
    title: str
    texts: list[Text] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # images, buffers, redactions
    sections: list[tuple[str, Any]] = field(default_factory=list)  # (name, JSON data)
    findings: list[str] = field(default_factory=list)


ARROWS = {"client": "→", "kernel": "←", "krec": "•"}


def describe(record: Record, start_ns: int) -> Detail:
    """The Detail of ``record``; ``start_ns`` makes its time relative to the recording."""
    rel = format_rel(record.t - start_ns)
    if record.is_event:
        detail = Detail(record.index, f"#{record.index}  +{rel}  event {record.event}")
        detail.sections.append(("event", {k: _jsonable(v) for k, v in record.fields.items()}))
        return detail
    arrow = ARROWS.get(record.source, "?")
    detail = Detail(
        record.index,
        f"#{record.index}  +{rel}  {record.ch} {arrow} {record.source}  {record.msg_type}",
    )
    content = record.content
    _texts(detail, record.msg_type, content)
    if record.buffers:
        sizes = ", ".join(f"{len(b):,}" for b in record.buffers)
        detail.notes.append(f"{len(record.buffers)} buffer(s): {sizes} bytes")
    detail.sections.extend(
        [
            ("header", record.header),
            ("parent_header", record.parent),
            ("metadata", record.metadata),
            ("content", content),
        ]
    )
    if record.ids:
        detail.sections.append(("ids", [_jsonable(i) for i in record.ids]))
    return detail


def _texts(detail: Detail, msg_type: str, content: dict[str, Any]) -> None:
    add = detail.texts.append
    if msg_type in ("execute_request", "execute_input", "is_complete_request"):
        add(Text("code", str(content.get("code", "")), "code"))
    elif msg_type in ("complete_request", "inspect_request"):
        add(Text(f"code (cursor at {content.get('cursor_pos')})", str(content.get("code", ""))))
    elif msg_type == "stream":
        add(Text(str(content.get("name", "stream")), str(content.get("text", "")), "ansi"))
    elif msg_type == "input_request":
        add(Text("prompt", str(content.get("prompt", ""))))
    elif msg_type == "input_reply":
        add(Text("value", str(content.get("value", ""))))
    if isinstance(content.get("data"), dict):
        _bundle(detail, content["data"])
    if content.get("ename") or isinstance(content.get("traceback"), list):
        header = f"{content.get('ename', '')}: {content.get('evalue', '')}"
        traceback = content.get("traceback")
        if isinstance(traceback, list) and traceback:
            add(Text(header, "\n".join(str(line) for line in traceback), "ansi"))
        else:
            add(Text("error", header))
    detail.texts[:] = [t for t in detail.texts if t.text or t.kind == "code"]


def _bundle(detail: Detail, data: dict[str, Any]) -> None:
    for mime, value in data.items():
        if mime.startswith("image/") and mime != "image/svg+xml":
            detail.notes.append(describe_image(mime, value))
        elif mime == "text/plain":
            text = "".join(value) if isinstance(value, list) else str(value)
            detail.texts.append(Text("text/plain", text, "ansi"))
        elif isinstance(value, str):
            detail.notes.append(f"{mime}: {len(value):,} characters")
        else:
            size = len(json.dumps(value, default=str))
            detail.notes.append(f"{mime}: {size:,} bytes of JSON")


def describe_image(mime: str, value: object) -> str:
    """``image/png: 12,345 bytes, 640×480`` from a base64 value (dimensions for PNG/GIF)."""
    text = "".join(value) if isinstance(value, list) else str(value)
    try:
        data = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return f"{mime}: {len(text):,} characters (not valid base64)"
    size = image_size(data)
    dims = f", {size[0]}×{size[1]}" if size else ""
    return f"{mime}: {len(data):,} bytes{dims}"


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG or GIF from its first bytes, None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return w, h
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return w, h
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(value)} bytes: {value[:32].hex()}…>"
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
