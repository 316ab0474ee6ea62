"""Real frontends under `krec record -- CMD`: the conformance suite, nbclient, nbconvert,
papermill, jupyter console (on a pty) and jupyter server give what they give without krec."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from conftest import KREC, free_port, run_krec, wait_for
from terminal import Pty

from krec.recorder.log.reader import LogReader

pytestmark = pytest.mark.timeout(300)

CONFORMANCE = textwrap.dedent("""
    import unittest
    import jupyter_kernel_test


    class IPyKernelConformance(jupyter_kernel_test.KernelTests):
        kernel_name = "python3"
        language_name = "python"
        file_extension = ".py"
        code_hello_world = "print('hello, world')"
        code_stderr = "import sys; print('test', file=sys.stderr)"
        completion_samples = [{"text": "zi", "matches": {"zip"}}]
        complete_code_samples = ["1", "print('hello, world')", "def f(x):\\n  return x*2\\n\\n\\n"]
        incomplete_code_samples = ["print('''hello", "def f(x):\\n  x*2"]
        invalid_code_samples = ["import = 7q"]
        code_page_something = "zip?"
        code_generate_error = "raise"
        code_execute_result = [
            {"code": "1+2+3", "result": "6"},
            {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"},
        ]
        code_display_data = [
            {"code": "from IPython.display import HTML, display; display(HTML('<b>t</b>'))",
             "mime": "text/html"},
            {"code": "from IPython.display import Math, display; display(Math('x^2'))",
             "mime": "text/latex"},
        ]
        code_history_pattern = "1?2*"
        supported_history_operations = ("tail", "search")
        code_inspect_sample = "zip"
        code_clear_output = "from IPython.display import clear_output; clear_output()"


    if __name__ == "__main__":
        unittest.main()
""")


def junit_outcomes(path: Path) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        kinds = {child.tag for child in case}
        outcomes[name] = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
    return outcomes


def pytest_cmd(test_file: Path, junit: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        f"--junitxml={junit}",
        "-o",
        "addopts=",
        str(test_file),
    ]


def test_conformance_suite_same_results_through_krec(tmp_path: Path):
    suite = tmp_path / "test_conformance_ipykernel.py"
    suite.write_text(CONFORMANCE)
    direct = subprocess.run(
        pytest_cmd(suite, tmp_path / "direct.xml"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    logs = tmp_path / "logs"
    through = run_krec(
        "record",
        "-o",
        str(logs),
        "--",
        *pytest_cmd(suite, tmp_path / "krec.xml"),
        cwd=tmp_path,
        timeout=240,
    )
    a = junit_outcomes(tmp_path / "direct.xml")
    b = junit_outcomes(tmp_path / "krec.xml")
    assert len(a) >= 12, direct.stdout
    assert list(a.values()).count("passed") >= 11, a
    assert a == b, (direct.stdout, through.stdout)
    assert through.returncode == direct.returncode
    recorded = list(logs.glob("python3-*.krec"))
    assert recorded, through.stderr
    total = 0
    for log in recorded:
        with LogReader(log) as reader:
            assert not reader.warnings
            total += sum(1 for r in reader if r.msg_type == "execute_request")
    assert total >= 10


NOTEBOOK_CELLS = [
    "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)",
    "from IPython.display import HTML, display\ndisplay(HTML('<i>html</i>'))",
    "sum(range(10))",
    "values = [n ** 2 for n in range(5)]\nvalues",
]


def make_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def outputs(path: Path) -> list[list[dict]]:
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        cells.append([{k: v for k, v in o.items() if k != "metadata"} for o in cell.outputs])
    return cells


RUN_NBCLIENT = textwrap.dedent("""
    import sys
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    nbformat.write(nb, sys.argv[2])
""")


def test_nbclient_notebook_same_outputs_through_krec(tmp_path: Path):
    src = tmp_path / "in.ipynb"
    make_notebook(src)
    runner = tmp_path / "run_nb.py"
    runner.write_text(RUN_NBCLIENT)
    subprocess.run(
        [sys.executable, str(runner), str(src), str(tmp_path / "direct.ipynb")],
        check=True,
        timeout=120,
        capture_output=True,
    )
    logs = tmp_path / "logs"
    proc = run_krec(
        "record",
        "-o",
        str(logs),
        "--",
        sys.executable,
        str(runner),
        str(src),
        str(tmp_path / "krec.ipynb"),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert outputs(tmp_path / "krec.ipynb") == outputs(tmp_path / "direct.ipynb")
    assert outputs(tmp_path / "krec.ipynb")[2][0]["data"]["text/plain"] == "45"
    (log,) = logs.glob("python3-*.krec")
    with LogReader(log) as reader:
        codes = [r.content["code"] for r in reader if r.msg_type == "execute_request"]
    assert codes == NOTEBOOK_CELLS


def test_nbconvert_and_papermill_through_krec(tmp_path: Path):
    src = tmp_path / "in.ipynb"
    make_notebook(src)
    logs = tmp_path / "logs"
    proc = run_krec(
        "record",
        "-o",
        str(logs),
        "--",
        sys.executable,
        "-m",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--output",
        "nbconvert.ipynb",
        str(src),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    proc = run_krec(
        "record",
        "-o",
        str(logs),
        "--",
        sys.executable,
        "-m",
        "papermill",
        "--kernel",
        "python3",
        str(src),
        str(tmp_path / "papermill.ipynb"),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("nbconvert.ipynb", "papermill.ipynb"):
        got = outputs(tmp_path / name)
        assert got[2][0]["data"]["text/plain"] == "45", name
        assert got[0][0]["text"] == "to stdout\n", name
    assert len(list(logs.glob("python3-*.krec"))) == 2


def test_jupyter_console_input_and_ctrl_c_through_krec(tmp_path: Path):
    logs = tmp_path / "logs"
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    term = Pty(
        [
            *KREC,
            "record",
            "-o",
            str(logs),
            "--",
            sys.executable,
            "-m",
            "jupyter_console",
            "--kernel",
            "python3",
            "--no-confirm-exit",
            "--simple-prompt",
        ],
        tmp_path,
        env,
    )
    try:
        term.expect(r"In \[1\]", 120)
        term.send("print(6 * 7)\r")
        term.expect(r"\n42\n")
        term.send("name = input('who? ')\r")
        term.expect("who?")
        term.send("Grace\r")
        term.send("print('hi', name)\r")
        term.expect("hi Grace")
        # the interrupt goes once the cell runs (its output, not its echo, says so)
        term.send("import time; print('slee' + 'ping'); time.sleep(60)\r")
        term.expect("sleeping", 60)
        term.send("\x03")
        term.expect("KeyboardInterrupt", 30)
        term.send("exit\r")
        wait_for(lambda: term.proc.poll() is not None, 60, "jupyter console to exit")
        assert term.proc.returncode == 0, term.read()
    finally:
        term.close()
    (log,) = logs.glob("python3-*.krec")
    with LogReader(log) as reader:
        records = list(reader)
    assert any(r.event == "interrupt" and r.fields["mode"] == "signal" for r in records)
    assert any(r.msg_type == "input_reply" and r.content["value"] == "Grace" for r in records)
    assert any(r.msg_type == "error" and r.content["ename"] == "KeyboardInterrupt" for r in records)


def test_jupyter_server_kernel_over_websocket_through_krec(tmp_path: Path):
    import asyncio

    from tornado.httpclient import AsyncHTTPClient, HTTPRequest
    from tornado.websocket import websocket_connect

    port, token = free_port(), "krec-test-token"
    logs = tmp_path / "logs"
    server = subprocess.Popen(
        [
            *KREC,
            "record",
            "-o",
            str(logs),
            "--",
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
            "--allow-root",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {token}"}

    async def session() -> list[dict]:
        http = AsyncHTTPClient()
        for _ in range(200):
            try:
                await http.fetch(f"{base}/api/status", headers=headers)
                break
            except Exception:
                await asyncio.sleep(0.25)
        resp = await http.fetch(
            HTTPRequest(
                f"{base}/api/kernels",
                method="POST",
                headers=headers,
                body=json.dumps({"name": "python3"}),
            )
        )
        kernel_id = json.loads(resp.body)["id"]
        ws = await websocket_connect(
            HTTPRequest(f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels", headers=headers)
        )
        msg_id = "krec-ws-test-1"
        await ws.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "t",
                        "session": "s1",
                        "version": "5.4",
                        "date": datetime.now(UTC).isoformat(),
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "content": {"code": "print(2 ** 10)", "silent": False},
                }
            )
        )
        got = []
        while True:
            raw = await asyncio.wait_for(ws.read_message(), 60)
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                got.append(msg)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
        ws.close()
        await http.fetch(
            HTTPRequest(f"{base}/api/kernels/{kernel_id}", method="DELETE", headers=headers)
        )
        return got

    try:
        got = asyncio.run(asyncio.wait_for(session(), 120))
    finally:
        server.send_signal(signal.SIGTERM)  # krec passes it on to jupyter server
        assert server.wait(60) == 0
    assert any(m["msg_type"] == "stream" and m["content"]["text"] == "1024\n" for m in got)
    (log,) = logs.glob("python3-*.krec")
    with LogReader(log) as reader:
        assert any(r.msg_type == "stream" and r.content.get("text") == "1024\n" for r in reader)
