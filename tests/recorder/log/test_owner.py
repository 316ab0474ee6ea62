"""owner: the one rule of which request a record belongs to, case by hard case."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from krec.recorder.log.owner import owner


class Req(NamedTuple):
    index: int
    ch: str
    msg_type: str


KERNEL_INFO = Req(3, "shell", "kernel_info_request")  # a client's first request, id "x_1"
SHUTDOWN = Req(40, "control", "shutdown_request")  # the manager's first, the same id "x_1"
EXECUTE = Req(10, "shell", "execute_request")
EXECUTE_AGAIN = Req(20, "shell", "execute_request")  # a msg_id reused by a restarted client
SUBSHELL_CELL = Req(12, "shell", "execute_request")  # on subshell "sub-1", its own msg_id

CASES = [
    # (what, named, record (index, ch, msg_type, parent_type), prompt, waiting, expected)
    ("an output of its only request", [EXECUTE], (11, "iopub", "stream", ""), None, None,
     EXECUTE),
    ("no request named: nobody's", None, (11, "iopub", "stream", ""), None, None, None),
    ("an empty list is none named", [], (11, "iopub", "stream", ""), None, None, None),
    ("output logged before its request (other socket)", [EXECUTE],
     (9, "iopub", "status", "execute_request"), None, None, EXECUTE),
    ("a subshell's output: its own request", [SUBSHELL_CELL],
     (13, "iopub", "stream", "execute_request"), None, None, SUBSHELL_CELL),
    # msg_ids reused by a manager and its clients: the parent's type tells them apart
    ("manager reuses a client's id: reply by parent type", [KERNEL_INFO, SHUTDOWN],
     (5, "shell", "kernel_info_reply", "kernel_info_request"), None, None, KERNEL_INFO),
    ("... and the manager's reply goes to the manager", [KERNEL_INFO, SHUTDOWN],
     (41, "control", "shutdown_reply", "shutdown_request"), None, None, SHUTDOWN),
    ("... a reply without parent type: by channel", [KERNEL_INFO, SHUTDOWN],
     (41, "control", "shutdown_reply", ""), None, None, SHUTDOWN),
    ("... iopub status by parent type", [KERNEL_INFO, SHUTDOWN],
     (42, "iopub", "status", "shutdown_request"), None, None, SHUTDOWN),
    # the same id and type twice (a restart, a reused id): the latest logged before it
    ("reused id: the latest request before the record", [EXECUTE, EXECUTE_AGAIN],
     (21, "iopub", "stream", "execute_request"), None, None, EXECUTE_AGAIN),
    ("reused id: the earlier one for records before the later", [EXECUTE, EXECUTE_AGAIN],
     (15, "iopub", "stream", "execute_request"), None, None, EXECUTE),
    ("reused id: output before both goes to the latest", [EXECUTE, EXECUTE_AGAIN],
     (2, "iopub", "stream", "execute_request"), None, None, EXECUTE_AGAIN),
    ("no candidate of the parent's type: the latest before", [EXECUTE, EXECUTE_AGAIN],
     (25, "iopub", "stream", "inspect_request"), None, None, EXECUTE_AGAIN),
    # stdin: an input_request by its parent; an input_reply by its prompt
    ("input_request: its parent request", [EXECUTE],
     (14, "stdin", "input_request", "execute_request"), None, None, EXECUTE),
    ("input_reply naming its input_request", [EXECUTE],
     (16, "stdin", "input_reply", "input_request"), EXECUTE_AGAIN, None, EXECUTE),
    ("input_reply with an empty parent: the open prompt", None,
     (16, "stdin", "input_reply", ""), EXECUTE, None, EXECUTE),
    ("input_reply with an unknown parent: the open prompt", [],
     (16, "stdin", "input_reply", "input_request"), EXECUTE, None, EXECUTE),
    ("input_reply with no prompt open: nobody's", None, (16, "stdin", "input_reply", ""),
     None, None, None),
    # a reply whose parent names nothing: what the caller says it answers by order
    ("reply with an empty parent: the waiting request", None,
     (11, "shell", "execute_reply", ""), None, EXECUTE, EXECUTE),
    ("a named request beats the waiting one", [EXECUTE_AGAIN],
     (21, "shell", "execute_reply", "execute_request"), None, EXECUTE, EXECUTE_AGAIN),
]  # fmt: skip


@pytest.mark.parametrize(
    ("named", "record", "prompt", "waiting", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_owner(named, record, prompt, waiting, expected) -> None:
    index, ch, msg_type, parent_type = record
    found = owner(
        named,
        index=index,
        ch=ch,
        msg_type=msg_type,
        parent_type=parent_type,
        prompt=prompt,
        waiting=waiting,
    )
    assert found is expected
