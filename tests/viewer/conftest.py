"""Viewer fixtures: a small fixed session log, built with tests/factories.py.

``sample_log`` has a bit of everything the viewer shows: events, kernel_info,
cells with streams, a result, an image, a traceback with ANSI colours, stdin, a
comm, a subshell request, a slow cell for the timeline, an orphan output and a
request that never finished. Times, ids and the header are fixed, so snapshot
tests are stable.
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest
from factories import LogBuilder, log_header, stream

TRACEBACK = [
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
    "\x1b[0;31mZeroDivisionError\x1b[0m                         Traceback (most recent call last)",
    "Cell \x1b[0;32mIn[5], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m \x1b[38;5;241m1\x1b[39m "
    "\x1b[38;5;241m/\x1b[39m \x1b[38;5;241m0\x1b[39m",
    "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero",
]


def png_bytes(width: int, height: int) -> bytes:
    """The start of a PNG: enough for its type and dimensions."""
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + b"\x08\x06"


def write_sample_session(path: Path) -> int:
    """The fixed sample session; returns how many records it has. A version-1 log (no
    seals): the viewer's snapshots and counts do not depend on the hash chain."""
    b = LogBuilder(path, log_header(version=1))
    b.event("kernel_started", pid=4343, argv=["python", "-m", "ipykernel_launcher"])
    b.event("client_connected", ch="shell")
    b.event("client_subscribed", topic="")
    req = b.message("kernel_info_request", ms=20)
    b.message("status", {"execution_state": "busy"}, parent=req)
    info = {
        "status": "ok",
        "protocol_version": "5.4",
        "implementation": "ipython",
        "implementation_version": "8.31.0",
        "language_info": {"name": "python", "version": "3.11.9"},
        "banner": "Python 3.11.9",
    }
    b.message("kernel_info_reply", info, parent=req)
    b.message("status", {"execution_state": "idle"}, parent=req)
    b.execute("x = 21", count=1)
    b.execute(
        "print('stdout line')\nimport sys\nprint('stderr line', file=sys.stderr)",
        [stream("stdout line\n"), stream("stderr line\n", "stderr")],
        count=2,
    )
    result = {"data": {"text/plain": "42"}, "metadata": {}, "execution_count": 3}
    b.execute("x * 2", [("execute_result", result)], count=3)
    png = base64.b64encode(png_bytes(640, 480)).decode()
    figure = {"data": {"image/png": png, "text/plain": "<Figure size 640x480>"}, "metadata": {}}
    b.execute("plot()", [("display_data", {**figure, "transient": {}})], count=4)
    # an error: the traceback keeps IPython's colours
    error = {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": TRACEBACK}
    req = b.message("execute_request", {"code": "1 / 0", "silent": False, "allow_stdin": True})
    b.message("status", {"execution_state": "busy"}, parent=req)
    b.message("execute_input", {"code": "1 / 0", "execution_count": 5}, parent=req)
    b.message("error", error, parent=req, ms=2)
    b.message("execute_reply", {"status": "error", "execution_count": 5, **error}, parent=req)
    b.message("status", {"execution_state": "idle"}, parent=req)
    b.execute("import time\ntime.sleep(2)", [stream("done\n")], count=6, busy_ms=2000)
    # stdin: input_request from the kernel, input_reply from the frontend
    req = b.message("execute_request", {"code": "name = input('name? ')", "allow_stdin": True})
    b.message("status", {"execution_state": "busy"}, parent=req)
    ask = b.message("input_request", {"prompt": "name? ", "password": False}, parent=req)
    b.message("input_reply", {"value": "Ada"}, parent=ask, ms=400)
    b.message("execute_reply", {"status": "ok", "execution_count": 7}, parent=req)
    b.message("status", {"execution_state": "idle"}, parent=req)
    # a widget's comm
    state = {"state": {"value": 1}}
    opened = {"comm_id": "c0ffee00aa", "target_name": "jupyter.widget", "data": state}
    b.execute("s = IntSlider()", [("comm_open", opened)], count=8)
    update = {"comm_id": "c0ffee00aa", "data": {"method": "update", "state": {"value": 5}}}
    b.message("comm_msg", update, ch="shell", source="client")
    # a subshell
    ctrl = b.message("create_subshell_request")
    b.message("status", {"execution_state": "busy"}, parent=ctrl)
    b.message("create_subshell_reply", {"status": "ok", "subshell_id": "sub-1"}, parent=ctrl)
    b.message("status", {"execution_state": "idle"}, parent=ctrl)
    b.execute("y = 1", count=9, subshell_id="sub-1")
    # output whose request is not in the log, an interrupt, a cell that never finished
    elsewhere = {"msg_id": "elsewhere", "msg_type": "execute_request"}
    b.message("stream", {"name": "stdout", "text": "orphan\n"}, parent=elsewhere)
    req = b.message("execute_request", {"code": "while True: pass"})
    b.message("status", {"execution_state": "busy"}, parent=req)
    b.event("interrupt", mode="signal")
    b.event("recording_stopped", reason="SIGINT")
    b.close()
    return b.records


@pytest.fixture
def sample_log(tmp_path: Path) -> Path:
    """The fixed sample session, in a fresh file named session.krec."""
    path = tmp_path / "session.krec"
    write_sample_session(path)
    return path
