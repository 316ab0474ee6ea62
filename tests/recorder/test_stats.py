"""`krec stats`: counts, request/reply latencies, busy time, slowest requests, bytes."""

from __future__ import annotations

import json

import pytest
from conftest import run_krec
from factories import LogBuilder, error, stream

from krec.recorder.logfile import LogReader
from krec.recorder.stats import collect, percentile, to_json


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


def test_latency_busy_and_errors_are_exact(tmp_path):
    with LogBuilder(tmp_path / "s.krec") as log:
        for reply_ms in (2, 4, 10):
            req = log.message("execute_request", {"code": f"sleep({reply_ms})"})
            log.message("status", {"execution_state": "busy"}, parent=req, ms=1)
            log.message("execute_reply", {"status": "ok"}, parent=req, ms=reply_ms - 1)
            log.message("status", {"execution_state": "idle"}, parent=req, ms=1)
        # two overlapping busy periods (a subshell): 5 ms of wall time, not 8
        a = log.message("execute_request", {"code": "a"}, ms=100)
        b = log.message("execute_request", {"code": "b"}, subshell_id="s1", ms=0)
        log.message("status", {"execution_state": "busy"}, parent=a, ms=1)
        log.message("status", {"execution_state": "busy"}, parent=b, ms=1)
        log.message("status", {"execution_state": "idle"}, parent=a, ms=3)
        log.message("status", {"execution_state": "idle"}, parent=b, ms=1)
        log.message(*error(), parent=a)
        log.message("execute_reply", {"status": "error", "ename": "E", "evalue": ""}, parent=a)
        log.message("kernel_info_request", {})
        log.event("recording_stopped", reason="test")
    with LogReader(log.path) as reader:
        stats = collect(reader)
        data = to_json(stats, reader)
    latency = data["latency"]["execute_request"]
    assert latency == {"count": 4, "median_s": 0.004, "p95_s": 0.01, "max_s": 0.01}
    assert data["requests_by_type"] == {"execute_request": 5, "kernel_info_request": 1}
    assert data["unanswered"] == 2  # request b and the kernel_info_request
    assert data["error_outputs"] == 1 and data["error_replies"] == 1
    assert data["busy_s"] == pytest.approx(0.002 + 0.004 + 0.010 + 0.005)  # busy to idle
    assert data["slowest"][0]["summary"] == "sleep(10)"
    assert data["slowest"][0]["short_id"].endswith("_3")


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [([1], 50, 1), ([1, 2], 50, 1), ([1, 2, 3, 4], 50, 2), (list(range(1, 101)), 95, 95),
     (list(range(1, 21)), 95, 19), ([5, 9], 95, 9)],
)  # fmt: skip
def test_percentile_is_nearest_rank(values, p, expected):
    assert percentile(values, p) == expected


def test_bad_input(tmp_path):
    result = run_krec("stats", str(tmp_path / "missing.krec"))
    assert result.returncode == 2 and "no such file" in result.stderr
    with LogBuilder(tmp_path / "x.krec") as log:
        log.execute("x", [stream("y")])
    cut = tmp_path / "cut.krec"
    cut.write_bytes(log.path.read_bytes()[:-3])
    result = run_krec("stats", str(cut))
    assert result.returncode == 0 and "truncated last record" in result.stderr
