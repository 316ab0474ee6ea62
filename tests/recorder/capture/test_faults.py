"""Faults: killed frontends and kernels, a full disk, a removed log directory, a frozen kernel.
krec must never lose the session, hang it, or leave a process behind."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from conftest import KREC, wait_for
from jupyter_client import KernelManager

from krec.recorder.log.reader import LogReader

pytestmark = pytest.mark.timeout(180)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def events(log: Path) -> list:
    with LogReader(log) as reader:
        return [r for r in reader if r.is_event]


def started_pid(log: Path) -> int:
    def find() -> int | None:
        return next((e.fields["pid"] for e in events(log) if e.event == "kernel_started"), None)

    return wait_for(find, 60, "kernel_started in the log")


FRONTEND = textwrap.dedent("""
    import sys, time
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
    kc.execute_interactive("print('frontend up')", timeout=30, output_hook=lambda m: None)
    print("READY", flush=True)
    time.sleep(600)
""")


def test_killed_frontend_ends_the_recording_and_the_kernel(tmp_path: Path):
    script = tmp_path / "frontend.py"
    script.write_text(FRONTEND)
    logs = tmp_path / "logs"
    krec = subprocess.Popen(
        [*KREC, "record", "-o", str(logs), "--", sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert krec.stdout is not None
        assert krec.stdout.readline().strip() == "READY"
        (log,) = logs.glob("python3-*.krec")
        kernel = started_pid(log)
        frontend = next(
            int(p)
            for p in os.listdir("/proc")
            if p.isdigit()
            and str(script).encode() in Path(f"/proc/{p}/cmdline").read_bytes()
            and int(p) != krec.pid
        )
        os.kill(frontend, signal.SIGKILL)
        wait_for(lambda: not pid_alive(kernel), 15, "the kernel to stop after its frontend died")
        assert krec.wait(30) == 128 + signal.SIGKILL  # CMD's status
    finally:
        if krec.poll() is None:
            krec.kill()
            krec.wait(30)
        krec.stdout.close()
    stopped = wait_for(
        lambda: [e for e in events(log) if e.event == "recording_stopped"],
        15,
        "the wrapper to finish its log",
    )
    assert stopped[-1].fields["reason"] == "frontend exited"
    assert any(e.event == "kernel_stopped" for e in events(log))


def test_existing_mode_survives_its_frontend_and_never_stops_the_kernel(recorder):
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    try:
        rec = recorder(mode=["--existing", km.connection_file])
        cf, log = rec.connection_file, rec.log
        frontend = textwrap.dedent(f"""
            import time
            from jupyter_client import BlockingKernelClient
            kc = BlockingKernelClient(connection_file={str(cf)!r})
            kc.load_connection_file(); kc.start_channels(); kc.wait_for_ready(timeout=60)
            kc.execute_interactive("print('hello')", timeout=30, output_hook=lambda m: None)
            print("READY", flush=True)
            time.sleep(600)
        """)
        client = subprocess.Popen(
            [sys.executable, "-c", frontend], stdout=subprocess.PIPE, text=True
        )
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "READY"
        client.kill()
        client.wait(30)
        client.stdout.close()
        wait_for(
            lambda: any(e.event == "client_disconnected" for e in events(log)),
            15,
            "client_disconnected",
        )
        assert rec.proc.poll() is None, "krec stopped when its frontend died"
        assert rec.stop() == 0
        assert km.is_alive()
    finally:
        km.shutdown_kernel(now=True)
        km.cleanup_resources()


def test_dead_kernel_is_seen_by_nbclient_and_restart_works(tmp_path: Path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("import os; os._exit(1)"),
        nbformat.v4.new_code_cell("print(x)"),
    ]
    src = tmp_path / "dies.ipynb"
    nbformat.write(nb, src)
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import DeadKernelError
        nb = nbformat.read({str(src)!r}, as_version=4)
        client = NotebookClient(nb, timeout=60, kernel_name="python3")
        try:
            client.execute()
        except DeadKernelError:
            print("DeadKernelError")
        from jupyter_client.manager import start_new_kernel
        km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
        kc.execute("import os; os._exit(2)")
        import time
        deadline = time.time() + 30
        while km.is_alive() and time.time() < deadline:
            time.sleep(0.1)
        km.restart_kernel(now=True)
        kc.wait_for_ready(timeout=60)
        r = kc.execute_interactive("print('after restart')", timeout=30,
                                   output_hook=lambda m: None)
        print(r["content"]["status"])
        kc.stop_channels()
        km.shutdown_kernel()
    """)
    )
    logs = tmp_path / "logs"
    proc = subprocess.run(
        [*KREC, "record", "-o", str(logs), "--", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["DeadKernelError", "ok"]
    logs_found = sorted(logs.glob("python3-*.krec"))
    assert len(logs_found) == 2
    died = [[e for e in events(log) if e.event == "kernel_died"] for log in logs_found]
    assert all(d for d in died), "kernel_died missing"
    restarted = [log for log in logs_found if any(e.event == "restart" for e in events(log))]
    assert len(restarted) == 1
    with LogReader(restarted[0]) as reader:
        assert any(r.content.get("text") == "after restart\n" for r in reader)


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_never_blocks_the_session(recorder):
    """RLIMIT_FSIZE makes the log's writes fail the way a full disk does (EFBIG/ENOSPC)."""
    rec = recorder(preexec_fn=_limit_file_size(64_000))
    kc = rec.client()
    seen: list[str] = []
    reply = kc.execute_interactive(
        "for i in range(3000): print('line', i, flush=True)",
        timeout=120,
        output_hook=lambda m: seen.append(m["content"].get("text", "")),
    )
    assert reply["content"]["status"] == "ok"
    assert "".join(seen).count("\n") == 3000, "output lost on the way to the frontend"
    reply = kc.execute_interactive("print('still alive')", timeout=30)
    assert reply["content"]["status"] == "ok"
    assert rec.stop(60) == 0
    assert "cannot write" in rec.stderr and "records are dropped" in rec.stderr
    with LogReader(rec.log) as reader:  # what was written is intact (no half record)
        assert not any(w.startswith("corrupt") for w in reader.warnings)
        assert len(reader) > 0


def test_removed_log_directory_warns_and_forwarding_goes_on(recorder, tmp_path: Path):
    rec = recorder(log=tmp_path / "logs" / "s.krec")
    kc = rec.client()
    shutil.rmtree(tmp_path / "logs")
    for i in range(3):
        reply = kc.execute_interactive(f"print({i})", timeout=30)
        assert reply["content"]["status"] == "ok"
        time.sleep(0.5)
    wait_for(lambda: "was removed while recording" in rec.stderr, 15, "the warning")
    assert rec.stop(60) == 0


def test_frozen_kernel_loses_and_regains_heartbeat(recorder):
    rec = recorder()
    rec.client()
    kernel = started_pid(rec.log)
    time.sleep(3.5)  # one heartbeat answered first
    os.kill(kernel, signal.SIGSTOP)
    try:
        wait_for(
            lambda: any(e.event == "heartbeat_lost" for e in events(rec.log)), 20, "heartbeat_lost"
        )
    finally:
        os.kill(kernel, signal.SIGCONT)
    wait_for(
        lambda: any(e.event == "heartbeat_restored" for e in events(rec.log)),
        20,
        "heartbeat_restored",
    )
    assert rec.stop() == 0
