"""The messages table built a column at a time (catalog/rows.py) holds what reading each
record on its own gives, for ordinary logs, for batches smaller than a cell, and for
malformed records (missing frames, frames that are not bytes, headers that are not JSON
objects, numbers where strings belong, times that are not integers)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from factories import T0, LogBuilder, error, log_header, stream, synthetic_log

from krec.recorder.catalog import extract
from krec.recorder.catalog.extract import LogExtract
from krec.recorder.catalog.schema import MESSAGES
from krec.recorder.log.reader import LogReader
from krec.recorder.log.stats import union_length
from krec.recorder.wire import peek_field

ROOT = Path(__file__).resolve().parents[3]
_COUNT = re.compile(rb'"execution_count"\s*:\s*(-?\d+)')


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _object(frame: Any) -> dict[str, Any]:
    if not isinstance(frame, bytes) or not frame:
        return {}
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _reference(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Message rows and session counts read record by record, as docs/catalog.md says."""
    rows: list[dict[str, Any]] = []
    facts = {"records": 0, "messages": 0, "requests": 0, "errors": 0, "first": 0, "last": 0}
    pending: dict[str, int] = {}
    busy_since: dict[str, int] = {}
    busy: list[tuple[int, int]] = []
    kernel_info: dict[str, Any] = {}
    with LogReader(path) as reader:
        audit = bool(reader.header.get("audit"))
        for index, raw in reader.raw_records():
            facts["records"] += 1
            t = raw.get("t") if isinstance(raw.get("t"), int) else 0
            if t:
                facts["first"] = facts["first"] or t
                facts["last"] = max(facts["last"], t)
            if "event" in raw:
                continue
            facts["messages"] += 1
            frames = {
                k: raw.get(k) if isinstance(raw.get(k), bytes) else b""
                for k in ("header", "parent", "content")
            }
            header, content = _object(frames["header"]), frames["content"]
            parent = _object(frames["parent"]) if len(frames["parent"]) > 2 else {}
            buffers = raw.get("buffers") or ()
            row: dict[str, Any] = {name: None for name, _, _ in MESSAGES}
            row.update(
                record=index,
                time=t // 1000,
                channel=raw.get("ch") if isinstance(raw.get("ch"), str) else None,
                direction=raw.get("from") if isinstance(raw.get("from"), str) else None,
                msg_type=_text(header.get("msg_type")),
                msg_id=_text(header.get("msg_id")),
                parent_msg_id=_text(parent.get("msg_id")),
                parent_msg_type=_text(parent.get("msg_type")),
                size=sum(map(len, frames.values()))
                + len(raw.get("metadata") or b"")
                + sum(len(b) for b in buffers if isinstance(b, bytes)),
            )
            for key in ("session", "username", "subshell_id", "version"):
                row[key] = header.get(key) if isinstance(header.get(key), str) else None
            mt = row["msg_type"] or ""
            request = row["direction"] == "client" and row["channel"] in ("shell", "control")
            if request:
                facts["requests"] += 1
                if row["msg_id"]:
                    pending[row["msg_id"]] = t
                if mt == "execute_request" and not audit and content:
                    row["code"] = _text(_object(content).get("code"))
            elif mt == "status":
                row["execution_state"] = state = peek_field(content, b'"execution_state"')
                key = row["parent_msg_id"] or ""
                if state == "busy":
                    busy_since.setdefault(key, t)
                elif state == "idle" and key in busy_since:
                    busy.append((busy_since.pop(key), t))
            elif mt == "error" or mt.endswith("_reply"):
                if mt == "kernel_info_reply" and not kernel_info:
                    kernel_info = _object(content)
                    status = _text(kernel_info.get("status"))
                else:
                    status = peek_field(content, b'"status"') if mt != "error" else None
                row["status"] = status
                facts["errors"] += status == "error"
                if mt == "error" or status == "error":
                    body = _object(content)
                    row["ename"] = _text(body.get("ename"))
                    row["evalue"] = (
                        body.get("evalue") if isinstance(body.get("evalue"), str) else None
                    )
                if mt.endswith("_reply") and row["parent_msg_id"] is not None:
                    sent = pending.pop(row["parent_msg_id"], None)
                    if sent is not None:
                        row["latency_ms"] = (t - sent) / 1e6
            if mt in ("execute_reply", "execute_input", "execute_result") and not request:
                m = _COUNT.search(content)
                row["execution_count"] = int(m.group(1)) if m else None
            rows.append(row)
        facts["start"] = reader.start_ns or facts["first"]
    facts["busy_s"] = union_length(busy) / 1e9
    facts["kernel_implementation"] = _text(kernel_info.get("implementation"))
    return rows, facts


def _catalogued(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with LogReader(path) as reader:
        ex = LogExtract(reader, str(path), 0, checked=lambda: ([], {}))
        batches = [(dataset, batch) for dataset, _, batch in ex.batches()]
    messages = pa.Table.from_batches([b for d, b in batches if d == "messages"])
    messages = messages.set_column(2, "time", messages["time"].cast(pa.int64()))
    sessions = pa.Table.from_batches([b for d, b in batches if d == "sessions"])
    for name in ("start", "end"):
        i = sessions.schema.get_field_index(name)
        sessions = sessions.set_column(i, name, sessions[name].cast(pa.int64()))
    rows = sorted(messages.drop_columns(["log_id"]).to_pylist(), key=lambda r: r["record"])
    (session,) = sessions.to_pylist()
    return rows, session


def _assert_same(path: Path) -> None:
    expected, facts = _reference(path)
    rows, session = _catalogued(path)
    for row in expected:
        row.pop("log_id")
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert got == want, f"record {want['record']}"
    for key in ("records", "messages", "requests", "errors", "busy_s", "kernel_implementation"):
        assert session[key] == facts[key], key
    assert session["start"] == facts["start"] // 1000
    assert session["end"] == (facts["last"] or facts["start"]) // 1000


def _odd_log(path: Path) -> Path:
    """Ordinary cells around records no krec recorder writes, but a damaged or foreign
    log may hold."""
    with LogBuilder(path, log_header()) as b:
        info = b.message("kernel_info_request")
        b.message(
            "kernel_info_reply",
            {"status": "ok", "implementation": "ipython", "protocol_version": "5.4"},
            parent=info,
        )
        b.execute("print('hi')", [stream("hi\n")], count=1)
        req = b.execute("1/0", [error()], status="error", count=2)
        b.message("execute_reply", {"status": "ok", "execution_count": 2}, parent=req)  # again
        hdr = json.dumps({"msg_id": "m1", "msg_type": "status", "session": 7, "version": ""})
        w, t = b.writer, T0 + 10**12
        frames = {"header": hdr.encode(), "parent": b"{}", "metadata": b"{}", "content": b"{}"}
        odd: list[dict[str, Any]] = [
            {"t": t, "ch": "iopub", "from": "kernel", **frames},  # no ids, no buffers
            {"t": t + 1, "ch": "iopub", "from": "kernel", "header": b"not json", "content": b"x"},
            {"t": 1.5, "ch": "shell", "from": "client", "header": b"[1, 2]", "parent": "str"},
            {"t": "soon", "ch": b"shell", "from": "client", "header": b""},
            {"t": t + 2, "ch": "shell", "from": "kernel", "header": b'{"msg_type": ""}'},
            {
                "t": t + 3,
                "ch": "shell",
                "from": "kernel",
                "header": b'{"msg_type": "execute_reply", "msg_id": 5, "subshell_id": "s"}',
                "parent": b'{"msg_id": "' + req["msg_id"].encode() + b'"}',
                "content": b'{"status": "error", "ename": 3, "evalue": "v", "a": {}}',
                "buffers": [b"12345", "text", 7],
                "metadata": None,
            },
            {
                "t": t + 4,
                "ch": "iopub",
                "from": "kernel",
                "header": b'{"msg_type": "error"}',
                "content": b'{"ename": "E", "evalue": null}',
            },  # fmt: skip
            {
                "t": t + 5,
                "ch": "iopub",
                "from": "kernel",
                "header": b'{"msg_type": "status"}',
                "parent": b'{"msg_id": "p"}',
                "content": b'{"execution_state": "busy"}',
            },  # fmt: skip
            {
                "t": t + 6,
                "ch": "iopub",
                "from": "kernel",
                "header": b'{"msg_type": "status"}',
                "parent": b'{"msg_id": "p"}',
                "content": b'{"execution_state": "idle"}',
            },  # fmt: skip
            {
                "t": t + 7,
                "ch": "shell",
                "from": "kernel",
                "header": b'{"msg_type": "complete_reply"}',
                "content": b'{"status": "ok", "matches": [{"status": "no"}], "status": "aborted"}',
            },  # fmt: skip
            {"t": 0, "event": "restart"},
        ]
        for record in odd:
            w.write_record(record)
        b.t = t + 10
        b.execute("x = 1", count=3)
    return path


def test_ordinary_logs_give_the_rows_of_a_record_by_record_reading(tmp_path: Path, rich_log):
    for path in (rich_log, *sorted((ROOT / "sample_sessions").glob("*.krec"))):
        _assert_same(path)
    _assert_same(synthetic_log(tmp_path / "synth.krec", 3000))


def test_small_batches_pair_replies_and_busy_spans_across_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(extract, "BATCH_ROWS", 5)
    monkeypatch.setattr(extract, "_STEP", 3)
    _assert_same(synthetic_log(tmp_path / "synth.krec", 800))
    _assert_same(_odd_log(tmp_path / "odd.krec"))


def test_malformed_records_give_the_rows_of_a_record_by_record_reading(tmp_path: Path):
    _assert_same(_odd_log(tmp_path / "odd.krec"))


def test_a_log_over_several_days_has_rows_in_each(tmp_path: Path):
    path = tmp_path / "days.krec"
    with LogBuilder(path) as b:
        for day in range(3):
            b.execute(f"a = {day}", count=day + 1)
            b.tick(86_400_000)
    with LogReader(path) as reader:
        ex = LogExtract(reader, str(path), 0, checked=lambda: ([], {}))
        dates = [date for dataset, date, _ in ex.batches() if dataset == "messages"]
    assert dates == ["2023-11-14", "2023-11-15", "2023-11-16"]
    _assert_same(path)
