"""RecordingKernelManager, AsyncRecordingKernelManager and recording() with real kernels and the
libraries people drive kernels with: jupyter_client, nbclient, papermill."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import zmq.asyncio
from conftest import run_krec
from jupyter_client.kernelspec import KernelSpecManager
from sessions import SLEEP, interrupted_sleep

from krec.recorder import AsyncRecordingKernelManager, RecordingKernelManager, recording
from krec.recorder.kernelspec import write_shadow_specs
from krec.recorder.log.reader import LogReader
from krec.recorder.log.writer import LogWriteError

pytestmark = pytest.mark.timeout(180)

CELLS = [
    "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)",
    "from IPython.display import HTML, display\ndisplay(HTML('<i>html</i>'))",
    "sum(range(10))",
    "1 / 0",
]


def notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[list[dict]]:
    def clean(output: dict) -> dict:
        return {k: v for k, v in output.items() if k not in ("metadata", "traceback")}

    return [[clean(o) for o in cell.outputs] for cell in nb.cells]


def read(log: Path | str) -> list:
    with LogReader(log) as reader:
        assert not reader.warnings, reader.warnings
        return list(reader)


def codes(records: list) -> list[str]:
    return [r.content["code"] for r in records if r.msg_type == "execute_request"]


def test_nbclient_same_outputs_and_one_valid_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from nbclient import NotebookClient

    monkeypatch.chdir(tmp_path)
    direct = notebook()
    NotebookClient(direct, timeout=60, allow_errors=True).execute()
    recorded = notebook()
    client = NotebookClient(
        recorded, timeout=60, allow_errors=True, kernel_manager_class=RecordingKernelManager
    )
    client.execute()
    assert outputs(recorded) == outputs(direct)
    assert outputs(recorded)[2][0]["data"]["text/plain"] == "45"
    assert outputs(recorded)[3][0]["ename"] == "ZeroDivisionError"
    (log,) = (tmp_path / "krec-logs").glob("python3-*.krec")
    records = read(log)
    assert codes(records) == CELLS
    assert records[-2].event == "recording_stopped" and records[-1].event == "seal"
    with LogReader(log) as reader:
        assert reader.header["kernel"]["name"] == "python3"
        assert "ipykernel_launcher" in reader.header["kernel"]["argv"]


def test_restart_and_interrupt_are_recorded_events(tmp_path: Path):
    log = tmp_path / "session.krec"
    km = RecordingKernelManager(kernel_name="python3", log_path=str(log))
    km.start_kernel()
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        assert km.is_alive()
        assert kc.execute_interactive("state = 41", timeout=30)["content"]["status"] == "ok"
        interrupted_sleep(kc, km.interrupt_kernel)
        km.restart_kernel()
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive("state", timeout=30)
        assert reply["content"]["ename"] == "NameError", "state survived the restart"
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    assert not km.is_alive()
    assert km.log_path == str(log)
    records = read(log)
    events = [r.event for r in records if r.is_event]
    assert events.count("kernel_started") == 2
    restart = events.index("restart")
    assert events.index("interrupt") < restart < len(events) - events[::-1].index("kernel_started")
    assert any(r.event == "interrupt" and r.fields["mode"] == "signal" for r in records)
    assert events[-1] == "seal"  # the final seal, after recording_stopped
    assert [e for e in events if e != "seal"][-1] == "recording_stopped"
    assert codes(records) == ["state = 41", SLEEP, "state"]


def test_async_manager_and_a_second_session_gets_a_new_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)

    async def session(km: AsyncRecordingKernelManager, code: str) -> None:
        await km.start_kernel()
        kc = km.client()
        try:
            kc.start_channels()
            await kc.wait_for_ready(timeout=60)
            assert await km.is_alive()
            reply = await kc.execute_interactive(code, timeout=30)
            assert reply["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
            await km.shutdown_kernel()

    async def main() -> tuple[str, str]:
        # a context of our own: jupyter_client destroys the one it creates at shutdown
        context = zmq.asyncio.Context()
        try:
            km = AsyncRecordingKernelManager(kernel_name="python3", context=context)
            first = km.log_path
            await session(km, "print('first')")
            await session(km, "print('second')")
            return first, km.log_path
        finally:
            context.term()

    first, second = asyncio.run(main())
    assert first.startswith(str(tmp_path / "krec-logs" / "python3-"))
    assert second != first
    assert codes(read(first)) == ["print('first')"]
    assert codes(read(second)) == ["print('second')"]


def test_an_existing_log_path_is_refused_before_any_kernel_starts(tmp_path: Path):
    log = tmp_path / "taken.krec"
    log.write_bytes(b"not mine")
    km = RecordingKernelManager(kernel_name="python3", log_path=str(log))
    with pytest.raises(LogWriteError, match="already exists"):
        km.start_kernel()
    assert not km.has_kernel
    km.cleanup_resources()
    assert log.read_bytes() == b"not mine"


def test_recording_records_start_new_kernel_and_restores_jupyter_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from jupyter_client.manager import start_new_kernel

    monkeypatch.setenv("JUPYTER_PATH", "/somewhere/else")
    with recording(tmp_path / "logs") as rec:
        assert os.environ["JUPYTER_PATH"].endswith(os.pathsep + "/somewhere/else")
        km, kc = start_new_kernel(kernel_name="python3")
    assert os.environ["JUPYTER_PATH"] == "/somewhere/else"
    try:
        reply = kc.execute_interactive("print('inside')", timeout=30)
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    (log,) = rec.logs
    assert Path(log).parent == tmp_path / "logs"
    assert codes(read(log)) == ["print('inside')"]


def test_papermill_with_the_recording_kernel_manager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import papermill

    monkeypatch.chdir(tmp_path)
    nbformat.write(notebook(), tmp_path / "in.ipynb")
    with pytest.raises(papermill.PapermillExecutionError, match="ZeroDivisionError"):
        papermill.execute_notebook(
            "in.ipynb",
            "out.ipynb",
            kernel_name="python3",
            kernel_manager_class=RecordingKernelManager,
            progress_bar=False,
        )
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.cells[3].outputs[0]["data"]["text/plain"] == "45"  # papermill adds a cell
    (log,) = (tmp_path / "krec-logs").glob("python3-*.krec")
    assert codes(read(log))[-4:] == CELLS


def test_a_wrapper_is_unwrapped_not_recorded_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shadow, installed = tmp_path / "shadow", tmp_path / "installed"
    write_shadow_specs(str(shadow), str(tmp_path / "logs"))
    (installed / "kernels" / "python3-krec").mkdir(parents=True)
    argv = [sys.executable, "-m", "krec.recorder", "wrap", "--kernel", "python3"]
    argv += ["--log-dir", str(tmp_path), "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "P", "language": "python"}
    spec["metadata"] = {"krec_wrapper": True}
    (installed / "kernels" / "python3-krec" / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join([str(shadow), str(installed)]))
    assert KernelSpecManager().get_kernel_spec("python3").metadata["krec_wrapper"]
    for name in ("python3", "python3-krec"):
        km = RecordingKernelManager(kernel_name=name)
        argv = km.kernel_spec.argv
        assert argv[3:5] == ["wrap", "--inner-spec"], argv
        with open(argv[5], encoding="utf-8") as f:
            inner = json.load(f)
        assert inner["name"] == "python3"
        assert "ipykernel_launcher" in inner["spec"]["argv"], inner


def test_wrap_needs_one_log_destination(tmp_path: Path):
    cf = str(tmp_path / "cf.json")
    neither = run_krec("wrap", "--kernel", "python3", "-f", cf)
    both = run_krec("wrap", "--kernel", "python3", "--log", "a.krec", "--log-dir", "d", "-f", cf)
    for proc in (neither, both):
        assert proc.returncode == 2
        assert "--log" in proc.stderr and "Traceback" not in proc.stderr


def test_importing_krec_recorder_stays_light():
    code = "import sys, krec.recorder; print('jupyter_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
