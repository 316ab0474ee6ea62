"""LogReader: random access to the records of a .krec file through an offset index.

The index is built in one pass without decoding record bodies, can be built in
steps (a viewer's worker) and extended as a live log grows; a truncated last
record or corrupt data ends it with a warning, every complete record before stays
readable. Records decode to ``Record`` (record.py), upgraded from older format
versions by compat.py.
"""

from __future__ import annotations

import array
import bisect
import os
import pickle
import stat
import subprocess
from collections.abc import Iterator
from typing import Any, overload

import msgpack

from krec.recorder.errors import LogFormatError
from krec.recorder.log.compat import check_header, record_upgrader, upgrade_header
from krec.recorder.log.record import MAX_RECORD, Record, decode_record, file_unpacker, unreadable

_READ_CHUNK = 4 << 20
#: logs with this many bytes to read get a helper process for their second half (filter
#: scans, stats, show); below it, a helper's start-up (~0.3 s) costs more than it saves
HELPER_BYTES = 128 << 20


class LogReader:
    """Random access to the records of a .krec file through an offset index.

    ``LogReader(path)`` reads the header and indexes the whole file (one pass with
    no record decoded). ``LogReader(path, index=False)`` indexes nothing yet: call
    ``index_more`` in steps (a viewer does this in a worker). ``refresh`` indexes
    records appended since, so a reader can follow a live log. Problems found
    (a truncated last record, corrupt data) are in ``warnings``; every complete
    record before them stays readable. Records are read with ``pread``, so several
    threads may read one reader while one of them extends the index.
    """

    def __init__(self, path: str | os.PathLike[str], *, index: bool = True) -> None:
        self.path = os.fspath(path)
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError:
            raise LogFormatError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise LogFormatError(f"{self.path}: is a directory, not a krec log") from None
        except OSError as e:
            raise LogFormatError(f"{self.path}: cannot open: {e.strerror}") from None
        self._fd = self._file.fileno()
        self.offsets = array.array("Q")
        self.warnings: list[str] = []
        self._end = 0  # end of the last complete record indexed
        self._corrupt_at: int | None = None
        try:
            self.header = self._read_header()
        except BaseException:
            self._file.close()
            raise
        created = self.header.get("created", 0)
        self.start_ns = int(created * 1e9) if isinstance(created, (int, float)) else 0
        if index:
            while self.index_more():
                pass

    @classmethod
    def part(cls, path: str, offsets: bytes, end: int) -> LogReader:
        """A reader of some of a log's records, indexed by another process: ``offsets``
        (uint64, native order) are where they start and ``end`` where the last one ends.
        Record ``i`` of this reader is the ``i``-th of them (helper processes use this)."""
        reader = cls(path, index=False)
        reader.offsets = array.array("Q")
        reader.offsets.frombytes(offsets)
        reader._end = end
        return reader

    def _read_header(self) -> dict[str, Any]:
        if not stat.S_ISREG(os.fstat(self._fd).st_mode):
            raise LogFormatError(f"{self.path}: not a regular file, not a krec log")
        unpacker = file_unpacker(self._file)
        try:
            raw = unpacker.unpack()
        except msgpack.OutOfData:
            size = os.fstat(self._fd).st_size
            if size == 0:
                raise LogFormatError(f"{self.path}: empty file, not a krec log") from None
            if b"krec" in os.pread(self._fd, 4096, 0):
                raise LogFormatError(f"{self.path}: truncated krec header") from None
            raise LogFormatError(f"{self.path}: not a krec log (no krec header)") from None
        except Exception:
            raise LogFormatError(f"{self.path}: not a krec log (no krec header)") from None
        self.version = check_header(raw, self.path)
        #: upgrades a record read from an older format version; None when current
        self.upgrade_record = record_upgrader(self.version)
        self._end = unpacker.tell()
        self._data_start = self._end
        return upgrade_header(raw, self.version)

    # -- indexing ------------------------------------------------------------

    def index_more(self, limit: int = 200_000) -> bool:
        """Index up to ``limit`` more records; return False when the end is reached."""
        if self._corrupt_at is not None:
            return False
        self._file.seek(self._end)
        unpacker = file_unpacker(self._file)
        skip, tell, append = unpacker.skip, unpacker.tell, self.offsets.append
        base = end = self._end
        try:
            for _ in range(limit):  # the hot loop of indexing: locals only
                skip()
                append(end)
                end = base + tell()
        except msgpack.OutOfData:
            self._end = end
            self._note_tail()
            return False
        except Exception:
            self._end = self._corrupt_at = end
            self.warnings.append(
                f"corrupt data at byte {end}: {len(self.offsets)} records before it are "
                "readable, the rest of the file is ignored"
            )
            return False
        self._end = end
        return True

    def _note_tail(self) -> None:
        size = os.fstat(self._fd).st_size
        tail = size - self._end
        self.warnings = [w for w in self.warnings if not w.startswith("truncated last record")]
        if tail > 0:
            self.warnings.append(
                f"truncated last record: {tail} bytes at the end of the file are ignored"
            )

    def refresh(self) -> int:
        """Index records appended since the last call; return how many were added."""
        before = len(self.offsets)
        while self.index_more():
            pass
        return len(self.offsets) - before

    @property
    def truncated(self) -> bool:
        return any(w.startswith("truncated") for w in self.warnings)

    @property
    def indexed_bytes(self) -> int:
        """File offset where the indexed records end (progress of indexing)."""
        return self._end

    # -- access --------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.offsets)

    def record_end(self, i: int) -> int:
        """File offset just past record ``i``."""
        return self.offsets[i + 1] if i + 1 < len(self.offsets) else self._end

    def span_bytes(self, start: int, stop: int) -> int:
        """How many bytes records ``start``..``stop`` (exclusive, non-empty) take."""
        return self.record_end(stop - 1) - self.offsets[start]

    def unindexed_bytes(self) -> int:
        """How many bytes of the file are not indexed yet."""
        return os.fstat(self._fd).st_size - self._end

    def read_span(self, start: int, stop: int) -> bytes:
        """The msgpack bytes of records ``start``..``stop`` (exclusive), as stored."""
        if start >= stop:
            return b""
        first = self.offsets[start]
        return os.pread(self._fd, self.record_end(stop - 1) - first, first)

    def decode(self, data: bytes | memoryview) -> dict[str, Any]:
        """Decode one record's msgpack bytes (upgraded; unreadable ones become an event)."""
        raw = decode_record(data)
        if self.upgrade_record is not None:
            raw = self.upgrade_record(raw)
        return raw

    def raw_record(self, i: int) -> dict[str, Any]:
        """The decoded msgpack map of record ``i`` (upgraded to the current version)."""
        return self.decode(self.read_span(i, i + 1))

    @overload
    def __getitem__(self, i: int) -> Record: ...

    @overload
    def __getitem__(self, i: slice) -> list[Record]: ...

    def __getitem__(self, i: int | slice) -> Record | list[Record]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step == 1:
                return list(self.records(start, max(start, stop)))
            return [self[j] for j in range(start, stop, step)]
        n = len(self.offsets)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"record {i} out of range (log has {n})")
        return Record(i, self.raw_record(i))

    def __iter__(self) -> Iterator[Record]:
        return self.records()

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[Record]:
        """Iterate records ``start``..``stop`` with one streaming decoder (fast)."""
        for i, raw in self.raw_records(start, stop):
            yield Record(i, raw)

    def raw_records(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Iterate ``(index, raw map)`` pairs; the fastest way through a big log."""
        n = len(self.offsets)
        stop = n if stop is None else min(stop, n)
        i = max(start, 0)
        while i < stop:
            # a chunk of whole records, at least one
            limit = self.offsets[i] + _READ_CHUNK
            last = min(stop, bisect.bisect_right(self.offsets, limit, i))
            last = max(last, i + 1)
            data = self.read_span(i, last)
            unpacker = msgpack.Unpacker(
                raw=False,
                max_buffer_size=MAX_RECORD,
                strict_map_key=False,
                unicode_errors="replace",
            )
            unpacker.feed(data)
            upgrade = self.upgrade_record
            try:
                for raw in unpacker:
                    if not isinstance(raw, dict):
                        raw = unreadable(f"a {type(raw).__name__}, not a map")
                    if upgrade is not None:
                        raw = upgrade(raw)
                    yield i, raw
                    i += 1
            except Exception:
                # one record the streaming decoder rejects (e.g. a map as a map key):
                # report it alone and resume with the next one
                yield i, self.raw_record(i)
                i += 1
                continue
            if i < last:  # the file shrank under us
                return

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def helper_result(process: subprocess.Popen[bytes], timeout: float = 60.0) -> Any | None:
    """What a helper process (a reader of part of a log, see ``LogReader.part``) pickled
    to its stdout, once it has exited; None when it failed or timed out (the caller then
    does the work itself)."""
    assert process.stdout is not None
    try:
        data = process.stdout.read()
        code = process.wait(timeout)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()
        process.wait()
        return None
    finally:
        process.stdout.close()
    if code != 0:
        return None
    try:
        return pickle.loads(data)
    except Exception:
        return None


def helper_pays_off(nbytes: int) -> bool:
    """Whether a helper process should take a share of ``nbytes`` of a log: that many are
    at least HELPER_BYTES, there is a second core, and KREC_SCAN_SINGLE is not set."""
    return (
        nbytes >= HELPER_BYTES
        and (os.cpu_count() or 1) >= 2
        and not os.environ.get("KREC_SCAN_SINGLE")
    )
