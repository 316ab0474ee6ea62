"""serve/install.py and serve/restart.py: the kernelspec that serves a log, and the state
serve keeps for its restart."""

from __future__ import annotations

import os
import stat
import sys
from types import SimpleNamespace

import pytest
from factories import LogBuilder, stream

from krec.recorder.errors import KernelSpecError
from krec.recorder.serve.install import check_spec_name, serve_spec
from krec.recorder.serve.restart import load_serve_state, save_serve_state, serve_state_file


def test_serve_spec_runs_krec_serve_on_the_log(tmp_path) -> None:
    with LogBuilder(tmp_path / "s.krec") as log:
        log.execute("1", [stream("1\n")])
    spec = serve_spec(str(log.path), speed="fast", strictness="loose", log_dir="~/logs")
    assert spec["argv"][:5] == [sys.executable, "-m", "krec.recorder", "serve", str(log.path)]
    assert spec["argv"][5:] == [
        "-f",
        "{connection_file}",
        "--speed",
        "fast",
        "--loose",
        "--log-dir",
        os.path.expanduser("~/logs"),
    ]
    assert spec["display_name"] == "Python 3 (served from s.krec)"
    assert spec["interrupt_mode"] == "message"


def test_a_bad_name_is_refused() -> None:
    check_spec_name("krec-serve-a.b_c")
    with pytest.raises(KernelSpecError):
        check_spec_name("no spaces")


def test_restart_state_round_trip(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    path = serve_state_file(str(tmp_path / "cf.json"))
    server = SimpleNamespace(restart_requested=True, state=lambda: {"used": [1, 2], "cursor": 3})
    save_serve_state(path, "a.krec", "out.krec", server)
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    state = load_serve_state(path, "a.krec")
    assert state is not None and state["used"] == [1, 2] and state["cursor"] == 3
    assert load_serve_state(path, "other.krec") is None  # another log: start afresh
    server.restart_requested = False
    save_serve_state(path, "a.krec", "out.krec", server)
    assert not os.path.exists(path)
