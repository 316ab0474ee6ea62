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
import contextlib
import os
import pickle
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack

from krec.recorder.filter.tree import RAW_FIELDS, STR_FIELDS, All, Needle, Node, Predicate
from krec.recorder.log import reader as log_reader

if TYPE_CHECKING:
    from krec.recorder.log.reader import LogReader
    from krec.recorder.log.record import Record

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
        helper = None
        stop_here = stop
        if raw and _strategy == "auto" and _worth_a_helper(reader, start, stop):
            # decoding is CPU-bound and the machine has a second core: a helper process
            # scans the second half while this one scans the first
            mid = start + (stop - start) // 2
            helper = _Helper.start(reader, self.tree, mid, stop)
            if helper is not None:
                stop_here = mid

        def report(done: int) -> None:
            if progress is not None:
                share = (stop_here - start) or 1
                progress(min(total, done * total // share), total)

        try:
            _scan_range(
                reader,
                start,
                stop_here,
                self.predicate(raw),
                self.tree.needle() if raw and _strategy != "dense" else None,
                raw,
                _strategy,
                report,
                cancel,
                out,
            )
            if helper is not None:
                if cancel is not None and cancel.is_set():
                    helper.stop()
                else:
                    rest = helper.result()
                    if rest is None:  # the helper failed: do its half here
                        rest = array.array("Q")
                        _scan_range(
                            reader,
                            stop_here,
                            stop,
                            self.predicate(raw),
                            self.tree.needle(),
                            raw,
                            _strategy,
                            None,
                            cancel,
                            rest,
                        )
                    out.extend(rest)
        finally:
            if helper is not None:
                helper.stop()
        if progress is not None and not (cancel is not None and cancel.is_set()):
            progress(total, total)
        return out


def _scan_range(
    reader: Any,
    start: int,
    stop: int,
    pred: Predicate,
    needle: Needle | None,
    raw: bool,
    strategy: str,
    report: Callable[[int], None] | None,
    cancel: threading.Event | None,
    out: array.array[int],
) -> None:
    """Scan records ``start``..``stop`` chunk by chunk (sparse or dense, see the module)."""
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
                sparse = strategy == "sparse"
        else:
            before = len(out)
            _scan_dense(reader, data, i, pred, raw, out)
            if needle is not None and len(out) - before < (j - i) * _RETRY_SPARSE:
                sparse = True
        i = j
        if report is not None:
            report(i - start)


# -- a second process for big scans ---------------------------------------------------


def _worth_a_helper(reader: Any, start: int, stop: int) -> bool:
    return stop - start >= 2 and log_reader.helper_pays_off(reader.span_bytes(start, stop))


class _Part:
    """What a helper needs of a LogReader: the offsets of its records, and pread."""

    upgrade_record = None

    def __init__(self, path: str, offsets: array.array[int], end: int) -> None:
        self.offsets = offsets
        self._end = end
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def record_end(self, i: int) -> int:
        return self.offsets[i + 1] if i + 1 < len(self.offsets) else self._end

    def read_span(self, start: int, stop: int) -> bytes:
        first = self.offsets[start]
        return os.pread(self._fd, self.record_end(stop - 1) - first, first)


def scan_part(
    path: str, lo: int, offsets: array.array[int], end: int, tree: Node
) -> array.array[int]:
    """Scan the records ``lo``.. described by their offsets (in a helper process)."""
    part = _Part(path, offsets, end)
    out: array.array[int] = array.array("Q")
    local = Filter(tree).predicate(True)

    def pred(i: int, d: dict[Any, Any]) -> bool:
        return local(lo + i, d)  # operators such as check: know records by their index

    _scan_range(part, 0, len(offsets), pred, tree.needle(), True, "auto", None, None, out)
    return array.array("Q", [lo + k for k in out])


class _Helper:
    """A helper process scanning records ``lo``..``hi`` of a log (see helper.py)."""

    def __init__(self, process: subprocess.Popen[bytes], feeder: threading.Thread) -> None:
        self._process = process
        self._feeder = feeder

    @classmethod
    def start(cls, reader: Any, tree: Node, lo: int, hi: int) -> _Helper | None:
        try:
            job = pickle.dumps(
                (reader.path, lo, reader.offsets[lo:hi].tobytes(), reader.record_end(hi - 1), tree)
            )
            process = subprocess.Popen(
                [sys.executable, "-m", "krec.recorder.filter.helper"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except Exception:  # no second process (a sandbox, an unpicklable operator): scan here
            return None

        def feed() -> None:
            assert process.stdin is not None
            with contextlib.suppress(OSError):
                process.stdin.write(job)
                process.stdin.close()

        feeder = threading.Thread(target=feed, name="krec-scan-feed", daemon=True)
        feeder.start()
        return cls(process, feeder)

    def result(self) -> array.array[int] | None:
        assert self._process.stdout is not None
        try:
            data = self._process.stdout.read()
            code = self._process.wait(60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if code != 0 or len(data) % 8:
            return None
        found: array.array[int] = array.array("Q")
        found.frombytes(data)
        return found

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(10)
        self._feeder.join(10)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


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
