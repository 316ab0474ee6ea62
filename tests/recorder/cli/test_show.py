"""`krec show` as a user runs it: lines, JSON, filters, pipes, bad input, warnings, follow."""

from __future__ import annotations

import json
import signal
import subprocess

import msgpack
import pytest
from conftest import KREC, run_krec, wait_for
from factories import LogBuilder, stream, synthetic_log

from krec.recorder.log.oneline import short_id
from krec.recorder.log.reader import LogReader


@pytest.fixture(scope="module")
def records(rich_log):
    with LogReader(rich_log) as reader:
        return list(reader), reader.start_ns


def test_one_aligned_line_per_record(rich_log, records):
    recs, _ = records
    result = run_krec("show", str(rich_log))
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(recs)
    assert "\x1b[" not in result.stdout  # plain when piped
    columns = set()
    for line, record in zip(lines, recs, strict=True):
        kind = record.event if record.is_event else record.msg_type
        columns.add(line.index(f" {kind} ") + 1)
        if record.is_event:
            assert line.split()[1:3] == ["event", "*"]
        else:
            assert line.split()[1] == record.ch
            assert f" {short_id(record.msg_id)} " in line
    assert len(columns) == 1, "the msg_type column is aligned"
    text = result.stdout
    assert "ZeroDivisionError: division by zero" in text
    assert "stderr: stderr line" in text
    assert "[3] 42" in text  # execute_result
    assert "hunter22" not in text  # the getpass answer was redacted when recorded


def test_json_lines_are_the_decoded_records(rich_log, records):
    recs, start = records
    result = run_krec("show", str(rich_log), "--json")
    assert result.returncode == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == [json.loads(json.dumps(r.to_json(start))) for r in recs]
    first = next(r.index for r in recs if r.msg_type == "kernel_info_request")
    assert rows[first]["header"]["msg_type"] == "kernel_info_request"
    assert rows[first]["from"] == "client" and rows[first]["ids"]


def test_filter_limit_and_since(rich_log, records):
    recs, start = records
    result = run_krec("show", str(rich_log), "-f", "type:execute_request", "--limit", "3")
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all("execute_request" in line for line in lines)
    late = [r for r in recs if r.t - start >= 1_000_000_000]
    assert late and len(late) < len(recs)
    result = run_krec("show", str(rich_log), "--since", "1s", "--json")
    assert [json.loads(line)["index"] for line in result.stdout.splitlines()] == [
        r.index for r in late
    ]
    result = run_krec("show", str(rich_log), "--since", "1s", "-f", "type:status", "--json")
    assert [json.loads(line)["index"] for line in result.stdout.splitlines()] == [
        r.index for r in late if r.msg_type == "status"
    ]
    assert run_krec("show", str(rich_log), "--limit", "0").stdout == ""


def test_head_of_a_big_log_exits_cleanly(tmp_path):
    big = synthetic_log(tmp_path / "big.krec", 40_000)
    proc = subprocess.Popen(
        [*KREC, "show", str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    assert b"kernel_started" in first
    proc.stdout.close()  # what `| head -1` does
    assert proc.wait(timeout=60) == 0
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert err == "", err


def test_pipe_into_head_in_a_shell(tmp_path):
    big = synthetic_log(tmp_path / "big.krec", 40_000)
    cmd = " ".join([*KREC, "show", str(big)]) + " | head -n 2"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2 and result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "{missing}"], "no such file"),
        (["show", "{log}", "-f", "ch:nowhere"], "ch: must be one of"),
        (["show", "{log}", "-f", "(a"], "'(' is never closed at position 1"),
        (["show", "{log}", "-f", "type:("], "'(' is never closed at position 6"),
        (["show", "{log}", "-f", "type:(a or b))"], "unmatched ')' at position 14"),
        (["show", "{notlog}"], "not a krec log"),
        (["show", "{future}"], "newer than this krec understands"),
        (["show", "{log}", "--since", "soon"], "--since: bad duration"),
        (["show", "{log}", "--limit", "-1"], "must be 0 or more"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, rich_log, args, message):
    notlog = tmp_path / "notes.txt"
    notlog.write_text("just some text\n")
    future = tmp_path / "future.krec"
    future.write_bytes(msgpack.packb({"format": "krec", "version": 99}))
    paths = {"missing": tmp_path / "none.krec", "log": rich_log, "notlog": notlog,
             "future": future}  # fmt: skip
    result = run_krec(*[a.format(**paths) for a in args])
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_an_operator_applies_to_a_group_of_values(rich_log):
    grouped = run_krec("show", str(rich_log), "-f", "type:(execute_request or complete_request)")
    spelled = run_krec("show", str(rich_log), "-f", "type:execute_request or type:complete_request")
    assert grouped.returncode == spelled.returncode == 0, grouped.stderr
    kinds = {line.split()[3] for line in grouped.stdout.splitlines()}
    assert kinds == {"execute_request", "complete_request"}, kinds
    assert grouped.stdout == spelled.stdout


def test_truncated_log_warns_once_and_shows_the_rest(tmp_path, rich_log, records):
    recs, _ = records
    cut = tmp_path / "cut.krec"
    cut.write_bytes(rich_log.read_bytes()[:-7])
    result = run_krec("show", str(cut))
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == len(recs) - 1
    assert result.stderr.splitlines() == [
        f"krec: warning: {cut}: truncated last record: "
        f"{len(_last_record_bytes(rich_log)) - 7} bytes at the end of the file are ignored"
    ]


def _last_record_bytes(path) -> bytes:
    with LogReader(path) as reader:
        return reader.read_span(len(reader) - 1, len(reader))


def test_colour_on_request_and_several_logs(tmp_path, rich_log):
    with LogBuilder(tmp_path / "a.krec") as log:
        log.execute("1 / 0", [("error", {"ename": "ZeroDivisionError", "evalue": "x"})])
    result = run_krec("show", "--color", "always", str(log.path), str(rich_log), "--limit", "8")
    lines = result.stdout.splitlines()
    assert lines[0] == f"==> {log.path} <=="
    assert "\x1b[31mZeroDivisionError: x\x1b[0m" in result.stdout  # errors in red
    assert "\x1b[34mshell" in result.stdout  # shell in blue
    assert "seal" in lines[6]  # five records and the final seal, then the next log
    assert lines[7:9] == ["", f"==> {rich_log} <=="]
    assert len(lines) == 8 + 3  # --limit counts records of all the logs


def test_help_has_examples_and_the_filter_language():
    result = run_krec("show", "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "krec show session.krec | head" in result.stdout
    assert "parent:ID" in result.stdout and "status:STATE" in result.stdout


def test_follow_prints_records_as_they_are_written(tmp_path):
    log = LogBuilder(tmp_path / "live.krec")
    log.event("kernel_started", pid=1)
    log.flush()
    out = tmp_path / "out.txt"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [*KREC, "show", "-F", "-f", "not type:status", str(log.path)],
            stdout=sink,
            stderr=subprocess.PIPE,
        )
    try:
        wait_for(lambda: "kernel_started" in out.read_text(), 30, "the first record")
        log.execute("print('live')", [stream("live\n")])
        log.flush()
        wait_for(lambda: "stdout: live" in out.read_text(), 30, "the appended records")
    finally:
        with open(f"/proc/{proc.pid}/status") as f:
            state = [ln for ln in f.read().splitlines() if ln.startswith(("Sig", "State"))]
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            proc.stderr.close()
            pytest.fail(f"krec show -F ignored SIGINT: {state}; stderr {proc.stderr.read()!r}")
        finally:
            log.close()
    assert code == 0
    assert proc.stderr is not None and proc.stderr.read() == b""
    proc.stderr.close()
    lines = out.read_text().splitlines()
    assert [line.split()[3] for line in lines] == [
        "kernel_started", "execute_request", "stream", "execute_reply",
    ]  # fmt: skip
