"""Normalization of one exchange's results (krec.recorder.replay.normalize), on built logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import LogBuilder, display, error, stream

from krec.recorder.log.exchange import Exchange, load_session
from krec.recorder.replay.normalize import FIELDS, Normalizer, learn_ids, results


def _only(path: Path) -> Exchange:
    (ex,) = load_session(str(path)).exchanges
    return ex


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("<object at 0x7f3a2b1c9d80>", "<object at 0x?>"),
        ("id 0b1e5a3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c here", "id <uuid> here"),
        ("msg 0b1e5a3c1d2e4f5a8b9c0d1e2f3a4b5c_4242_7", "msg <uuid>"),
        ('File "/tmp/ipykernel_123/456789.py", line 1', 'File "<cell file>", line 1'),
        ("wrote /tmp/pytest-1/out.txt", "wrote <tmp>"),
        ("wrote /private/var/folders/ab/T/x.png", "wrote <tmp>"),
        ("short 0x12", "short 0x12"),  # too short to be an address
    ],
)
def test_text_masks_what_changes_from_run_to_run(text: str, expected: str):
    assert Normalizer().text(text) == expected


def test_execution_counts_and_cell_references_are_relative_to_the_first():
    norm = Normalizer()
    assert norm.text("Cell In[12], line 1") == "Cell In[12], line 1"  # no count seen yet
    assert norm.count(12) == 1
    assert norm.count(14) == 3
    assert norm.text("Cell In[14], line 1") == "Cell In[3], line 1"
    assert norm.count("n/a") == "n/a"
    norm.new_kernel()
    assert norm.count(1) == 1


def test_labels_come_in_order_of_appearance_and_request_ids_by_name():
    norm = Normalizer()
    assert norm.label("comm", "aaaa1111") == "<comm-1>"
    assert norm.label("comm", "bbbb2222") == "<comm-2>"
    assert norm.label("comm", "aaaa1111") == "<comm-1>"
    assert norm.label("display", "") == ""
    assert norm.text("model aaaa1111 closed") == "model <comm-1> closed"
    norm.request("0b1e5a3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "<request-4>")
    assert norm.data({"msg_id": "0b1e5a3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c"}) == {
        "msg_id": "<request-4>"
    }


def test_ignore_drops_keys_and_masks_patterns():
    norm = Normalizer(ignore=["engine", r"re:took \d+ ms"])
    assert norm.data({"engine": 1, "b": ["took 12 ms", 3]}) == {"b": ["<ignored>", 3]}


def test_results_field_by_field(tmp_path: Path):
    with LogBuilder(tmp_path / "n.krec") as b:
        b.execute(
            "work()",
            [
                stream("at 0x7f3a2b1c9d80\n"),
                stream("careful\n", "stderr"),
                display({"text/plain": "shown", "image/png": "iVBORw0KGgo="}, "d1"),
                error(),
            ],
            status="error",
            count=5,
        )
    norm = Normalizer()
    out = results(_only(tmp_path / "n.krec"), norm)
    assert list(out) == list(FIELDS)
    assert out["outcome"] == ""
    assert out["stdout"] == "at 0x?\n"
    assert out["stderr"] == "careful\n"
    assert out["display"].startswith("display_data <display-1>\n[image/png] <12 base64 chars")
    assert out["display"].endswith("[text/plain]\nshown")
    message = "ZeroDivisionError: division by zero"
    assert out["error"] == f"{message}\n{message}"  # ename: evalue, then the traceback
    assert out["counts"] == "display_data=1, error=1, execute_input=1"
    assert out["reply"].startswith("execute_reply\n") and '"execution_count": 1' in out["reply"]
    assert results(None, norm) == dict.fromkeys(FIELDS, "")


def test_debugpy_and_tornado_noise_leave_stderr(tmp_path: Path):
    noise = (
        "0.00s - Debugger warning: frozen modules\n"
        "WARNING:tornado.general:Got events for closed stream 12\n"
        "real\n"
    )
    with LogBuilder(tmp_path / "n.krec") as b:
        b.execute("x", [stream(noise, "stderr")], count=1)
    assert results(_only(tmp_path / "n.krec"), Normalizer())["stderr"] == "real\n"


def test_a_request_without_reply_or_idle_has_no_reply_as_outcome(tmp_path: Path):
    with LogBuilder(tmp_path / "n.krec") as b:
        b.message("execute_request", {"code": "while True: pass"})
    ex = _only(tmp_path / "n.krec")
    assert results(ex, Normalizer())["outcome"] == "no reply"
    assert results(ex, Normalizer(), outcome="timeout")["outcome"] == "timeout"


def test_learn_ids_labels_comms_and_subshells_before_results(tmp_path: Path):
    with LogBuilder(tmp_path / "n.krec") as b:
        opened = {"comm_id": "c0ffee00", "target_name": "t", "data": {}}
        req = b.message("comm_open", opened, ch="shell", source="client")  # the frontend's
        b.message("status", {"execution_state": "busy"}, parent=req)
        b.message("status", {"execution_state": "idle"}, parent=req)
    norm = Normalizer()
    learn_ids(_only(tmp_path / "n.krec"), norm)
    assert norm.labels == {"c0ffee00": "<comm-1>"}
    with LogBuilder(tmp_path / "s.krec") as b:
        req = b.message("create_subshell_request", {})
        b.message("create_subshell_reply", {"status": "ok", "subshell_id": "sub-1"}, parent=req)
    learn_ids(_only(tmp_path / "s.krec"), norm)
    assert norm.labels["sub-1"] == "<subshell-1>"
    assert '"subshell_id": "<subshell-1>"' in results(_only(tmp_path / "s.krec"), norm)["reply"]
