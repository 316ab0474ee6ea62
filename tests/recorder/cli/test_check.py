"""`krec check` on the command line: exit status, text and JSON, rule choice, errors; docs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from checklog import ERROR, Conversation, check
from conftest import run_krec

from krec.recorder import cli
from krec.recorder.check import all_rules
from krec.recorder.check.docs import render

ROOT = Path(__file__).resolve().parents[3]


def krec(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def _log(tmp_path: Path, name: str, *, error: bool = False, warning: bool = False) -> Path:
    conv = Conversation(tmp_path / name)
    conv.start_kernel()
    conv.kernel_info()
    cell = conv.execute("1/0", [("error", ERROR)] if not error else [], status="error")
    if warning:
        conv.iopub(cell["request"], "stream", {"name": "stdout", "text": "late\n"})
    return conv.close()


def test_exit_status_follows_severity(tmp_path: Path, capsys: Any) -> None:
    clean = _log(tmp_path, "clean.krec")
    code, out, _ = krec(capsys, "check", str(clean))
    assert code == 0
    # 13 records and the final seal
    assert out.splitlines() == [f"no findings in 14 records ({len(all_rules())} rules; "
                                "protocol: client 5.3, kernel 5.3)"]  # fmt: skip

    warned = _log(tmp_path, "warned.krec", warning=True)
    code, out, _ = krec(capsys, "check", str(warned))
    assert code == 0 and "warning output-after-idle" in out and "0 errors, 1 warning" in out
    assert krec(capsys, "check", "--strict", str(warned))[0] == 1

    broken = _log(tmp_path, "broken.krec", error=True)
    code, out, _ = krec(capsys, "check", str(broken))
    lines = out.splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[0].startswith("#10 ") and "error error-output:" in lines[0]
    assert "#execution-errors>" in lines[0]
    assert lines[1].startswith("1 error, 0 warnings in 13 records")


def test_rule_choice(tmp_path: Path, capsys: Any) -> None:
    broken = _log(tmp_path, "broken.krec", error=True, warning=True)
    assert krec(capsys, "check", str(broken), "--ignore", "errors")[0] == 0
    code, out, _ = krec(capsys, "check", str(broken), "--rule", "error-output,status-*")
    assert code == 1 and "output-after-idle" not in out and "(3 rules" in out
    code, _, err = krec(capsys, "check", str(broken), "--rule", "nope")
    assert (
        code == 2 and err == "krec: error: no rule matches 'nope' (krec check --list shows them)\n"
    )


def test_json_document(tmp_path: Path, capsys: Any) -> None:
    broken = _log(tmp_path, "broken.krec", error=True, warning=True)
    code, out, _ = krec(capsys, "check", "--json", str(broken))
    doc = json.loads(out)
    assert code == 1
    assert doc["log"] == str(broken) and doc["records"] == 14
    assert (doc["errors"], doc["warnings"]) == (1, 1)
    assert doc["protocol"] == {"client": "5.3", "kernel": "5.3", "kernelspec": None}
    assert doc["log_warnings"] == []
    assert doc["findings"] == [f.to_json() for f in check(broken)]


def test_list(capsys: Any) -> None:
    code, out, _ = krec(capsys, "check", "--list")
    assert code == 0
    for rule in all_rules():
        assert f"  {rule.id} " in out and rule.summary in out
    code, out, _ = krec(capsys, "check", "--list", "--json")
    assert [r["id"] for r in json.loads(out)] == [r.id for r in all_rules()]


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: Any) -> None:
    code, _, err = krec(capsys, "check", str(tmp_path / "missing.krec"))
    assert code == 2 and err.startswith("krec: error: ") and err.count("\n") == 1
    code, _, err = krec(capsys, "check")
    assert code == 2 and "give a LOG" in err
    code, _, err = krec(capsys, "check", "x.krec", "--kernel-info-timeout", "-1")
    assert code == 2 and "must be 0 or more seconds" in err
    not_a_log = tmp_path / "notes.txt"
    not_a_log.write_text("hello")
    code, _, err = krec(capsys, "check", str(not_a_log))
    assert code == 2 and "not a krec log" in err


def test_a_truncated_log_is_checked_up_to_the_damage(tmp_path: Path, capsys: Any) -> None:
    log = _log(tmp_path, "clean.krec")
    with open(log, "ab") as f:
        f.write(b"\x89\xa1t")  # the start of a record, cut short
    code, out, err = krec(capsys, "check", str(log))
    assert code == 0 and "no findings in 14 records" in out
    assert "warning" in err and "truncated last record" in err


def test_as_a_user_runs_it(tmp_path: Path) -> None:
    broken = _log(tmp_path, "broken.krec", error=True)
    done = run_krec("check", str(broken))
    assert done.returncode == 1 and "error-output" in done.stdout and done.stderr == ""
    help_text = run_krec("check", "--help").stdout
    assert "exit status" in help_text and "krec check --list" in help_text


def test_docs_are_current() -> None:
    assert (ROOT / "docs" / "check.md").read_text() == render(), (
        "docs/check.md is stale: python -m krec.recorder.check.docs docs/check.md"
    )
