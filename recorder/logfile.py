"""The .krec log: LogWriter appends records, LogReader indexes and decodes them lazily.

A log is a stream of msgpack objects: one header map, then one map per record
(a message or an event). docs/format.md is the specification; this module is its
reference implementation. Writers hand each batch of records to the operating system
as soon as their owner has it (a SIGKILL of krec loses nothing written) and fsync at
least every 100 ms (a machine crash loses at most that); readers
build an offset index in one pass without decoding record bodies, tolerate a
truncated last record, and can follow a log that is still being written.
"""

from __future__ import annotations

import array
import bisect
import contextlib
import errno
import fcntl
import json
import os
import re
import socket
import stat
import time
from collections.abc import Iterator, Sequence
from typing import Any, overload

import msgpack
import orjson

from krec.recorder import __version__
from krec.recorder.errors import KrecError, LogFormatError
from krec.recorder.log import audit, seal
from krec.recorder.log.compat import (
    CURRENT_VERSION,
    FORMAT_NAME,
    check_header,
    record_upgrader,
    upgrade_header,
)

CHANNELS = ("shell", "control", "stdin", "iopub")
SOURCES = ("client", "kernel", "krec")
FSYNC_INTERVAL_NS = 100_000_000
_FLUSH_BYTES = 1 << 20
_MAX_RECORD = (1 << 31) - 1


class LogWriteError(KrecError):
    """The log file cannot be created or written."""


def make_header(
    kernel: dict[str, Any] | None = None,
    connection: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A header map of the current version. ``connection`` must never carry the key (it is
    dropped here); ``audit=True`` (or ``$KREC_AUDIT``) makes an audit log."""
    conn = {k: v for k, v in (connection or {}).items() if k in _CONNECTION_FIELDS}
    header: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": CURRENT_VERSION,
        "created": time.time(),
        "krec_version": __version__,
        "kernel": dict(kernel or {}),
        "connection": conn,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **recording_user(),
        **audit.header_fields(),
    }
    header.update(extra)
    return header


def recording_user() -> dict[str, str]:
    """Who the recording runs as: ``user`` (the OS user) and, if set, ``jupyterhub_user``."""
    import getpass

    try:
        user = {"user": getpass.getuser()}
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = {"user": str(os.getuid())}
    hub = os.environ.get("JUPYTERHUB_USER")
    if hub:
        user["jupyterhub_user"] = hub
    return user


_CONNECTION_FIELDS = ("transport", "ip", "signature_scheme", "encryption")


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
        unpacker = _unpacker(f)
        end = 0
        while True:
            try:
                unpacker.skip()
            except msgpack.OutOfData:
                return end
            except Exception:
                return end
            end = unpacker.tell()


def _unpacker(f: Any) -> msgpack.Unpacker:
    return msgpack.Unpacker(
        f, raw=False, read_size=1 << 20, max_buffer_size=_MAX_RECORD, strict_map_key=False
    )


# -- reading -----------------------------------------------------------------

#: the event a record that cannot be decoded reads as, so record positions stay aligned
UNREADABLE = "unreadable_record"
_READ_CHUNK = 4 << 20
_STR_VALUE = re.compile(rb'\s*:\s*(?:"([^"\\]*)"|null)')


def peek_field(frame: bytes, key: bytes) -> str | None:
    """The top-level string field ``key`` of a JSON object frame, without parsing all of it.

    ``key`` is the quoted name (``b'"msg_type"'``). Jupyter headers are flat objects
    of strings, so the first occurrence of the key is the field; anything unusual
    (nested objects, an escape in the value, the key inside a string) falls back to
    a full parse.
    None when the field is absent, null or not a string.
    """
    i = frame.find(key)
    if i < 0:
        return None
    # one "{": no nested object can hold the key first; not \"key\" inside a string
    if frame[i - 1] != 0x5C and frame.count(b"{") == 1:
        m = _STR_VALUE.match(frame, i + len(key))
        if m is not None:
            value = m.group(1)
            if value is None:
                return None
            try:
                return value.decode()
            except UnicodeDecodeError:
                pass
    parsed = _parse(frame).get(key[1:-1].decode())
    return parsed if isinstance(parsed, str) else None


class Record:
    """One record of a log, decoded from msgpack; JSON frames are parsed on first use."""

    __slots__ = ("index", "raw", "_header", "_parent", "_metadata", "_content", "_peeked")

    def __init__(self, index: int, raw: dict[str, Any]) -> None:
        self.index = index
        self.raw = raw
        self._header: Any = None
        self._parent: Any = None
        self._metadata: Any = None
        self._content: Any = None
        self._peeked: dict[tuple[str, str], str] | None = None

    def __repr__(self) -> str:
        if self.is_event:
            return f"<Record #{self.index} event {self.event}>"
        return f"<Record #{self.index} {self.ch} {self.source} {self.msg_type}>"

    # -- common fields
    @property
    def t(self) -> int:
        t = self.raw.get("t")
        return t if isinstance(t, int) else 0

    @property
    def is_event(self) -> bool:
        return "event" in self.raw

    @property
    def event(self) -> str | None:
        e = self.raw.get("event")
        return e if isinstance(e, str) else None

    @property
    def fields(self) -> dict[str, Any]:
        """An event's own fields (everything but ``t`` and ``event``)."""
        return {k: v for k, v in self.raw.items() if k not in ("t", "event")}

    # -- message fields, as stored
    @property
    def ch(self) -> str:
        ch = self.raw.get("ch")
        return ch if isinstance(ch, str) else ""

    @property
    def source(self) -> str:
        """Who sent the message: "client", "kernel" or "krec" (the ``from`` field)."""
        s = self.raw.get("from")
        return s if isinstance(s, str) else ""

    @property
    def ids(self) -> list[bytes]:
        ids = self.raw.get("ids")
        return ids if isinstance(ids, list) else []

    @property
    def buffers(self) -> list[bytes]:
        b = self.raw.get("buffers")
        return b if isinstance(b, list) else []

    def frame(self, name: str) -> bytes:
        """A raw JSON frame ("header", "parent", "metadata" or "content")."""
        value = self.raw.get(name)
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode()
        return b"{}"

    @property
    def size(self) -> int:
        """Bytes of the message on the wire (JSON frames and buffers, without ids)."""
        n = sum(len(self.frame(k)) for k in ("header", "parent", "metadata", "content"))
        return n + sum(len(b) for b in self.buffers if isinstance(b, bytes))

    # -- parsed JSON, cached
    @property
    def header(self) -> dict[str, Any]:
        if self._header is None:
            self._header = _parse(self.frame("header"))
        return self._header

    @property
    def parent(self) -> dict[str, Any]:
        if self._parent is None:
            self._parent = _parse(self.frame("parent"))
        return self._parent

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = _parse(self.frame("metadata"))
        return self._metadata

    @property
    def content(self) -> dict[str, Any]:
        if self._content is None:
            self._content = _parse(self.frame("content"))
        return self._content

    # -- cheap accessors that avoid a full JSON parse
    def _peek(self, frame: str, parsed: Any, key: str) -> str:
        if parsed is not None:
            value = parsed.get(key)
            return value if isinstance(value, str) else ""
        peeked = self._peeked
        if peeked is None:
            peeked = self._peeked = {}
        found = peeked.get((frame, key))
        if found is None:
            value = self.raw.get(frame)
            found = peeked[(frame, key)] = (
                peek_field(self.frame(frame), _QUOTED[key]) or "" if value is not None else ""
            )
        return found

    @property
    def msg_type(self) -> str:
        return self._peek("header", self._header, "msg_type")

    @property
    def msg_id(self) -> str:
        return self._peek("header", self._header, "msg_id")

    @property
    def subshell_id(self) -> str:
        """The header's ``subshell_id`` (messaging 5.5), "" for the main shell."""
        return self._peek("header", self._header, "subshell_id")

    @property
    def parent_id(self) -> str:
        return self._peek("parent", self._parent, "msg_id")

    @property
    def parent_type(self) -> str:
        return self._peek("parent", self._parent, "msg_type")

    def to_json(self, start_ns: int = 0) -> dict[str, Any]:
        """The record as plain JSON data: frames parsed, buffers as sizes, bytes as text/hex."""
        out: dict[str, Any] = {"index": self.index, "t": self.t}
        if start_ns:
            out["rel"] = round((self.t - start_ns) / 1e9, 6)
        if self.is_event:
            out["event"] = self.event
            out.update({str(k): _jsonable(v) for k, v in self.fields.items()})
            return out
        out.update(
            {
                "ch": self.ch,
                "from": self.source,
                "ids": [_jsonable(i) for i in self.ids],
                "header": self.header,
                "parent_header": self.parent,
                "metadata": self.metadata,
                "content": self.content,
                "buffers": [len(b) for b in self.buffers if isinstance(b, bytes)],
            }
        )
        return out


_QUOTED = {k: f'"{k}"'.encode() for k in ("msg_type", "msg_id", "subshell_id")}


# every ASCII digit -> "0", every other byte -> "x": a number of 19 digits or more reads as
# _LONG_RUN (orjson turns an integer beyond 64 bits into a float; json keeps it an int)
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
_LONG_RUN = b"0" * 19


def orjson_agrees(data: bytes) -> bool:
    """Does orjson read this frame as json does, when both accept it (no long integer)?"""
    return _LONG_RUN not in data.translate(_DIGITS)


def loads_json(data: bytes | str) -> Any:
    """``json.loads(data)``, through orjson (several times faster) wherever both give the same.

    orjson refuses what json accepts and krec must keep (NaN, lone surrogates, UTF-16,
    a BOM) and reads integers beyond 64 bits as floats; those frames go to json. Raises
    what json.loads raises.
    """
    if data.__class__ is bytes and _LONG_RUN not in data.translate(_DIGITS):  # type: ignore[union-attr]
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def _parse(data: bytes) -> dict[str, Any]:
    try:
        value = loads_json(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _unreadable(reason: str) -> dict[str, Any]:
    return {"t": 0, "event": UNREADABLE, "reason": reason}


def decode_record(data: bytes | memoryview) -> dict[str, Any]:
    """Decode one record's msgpack bytes as stored (``LogReader.decode`` also upgrades
    an older format's); a record that cannot be decoded becomes an unreadable_record event."""
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=False, unicode_errors="replace")
    except Exception as e:
        raw = _unreadable(f"cannot decode: {e}")
    if not isinstance(raw, dict):
        raw = _unreadable(f"a {type(raw).__name__}, not a map")
    return raw


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
        unpacker = _unpacker(self._file)
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
        unpacker = _unpacker(self._file)
        base = self._end
        offsets = self.offsets
        n = 0
        while n < limit:
            try:
                unpacker.skip()
            except msgpack.OutOfData:
                self._note_tail()
                return False
            except Exception:
                self._corrupt_at = self._end
                self.warnings.append(
                    f"corrupt data at byte {self._end}: {len(offsets)} records before it are "
                    "readable, the rest of the file is ignored"
                )
                return False
            offsets.append(self._end)
            self._end = base + unpacker.tell()
            n += 1
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
                max_buffer_size=_MAX_RECORD,
                strict_map_key=False,
                unicode_errors="replace",
            )
            unpacker.feed(data)
            upgrade = self.upgrade_record
            try:
                for raw in unpacker:
                    if not isinstance(raw, dict):
                        raw = _unreadable(f"a {type(raw).__name__}, not a map")
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
