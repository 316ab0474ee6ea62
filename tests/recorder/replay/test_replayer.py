"""`krec replay` and `krec diff` against real kernels: no divergence where the kernel behaves
the same, and the right request, field and diff where it does not."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import ready_after_restart, run_krec, wait_for
from sessions import execute, interrupted_sleep

from krec.recorder.log.exchange import load_session
from krec.recorder.log.reader import LogReader
from krec.recorder.log.writer import LogWriter
from krec.recorder.replay.diff import compare
from krec.recorder.replay.replayer import plan, replay

pytestmark = pytest.mark.timeout(240)


def test_rich_session_replays_without_divergence(rich_log: Path, tmp_path: Path):
    # the password was redacted while recording: --password answers it
    result = replay(str(rich_log), output=str(tmp_path / "again.krec"), password="hunter22")
    assert not result.report.diverged, result.report.render()
    assert len(result.report.rows) == len(load_session(str(rich_log)).exchanges)
    with LogReader(result.log) as reader:
        assert reader.header["mode"] == "replay"
        assert not reader.warnings
    # the replay's log is an ordinary log: diff agrees with the replay's own report
    assert not compare(str(rich_log), result.log).diverged


def test_redacted_password_without_answer_is_a_noted_divergence(rich_log: Path, tmp_path: Path):
    proc = run_krec("replay", str(rich_log), "-o", str(tmp_path / "r.krec"), "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    first = report["first"]
    assert "getpass" in first["code"] and first["field"] == "stdout"
    assert first["expected"] == "8\n" and first["actual"] == "0\n"
    assert "redacted" in first["note"]
    assert any("--password" in n for n in report["notes"])


def test_interrupt_restart_and_widget_comm_replay(recorder, tmp_path: Path):
    rec = recorder()
    kc = rec.client()
    execute(kc, "before = 1")
    # an interrupted sleep: the interrupt_request goes on control at ~1 s
    interrupted_sleep(kc, after=1.0)
    time.sleep(0.5)  # after an error ipykernel aborts what arrives at once; a person is slower
    execute(kc, "print('after interrupt', before)")
    # a widget whose value the frontend changes through its (kernel-chosen) comm id
    execute(kc, "import ipywidgets as w\nslider = w.IntSlider(value=3)\ndisplay(slider)")

    def slider_comm() -> str | None:
        with LogReader(rec.log) as reader:
            for r in reader:
                state = r.content.get("data", {}).get("state", {})
                if r.msg_type == "comm_open" and state.get("_model_name") == "IntSliderModel":
                    return r.content["comm_id"]
        return None

    comm_id = wait_for(slider_comm, 10, "the slider's comm_open")
    kc.shell_channel.send(
        kc.session.msg(
            "comm_msg",
            {
                "comm_id": comm_id,
                "data": {"method": "update", "state": {"value": 9}, "buffer_paths": []},
            },
        )
    )
    execute(kc, "print('slider', slider.value)")
    # a restart requested by the frontend: krec restarts the kernel itself
    kc.shutdown(restart=True)
    wait_for(lambda: _count_events(rec.log, "kernel_started") == 2, 60, "the restarted kernel")
    ready_after_restart(kc)
    reply = execute(kc, "before")
    assert reply["content"]["ename"] == "NameError"
    assert rec.stop() == 0

    session = load_session(str(rec.log))
    kinds = [a.kind for a in plan(session)]
    assert "restart" in kinds
    interrupt = next(
        a
        for a in plan(session)
        if a.exchange is not None and a.exchange.msg_type == "interrupt_request"
    )
    assert interrupt.anchor is not None and 0.8 < interrupt.offset < 5

    result = replay(str(rec.log), output=str(tmp_path / "replay.krec"))
    assert not result.report.diverged, result.report.render()
    with LogReader(rec.log) as reader:
        recorded = [r.content.get("text") for r in reader if r.msg_type == "stream"]
    assert "after interrupt 1\n" in recorded
    with LogReader(result.log) as reader:
        records = list(reader)
    # streams merged: a loaded kernel may send one print in two chunks
    texts = "".join(r.content.get("text", "") for r in records if r.msg_type == "stream")
    assert "slider 9\n" in texts, "the comm_msg did not reach the replayed widget"
    assert "after interrupt 1\n" in texts
    assert sum(1 for r in records if r.event == "kernel_started") == 2
    errors = [r.content["ename"] for r in records if r.msg_type == "error"]
    assert errors == ["KeyboardInterrupt", "NameError"]


def _count_events(log: Path, name: str) -> int:
    with LogReader(log) as reader:
        return sum(1 for r in reader if r.event == name)


def test_divergence_is_found_and_named(recorder, tmp_path: Path):
    data = tmp_path / "data.txt"
    data.write_text("original contents\n")
    rec = recorder()
    kc = rec.client()
    execute(kc, "import random, os")
    execute(kc, f"print(open({str(data)!r}).read())")
    execute(kc, "print('stable')")
    execute(kc, "print(random.random())")
    execute(kc, "open(os.environ.get('KREC_TEST_MISSING', '/dev/null')).read()")
    assert rec.stop() == 0

    data.write_text("changed contents\n")
    monkey = {"KREC_TEST_MISSING": str(tmp_path / "gone.txt")}
    import os

    old = os.environ.copy()
    os.environ.update(monkey)
    try:
        result = replay(str(rec.log), output=str(tmp_path / "replay.krec"))
    finally:
        os.environ.clear()
        os.environ.update(old)
    report = result.report
    assert report.diverged
    first = report.first
    assert first is not None
    assert first.request == 3 and first.field == "stdout"  # kernel_info is request 1
    assert "open(" in (first.code or "")
    assert "-original contents" in first.diff and "+changed contents" in first.diff
    statuses = {row.request: (row.status, row.fields) for row in report.rows}
    assert statuses[4] == ("same", [])
    assert statuses[5][0] == "diverged" and statuses[5][1] == ["stdout"]  # random
    assert statuses[6][0] == "diverged" and "error" in statuses[6][1]  # new FileNotFoundError
    error = next(d for d in report.divergences if d.request == 6 and d.field == "error")
    assert error.expected == "" and error.actual.startswith("FileNotFoundError")
    text = report.render()
    assert "first divergence: request 3" in text


def test_missing_kernel_is_exit_2_naming_it(rich_log: Path, tmp_path: Path):
    other = tmp_path / "other-kernel.krec"
    with LogReader(rich_log) as reader:
        header = dict(reader.header)
        header["kernel"] = dict(header["kernel"], name="no-such-kernel-xyz")
        with LogWriter(other, header) as writer:
            for _, raw in reader.raw_records():
                writer.write_record(raw)
    proc = run_krec("replay", str(other), "-o", str(tmp_path / "never.krec"))
    assert proc.returncode == 2
    assert "no-such-kernel-xyz" in proc.stderr and "--kernel" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never.krec").exists()
    chosen = run_krec("replay", str(rich_log), "--kernel", "no-such-kernel-xyz")
    assert chosen.returncode == 2
    assert chosen.stderr.startswith("krec: error: --kernel 'no-such-kernel-xyz' is not installed")


def test_diff_of_identical_and_of_different_logs(rich_log: Path, tmp_path: Path):
    same = run_krec("diff", str(rich_log), str(rich_log))
    assert same.returncode == 0, same.stdout
    assert "no divergence" in same.stdout
    bad = run_krec("diff", str(rich_log), str(tmp_path / "missing.krec"))
    assert bad.returncode == 2 and "no such file" in bad.stderr
