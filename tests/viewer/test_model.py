"""LogModel: stepwise indexing, growth of a live log, rows, time lookup and formatting."""

from __future__ import annotations

from pathlib import Path

import pytest

from krec.recorder.log.oneline import short_id
from krec.recorder.log.reader import LogReader
from krec.recorder.log.writer import LogWriter
from krec.viewer.model import (
    LogModel,
    format_duration,
    format_duration_short,
    format_rel,
    parse_time,
)


def test_indexes_in_steps_then_reports_complete(sample_log: Path) -> None:
    model = LogModel(LogReader(sample_log, index=False))
    steps = 0
    while model.index_more(10):
        steps += 1
        assert not model.complete
    assert model.complete
    assert len(model) == 70
    assert steps == 7
    model.close()


def test_rows_summarize_records(sample_log: Path) -> None:
    model = LogModel(LogReader(sample_log))
    model.complete = True
    rows = [model.row(i) for i in range(len(model))]
    assert rows[0].event == "kernel_started" and rows[0].is_event
    error = next(r for r in rows if r.msg_type == "error")
    assert error.tone == "error" and error.summary == "ZeroDivisionError: division by zero"
    stderr = next(r for r in rows if r.summary == "stderr: stderr line")
    assert stderr.tone == "warning"
    sub = next(r for r in rows if r.subshell)
    assert sub.subshell == "sub-1" and sub.msg_type == "execute_request"
    request = next(r for r in rows if r.msg_type == "execute_request")
    reply = next(r for r in rows if r.msg_type == "execute_reply")
    # the parent column is the short id `krec show` prints and `parent:` accepts
    assert reply.parent == short_id(model.record(request.index).msg_id) == "c1a2_2"
    assert model.row(5) is model.row(5)  # cached
    model.close()


def test_find_time_is_the_first_record_at_or_after(sample_log: Path) -> None:
    model = LogModel(LogReader(sample_log))
    times = [model.rel_time(i) for i in range(len(model))]
    for target in (0, 30_000_000, 2_000_000_000, 2_059_000_000, times[-1]):
        i = model.find_time(target)
        assert times[i] >= target
        assert i == 0 or times[i - 1] < target
    assert model.find_time(10**15) == len(model) - 1
    view = [i for i in range(len(model)) if i % 3 == 0]
    pos = model.find_time(2_000_000_000, view)
    assert times[view[pos]] >= 2_000_000_000 > times[view[pos - 1]]
    model.close()


def test_grow_picks_up_appended_records(sample_log: Path) -> None:
    model = LogModel(LogReader(sample_log, index=False))
    assert model.grow() == 0  # nothing before the first pass has finished
    while model.index_more(1000):
        pass
    assert model.grow() == 0  # the file has not changed
    first = model.row(len(model) - 1)
    with LogWriter(sample_log, append=True) as w:
        for n in range(5):
            w.write_event("heartbeat_lost", t=10**18 + n, after=n)
    assert model.grow() == 5
    assert len(model) == 75
    assert model.row(74).event == "heartbeat_lost" and model.row(74).tone == "error"
    assert model.row(69) == first
    model.close()


def test_time_formats() -> None:
    assert format_rel(1_234_567_890) == "1.235"
    assert format_rel(3_723_400_000_000) == "1:02:03.4"
    assert format_duration(850_000) == "850 us"
    assert format_duration(12_340_000) == "12.3 ms"
    assert format_duration(4_200_000_000) == "4.20 s"
    assert format_duration(192_000_000_000) == "3 m 12 s"
    shorts = [850_000, 5_700_000, 404_000_000, 2_000_000_000, 192_000_000_000]
    assert [format_duration_short(ns) for ns in shorts] == [
        "850us",
        "5.7ms",
        "404ms",
        "2.00s",
        "3m12s",
    ]
    assert parse_time("12.5") == 12.5
    assert parse_time("+12.5s") == 12.5
    assert parse_time("1:02") == 62
    assert parse_time("1:02:03.5") == 3723.5
    with pytest.raises(ValueError):
        parse_time("soon")
    with pytest.raises(ValueError):
        parse_time("")
