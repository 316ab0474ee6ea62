"""ExchangeIndex: which request each record answers, the flattened thread rows, and timings."""

from __future__ import annotations

from pathlib import Path

from krec.recorder.log.reader import LogReader
from krec.viewer.exchanges import ERROR, OK, ExchangeIndex
from krec.viewer.model import LogModel


def build(path: Path, split: int | None = None) -> tuple[LogReader, ExchangeIndex]:
    reader = LogReader(path)
    model = LogModel(reader)
    threads = ExchangeIndex()
    if split is None:
        threads.update(model.iter_packed(0, len(reader)))
    else:
        threads.update(model.iter_packed(0, split), batch=7)
        threads.update(model.iter_packed(split, len(reader), chunk_bytes=100), batch=7)
    return reader, threads


def test_every_client_request_starts_a_thread(sample_log: Path) -> None:
    reader, threads = build(sample_log)
    with reader:
        expected = [
            r.index for r in reader if r.source == "client" and r.ch in ("shell", "control")
        ]
        assert list(threads.requests) == expected
        assert len(threads) == 13


def test_records_belong_to_the_request_they_answer(sample_log: Path) -> None:
    reader, threads = build(sample_log)
    with reader:
        by_id = {r.msg_id: r.index for r in reader if not r.is_event}
        for record in reader:
            owner = threads.request_of(record.index)
            if record.is_event:
                assert owner == -1
                continue
            if record.index in threads.requests:
                assert threads.requests[owner] == record.index
                continue
            if record.msg_type == "input_reply":
                # through its input_request, to the execute_request
                ask = reader[by_id[record.parent_id]]
                assert ask.msg_type == "input_request"
                assert threads.requests[owner] == by_id[ask.parent_id]
            elif record.parent_id == "elsewhere":
                assert owner == -1
            else:
                assert threads.requests[owner] == by_id[record.parent_id]


def test_flattened_rows_round_trip(sample_log: Path) -> None:
    reader, threads = build(sample_log)
    with reader:
        owned = [i for i in range(len(reader)) if threads.request_of(i) >= 0]
        assert threads.row_count() == len(owned)
        shown = [threads.locate(row)[1] for row in range(threads.row_count())]
        assert sorted(shown) == owned
        for row, index in enumerate(shown):
            assert threads.row_of(index) == row
        # each request is followed by its members
        for r in range(len(threads)):
            members = threads.members(r)
            assert members[0] == threads.requests[r]
            assert len(members) == 1 + threads.count[r]


def test_timings_and_status(sample_log: Path) -> None:
    reader, threads = build(sample_log)
    with reader:
        codes = {r: reader[threads.requests[r]].content.get("code") for r in range(len(threads))}
        slow = next(r for r, c in codes.items() if c == "import time\ntime.sleep(2)")
        failing = next(r for r, c in codes.items() if c == "1 / 0")
        unfinished = next(r for r, c in codes.items() if c == "while True: pass")
        assert 2_000_000_000 <= threads.duration(slow) < 2_100_000_000
        assert threads.t_request[slow] < threads.t_busy[slow] < threads.t_idle[slow]
        assert threads.status[failing] == ERROR
        assert threads.status[slow] == OK
        assert threads.duration(unfinished) == -1
        comm = next(r for r in codes if reader[threads.requests[r]].msg_type == "comm_msg")
        # unfinished ones sort first: the cell still running, the comm_msg nobody answered
        assert set(threads.by_duration()[:2]) == {unfinished, comm}
        assert threads.by_duration()[2] == slow
        assert threads.duration(slow) >= threads.slow_threshold()
        assert threads.duration(failing) < threads.slow_threshold()


def test_resumed_threading_equals_one_pass(sample_log: Path) -> None:
    reader, whole = build(sample_log)
    reader.close()
    for split in (1, 20, 46, 60):
        reader, parts = build(sample_log, split)
        reader.close()
        assert parts.owner == whole.owner
        assert parts.requests == whole.requests
        assert parts.count == whole.count
        assert parts.t_idle == whole.t_idle
        assert parts.row_count() == whole.row_count()


def test_an_input_reply_without_parent_belongs_to_its_prompts_request(tmp_path: Path) -> None:
    # jupyter_client answers input() with an empty parent header: owner.py's rule
    from factories import LogBuilder

    path = tmp_path / "prompt.krec"
    with LogBuilder(path) as b:
        req = b.message("execute_request", {"code": "input()", "allow_stdin": True})
        b.message("input_request", {"prompt": "", "password": False}, parent=req)
        b.message("input_reply", {"value": "x"})
        b.message("input_reply", {"value": "stray"})  # no prompt open any more
        b.message("execute_reply", {"status": "ok"}, parent=req)
    reader, threads = build(path)
    with reader:
        assert [threads.request_of(i) for i in range(5)] == [0, 0, 0, -1, 0]
