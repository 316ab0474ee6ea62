"""A kernel provisioner krec knows nothing about, for tests: it starts ipykernel on 127.0.0.2
(as a remote host would be) from a connection file of its own making, and hands back the
connection info it chose, the way gateway_provisioners' remote provisioners do.

Registered as ``krec-test-remote`` by ``register()`` (an entry point in a dist-info folder
put on sys.path / PYTHONPATH), since provisioners are found by entry point only.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.connect import write_connection_file
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from traitlets import Unicode

NAME = "krec-test-remote"
REMOTE_IP = "127.0.0.2"


class RemoteProvisioner(KernelProvisionerBase):  # type: ignore[misc]
    host = Unicode(REMOTE_IP, config=True)

    process: subprocess.Popen | None = None
    _dir = ""

    @property
    def has_process(self) -> bool:
        return self.process is not None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        self._dir = tempfile.mkdtemp(prefix="remote-kernel-")
        connection_file = os.path.join(self._dir, "remote.json")
        key = self.parent.session.key if self.parent is not None else b"k"
        write_connection_file(connection_file, ip=self.host, key=key)
        with open(connection_file, encoding="utf-8") as f:
            self.connection_info = json.load(f)
        kwargs.pop("extra_arguments", None)
        cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]
        return await super().pre_launch(cmd=cmd, **kwargs)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:
        self.process = subprocess.Popen(
            cmd,
            env=kwargs.get("env"),
            cwd=kwargs.get("cwd"),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self.connection_info

    async def poll(self) -> int | None:
        return self.process.poll() if self.process is not None else 0

    async def wait(self) -> int | None:
        if self.process is None:
            return 0
        while self.process.poll() is None:
            await asyncio.sleep(0.05)
        code = self.process.wait()
        self.process = None
        return code

    async def send_signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


def register(folder: Path) -> Path:
    """Write a dist-info in ``folder`` whose entry point names RemoteProvisioner; put
    ``folder`` on sys.path (and PYTHONPATH for subprocesses) to make it visible."""
    info = folder / "krec_test_remote-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: krec-test-remote\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        f"[jupyter_client.kernel_provisioners]\n{NAME} = remote_provisioner:RemoteProvisioner\n"
    )
    return folder
