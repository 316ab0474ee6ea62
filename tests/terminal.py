"""A program on a pseudo-terminal, for tests that drive terminal frontends (jupyter console)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import termios
from pathlib import Path

from conftest import wait_for


class Pty:
    """A program on a pseudo-terminal, read as text (what a user would see, roughly)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()

        def controlling_terminal() -> None:  # so that Ctrl-C on the pty sends SIGINT
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            preexec_fn=controlling_terminal,
        )
        os.close(slave)
        self.text = ""

    def read(self, timeout: float = 0.2) -> str:
        while True:
            ready, _, _ = select.select([self.master], [], [], timeout)
            if not ready:
                return self.text
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return self.text
            self.text += re.sub(
                r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r", "", chunk.decode(errors="replace")
            )

    def expect(self, pattern: str, timeout: float = 60) -> None:
        wait_for(lambda: re.search(pattern, self.read()), timeout, f"{pattern!r} on screen")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        os.close(self.master)
