"""Threads: each client request with every record whose parent it is, and its timing.

One pass over the raw records (no JSON parsing: msg_ids and types are peeked)
assigns every record to the request it answers: replies, iopub output and
status, stdin (an ``input_reply`` through its ``input_request``). Per record it
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
from typing import Any, Concatenate, ParamSpec, TypeVar

REQUEST_BYTES = (b"shell", b"control")
_P = ParamSpec("_P")
_R = TypeVar("_R")

#: reply status codes kept per request
UNKNOWN, OK, ERROR, ABORTED = 0, 1, 2, 3
_STATUS_CODES = {b"ok": OK, b"error": ERROR, b"aborted": ABORTED}


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


def json_value(frame: bytes, key: bytes) -> bytes:
    """The string value of ``key`` (quoted, e.g. ``b'"msg_id"'``) in a JSON object's bytes,
    found without parsing the JSON (b"" when absent or not a string)."""
    i = frame.find(key)
    if i < 0:
        return b""
    colon = frame.find(b":", i + len(key))
    if colon < 0:
        return b""
    start = colon + 1
    while start < len(frame) and frame[start] in b" \t\r\n":
        start += 1
    if frame[start : start + 1] != b'"':
        return b""
    end = frame.find(b'"', start + 1)
    return frame[start + 1 : end] if end > 0 else b""


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
        self._ids: dict[bytes, int] = {}
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
                ids[json_value(_frame(raw, b"header"), b'"msg_id"')] = r
            else:
                parent_id = json_value(_frame(raw, b"parent"), b'"msg_id"')
                r = ids.get(parent_id, -1) if parent_id else -1
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

    def _answer(self, r: int, ch: bytes, raw: dict[bytes, Any]) -> None:
        """Note what a message answering request ``r`` says about its timing."""
        msg_type = json_value(_frame(raw, b"header"), b'"msg_type"')
        if msg_type == b"status":
            content = _frame(raw, b"content")
            if b'"busy"' in content:
                if not self.t_busy[r]:
                    self.t_busy[r] = _t(raw)
            elif b'"idle"' in content and not self.t_idle[r]:
                self.t_idle[r] = _t(raw)
        elif msg_type.endswith(b"_reply") and ch in REQUEST_BYTES:
            if not self.t_reply[r]:
                self.t_reply[r] = _t(raw)
            status = json_value(_frame(raw, b"content"), b'"status"')
            self.status[r] = _STATUS_CODES.get(status, UNKNOWN)
        elif msg_type == b"input_request":
            # the frontend's input_reply names this as its parent
            self._ids[json_value(_frame(raw, b"header"), b'"msg_id"')] = r

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
