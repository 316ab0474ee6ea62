"""The filter language of `krec show -f`, `krec export -f` and the viewer's filter bar.

``parse(text)`` gives a tree of Nodes whose ``str()`` is the canonical spelling;
``compile_filter(text)`` gives a Filter with ``matches(record)`` and a fast
``scan(reader, ...)``. Operators are classes registered by name, each carrying
its syntax and help text (``filter_help()`` renders them for ``--help`` and
docs/filter.md). Another module adds an operator by subclassing ``Operator``,
decorating it with ``register`` and naming its module in
``tree.EXTENSION_MODULES`` so it is loaded before the first parse; an operator
that needs the whole log overrides ``prepare(reader)``, called before a scan.
"""

from __future__ import annotations

from krec.recorder.errors import FilterError
from krec.recorder.filter.operators import (
    Channel,
    Event,
    Msg,
    Parent,
    Source,
    Status,
    Subshell,
    Time,
    Type,
    parse_duration,
)
from krec.recorder.filter.parser import parse
from krec.recorder.filter.scan import Filter
from krec.recorder.filter.text import Regex, Text, message_text
from krec.recorder.filter.tree import (
    All,
    And,
    Fields,
    Needle,
    Node,
    Not,
    Operator,
    Or,
    Predicate,
    documented,
    filter_help,
    register,
)

__all__ = [
    "BUILTIN",
    "All",
    "And",
    "Channel",
    "Event",
    "Msg",
    "Parent",
    "Regex",
    "Source",
    "Status",
    "Subshell",
    "Text",
    "Time",
    "Type",
    "Fields",
    "Filter",
    "FilterError",
    "Needle",
    "Node",
    "Not",
    "Operator",
    "Or",
    "Predicate",
    "compile_filter",
    "documented",
    "filter_help",
    "message_text",
    "parse",
    "parse_duration",
    "register",
]


#: the built-in forms, in the order the help lists them
BUILTIN = (Text, Type, Channel, Source, Msg, Parent, Subshell, Status, Event, Regex, Time)
for _cls in BUILTIN:
    register(_cls)


def compile_filter(text: str) -> Filter:
    """Parse ``text`` into a Filter (empty or blank text matches everything)."""
    return Filter(parse(text), text)
