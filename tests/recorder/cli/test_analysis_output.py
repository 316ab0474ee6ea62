"""`krec show`, `krec stats` and `krec check` print byte for byte what they printed before
they were made faster (issue 21): golden outputs of every sample session, written by
the previous implementation, and the helper-process paths of big logs against the
single-process ones."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import KREC

from krec.recorder.cli import show
from krec.recorder.log import reader as log_reader
from krec.recorder.log import stats
from krec.recorder.log.reader import LogReader
from krec.recorder.log.record import loads_json

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "analysis"
COMMANDS = {
    "show": ["show"],
    "showjson": ["show", "--json"],
    "stats": ["stats"],
    "statsjson": ["stats", "--json"],
    "check": ["check"],
}
CASES = sorted(p.name for p in GOLDEN.glob("*.txt"))


def test_every_sample_has_golden_outputs():
    samples = sorted(p.stem for p in (ROOT / "sample_sessions").glob("*.krec"))
    assert len(CASES) >= 5 * len(samples) - 1  # big_output's 1 MB of JSON is left out
    assert {name.split(".")[0] for name in CASES} == set(samples)


@pytest.mark.parametrize("name", CASES)
def test_output_is_what_it_was(name: str):
    sample, command = name.split(".")[:2]
    args = [*COMMANDS[command], f"sample_sessions/{sample}.krec"]
    done = subprocess.run(
        [*KREC, *args], capture_output=True, cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL
    )
    assert done.returncode in (0, 1), done.stderr  # check exits 1 when it finds errors
    assert done.stdout == (GOLDEN / name).read_bytes(), f"krec {' '.join(args)} changed"


@pytest.fixture
def helper_everywhere(monkeypatch: pytest.MonkeyPatch):
    """Every log is big enough for a helper process (which then takes half of it)."""
    from krec.recorder.check import helper

    monkeypatch.setattr(log_reader, "HELPER_BYTES", 0)
    monkeypatch.delenv("KREC_SCAN_SINGLE", raising=False)
    monkeypatch.setattr(helper, "a_core_is_idle", lambda: True)  # pytest -n 2 keeps both busy


def _single(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KREC_SCAN_SINGLE", "1")


@pytest.mark.parametrize("sample", ["basics", "interrupt", "restart", "widgets", "stdin"])
def test_stats_with_a_helper_equal_stats_without(sample, helper_everywhere, monkeypatch):
    path = ROOT / "sample_sessions" / f"{sample}.krec"
    with LogReader(path) as reader:
        assert stats._worth_a_helper(reader)
        helped = stats.to_json(stats.collect(reader), reader)
        _single(monkeypatch)
        assert not stats._worth_a_helper(reader)
        alone = stats.to_json(stats.collect(reader), reader)
    assert helped == alone
    assert helped["latency"] and helped["busy_s"] > 0  # pairs crossed the halves


def test_stats_with_a_helper_started_before_indexing(helper_everywhere, monkeypatch):
    path = ROOT / "sample_sessions" / "basics.krec"
    with LogReader(path) as reader:
        alone = stats.to_json(stats.collect(reader), reader)
    with LogReader(path, index=False) as reader:
        helper = stats.start_helper(reader)
        assert helper is not None
        while reader.index_more():
            pass
        assert stats.to_json(stats.collect(reader, None, helper), reader) == alone
    with LogReader(path, index=False) as reader:
        helper = stats.start_helper(reader)
        while reader.index_more():
            pass
        monkeypatch.setattr(log_reader, "HELPER_BYTES", 1 << 40)  # not worth it after all
        assert stats.to_json(stats.collect(reader, None, helper), reader) == alone
        assert helper is not None and helper._process.returncode == 0  # let go


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--json"],
        ["-f", "type:execute_request"],
        ["-f", "ch:(iopub or stdin) not type:status", "--json"],
        ["-f", "check:*"],
    ],
)
def test_show_with_a_helper_prints_what_show_without_prints(args, helper_everywhere, monkeypatch):
    from krec.recorder.cli import main

    path = str(ROOT / "sample_sessions" / "stdin.krec")  # check:* finds four warnings

    def printed() -> str:
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        with pytest.raises(SystemExit) as e:
            main(["show", path, *args])
        assert e.value.code == 0
        return out.getvalue()

    monkeypatch.setattr(show, "_FIRST_CHUNK", 5)  # the rest goes to the two processes
    calls: list[int] = []
    start = show._ShowHelper.start

    def counted(*a, **kw):
        calls.append(1)
        return start(*a, **kw)

    monkeypatch.setattr(show._ShowHelper, "start", counted)
    helped = printed()
    assert calls, "no helper process was used"
    _single(monkeypatch)
    alone = printed()
    assert helped == alone and helped


@pytest.mark.parametrize(
    "frame",
    [
        b'{"a": 1, "b": [1.5, "x", null, true], "c": {"d": -0.0}}',
        b'{"big": 123456789012345678901234567890}',  # orjson would make it a float
        b'{"neg": -9223372036854775809}',
        b'{"nan": NaN, "inf": Infinity}',  # json only
        b'{"lone": "\\ud800"}',  # json only
        b'{"dup": 1, "dup": 2}',
        "\ufeff".encode() + b'{"bom": 1}',
        '{"utf16": 1}'.encode("utf-16"),
    ],
)
def test_loads_json_reads_as_json_does(frame: bytes):
    try:
        expected = json.loads(frame)
    except ValueError as e:
        with pytest.raises(type(e)):
            loads_json(frame)
        return
    got = loads_json(frame)
    assert repr(got) == repr(expected)


def _broken_log(path: Path) -> Path:
    """A session with unusable frames, misplaced and odd messages: every `alone` rule's case."""
    from checklog import Conversation

    conv = Conversation(path)
    conv.start_kernel()
    req = conv.kernel_info()
    conv.execute("1/0", [], status="error")
    conv.msg("shell", "client", "execute_request", frames={"content": b"{not json"})
    conv.msg("iopub", "kernel", "stream", {"name": "stdout"}, req, frames={"metadata": b"[1]"})
    conv.msg("shell", "kernel", "stream", {"name": "stdout", "text": "x"}, req)
    conv.msg("shell", "client", "execute_request", frames={"header": b'{"msg_id": 1}'})
    conv.msg("nowhere", "client", "kernel_info_request")
    conv.msg("shell", "kernel", "kernel_info_reply", {"status": "aborted"}, req)
    return conv.close()


@pytest.mark.parametrize("sample", ["basics", "interrupt", "restart", "widgets", "stdin", None])
def test_check_with_a_helper_finds_what_check_without_finds(
    sample, helper_everywhere, monkeypatch, tmp_path
):
    from krec.recorder.check import helper, resolve_rule_ids
    from krec.recorder.check.runner import check_log

    if sample is None:
        path = _broken_log(tmp_path / "broken.krec")
    else:
        path = ROOT / "sample_sessions" / f"{sample}.krec"
    started: list[int] = []
    start = helper.AloneHelper.start

    def counted(*a, **kw):
        started.append(1)
        return start(*a, **kw)

    monkeypatch.setattr(helper.AloneHelper, "start", counted)
    for rules in (None, resolve_rule_ids(["structure", "comms"])):
        with LogReader(path) as reader:
            helped = check_log(reader, rules, helper=True)
            alone = check_log(reader, rules)
        assert started, "no helper process was used"
        assert [f.to_json() for f in helped.findings] == [f.to_json() for f in alone.findings]
        assert helped.protocol() == alone.protocol()
        if sample is None and rules is None:
            assert {f.rule for f in alone.findings} >= {"frames", "header", "channel"}


def test_check_without_a_helper_process_judges_here(helper_everywhere, monkeypatch, tmp_path):
    from krec.recorder.check import helper
    from krec.recorder.check.runner import check_log

    path = _broken_log(tmp_path / "broken.krec")
    result = helper.AloneHelper.result
    monkeypatch.setattr(helper.AloneHelper, "result", lambda self: result(self) and None)  # failed
    with LogReader(path) as reader:
        helped = check_log(reader, helper=True)
        alone = check_log(reader)
    assert [f.to_json() for f in helped.findings] == [f.to_json() for f in alone.findings]


def test_check_given_up_ends_its_helper(helper_everywhere, monkeypatch):
    from krec.recorder.check import helper
    from krec.recorder.check.runner import check_log

    started: list[helper.AloneHelper] = []
    start = helper.AloneHelper.start

    def kept(*a, **kw):
        job = start(*a, **kw)
        started.append(job)
        return job

    def interrupted(index: int, total: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(helper.AloneHelper, "start", kept)
    path = ROOT / "sample_sessions" / "basics.krec"
    with LogReader(path) as reader, pytest.raises(KeyboardInterrupt):
        check_log(reader, progress=interrupted, helper=True)
    assert started and started[0]._process.returncode is not None


def test_a_core_is_idle_reads_the_machine():
    from krec.recorder.check import helper

    assert helper.a_core_is_idle() in (True, False)
