"""One-line summaries of records for the message list: the code, the text, the status or error.

Each message type that a person scans for gets its own short form (an
execute_request shows its code, a stream its text, an error ``ename: evalue``);
anything else falls back to the first keys of its content. Pure functions over
a Record, so the list, the thread view and the timeline share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from krec.recorder.logfile import Record

MAX_SUMMARY = 240


def one_line(text: object, limit: int = MAX_SUMMARY) -> str:
    """``text`` on one line: newlines shown as ⏎, runs of blanks kept, cut at ``limit``."""
    s = text if isinstance(text, str) else str(text)
    s = s.replace("\r\n", "\n").rstrip("\n")
    s = s.replace("\n", " ⏎ ").replace("\t", " ").replace("\r", " ")
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def _code(content: dict[str, Any]) -> str:
    code = content.get("code", "")
    return one_line(code) if code else "(empty)"


def _count(content: dict[str, Any]) -> str:
    n = content.get("execution_count")
    return f"[{n}] " if isinstance(n, int) else ""


def _plain(data: object) -> str:
    if not isinstance(data, dict):
        return ""
    plain = data.get("text/plain")
    if isinstance(plain, list):  # nbformat-style multiline strings
        plain = "".join(str(p) for p in plain)
    others = [m for m in data if m != "text/plain"]
    text = one_line(plain) if isinstance(plain, str) else ""
    if others:
        kinds = ", ".join(others[:3]) + ("…" if len(others) > 3 else "")
        return f"{{{kinds}}} {text}".rstrip()
    return text


def _reply(content: dict[str, Any]) -> str:
    status = content.get("status", "")
    if status == "error":
        return f"error {content.get('ename', '')}: {one_line(content.get('evalue', ''))}"
    return str(status)


def _execute_reply(content: dict[str, Any]) -> str:
    return _count(content) + _reply(content)


def _stream(content: dict[str, Any]) -> str:
    return f"{content.get('name', '')}: {one_line(content.get('text', ''))}"


def _error(content: dict[str, Any]) -> str:
    return f"{content.get('ename', '')}: {one_line(content.get('evalue', ''))}"


def _display(content: dict[str, Any]) -> str:
    transient = content.get("transient")
    did = transient.get("display_id") if isinstance(transient, dict) else None
    text = _plain(content.get("data"))
    return f"<{did}> {text}" if did else text


def _input_request(content: dict[str, Any]) -> str:
    pw = " (password)" if content.get("password") else ""
    return f"{one_line(content.get('prompt', ''))!r}{pw}"


def _complete_request(content: dict[str, Any]) -> str:
    code = str(content.get("code", ""))
    pos = content.get("cursor_pos", len(code))
    pos = pos if isinstance(pos, int) else len(code)
    return one_line(code[:pos]) + "▏" + one_line(code[pos:])


def _complete_reply(content: dict[str, Any]) -> str:
    matches = content.get("matches")
    n = len(matches) if isinstance(matches, list) else 0
    shown = ", ".join(str(m) for m in (matches or [])[:5])
    return f"{_reply(content)} {n} matches: {shown}".strip()


def _inspect_reply(content: dict[str, Any]) -> str:
    found = "found" if content.get("found") else "not found"
    return f"{_reply(content)} {found} {_plain(content.get('data'))}".strip()


def _kernel_info_reply(content: dict[str, Any]) -> str:
    lang = content.get("language_info")
    lang_name = lang.get("name", "") if isinstance(lang, dict) else ""
    return (
        f"{content.get('implementation', '')} {content.get('implementation_version', '')} "
        f"{lang_name} protocol {content.get('protocol_version', '?')}"
    ).strip()


def _comm(content: dict[str, Any]) -> str:
    comm_id = str(content.get("comm_id", ""))[:8]
    target = content.get("target_name")
    data = content.get("data")
    parts = [comm_id]
    if target:
        parts.append(str(target))
    if isinstance(data, dict) and data:
        method = data.get("method")
        if method:
            parts.append(str(method))
        state = data.get("state")
        if isinstance(state, dict):
            parts.append(one_line(", ".join(f"{k}={v!r}" for k, v in list(state.items())[:4])))
        elif not method:
            parts.append(one_line(", ".join(list(map(str, data))[:4])))
    return " ".join(parts)


def _history_reply(content: dict[str, Any]) -> str:
    history = content.get("history")
    n = len(history) if isinstance(history, list) else 0
    return f"{_reply(content)} {n} entries"


def _history_request(content: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={content[k]}" for k in ("hist_access_type", "n", "pattern") if k in content
    )


def _debug(content: dict[str, Any]) -> str:
    return str(content.get("command") or content.get("event") or "")


def _generic(content: dict[str, Any]) -> str:
    if not content:
        return ""
    return one_line(", ".join(f"{k}={v!r}" for k, v in list(content.items())[:4]))


_BY_TYPE: dict[str, Callable[[dict[str, Any]], str]] = {
    "execute_request": _code,
    "execute_input": lambda c: _count(c) + _code(c),
    "execute_reply": _execute_reply,
    "execute_result": lambda c: _count(c) + _plain(c.get("data")),
    "display_data": _display,
    "update_display_data": _display,
    "stream": _stream,
    "error": _error,
    "status": lambda c: str(c.get("execution_state", "")),
    "clear_output": lambda c: "wait" if c.get("wait") else "",
    "input_request": _input_request,
    "input_reply": lambda c: repr(c.get("value", "")),
    "complete_request": _complete_request,
    "complete_reply": _complete_reply,
    "inspect_request": _complete_request,
    "inspect_reply": _inspect_reply,
    "is_complete_request": _code,
    "is_complete_reply": lambda c: f"{c.get('status', '')} {c.get('indent', '')!s}".strip(),
    "kernel_info_request": lambda c: "",
    "kernel_info_reply": _kernel_info_reply,
    "comm_open": _comm,
    "comm_msg": _comm,
    "comm_close": _comm,
    "comm_info_reply": lambda c: f"{_reply(c)} {len(c.get('comms') or {})} comms",
    "history_request": _history_request,
    "history_reply": _history_reply,
    "shutdown_request": lambda c: "restart" if c.get("restart") else "",
    "shutdown_reply": lambda c: f"{_reply(c)} restart" if c.get("restart") else _reply(c),
    "interrupt_reply": _reply,
    "debug_request": _debug,
    "debug_reply": lambda c: f"{_debug(c)} {'ok' if c.get('success') else 'failed'}",
    "debug_event": _debug,
    "create_subshell_reply": lambda c: f"{_reply(c)} {c.get('subshell_id', '')}",
    "delete_subshell_request": lambda c: str(c.get("subshell_id", "")),
    "list_subshell_reply": lambda c: f"{_reply(c)} {', '.join(c.get('subshell_id') or [])}",
}


def summarize_message(msg_type: str, content: dict[str, Any]) -> str:
    """The one-line summary of a message's content, by its type."""
    try:
        return _BY_TYPE.get(msg_type, _generic)(content)
    except Exception:  # a malformed message must not break the list
        return _generic(content)


def summarize_event(fields: dict[str, Any]) -> str:
    """An event's fields as ``key=value`` pairs (bytes shown by size)."""
    parts = []
    for k, v in fields.items():
        if isinstance(v, bytes):
            v = f"<{len(v)} bytes>"
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = f"<{len(v)} frames>"
        parts.append(f"{k}={v}")
    return one_line(" ".join(parts))


def summarize(record: Record) -> str:
    """The one-line summary of any record."""
    if record.is_event:
        return summarize_event(record.fields)
    return summarize_message(record.msg_type, record.content)


def tone(record: Record) -> str:
    """The row colour: error (failed reply, error output, bad event), warning (stderr)."""
    if record.is_event:
        return "error" if record.event in TROUBLE_EVENTS else ""
    mt = record.msg_type
    if mt == "error":
        return "error"
    if mt == "stream":
        return "warning" if record.content.get("name") == "stderr" else ""
    if mt.endswith("_reply"):
        status = record.content.get("status")
        if status == "error":
            return "error"
        if status == "aborted":
            return "warning"
    return ""


TROUBLE_EVENTS = frozenset(
    {"kernel_died", "heartbeat_lost", "bad_message", "records_dropped", "unreadable_record"}
)
