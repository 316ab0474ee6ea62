"""Batch `krec check` and `krec replay` on a real Dask LocalCluster: one line per log, JSON,
exit status, --catalog/--where, --scheduler, bad input, and a worker killed mid-batch."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from checklog import violation_log
from conftest import free_port, run_krec, wait_for

from krec.recorder.catalog.batch import Outcome, replay_one, run_batch
from krec.recorder.catalog.writer import build_catalog

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "sample_sessions"


def _lines(stdout: str) -> dict[str, str]:
    """One line per log: {file name: status and summary}."""
    out = {}
    for line in stdout.splitlines():
        location, _, verdict = line.partition(": ")
        out[os.path.basename(location)] = verdict
    return out


@dataclass
class Cluster:
    """A real Dask cluster in processes of its own: `dask scheduler` and `dask worker`."""

    scheduler_address: str


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A scheduler and 2 worker processes (under a nanny each) on 127.0.0.1; all stopped at the
    end, however the test ends. A worker that may die costs its task a retry (2 allowed)."""
    info = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2"}
    dask = [sys.executable, "-m", "dask"]
    procs = [
        subprocess.Popen(
            [
                *dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(info),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    try:
        wait_for(info.exists, 60, "the scheduler file")
        address = json.loads(info.read_text())["address"]
        procs.append(
            subprocess.Popen(
                [
                    *dask,
                    "worker",
                    address,
                    "--nworkers",
                    "2",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        yield Cluster(address)
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


def test_batch_check_lines_json_and_exit_status(tmp_path: Path):
    folder = tmp_path / "logs"
    folder.mkdir()
    for name in ("basics", "stdin", "widgets"):
        shutil.copy(SAMPLES / f"{name}.krec", folder / f"{name}.krec")
    clean = run_krec("check", str(folder), "--workers", "2")
    assert clean.returncode == 0, clean.stderr
    lines = _lines(clean.stdout)
    assert set(lines) == {"basics.krec", "stdin.krec", "widgets.krec"}
    assert all(v.startswith("clean (") for v in lines.values()), lines

    violation_log(folder / "violation.krec")
    (folder / "notes.krec").write_text("not a recording\n")
    data = (SAMPLES / "basics.krec").read_bytes()
    (folder / "damaged.krec").write_bytes(data[:-9])
    proc = run_krec("check", str(folder), "--workers", "2", "--json")
    assert proc.returncode == 2, proc.stderr
    report = json.loads(proc.stdout)
    status = {os.path.basename(r["log"]): r["status"] for r in report["logs"]}
    assert status == {
        "basics.krec": "clean",
        "damaged.krec": "clean",
        "notes.krec": "error",
        "stdin.krec": "clean",
        "violation.krec": "violations",
        "widgets.krec": "clean",
    }
    by_name = {os.path.basename(r["log"]): r for r in report["logs"]}
    assert "not a krec log" in by_name["notes.krec"]["summary"]
    assert by_name["damaged.krec"]["log_warnings"][0].startswith("truncated last record")
    single = json.loads(run_krec("check", str(folder / "violation.krec"), "--json").stdout)
    assert by_name["violation.krec"]["findings"] == single["findings"]
    assert report["summary"] == {"clean": 4, "violations": 1, "error": 1}

    text = run_krec("check", str(folder / "violation.krec"), str(folder / "basics.krec"))
    assert text.returncode == 1
    verdicts = _lines(text.stdout)
    assert verdicts["violation.krec"].startswith("violations (1 error, 0 warnings; first: ")
    assert verdicts["basics.krec"].startswith("clean")


def test_batch_picks_logs_from_the_catalog_and_rejects_bad_sql(tmp_path: Path):
    cat = tmp_path / "cat"
    violation_log(tmp_path / "violation.krec")
    build_catalog([str(SAMPLES / "basics.krec"), str(tmp_path / "violation.krec")], str(cat))
    proc = run_krec(
        "check", "--catalog", str(cat), "--where", "finding_errors > 0", "--workers", "1"
    )
    assert proc.returncode == 1, proc.stderr
    assert list(_lines(proc.stdout)) == ["violation.krec"]

    bad = run_krec("check", "--catalog", str(cat), "--where", "kernel_nam = 'python3'")
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.splitlines()) == 1 and "query failed" in bad.stderr
    alone = run_krec("check", "--where", "true")
    assert alone.returncode == 2 and "--where needs --catalog" in alone.stderr


def test_unreachable_scheduler_is_one_line_exit_2(tmp_path: Path):
    port = free_port()  # a port nobody listens on
    address = f"tcp://127.0.0.1:{port}"
    proc = run_krec("check", str(SAMPLES / "basics.krec"), "--scheduler", address, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(f"krec: error: cannot reach the Dask scheduler at {address}")
    bad = run_krec("replay", str(SAMPLES / "basics.krec"), "--scheduler", "nonsense")
    assert bad.returncode == 2
    assert bad.stderr == "krec: error: not a scheduler address: nonsense (tcp://HOST:PORT)\n"


def test_batch_replay_on_an_existing_cluster(tmp_path: Path, cluster):
    folder = tmp_path / "logs"
    folder.mkdir()
    for name in ("basics", "nondeterministic"):
        shutil.copy(SAMPLES / f"{name}.krec", folder / f"{name}.krec")
    (folder / "notes.krec").write_text("not a recording\n")
    out = tmp_path / "replays"
    proc = run_krec(
        "replay",
        str(folder),
        "--scheduler",
        cluster.scheduler_address,
        "-o",
        str(out),
        "--json",
        timeout=240,
    )
    assert proc.returncode == 2, proc.stderr
    logs = {os.path.basename(r["log"]): r for r in json.loads(proc.stdout)["logs"]}
    assert logs["basics.krec"]["status"] == "clean"
    assert logs["nondeterministic.krec"]["status"] == "diverged"
    assert logs["nondeterministic.krec"]["summary"].startswith("at request ")
    assert logs["notes.krec"]["status"] == "error"
    replays = sorted(p.name for p in out.iterdir())
    assert len(replays) == 2 and all("-replay-" in n for n in replays)
    assert logs["basics.krec"]["report"]["diverged"] == 0


def test_a_worker_killed_mid_replay_costs_a_retry(tmp_path: Path, recorder, cluster):
    """The replayed cell blocks until the test says go; the test kills the worker running it."""
    started, go = tmp_path / "started", tmp_path / "go"
    go.touch()
    rec = recorder()
    kc = rec.client()
    code = (
        f"import os, time\nopen({str(started)!r}, 'a').write('x')\n"
        f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.05)\nprint('done')"
    )
    reply = kc.execute_interactive(code, timeout=60)
    assert reply["content"]["status"] == "ok"
    assert rec.stop() == 0
    started.unlink()
    go.unlink()
    other = tmp_path / "basics.krec"
    shutil.copy(SAMPLES / "basics.krec", other)

    from distributed import Client

    outcomes: list[Outcome] = []
    failure: list[BaseException] = []

    def batch() -> None:
        try:
            outcomes.extend(
                run_batch(
                    replay_one,
                    [str(rec.log), str(other)],
                    [None, str(tmp_path / "replays"), 120.0, None, []],
                    scheduler=cluster.scheduler_address,
                )
            )
        except BaseException as e:  # reported by the main thread
            failure.append(e)

    runner = threading.Thread(target=batch, daemon=True)
    runner.start()
    try:
        wait_for(started.exists, 120, "the replayed cell to start")
        with Client(cluster.scheduler_address, timeout=30, set_as_default=False) as client:
            busy = wait_for(
                lambda: [
                    w
                    for w, keys in client.processing().items()
                    if any("-0-" in str(k) for k in keys)
                ],
                30,
                "the task of the blocked log",
            )
            pid = client.run(os.getpid, workers=busy)[busy[0]]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: started.read_text() == "xx", 120, "the retry to start the cell again")
    finally:
        go.touch()
        runner.join(240)
    assert not runner.is_alive() and not failure, failure
    assert [o.status for o in outcomes] == ["clean", "clean"], [o.summary for o in outcomes]
    assert outcomes[0].data["report"]["diverged"] == 0
