"""The typed messages viewer widgets and workers post; screens and the app handle them.

Widgets never reach into each other: a list says which record is under its
cursor or was chosen, a worker says how far it got, and the screen that owns
them decides what happens next.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

from textual.message import Message

# -- from the lists ------------------------------------------------------------


@dataclass
class RecordHighlighted(Message):
    """The cursor of a list moved onto record ``index``."""

    index: int


@dataclass
class RecordChosen(Message):
    """The user chose record ``index`` (Enter or a double click)."""

    index: int


@dataclass
class RequestChosen(Message):
    """The user chose request number ``request`` (in the timeline)."""

    request: int


@dataclass
class DivergenceHighlighted(Message):
    """The cursor of the replay report moved onto row ``row``."""

    row: int


@dataclass
class TimelineWindow(Message):
    """The timeline's bars now span ``start``..``end`` (ns since the recording started)."""

    start: int
    end: int


# -- from the filter bar -------------------------------------------------------


@dataclass
class FilterSubmitted(Message):
    """The user entered a filter expression ("" clears the filter)."""

    expression: str


@dataclass
class GotoSubmitted(Message):
    """The user asked to go to a time or a record number."""

    target: str


# -- from workers --------------------------------------------------------------


@dataclass
class IndexGrew(Message):
    """The log index now holds ``count`` records; ``complete`` once it reached the end."""

    count: int
    complete: bool


@dataclass
class FilterProgress(Message):
    """Filter scan number ``generation`` has looked at ``done`` of ``total`` records."""

    generation: int
    done: int
    total: int


@dataclass
class FilterDone(Message):
    """Filter scan number ``generation`` finished: ``matches`` are the matching record
    indexes below ``scanned``, found in ``seconds``."""

    generation: int
    matches: array[int]
    scanned: int
    seconds: float


@dataclass
class ExchangesProgress(Message):
    """Threading has gone through ``done`` of ``total`` records."""

    done: int
    total: int


@dataclass
class ExchangesReady(Message):
    """The thread index covers every record indexed so far."""

    count: int


@dataclass
class ChecksProgress(Message):
    """`krec check` rules have gone through ``done`` of ``total`` records."""

    done: int
    total: int


@dataclass
class ChecksDone(Message):
    """The check of the first ``checked`` records found ``findings`` (or failed: ``error``)."""

    findings: list[Any]
    checked: int
    error: str = ""


@dataclass
class ReplayProgress(Message):
    """A replay has completed ``done`` of ``total`` requests."""

    done: int
    total: int


@dataclass
class ReplayFinished(Message):
    """A replay ended: ``result`` is the replay's result, or ``error`` says why it failed."""

    result: Any
    error: str = ""
