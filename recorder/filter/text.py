"""Free text in filters: words, phrases and ``re:``, matched against what a person reads.

The text of a message is its code, stream text, text/plain, ename, evalue and
input prompt or reply (``message_text``). A byte search of the raw content JSON
rules out nearly every record before any is parsed; it is exact because the
words it is used for are printable ASCII that JSON encoders write as they are,
and the few ways a text can hold a word without its bytes (see
``_hiding_places``) make a record a candidate too.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from krec.recorder.filter.tree import (
    Fields,
    Needle,
    Node,
    Operator,
    Predicate,
    frame_bytes,
    word_text,
)

_TEXT_KEYS = ("code", "text", "ename", "evalue", "prompt", "value")


def message_text(content: dict[str, Any]) -> str:
    """The text a person reads in a message: code, stream text, text/plain, ename, evalue,
    input prompt and reply, one per line."""
    parts = []
    for key in _TEXT_KEYS:  # a plain loop: this runs for every candidate of a scan
        value = content.get(key)
        if value.__class__ is str:
            parts.append(value)
    data = content.get("data")
    plain = data.get("text/plain") if data.__class__ is dict else None
    if plain.__class__ is str:  # the protocol sends strings (a list is nbformat's form)
        parts.append(plain)
    return "\n".join(parts)


_memo: tuple[bytes, str, str] = (b"", "", "")
_decode = json.JSONDecoder().decode


def _text_of(content: bytes) -> tuple[str, str]:
    """(text, lower-cased text) of a raw content frame; the last one is remembered, so
    several text operators in one filter parse a record's content once."""
    global _memo
    memo = _memo  # one read: other threads may replace it
    if memo[0] is content:
        return memo[1], memo[2]
    try:  # what json.loads does with bytes, minus guessing the encoding: frames are UTF-8
        parsed = _decode(content.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        parsed = None
    text = message_text(parsed) if parsed.__class__ is dict else ""
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
            if (
                needle is not None
                and c.lower().find(needle) < 0  # find is cheaper than `in` on bytes
                and not any(c.find(p) >= 0 for p in places)
            ):
                return False
            return word in _text_of(c)[1]

        return pred

    def needle(self) -> Needle | None:
        word = self.text.lower()
        if not _searchable(word):
            return None
        return ((word.encode(), True), *((p, False) for p in _hiding_places(word)))


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


class Regex(Operator):
    name = "re"
    syntax = "re:PATTERN"
    help = (
        "message text matches the Python regex, case-sensitive unless (?i): "
        're:"x\\s*=\\s*\\d+", re:(?i)^import'
    )
    cost = 8
    groups = False  # re:(a|b) is a regex group

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
            if must is not None and c.find(must) < 0 and not any(c.find(p) >= 0 for p in places):
                return False
            return len(c) > 2 and search(_text_of(c)[0]) is not None

        return pred

    def needle(self) -> Needle | None:
        if len(self.literal) < 3:
            return None
        return ((self.literal.encode(), False), *((p, False) for p in self._places()))
