"""Which recorded request answers a live one: `krec serve`'s matching, by msg_type then content.

A live request matches a recorded request of the same msg_type whose identifying
content is equal: the code of an execute_request, code and cursor of a
complete_request, and so on (``KEY_FIELDS``). Code is compared byte for byte
(``strict``), after normalizing line endings and trailing whitespace (``normal``),
or ignoring whitespace altogether (``loose``, which also falls back to the next
unused request of the same type when nothing matches). When several match, the
next unused one after the last match wins, then the first unused one, then the
next one again (a cell run twice is answered twice).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from krec.recorder.log.exchange import Exchange, Marker

STRICT, NORMAL, LOOSE = "strict", "normal", "loose"
STRICTNESS = (STRICT, NORMAL, LOOSE)

#: the content fields that identify a request; other types compare their whole content
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "execute_request": ("code",),
    "complete_request": ("code", "cursor_pos"),
    "inspect_request": ("code", "cursor_pos", "detail_level"),
    "is_complete_request": ("code",),
    "history_request": (
        "hist_access_type",
        "raw",
        "output",
        "session",
        "start",
        "stop",
        "n",
        "pattern",
        "unique",
    ),
    "comm_info_request": ("target_name",),
    "comm_open": ("target_name", "data"),
    "comm_msg": ("comm_id", "data"),
    "comm_close": ("comm_id",),
    "kernel_info_request": (),
    "debug_request": ("command", "arguments"),
    "create_subshell_request": (),
    "list_subshell_request": (),
    "delete_subshell_request": ("subshell_id",),
}
_CODE_FIELDS = ("code",)


def normalize_code(code: str, strictness: str) -> str:
    """Code as compared at ``strictness`` (see the module docstring)."""
    if strictness == STRICT:
        return code
    if strictness == LOOSE:
        return "".join(code.split())
    lines = code.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def request_key(msg_type: str, content: dict[str, Any], strictness: str) -> str:
    """The identifying content of a request, as one comparable string."""
    fields = KEY_FIELDS.get(msg_type)
    picked = content if fields is None else {f: content.get(f) for f in fields}
    for name in _CODE_FIELDS:
        if isinstance(picked.get(name), str):
            picked = {**picked, name: normalize_code(picked[name], strictness)}
    return json.dumps(picked, sort_keys=True, ensure_ascii=False, default=str)


def describe(ex: Exchange, width: int = 60) -> str:
    """``request #N (execute_request 'x * 2')``: a recorded request named for a message."""
    content = ex.request.content
    text = ex.code
    if text is None:
        fields = KEY_FIELDS.get(ex.msg_type, tuple(content))
        text = ", ".join(f"{f}={content.get(f)!r}" for f in fields if f in content)
    else:
        text = repr(text)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return f"request #{ex.number} ({ex.msg_type}{' ' + text if text else ''})"


@dataclass
class Match:
    """The recorded exchange chosen for a live request, and how it was chosen."""

    exchange: Exchange
    by: str  # "content" or "type" (a loose fallback)
    reused: bool  # it had answered an earlier live request already


class Matcher:
    """Finds the recorded exchange that answers each live request, remembering what it used."""

    def __init__(self, exchanges: Sequence[Exchange], strictness: str = NORMAL) -> None:
        if strictness not in STRICTNESS:
            raise ValueError(f"unknown strictness {strictness!r}")
        self.strictness = strictness
        self.by_type: dict[str, list[Exchange]] = {}
        for ex in exchanges:
            self.by_type.setdefault(ex.msg_type, []).append(ex)
        self.used: set[int] = set()
        self.cursor = 0  # number of the last exchange matched
        self._keys: dict[int, str] = {}

    def key(self, ex: Exchange) -> str:
        if ex.number not in self._keys:
            self._keys[ex.number] = request_key(ex.msg_type, ex.request.content, self.strictness)
        return self._keys[ex.number]

    def match(self, msg_type: str, content: dict[str, Any]) -> Match | None:
        """The exchange answering a live request (content already mapped to recorded ids)."""
        candidates = self.by_type.get(msg_type, [])
        key = request_key(msg_type, content, self.strictness)
        same = [ex for ex in candidates if self.key(ex) == key]
        chosen = self._next(same, unused_only=False)
        by = "content"
        if chosen is None and self.strictness == LOOSE:
            chosen, by = self._next(candidates, unused_only=True), "type"
        if chosen is None:
            return None
        reused = chosen.number in self.used
        self.used.add(chosen.number)
        self.cursor = chosen.number
        return Match(chosen, by, reused)

    def _next(self, exchanges: list[Exchange], *, unused_only: bool) -> Exchange | None:
        if not exchanges:
            return None
        unused = [ex for ex in exchanges if ex.number not in self.used]
        for ex in unused:
            if ex.number > self.cursor:
                return ex
        if unused:
            return unused[0]
        if unused_only:
            return None
        after = [ex for ex in exchanges if ex.number > self.cursor]
        return (after or exchanges)[0]

    def restarted(self, timeline: Sequence[Exchange | Marker]) -> None:
        """The kernel was restarted: go on after the recording's next restart, if it has one."""
        seen = self.cursor == 0
        for i, item in enumerate(timeline):
            if isinstance(item, Exchange):
                seen = seen or item.number == self.cursor
            elif seen and item.event == "restart":
                after = [ex.number for ex in timeline[i:] if isinstance(ex, Exchange)]
                if after:
                    self.cursor = after[0] - 1
                return

    def nearest(self, msg_type: str, content: dict[str, Any]) -> Exchange | None:
        """The recorded request of this type most similar to a live one (None: no such type)."""
        candidates = self.by_type.get(msg_type, [])
        if not candidates:
            return None
        key = request_key(msg_type, content, NORMAL)

        def similarity(ex: Exchange) -> float:
            other = request_key(ex.msg_type, ex.request.content, NORMAL)
            return difflib.SequenceMatcher(None, key, other, autojunk=False).ratio()

        return max(candidates, key=similarity)

    def unmatched_reason(self, msg_type: str, content: dict[str, Any]) -> str:
        """The evalue of a KrecNoRecording error: what is missing and the nearest recording."""
        near = self.nearest(msg_type, content)
        if near is None:
            return f"the recording has no {msg_type}"
        what = "code" if "code" in KEY_FIELDS.get(msg_type, ()) else "content"
        return (
            f"no recorded {msg_type} has this {what} ({self.strictness} matching); "
            f"nearest is {describe(near)}"
        )
