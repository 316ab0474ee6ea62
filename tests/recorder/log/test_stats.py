"""log/stats.py: request/reply latencies, busy time, errors and the percentile rule."""

from __future__ import annotations

import pytest
from factories import LogBuilder, error

from krec.recorder.log.reader import LogReader
from krec.recorder.log.stats import collect, percentile, to_json


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
