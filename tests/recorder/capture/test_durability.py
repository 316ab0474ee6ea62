"""Nothing a frontend received is lost when the kernel is killed with it.

jupyter_client's ``shutdown_kernel(now=True)`` and ``restart_kernel(now=True)``
SIGKILL the kernel's whole process group, krec's wrapper included, at once. Each
test runs quick cells the way kernel test suites do, kills at once, and checks
msg_id by msg_id that every message the client received (at least 5 ms before
the kill, DESIGN.md section 3) is in the log.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, run_krec
from received import QUICK_CELLS, Received, checked, kill_now, missing_from_log, run_cells

from krec.recorder import RecordingKernelManager
from krec.recorder.log.reader import LogReader

pytestmark = pytest.mark.timeout(180)

TESTS_DIR = str(ROOT / "tests")


def log_msg_ids(log: Path) -> set[str]:
    with LogReader(log) as reader:
        return {r.msg_id for r in reader if not r.is_event}


def only_log(logs: Path) -> Path:
    found = sorted(logs.glob("*.krec"))
    assert len(found) == 1, found
    return found[0]


def assert_nothing_lost(received: Received, log: Path) -> None:
    assert checked(received) >= len(received.messages) - 4, "the margin rule covered too little"
    missing = missing_from_log(received, log_msg_ids(log))
    assert not missing, f"{len(missing)} received messages are not in the log: {missing}"


def run_script(tmp_path: Path, body: str) -> Received:
    """Run ``body`` under ``krec record -o logs -- python script.py``; return what it received."""
    script = tmp_path / "script.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {TESTS_DIR!r})\n"
        "from received import QUICK_CELLS, Received, kill_now, run_cells\n"
        "received = Received()\n" + textwrap.dedent(body) + "\nreceived.to_json('received.json')\n"
    )
    proc = run_krec(
        "record", "-o", str(tmp_path / "logs"), "--", sys.executable, str(script),
        cwd=tmp_path, timeout=150,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return Received.from_json(tmp_path / "received.json")


def test_start_new_kernel_then_shutdown_now_under_krec_record(tmp_path: Path) -> None:
    received = run_script(
        tmp_path,
        """
        from jupyter_client.manager import start_new_kernel
        km, kc = start_new_kernel(kernel_name="python3")
        run_cells(kc, received)
        kill_now(km, received)
        kc.stop_channels()
        """,
    )
    assert len(received.messages) >= 6 * 4
    assert_nothing_lost(received, only_log(tmp_path / "logs"))


def test_restart_now_keeps_everything_before_the_restart(tmp_path: Path) -> None:
    received = run_script(
        tmp_path,
        """
        from jupyter_client import KernelManager
        km = KernelManager(kernel_name="python3")
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        run_cells(kc, received)
        kill_now(km, received, restart=True)
        kc.wait_for_ready(timeout=60)
        run_cells(kc, received, ["print('after the restart')"])
        kill_now(km, received)
        kc.stop_channels()
        """,
    )
    log = only_log(tmp_path / "logs")
    assert_nothing_lost(received, log)
    with LogReader(log) as reader:
        events = [r.event for r in reader if r.is_event]
        codes = [r.content["code"] for r in reader if r.msg_type == "execute_request"]
    assert "restart" in events
    assert codes == [*QUICK_CELLS, "print('after the restart')"]


def test_recording_kernel_manager_shutdown_now(tmp_path: Path) -> None:
    log = tmp_path / "session.krec"
    km = RecordingKernelManager(kernel_name="python3", log_path=str(log))
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    received = Received()
    try:
        kc.wait_for_ready(timeout=60)
        run_cells(kc, received)
    finally:
        kill_now(km, received)
        kc.stop_channels()
    assert_nothing_lost(received, log)


PLUGIN_SUITE = """
import sys
sys.path.insert(0, {tests!r})
from jupyter_client.manager import start_new_kernel
from received import Received, kill_now, run_cells


def test_fails_and_kills_its_kernel():
    km, kc = start_new_kernel(kernel_name="python3")
    received = Received()
    try:
        run_cells(kc, received)
    finally:
        kill_now(km, received)
        kc.stop_channels()
        received.to_json("received.json")
    assert False, "this test fails on purpose"
"""


def test_pytest_plugin_keeps_a_failing_test_that_killed_its_kernel(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(PLUGIN_SUITE.format(tests=TESTS_DIR))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--krec", "logs", "-p", "no:cacheprovider",
         "-p", "no:randomly", "test_suite.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=150, env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed" in proc.stdout
    received = Received.from_json(tmp_path / "received.json")
    assert_nothing_lost(received, only_log(tmp_path / "logs"))
