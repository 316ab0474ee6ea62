"""LogWriter: appends records to a .krec file, durably, and the file's lock and length.

Writers hand each batch of records to the operating system as soon as their owner
has it (a SIGKILL of krec loses nothing written) and fsync at least every 100 ms
(a machine crash loses at most that). A writer holds an exclusive lock on its file
while it writes (``being_written``); ``complete_length`` is where the last whole
record ends, so an append after a crash starts there.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Sequence
from typing import Any

import msgpack

from krec.recorder.errors import KrecError
from krec.recorder.log import audit, seal
from krec.recorder.log.compat import CURRENT_VERSION
from krec.recorder.log.record import file_unpacker

FSYNC_INTERVAL_NS = 100_000_000
_FLUSH_BYTES = 1 << 20


class LogWriteError(KrecError):
    """The log file cannot be created or written."""


class LogWriter:
    """Appends records to a .krec file. One thread owns a writer; it is not thread-safe.

    Records are packed into a memory buffer; the owner calls ``write_through`` after
    each batch it takes, which writes the buffer (``write(2)``, so the records survive
    a SIGKILL of the process) and fsyncs when the last fsync is 100 ms old (so a
    machine crash loses at most that). A failed write never
    raises into the owner: the records are counted as dropped, ``error`` is set,
    and a ``records_dropped`` event is written once writing works again.

    A log of version 2 is sealed (seal.py): every record written goes through
    ``flush``, which folds it into the log's hash chain and adds the ``seal`` records
    (``seal_key``, else the key file ``$KREC_SEAL_KEY`` names, makes them keyed; ``clock``
    and ``seal_every``/``seal_seconds`` are there for tests). A header with ``audit: true``
    makes an audit log: output payloads are dropped before packing (audit.py).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: dict[str, Any] | None = None,
        *,
        append: bool = False,
        lock_timeout: float = 10.0,
        seal_key: bytes | None = None,
        seal_every: int = seal.SEAL_RECORDS,
        seal_seconds: float = seal.SEAL_SECONDS,
        clock: Any = time.monotonic,
    ) -> None:
        self.path = os.fspath(path)
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self._buf: list[bytes] = []
        self._buf_t: list[int] = []  # each buffered record's t (a seal takes its last one's)
        self._buf_bytes = 0
        self._buf_records = 0
        self._last_sync = time.monotonic_ns()
        self._unsynced = False
        self.records = 0
        self.dropped = 0
        self.error: OSError | None = None
        self._closed = False
        self._chain: seal.Chain | None = None
        self._redact: Any = None
        key = seal_key if seal_key is not None else seal.key_from_env()
        self._chain_args = {"every": seal_every, "seconds": seal_seconds, "clock": clock}
        if append:
            self._fd = self._open_existing(lock_timeout, key)
        else:
            if header is None:
                raise ValueError("a new log needs a header")
            self._fd = self._create(header, key)

    def _start_chain(
        self, header: dict[str, Any], key: bytes | None, header_bytes: bytes, resumed: Any = None
    ) -> None:
        if header.get("audit"):
            self._redact = audit.redact_record
        params = header.get("seal")
        if resumed is not None:
            self._chain = resumed
        elif header.get("version", 1) >= 2 and isinstance(params, dict):
            keyed = key if params.get("key_id") else None
            self._chain = seal.Chain(header_bytes, keyed, **self._chain_args)

    # -- opening -------------------------------------------------------------

    def _create(self, header: dict[str, Any], key: bytes | None) -> int:
        directory = os.path.dirname(self.path) or "."
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise LogWriteError(
                f"{self.path} already exists; krec never overwrites a log"
            ) from None
        except OSError as e:
            raise LogWriteError(f"cannot create log {self.path}: {e.strerror}") from None
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if header.get("version") == CURRENT_VERSION:
            every, seconds = self._chain_args["every"], self._chain_args["seconds"]
            header = {**header, **seal.header_fields(key, every, seconds)}
        data = self._pack(header)
        _write_all(fd, data)
        self._size = len(data)
        self._start_chain(header, key, data)
        return fd

    def _open_existing(self, lock_timeout: float, key: bytes | None) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise LogWriteError(f"cannot open log {self.path} to append: {e.strerror}") from None
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise LogWriteError(
                        f"{self.path} is still being written by another krec"
                    ) from None
                time.sleep(0.05)
        end = complete_length(self.path)
        if end < os.fstat(fd).st_size:
            # a predecessor was killed mid-write: drop the partial record before appending
            os.ftruncate(fd, end)
        os.lseek(fd, end, os.SEEK_SET)
        self._size = end
        header, header_bytes = _read_header_bytes(fd)
        try:
            chain = seal.resume_chain(self.path, end, key, header, header_bytes, self._chain_args)
        except KrecError:
            os.close(fd)
            raise
        self._start_chain(header, key, header_bytes, chain)
        return fd

    # -- writing -------------------------------------------------------------

    def write_message(
        self,
        t: int,
        ch: str,
        source: str,
        ids: Sequence[bytes],
        header: bytes,
        parent: bytes,
        metadata: bytes,
        content: bytes,
        buffers: Sequence[bytes] = (),
    ) -> None:
        """Append one message record; JSON frames are raw bytes exactly as on the wire."""
        record = {
            "t": t,
            "ch": ch,
            "from": source,
            "ids": ids,
            "header": header,
            "parent": parent,
            "metadata": metadata,
            "content": content,
            "buffers": buffers,
        }
        if self._redact is not None:
            record = self._redact(record)
        data = self._pack(record)
        self._buf.append(data)
        self._buf_t.append(t)
        self._buf_bytes += len(data)
        self._buf_records += 1
        if self._buf_bytes >= _FLUSH_BYTES:
            self.flush()

    def write_event(self, event: str, t: int | None = None, **fields: Any) -> None:
        """Append one event record (``t`` defaults to now)."""
        record = {"t": time.time_ns() if t is None else t, "event": event}
        record.update(fields)
        self.write_record(record)

    def write_record(self, record: dict[str, Any]) -> None:
        """Append a record map as it is (e.g. one read from another log); an audit log
        drops its payloads, and a seal copied from another log is not a seal of this one."""
        if self._redact is not None:
            record = self._redact(record)
        if self._chain is not None and record.get("event") == seal.SEAL_EVENT:
            return
        data = self._pack(record)
        self._buf.append(data)
        t = record.get("t")
        self._buf_t.append(t if isinstance(t, int) else 0)
        self._buf_bytes += len(data)
        self._buf_records += 1

    def write_through(self) -> None:
        """Write what is buffered now (with a seal when one is due), and fsync if the
        last fsync is 100 ms old or more."""
        if self._buf or (self._chain is not None and self._chain.time_due()):
            self.flush()
        if self._unsynced and time.monotonic_ns() - self._last_sync >= FSYNC_INTERVAL_NS:
            self.sync()

    def sync(self) -> None:
        """fsync what has been written (errors are left to the next write to report)."""
        self._last_sync = time.monotonic_ns()
        self._unsynced = False
        with contextlib.suppress(OSError):
            os.fsync(self._fd)

    def flush(self, final: bool = False) -> None:
        """Write the buffer to the file (not fsync); on failure count the records as dropped.

        Every record on its way to the file goes through here: the chain folds it, and a
        seal follows when 1,000 records or 5 s are unsealed, and at close (``final``).
        """
        if self._closed:
            return
        chain = self._chain
        if not self._buf and (chain is None or not (final or chain.time_due())):
            return
        if self.error is not None and self.dropped:
            note = self._pack(
                {
                    "t": time.time_ns(),
                    "event": "records_dropped",
                    "count": self.dropped,
                    "error": self.error.strerror or str(self.error),
                }
            )
            self._buf.insert(0, note)
            self._buf_t.insert(0, 0)
        batch = self._buf
        count = self._buf_records
        state = None
        if chain is not None:
            state = chain.snapshot()
            batch = chain.seal_batch(batch, self._buf_t, self._pack)
            if final or chain.time_due():
                batch.append(chain.seal(self._pack, final=final))
        data = b"".join(batch)
        written = len(batch)
        self._buf = []
        self._buf_t = []
        self._buf_bytes = 0
        self._buf_records = 0
        try:
            _write_all(self._fd, data)
        except OSError as e:
            if state is not None:
                assert chain is not None
                chain.restore(state)  # the chain goes on from what the file holds
            self.error = e
            self.dropped += count
            try:  # never leave half a record behind: a reader would stop there
                os.ftruncate(self._fd, self._size)
                os.lseek(self._fd, self._size, os.SEEK_SET)
            except OSError:
                pass
            return
        self._size += len(data)
        self.records += written
        self._unsynced = True
        if self.error is not None:
            self.error = None
            self.dropped = 0

    def file_removed(self) -> bool:
        """True when the log file was unlinked (its directory removed) while open."""
        try:
            return os.fstat(self._fd).st_nlink == 0
        except OSError:
            return True

    def close(self) -> None:
        """Flush, fsync and close; safe to call twice."""
        if self._closed:
            return
        self.flush(final=True)
        self._closed = True
        with contextlib.suppress(OSError):
            os.fsync(self._fd)
        os.close(self._fd)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.EIO, "short write")
        view = view[n:]


def _read_header_bytes(fd: int) -> tuple[dict[str, Any], bytes]:
    """The header map of an open log and its bytes as stored ({} when unreadable)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    data = os.pread(fd, 1 << 16, 0)
    unpacker.feed(data)
    try:
        header = unpacker.unpack()
    except Exception:
        return {}, b""
    return (header if isinstance(header, dict) else {}), data[: unpacker.tell()]


def being_written(path: str) -> bool:
    """True when a krec writer holds the log's lock (the log is still being recorded)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def complete_length(path: str) -> int:
    """Length of the prefix of ``path`` made of whole msgpack objects."""
    with open(path, "rb") as f:
        unpacker = file_unpacker(f)
        end = 0
        while True:
            try:
                unpacker.skip()
            except msgpack.OutOfData:
                return end
            except Exception:
                return end
            end = unpacker.tell()
