"""The writing side of log storage: logs bound for a URL are spooled locally and uploaded.

A log whose destination is an fsspec URL is written by LogWriter to a spool entry
on this machine (``$KREC_SPOOL``, default ``~/.cache/krec/spool``), a folder with
the log, a ``lock`` held while a krec process owns it, and a ``manifest.json``
that says where the log goes and how much of it is uploaded (never a credential:
URLs with one are refused). An Uploader thread, never on the forwarding path,
uploads the complete records written since the last segment as the next
``NNNNNN.part`` object of the log's folder (storage.py reads them back as one
log) every ``segment_size`` bytes (64 MB) or ``segment_seconds`` (5 min), and at
close. A crash leaves the entry; the next krec process that records on this
machine uploads what is left (``upload_leftovers``). A store that fails while
recording is a warning, retried; the spool keeps the data.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from krec.recorder.log.storage import (
    StorageError,
    describe_error,
    filesystem,
    is_url,
    redact_url,
    segment_name,
)
from krec.recorder.log.writer import LogWriter, being_written, complete_length

DEFAULT_SEGMENT_SIZE = 64 << 20
DEFAULT_SEGMENT_SECONDS = 300.0
SPOOL_ENV = "KREC_SPOOL"
SEGMENT_SIZE_ENV = "KREC_SEGMENT_SIZE"
SEGMENT_SECONDS_ENV = "KREC_SEGMENT_SECONDS"
MANIFEST = "manifest.json"
#: a spool entry a wrapper left for its restarted successor is not a leftover this long
RESTART_GRACE = 60.0

Warn = Callable[[str], None]


def _warn(text: str) -> None:
    print(f"krec: warning: {text}", file=sys.stderr, flush=True)


def spool_root() -> str:
    return os.environ.get(SPOOL_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "krec", "spool"
    )


def segment_settings(size: int | None = None, seconds: float | None = None) -> tuple[int, float]:
    """(bytes, seconds) between segments: the arguments, else the environment, else defaults."""
    try:
        size = size or int(os.environ.get(SEGMENT_SIZE_ENV) or DEFAULT_SEGMENT_SIZE)
        seconds = seconds or float(os.environ.get(SEGMENT_SECONDS_ENV) or DEFAULT_SEGMENT_SECONDS)
    except ValueError:
        raise StorageError(
            f"{SEGMENT_SIZE_ENV} must be a number of bytes, {SEGMENT_SECONDS_ENV} of seconds"
        ) from None
    if size <= 0 or seconds <= 0:
        raise StorageError("segment size and interval must be positive")
    return size, seconds


def parse_size(text: str) -> int:
    """``64M``, ``512k``, ``1G`` or a number of bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise StorageError(f"not a size: {text!r} (e.g. 64M, 512k, 1000000)") from None


def check_destination(location: str) -> None:
    """At start: the URL is usable, holds no credential, and the store takes a write.

    Raises StorageError with one line naming what is wrong.
    """
    if redact_url(location) != location:
        raise StorageError(
            f"{redact_url(location)}: a URL must not carry credentials; "
            "use the environment or the store's config files"
        )
    fs, path = filesystem(location)
    probe = f"{path.rstrip('/')}/.krec-probe-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        fs.pipe_file(probe, b"")
        with contextlib.suppress(Exception):
            fs.rm_file(probe)
    except Exception as e:  # each fsspec backend raises its own family
        raise StorageError(f"cannot write logs to {describe_error(location, e)}") from None


def local_path(location: str) -> str | None:
    """The local path of a location that is one (``file://`` included), else None."""
    if location.startswith("file://"):
        return location[len("file://") :]
    return None if is_url(location) else location


# -- spool entries ------------------------------------------------------------------


@dataclass
class Manifest:
    destination: str
    log: str  # file name inside the entry
    uploaded: int = 0
    segments: int = 0
    state: str = "recording"  # "restarting": left for a successor; "closed"
    pid: int = field(default_factory=os.getpid)

    @classmethod
    def read(cls, entry: str) -> Manifest | None:
        try:
            with open(os.path.join(entry, MANIFEST), encoding="utf-8") as f:
                return cls(**json.load(f))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, entry: str) -> None:
        tmp = os.path.join(entry, f".{MANIFEST}.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.__dict__, f)
        os.replace(tmp, os.path.join(entry, MANIFEST))


def _lock(entry: str) -> int | None:
    """An exclusive lock on a spool entry (None if another process holds it)."""
    try:
        fd = os.open(os.path.join(entry, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _lock_within(entry: str, timeout: float) -> int | None:
    """``_lock``, waiting out another krec that is looking at the entry for leftovers."""
    deadline = time.monotonic() + timeout
    while (fd := _lock(entry)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return fd


class Uploader(threading.Thread):
    """Uploads a spooled log's new complete records as segments, until ``close``."""

    def __init__(
        self,
        entry: str,
        manifest: Manifest,
        *,
        segment_size: int,
        segment_seconds: float,
        warn: Warn = _warn,
    ) -> None:
        super().__init__(name="krec-upload", daemon=True)
        self.entry = entry
        self.manifest = manifest
        self.path = os.path.join(entry, manifest.log)
        self._size = segment_size
        self._seconds = segment_seconds
        self._warn = warn
        self._stop_event = threading.Event()
        self._failing = False
        self._fs: Any = None

    def run(self) -> None:
        last = time.monotonic()
        while not self._stop_event.wait(0.5):
            try:
                size = os.stat(self.path).st_size
            except OSError:
                continue
            pending = size - self.manifest.uploaded
            now = time.monotonic()
            if pending >= self._size or (pending > 0 and now - last >= self._seconds):
                self.upload_segment()
                last = now

    def upload_segment(self) -> bool:
        """Upload the complete records not uploaded yet as the next segment; True if done."""
        m = self.manifest
        try:
            end = complete_length(self.path)
        except OSError:
            return False
        if end <= m.uploaded:
            return True
        try:
            with open(self.path, "rb") as f:
                f.seek(m.uploaded)
                data = f.read(end - m.uploaded)
            if self._fs is None:
                self._fs, self._dest = filesystem(m.destination)
            self._fs.pipe_file(f"{self._dest.rstrip('/')}/{segment_name(m.segments)}", data)
        except Exception as e:  # fsspec backends raise their own families
            if not self._failing:
                self._failing = True
                self._warn(
                    f"cannot upload {describe_error(m.destination, e)}; the log stays in "
                    f"{self.entry} and is uploaded later"
                )
            return False
        if self._failing:
            self._failing = False
            self._warn(f"uploading {redact_url(m.destination)} again")
        m.uploaded = end
        m.segments += 1
        m.write(self.entry)
        return True

    def close(self) -> bool:
        """Stop, upload the rest; True if everything is in the store."""
        self._stop_event.set()
        if self.is_alive():
            self.join()
        return self.upload_segment() and self.manifest.uploaded >= _size(self.path)


def _size(path: str) -> int:
    try:
        return complete_length(path)
    except OSError:
        return 0


class SpooledLog:
    """A log being recorded: its ``writer``, where it is read from (``location``), and,
    for a URL, its spool entry and uploader."""

    def __init__(
        self,
        writer: LogWriter,
        location: str,
        entry: str | None = None,
        uploader: Uploader | None = None,
        lock_fd: int | None = None,
    ) -> None:
        self.writer = writer
        self.path = writer.path
        self.location = location
        self.entry = entry
        self._uploader = uploader
        self._lock_fd = lock_fd
        if uploader is not None:
            uploader.start()

    def reopen(self, seal_key: bytes | None = None) -> LogWriter:
        """After ``finish(keep=True)``: append to the same log again (a restarted kernel)."""
        self.writer = LogWriter(self.path, append=True, seal_key=seal_key)
        if self.entry is not None and self._uploader is not None:
            m = self._uploader.manifest
            m.state = "recording"
            m.pid = os.getpid()
            m.write(self.entry)
            if self._lock_fd is None:
                self._lock_fd = _lock_within(self.entry, 10.0)
            self._uploader = Uploader(
                self.entry,
                m,
                segment_size=self._uploader._size,
                segment_seconds=self._uploader._seconds,
                warn=self._uploader._warn,
            )
            self._uploader.start()
        return self.writer

    def finish(self, keep: bool = False) -> None:
        """The writer is closed: upload what is left; drop the spool entry unless ``keep``
        (a restart will append) or the store could not take it (a later run will)."""
        self.writer.close()
        if self._uploader is None or self.entry is None:
            return
        done = self._uploader.close()
        m = self._uploader.manifest
        if done and not keep:
            shutil.rmtree(self.entry, ignore_errors=True)
        else:
            m.state = "restarting" if keep else "closed"
            m.write(self.entry)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _new_entry(destination: str, log_name: str) -> tuple[str, int, Manifest]:
    root = spool_root()
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        entry = os.path.join(root, f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(4).hex()}")
        os.mkdir(entry, 0o700)
    except OSError as e:
        raise StorageError(f"cannot create the spool directory {root}: {e.strerror}") from None
    fd = _lock(entry)
    assert fd is not None
    manifest = Manifest(destination=destination, log=log_name)
    manifest.write(entry)
    return entry, fd, manifest


def open_new_log(
    directory: str,
    kernel_name: str,
    header: dict[str, Any],
    *,
    segment_size: int | None = None,
    segment_seconds: float | None = None,
    warn: Warn = _warn,
    seal_key: bytes | None = None,
) -> SpooledLog:
    """A new log named as kernelrun.new_log names it, in a local ``directory`` or for a URL
    (``seal_key``: else the key file ``$KREC_SEAL_KEY`` names, if any)."""
    from krec.recorder.capture.kernel import log_name, new_log

    local = local_path(directory)
    if local is not None:
        writer = new_log(local, kernel_name, header, seal_key=seal_key)
        return SpooledLog(writer, writer.path)
    name = log_name(kernel_name)
    stem = os.environ.get("KREC_LOG_NAME", "")
    if stem and "/" not in stem and not stem.startswith("."):
        name = f"{stem}.krec"
    return _spooled(
        f"{directory.rstrip('/')}/{name}",
        name,
        header,
        segment_size,
        segment_seconds,
        warn,
        seal_key,
    )


def open_log_file(
    location: str,
    header: dict[str, Any],
    *,
    segment_size: int | None = None,
    segment_seconds: float | None = None,
    warn: Warn = _warn,
) -> SpooledLog:
    """A new log at ``location``: a local file, or a URL (spooled and uploaded)."""
    local = local_path(location)
    if local is not None:
        return SpooledLog(LogWriter(local, header), local)
    name = location.rstrip("/").rsplit("/", 1)[-1] or "session.krec"
    return _spooled(location, name, header, segment_size, segment_seconds, warn)


def _spooled(
    destination: str,
    name: str,
    header: dict[str, Any],
    segment_size: int | None,
    segment_seconds: float | None,
    warn: Warn,
    seal_key: bytes | None = None,
) -> SpooledLog:
    size, seconds = segment_settings(segment_size, segment_seconds)
    entry, fd, manifest = _new_entry(destination, name)
    writer = LogWriter(os.path.join(entry, name), header, seal_key=seal_key)
    uploader = Uploader(entry, manifest, segment_size=size, segment_seconds=seconds, warn=warn)
    return SpooledLog(writer, destination, entry, uploader, fd)


def resume_log(path: str, warn: Warn = _warn) -> SpooledLog:
    """Append to the log at ``path`` (a restarted wrapper), resuming its upload if spooled."""
    entry = os.path.dirname(os.path.abspath(path))
    manifest = Manifest.read(entry)
    if manifest is None or manifest.log != os.path.basename(path):
        return SpooledLog(LogWriter(path, append=True), path)
    fd = _lock_within(entry, 10.0)
    writer = LogWriter(path, append=True)
    manifest.state, manifest.pid = "recording", os.getpid()
    manifest.write(entry)
    size, seconds = segment_settings()
    uploader = Uploader(entry, manifest, segment_size=size, segment_seconds=seconds, warn=warn)
    return SpooledLog(writer, manifest.destination, entry, uploader, fd)


def upload_leftovers(warn: Warn = _warn) -> list[str]:
    """Upload what crashed krec processes left in the spool; return their destinations."""
    root = spool_root()
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return []
    done = []
    for name in entries:
        entry = os.path.join(root, name)
        fd = _lock(entry)
        if fd is None:
            continue  # a live recording owns it
        try:
            manifest = Manifest.read(entry)
            if manifest is None or being_written(os.path.join(entry, manifest.log)):
                continue
            if manifest.state == "restarting":
                age = time.time() - os.stat(os.path.join(entry, MANIFEST)).st_mtime
                if age < RESTART_GRACE:
                    continue
            uploader = Uploader(entry, manifest, segment_size=1, segment_seconds=1, warn=warn)
            if uploader.upload_segment() and manifest.uploaded >= _size(uploader.path):
                shutil.rmtree(entry, ignore_errors=True)
                done.append(manifest.destination)
        finally:
            os.close(fd)
    return done


def leftovers_in_background(destination: str, warn: Warn = _warn) -> threading.Thread | None:
    """``upload_leftovers`` in a thread, when this recording itself goes to a store (so
    the environment has a store's credentials) and there is a spool; join it before
    exiting."""
    if local_path(destination) is not None or not os.path.isdir(spool_root()):
        return None
    thread = threading.Thread(
        target=upload_leftovers, kwargs={"warn": warn}, name="krec-leftovers", daemon=True
    )
    thread.start()
    return thread
