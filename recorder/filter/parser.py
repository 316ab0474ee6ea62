"""Text to tree: the tokenizer and recursive-descent parser of the filter language.

Grammar (``not`` binds tightest, then ``and`` or juxtaposition, then ``or``)::

    expr  := conj ("or" conj)*
    conj  := unary (["and"] unary)*
    unary := "not" unary | "(" expr ")" | term
    term  := WORD | "PHRASE" | NAME:VALUE | NAME:"VALUE" | NAME:"(" values ")"
           | t<TIME | t>TIME | t<=TIME | t>=TIME
    values := expr whose terms are WORD or "PHRASE" only, each a VALUE of NAME

An unquoted word or value runs to blank space or to a ``)`` it did not open, so
``re:(a|b)`` keeps its group. An operator followed by ``(`` applies to a group
of values instead: ``type:(a or not b)`` is ``type:a or not type:b`` (the
operator distributes over the group; see ``Operator.groups``). Every error is a
FilterError carrying the position of the offending character.
"""

from __future__ import annotations

from dataclasses import dataclass

from krec.recorder.errors import FilterError
from krec.recorder.filter.operators import Time, parse_duration
from krec.recorder.filter.text import Text
from krec.recorder.filter.tree import (
    KEYWORDS,
    OPERATOR_NAME,
    TIME_PREFIX,
    All,
    And,
    Node,
    Not,
    Operator,
    Or,
    bare_length,
    documented,
    operator_class,
)


@dataclass(slots=True)
class Token:
    kind: str  # "(", ")", "and", "or", "not", "term", "end"
    pos: int
    node: Node | None = None
    text: str = ""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._tokenize()
        self.i = 0

    def error(self, message: str, pos: int) -> FilterError:
        return FilterError(message, self.text, pos)

    # -- tokens ---------------------------------------------------------------

    def _quoted(self, start: int) -> tuple[str, int]:
        """The string of the quote opening at ``start`` and the position after it."""
        text = self.text
        out: list[str] = []
        i = start + 1
        while i < len(text):
            c = text[i]
            if c == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
                out.append(text[i + 1])  # \" and \\; any other backslash stays (re:"\d+")
                i += 2
                continue
            if c == '"':
                return "".join(out), i + 1
            out.append(c)
            i += 1
        raise self.error("unterminated quote", start)

    def _value(self, start: int) -> tuple[str, int]:
        if start < len(self.text) and self.text[start] == '"':
            return self._quoted(start)
        end = bare_length(self.text, start)
        return self.text[start:end], end

    def _tokenize(self) -> list[Token]:
        text = self.text
        tokens: list[Token] = []
        # the open groups of values: (operator class, its name as written, paren depth
        # inside it); words and phrases in the innermost one are values of its operator
        groups: list[tuple[type[Operator], str, int]] = []
        depth = 0
        i = 0
        while i < len(text):
            c = text[i]
            if c.isspace():
                i += 1
            elif c in "()":
                tokens.append(Token(c, i))
                depth += 1 if c == "(" else -1
                if groups and depth < groups[-1][2]:
                    groups.pop()
                i += 1
            elif c == '"':
                value, end = self._quoted(i)
                cls = groups[-1][0] if groups else Text
                tokens.append(Token("term", i, self._make(cls, i, value)))
                i = end
            elif groups and (OPERATOR_NAME.match(text, i) or TIME_PREFIX.match(text, i)):
                _, name, _ = groups[-1]
                raise self.error(
                    f"{name}:( ... ) holds values of {name}:; write this term outside it", i
                )
            elif m := OPERATOR_NAME.match(text, i):
                name = m.group(1)
                cls = operator_class(name.lower())
                if cls is None:
                    raise self.error(
                        f"unknown operator {name}: (known: {_known()}; "
                        "quote text to search for it)",
                        i,
                    )
                if cls.groups and text.startswith("(", m.end()):
                    tokens.append(Token("(", m.end()))
                    depth += 1
                    groups.append((cls, name, depth))
                    i = m.end() + 1
                    continue
                value, end = self._value(m.end())
                tokens.append(Token("term", i, self._make(cls, m.end(), value)))
                i = end
            elif m := TIME_PREFIX.match(text, i):
                value, end = self._value(m.end())
                try:
                    ns = parse_duration(value)
                except ValueError as e:
                    raise self.error(str(e), m.end()) from None
                tokens.append(Token("term", i, Time(m.group(1), ns)))
                i = end
            else:
                end = bare_length(text, i)
                word = text[i:end]
                if word.lower() in KEYWORDS:
                    tokens.append(Token(word.lower(), i, text=word))
                else:
                    cls = groups[-1][0] if groups else Text
                    tokens.append(Token("term", i, self._make(cls, i, word)))
                i = end
        tokens.append(Token("end", len(text)))
        return tokens

    def _make(self, cls: type, pos: int, value: str) -> Node:
        try:
            return cls(value)
        except ValueError as e:
            raise self.error(str(e), pos) from None

    # -- grammar --------------------------------------------------------------

    @property
    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Node:
        if self.peek.kind == "end":
            return All()
        node = self.expr()
        token = self.peek
        if token.kind == ")":
            raise self.error("unmatched ')'", token.pos)
        if token.kind != "end":  # pragma: no cover - expr() consumes everything else
            raise self.error(f"unexpected {token.kind!r}", token.pos)
        return node

    def expr(self) -> Node:
        items = [self.conj()]
        while self.peek.kind == "or":
            self.take()
            items.append(self.conj())
        return Or.of(*items)

    def conj(self) -> Node:
        items = [self.unary()]
        while self.peek.kind not in ("or", ")", "end"):
            if self.peek.kind == "and":
                self.take()
            items.append(self.unary())
        return And.of(*items)

    def unary(self) -> Node:
        token = self.take()
        if token.kind == "not":
            return Not(self.unary())
        if token.kind == "term":
            assert token.node is not None
            return token.node
        if token.kind == "(":
            if self.peek.kind == ")":
                raise self.error("empty parentheses", token.pos)
            if self.peek.kind == "end":
                raise self.error("'(' is never closed", token.pos)
            node = self.expr()
            if self.peek.kind != ")":
                raise self.error("'(' is never closed", token.pos)
            self.take()
            return node
        if token.kind == "end":
            raise self.error("the filter ends where an expression should follow", token.pos)
        if token.kind == ")":
            raise self.error("unmatched ')'", token.pos)
        raise self.error(f"'{token.text}' needs an expression before it", token.pos)


def _known() -> str:
    names = (getattr(cls, "name", None) for cls in documented())
    return ", ".join(name for name in names if isinstance(name, str))


def parse(text: str) -> Node:
    """Parse a filter expression; raise FilterError (message, expression, position)."""
    return _Parser(text).parse()
