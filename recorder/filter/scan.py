"""A compiled filter, and the fast scan of a log for the records it matches.

``Filter.scan`` reads the log in chunks of a few MB and picks, chunk by chunk,
the cheaper of two ways: *sparse*, when the filter has a needle (byte strings a
matching record must contain) and it occurs in few records: find it with
``bytes.find`` and decode only the records it lands in; or *dense*: decode every
record with msgpack (``raw=True``, no str objects) and run the predicate, which
rules most records out with a substring test before any JSON is parsed.
"""

from __future__ import annotations

import array
import bisect
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack

from .tree import RAW_FIELDS, STR_FIELDS, All, Needle, Node, Predicate

if TYPE_CHECKING:
    from krec.recorder.logfile import LogReader, Record

CHUNK_BYTES = 4 << 20
#: a sparse chunk gives up (and the next chunk goes dense) past this share of candidates
_SPARSE_LIMIT = 0.25
#: a dense chunk matching less than this share tries sparse again on the next chunk
_RETRY_SPARSE = 0.05
_UNREADABLE_RAW = {b"t": 0, b"event": b"unreadable_record"}
_UNREADABLE = {"t": 0, "event": "unreadable_record"}


class Filter:
    """A parsed filter ready to match records (``matches``) or scan a log (``scan``)."""

    def __init__(self, tree: Node, text: str = "") -> None:
        self.tree = tree
        self.text = text
        self._preds: dict[bool, Predicate] = {}
        self._prepared: tuple[weakref.ref[LogReader], int] | None = None

    def __str__(self) -> str:
        return str(self.tree)

    def __repr__(self) -> str:
        return f"<Filter {str(self.tree)!r}>"

    @property
    def matches_all(self) -> bool:
        return isinstance(self.tree, All)

    def prepare(self, reader: LogReader) -> None:
        """Give operators that need it the log (its start time, whole-log analyses).

        ``scan`` calls this itself; call it before ``matches`` when the filter may hold
        a time comparison or an operator that reads the whole log. Preparing again for
        the same reader at the same length does nothing.
        """
        if self._prepared is not None:
            ref, length = self._prepared
            if ref() is reader and length == len(reader):
                return
        self.tree.prepare(reader)
        self._preds.clear()
        self._prepared = (weakref.ref(reader), len(reader))

    def predicate(self, raw: bool) -> Predicate:
        """The compiled predicate over maps decoded with ``raw=True`` (bytes keys) or not."""
        pred = self._preds.get(raw)
        if pred is None:
            pred = self._preds[raw] = self.tree.compile(RAW_FIELDS if raw else STR_FIELDS)
        return pred

    def matches(self, record: Record) -> bool:
        return self.predicate(raw=False)(record.index, record.raw)

    def scan(
        self,
        reader: LogReader,
        start: int = 0,
        stop: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
        *,
        _strategy: str = "auto",
    ) -> array.array[int]:
        """Indexes of the records in ``start``..``stop`` (of those indexed) that match.

        ``progress(done, total)`` is called after each chunk of a few MB; when
        ``cancel`` is set the scan stops and returns what it found so far.
        """
        n = len(reader)
        stop = n if stop is None else min(stop, n)
        start = max(start, 0)
        out: array.array[int] = array.array("Q")
        total = max(stop - start, 0)
        if self.matches_all:
            out.extend(range(start, stop))
            if progress is not None:
                progress(total, total)
            return out
        self.prepare(reader)
        raw = reader.upgrade_record is None
        pred = self.predicate(raw)
        needle = self.tree.needle() if raw and _strategy != "dense" else None
        sparse = needle is not None
        offsets = reader.offsets
        i = start
        while i < stop:
            if cancel is not None and cancel.is_set():
                break
            limit = offsets[i] + CHUNK_BYTES
            j = max(i + 1, bisect.bisect_right(offsets, limit, i, stop))
            data = reader.read_span(i, j)
            if sparse and needle is not None:
                if not _scan_sparse(data, i, j, offsets, needle, pred, out):
                    _scan_dense(reader, data, i, pred, raw, out)
                    sparse = _strategy == "sparse"
            else:
                before = len(out)
                _scan_dense(reader, data, i, pred, raw, out)
                if needle is not None and len(out) - before < (j - i) * _RETRY_SPARSE:
                    sparse = True
            i = j
            if progress is not None:
                progress(i - start, total)
        return out


def _scan_dense(
    reader: LogReader, data: bytes, first: int, pred: Predicate, raw: bool, out: array.array[int]
) -> None:
    # tuples for ids and buffers are a little cheaper to build than lists; nothing reads them
    unpacker = msgpack.Unpacker(
        raw=raw,
        use_list=not raw,
        max_buffer_size=len(data) + 1,
        strict_map_key=False,
        unicode_errors="replace",
    )
    unpacker.feed(data)
    append = out.append
    i = first - 1  # the last record handled
    upgrade = None if raw else reader.upgrade_record
    unreadable = _UNREADABLE_RAW if raw else _UNREADABLE
    try:
        if upgrade is None:  # the hot loop: keep it bare
            for i, d in enumerate(unpacker, first):
                if pred(i, d if d.__class__ is dict else unreadable):
                    append(i)
        else:
            for i, d in enumerate(unpacker, first):
                if pred(i, upgrade(d) if d.__class__ is dict else unreadable):
                    append(i)
    except (ValueError, TypeError, msgpack.UnpackException):
        # a record the streaming decoder rejects (a map as a map key...): decode the
        # rest one by one, so only that record reads as unreadable
        end = first + _count(reader, first, data)
        for k in range(i + 1, end):
            d = _decode_one(reader, k, raw)
            if pred(k, d):
                append(k)


def _count(reader: LogReader, first: int, data: bytes) -> int:
    stop_at = reader.offsets[first] + len(data)
    return bisect.bisect_left(reader.offsets, stop_at, first) - first


def _decode_one(reader: LogReader, i: int, raw: bool) -> dict[Any, Any]:
    if not raw:
        return reader.raw_record(i)
    try:
        d = msgpack.unpackb(
            reader.read_span(i, i + 1), raw=True, use_list=False, strict_map_key=False
        )
    except Exception:
        return _UNREADABLE_RAW
    return d if isinstance(d, dict) else _UNREADABLE_RAW


def _scan_sparse(
    data: bytes,
    first: int,
    stop: int,
    offsets: array.array[int],
    needle: Needle,
    pred: Predicate,
    out: array.array[int],
) -> bool:
    """Decode only the records holding the needle; False (nothing added) if too many do."""
    base = offsets[first]
    limit = max(16, int((stop - first) * _SPARSE_LIMIT))
    lowered: bytes | None = None
    found: set[int] = set()
    for literal, ignore_case in needle:
        if ignore_case:
            if lowered is None:
                lowered = data.lower()
            hay = lowered
        else:
            hay = data
        pos = hay.find(literal)
        while pos >= 0:
            k = bisect.bisect_right(offsets, base + pos, first, stop) - 1
            found.add(k)
            if len(found) > limit:
                return False
            # the next record: one hit per record is enough
            pos = hay.find(literal, offsets[k + 1] - base) if k + 1 < stop else -1
    view = memoryview(data)
    for k in sorted(found):
        end = offsets[k + 1] - base if k + 1 < stop else len(data)
        try:
            d = msgpack.unpackb(
                view[offsets[k] - base : end], raw=True, use_list=False, strict_map_key=False
            )
        except Exception:
            d = _UNREADABLE_RAW
        if d.__class__ is not dict:
            d = _UNREADABLE_RAW
        if pred(k, d):
            out.append(k)
    return True
