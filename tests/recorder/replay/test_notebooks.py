"""Real notebooks (nbclient's own test notebooks and krec's, tests/notebooks/) executed with
nbclient directly and under `krec record --`, compared, then replayed from another directory.

Each group runs its notebooks in one nbclient process per run (each notebook starts its
own kernel), so a group costs a few kernel starts, not one per assertion.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import KREC, ROOT, run_krec

from krec.recorder.log.exchange import load_session
from krec.recorder.log.reader import LogReader
from krec.recorder.replay import plan as replay_plan
from krec.recorder.replay.normalize import Normalizer
from krec.recorder.replay.replayer import hung_bound, plan, replay

pytestmark = pytest.mark.timeout(600)

NOTEBOOKS = ROOT / "tests" / "notebooks"
RUNNER = NOTEBOOKS / "run_notebooks.py"
# each group: how nbclient is driven ("script": run_notebooks.py, "cli": `jupyter execute`)
GROUPS: dict[str, tuple[str, list[str]]] = {
    "launch-widgets-interrupt": (
        "script",
        [
            "nbclient/Check History in Memory",
            "nbclient/Output",
            "nbclient/JupyterWidgets",
            "nbclient/Interrupt",
            "nbclient/Unicode",
        ],
    ),
    "display-files": (
        "cli",
        [
            "nbclient/update-display-id",
            "nbclient/Clear Output",
            "nbclient/Inline Image",
            "krec/Display Updates",
            "krec/Progress",
            "krec/Read Next to Notebook",
        ],
    ),
    "magics-streams": (
        "cli",
        [
            "krec/Magics and Shell",
            "krec/Long Stream",
            "krec/Warnings",
            "krec/Top-level Await",
        ],
    ),
}


def _copy_notebooks(dest: Path) -> None:
    for sub in ("nbclient", "krec"):
        shutil.copytree(NOTEBOOKS / sub, dest / sub)


def _run(cmd: list[str], cwd: Path, timeout: float = 300) -> None:
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"


def _execute(how: str, folder: Path, names: list[str], out: Path, record: Path | None) -> None:
    """Run the notebooks of ``folder`` with nbclient (under `krec record -o record --` if
    given); the executed notebooks end up in ``out``."""
    prefix = [*KREC, "record", "-o", str(record), "--"] if record else []
    paths = [str(folder / f"{n}.ipynb") for n in names]
    if how == "script":
        _run([*prefix, sys.executable, str(RUNNER), str(out), *paths], folder)
        return
    # nbclient's CLI executes in place: run copies
    out.mkdir(parents=True, exist_ok=True)
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    _run([*prefix, jupyter, "execute", "--inplace", "--timeout=120", *paths], folder)
    for n in names:
        shutil.copy(folder / f"{n}.ipynb", out / f"{Path(n).name}.ipynb")


def _outputs(path: Path) -> list[Any]:
    """A notebook's outputs cell by cell, with what changes between runs masked (model ids,
    temporary paths) by the same normalizer as replay reports."""
    nb = json.loads(path.read_text())
    norm = Normalizer()
    return [norm.data(_merge_streams(c["outputs"])) for c in nb["cells"] if "outputs" in c]


def _merge_streams(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive stream outputs of one name as one (how a kernel chunks a stream varies)."""
    merged: list[dict[str, Any]] = []
    for out in outputs:
        if out.get("output_type") == "stream":
            text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
            last = merged[-1] if merged else {}
            if last.get("output_type") == "stream" and last.get("name") == out["name"]:
                last["text"] += text
                continue
            out = {**out, "text": text}
        merged.append(out)
    return merged


def _logs_by_notebook(log_dir: Path, names: list[str]) -> dict[str, Path]:
    logs = sorted(log_dir.glob("*.krec"))
    assert len(logs) == len(names), [p.name for p in logs]
    stems = [Path(n).name for n in names]
    if all((log_dir / f"{s}.krec").exists() for s in stems):
        return {s: log_dir / f"{s}.krec" for s in stems}
    # `jupyter execute` runs the notebooks one after another: logs in creation order

    def created(p: Path) -> float:
        with LogReader(p) as reader:
            return float(reader.header["created"])

    return dict(zip(stems, sorted(logs, key=created), strict=True))


def _replay(log: Path, out: Path, cwd: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = run_krec("replay", str(log), "-o", str(out), "--json", *extra, cwd=cwd, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture
def run_group(tmp_path: Path):
    """Execute a group directly and recorded; return (recorded folder, logs by notebook)."""

    def run(group: str) -> tuple[Path, dict[str, Path]]:
        how, names = GROUPS[group]
        direct, recorded = tmp_path / "direct", tmp_path / "recorded"
        for folder in (direct, recorded):
            _copy_notebooks(folder)
        _execute(how, direct, names, tmp_path / "direct-out", None)
        _execute(how, recorded, names, tmp_path / "recorded-out", tmp_path / "logs")
        for n in names:
            stem = Path(n).name
            a = _outputs(tmp_path / "direct-out" / f"{stem}.ipynb")
            b = _outputs(tmp_path / "recorded-out" / f"{stem}.ipynb")
            assert a == b, f"{stem}: outputs differ between the direct and the recorded run"
        return recorded, _logs_by_notebook(tmp_path / "logs", names)

    return run


def _replays_clean(logs: dict[str, Path], tmp_path: Path) -> dict[str, dict[str, Any]]:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    reports = {}
    for stem, log in logs.items():
        code, report = _replay(log, tmp_path / "replays" / f"{stem}.krec", elsewhere)
        assert code == 0 and report["diverged"] == 0, f"{stem}: {json.dumps(report, indent=1)}"
        # nbclient's run ends in a shutdown: the replay kernel exits by itself, after
        # broadcasting its shutdown_reply on iopub as the recorded one did
        assert _shutdown_replies(tmp_path / "replays" / f"{stem}.krec") == _shutdown_replies(log)
        reports[stem] = report
    return reports


def _shutdown_replies(log: Path) -> list[str]:
    with LogReader(str(log)) as reader:
        return sorted(r.ch for r in reader if r.msg_type == "shutdown_reply")


def _shutdown_interrupt_is_between_requests(log: Path) -> None:
    """jupyter_client's shutdown_kernel() interrupts after the last reply: the plan sends
    that interrupt after every cell, not into the last cell."""
    session = load_session(str(log))
    actions = plan(session)
    last = max(i for i, a in enumerate(actions) if a.kind == "interrupt")
    cells = {e.number for e in session.exchanges if e.msg_type == "execute_request"}
    # between requests, or into what the kernel was running then (the shutdown_request when
    # krec forwarded the signal after it, a frontend's comm_msg): never into a cell
    anchor = actions[last].anchor
    assert anchor is None or session.exchanges[anchor - 1].msg_type != "execute_request"
    assert cells <= set(actions[last].after)
    sent_after = [a.exchange.msg_type for a in actions[last + 1 :] if a.exchange is not None]
    assert "execute_request" not in sent_after


def test_launch_widgets_and_interrupts_replay_clean(run_group, tmp_path: Path):
    recorded, logs = run_group("launch-widgets-interrupt")
    # the launch: nbclient's extra argument, and the notebook's folder as working directory
    with LogReader(logs["Check History in Memory"]) as reader:
        kernel = reader.header["kernel"]
        started = next(r for r in reader if r.event == "kernel_started")
    assert kernel["extra_arguments"] == ["--HistoryManager.hist_file=:memory:"]
    assert kernel["launch_argv"][-1] == "--HistoryManager.hist_file=:memory:"
    assert "{connection_file}" in kernel["launch_argv"]
    assert kernel["cwd"] == str(recorded / "nbclient")
    assert started.fields["cwd"] == str(recorded / "nbclient")
    # the Output widget keeps the id of the request whose output it captures
    session = load_session(str(logs["Output"]))
    request_ids = {e.msg_id for e in session.exchanges if e.msg_type == "execute_request"}
    captured = {
        r.content["data"]["state"]["msg_id"]
        for e in session.exchanges
        for r in e.outputs
        if r.msg_type == "comm_msg" and "msg_id" in r.content.get("data", {}).get("state", {})
    }
    assert captured & request_ids, "no Output widget state held a request's msg_id"
    # the endless cell was interrupted by a signal while it ran, nbclient's shutdown after
    session = load_session(str(logs["Interrupt"]))
    endless = next(e for e in session.exchanges if e.code == "while True: continue")
    into = [a for a in plan(session) if a.kind == "interrupt" and a.anchor is not None]
    assert [(a.anchor, a.busy) for a in into] == [(endless.number, True)]
    for log in logs.values():
        _shutdown_interrupt_is_between_requests(log)

    reports = _replays_clean(logs, tmp_path)
    assert any("hist_file=:memory:" in n for n in reports["Check History in Memory"]["notes"])
    with LogReader(reports["Check History in Memory"]["replay_log"]) as reader:
        assert reader.header["kernel"]["cwd"] == str(recorded / "nbclient")
        assert reader.header["kernel"]["extra_arguments"] == kernel["extra_arguments"]
    interrupted = reports["Interrupt"]["rows"]
    assert [r["status"] for r in interrupted if r["code"] == "while True: continue"] == ["same"]


def test_display_and_files_replay_clean_and_follow_the_working_directory(run_group, tmp_path: Path):
    recorded, logs = run_group("display-files")
    _replays_clean(logs, tmp_path)
    # the recorded folder is gone: the kernel runs in the current directory, the report says
    # so, and the cell reading python.png fails; --cwd points the kernel at the moved folder
    moved = tmp_path / "moved"
    recorded.rename(moved)
    elsewhere = tmp_path / "elsewhere"
    code, report = _replay(logs["Inline Image"], tmp_path / "gone.krec", elsewhere)
    assert code == 1
    assert any("does not exist here" in n and str(elsewhere) in n for n in report["notes"])
    assert report["first"]["code"] == 'Image("python.png")'
    assert "FileNotFoundError" in report["first"]["actual"]
    code, report = _replay(
        logs["Inline Image"], tmp_path / "moved.krec", elsewhere, "--cwd", str(moved / "nbclient")
    )
    assert code == 0, report


def test_magics_streams_warnings_and_await_replay_clean(run_group, tmp_path: Path):
    recorded, logs = run_group("magics-streams")
    with LogReader(logs["Warnings"]) as reader:
        stderr = "".join(
            r.content.get("text", "") for r in reader if r.msg_type == "stream" and r.ch == "iopub"
        )
    assert "ipykernel_" in stderr and "UserWarning: a user warning" in stderr
    reports = _replays_clean(logs, tmp_path)
    assert len(reports["Long Stream"]["rows"]) >= 2
    # %%writefile wrote next to the notebook in the replay too, and the notebook removed it
    assert not (recorded / "krec" / "magic_written.txt").exists()


def test_a_hung_request_is_reported_after_a_bound_from_its_recorded_time(
    recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from sessions import execute

    hold = tmp_path / "hold"
    rec = recorder()
    kc = rec.client()
    execute(kc, f"import os, time\nHOLD = {str(hold)!r}")
    execute(kc, "while os.path.exists(HOLD):\n    time.sleep(0.02)\nprint('free')")
    execute(kc, "print('next')")
    assert rec.stop() == 0, rec.stderr
    session = load_session(str(rec.log))
    quick = session.exchanges[-2]  # the waiting cell, which did not wait in the recording
    assert hung_bound(quick, 60) == replay_plan.HUNG_FLOOR
    assert hung_bound(quick, 2) == 2
    monkeypatch.setattr(replay_plan, "HUNG_FLOOR", 3.0)
    hold.touch()
    try:
        result = replay(str(rec.log), output=str(tmp_path / "replay.krec"), timeout=60)
    finally:
        hold.unlink()
    rows = {r.code: r for r in result.report.rows}
    waiting = rows["while os.path.exists(HOLD):\n    time.sleep(0.02)\nprint('free')"]
    assert waiting.status == "diverged" and "outcome" in waiting.fields
    assert any("got no reply within 3 s" in n for n in result.report.notes)
    # the interrupt freed the kernel: the next request was answered (ipykernel may abort a
    # request that arrives just after an error, so only its outcome is certain)
    assert "outcome" not in rows["print('next')"].fields


def test_repeat_reports_changing_results_as_nondeterministic(tmp_path: Path):
    folder = tmp_path / "nb"
    _copy_notebooks(folder)
    logs = tmp_path / "logs"
    _execute("script", folder / "nbclient", ["Sleep1s"], tmp_path / "out", logs)
    log = logs / "Sleep1s.krec"
    code, report = _replay(log, tmp_path / "r.krec", tmp_path, "--repeat", "2")
    assert report["runs"] == 2 and len(report["replay_logs"]) == 2
    assert all(os.path.exists(p) for p in report["replay_logs"])
    changed = "\n".join(r["code"] for r in report["nondeterministic"])
    assert "print(t0.strftime(time_format)" in changed
    assert "print(t1.strftime(time_format)" in changed
    assert code == 0 and report["diverged"] == 0, report
    proc = run_krec("replay", str(log), "-o", str(tmp_path / "t.krec"), "--repeat", "2")
    assert proc.returncode == 0, proc.stderr
    assert "nondeterministic" in proc.stdout.splitlines()[0]


def test_bad_replay_options_are_one_line_errors(tmp_path: Path):
    log = ROOT / "sample_sessions" / "basics.krec"
    for args, text in (
        (["--repeat", "0"], "--repeat must be at least 1"),
        (["--cwd", str(tmp_path / "nope")], "no such directory"),
    ):
        proc = run_krec("replay", str(log), *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith("krec: error: ") and text in lines[0]
