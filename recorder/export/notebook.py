"""Rebuild a notebook from a recorded session: one code cell per execute_request.

Outputs are collected the way JupyterLab's output area stores them: consecutive
stream chunks of one name merge (carriage returns and backspaces applied),
``execute_result``, ``display_data`` and ``error`` become outputs,
``update_display_data`` rewrites every output with that display id,
``clear_output`` empties the cell (``wait=True``: when the next output comes),
and an answered ``input()`` adds a ``stdin`` stream with the answer.
The result is a plain nbformat 4.5 dictionary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from krec.recorder.log.record import Record

NBFORMAT, NBFORMAT_MINOR = 4, 5
_PASSWORD_ECHO = "········"
#: at most this many kernel messages wait for a request not logged yet
_EARLY_LIMIT = 10_000


class _Cell:
    __slots__ = ("cell", "outputs", "clear_pending", "streams")

    def __init__(self, index: int, code: str) -> None:
        self.outputs: list[dict[str, Any]] = []
        self.cell: dict[str, Any] = {
            "cell_type": "code",
            "id": f"krec-{index}",
            "metadata": {},
            "execution_count": None,
            "source": code,
            "outputs": self.outputs,
        }
        self.clear_pending = False
        #: stream outputs whose text still needs carriage returns applied
        self.streams: list[dict[str, Any]] = []

    def add(self, output: dict[str, Any]) -> None:
        self._clear_if_pending()
        self.outputs.append(output)

    def stream(self, name: str, text: str) -> None:
        self._clear_if_pending()
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
            return
        output = {"output_type": "stream", "name": name, "text": text}
        self.outputs.append(output)
        self.streams.append(output)

    def clear(self, wait: bool) -> None:
        if wait:
            self.clear_pending = True
        else:
            self.outputs.clear()
            self.clear_pending = False

    def _clear_if_pending(self) -> None:
        if self.clear_pending:
            self.outputs.clear()
            self.clear_pending = False

    def finish(self) -> dict[str, Any]:
        # a prompt nobody answered leaves no stdin output (its placeholder has no text)
        self.outputs[:] = [
            o for o in self.outputs if not (o["output_type"] == "stream" and o["text"] is None)
        ]
        for output in self.streams:
            output["text"] = fix_console(output["text"])
        return self.cell


def fix_console(text: str) -> str:
    """Apply backspaces and carriage returns as a terminal would (a ``\\r`` at the very end
    is kept: the next chunk would overwrite the line)."""
    if "\b" in text:
        prev = None
        while prev != text:
            prev, text = text, re.sub(r"[^\n\x08]\x08", "", text)
    if "\r" not in text:
        return text
    text = re.sub(r"\r+\n", "\n", text)
    trailing = text.endswith("\r")
    lines = []
    for line in text.rstrip("\r").split("\n"):
        parts = re.split(r"\r+", line)
        current = parts[0]
        for part in parts[1:]:
            current = part + current[len(part) :]
        lines.append(current)
    return "\n".join(lines) + ("\r" if trailing else "")


class NotebookBuilder:
    """Feed it records in log order; ``notebook()`` gives the rebuilt notebook."""

    def __init__(self, header: dict[str, Any] | None = None) -> None:
        self.header = header or {}
        self.cells: list[_Cell] = []
        self._by_request: dict[str, _Cell] = {}
        self._displays: dict[str, list[dict[str, Any]]] = {}
        #: the open prompt: whether it asked for a password, and the stdin output that will
        #: hold the answer, placed where the prompt was (the input_reply and the output it
        #: causes travel on different sockets and may be captured in either order)
        self._input: tuple[bool, dict[str, Any]] | None = None
        self.language_info: dict[str, Any] | None = None
        #: kernel messages logged before their request (the request and its outputs are
        #: captured from different sockets, so under load an output can be logged first),
        #: by the msg_id of the request they name; fed to its cell when it comes
        self._early: dict[str, list[Record]] = {}
        self._early_count = 0
        #: requests that have no cell (silent, or left out by a filter)
        self._skipped: set[str] = set()

    def feed(self, record: Record, wanted: bool = True) -> None:
        """Take one record; ``wanted=False`` skips a request's cell (a filter left it out)."""
        if record.is_event:
            return
        mt = record.msg_type
        if mt == "execute_request" and record.source == "client":
            content = record.content
            early = self._early.pop(record.msg_id, [])
            self._early_count -= len(early)
            if content.get("silent") or not wanted:
                self._skipped.add(record.msg_id)
                return
            code = content.get("code")
            cell = _Cell(len(self.cells) + 1, code if isinstance(code, str) else "")
            self.cells.append(cell)
            self._by_request[record.msg_id] = cell
            for output in early:
                self.feed(output)
            return
        if mt == "kernel_info_reply":
            info = record.content.get("language_info")
            if isinstance(info, dict) and info.get("name"):
                self.language_info = info
            return
        if mt == "input_reply":
            self._answer(record.content)
            return
        cell = self._by_request.get(record.parent_id)
        if cell is None:
            self._keep_early(record)
            return
        content = record.content
        if mt == "input_request":
            answer: dict[str, Any] = {"output_type": "stream", "name": "stdin", "text": None}
            cell.add(answer)
            self._input = (bool(content.get("password")), answer)
        elif mt in ("execute_input", "execute_reply"):
            count = content.get("execution_count")
            if isinstance(count, int) and cell.cell["execution_count"] is None:
                cell.cell["execution_count"] = count
        else:
            self._output(cell, mt, content)

    def _keep_early(self, record: Record) -> None:
        parent = record.parent_id
        if not parent or record.source != "kernel" or parent in self._skipped:
            return
        if self._early_count >= _EARLY_LIMIT:  # a log of orphans: forget the oldest
            oldest = next(iter(self._early))
            self._early_count -= len(self._early.pop(oldest))
        self._early.setdefault(parent, []).append(record)
        self._early_count += 1

    def _answer(self, content: dict[str, Any]) -> None:
        if self._input is None:
            return
        password, answer = self._input
        self._input = None
        value = content.get("value")
        text = _PASSWORD_ECHO if password else (value if isinstance(value, str) else "")
        answer["text"] = text + "\n"

    def _output(self, cell: _Cell, mt: str, content: dict[str, Any]) -> None:
        if mt == "stream":
            text = content.get("text")
            cell.stream(str(content.get("name") or "stdout"), text if isinstance(text, str) else "")
        elif mt in ("display_data", "execute_result"):
            output: dict[str, Any] = {
                "output_type": mt,
                "data": _bundle(content.get("data")),
                "metadata": _dict(content.get("metadata")),
            }
            if mt == "execute_result":
                count = content.get("execution_count")
                output["execution_count"] = count if isinstance(count, int) else None
            cell.add(output)
            display_id = _display_id(content)
            if display_id:
                self._displays.setdefault(display_id, []).append(output)
        elif mt == "update_display_data":
            for output in self._displays.get(_display_id(content) or "", ()):
                output["data"] = _bundle(content.get("data"))
                output["metadata"] = _dict(content.get("metadata"))
        elif mt == "error":
            tb = content.get("traceback")
            cell.add(
                {
                    "output_type": "error",
                    "ename": str(content.get("ename", "")),
                    "evalue": str(content.get("evalue", "")),
                    "traceback": [str(line) for line in tb] if isinstance(tb, list) else [],
                }
            )
        elif mt == "clear_output":
            cell.clear(bool(content.get("wait")))

    def notebook(self) -> dict[str, Any]:
        kernel = self.header.get("kernel") if isinstance(self.header.get("kernel"), dict) else {}
        metadata: dict[str, Any] = {}
        if kernel.get("name"):
            metadata["kernelspec"] = {
                "name": str(kernel["name"]),
                "display_name": str(kernel.get("display_name") or kernel["name"]),
                "language": str(kernel.get("language") or ""),
            }
        if self.language_info:
            metadata["language_info"] = self.language_info
        elif kernel.get("language"):
            metadata["language_info"] = {"name": str(kernel["language"])}
        return {
            "nbformat": NBFORMAT,
            "nbformat_minor": NBFORMAT_MINOR,
            "metadata": metadata,
            "cells": [cell.finish() for cell in self.cells],
        }


def _display_id(content: dict[str, Any]) -> str | None:
    transient = content.get("transient")
    did = transient.get("display_id") if isinstance(transient, dict) else None
    return did if isinstance(did, str) and did else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _bundle(data: object) -> dict[str, Any]:
    """A MIME bundle as nbformat wants it: text as strings, JSON types as they are."""
    out: dict[str, Any] = {}
    for mime, value in _dict(data).items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "".join(value)
        if isinstance(value, str) or mime == "application/json" or mime.endswith("+json"):
            out[str(mime)] = value
        else:
            out[str(mime)] = json.dumps(value)
    return out


def build_notebook(
    records: Iterable[Record], header: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The notebook of every non-silent execute_request in ``records``."""
    builder = NotebookBuilder(header)
    for record in records:
        builder.feed(record)
    return builder.notebook()
