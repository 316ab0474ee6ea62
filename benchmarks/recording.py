"""What the benchmarks share: a `krec record --kernel` process and a client attached to it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from jupyter_client import BlockingKernelClient


def start_recording(log: Path, connection_file: Path, *extra: str) -> subprocess.Popen:
    """Start `krec record --kernel python3` and wait for its frontend connection file."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "krec.recorder",
            "record",
            "--kernel",
            "python3",
            "-o",
            str(log),
            "--connection-file",
            str(connection_file),
            *extra,
        ],
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not connection_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("krec record did not start")
        time.sleep(0.05)
    return proc


def stop_recording(proc: subprocess.Popen) -> None:
    """Ctrl-C, as a user would, and wait for the log to be closed."""
    proc.send_signal(signal.SIGINT)
    proc.wait(120)


def attach(connection_file: Path) -> BlockingKernelClient:
    """A started, ready client for a connection file."""
    kc = BlockingKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return kc
