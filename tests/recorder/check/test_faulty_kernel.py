"""A real faulty kernel recorded through krec: `krec check` names exactly its one mistake.

Each session is recorded with `krec record --kernel faulty-FAULT` (tests/faulty_kernel.py)
and driven by jupyter_client: a cell, the FAULT cell, a cell, and a completion of
FAULT code. Nothing waits for an idle without a short timeout (a kernel that
forgets idle would hang execute_interactive).
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from checklog import check, summary
from faulty_kernel import MARK, write_kernelspecs

from krec.recorder.log.reader import LogReader
from krec.recorder.log.record import Record

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def faulty_specs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kernelspecs(tmp_path_factory.mktemp("faulty-specs"))


def _wait_idle(kc: Any, msg_id: str, quiet: float) -> None:
    """Read iopub until the request's idle, or until iopub is quiet for ``quiet`` seconds."""
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=quiet)
        except queue.Empty:
            return
        if (
            msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
            and msg["parent_header"].get("msg_id") == msg_id
        ):
            return


def drive(kc: Any) -> None:
    for code in ("first = 1", f"{MARK} = 2", "last = 3"):
        msg_id = kc.execute(code)
        kc.get_shell_msg(timeout=30)  # its reply, whatever its parent says
        _wait_idle(kc, msg_id, 1.0 if MARK in code else 10.0)
    msg_id = kc.complete(MARK, 5)
    kc.get_shell_msg(timeout=30)
    _wait_idle(kc, msg_id, 10.0)


def _fault_request(records: list[Record]) -> Record:
    return next(
        r for r in records if r.msg_type == "execute_request" and MARK in str(r.content.get("code"))
    )


def _after_fault(msg_type: str) -> Callable[[list[Record]], Record]:
    def find(records: list[Record]) -> Record:
        start = _fault_request(records).index
        return next(r for r in records[start:] if r.msg_type == msg_type and not r.is_event)

    return find


def _execute_input(records: list[Record]) -> Record:
    return next(
        r for r in records if r.msg_type == "execute_input" and MARK in r.content.get("code", "")
    )


CASES = [
    ("no-idle", "status-idle", _fault_request),
    ("wrong-parent", "reply-parent", _after_fault("execute_reply")),
    ("late-execute-input", "execute-input-order", _execute_input),
    ("skip-count", "execution-count", _execute_input),
    ("unknown-comm", "comm-unknown", _after_fault("comm_msg")),
    ("missing-field", "content-schema", _after_fault("complete_reply")),
]


def _record(recorder: Callable[..., Any], specs: Path, fault: str) -> Path:
    rec = recorder(kernel=f"faulty-{fault}", env={"JUPYTER_PATH": str(specs)})
    drive(rec.client())
    assert rec.stop() == 0, rec.stderr
    return rec.log


def test_the_faultless_kernel_checks_clean(recorder: Any, faulty_specs: Path) -> None:
    log = _record(recorder, faulty_specs, "none")
    assert summary(check(log)) == []


@pytest.mark.parametrize(("fault", "rule", "where"), CASES, ids=[c[0] for c in CASES])
def test_each_fault_is_reported_once_at_its_message(
    recorder: Any,
    faulty_specs: Path,
    fault: str,
    rule: str,
    where: Callable[[list[Record]], Record],
) -> None:
    log = _record(recorder, faulty_specs, fault)
    with LogReader(log) as reader:
        records = list(reader)
    expected = where(records)
    found = check(log)
    assert summary(found) == [(rule, expected.index)], [f.line() for f in found]
    assert found[0].msg_type == expected.msg_type and found[0].severity == "error"
