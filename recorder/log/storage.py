"""Where logs live: local paths or fsspec URLs, and a log stored as numbered segments.

A log location is a path or any fsspec URL (``s3://bucket/prefix/NAME.krec``,
``gs://``, ``az://``, ``file://``). At a location there is either one file (a log
written in one piece) or a folder of segments ``000000.part``, ``000001.part``...
whose bytes, concatenated in order, are the log: krec uploads a log recorded to
object storage that way, a segment at a time. Readers see one log either way:
``local_log`` hands them a local path, fetching and joining segments from a
store into a cache. fsspec is imported only when a URL is used (extra ``fleet``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from typing import Any

from krec.recorder.errors import KrecError

SEGMENT_SUFFIX = ".part"
LOG_SUFFIX = ".krec"
_SEGMENT = re.compile(r"^\d{6,}\.part$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class StorageError(KrecError):
    """A log location cannot be reached, listed, read or written."""


def is_url(location: str) -> bool:
    """True for ``scheme://...`` locations (``file://`` included)."""
    return bool(_URL.match(location))


def segment_name(index: int) -> str:
    """The object name of segment ``index`` inside a segmented log's folder."""
    return f"{index:06d}{SEGMENT_SUFFIX}"


def is_segment_name(name: str) -> bool:
    return bool(_SEGMENT.match(name))


def redact_url(location: str) -> str:
    """The location without any user:password part, fit for a message."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", r"\1", location)


def filesystem(location: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a URL; a missing extra is a clear error."""
    try:
        import fsspec.core
    except ImportError:
        raise StorageError(
            f"{redact_url(location)}: reading or writing URLs needs the fleet extra: "
            "pip install 'krec[fleet]'"
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(location)
    except ImportError as e:
        raise StorageError(
            f"{redact_url(location)}: no filesystem for this URL ({e}); "
            "pip install 'krec[fleet]' (s3) or the fsspec backend it names"
        ) from None
    except (ValueError, TypeError) as e:
        raise StorageError(f"{redact_url(location)}: not a usable URL ({e})") from None
    if not str(path).strip("/"):
        raise StorageError(f"{redact_url(location)}: not a usable URL (no bucket or path)")
    return fs, path


def describe_error(location: str, error: BaseException) -> str:
    """One line for a failed storage call, never with a credential in it."""
    name = type(error).__name__
    if isinstance(error, FileNotFoundError):
        return f"{redact_url(location)}: no such log or folder"
    if isinstance(error, PermissionError):
        return f"{redact_url(location)}: permission denied"
    if "Credentials" in name or "NoCredentials" in str(error):
        return f"{redact_url(location)}: no credentials for this store ({name})"
    text = str(error).splitlines()[0] if str(error) else name
    return f"{redact_url(location)}: {text}"


def segments(fs: Any, path: str) -> list[str]:
    """The segment paths of a segmented log folder, in order (empty if there are none)."""
    try:
        names = fs.ls(path, detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [n for n in names if is_segment_name(n.rstrip("/").rsplit("/", 1)[-1])]
    return sorted(found, key=lambda n: n.rsplit("/", 1)[-1])


def local_log(location: str | os.PathLike[str], cache_dir: str | None = None) -> str:
    """A local path holding the whole log at ``location`` (fetched and joined for a URL).

    A local path is returned as it is, unless it is a folder of segments, which is
    joined into the cache. A URL is fetched into ``cache_dir`` (default
    ``$KREC_CACHE`` or ``~/.cache/krec/logs``) each time, so a log still being
    recorded is read as far as it has been uploaded.
    """
    location = os.fspath(location)
    if not is_url(location):
        if os.path.isdir(location) and _local_segments(location):
            return _join_local(location, cache_dir)
        return location
    if location.startswith("file://"):
        return local_log(location[len("file://") :], cache_dir)
    fs, path = filesystem(location)
    try:
        parts = segments(fs, path)
        target = _cache_path(location, cache_dir)
        tmp = f"{target}.{os.getpid()}.tmp"
        with open(tmp, "wb") as out:
            if parts:
                for part in parts:
                    out.write(fs.cat_file(part))
            else:
                out.write(fs.cat_file(path))
        os.replace(tmp, target)
    except KrecError:
        raise
    except Exception as e:  # fsspec backends raise their own families
        raise StorageError(describe_error(location, e)) from None
    return target


def _local_segments(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if is_segment_name(n))


def _join_local(folder: str, cache_dir: str | None) -> str:
    target = _cache_path(os.path.abspath(folder), cache_dir)
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "wb") as out:
        for name in _local_segments(folder):
            with open(os.path.join(folder, name), "rb") as f:
                out.write(f.read())
    os.replace(tmp, target)
    return target


def _cache_path(location: str, cache_dir: str | None) -> str:
    base = (
        cache_dir
        or os.environ.get("KREC_CACHE")
        or os.path.join(os.path.expanduser("~"), ".cache", "krec", "logs")
    )
    os.makedirs(base, mode=0o700, exist_ok=True)
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    name = location.rstrip("/").rsplit("/", 1)[-1] or "log"
    return os.path.join(base, f"{digest}-{name}")


def log_locations(locations: Iterable[str]) -> list[str]:
    """Expand folders and URL prefixes into the logs under them (``*.krec``), in order.

    A location that is itself a log (a file, or a folder of segments) stays as it is.
    """
    found: list[str] = []
    for location in locations:
        if is_url(location) and not location.startswith("file://"):
            found.extend(_url_logs(location))
            continue
        path = location[len("file://") :] if location.startswith("file://") else location
        if os.path.isdir(path) and not _local_segments(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in dirs:
                    if name.endswith(LOG_SUFFIX) and _local_segments(os.path.join(root, name)):
                        found.append(os.path.join(root, name))
                dirs[:] = [d for d in dirs if not d.endswith(LOG_SUFFIX)]
                found.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(LOG_SUFFIX))
        else:
            found.append(location)
    return found


def _url_logs(location: str) -> list[str]:
    fs, path = filesystem(location)
    scheme = location.split("://", 1)[0]
    try:
        if fs.isfile(path) or segments(fs, path):
            return [location]
        entries = fs.find(path, withdirs=False)
    except Exception as e:
        raise StorageError(describe_error(location, e)) from None
    logs: dict[str, None] = {}
    for entry in sorted(entries):
        head, _, name = entry.rpartition("/")
        if name.endswith(LOG_SUFFIX):
            logs[entry] = None
        elif is_segment_name(name) and head.endswith(LOG_SUFFIX):
            logs[head] = None
    if not logs:  # nothing there: the location itself, which its reader reports missing
        return [location]
    return [f"{scheme}://{p}" for p in logs]
