"""A deliberately faulty Jupyter kernel for the `krec check` tests: one protocol mistake per switch.

Built on ipykernel's ``Kernel`` base class. ``KREC_FAULT`` (set by its kernelspec)
names the mistake, and the kernel makes it only while handling a cell whose code
contains ``FAULT`` (or a complete_request for such code), so a test knows exactly
which message is wrong. Every cell echoes its code on stdout. The faults:

- ``none``: a correct kernel
- ``no-idle``: no ``status: idle`` after the FAULT cell
- ``wrong-parent``: the FAULT cell's execute_reply names a request that was never sent
- ``late-execute-input``: execute_input published after the cell's stream output
- ``skip-count``: the FAULT cell's execution_count skips a number
- ``unknown-comm``: the FAULT cell sends a comm_msg to a comm nobody opened
- ``missing-field``: the complete_reply for FAULT code has no ``matches``

Run as ``python faulty_kernel.py -f CONNECTION_FILE``; ``write_kernelspecs(dir)``
writes one kernelspec per fault, named ``faulty-FAULT``.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from ipykernel.kernelbase import Kernel

MARK = "FAULT"
FAULTS = (
    "none",
    "no-idle",
    "wrong-parent",
    "late-execute-input",
    "skip-count",
    "unknown-comm",
    "missing-field",
)
FAULT = os.environ.get("KREC_FAULT", "none")


def _is_fault(parent: Any) -> bool:
    """Is ``parent`` (a request message) the FAULT cell's execute_request?"""
    if (
        not isinstance(parent, dict)
        or parent.get("header", {}).get("msg_type") != "execute_request"
    ):
        return False
    code = parent.get("content", {}).get("code")
    return isinstance(code, str) and MARK in code


class FaultyKernel(Kernel):
    implementation = "faulty"
    implementation_version = "0.1"
    banner = "a deliberately faulty kernel for krec tests"
    language_info = {
        "name": "faulty",
        "version": "1.0",
        "mimetype": "text/plain",
        "file_extension": ".txt",
    }

    _late_input: tuple[str, Any, int] | None = None

    def start(self) -> None:
        super().start()
        if FAULT == "wrong-parent":
            send = self.session.send

            def faulty_send(
                stream: Any,
                msg_or_type: Any,
                content: Any = None,
                parent: Any = None,
                *args: Any,
                **kwargs: Any,
            ) -> Any:
                if msg_or_type == "execute_reply" and _is_fault(parent):
                    header = {**parent["header"], "msg_id": uuid.uuid4().hex}
                    parent = {**parent, "header": header}
                return send(stream, msg_or_type, content, parent, *args, **kwargs)

            self.session.send = faulty_send  # type: ignore[method-assign]

    def _publish_status(self, status: str, channel: str, parent: Any = None) -> None:
        if (
            FAULT == "no-idle"
            and status == "idle"
            and _is_fault(parent or self.get_parent(channel))
        ):
            return
        super()._publish_status(status, channel, parent)

    def _publish_execute_input(self, code: str, parent: Any, execution_count: int) -> None:
        if MARK in code and FAULT == "late-execute-input":
            self._late_input = (code, parent, execution_count)
            return
        if MARK in code and FAULT == "skip-count":
            self.execution_count += 1
            execution_count = self.execution_count
        super()._publish_execute_input(code, parent, execution_count)

    async def do_execute(  # type: ignore[override]
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: Any = None,
        allow_stdin: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if not silent:
            self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": code + "\n"})
        if self._late_input is not None:
            late, self._late_input = self._late_input, None
            super()._publish_execute_input(*late)
        if FAULT == "unknown-comm" and MARK in code:
            self.send_response(
                self.iopub_socket, "comm_msg", {"comm_id": "no-such-comm", "data": {}}
            )
        return {
            "status": "ok",
            "execution_count": self.execution_count,
            "payload": [],
            "user_expressions": {},
        }

    async def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:  # type: ignore[override]
        reply = {
            "status": "ok",
            "matches": [code + "!"],
            "cursor_start": 0,
            "cursor_end": cursor_pos,
            "metadata": {},
        }
        if FAULT == "missing-field" and MARK in code:
            del reply["matches"]
        return reply


def write_kernelspecs(directory: Path) -> Path:
    """One kernelspec per fault (``faulty-FAULT``) under ``directory``/kernels; put
    ``directory`` on JUPYTER_PATH to use them. Returns ``directory``."""
    for fault in FAULTS:
        spec_dir = directory / "kernels" / f"faulty-{fault}"
        spec_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [sys.executable, os.path.abspath(__file__), "-f", "{connection_file}"],
            "display_name": f"Faulty kernel ({fault})",
            "language": "faulty",
            "env": {"KREC_FAULT": fault},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return directory


if __name__ == "__main__":
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=FaultyKernel)
