"""Which request owns a record: the one rule the exchange model, the viewer and check share.

A message belongs to the request its parent header names. msg_ids repeat in real
logs: jupyter_client's manager and its clients share a session id but count messages
separately, so the manager's shutdown_request can reuse the id of a client's first
request. The parent's msg_type and the channel tell such requests apart; among equals
the latest request logged before the record wins, else the latest (output can be
logged before its request: they come on different sockets). An input_reply answers an
input_request, not a request: it belongs to that prompt's request and, when its parent
is empty (jupyter_client sends those), to the prompt open on that client's stdin. The
callers look the candidates up (each keeps its own tables); the rule is only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class Candidate(Protocol):
    """What the rule reads of a request: where it is in the log, its channel and type."""

    @property
    def index(self) -> int: ...

    @property
    def ch(self) -> str: ...

    @property
    def msg_type(self) -> str: ...


R = TypeVar("R", bound=Candidate)


def owner(
    named: Sequence[R] | None,
    *,
    index: int,
    ch: str,
    msg_type: str,
    parent_type: str = "",
    prompt: R | None = None,
    waiting: R | None = None,
) -> R | None:
    """The request a message record (not a request itself) belongs to, or None.

    ``named``: the requests whose msg_id is the record's parent msg_id, in log order;
    for an input_reply, the requests of the input_requests with that msg_id. ``index``,
    ``ch``, ``msg_type`` and ``parent_type`` are the record's (``parent_type`` is needed
    only when ``named`` has several). ``prompt``: for an input_reply, the request of the
    input_request still open on that client's stdin. ``waiting``: for a reply whose
    parent names no request, the request it answers by order (the oldest one from that
    client on that channel awaiting this reply type) when the caller tracks it.
    """
    if ch == "stdin" and msg_type == "input_reply":
        return named[-1] if named else prompt
    if not named:
        return waiting
    if len(named) == 1:
        return named[0]
    fitting = [e for e in named if not parent_type or e.msg_type == parent_type]
    if msg_type.endswith("_reply") and ch != "iopub":
        fitting = [e for e in fitting if e.ch == ch] or fitting
    before = [e for e in fitting or named if e.index < index]
    return (before or fitting or named)[-1]
