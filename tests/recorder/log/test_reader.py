"""LogReader: the golden files, truncation, bad files, following, random access."""

from __future__ import annotations

import os
from pathlib import Path

import msgpack
import pytest
from factories import T0, LogBuilder, log_header, stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krec.recorder.errors import LogFormatError
from krec.recorder.log.reader import LogReader
from krec.recorder.log.writer import LogWriter

GOLDEN = Path(__file__).resolve().parent.parent.parent / "golden"
_SLOW_FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def test_golden_v1_log_stays_readable():
    with LogReader(GOLDEN / "v1.krec") as reader:
        assert reader.version == 1 and reader.warnings == []
        assert reader.header["host"] == "golden"
        assert reader.header["kernel"]["name"] == "python3"
        assert "key" not in reader.header["connection"]
        assert reader.start_ns == T0
        assert len(reader) == 15
        kinds = [r.event if r.is_event else r.msg_type for r in reader]
        assert kinds == [
            "kernel_started", "client_subscribed", "iopub_welcome", "execute_request", "status",
            "stream", "input_request", "input_reply", "error", "execute_reply", "comm_msg",
            "interrupt_request", "interrupt", "status", "recording_stopped",
        ]  # fmt: skip
        request = reader[3]
        assert (request.ch, request.source) == ("shell", "client")
        assert request.content["code"] == "print('héllo')\nname = input()"
        assert request.ids == [b"\x00\x80\x00\x00\x29"]
        assert reader[5].content["text"] == "héllo\n"
        assert reader[5].parent_id == request.msg_id == "c0ffee00-1111_1_1"
        assert reader[7].parent_type == "input_request"
        assert reader[9].metadata == {"status": "error"}
        assert reader[10].buffers == [b"\x00\x01\x02\xff"]
        assert reader[11].subshell_id == "sub-1" and reader[11].ch == "control"
        assert reader[2].source == "krec"
        assert reader[0].fields["argv"] == ["python", "-m", "ipykernel_launcher"]
        assert reader[14].t - reader.start_ns == 20_000_000
        assert reader[9].to_json(reader.start_ns)["rel"] == 0.011


def test_golden_v2_log_stays_readable():
    with LogReader(GOLDEN / "v2.krec") as reader:
        assert reader.version == 2 and reader.warnings == []
        assert reader.header["audit"] is True
        assert reader.header["seal"] == {
            "alg": "sha256", "records": 4, "seconds": 5.0, "fp_bytes": 4
        }  # fmt: skip
        kinds = [r.event if r.is_event else r.msg_type for r in reader]
        assert kinds == [
            "kernel_started", "client_identity", "execute_request", "status", "seal", "stream",
            "display_data", "execute_reply", "status", "seal", "recording_stopped", "seal",
        ]  # fmt: skip
        assert reader[2].content["code"] == "print('héllo')"
        assert reader[5].content == {"name": "stdout", "text": ""}
        assert reader[5].raw["dropped"] == {"text": 6}
        assert reader[6].raw["dropped"]["data"]["image/png"] == 4000
        assert reader[7].content["ename"] == "NameError"
        seal = reader[11]
        assert (seal.raw["seq"], seal.raw["n"], seal.raw["final"]) == (2, 11, True)
        assert len(seal.raw["fp"]) == 4 and len(seal.raw["digest"]) == 32


# -- damaged and foreign files --------------------------------------------------


def _small_log(path: Path) -> Path:
    with LogBuilder(path) as log:
        log.event("kernel_started", pid=1)
        log.execute("print('hi')", [stream("hi\n")], count=1)
        log.message("comm_msg", {"comm_id": "w", "data": {}}, buffers=(b"\x00" * 300,))
    return path


def test_truncated_at_every_byte_of_the_last_record(tmp_path):
    whole = _small_log(tmp_path / "whole.krec")
    with LogReader(whole) as reader:
        expected = [r.raw for r in reader]
        last = reader.offsets[-1]
    data = whole.read_bytes()
    cut_path = tmp_path / "cut.krec"
    for cut in range(last, len(data)):
        cut_path.write_bytes(data[:cut])
        with LogReader(cut_path) as reader:
            assert [r.raw for r in reader] == expected[:-1], cut
            if cut == last:
                assert reader.warnings == []
            else:
                assert reader.truncated
                assert reader.warnings == [
                    f"truncated last record: {cut - last} bytes at the end of the file are ignored"
                ]


def test_a_growing_log_is_followed(tmp_path):
    path = tmp_path / "live.krec"
    writer = LogWriter(path, log_header())
    writer.write_event("kernel_started", t=T0, pid=1)
    writer.flush()
    reader = LogReader(path)
    assert len(reader) == 1
    # half a record, as a writer killed mid-flush leaves it: a warning, then it completes
    record = msgpack.packb({"t": T0 + 1, "event": "interrupt", "mode": "signal"})
    with open(path, "ab") as f:
        f.write(record[:5])
    assert reader.refresh() == 0 and reader.truncated
    with open(path, "ab") as f:
        f.write(record[5:])
    assert reader.refresh() == 1 and reader.warnings == []
    assert reader[1].event == "interrupt"
    reader.close()
    writer.close()


def test_index_in_steps(tmp_path):
    path = _small_log(tmp_path / "s.krec")
    with LogReader(path, index=False) as reader:
        assert len(reader) == 0
        assert reader.index_more(3) is True
        assert len(reader) == 3
        while reader.index_more(2):
            pass
        assert len(reader) == 9  # 8 and the final seal
        assert [r.index for r in reader.records(2, 5)] == [2, 3, 4]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file, not a krec log"),
        (b'{"cells": []}\n', "not a krec log (no krec header)"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not a krec log (no krec header)"),
        (msgpack.packb({"format": "krec", "version": 1})[:-3], "truncated krec header"),
        (msgpack.packb({"format": "mitmproxy", "version": 1}), "not a krec log (no krec header)"),
        (msgpack.packb([1, 2, 3]), "not a krec log (no krec header)"),
        (msgpack.packb({"format": "krec", "version": "1"}), "invalid version '1'"),
        (
            msgpack.packb({"format": "krec", "version": 7}),
            "log format version 7 is newer than this krec understands (version 2)",
        ),
    ],
)
def test_foreign_and_damaged_files_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "bad.krec"
    path.write_bytes(content)
    with pytest.raises(LogFormatError) as e:
        LogReader(path)
    assert message in str(e.value)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(LogFormatError, match="no such file"):
        LogReader(tmp_path / "nope.krec")
    with pytest.raises(LogFormatError, match="is a directory"):
        LogReader(tmp_path)


def test_corrupt_data_in_the_middle_keeps_the_records_before_it(tmp_path):
    path = _small_log(tmp_path / "c.krec")
    with LogReader(path) as reader:
        cut = reader.offsets[4]
    data = bytearray(path.read_bytes())
    data[cut] = 0xC1  # never used in msgpack
    path.write_bytes(bytes(data))
    with LogReader(path) as reader:
        assert len(reader) == 4
        assert reader.warnings and reader.warnings[0].startswith(f"corrupt data at byte {cut}")


def test_undecodable_records_read_as_events_and_keep_positions(tmp_path):
    path = tmp_path / "odd.krec"
    with open(path, "wb") as f:
        f.write(msgpack.packb(log_header()))
        f.write(msgpack.packb({"t": 1, "event": "first"}))
        f.write(msgpack.packb([1, 2]))  # not a map
        f.write(b"\x81\xa1t\xa2\xff\xfe")  # invalid UTF-8 in a str
        f.write(b"\x81\x91\x01\x02")  # a list as a map key
        f.write(msgpack.packb({"t": 5, "event": "last"}))
    with LogReader(path) as reader:
        records = list(reader)
        assert [r.index for r in records] == [0, 1, 2, 3, 4]
        assert records[0].event == "first" and records[4].event == "last"
        assert records[1].event == "unreadable_record"
        assert records[2].raw["t"] == "\ufffd\ufffd"
        assert records[3].event == "unreadable_record"
        assert reader[3].event == "unreadable_record"


@settings(max_examples=40, deadline=None, suppress_health_check=_SLOW_FIXTURE_OK)
@given(garbage=st.binary(max_size=200), keep=st.integers(0, 400))
def test_garbage_after_good_records_never_raises(tmp_path, garbage, keep):
    good = GOLDEN / "v1.krec"
    path = tmp_path / f"{os.urandom(6).hex()}.krec"
    data = good.read_bytes()
    path.write_bytes(data[: len(data) - keep] + garbage)
    try:
        reader = LogReader(path)
    except LogFormatError:
        return
    with reader:
        for record in reader:
            record.to_json(reader.start_ns)
            _ = (record.msg_type, record.parent_id, record.content)


def test_random_access_matches_streaming_on_a_real_session(rich_log):
    with LogReader(rich_log) as reader:
        streamed = [r.raw for r in reader]
        assert [reader.raw_record(i) for i in range(len(reader))] == streamed
        assert [r.raw for r in reader[::-1]] == streamed[::-1]
        assert reader[-2].event == "recording_stopped" and reader[-1].event == "seal"
        with pytest.raises(IndexError):
            reader[len(reader)]
