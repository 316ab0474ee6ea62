"""DetailView: one record in full, its readable texts beside its JSON as a foldable tree.

The left side shows what a person reads: code (syntax highlighted), stream
text, text/plain, tracebacks with their ANSI colours, notes on images and
buffers, and any check findings. The right side is a Tree of the header,
parent header, metadata and content (or an event's fields), values highlighted,
big strings and arrays cut so a huge message cannot stall the screen.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.highlighter import ReprHighlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from krec.viewer.detail import Detail

MAX_TEXT = 20_000
MAX_CHILDREN = 100
MAX_VALUE = 200
#: expand the content section fully when it has at most this many nodes
EXPAND_NODES = 60

_highlight = ReprHighlighter()


class JsonTree(Tree[object]):
    """JSON sections as a tree: objects and arrays fold, values are highlighted."""

    def show(self, sections: list[tuple[str, Any]]) -> None:
        self.clear()
        self.root.expand()
        for name, data in sections:
            node = self.root.add(Text(name, style="bold"), expand=name in EXPANDED)
            _add_children(node, data)
            if name == "content" and _size(data) <= EXPAND_NODES:
                node.expand_all()
        self.cursor_line = 0
        self.scroll_home(animate=False)


EXPANDED = frozenset({"header", "content", "event"})


def _size(data: Any, limit: int = EXPAND_NODES + 1) -> int:
    if isinstance(data, dict):
        values: Any = data.values()
    elif isinstance(data, list):
        values = data
    else:
        return 1
    total = 1
    for value in values:
        total += _size(value, limit)
        if total > limit:
            break
    return total


def _value_label(key: str, value: Any) -> Text:
    if isinstance(value, str):
        body = Text(json.dumps(value[:MAX_VALUE], ensure_ascii=False))
        if len(value) > MAX_VALUE:
            body.append(f" ({len(value):,} chars)", style="dim")
    else:
        body = Text(_json_scalar(value))
    _highlight.highlight(body)
    label = Text(f"{key}: ", style="bold") if key else Text()
    label.append_text(body)
    return label


def _json_scalar(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _add_children(node: TreeNode[object], data: Any) -> None:
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in data.items()]
        node.set_label(node.label + Text(f" {{{len(data)}}}", style="dim"))
    elif isinstance(data, list):
        items = [(f"[{i}]", v) for i, v in enumerate(data)]
        node.set_label(node.label + Text(f" [{len(data)}]", style="dim"))
    else:
        node.add_leaf(_value_label("", data))
        return
    for key, value in items[:MAX_CHILDREN]:
        if isinstance(value, (dict, list)) and value:
            child = node.add(Text(key, style="bold"))
            _add_children(child, value)
        else:
            node.add_leaf(_value_label(key, value))
    if len(items) > MAX_CHILDREN:
        node.add_leaf(Text(f"… {len(items) - MAX_CHILDREN:,} more", style="dim"))


class DetailView(Horizontal):
    """The detail pane: readable texts on the left, the JSON tree on the right."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-texts"):
            yield Static(id="detail-body")
        yield JsonTree("message", id="detail-json")

    def on_mount(self) -> None:
        tree = self.query_one(JsonTree)
        tree.show_root = False
        tree.guide_depth = 2

    def show(self, detail: Detail, language: str = "python") -> None:
        """Show ``detail``; ``language`` highlights code."""
        self.query_one("#detail-body", Static).update(render_body(detail, language))
        self.query_one("#detail-texts", VerticalScroll).scroll_home(animate=False)
        self.query_one(JsonTree).show(detail.sections)


def render_body(detail: Detail, language: str) -> RenderableType:
    """The left side of the detail pane as one renderable."""
    parts: list[RenderableType] = [Text(detail.title, style="bold")]
    for finding in detail.findings:
        parts.append(Text(f"⚠ {finding}", style="bold red"))
    for note in detail.notes:
        parts.append(Text(f"• {note}", style="italic"))
    for piece in detail.texts:
        text = piece.text
        cut = len(text) - MAX_TEXT
        if cut > 0:
            text = text[:MAX_TEXT]
        parts.append(Text(f"\n{piece.label}", style="bold underline"))
        if piece.kind == "code":
            from rich.syntax import Syntax  # pygments is slow to import: only when needed

            parts.append(Syntax(text or " ", language or "text", theme="ansi_dark", word_wrap=True))
        elif piece.kind == "ansi":
            parts.append(Text.from_ansi(text))
        else:
            parts.append(Text(text))
        if cut > 0:
            parts.append(Text(f"… {cut:,} more characters (copy the JSON with c)", style="dim"))
    return Group(*parts)
