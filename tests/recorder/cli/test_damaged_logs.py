"""Damaged logs (truncated anywhere, bytes flipped, garbage) never make a command print a
traceback: every command gives a clear error (exit 2), or warns and uses the readable part."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import run_krec

from krec.recorder.cli import main

pytestmark = pytest.mark.timeout(300)

READERS = [
    ["show"],
    ["show", "--json"],
    ["stats"],
    ["export", "--to", "jsonl"],
    ["export", "--to", "ipynb"],
    ["check"],
]


def variants(log: Path, tmp: Path) -> list[Path]:
    data = log.read_bytes()
    rng = random.Random(1234)
    out = []
    for i, cut in enumerate([1, 7, len(data) // 3, len(data) // 2, len(data) - 3]):
        path = tmp / f"cut{i}.krec"
        path.write_bytes(data[:cut])
        out.append(path)
    for i in range(4):
        damaged = bytearray(data)
        for _ in range(20):
            damaged[rng.randrange(30, len(damaged))] = rng.randrange(256)
        path = tmp / f"flipped{i}.krec"
        path.write_bytes(bytes(damaged))
        out.append(path)
    (tmp / "garbage.krec").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    (tmp / "empty.krec").write_bytes(b"")
    (tmp / "text.krec").write_text("this is not a log\n")
    out += [tmp / "garbage.krec", tmp / "empty.krec", tmp / "text.krec"]
    return out


def test_every_reader_command_survives_damage(rich_log: Path, tmp_path: Path, capsys):
    """In-process (fast): an exception escaping main() would fail the test with its traceback."""
    for path in variants(rich_log, tmp_path):
        for command in READERS:
            args = [command[0], str(path), *command[1:]]
            if command[0] == "export":
                args += ["-o", str(tmp_path / "out")]
            with pytest.raises(SystemExit) as exited:
                main(args)
            err = capsys.readouterr().err
            where = f"krec {' '.join(command)} {path.name}"
            assert exited.value.code in (0, 1, 2), where
            if exited.value.code == 2:
                assert len(err.strip().splitlines()) == 1, f"{where}: {err}"


def test_replay_and_diff_of_damaged_logs(rich_log: Path, tmp_path: Path):
    data = rich_log.read_bytes()
    cut = tmp_path / "cut.krec"
    cut.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.krec"
    garbage.write_bytes(b"\x93\x01\x02" * 100)
    proc = run_krec("replay", str(garbage), "-o", str(tmp_path / "never.krec"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not a krec log" in proc.stderr
    proc = run_krec("replay", str(cut), "-o", str(tmp_path / "half.krec"), "--password", "x")
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (0, 1)
    assert "truncated" in proc.stderr  # the warning, then the replay of the readable part
    proc = run_krec("diff", str(cut), str(garbage))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
