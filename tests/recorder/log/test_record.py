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
