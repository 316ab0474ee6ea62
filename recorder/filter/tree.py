"""The expression tree of a filter: nodes, combinators, the operator base class and registry.

A parsed filter is a tree of Nodes. Each node prints itself back in canonical
syntax (``str(node)``), compiles to a predicate over one decoded record map, and
may name a *needle*: byte strings of which at least one must occur in the stored
bytes of any record it matches, which lets a scan skip most records without
decoding them. Operators (``type:``, ``ch:``...) are Node subclasses registered
by name, each carrying its syntax and help text, so ``--help`` and docs/filter.md
are rendered from the same strings.
"""

from __future__ import annotations

import importlib
import re
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from krec.recorder.log.reader import LogReader

#: a compiled predicate: (record index, decoded record map) -> matches
Predicate = Callable[[int, dict[Any, Any]], bool]

#: alternatives (bytes, ignore_case): a matching record's stored bytes contain one of them
Needle = tuple[tuple[bytes, bool], ...]

#: modules that register extra operators; imported the first time operators are needed
EXTENSION_MODULES: tuple[str, ...] = ("krec.recorder.check.filterop",)


class Fields:
    """Names of record fields as a decoder returns them: str keys, or bytes with raw=True.

    Filters scan with msgpack's ``raw=True`` (a third faster); Records hold str keys.
    Predicates are compiled once for each, with constants encoded to match.
    """

    def __init__(self, raw: bool) -> None:
        self.raw = raw

        def key(name: str) -> Any:
            return name.encode() if raw else name

        self.key: Callable[[str], Any] = key
        self.t = key("t")
        self.ch = key("ch")
        self.source = key("from")
        self.event = key("event")
        self.header = key("header")
        self.parent = key("parent")
        self.content = key("content")

    def text(self, value: Any) -> str | None:
        """A decoded string field (ch, from, event) as str, None if it is not a string."""
        if isinstance(value, str):
            return value
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return None


RAW_FIELDS = Fields(raw=True)
STR_FIELDS = Fields(raw=False)


def frame_bytes(value: Any) -> bytes:
    """A stored JSON frame as bytes ('' when missing); writers may store str."""
    if value.__class__ is bytes:
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return b""


# -- printing ---------------------------------------------------------------

KEYWORDS = frozenset({"and", "or", "not"})
OPERATOR_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):")
TIME_PREFIX = re.compile(r"t(<=|>=|<|>)")


def bare_length(text: str, start: int = 0) -> int:
    """Where an unquoted token starting at ``start`` ends: at blank space or an unopened ')'."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            break
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        i += 1
    return i


def _balanced_bare(text: str) -> bool:
    """Does ``text`` read back as one unquoted token, whatever follows it (a ')' included)?"""
    if bare_length(text) != len(text):
        return False
    depth = 0
    for c in text:
        depth += 1 if c == "(" else -1 if c == ")" else 0
    return depth == 0


def quote(text: str) -> str:
    """``text`` as a double-quoted filter string: \\" and \\\\ stand for " and \\."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def value_text(value: str) -> str:
    """An operator value as written: bare when it reads back the same, else quoted."""
    if value and '"' not in value and _balanced_bare(value):
        return value
    return quote(value)


def word_text(word: str) -> str:
    """A free word as written: bare unless it would read as syntax."""
    if (
        word
        and word[0] not in '()"'
        and '"' not in word
        and word.lower() not in KEYWORDS
        and not OPERATOR_NAME.match(word)
        and not TIME_PREFIX.match(word)
        and _balanced_bare(word)
    ):
        return word
    return quote(word)


# -- nodes ------------------------------------------------------------------


class Node:
    """A filter expression. Subclasses define ``_key``, ``__str__`` and ``compile``."""

    #: relative cost of evaluating the predicate; cheaper ones run first in and/or
    cost: ClassVar[int] = 1

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._key() == self._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    def children(self) -> Sequence[Node]:
        return ()

    def walk(self) -> list[Node]:
        """This node and every node below it."""
        out: list[Node] = [self]
        for child in self.children():
            out.extend(child.walk())
        return out

    def compile(self, fields: Fields) -> Predicate:
        raise NotImplementedError

    def needle(self) -> Needle | None:
        """Byte strings one of which a matching record must contain; None if there are none."""
        return None

    def prepare(self, reader: LogReader) -> None:
        """Called with the log before a scan (operators that need the whole log override it)."""
        for child in self.children():
            child.prepare(reader)


class All(Node):
    """The empty filter: every record."""

    def _key(self) -> tuple[Any, ...]:
        return ()

    def __str__(self) -> str:
        return ""

    def compile(self, fields: Fields) -> Predicate:
        return lambda i, d: True


class Not(Node):
    def __init__(self, child: Node) -> None:
        self.child = child
        self.cost = child.cost

    def _key(self) -> tuple[Any, ...]:
        return (self.child,)

    def children(self) -> Sequence[Node]:
        return (self.child,)

    def __str__(self) -> str:
        inner = str(self.child)
        return f"not ({inner})" if isinstance(self.child, (And, Or)) else f"not {inner}"

    def compile(self, fields: Fields) -> Predicate:
        p = self.child.compile(fields)
        return lambda i, d: not p(i, d)


class _Combination(Node):
    word: ClassVar[str]

    def __init__(self, *items: Node) -> None:
        flat: list[Node] = []
        for item in items:  # a or (b or c) is a or b or c: one canonical tree
            flat.extend(item.items if type(item) is type(self) else (item,))  # type: ignore[attr-defined]
        self.items: tuple[Node, ...] = tuple(flat)
        self.cost = sum(item.cost for item in flat)

    @classmethod
    def of(cls, *items: Node) -> Node:
        """The combination of ``items``, or the single item itself."""
        return items[0] if len(items) == 1 else cls(*items)

    def _key(self) -> tuple[Any, ...]:
        return self.items

    def children(self) -> Sequence[Node]:
        return self.items

    def _operand(self, item: Node) -> str:
        return f"({item})" if isinstance(item, _Combination) else str(item)

    def __str__(self) -> str:
        return f" {self.word} ".join(self._operand(item) for item in self.items)


class And(_Combination):
    word = "and"

    def compile(self, fields: Fields) -> Predicate:
        preds = [n.compile(fields) for n in sorted(self.items, key=lambda n: n.cost)]
        if len(preds) == 2:
            a, b = preds
            return lambda i, d: a(i, d) and b(i, d)

        def all_of(i: int, d: dict[Any, Any]) -> bool:
            return all(p(i, d) for p in preds)

        return all_of

    def needle(self) -> Needle | None:
        found = [n for n in (item.needle() for item in self.items) if n]
        if not found:
            return None
        # the most selective guess: few alternatives, long and case-sensitive strings
        return max(found, key=lambda n: min(len(s) + (0 if ci else 4) for s, ci in n) / len(n))


class Or(_Combination):
    word = "or"

    def _operand(self, item: Node) -> str:
        return str(item) if isinstance(item, And) else super()._operand(item)

    def __str__(self) -> str:
        return " or ".join(self._operand(item) for item in self.items)

    def compile(self, fields: Fields) -> Predicate:
        preds = [n.compile(fields) for n in sorted(self.items, key=lambda n: n.cost)]
        if len(preds) == 2:
            a, b = preds
            return lambda i, d: a(i, d) or b(i, d)

        def any_of(i: int, d: dict[Any, Any]) -> bool:
            return any(p(i, d) for p in preds)

        return any_of

    def needle(self) -> Needle | None:
        out: list[tuple[bytes, bool]] = []
        for item in self.items:
            n = item.needle()
            if not n:
                return None
            out.extend(s for s in n if s not in out)
        return tuple(out)


class Operator(Node):
    """A ``name:value`` operator. Subclass, set the class attributes, and ``register`` it.

    ``check(value)`` validates (raise ValueError with a short message: the parser
    turns it into a FilterError pointing at the value) and may normalize it.
    """

    name: ClassVar[str]
    #: how it is written, e.g. "type:GLOB"
    syntax: ClassVar[str]
    #: one line: what it matches, with an example
    help: ClassVar[str]
    #: ``name:(a or b)`` is a group of values the operator distributes over
    #: (``name:a or name:b``); False where a value may itself start with "(" (re:)
    groups: ClassVar[bool] = True

    def __init__(self, value: str) -> None:
        self.value = self.check(value)

    def check(self, value: str) -> str:
        if not value:
            raise ValueError(f"{self.name}: needs a value")
        return value

    def _key(self) -> tuple[Any, ...]:
        return (self.value,)

    def __str__(self) -> str:
        text = value_text(self.value)
        if self.groups and text.startswith("("):
            text = quote(self.value)  # bare, it would read as a group of values
        return f"{self.name}:{text}"


# -- the registry -----------------------------------------------------------

_OPERATORS: dict[str, type[Operator]] = {}
#: every documented form in help order: operators and the special forms (words, t>)
_HELP: list[Any] = []
_extensions_loaded = False


def register(cls: type[Any]) -> type[Any]:
    """Register an operator class (a class decorator). Classes with ``syntax`` and ``help``
    but no ``name`` are documented only (their syntax is built into the parser)."""
    name = getattr(cls, "name", None)
    if isinstance(name, str):
        if name in _OPERATORS and _OPERATORS[name] is not cls:
            raise ValueError(f"filter operator {name!r} is already registered")
        _OPERATORS[name] = cls
    if cls not in _HELP:
        _HELP.append(cls)
    return cls


def unregister(cls: type[Any]) -> None:
    """Remove an operator class registered with ``register`` (for tests and plugins)."""
    name = getattr(cls, "name", None)
    if isinstance(name, str) and _OPERATORS.get(name) is cls:
        del _OPERATORS[name]
    if cls in _HELP:
        _HELP.remove(cls)


def _load_extensions() -> None:
    global _extensions_loaded
    if not _extensions_loaded:
        _extensions_loaded = True
        for module in EXTENSION_MODULES:
            importlib.import_module(module)


def operator_class(name: str) -> type[Operator] | None:
    _load_extensions()
    return _OPERATORS.get(name)


def documented() -> list[Any]:
    """Every documented form (operator classes and special syntax), in help order."""
    _load_extensions()
    return list(_HELP)


HELP_WIDTH = 96
COMBINING = (
    ("A B, A and B", "both A and B"),
    ("A or B", "A, B or both"),
    ("not A", "everything A does not match"),
    ("( ... )", "grouping; not binds tightest, then and, then or"),
    ("NAME:(A or B)", "NAME: applies to each value in the group: NAME:A or NAME:B"),
)


def filter_help() -> str:
    """The filter language reference shown by ``krec show --help`` and in docs/filter.md."""
    rows = [(cls.syntax, cls.help) for cls in documented()] + list(COMBINING)
    width = max(len(syntax) for syntax, _ in rows)
    lines = ["filter language (krec show -f, krec export -f, the viewer's / bar):"]
    for syntax, text in rows:
        wrapped = textwrap.wrap(text, HELP_WIDTH - width - 4) or [""]
        lines.append(f"  {syntax:<{width}}  {wrapped[0]}")
        lines += [f"  {'':<{width}}  {more}" for more in wrapped[1:]]
    lines.append("An empty filter matches every record. Quote text that reads as syntax.")
    return "\n".join(lines)
