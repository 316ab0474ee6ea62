"""The viewer's model of one log: the reader, its growing index and cached row summaries.

No widget code lives here. The LogReader is shared by the UI thread (decoding the
few visible rows) and worker threads (indexing, filtering, threading). It reads
with ``pread``, so single records can be read while the index grows; ``lock``
serializes what grows the index or streams through the file, and closing, so
the file is never closed under a worker.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from krec.recorder.log.oneline import short_id, summarize_event, summarize_message, tone
from krec.recorder.log.reader import LogReader
from krec.recorder.log.record import Record
from krec.recorder.units import format_duration

#: decoded rows kept; a screen shows ~50, scrolling back and forth reuses them
ROW_CACHE = 4096


@dataclass(frozen=True, slots=True)
class Row:
    """What the message list shows for one record."""

    index: int
    t: int  # ns since the recording started
    ch: str
    source: str
    msg_type: str
    parent: str  # the parent's msg_id, shortened
    summary: str
    event: str  # the event name; "" for a message
    subshell: str
    tone: str  # "error", "warning" or ""

    @property
    def is_event(self) -> bool:
        return bool(self.event)


_UNREADABLE = {b"t": 0, b"event": b"unreadable_record"}


def _packed_keys(raw: dict[str, Any]) -> dict[bytes, Any]:
    """A map decoded as text, as msgpack ``raw=True`` would have given it."""
    return {
        (k.encode() if isinstance(k, str) else k): (v.encode() if isinstance(v, str) else v)
        for k, v in raw.items()
    }


def format_rel(ns: int) -> str:
    """A time since the start of the recording: ``12.345`` or ``1:02:03.4`` past an hour."""
    sign = "-" if ns < 0 else ""
    s = abs(ns) / 1e9
    if s < 3600:
        return f"{sign}{s:.3f}"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{sign}{int(h)}:{int(m):02d}:{sec:04.1f}"


def format_duration_short(ns: int) -> str:
    """A duration in at most 7 cells: ``850us``, ``5.7ms``, ``404ms``, ``2.00s``, ``3m12s``."""
    return format_duration(ns, short=True)


def parse_time(text: str) -> float:
    """Seconds from ``12.5``, ``+12.5s``, ``1:02`` or ``1:02:03.5``; ValueError otherwise."""
    s = text.strip().lstrip("+").removesuffix("s").strip()
    if not s:
        raise ValueError("empty time")
    seconds = 0.0
    for part in s.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


class LogModel:
    """A log opened in the viewer: index growth, rows by record index, time lookup."""

    def __init__(self, reader: LogReader) -> None:
        self.reader = reader
        self.path = reader.path
        self.name = os.path.basename(reader.path)
        self.lock = threading.Lock()
        #: the index has reached the end of the file as it was when last checked
        self.complete = False
        self._rows: OrderedDict[int, Row] = OrderedDict()
        self._size = 0
        #: set by close(): workers still running stop at their next step
        self.closed = False

    # -- the index -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self.reader)

    @property
    def header(self) -> dict[str, Any]:
        return self.reader.header

    @property
    def kernel_label(self) -> str:
        kernel = self.header.get("kernel")
        if isinstance(kernel, dict):
            return str(kernel.get("display_name") or kernel.get("name") or "")
        return ""

    @property
    def warnings(self) -> list[str]:
        return list(self.reader.warnings)

    def file_size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except OSError:
            return self._size

    def index_more(self, limit: int) -> bool:
        """Index up to ``limit`` more records (blocking on the lock); False at the end."""
        with self.lock:
            if self.closed:
                return False
            more = self.reader.index_more(limit)
            if not more:
                self.complete = True
                self._size = self.file_size()
            return more

    def grow(self, limit: int = 20_000) -> int:
        """Index records appended since the last look, without waiting: the follow tick.

        Returns how many records were added (0 when the lock is busy, the file has
        not grown, or the first indexing pass is still running).
        """
        if not self.complete or self.closed:
            return 0
        size = self.file_size()
        if size == self._size:
            return 0
        if not self.lock.acquire(blocking=False):
            return 0
        try:
            if self.closed:
                return 0
            before = len(self.reader)
            more = self.reader.index_more(limit)
            if not more:
                self._size = size
            return len(self.reader) - before
        finally:
            self.lock.release()

    # -- records and rows ----------------------------------------------------

    def record(self, index: int) -> Record:
        return self.reader[index]

    def row(self, index: int) -> Row:
        """The summary row of record ``index`` (decoded once, then cached)."""
        rows = self._rows
        row = rows.get(index)
        if row is not None:
            rows.move_to_end(index)
            return row
        row = self.make_row(self.reader[index])
        rows[index] = row
        if len(rows) > ROW_CACHE:
            rows.popitem(last=False)
        return row

    def make_row(self, record: Record) -> Row:
        t = record.t - self.reader.start_ns
        if record.is_event:
            summary = summarize_event(record.fields)
            return Row(
                record.index, t, "", "", "", "", summary, record.event or "?", "", tone(record)
            )
        return Row(
            index=record.index,
            t=t,
            ch=record.ch,
            source=record.source,
            msg_type=record.msg_type,
            parent=short_id(record.parent_id) if record.parent_id else "",
            summary=summarize_message(record.msg_type, record.content),
            event="",
            subshell=record.subshell_id,
            tone=tone(record),
        )

    def rel_time(self, index: int) -> int:
        """ns between the start of the recording and record ``index``."""
        return self.row(index).t

    def find_time(self, rel_ns: int, view: Sequence[int] | None = None) -> int:
        """The position in ``view`` (default: every record) of the first record at or
        after ``rel_ns``; records are in capture order, so this is a binary search."""
        n = len(view) if view is not None else len(self)
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            index = view[mid] if view is not None else mid
            if self.rel_time(index) < rel_ns:
                lo = mid + 1
            else:
                hi = mid
        return min(lo, max(n - 1, 0))

    def iter_packed(
        self, start: int, stop: int, chunk_bytes: int = 4 << 20
    ) -> Iterator[tuple[int, dict[bytes, Any]]]:
        """``(index, map)`` of records ``start``..``stop``, the maps decoded with msgpack
        ``raw=True`` (bytes keys and strings: the fast way for a pass that only peeks),
        a few MB at a time with the lock held per chunk (only for worker threads).

        The index may grow between chunks (indexing runs beside this), never during one.
        """
        reader = self.reader
        pos = start
        while pos < stop:
            with self.lock:
                if self.closed:
                    return
                offsets = reader.offsets
                end = bisect_right(offsets, offsets[pos] + chunk_bytes, pos, stop)
                end = max(end, pos + 1)
                yield from self._packed(pos, end)
            pos = end

    def _packed(self, start: int, stop: int) -> Iterator[tuple[int, dict[bytes, Any]]]:
        reader = self.reader
        i = start
        if reader.upgrade_record is None:
            data = reader.read_span(start, stop)
            unpacker = msgpack.Unpacker(
                raw=True, max_buffer_size=len(data) + 1, strict_map_key=False
            )
            unpacker.feed(data)
            try:
                for raw in unpacker:
                    yield i, raw if isinstance(raw, dict) else _UNREADABLE
                    i += 1
            except Exception:
                pass  # the rest one by one: only the record the decoder rejects is lost
        for k in range(i, stop):
            yield k, _packed_keys(reader.raw_record(k))

    def close(self) -> None:
        """Close the file once the worker holding the lock (if any) has finished its step."""
        with self.lock:
            if not self.closed:
                self.closed = True
                self.reader.close()
