"""Audit mode: what a record keeps when the log is an audit log, and what it drops.

An audit log (header ``audit: true``) keeps every message's envelope (channel,
direction, identities, header, parent header, metadata, capture time), the code and
arguments of requests, reply status, ename, evalue and execution counts, and every
event. It drops what a kernel computed and a user typed at a prompt: stream text,
the data and metadata of display_data, execute_result, update_display_data and
inspect_reply (their MIME types stay, each emptied), tracebacks, execute_reply
payloads and user_expressions, completion matches, history, comm data (both ways),
debug bodies, input_reply values, buffers, the content of a kernel message of a type
krec does not know, and the raw frames of a malformed message. Each dropped value
leaves its size in bytes in the record's ``dropped`` map. ``redact_record`` runs in
the LogWriter, on the capture thread, before the record is packed: a dropped byte
never reaches the file. docs/audit.md is the specification.
"""

from __future__ import annotations

import json
import os
from typing import Any

import orjson

from krec.recorder.wire import peek_field

#: environment variable that makes every log a recorder process writes an audit log
AUDIT_ENV = "KREC_AUDIT"

#: fields emptied, by msg_type (any direction); "data*" keeps the MIME types of a bundle
_DROP: dict[str, tuple[str, ...]] = {
    "stream": ("text",),
    "display_data": ("data*", "metadata"),
    "execute_result": ("data*", "metadata"),
    "update_display_data": ("data*", "metadata"),
    "inspect_reply": ("data*", "metadata"),
    "error": ("traceback",),
    "execute_reply": ("traceback", "payload", "user_expressions"),
    "complete_reply": ("matches", "metadata"),
    "history_reply": ("history",),
    "comm_open": ("data", "metadata"),
    "comm_msg": ("data", "metadata"),
    "comm_close": ("data", "metadata"),
    "debug_reply": ("body",),
    "debug_event": ("body",),
    "input_reply": ("value",),
}

#: what a kernel sends that is kept as it is (beyond _DROP); any other type is emptied
_KERNEL_KEEPS = frozenset(
    {
        "status",
        "execute_input",
        "clear_output",
        "kernel_info_reply",
        "shutdown_reply",
        "interrupt_reply",
        "is_complete_reply",
        "comm_info_reply",
        "input_request",
        "iopub_welcome",
        "create_subshell_reply",
        "delete_subshell_reply",
        "list_subshell_reply",
    }
)


def _msg_type(header: Any) -> str:
    """The header's msg_type, read without parsing it when it is plain (the usual case)."""
    if isinstance(header, bytes):
        return peek_field(header, b'"msg_type"') or ""
    parsed = _loads(header)
    value = parsed.get("msg_type", "") if isinstance(parsed, dict) else ""
    return value if isinstance(value, str) else ""


def enabled_by_env() -> bool:
    return os.environ.get(AUDIT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def header_fields() -> dict[str, Any]:
    """``audit`` for a new log's header: true when ``$KREC_AUDIT`` asks for it."""
    return {"audit": enabled_by_env()}


def _loads(data: Any) -> Any:
    if not isinstance(data, (bytes, str)):
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes):
        return len(value)
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return len(json.dumps(value, default=str).encode())


def _empty(value: Any) -> Any:
    if isinstance(value, str):
        return ""
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return None


def redact_record(record: dict[str, Any]) -> dict[str, Any]:
    """The audit form of one record map (frames as raw bytes); the input is not changed."""
    if "event" in record:
        frames = record.get("frames")
        if not frames:
            return record
        out = dict(record)
        out["frames"] = []
        out["dropped"] = {"frames": [_size(f) for f in frames]}
        return out
    msg_type = _msg_type(record.get("header"))
    dropped: dict[str, Any] = {}
    content = record.get("content")
    fields = _DROP.get(msg_type)
    from_kernel = record.get("from") != "client"
    if fields is not None or (from_kernel and msg_type not in _KERNEL_KEEPS):
        parsed = _loads(content)
        if fields is None or not isinstance(parsed, dict):
            # an unknown kind of kernel message, or content that is no JSON object: all of it
            if content:
                dropped["content"] = _size(content)
                content = b"{}"
        else:
            changed = False
            for name in fields:
                bundle = name.endswith("*")
                name = name.rstrip("*")
                if name not in parsed:
                    continue
                value = parsed[name]
                if bundle and isinstance(value, dict):
                    dropped[name] = {str(k): _size(v) for k, v in value.items()}
                    parsed[name] = {k: _empty(v) for k, v in value.items()}
                else:
                    dropped[name] = _size(value)
                    parsed[name] = _empty(value)
                changed = True
            if changed:
                try:
                    content = orjson.dumps(parsed)
                except TypeError:  # an integer beyond 64 bits
                    content = json.dumps(parsed).encode()
    buffers = record.get("buffers") or ()
    if buffers:
        dropped["buffers"] = [_size(b) for b in buffers]
    if not dropped:
        return record
    out = dict(record)
    out["content"] = content
    out["buffers"] = []
    out["dropped"] = dropped
    return out
