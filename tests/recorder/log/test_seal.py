"""The hash chain: LogWriter seals, `krec verify` finds each kind of tampering, keys, segments."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import msgpack
import pytest
from conftest import run_krec
from factories import LogBuilder, log_header, stream

from krec.recorder.log.reader import LogReader
from krec.recorder.log.seal import SEAL_EVENT, SealKeyError, load_key, verify_log
from krec.recorder.log.storage import segment_name
from krec.recorder.log.writer import LogWriter

GOLDEN = Path(__file__).resolve().parent.parent.parent / "golden"
KEY = b"0123456789abcdef0123456789abcdef"


class FakeClock:
    """A monotonic clock the test moves by hand (the 5 s interval without waiting 5 s)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sealed_log(path: Path, cells: int = 30, every: int = 20, key: bytes | None = None) -> Path:
    """A log of ``cells`` executions (6 records each), sealed every ``every`` records."""
    with LogBuilder(path, seal_every=every, seal_key=key) as b:
        for i in range(cells):
            b.execute(f"print({i})", [stream(f"{i}\n")], count=i + 1)
    return path


def split(path: Path) -> tuple[bytes, list[bytes]]:
    """The header's bytes and each record's bytes, as stored."""
    with LogReader(path) as r:
        header = os.pread(r._fd, r._data_start, 0)
        return header, [r.read_span(i, i + 1) for i in range(len(r))]


def join(path: Path, header: bytes, records: list[bytes]) -> Path:
    path.write_bytes(header + b"".join(records))
    return path


def kinds(path: Path) -> list[str]:
    with LogReader(path) as r:
        return [rec.event or rec.msg_type for rec in r]


def test_intact_log_verifies_closed_with_a_seal_every_n_records(tmp_path):
    log = sealed_log(tmp_path / "a.krec")
    with LogReader(log) as r:
        assert r.version == 2
        assert r.header["seal"]["alg"] == "sha256"
        seals = [rec for rec in r if rec.event == SEAL_EVENT]
        assert [s.raw["n"] for s in seals[:3]] == [20, 41, 62]  # 20 records, then the seal
        assert seals[-1].raw["final"] is True and seals[-1].index == len(r) - 1
        assert all("final" not in s.raw for s in seals[:-1])
    v = verify_log(str(log))
    assert (v.status, v.closed, v.sealed, v.records) == ("intact", True, v.records, v.records)
    out = run_krec("verify", str(log))
    assert out.returncode == 0, out.stderr
    assert "intact" in out.stdout and "closed" in out.stdout


def _first_message(path: Path, msg_type: str, after: int = 0) -> int:
    return next(i for i, k in enumerate(kinds(path)) if k == msg_type and i >= after)


def test_an_altered_record_is_named(tmp_path):
    log = sealed_log(tmp_path / "a.krec")
    header, records = split(log)
    i = _first_message(log, "stream", 30)
    raw = msgpack.unpackb(records[i], raw=False)
    raw["content"] = raw["content"].replace(b"5", b"6")
    records[i] = msgpack.packb(raw, use_bin_type=True)
    join(log, header, records)
    v = verify_log(str(log))
    assert v.status == "tampered" and v.first_bad == i
    assert v.problem == f"record #{i} altered"
    out = run_krec("verify", str(log))
    assert out.returncode == 1
    assert f"TAMPERED: record #{i} altered" in out.stdout


def test_a_removed_record_is_named(tmp_path):
    log = sealed_log(tmp_path / "a.krec")
    header, records = split(log)
    i = _first_message(log, "execute_reply", 50)
    del records[i]
    join(log, header, records)
    v = verify_log(str(log))
    assert v.status == "tampered" and v.first_bad == i
    assert v.problem.startswith(f"1 record(s) removed before #{i}")


def test_an_inserted_record_is_named(tmp_path):
    log = sealed_log(tmp_path / "a.krec")
    header, records = split(log)
    forged = msgpack.packb({"t": 1, "event": "client_connected"}, use_bin_type=True)
    records.insert(47, forged)
    join(log, header, records)
    v = verify_log(str(log))
    assert v.status == "tampered" and v.first_bad == 47
    assert v.problem.startswith("record #47 inserted")


def test_reordered_records_are_named(tmp_path):
    log = sealed_log(tmp_path / "a.krec")
    header, records = split(log)
    records[65], records[66] = records[66], records[65]
    join(log, header, records)
    v = verify_log(str(log))
    assert v.status == "tampered" and v.first_bad == 65
    assert "reordered" in v.problem


def test_a_removed_seal_is_tampering(tmp_path):
    log = sealed_log(tmp_path / "a.krec")
    header, records = split(log)
    assert kinds(log)[41] == SEAL_EVENT
    del records[41]
    join(log, header, records)
    v = verify_log(str(log))
    assert v.status == "tampered" and "seal record(s) removed" in v.problem


def test_an_altered_header_is_tampering(tmp_path):
    log = sealed_log(tmp_path / "a.krec")
    header, records = split(log)
    h = msgpack.unpackb(header, raw=False)
    h["host"] = "elsewhere"
    join(log, msgpack.packb(h, use_bin_type=True), records)
    v = verify_log(str(log))
    assert v.status == "tampered" and v.problem.startswith("the log header")


def test_a_tail_after_the_last_seal_is_unsealed_not_tampered(tmp_path):
    log = sealed_log(tmp_path / "a.krec")
    header, records = split(log)
    # a recording SIGKILLed: the final seal and the records after seal 7 never written
    assert kinds(log)[167] == SEAL_EVENT
    join(log, header, records[:175])
    v = verify_log(str(log))
    assert (v.status, v.closed, v.sealed) == ("intact", False, 168)
    assert any("#168..#174" in n and "unsealed" in n for n in v.notes)
    assert run_krec("verify", str(log)).returncode == 0
    strict = run_krec("verify", "--strict", str(log))
    assert strict.returncode == 1


def test_the_5_second_seal_uses_the_writers_clock(tmp_path):
    clock = FakeClock()
    path = tmp_path / "a.krec"
    w = LogWriter(path, log_header(), clock=clock)
    w.write_event("client_connected")
    w.write_through()
    clock.now += 4.9
    w.write_through()  # nothing due yet
    assert SEAL_EVENT not in kinds(path)
    clock.now += 0.2
    w.write_through()  # idle, but one record has waited 5 s: sealed without new records
    assert kinds(path) == ["client_connected", SEAL_EVENT]
    clock.now += 60
    w.write_through()  # nothing unsealed: no empty seal
    assert kinds(path) == ["client_connected", SEAL_EVENT]
    w.close()
    assert verify_log(str(path)).status == "intact"


def test_keyed_seals_need_the_key(tmp_path):
    key = tmp_path / "seal.key"
    key.write_bytes(KEY + b"\n")
    assert load_key(key) == KEY
    log = sealed_log(tmp_path / "a.krec", key=KEY)
    with LogReader(log) as r:
        assert r.header["seal"]["alg"] == "hmac-sha256"
        assert KEY.decode() not in json.dumps(r.header, default=str)
    assert b"0123456789abcdef" not in log.read_bytes()
    out = run_krec("verify", "--seal-key", str(key), str(log))
    assert out.returncode == 0, out.stderr
    assert "keyed seals" in out.stdout
    missing = run_krec("verify", str(log))
    assert missing.returncode == 2 and "give it with --seal-key" in missing.stderr
    other = tmp_path / "other.key"
    other.write_bytes(b"x" * 32)
    wrong = run_krec("verify", "--seal-key", str(other), str(log))
    assert wrong.returncode == 2 and "the key given is" in wrong.stderr


def test_a_keyed_chain_cannot_be_recomputed_without_the_key(tmp_path):
    """Whoever edits a keyed log and reseals it with a key of their own is found out."""
    log = sealed_log(tmp_path / "a.krec", key=KEY)
    header, records = split(log)
    raw = msgpack.unpackb(records[3], raw=False)
    raw["content"] = b'{"code": "print(666)"}'
    records[3] = msgpack.packb(raw, use_bin_type=True)
    join(log, header, records)
    assert verify_log(str(log), KEY).first_bad == 3
    forged = sealed_log(tmp_path / "b.krec", key=b"k" * 32)
    with pytest.raises(SealKeyError, match="sealed with key"):
        verify_log(str(forged), KEY)


@pytest.mark.parametrize(
    "content, message",
    [(None, "no such file"), (b"short", "at least 16"), ("dir", "is a directory")],
)
def test_a_bad_key_file_is_one_line_and_exit_2(tmp_path, content, message):
    log = sealed_log(tmp_path / "a.krec", cells=2)
    key = tmp_path / "k"
    if content == "dir":
        key.mkdir()
    elif content is not None:
        key.write_bytes(content)
    out = run_krec("verify", "--seal-key", str(key), str(log))
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    rec = run_krec("record", "--kernel", "python3", "--seal-key", str(key), "-o", str(tmp_path))
    assert rec.returncode == 2 and message in rec.stderr


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    junk = tmp_path / "junk.krec"
    junk.write_bytes(b"hello, not a log")
    for path, message in [(tmp_path / "none.krec", "no such file"), (junk, "not a krec log")]:
        out = run_krec("verify", str(path))
        assert out.returncode == 2, out
        assert message in out.stderr and "Traceback" not in out.stderr


def test_a_version_1_log_reads_as_before_and_verifies_unsealed():
    out = run_krec("verify", str(GOLDEN / "v1.krec"), "--json")
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["status"] == "unsealed" and found["seals"] == 0
    assert "format version 1 has no hash chain" in found["notes"][0]
    assert run_krec("verify", "--strict", str(GOLDEN / "v1.krec")).returncode == 1


def test_the_golden_v2_log_verifies_intact():
    out = run_krec("verify", str(GOLDEN / "v2.krec"))
    assert out.returncode == 0, out.stderr
    assert "intact" in out.stdout and "closed" in out.stdout


def _segments(log: Path, folder: Path, cuts: list[int]) -> list[Path]:
    """Cut ``log`` at record boundaries into segments, as the uploader writes them."""
    with LogReader(log) as r:
        bounds = [0] + [r.offsets[c] for c in cuts] + [r.indexed_bytes]
    data = log.read_bytes()
    folder.mkdir()
    parts = []
    for k in range(len(bounds) - 1):
        part = folder / segment_name(k)
        part.write_bytes(data[bounds[k] : bounds[k + 1]])
        parts.append(part)
    return parts


def test_segments_chain_across_segments(tmp_path):
    log = sealed_log(tmp_path / "a.krec")
    folder = tmp_path / "a.krec.d"
    parts = _segments(log, folder, [50, 100, 150])
    out = run_krec("verify", str(folder))
    assert out.returncode == 0, out.stderr
    assert "closed" in out.stdout
    # a segment in the middle goes missing: the chain breaks at the next seal
    os.unlink(parts[1])
    out = run_krec("verify", str(folder))
    assert out.returncode == 1 and "TAMPERED" in out.stdout
    # the last segment goes missing: the end is unsealed, and --strict says so
    shutil.rmtree(folder)
    parts = _segments(log, folder, [50, 100, 150])
    os.unlink(parts[-1])
    out = run_krec("verify", "--strict", str(folder))
    assert out.returncode == 1 and "no final seal" in out.stdout


def test_appending_after_a_restart_continues_the_chain(tmp_path):
    path = tmp_path / "a.krec"
    with LogWriter(path, log_header(), seal_every=7) as w:
        for i in range(10):
            w.write_event("client_connected", n=i)
    with LogWriter(path, append=True, seal_every=7) as w:
        w.write_event("restart", reason="requested")
        for i in range(10):
            w.write_event("client_connected", n=i)
    v = verify_log(str(path))
    assert (v.status, v.closed, v.sealed == v.records) == ("intact", True, True)
    # 7 records and a seal, 3 and the final seal; then restart + 6 and a seal, 4 and the final
    assert [i for i, k in enumerate(kinds(path)) if k == SEAL_EVENT] == [7, 11, 19, 24]


def test_a_failed_write_drops_records_without_breaking_the_chain(tmp_path):
    path = tmp_path / "a.krec"
    w = LogWriter(path, log_header(), seal_every=5)
    w.write_event("client_connected", n=0)
    w.flush()
    real = w._fd
    w._fd = os.open(os.devnull, os.O_RDONLY)  # writes fail with EBADF
    for i in range(8):
        w.write_event("client_connected", n=i + 1)
    w.flush()
    assert w.dropped == 8
    os.close(w._fd)
    w._fd = real
    w.write_event("client_connected", n=99)
    w.close()
    assert "records_dropped" in kinds(path)
    assert verify_log(str(path)).status == "intact"
