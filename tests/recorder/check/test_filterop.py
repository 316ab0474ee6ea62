"""The ``check:`` filter operator and findings_for, which the viewer shares with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from checklog import Conversation

from krec.recorder.check import findings_by_record, findings_for
from krec.recorder.filter import FilterError, compile_filter, filter_help
from krec.recorder.log.reader import LogReader


@pytest.fixture
def log(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    conv = Conversation(tmp_path / "s.krec")
    conv.start_kernel()
    conv.kernel_info()
    cell = conv.execute("w", [("comm_open", {"comm_id": "c1", "target_name": "t", "data": {}})])
    late = conv.iopub(cell["request"], "stream", {"name": "stdout", "text": "late"})
    ghost = conv.request("comm_msg", {"comm_id": "zz", "data": {}})
    return conv.close(), {"ghost": ghost.index, "late": late.index}


def scan(path: Path, text: str) -> list[int]:
    with LogReader(path) as reader:
        return list(compile_filter(text).scan(reader))


def test_check_selects_records_with_findings(log: tuple[Path, dict[str, int]]) -> None:
    path, at = log
    assert scan(path, "check:*") == sorted(at.values())
    assert scan(path, "check:comm-unknown") == [at["ghost"]]
    assert scan(path, "check:comms") == [at["ghost"]]
    assert scan(path, "check:error") == [at["ghost"]]
    assert scan(path, "check:warning") == [at["late"]]
    assert scan(path, "check:output-* and type:stream") == [at["late"]]
    assert scan(path, "type:comm_msg and not check:*") == []


def test_check_is_documented_and_rejects_unknown_rules() -> None:
    assert "check:RULE" in filter_help()
    with pytest.raises(FilterError, match="no rule matches 'nope'"):
        compile_filter("check:nope")


def test_findings_for_runs_once_per_reader_until_the_log_grows(
    log: tuple[Path, dict[str, int]],
) -> None:
    path, at = log
    with LogReader(path) as reader:
        first = findings_for(reader)
        assert findings_for(reader) is first
        assert sorted(findings_by_record(first)) == sorted(at.values())
        reader.offsets.pop()  # as if the log had one record fewer: a new pass
        assert findings_for(reader) is not first
