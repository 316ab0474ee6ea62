"""The pytest plugin (`pytest --krec DIR`), run with pytester on small suites whose tests start
real kernels through jupyter_client."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from factories import log_header

from krec.recorder.capture.kernel import LOG_NAME_ENV, new_log
from krec.recorder.capture.pytest_plugin import log_stem
from krec.recorder.log.reader import LogReader

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(240)

SUITE = """
import pytest
from jupyter_client.manager import start_new_kernel


def kernel():
    km, kc = start_new_kernel(kernel_name="python3")
    yield kc
    kc.stop_channels()
    km.shutdown_kernel()


kc = pytest.fixture(kernel)
shared = pytest.fixture(kernel, scope="module")


def run(kc, code):
    return kc.execute_interactive(code, timeout=60)["content"]["status"]


def test_passes(kc):
    assert run(kc, "print(6 * 7)") == "ok"


def test_fails(kc):
    assert run(kc, "1 / 0") == "ok"


def test_without_a_kernel():
    pass


def test_shared_starts(shared):
    assert run(shared, "x = 1") == "ok"


def test_shared_fails(shared):
    assert run(shared, "x + 'one'") == "ok"
"""


def read(log: Path) -> list:
    with LogReader(log) as reader:
        assert not reader.warnings, reader.warnings
        return list(reader)


def codes(log: Path) -> list[str]:
    return [r.content["code"] for r in read(log) if r.msg_type == "execute_request"]


def test_failing_tests_show_their_logs_and_passing_tests_logs_are_deleted(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(
        "--krec", "logs", "-p", "no:cacheprovider", "--junitxml=junit.xml"
    )
    result.assert_outcomes(passed=3, failed=2)
    logs = pytester.path / "logs"
    fails = "logs/test_suite.py__test_fails.krec"
    shared = "logs/test_suite.py__test_shared_starts.krec"
    # the shared kernel was started by a passing test but used by a failing one: kept
    assert sorted(p.name for p in logs.iterdir()) == [Path(fails).name, Path(shared).name]
    result.stdout.fnmatch_lines(
        [
            "*_ test_fails _*",
            "*- krec -*",
            f"recorded to {fails}",
            f"  browse:    krec view {fails}",
            f"  reproduce: krec replay {fails}",
            "*_ test_shared_fails _*",
            "*- krec -*",
            f"recorded to {shared}",
            "*= krec recordings of failing tests =*",
            f"test_suite.py::test_fails: {fails}",
            f"test_suite.py::test_shared_fails: {shared}",
            "open one with: krec view LOG    reproduce it with: krec replay LOG",
        ]
    )
    assert codes(pytester.path / fails) == ["1 / 0"]
    records = read(pytester.path / fails)
    assert any(r.msg_type == "error" and r.content["ename"] == "ZeroDivisionError" for r in records)
    assert records[-2].event == "recording_stopped" and records[-1].event == "seal"
    assert codes(pytester.path / shared) == ["x = 1", "x + 'one'"]
    properties = {
        case.get("name"): [p.get("value") for p in case.iter("property")]
        for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    }
    assert properties["test_fails"] == [str(pytester.path / fails)]
    assert properties["test_passes"] == []


def test_krec_keep_keeps_every_log_named_after_its_test(pytester: pytest.Pytester):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(
        "--krec", "logs", "--krec-keep", "-p", "no:cacheprovider", "-k", "passes or without"
    )
    result.assert_outcomes(passed=2)
    (log,) = (pytester.path / "logs").iterdir()
    assert log.name == "test_suite.py__test_passes.krec"
    assert codes(log) == ["print(6 * 7)"]
    assert "krec recordings" not in result.stdout.str()


def test_off_by_default(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import os

        def test_nothing_is_recorded():
            assert "KREC_LOG_NAME" not in os.environ
            assert "krec-specs" not in os.environ.get("JUPYTER_PATH", "")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["plugins:*krec-*"])  # registered through the entry point
    assert "- krec -" not in result.stdout.str()
    assert not list(pytester.path.rglob("*.krec"))


def test_an_unwritable_log_dir_is_a_usage_error(pytester: pytest.Pytester):
    (pytester.path / "file").write_text("")
    result = pytester.runpytest_subprocess("--krec", "file/logs", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--krec: cannot write logs to *file/logs*"])


def test_log_stems_are_file_names_that_keep_tests_apart():
    assert log_stem("tests/test_a.py::test_b[x-1]") == "tests_test_a.py__test_b_x-1"
    assert log_stem("test_a.py::TestC::test_d") == "test_a.py__TestC__test_d"
    long_a, long_b = (f"t.py::test_{'x' * 300}[{i}]" for i in (1, 2))
    assert len(log_stem(long_a)) <= 120
    assert log_stem(long_a) != log_stem(long_b)


def test_new_logs_are_named_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    header = log_header()
    monkeypatch.setenv(LOG_NAME_ENV, "test_a.py__test_b")
    first = new_log(str(tmp_path), "python3", header)
    second = new_log(str(tmp_path), "python3", header)
    monkeypatch.delenv(LOG_NAME_ENV)
    third = new_log(str(tmp_path), "python3", header)
    for writer in (first, second, third):
        writer.close()
    assert Path(first.path).name == "test_a.py__test_b.krec"
    assert Path(second.path).name == "test_a.py__test_b-2.krec"
    assert Path(third.path).name.startswith("python3-")
