"""`krec stats`: the report of a recorded session, as JSON and as text; bad input."""

from __future__ import annotations

import json

from conftest import run_krec
from factories import LogBuilder, stream

from krec.recorder.log.reader import LogReader


def test_stats_of_a_recorded_session(rich_log):
    result = run_krec("stats", str(rich_log), "--json")
    assert result.returncode == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    with LogReader(rich_log) as reader:
        records = list(reader)
    messages = [r for r in records if not r.is_event]
    requests = [
        r for r in messages
        if r.source == "client" and r.msg_type.endswith("_request") and r.ch in ("shell", "control")
    ]  # fmt: skip
    assert data["records"] == len(records) and data["messages"] == len(messages)
    assert data["requests"] == len(requests) and data["unanswered"] == 0
    assert data["error_outputs"] == 2 and data["error_replies"] == 2  # 1/0 and a syntax error
    assert data["latency"]["execute_request"]["count"] == 12
    assert sum(row["count"] for row in data["by_type"]) == len(messages)
    assert sum(data["bytes_by_channel"].values()) == sum(r.size for r in messages)
    assert 0 < data["busy_s"] <= data["span_s"]
    assert data["events"]["kernel_started"] == 1
    slowest = data["slowest"]
    assert len(slowest) == 5
    assert [s["latency_s"] for s in slowest] == sorted(
        (s["latency_s"] for s in slowest), reverse=True
    )
    assert slowest[0]["latency_s"] == max(v["max_s"] for v in data["latency"].values())

    text = run_krec("stats", str(rich_log))
    assert text.returncode == 0
    for heading in ("messages by channel and type", "reply latency", "slowest requests",
                    "bytes by channel", "busy"):  # fmt: skip
        assert heading in text.stdout
    assert "execute_request" in text.stdout and "iopub" in text.stdout


def test_bad_input(tmp_path):
    result = run_krec("stats", str(tmp_path / "missing.krec"))
    assert result.returncode == 2 and "no such file" in result.stderr
    with LogBuilder(tmp_path / "x.krec") as log:
        log.execute("x", [stream("y")])
    cut = tmp_path / "cut.krec"
    cut.write_bytes(log.path.read_bytes()[:-3])
    result = run_krec("stats", str(cut))
    assert result.returncode == 0 and "truncated last record" in result.stderr
