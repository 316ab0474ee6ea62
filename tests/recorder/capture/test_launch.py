"""How the kernel was launched (extra arguments, working directory) is in the log header in
every recording mode, and replay launches its kernel the same way."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_krec
from jupyter_client import KernelManager

from krec.recorder.capture.manager import RecordingKernelManager
from krec.recorder.log.reader import LogReader

pytestmark = pytest.mark.timeout(240)

HIST = "--HistoryManager.hist_file=:memory:"
PROBE = (
    "import os\nfrom IPython import get_ipython\n"
    "print(os.path.basename(os.getcwd()), get_ipython().history_manager.hist_file)"
)


def _kernel(log: Path) -> dict:
    with LogReader(log) as reader:
        return reader.header["kernel"]


def test_recording_kernel_manager_records_the_launch_and_replay_repeats_it(tmp_path: Path):
    workdir = tmp_path / "project"
    workdir.mkdir()
    log = tmp_path / "session.krec"
    km = RecordingKernelManager(kernel_name="python3", log_path=str(log))
    km.start_kernel(cwd=str(workdir), extra_arguments=[HIST])
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        out: list[str] = []
        reply = kc.execute_interactive(
            PROBE, timeout=30, output_hook=lambda m: out.append(m["content"].get("text", ""))
        )
        assert reply["content"]["status"] == "ok"
        assert "".join(out) == "project :memory:\n"
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    kernel = _kernel(log)
    assert kernel["cwd"] == str(workdir)
    assert kernel["extra_arguments"] == [HIST]
    assert kernel["launch_argv"][-1] == HIST and "ipykernel_launcher" in kernel["launch_argv"]
    # replayed from elsewhere, the kernel runs in the recorded directory with the argument
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_krec("replay", str(log), "-o", str(tmp_path / "r1.krec"), cwd=elsewhere)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # --cwd overrides it: the printed directory differs, and the report shows it
    proc = run_krec(
        "replay", str(log), "-o", str(tmp_path / "r2.krec"), "--json", "--cwd", str(elsewhere)
    )
    assert proc.returncode == 1, proc.stderr
    first = json.loads(proc.stdout)["first"]
    assert first["field"] == "stdout"
    assert (first["expected"], first["actual"]) == ("project :memory:\n", "elsewhere :memory:\n")


def test_kernel_mode_records_its_own_directory(recorder):
    rec = recorder()
    rec.client()
    assert rec.stop() == 0, rec.stderr
    kernel = _kernel(rec.log)
    assert kernel["cwd"] == os.getcwd()
    assert kernel["extra_arguments"] == []
    assert kernel["launch_argv"][-2:] == ["-f", "{connection_file}"]


def test_existing_mode_records_the_launch_of_a_local_kernel(recorder, tmp_path: Path):
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(workdir), extra_arguments=[HIST])
    try:
        rec = recorder(mode=["--existing", km.connection_file])
        rec.client()
        assert rec.stop() == 0, rec.stderr
    finally:
        km.shutdown_kernel(now=True)
        km.cleanup_resources()
    kernel = _kernel(rec.log)
    assert kernel["cwd"] == str(workdir)
    assert km.connection_file in kernel["launch_argv"]
    assert kernel["extra_arguments"] == [HIST]
