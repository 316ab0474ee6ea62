"""One-line summaries of records (code, stream text, status, ``ename: evalue``) and short ids.

Shared by ``krec show``, ``krec stats`` and anything else that lists records:
each message type a person scans for has its own short form, anything else
falls back to the first keys of its content. ``short_id`` is the id column:
jupyter_client and ipykernel ids are ``SESSION_PID_N``, so their first eight
characters are the same for a whole session; the short form ``SESS_N`` (four
characters of the session, the counter) tells them apart, and the filter
operators ``msg:`` and ``parent:`` accept it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from krec.recorder.log.record import Record

MAX_SUMMARY = 240
_SESSION_ID = re.compile(r"([0-9A-Za-z]{4})[0-9A-Za-z-]*_\d+_(\d+)")


def short_id(msg_id: str) -> str:
    """A short, distinctive form of a msg_id: ``d7f3_45`` for ``d7f3d2ef-..._6809_45``."""
    # _SESSION_ID.fullmatch, by str methods (this runs for every line of a listing)
    parts = msg_id.split("_")
    if len(parts) == 3:
        session, pid, n = parts
        rest = session[4:].replace("-", "")
        if (
            len(session) >= 4
            and session.isascii()
            and session[:4].isalnum()
            and (not rest or rest.isalnum())
            and pid.isdecimal()
            and n.isdecimal()
        ):
            return f"{session[:4]}_{n}"
    return msg_id[:8]


def one_line(text: object, limit: int = MAX_SUMMARY) -> str:
    """``text`` on one line: newlines shown as ⏎, tabs as spaces, cut at ``limit``."""
    s = text if isinstance(text, str) else str(text)
    s = s.replace("\r\n", "\n").rstrip("\n")
    s = s.replace("\n", " ⏎ ").replace("\t", " ").replace("\r", " ")
    if not s.isprintable():  # a printable text holds no control character to remove
        s = _CONTROL.sub("", s)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def _count(content: dict[str, Any]) -> str:
    n = content.get("execution_count")
    return f"[{n}] " if isinstance(n, int) else ""


def _code(content: dict[str, Any]) -> str:
    code = content.get("code", "")
    return one_line(code) if code else "(empty)"


def _plain(data: object) -> str:
    if not isinstance(data, dict):
        return ""
    plain = data.get("text/plain")
    if isinstance(plain, list):
        plain = "".join(str(p) for p in plain)
    text = one_line(plain) if isinstance(plain, str) else ""
    others = [str(m) for m in data if m != "text/plain"]
    if others:
        kinds = ", ".join(others[:3]) + ("…" if len(others) > 3 else "")
        return f"{{{kinds}}} {text}".rstrip()
    return text


def _reply(content: dict[str, Any]) -> str:
    status = str(content.get("status", ""))
    if status == "error":
        return f"error {content.get('ename', '')}: {one_line(content.get('evalue', ''))}"
    return status


def _display(content: dict[str, Any]) -> str:
    transient = content.get("transient")
    did = transient.get("display_id") if isinstance(transient, dict) else None
    text = _plain(content.get("data"))
    return f"<{did}> {text}" if did else text


def _cursor(content: dict[str, Any]) -> str:
    code = str(content.get("code", ""))
    pos = content.get("cursor_pos", len(code))
    pos = pos if isinstance(pos, int) else len(code)
    return one_line(code[:pos]) + "▏" + one_line(code[pos:])


def _complete_reply(content: dict[str, Any]) -> str:
    matches = content.get("matches")
    if not isinstance(matches, list):
        return _generic(content)
    shown = ", ".join(str(m) for m in matches[:5])
    return f"{_reply(content)} {len(matches)} matches" + (f": {shown}" if shown else "")


def _kernel_info_reply(content: dict[str, Any]) -> str:
    lang = content.get("language_info")
    name = lang.get("name", "") if isinstance(lang, dict) else ""
    return (
        f"{content.get('implementation', '')} {content.get('implementation_version', '')} "
        f"{name} protocol {content.get('protocol_version', '?')}"
    ).strip()


def _comm(content: dict[str, Any]) -> str:
    parts = [str(content.get("comm_id", ""))[:8]]
    if content.get("target_name"):
        parts.append(str(content["target_name"]))
    data = content.get("data")
    if isinstance(data, dict) and data:
        if data.get("method"):
            parts.append(str(data["method"]))
        state = data.get("state")
        if isinstance(state, dict):
            parts.append(", ".join(f"{k}={v!r}" for k, v in list(state.items())[:4]))
    return one_line(" ".join(parts))


def _generic(content: dict[str, Any]) -> str:
    return one_line(", ".join(f"{k}={v!r}" for k, v in list(content.items())[:4]))


def _count_of(key: str) -> Callable[[dict[str, Any]], str]:
    def summary(content: dict[str, Any]) -> str:
        items = content.get(key)
        return f"{_reply(content)} {len(items) if isinstance(items, (list, dict)) else 0} {key}"

    return summary


_BY_TYPE: dict[str, Callable[[dict[str, Any]], str]] = {
    "execute_request": _code,
    "execute_input": lambda c: _count(c) + _code(c),
    "execute_reply": lambda c: _count(c) + _reply(c),
    "execute_result": lambda c: _count(c) + _plain(c.get("data")),
    "display_data": _display,
    "update_display_data": _display,
    "stream": lambda c: f"{c.get('name', '')}: {one_line(c.get('text', ''))}",
    "error": lambda c: f"{c.get('ename', '')}: {one_line(c.get('evalue', ''))}",
    "status": lambda c: str(c.get("execution_state", "")),
    "clear_output": lambda c: "wait" if c.get("wait") else "",
    "input_request": lambda c: (
        repr(one_line(c.get("prompt", ""))) + (" (password)" if c.get("password") else "")
    ),
    "input_reply": lambda c: repr(one_line(c.get("value", ""))),
    "complete_request": _cursor,
    "complete_reply": _complete_reply,
    "inspect_request": _cursor,
    "inspect_reply": lambda c: (
        f"{_reply(c)} {'found' if c.get('found') else 'not found'} {_plain(c.get('data'))}".strip()
    ),
    "is_complete_request": _code,
    "is_complete_reply": lambda c: f"{c.get('status', '')} {c.get('indent', '')}".strip(),
    "kernel_info_request": lambda c: "",
    "kernel_info_reply": _kernel_info_reply,
    "comm_open": _comm,
    "comm_msg": _comm,
    "comm_close": _comm,
    "comm_info_reply": _count_of("comms"),
    "history_request": lambda c: " ".join(
        f"{k}={c[k]}" for k in ("hist_access_type", "n", "pattern") if k in c
    ),
    "history_reply": _count_of("history"),
    "shutdown_request": lambda c: "restart" if c.get("restart") else "",
    "shutdown_reply": lambda c: f"{_reply(c)} restart" if c.get("restart") else _reply(c),
    "interrupt_reply": _reply,
    "iopub_welcome": lambda c: f"subscription {c.get('subscription', '')!r}",
    "create_subshell_reply": lambda c: f"{_reply(c)} {c.get('subshell_id', '')}",
    "delete_subshell_request": lambda c: str(c.get("subshell_id", "")),
    "list_subshell_reply": lambda c: (
        f"{_reply(c)} {', '.join(map(str, c.get('subshell_id') or []))}"
    ),
}


def summarize_message(msg_type: str, content: dict[str, Any]) -> str:
    """The one-line summary of a message's content, by its type."""
    try:
        return _BY_TYPE.get(msg_type, _generic)(content)
    except Exception:  # a malformed message must never break a listing
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


def _dropped_bytes(dropped: Any) -> int:
    if isinstance(dropped, int):
        return dropped
    if isinstance(dropped, dict):
        return sum(_dropped_bytes(v) for v in dropped.values())
    if isinstance(dropped, list):
        return sum(_dropped_bytes(v) for v in dropped)
    return 0


def summarize(record: Record) -> str:
    """The one-line summary of any record."""
    if record.is_event:
        return summarize_event(record.fields)
    text = summarize_message(record.msg_type, record.content)
    dropped = record.raw.get("dropped")
    if isinstance(dropped, dict):  # an audit log: say what is missing, not an empty output
        text = f"{text} [{_dropped_bytes(dropped)} bytes not recorded]".lstrip()
    subshell = record.subshell_id
    return f"[subshell {subshell[:8]}] {text}" if subshell else text


#: events that mean something went wrong
TROUBLE_EVENTS = frozenset(
    {"kernel_died", "heartbeat_lost", "bad_message", "records_dropped", "unreadable_record"}
)


def tone(record: Record) -> str:
    """ "error" (failed reply, error output, trouble event), "warning" (stderr, aborted) or ""."""
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
