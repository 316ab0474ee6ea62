"""`krec export LOG --to pytest`: a readable regression test that replays the log, passes
against the same kernel and fails with the divergence report when the behaviour changes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_krec
from factories import LogBuilder, stream
from sessions import execute

from krec.recorder.export.pytest import pytest_module

pytestmark = pytest.mark.timeout(240)


def run_pytest(test: Path, cwd: Path, basetemp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         f"--basetemp={basetemp}", str(test)],
        cwd=cwd, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_exported_test_passes_then_fails_with_the_report_when_behaviour_changes(
    recorder, tmp_path: Path
):
    data = tmp_path / "greeting.txt"
    data.write_text("hello from the recording\n")
    rec = recorder()
    kc = rec.client()
    execute(kc, "x = 6 * 7")
    execute(kc, f"print(open({str(data)!r}).read().strip(), x)")
    assert rec.stop() == 0, rec.stderr
    repo = tmp_path / "repo"
    (repo / "recordings").mkdir(parents=True)
    (repo / "tests").mkdir()
    shutil.copy(rec.log, repo / "recordings" / "greeting.krec")
    test = repo / "tests" / "test_greeting.py"
    proc = run_krec(
        "export", str(repo / "recordings" / "greeting.krec"), "--to", "pytest", "-o", str(test)
    )
    assert proc.returncode == 0, proc.stderr
    assert '"../recordings/greeting.krec"' in test.read_text()

    # the pair moves together: the test finds the log relative to itself, not to the cwd
    moved = tmp_path / "elsewhere"
    shutil.move(repo, moved)
    passed = run_pytest(moved / "tests" / "test_greeting.py", tmp_path, tmp_path / "run1")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "1 passed" in passed.stdout

    data.write_text("goodbye, the file changed\n")
    failed = run_pytest(moved / "tests" / "test_greeting.py", tmp_path, tmp_path / "run2")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    out = failed.stdout
    assert "greeting.krec replayed differently" in out
    assert "first divergence: request" in out
    assert "hello from the recording 42" in out and "goodbye, the file changed 42" in out
    assert "Traceback" not in out  # the report, not a stack of krec's frames


def test_the_module_is_readable_python_naming_the_log_relative_to_itself(tmp_path: Path):
    with LogBuilder(tmp_path / "logs" / "python3-20240101-120000-abc123.krec") as log:
        log.execute("print('hi')", [stream("hi\n")], count=1)
    source = pytest_module(str(log.path), str(tmp_path / "tests" / "test_session.py"))
    compile(source, "test_session.py", "exec")
    assert 'LOG = Path(__file__).parent / "../logs/python3-20240101-120000-abc123.krec"' in source
    assert "def test_replay_python3_20240101_120000_abc123(tmp_path: Path) -> None:" in source
    assert "the recorded kernel (python3)" in source
    assert "krec-logs" not in source and str(tmp_path) not in source
    assert max(len(line) for line in source.splitlines()) <= 100


def test_export_picks_pytest_from_a_py_output_name(tmp_path: Path):
    with LogBuilder(tmp_path / "s.krec") as log:
        log.execute("1", count=1)
    proc = run_krec("export", str(log.path), "-o", str(tmp_path / "test_s.py"))
    assert proc.returncode == 0, proc.stderr
    assert 'LOG = Path(__file__).parent / "s.krec"' in (tmp_path / "test_s.py").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "pytest"], "--to pytest needs -o FILE"),
        (["--to", "pytest", "-o", "-"], "--to pytest needs -o FILE"),
        (["--to", "pytest", "-o", "{tmp}/t.py", "-f", "ch:iopub"], "replays the whole log"),
        (["--to", "pytest", "-o", "{tmp}/no/such/dir/t.py"], "cannot write"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path: Path, args: list[str], message: str):
    with LogBuilder(tmp_path / "s.krec") as log:
        log.execute("1", count=1)
    proc = run_krec("export", str(log.path), *[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and message in proc.stderr, proc.stderr


def test_a_file_that_is_not_a_log_is_refused(tmp_path: Path):
    (tmp_path / "notes.krec").write_text("not a log")
    proc = run_krec("export", str(tmp_path / "notes.krec"), "-o", str(tmp_path / "test_n.py"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "test_n.py").exists()
