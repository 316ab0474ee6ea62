"""The committed sample recordings: readable, spec-clean, replayable, and still what
sample_sessions/make_samples.py records today (one sample is recorded again to prove it)."""

from __future__ import annotations

import importlib.util
import re
import sys
from itertools import groupby
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ROOT

from krec.recorder.check import ERROR, run_checks
from krec.recorder.log.exchange import load_session
from krec.recorder.log.reader import LogReader
from krec.recorder.replay.diff import compare
from krec.recorder.replay.replayer import replay

SAMPLES = ROOT / "sample_sessions"
README = SAMPLES / "README.md"


def _load_make_samples() -> ModuleType:
    name = "krec_make_samples"  # registered, so its dataclasses can resolve their module
    spec = importlib.util.spec_from_file_location(name, SAMPLES / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


make_samples = _load_make_samples()
NAMES = list(make_samples.SAMPLES)
DETERMINISTIC = [name for name in NAMES if name != "nondeterministic"]


def _readme_section(name: str) -> str:
    text = README.read_text()
    match = re.search(rf"^## {re.escape(name)}\.krec\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"sample_sessions/README.md has no '## {name}.krec' section"
    return match.group(1)


def test_every_sample_is_committed_and_documented():
    committed = sorted(p.stem for p in SAMPLES.glob("*.krec"))
    assert committed == sorted(NAMES)
    for name in NAMES:
        section = _readme_section(name)
        assert f"krec view sample_sessions/{name}.krec" in section
        assert f"krec replay sample_sessions/{name}.krec" in section


@pytest.mark.parametrize("name", NAMES)
def test_sample_opens_without_warnings(name: str):
    path = SAMPLES / f"{name}.krec"
    assert path.stat().st_size < 1024 * 1024
    with LogReader(path) as reader:
        assert reader.warnings == []
        assert reader.header["format"] == "krec" and reader.header["kernel"]["name"] == "python3"
        records = list(reader)
    assert records[0].event == "kernel_started"
    assert records[-1].event == "recording_stopped"
    assert not any(r.event in ("records_dropped", "bad_message") for r in records)


@pytest.mark.parametrize("name", NAMES)
def test_sample_has_no_spec_violations_but_known_deviations(name: str):
    with LogReader(SAMPLES / f"{name}.krec") as reader:
        findings = run_checks(reader)
    errors = [f"#{f.index} {f.rule}: {f.text}" for f in findings if f.severity == ERROR]
    assert errors == []
    # a warning is fine only when krec check names it as a known, harmless deviation
    unexplained = [f.text for f in findings if "see docs/check.md" not in f.text]
    assert unexplained == []


def test_stdin_sample_keeps_the_password_redacted():
    data = (SAMPLES / "stdin.krec").read_bytes()
    assert make_samples.PASSWORD.encode() not in data
    with LogReader(SAMPLES / "stdin.krec") as reader:
        redacted = [r for r in reader if r.event == "password_redacted"]
    assert [r.raw["length"] for r in redacted] == [len(make_samples.PASSWORD)]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_sample_replays_without_divergence(name: str, tmp_path: Path):
    path = SAMPLES / f"{name}.krec"
    password = make_samples.PASSWORD if name == "stdin" else None
    result = replay(str(path), output=str(tmp_path / "replay.krec"), password=password)
    assert not result.report.diverged, result.report.render()
    assert len(result.report.rows) == len(load_session(str(path)).exchanges)


@pytest.mark.timeout(240)
def test_nondeterministic_diverges_where_the_readme_says(tmp_path: Path):
    section = _readme_section("nondeterministic")
    named = re.search(r"first divergence: request (\d+) \((\w+)\), (\w+) differs", section)
    assert named, "the README's nondeterministic section shows no first divergence"
    path = SAMPLES / "nondeterministic.krec"
    result = replay(str(path), output=str(tmp_path / "replay.krec"))
    first = result.report.first
    assert first is not None
    assert (str(first.request), first.msg_type, first.field) == named.groups()
    diverged = sorted({d.request for d in result.report.divergences})
    assert f"{len(diverged)} of {len(result.report.rows)} requests diverged" in section


def _message_types(path: Path) -> dict[tuple[str, str], list[str]]:
    """The msg_types of each channel and direction in wire order (the order across channels
    depends on timing), a run of stream messages counting as one (so does chunking)."""
    kinds: dict[tuple[str, str], list[str]] = {}
    with LogReader(path) as reader:
        for r in reader:
            if not r.is_event:
                kinds.setdefault((r.ch, r.source), []).append(r.msg_type)
    return {key: [t for t, _ in groupby(types)] for key, types in kinds.items()}


@pytest.mark.timeout(180)
def test_make_samples_records_the_committed_basics_again(tmp_path: Path):
    fresh = make_samples.record_sample("basics", tmp_path)
    committed = SAMPLES / "basics.krec"
    assert _message_types(fresh) == _message_types(committed)
    report = compare(str(committed), str(fresh))
    assert not report.diverged, report.render()
    assert len(report.rows) == len(load_session(str(committed)).exchanges)
