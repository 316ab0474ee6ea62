"""Record: accessors of a decoded record and its JSON."""

from __future__ import annotations

import json
from pathlib import Path

from factories import T0
from hypothesis import HealthCheck

from krec.recorder.log.record import Record

GOLDEN = Path(__file__).resolve().parent.parent.parent / "golden"
_SLOW_FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def test_record_to_json_and_size():
    record = Record(
        7,
        {
            "t": T0 + 1_500_000_000,
            "ch": "iopub",
            "from": "kernel",
            "ids": [b"topic", b"\xff"],
            "header": b'{"msg_id": "m", "msg_type": "stream"}',
            "parent": b"{}",
            "metadata": b"{}",
            "content": b'{"name": "stdout", "text": "x"}',
            "buffers": [b"12345"],
        },
    )
    data = record.to_json(T0)
    assert data["rel"] == 1.5 and data["ids"] == ["topic", "ff"] and data["buffers"] == [5]
    assert data["content"] == {"name": "stdout", "text": "x"}
    json.dumps(data)
    assert record.size == 37 + 2 + 2 + 31 + 5


_FRAMES = [
    b'{"msg_id": "a_1_2", "msg_type": "execute_request", "session": "s"}',
    b'{ "msg_id" : "x", "msg_type" : "status" }',
    b'{"msg_type": "stream", "msg_id": "m"}',
    b'{"msg_id": "a\\"b", "msg_type": "t"}',
    b'{"msg_id": "\\u0061", "msg_type": "\\u0062"}',
    b'{"msg_id": "m", "msg_type": "t", "nested": {"msg_type": "x"}}',
    b'{"msg_id": "m", "msg_type": "t", "msg_type": "u"}',
    b'{"msg_id": "msg_type", "msg_type": "t", "msg_type": "u"}',
    b'{"msg_id": "\xff", "msg_type": "t"}',
    b'{"status": "ok", "user_expressions": {}, "payload": []}',
    b'{"status": "\\u0065rror", "user_expressions": {}}',
    b'{"a": {"status": "error"}}',
    b'{"status": null, "x": {}}',
    b"not json {",
    b"[1, {}]",
    b"{}",
]


def test_peeks_read_what_peek_field_reads():
    from krec.recorder.log.record import peek_id_and_type, peek_str
    from krec.recorder.wire import peek_field

    for frame in _FRAMES:
        expected = (peek_field(frame, b'"msg_id"') or "", peek_field(frame, b'"msg_type"') or "")
        assert peek_id_and_type(frame) == expected, frame
        for key in (b'"msg_id"', b'"msg_type"', b'"status"'):
            assert peek_str(frame, key) == peek_field(frame, key), (frame, key)
