"""Scripted frontend sessions, driven with jupyter_client, shared by tests and samples.

Each function takes a started BlockingKernelClient (attached through krec) and
runs one kind of session to completion, waiting for every reply and idle.
"""

from __future__ import annotations

import time
from typing import Any

RICH_CELLS = [
    "x = 21",
    "print('stdout line')\nimport sys\nprint('stderr line', file=sys.stderr)",
    "x * 2",
    "from IPython.display import display, HTML, Markdown\n"
    "display(HTML('<b>bold</b>'))\ndisplay(Markdown('*md*'))",
    "h = display('first', display_id=True)\nh.update('second')",
    "from IPython.display import clear_output\nprint('gone')\nclear_output()\nprint('kept')",
    "1 / 0",
    "def broken(:\n    pass",
]


def execute(kc: Any, code: str, *, stdin: list[str] | None = None, timeout: float = 60) -> dict:
    """Run one cell; answer input requests from ``stdin`` in order; return the reply."""
    answers = list(stdin or [])

    def stdin_hook(msg: dict) -> None:
        kc.input(answers.pop(0) if answers else "")

    return kc.execute_interactive(
        code,
        timeout=timeout,
        allow_stdin=stdin is not None,
        stdin_hook=stdin_hook if stdin is not None else None,
        output_hook=lambda msg: None,
    )


SLEEP = "import time; print('sleeping', flush=True); time.sleep(60)"


def interrupted_sleep(kc: Any, interrupt: Any = None, *, after: float = 0.3) -> dict:
    """Run ``SLEEP``, interrupt it ``after`` seconds into it and return its execute_reply,
    checked to be that request's KeyboardInterrupt. ``interrupt`` defaults to an
    interrupt_request on control, as the frontend of a message-mode kernel sends. The
    interrupt goes only once the cell's own output shows it runs: however loaded the
    machine, it lands in the cell, never before it."""
    msg_id = kc.execute(SLEEP)
    deadline = time.monotonic() + 60
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["msg_type"] == "stream" and msg["parent_header"].get("msg_id") == msg_id:
            break
        assert time.monotonic() < deadline, "the sleep did not start"
    time.sleep(after)
    if interrupt is None:
        kc.control_channel.send(kc.session.msg("interrupt_request", {}))
    else:
        interrupt()
    reply = kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    return reply


def introspect(kc: Any) -> None:
    for method, args in (
        ("complete", ("x", 1)),
        ("inspect", ("print", 5)),
        ("is_complete", ("for i in range(3):",)),
        ("history", ()),
        ("kernel_info", ()),
    ):
        msg_id = getattr(kc, method)(*args)
        while True:
            reply = kc.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break


def drive_rich_session(kc: Any) -> None:
    """Cells with state, streams, rich display, errors, stdin, introspection and a widget."""
    for code in RICH_CELLS:
        execute(kc, code)
    execute(kc, "name = input('name? ')\nprint('hello', name)", stdin=["Ada"])
    execute(kc, "import getpass\npw = getpass.getpass('pw? ')\nprint(len(pw))", stdin=["hunter22"])
    introspect(kc)
    execute(kc, "import ipywidgets as w\ns = w.IntSlider(value=1)\ndisplay(s)")
    execute(kc, "s.value = 5\ns.close()")
    time.sleep(0.2)
