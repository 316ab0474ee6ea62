"""KeyBar: the main keys of a screen on the bottom line; clicking a key does what it does.

A single line of markup rather than Textual's Footer (a widget per key, composed
again whenever the bindings change): it is drawn in the first frame, which
has to be on screen half a second after `krec view` starts.
"""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

#: (key as shown, what it does, action a click runs, e.g. "app.quit"; "" for none)
Key = tuple[str, str, str]


def keys_markup(keys: list[Key]) -> str:
    parts = []
    for key, description, action in keys:
        text = f"[b $footer-key-foreground] {escape(key)} [/]{escape(description)}"
        parts.append(f"[@click={action}]{text}[/]" if action else text)
    return " ".join(parts)


class KeyBar(Static):
    """``keys`` as ``key description`` pairs."""

    def __init__(self, keys: list[Key]) -> None:
        super().__init__(keys_markup(keys))
