"""`krec catalog`: write logs into Parquet datasets, incrementally, on a disk or any fsspec store.

A catalog is a folder (or URL) holding three Hive-partitioned datasets,
``sessions/date=D/``, ``messages/date=D/`` and ``findings/date=D/``, with one zstd
Parquet file per log and day, named ``LOGID-FP.parquet`` (FP: the log's
fingerprint), and ``_common_metadata`` per dataset carrying the schema version.
``_krec_catalog.json`` at the root remembers, per log, its location, fingerprint
(size and modification time or ETag of the stored file(s)) and files: a later run
skips unchanged logs, writes changed ones anew and then deletes their old files,
and rewrites nothing else. Files whose names start with ``_`` are ignored by
DuckDB globs, Spark, Trino and ``pyarrow.dataset``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from krec.recorder.catalog.extract import LogExtract, check_findings, log_id
from krec.recorder.catalog.schema import DATASETS, METADATA_KEY, SCHEMA_VERSION, arrow_schema
from krec.recorder.errors import KrecError
from krec.recorder.log.reader import LogReader
from krec.recorder.log.storage import (
    StorageError,
    describe_error,
    filesystem,
    is_url,
    local_log,
    log_locations,
    redact_url,
    segments,
)

STATE_FILE = "_krec_catalog.json"
#: logs from this size on are checked in a second process while the messages are written
PARALLEL_CHECK_BYTES = 32 << 20
#: message columns of few distinct values get dictionary pages; ids, times, sizes and code
#: are written plain (a dictionary of unique values only costs time)
_DICTIONARY_COLUMNS = {
    "messages": [
        "log_id",
        "channel",
        "direction",
        "msg_type",
        "parent_msg_type",
        "session",
        "username",
        "subshell_id",
        "version",
        "status",
        "execution_state",
        "ename",
    ],
}


class CatalogError(KrecError):
    """A catalog cannot be read or written."""


@dataclass
class CatalogResult:
    """What one `krec catalog` run did, log by log."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: (location, one-line problem): logs that could not be catalogued
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: (location, warning): catalogued, but with reader warnings (a truncated tail...)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    messages: int = 0


class Catalog:
    """A catalog's root on a local disk or an fsspec store, with its state file."""

    def __init__(self, location: str) -> None:
        self.location = location
        if is_url(location) and not location.startswith("file://"):
            self.fs, self.root = filesystem(location)
        else:
            from fsspec.implementations.local import LocalFileSystem

            path = location[len("file://") :] if location.startswith("file://") else location
            self.fs, self.root = LocalFileSystem(), os.path.abspath(path)
        self.root = self.root.rstrip("/")
        self.state = self._load_state()

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _load_state(self) -> dict[str, Any]:
        path = self.path(STATE_FILE)
        try:
            if not self.fs.exists(path):
                return {"schema": SCHEMA_VERSION, "logs": {}}
            with self.fs.open(path, "rb") as f:
                state = json.load(f)
        except json.JSONDecodeError:
            raise CatalogError(f"{redact_url(self.location)}: damaged {STATE_FILE}") from None
        except Exception as e:
            raise StorageError(describe_error(self.location, e)) from None
        if not isinstance(state, dict) or not isinstance(state.get("logs"), dict):
            raise CatalogError(f"{redact_url(self.location)}: damaged {STATE_FILE}")
        if state.get("schema") != SCHEMA_VERSION:
            raise CatalogError(
                f"{redact_url(self.location)}: catalog schema version {state.get('schema')}, "
                f"this krec writes version {SCHEMA_VERSION}: write a new catalog"
            )
        return state

    def save_state(self) -> None:
        data = json.dumps(self.state, indent=1, sort_keys=True).encode()
        with self.fs.open(self.path(STATE_FILE), "wb") as f:
            f.write(data)

    def write_metadata(self) -> None:
        """``_common_metadata`` per dataset: the schema and its version, for every engine."""
        for dataset in DATASETS:
            path = self.path(dataset, "_common_metadata")
            if self.fs.exists(path):  # the version is the state file's: nothing to rewrite
                continue
            self.makedirs(dataset)
            with self.fs.open(path, "wb") as f:
                pq.write_metadata(arrow_schema(dataset), f)

    def makedirs(self, *parts: str) -> None:
        """A folder on a disk; nothing in a bucket (s3fs would create a missing bucket)."""
        from fsspec.implementations.local import LocalFileSystem

        if isinstance(self.fs, LocalFileSystem):
            self.fs.makedirs(self.path(*parts), exist_ok=True)

    def write_error(self, error: BaseException) -> CatalogError:
        """One line for a catalog that cannot be written (never a credential in it)."""
        if isinstance(error, FileNotFoundError):
            reason = "no such folder or bucket"
        elif isinstance(error, OSError) and error.strerror:
            reason = error.strerror.lower()
        else:
            reason = describe_error(self.location, error).split(": ", 1)[-1]
        return CatalogError(f"cannot write the catalog {redact_url(self.location)}: {reason}")

    def entry_for(self, location: str) -> tuple[str, dict[str, Any]] | None:
        for lid, entry in self.state["logs"].items():
            if entry.get("location") == location:
                return lid, entry
        return None

    def write_log(self, extract: LogExtract, fp: str) -> tuple[list[str], int]:
        """Write one log's files; return their paths (relative to the root) and its messages."""
        writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        handles: list[Any] = []
        messages = 0
        try:
            for dataset, date, batch in extract.batches():
                key = (dataset, date)
                writer = writers.get(key)
                if writer is None:
                    rel = posixpath.join(dataset, f"date={date}", f"{extract.id}-{fp}.parquet")
                    self.makedirs(dataset, f"date={date}")
                    handle = self.fs.open(self.path(rel), "wb")
                    handles.append(handle)
                    writer = writers[key] = pq.ParquetWriter(
                        handle,
                        batch.schema,
                        compression="zstd",
                        use_dictionary=_DICTIONARY_COLUMNS.get(dataset, True),
                    )
                writer.write_batch(batch)
                if dataset == "messages":
                    messages += batch.num_rows
        finally:
            for writer in writers.values():
                writer.close()
            for handle in handles:
                handle.close()
        files = sorted(
            posixpath.join(d, f"date={date}", f"{extract.id}-{fp}.parquet") for d, date in writers
        )
        return files, messages

    def remove(self, files: Iterable[str], keep: Iterable[str] = ()) -> None:
        kept = set(keep)
        for rel in files:
            if rel not in kept:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(self.path(rel))


def fingerprint(location: str) -> str:
    """Size and modification time (or ETag) of the stored log: changes when the log does."""
    try:
        if is_url(location) and not location.startswith("file://"):
            fs, path = filesystem(location)
            parts = segments(fs, path)
            infos = [fs.info(p) for p in parts] if parts else [fs.info(path)]
        else:
            path = location[len("file://") :] if location.startswith("file://") else location
            if os.path.isdir(path):
                names = sorted(n for n in os.listdir(path) if n.endswith(".part"))
                infos = [_local_info(os.path.join(path, n)) for n in names]
            else:
                infos = [_local_info(path)]
    except KrecError:
        raise
    except Exception as e:
        raise StorageError(describe_error(location, e)) from None
    text = json.dumps(infos, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _local_info(path: str) -> dict[str, Any]:
    st = os.stat(path)
    return {"size": st.st_size, "mtime": st.st_mtime_ns}


def build_catalog(
    locations: Iterable[str],
    output: str,
    *,
    on_log: Callable[[str, str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CatalogResult:
    """Catalog every log at ``locations`` (paths, folders, URLs) into ``output``.

    ``on_log(location, what)`` is told each log's fate as it happens ("added",
    "replaced", "unchanged", "error: ..."). A log that cannot be read is reported
    and skipped; the others are catalogued.
    """
    catalog = Catalog(output)
    try:
        catalog.write_metadata()
    except Exception as e:  # an unwritable folder, a missing bucket: one line, before any log
        raise catalog.write_error(e) from None
    result = CatalogResult()
    seen: dict[str, str] = {}
    try:
        for found in log_locations(locations):
            location = found if is_url(found) else os.path.abspath(found)
            try:
                what = _catalog_one(catalog, location, result, seen, progress)
            except KrecError as e:
                text = str(e)
                for prefix in (f"{location}: ", f"{found}: "):
                    text = text[len(prefix) :] if text.startswith(prefix) else text
                result.failed.append((location, text))
                what = f"error: {text}"
            if on_log is not None:
                on_log(location, what)
    finally:
        try:
            catalog.save_state()
        except Exception as e:
            raise catalog.write_error(e) from None
    return result


def _catalog_one(
    catalog: Catalog,
    location: str,
    result: CatalogResult,
    seen: dict[str, str],
    progress: Callable[[int, int], None] | None,
) -> str:
    fp = fingerprint(location)
    known = catalog.entry_for(location)
    if known is not None and known[1].get("fingerprint") == fp:
        # a copy of this recording later among the inputs is skipped, as in the first run
        # (it must not take the unchanged log's place, and back again the next run)
        seen.setdefault(known[0], location)
        result.unchanged.append(location)
        return "unchanged"
    path = local_log(location)
    size = _size(path)
    with LogReader(path, index=False) as reader:  # the header only, so far
        lid = log_id(reader.header)
        if lid in seen:
            note = f"the same recording as {seen[lid]}: catalogued once"
            result.warnings.append((location, note))
            return f"skipped: {note}"
        seen[lid] = location
        # the check, the longer half, starts before this process indexes the log
        with _checked_aside(path, size) as checked:
            reader.refresh()
            extract = LogExtract(reader, location, size, progress=progress, checked=checked)
            try:
                files, messages = catalog.write_log(extract, fp)
            except Exception as e:
                raise catalog.write_error(e) from None
        for warning in reader.warnings:
            result.warnings.append((location, warning))
    result.messages += messages
    logs = catalog.state["logs"]
    old: list[str] = []
    if known is not None:
        old = known[1].get("files", [])
        logs.pop(known[0], None)
    previous = logs.get(extract.id)
    if previous is not None:  # the same recording moved: its old files go
        old = old + previous.get("files", [])
    logs[extract.id] = {
        "location": location,
        "fingerprint": fp,
        "files": files,
        "messages": messages,
        "catalogued": time.time(),
    }
    catalog.remove(old, keep=files)
    if known is not None or previous is not None:
        result.replaced.append(location)
        return "replaced"
    result.added.append(location)
    return "added"


@contextlib.contextmanager
def _checked_aside(path: str, size: int) -> Iterator[Callable[[], Any] | None]:
    """For a big log on a machine with cores to spare, run krec check in a process of its
    own while this one writes the messages (the check is the slower half)."""
    if size < PARALLEL_CHECK_BYTES or (os.cpu_count() or 1) < 2:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver")) as pool:
        future = pool.submit(check_findings, path)
        yield future.result


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_schema_version(dataset_schema: pa.Schema) -> str | None:
    """The catalog schema version a Parquet file's schema carries (None if not a krec one)."""
    meta = dataset_schema.metadata or {}
    value = meta.get(METADATA_KEY)
    return value.decode() if value else None
