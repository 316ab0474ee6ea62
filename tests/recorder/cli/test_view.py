"""`krec view` on the command line: a bad log or filter is refused before the UI starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_krec


def bad_log(directory: Path, kind: str) -> Path:
    path = directory / f"{kind}.krec"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello")
    elif kind == "directory":
        path.mkdir()
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such file"),
        ("empty", "empty file"),
        ("text", "not a krec log"),
        ("directory", "is a directory"),
    ],
)
def test_bad_log_is_one_line_and_exit_2(tmp_path: Path, kind: str, message: str) -> None:
    done = run_krec("view", str(bad_log(tmp_path, kind)), timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("krec: error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_bad_filter_is_refused(tmp_path: Path) -> None:
    from factories import LogBuilder

    with LogBuilder(tmp_path / "s.krec") as b:
        b.execute("x = 1", count=1)
    done = run_krec("view", str(tmp_path / "s.krec"), "-f", "type:", timeout=60)
    assert done.returncode == 2
    assert done.stderr == "krec: error: type: needs a value at position 6: 'type:'\n"


def test_needs_a_terminal(tmp_path: Path) -> None:
    from factories import LogBuilder

    with LogBuilder(tmp_path / "s.krec") as b:
        b.execute("x = 1", count=1)
    done = run_krec("view", str(tmp_path / "s.krec"), timeout=60)
    assert done.returncode == 2
    assert "krec view needs a terminal" in done.stderr


def test_help_has_examples() -> None:
    done = run_krec("view", "--help", timeout=60)
    assert done.returncode == 0
    assert "examples:" in done.stdout and "krec view session.krec" in done.stdout


def test_a_log_being_written_is_followed(tmp_path: Path) -> None:
    from factories import LogBuilder

    from krec.recorder.log.writer import being_written

    builder = LogBuilder(tmp_path / "live.krec")
    builder.execute("x = 1", count=1)
    builder.writer.flush()
    assert being_written(str(tmp_path / "live.krec"))  # the writer holds its lock
    builder.close()
    assert not being_written(str(tmp_path / "live.krec"))
    assert not being_written(str(tmp_path / "missing.krec"))
