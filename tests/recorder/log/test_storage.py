"""Log locations: paths and URLs, logs in one piece or in segments, on a real S3 server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from factories import LogBuilder
from s3server import Bucket

from krec.recorder.log.reader import LogReader
from krec.recorder.log.storage import (
    StorageError,
    is_url,
    local_log,
    log_locations,
    redact_url,
    segment_name,
)


def _a_log(path: Path) -> bytes:
    with LogBuilder(path) as log:
        log.execute("print(1)")
    return path.read_bytes()


def _split(data: bytes, parts: int) -> list[bytes]:
    step = len(data) // parts + 1
    return [data[i : i + step] for i in range(0, len(data), step)]


def test_urls_and_paths_are_told_apart() -> None:
    assert is_url("s3://bucket/a.krec") and is_url("file:///tmp/a.krec")
    assert not is_url("/tmp/a.krec") and not is_url("logs/a.krec")
    assert redact_url("s3://user:secret@bucket/a.krec") == "s3://bucket/a.krec"


def test_a_local_path_is_read_in_place(tmp_path: Path) -> None:
    log = tmp_path / "a.krec"
    _a_log(log)
    assert local_log(str(log)) == str(log)
    assert local_log(f"file://{log}") == str(log)


def test_local_segments_read_back_as_one_log(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    data = _a_log(logs / "whole.krec")
    folder = logs / "seg.krec"
    folder.mkdir()
    for i, part in enumerate(_split(data, 3)):
        (folder / segment_name(i)).write_bytes(part)
    joined = local_log(str(folder), cache_dir=str(tmp_path / "cache"))
    assert Path(joined).read_bytes() == data
    with LogReader(joined) as reader:
        assert not reader.truncated
    assert log_locations([str(logs)]) == [str(folder), str(logs / "whole.krec")]


def test_urls_read_whole_and_segmented_logs(tmp_path: Path, s3_bucket: Bucket) -> None:
    data = _a_log(tmp_path / "whole.krec")
    fs = s3_bucket.filesystem()
    fs.pipe(f"{s3_bucket.name}/team/one.krec", data)
    for i, part in enumerate(_split(data, 4)):
        fs.pipe(f"{s3_bucket.name}/team/two.krec/{segment_name(i)}", part)
    cache = str(tmp_path / "cache")
    for name in ("one", "two"):
        local = local_log(f"{s3_bucket.url}/team/{name}.krec", cache_dir=cache)
        assert Path(local).read_bytes() == data
        assert os.stat(cache).st_mode & 0o777 == 0o700
    assert log_locations([f"{s3_bucket.url}/team"]) == [
        f"{s3_bucket.url}/team/one.krec",
        f"{s3_bucket.url}/team/two.krec",
    ]


def test_a_missing_url_is_one_clear_error(tmp_path: Path, s3_bucket: Bucket) -> None:
    with pytest.raises(StorageError, match="no such log"):
        local_log(f"{s3_bucket.url}/nothing.krec", cache_dir=str(tmp_path))
