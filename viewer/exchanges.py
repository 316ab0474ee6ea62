"""The viewer's index of exchanges: each client request with every record it owns, and timing.

One pass over the raw records (no JSON parsing: msg_ids and types are peeked)
assigns every record to the request that owns it by the one rule of
recorder/log/owner.py: replies, iopub output and status, stdin (an ``input_reply``
through its ``input_request``, or the prompt open on its client's stdin). Per record it
keeps one int, per request a few, so a million-message log costs a few MB. The
pass can be resumed, so a live log is threaded as it grows. No widget code.
"""

from __future__ import annotations

import functools
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from krec.recorder.log.owner import owner as owner_of
from krec.recorder.wire import peek_field

REQUEST_BYTES = (b"shell", b"control")
_CHANNELS = {c.encode(): c for c in ("shell", "control", "stdin", "iopub")}
_MSG_ID, _MSG_TYPE, _STATUS = b'"msg_id"', b'"msg_type"', b'"status"'
_P = ParamSpec("_P")
_R = TypeVar("_R")

#: reply status codes kept per request
UNKNOWN, OK, ERROR, ABORTED = 0, 1, 2, 3
_STATUS_CODES = {"ok": OK, "error": ERROR, "aborted": ABORTED}


def _locked(
    method: Callable[Concatenate[ExchangeIndex, _P], _R],
) -> Callable[Concatenate[ExchangeIndex, _P], _R]:
    """Run a reader method under the index's lock (a worker may be updating it)."""

    @functools.wraps(method)
    def locked(self: ExchangeIndex, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.lock:
            return method(self, *args, **kwargs)

    return locked


def _frame(raw: dict[bytes, Any], name: bytes) -> bytes:
    value = raw.get(name)
    return value if isinstance(value, bytes) else b""


def _peek(raw: dict[bytes, Any], frame: bytes, key: bytes) -> str:
    return peek_field(_frame(raw, frame), key) or ""


class _Request(NamedTuple):
    """A request as the ownership rule sees it (owner.py), and its number here."""

    index: int
    ch: str
    msg_type: str
    number: int


class ExchangeIndex:
    """Which request every record belongs to, the members of each request, and timings.

    Request ``r`` (numbered in log order) is record ``requests[r]``; ``owner[i]`` is
    the request record ``i`` belongs to, or -1 (events, messages answering a
    request that is not in the log). Times are capture times in ns since the epoch,
    0 when not seen: ``t_request``, ``t_busy`` (the first ``status: busy``),
    ``t_idle`` (the first ``idle`` after it) and ``t_reply``.
    """

    def __init__(self) -> None:
        self.requests = array("q")
        self.owner = array("i")
        self.count = array("i")  # members, not counting the request itself
        self.last = array("q")  # the last member's record index
        self.t_request = array("q")
        self.t_busy = array("q")
        self.t_idle = array("q")
        self.t_reply = array("q")
        self.status = array("b")
        self.done = 0  # records processed
        self._ids: dict[str, list[_Request]] = {}  # msg_id -> the requests with it
        self._prompts: dict[str, _Request] = {}  # input_request msg_id -> its request
        self._open_prompt: dict[tuple[bytes, ...], _Request] = {}  # client -> last prompt
        self._members: OrderedDict[int, tuple[int, array[int]]] = OrderedDict()
        self._row_start = array("q")
        self._dirty_from = 0  # first request whose row_start is stale
        self._durations: tuple[tuple[int, int], list[int]] = ((-1, -1), [])
        #: a worker updates while the UI thread reads: both hold this, briefly
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.requests)

    # -- building ------------------------------------------------------------

    def update(self, raws: Iterable[tuple[int, dict[bytes, Any]]], batch: int = 2048) -> None:
        """Add records in log order, continuing from ``done``.

        ``raws`` are ``(index, map)`` pairs decoded with msgpack ``raw=True`` (bytes
        keys and strings: no UTF-8 decoding, the pass is that much faster).
        """
        it = iter(raws)
        while True:
            with self.lock:
                taken = self._take(it, batch)
            if taken < batch:
                return

    def _take(self, it: Iterator[tuple[int, dict[bytes, Any]]], limit: int) -> int:
        # one loop with everything in locals: this runs once per record of the log
        owner, requests, ids = self.owner, self.requests, self._ids
        count, last, t_busy, t_idle = self.count, self.last, self.t_busy, self.t_idle
        taken = 0
        dirty = self._dirty_from
        for i, raw in it:
            if i != self.done:
                raise ValueError(f"threads expected record {self.done}, got {i}")
            self.done += 1
            taken += 1
            ch = raw.get(b"ch")
            if ch is None:  # an event
                owner.append(-1)
            elif raw.get(b"from") == b"client" and ch in REQUEST_BYTES:
                r = len(requests)
                requests.append(i)
                for a in (count, t_busy, t_idle, self.t_reply, self.status):
                    a.append(0)
                last.append(i)
                self.t_request.append(_t(raw))
                owner.append(r)
                req = _Request(i, _CHANNELS[ch], _peek(raw, b"header", _MSG_TYPE), r)
                ids.setdefault(_peek(raw, b"header", _MSG_ID), []).append(req)
            else:
                found = self._owner(i, ch, raw)
                r = found.number if found is not None else -1
                owner.append(r)
                if r >= 0:
                    count[r] += 1
                    last[r] = i
                    if r < dirty:
                        dirty = r
                    self._answer(r, ch, raw)
            if taken == limit:
                break
        self._dirty_from = dirty
        return taken

    def _owner(self, i: int, ch: bytes, raw: dict[bytes, Any]) -> _Request | None:
        """The request record ``i`` belongs to (owner.py's rule); notes input_requests."""
        parent_id = _peek(raw, b"parent", _MSG_ID)
        channel = _CHANNELS.get(ch, "")
        msg_type = _peek(raw, b"header", _MSG_TYPE)
        if channel == "stdin" and msg_type == "input_reply":
            asked = self._prompts.get(parent_id) if parent_id else None
            who = tuple(raw.get(b"ids") or ())
            found = owner_of(
                [asked] if asked is not None else None,
                index=i,
                ch=channel,
                msg_type=msg_type,
                prompt=self._open_prompt.get(who),
            )
            if asked is None:
                self._open_prompt.pop(who, None)
            return found
        named = self._ids.get(parent_id) if parent_id else None
        if not named:
            return None
        found = owner_of(
            named,
            index=i,
            ch=channel,
            msg_type=msg_type,
            parent_type=_peek(raw, b"parent", _MSG_TYPE) if len(named) > 1 else "",
        )
        if found is not None and channel == "stdin" and msg_type == "input_request":
            # the frontend's input_reply names this as its parent, or nothing at all
            self._prompts[_peek(raw, b"header", _MSG_ID)] = found
            self._open_prompt[tuple(raw.get(b"ids") or ())] = found
        return found

    def _answer(self, r: int, ch: bytes, raw: dict[bytes, Any]) -> None:
        """Note what a message answering request ``r`` says about its timing."""
        msg_type = _peek(raw, b"header", _MSG_TYPE)
        if msg_type == "status":
            content = _frame(raw, b"content")
            if b'"busy"' in content:
                if not self.t_busy[r]:
                    self.t_busy[r] = _t(raw)
            elif b'"idle"' in content and not self.t_idle[r]:
                self.t_idle[r] = _t(raw)
        elif msg_type.endswith("_reply") and ch in REQUEST_BYTES:
            if not self.t_reply[r]:
                self.t_reply[r] = _t(raw)
            status = _peek(raw, b"content", _STATUS)
            self.status[r] = _STATUS_CODES.get(status, UNKNOWN)

    # -- threads -------------------------------------------------------------

    def request_of(self, index: int) -> int:
        """The request record ``index`` belongs to (-1 if none or not threaded yet)."""
        return self.owner[index] if 0 <= index < len(self.owner) else -1

    @_locked
    def members(self, r: int) -> array[int]:
        """Record indexes of request ``r`` and its members, in log order."""
        cached = self._members.get(r)
        if cached is not None and cached[0] == self.count[r]:
            self._members.move_to_end(r)
            return cached[1]
        first, last, owner = self.requests[r], self.last[r], self.owner
        found = array("q", [first])
        found.extend(i for i in range(first + 1, last + 1) if owner[i] == r)
        self._members[r] = (self.count[r], found)
        if len(self._members) > 256:
            self._members.popitem(last=False)
        return found

    # -- the flattened thread list: request r's row, then one row per member --

    def _row_starts(self) -> array[int]:
        starts, n = self._row_start, len(self.requests)
        begin = min(self._dirty_from, len(starts))
        del starts[begin:]
        total = starts[-1] + 1 + self.count[begin - 1] if begin else 0
        count = self.count
        for r in range(begin, n):
            starts.append(total)
            total += 1 + count[r]
        self._dirty_from = n
        return starts

    @_locked
    def row_count(self) -> int:
        """Rows in the flattened list: every request and every member."""
        starts = self._row_starts()
        return starts[-1] + 1 + self.count[-1] if starts else 0

    @_locked
    def locate(self, row: int) -> tuple[int, int]:
        """(request, record index) shown at ``row`` of the flattened list."""
        starts = self._row_starts()
        r = bisect_right(starts, row) - 1
        return r, self.members(r)[row - starts[r]]

    @_locked
    def row_of(self, index: int) -> int:
        """The flattened row of record ``index``, or -1 when it belongs to no request."""
        r = self.request_of(index)
        if r < 0:
            return -1
        starts = self._row_starts()
        members = self.members(r)
        return starts[r] + members.index(index)

    # -- timing --------------------------------------------------------------

    def end(self, r: int) -> int:
        """When request ``r`` was done: its idle, else its reply; 0 if still running."""
        return max(self.t_idle[r], self.t_reply[r])

    def duration(self, r: int) -> int:
        """ns from request to done, -1 when it never finished in the log."""
        end = self.end(r)
        return end - self.t_request[r] if end else -1

    @_locked
    def durations(self) -> list[int]:
        """Every request's duration (ns), -1 for those that never finished; cached until
        the index changes."""
        key = (len(self.requests), self.done)
        if self._durations[0] != key:
            values = [
                (end - start) if (end := max(idle, reply)) else -1
                for start, idle, reply in zip(
                    self.t_request, self.t_idle, self.t_reply, strict=True
                )
            ]
            self._durations = (key, values)
        return self._durations[1]

    def by_duration(self) -> list[int]:
        """Request numbers, slowest first (unfinished ones first of all)."""
        inf = 1 << 62
        keys = [d if d >= 0 else inf for d in self.durations()]
        return sorted(range(len(keys)), key=keys.__getitem__, reverse=True)

    def slow_threshold(self) -> int:
        """A duration above which a request stands out: 4x the median, at least 100 ms."""
        finished = sorted(d for d in self.durations() if d >= 0)
        if not finished:
            return 1 << 62
        return max(4 * finished[len(finished) // 2], 100_000_000)


def _t(raw: dict[bytes, Any]) -> int:
    t = raw.get(b"t")
    return t if isinstance(t, int) else 0
