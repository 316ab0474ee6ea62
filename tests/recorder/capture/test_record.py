"""`krec record` modes with real frontends: wrapper kernelspecs, restarts, interrupts, deaths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import KREC, run_krec, wait_for
from jupyter_client import KernelManager
from sessions import SLEEP, interrupted_sleep

from krec.recorder.kernelspec import write_shadow_specs
from krec.recorder.log.reader import LogReader

pytestmark = pytest.mark.timeout(180)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except OSError:
        return False


@pytest.fixture
def wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Wrapper kernelspecs first on JUPYTER_PATH (what `krec record --` sets up); the log dir."""
    shadow, logs = tmp_path / "shadow", tmp_path / "logs"
    assert "python3" in write_shadow_specs(str(shadow), str(logs))
    old = os.environ.get("JUPYTER_PATH")
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(p for p in (str(shadow), old) if p))
    return logs


@pytest.fixture
def manager(wrapped: Path):
    """A jupyter_client KernelManager whose python3 is krec's wrapper; shut down at the end."""
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    yield km, kc, wrapped
    kc.stop_channels()
    if km.has_kernel:
        km.shutdown_kernel(now=True)
    km.cleanup_resources()


def only_log(logs: Path) -> Path:
    files = list(logs.glob("python3-*.krec"))
    assert len(files) == 1, files
    return files[0]


def read(log: Path) -> list:
    with LogReader(log) as reader:
        assert not reader.warnings, reader.warnings
        return list(reader)


def test_wrapper_interrupt_restart_shutdown_one_log(manager):
    km, kc, logs = manager
    assert kc.execute_interactive("state = 41", timeout=30)["content"]["status"] == "ok"
    # interrupt by signal, the default interrupt_mode: the frontend signals the wrapper
    interrupted_sleep(kc, km.interrupt_kernel)
    first_pid = km.provisioner.process.pid
    km.restart_kernel()
    assert not pid_alive(first_pid)
    kc.wait_for_ready(timeout=60)
    reply = kc.execute_interactive("state", timeout=30)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "NameError", "state survived the restart"
    km.shutdown_kernel()
    records = read(only_log(logs))
    events = [r.event for r in records if r.is_event]
    assert events.count("kernel_started") == 2
    assert "restart" in events
    assert events.index("restart") < len(events) - 1 - events[::-1].index("kernel_started")
    assert any(r.event == "interrupt" and r.fields["mode"] == "signal" for r in records), events
    assert any(r.event == "kernel_exited" and r.fields["restart"] for r in records), events
    assert events[-1] == "seal"  # the final seal, after recording_stopped
    assert [e for e in events if e != "seal"][-1] == "recording_stopped"
    codes = [r.content.get("code") for r in records if r.msg_type == "execute_request"]
    assert codes == ["state = 41", SLEEP, "state"]


def test_sigkill_of_the_wrapper_leaves_no_kernel(manager):
    km, kc, logs = manager
    kc.execute_interactive("print('before kill')", timeout=30)
    started = [r for r in read_live(only_log(logs)) if r.event == "kernel_started"]
    kernel_pid = started[0].fields["pid"]
    assert pid_alive(kernel_pid)
    # the stream is on disk before the kill (written at once; a loaded machine may take
    # longer, so wait for it rather than for a fixed time)
    wait_for(
        lambda: any(r.msg_type == "stream" for r in read_live(only_log(logs))),
        30,
        "the stream in the log",
    )
    os.kill(km.provisioner.process.pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(kernel_pid), 10, "the inner kernel to die with its wrapper")
    with LogReader(only_log(logs)) as reader:  # readable; a truncated tail is only a warning
        assert any(r.msg_type == "stream" for r in reader)
        assert all(w.startswith("truncated") for w in reader.warnings)


def read_live(log: Path) -> list:
    with LogReader(log) as reader:
        return list(reader)


def test_kernel_death_makes_the_wrapper_exit_and_is_logged(manager):
    km, kc, logs = manager
    kc.execute("import os; os._exit(3)")
    wait_for(lambda: not km.is_alive(), 30, "the wrapper to exit after its kernel died")
    records = read(only_log(logs))
    died = [r for r in records if r.event == "kernel_died"]
    assert died and died[0].fields["exit_code"] == 3
    assert records[-2].event == "recording_stopped" and records[-1].event == "seal"


def test_sigkill_of_krec_record_kernel(recorder):
    rec = recorder()
    kc = rec.client()
    for i in range(3):
        kc.execute_interactive(f"print({i})", timeout=30)
    wait_for(  # everything above is on disk before the kill, however loaded the machine
        lambda: len(stdout_texts(rec.log)) == 3, 30, "the three streams in the log"
    )
    with LogReader(rec.log) as reader:
        kernel_pid = next(r for r in reader if r.event == "kernel_started").fields["pid"]
    rec.kill()
    wait_for(lambda: not pid_alive(kernel_pid), 10, "the kernel to die with krec")
    with LogReader(rec.log) as reader:
        assert all(w.startswith("truncated") for w in reader.warnings)
    assert stdout_texts(rec.log) == ["0\n", "1\n", "2\n"]


def stdout_texts(log: Path) -> list[str]:
    with LogReader(log) as reader:
        return [
            r.content.get("text")
            for r in reader
            if r.msg_type == "stream" and r.content.get("name") == "stdout"
        ]


def test_record_command_with_a_kernel_manager_script(tmp_path: Path):
    script = tmp_path / "drive.py"
    script.write_text(
        textwrap.dedent("""
        from jupyter_client.manager import start_new_kernel
        km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
        try:
            r = kc.execute_interactive("print('through krec')", timeout=30)
            assert r["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
            km.shutdown_kernel()
        raise SystemExit(7)
    """)
    )
    logs = tmp_path / "logs"
    proc = run_krec("record", "-o", str(logs), "--", sys.executable, str(script))
    assert proc.returncode == 7, proc.stderr  # CMD's exit status
    assert "recorded 1 kernel session" in proc.stderr
    records = read(only_log(logs))
    assert any(r.msg_type == "stream" and r.content["text"] == "through krec\n" for r in records)
    assert records[-2].event == "recording_stopped" and records[-1].event == "seal"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kernel", "no-such-kernel"], "no kernel named 'no-such-kernel'"),
        (["--existing", "/nonexistent/kernel.json"], "does not exist"),
        (["--kernel", "python3", "-o", "/proc/forbidden/x.krec"], "cannot create log"),
        ([], "give exactly one of"),
        (["--", "no-such-command-krec"], "command not found"),
        (["-o", "/proc/forbidden", "--", "true"], "cannot write logs to"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str):
    proc = run_krec("record", *args, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_bad_connection_file_contents(tmp_path: Path):
    cf = tmp_path / "cf.json"
    cf.write_text("{not json")
    proc = run_krec("record", "--existing", str(cf), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
    cf.write_text('{"ip": "127.0.0.1"}')
    proc = run_krec("record", "--existing", str(cf), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "lacks shell_port" in proc.stderr


def test_port_in_use_is_a_clear_error_and_starts_no_kernel(tmp_path: Path):
    import zmq

    ctx = zmq.Context()
    busy = ctx.socket(zmq.ROUTER)
    port = busy.bind_to_random_port("tcp://127.0.0.1")
    try:
        cf = tmp_path / "cf.json"
        from krec.recorder.connect import ConnectionInfo, new_key

        info = ConnectionInfo(key=new_key()).with_free_ports()
        info.shell_port = port
        info.write(cf)
        proc = subprocess.run(
            [
                *KREC,
                "wrap",
                "--kernel",
                "python3",
                "--log-dir",
                str(tmp_path / "logs"),
                "-f",
                str(cf),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        busy.close(linger=0)
        ctx.term()
    assert proc.returncode == 2
    assert "cannot listen on" in proc.stderr and str(port) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # the log was created and closed, with no kernel_started: no kernel was launched
    logs = list((tmp_path / "logs").glob("*.krec"))
    assert all(not any(r.event == "kernel_started" for r in read_live(log)) for log in logs)


def test_existing_mode_attaches_and_leaves_the_kernel_running(recorder):
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    try:
        rec = recorder(mode=["--existing", km.connection_file])
        kc = rec.client()
        assert kc.execute_interactive("print('attached')", timeout=30)["content"]["status"] == "ok"
        assert rec.stop() == 0, rec.stderr
        assert km.is_alive(), "krec stopped a kernel it does not own"
        records = read(rec.log)
        assert any(r.msg_type == "stream" and r.content["text"] == "attached\n" for r in records)
        assert any(r.event == "attached" for r in records)
    finally:
        km.shutdown_kernel(now=True)
        km.cleanup_resources()


def test_install_writes_recorded_kernelspecs_that_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    prefix, logs = tmp_path / "prefix", tmp_path / "logs"
    proc = run_krec("install", "--prefix", str(prefix), "--log-dir", str(logs), "python3")
    assert proc.returncode == 0, proc.stderr
    assert "installed python3-krec" in proc.stdout
    spec_dir = prefix / "share" / "jupyter" / "kernels" / "python3-krec"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["display_name"] == "Python 3 (recorded)"
    assert spec["language"] == "python"
    assert "curve" in spec["metadata"]["supported_encryption"]
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    km = KernelManager(kernel_name="python3-krec")
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive("print('recorded kernel')", timeout=30)
        assert reply["content"]["status"] == "ok"
        kc.stop_channels()
    finally:
        km.shutdown_kernel()
        km.cleanup_resources()
    records = read(only_log(logs))
    assert any(r.content.get("text") == "recorded kernel\n" for r in records)
    assert any(r.event == "kernel_started" for r in records)
    bad = run_krec("install", "--prefix", str(prefix), "no-such-kernel")
    assert bad.returncode == 2 and "no kernel named 'no-such-kernel'" in bad.stderr
