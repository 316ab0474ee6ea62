"""krec-provisioner with real kernels: around local-provisioner and around a provisioner that
starts the kernel its own way on 127.0.0.2; driven by KernelManager, AsyncKernelManager and
jupyter_server's MultiKernelManager; restarts continue one log; bad configuration is refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from conftest import run_krec
from jupyter_client.manager import AsyncKernelManager, KernelManager
from remote_provisioner import NAME as REMOTE
from remote_provisioner import REMOTE_IP, register
from sessions import execute

from krec.recorder.capture.provisioner import ProvisionerError, provisioner_spec
from krec.recorder.kernelspec import find_spec
from krec.recorder.log.reader import LogReader

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A JUPYTER_PATH with ``py-krec`` (local-provisioner) and ``remote-krec`` specs; the
    remote test provisioner registered for this process and its children."""
    dist = register(tmp_path / "dist")
    monkeypatch.syspath_prepend(str(dist))
    paths = [str(dist), str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    root = tmp_path / "jupyter"
    entry = find_spec("python3")
    for name, inner in (("py-krec", None), ("remote-krec", REMOTE)):
        folder = root / "kernels" / name
        folder.mkdir(parents=True)
        spec = provisioner_spec(entry, str(tmp_path / "logs"), inner=inner)
        (folder / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    return tmp_path / "logs"


def one_log(log_dir: Path) -> list:
    (log,) = log_dir.glob("*.krec")
    with LogReader(log) as reader:
        assert not reader.warnings, reader.warnings
        return [reader.header, *reader]


def codes(records: list) -> list[str]:
    return [r.content["code"] for r in records[1:] if r.msg_type == "execute_request"]


def events(records: list, name: str) -> list:
    return [r for r in records[1:] if r.event == name]


def test_kernel_manager_records_through_local_provisioner_and_restarts_into_one_log(
    specs: Path,
) -> None:
    km = KernelManager(kernel_name="py-krec")
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        assert execute(kc, "x = 6 * 7")["content"]["status"] == "ok"
        kc.stop_channels()
        km.restart_kernel(now=False)
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        reply = execute(kc, "print('after restart'); 'x' in dir()")
        assert reply["content"]["status"] == "ok"
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=False)
    records = one_log(specs)
    header = records[0]
    assert header["mode"] == "provisioner" and header["provisioner"] == "local-provisioner"
    assert header["kernel"]["name"] == "py-krec" and header["user"]
    assert "key" not in json.dumps(header["connection"])
    assert codes(records) == ["x = 6 * 7", "print('after restart'); 'x' in dir()"]
    assert len(events(records, "kernel_started")) == 2
    (restart,) = events(records, "restart")
    first_stop = events(records, "recording_stopped")[0]
    assert first_stop.index < restart.index  # the second kernel's records follow the restart
    assert records[-2].event == "recording_stopped" and records[-1].event == "seal"
    shutdowns = [r for r in records[1:] if r.msg_type == "shutdown_request"]
    assert [r.content["restart"] for r in shutdowns] == [True, False]


def test_curve_keys_the_manager_provisions_are_carried_on_both_sides(specs: Path) -> None:
    km = KernelManager(kernel_name="py-krec", transport_encryption="required")
    km.start_kernel()
    try:
        assert km.curve_publickey  # the kernel and krec's proxy both use CurveZMQ
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        assert execute(kc, "secret = 1")["content"]["status"] == "ok"
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=False)
    records = one_log(specs)
    assert records[0]["connection"]["encryption"] == "curve"
    assert codes(records) == ["secret = 1"]


def test_async_manager_records_a_kernel_started_its_own_way_on_another_host(
    specs: Path,
) -> None:
    async def session() -> dict[str, Any]:
        km = AsyncKernelManager(kernel_name="remote-krec")
        await km.start_kernel()
        try:
            assert km.ip == "127.0.0.1"  # clients talk to krec, never to 127.0.0.2
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=60)
            msg_id = kc.execute("import socket; 21 * 2")
            while True:
                reply = await kc.get_shell_msg(timeout=30)
                if reply["parent_header"]["msg_id"] == msg_id:
                    break
            kc.stop_channels()
            await km.interrupt_kernel()
            return reply
        finally:
            await km.shutdown_kernel(now=False)

    reply = asyncio.run(session())
    assert reply["content"]["status"] == "ok"
    records = one_log(specs)
    assert records[0]["provisioner"] == REMOTE
    assert records[0]["connection"]["ip"] == "127.0.0.1"
    (started,) = events(records, "kernel_started")
    assert started.fields["kernel_ip"] == REMOTE_IP
    assert codes(records) == ["import socket; 21 * 2"]
    # ours (jupyter_client 8.x then sends one more of its own before shutdown_request)
    interrupts = events(records, "interrupt")
    shutdown = next(r for r in records[1:] if r.msg_type == "shutdown_request")
    assert interrupts[0].fields["mode"] == "signal" and interrupts[0].index < shutdown.index
    assert all(e.fields["mode"] == "signal" for e in interrupts)
    results = [r for r in records[1:] if r.msg_type == "execute_result"]
    assert results[0].content["data"]["text/plain"] == "42"


async def _run_cell(km: Any, code: str) -> dict[str, Any]:
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        msg_id = kc.execute(code)
        while True:
            reply = await kc.get_shell_msg(timeout=30)
            if reply["parent_header"]["msg_id"] == msg_id:
                return reply
    finally:
        kc.stop_channels()


def test_jupyter_server_multikernelmanager_records_and_restarts_into_one_log(
    specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    monkeypatch.setenv("JUPYTERHUB_USER", "ada")  # as in a JupyterHub single-user server

    async def session() -> list[str]:
        mkm = AsyncMappingKernelManager(root_dir=str(specs.parent))
        kernel_id = await mkm.start_kernel(kernel_name="py-krec")
        try:
            first = await _run_cell(mkm.get_kernel(kernel_id), "a = 1")
            await mkm.restart_kernel(kernel_id)
            second = await _run_cell(mkm.get_kernel(kernel_id), "b = 2")
        finally:
            await mkm.shutdown_kernel(kernel_id)
        return [first["content"]["status"], second["content"]["status"]]

    assert asyncio.run(session()) == ["ok", "ok"]
    records = one_log(specs)
    assert records[0]["jupyterhub_user"] == "ada" and records[0]["user"]
    assert codes(records) == ["a = 1", "b = 2"]
    assert len(events(records, "restart")) == 1
    assert records[-2].event == "recording_stopped" and records[-1].event == "seal"


def test_unknown_inner_provisioner_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with pytest.raises(ProvisionerError, match="unknown inner kernel provisioner 'nope'"):
        provisioner_spec(find_spec("python3"), str(tmp_path), inner="nope")
    done = run_krec(
        "install",
        "--prefix",
        str(tmp_path),
        "--provisioner",
        "--inner-provisioner",
        "nope",
        "python3",
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("krec: error: unknown inner kernel provisioner 'nope' (installed: ")


def test_krec_install_provisioner_writes_a_spec_that_records(tmp_path: Path) -> None:
    done = run_krec(
        "install",
        "--prefix",
        str(tmp_path),
        "--provisioner",
        "--log-dir",
        str(tmp_path / "l"),
        "python3",
    )
    assert done.returncode == 0, done.stderr
    spec = json.loads((tmp_path / "share/jupyter/kernels/python3-krec/kernel.json").read_text())
    provisioner = spec["metadata"]["kernel_provisioner"]
    assert provisioner["provisioner_name"] == "krec-provisioner"
    assert provisioner["config"]["inner"] == {"provisioner_name": "local-provisioner", "config": {}}
    assert provisioner["config"]["log_dir"] == str(tmp_path / "l")
    assert spec["argv"] == find_spec("python3")["spec"]["argv"]
    assert spec["display_name"].endswith("(recorded)")


def test_a_kernel_that_dies_ends_its_recording_at_cleanup(specs: Path) -> None:
    km = KernelManager(kernel_name="py-krec")
    km.start_kernel()
    try:
        km.signal_kernel(signal.SIGKILL)
        assert km.provisioner is not None
        assert asyncio.run(km.provisioner.wait()) == -signal.SIGKILL
    finally:
        km.shutdown_kernel(now=True)
    records = one_log(specs)
    assert records[-2].event == "recording_stopped" and records[-1].event == "seal"
    assert records[-2].fields["reason"] == "kernel shut down"


def test_a_fresh_home_without_a_runtime_dir_records(
    specs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain KernelManager names no connection file; krec's goes to the runtime dir,
    which a fresh home (a new container) does not have yet."""
    runtime = tmp_path / "fresh" / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    km = KernelManager(kernel_name="py-krec")
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        assert execute(kc, "y = 1")["content"]["status"] == "ok"
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=False)
    assert runtime.is_dir()
    assert codes(one_log(specs)) == ["y = 1"]
