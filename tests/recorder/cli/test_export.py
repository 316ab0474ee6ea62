"""`krec export`: JSON lines, the rebuilt notebook (valid for nbformat), redaction, bad input."""

from __future__ import annotations

import json

import nbformat
import pytest
from conftest import run_krec
from factories import LogBuilder, display, error, stream

from krec.recorder.export.jsonl import REDACTED
from krec.recorder.export.notebook import fix_console


def _notebook(path) -> nbformat.NotebookNode:
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    return nb


def test_jsonl_is_what_show_json_prints(rich_log, tmp_path):
    out = tmp_path / "all.jsonl"
    assert run_krec("export", str(rich_log), "--to", "jsonl", "-o", str(out)).returncode == 0
    shown = run_krec("show", str(rich_log), "--json")
    assert out.read_text() == shown.stdout
    piped = run_krec("export", str(rich_log), "--to", "jsonl", "-f", "ch:stdin")
    rows = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [r["header"]["msg_type"] for r in rows] == [
        "input_request", "input_reply", "input_request", "input_reply",
    ]  # fmt: skip


def test_notebook_of_a_recorded_session(rich_log, tmp_path):
    out = tmp_path / "rich.ipynb"
    result = run_krec("export", str(rich_log), "-o", str(out))  # format from the suffix
    assert result.returncode == 0 and result.stderr == ""
    nb = _notebook(out)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.metadata.language_info.name == "python"
    cells = nb.cells
    assert len(cells) == 12
    assert [c.execution_count for c in cells] == list(range(1, 13))
    outputs = {c.source.splitlines()[0]: c.outputs for c in cells}
    assert outputs["x = 21"] == []
    assert [(o.name, o.text) for o in outputs["print('stdout line')"]] == [
        ("stdout", "stdout line\n"), ("stderr", "stderr line\n"),
    ]  # fmt: skip
    assert outputs["x * 2"][0].data["text/plain"] == "42"
    assert outputs["x * 2"][0].execution_count == 3
    html, md = outputs["from IPython.display import display, HTML, Markdown"]
    assert html.data["text/html"] == "<b>bold</b>" and md.data["text/markdown"] == "*md*"
    (updated,) = outputs["h = display('first', display_id=True)"]
    assert updated.data["text/plain"] == "'second'"  # update_display_data applied
    assert [o.text for o in outputs["from IPython.display import clear_output"]] == ["kept\n"]
    (err,) = outputs["1 / 0"]
    assert (err.output_type, err.ename) == ("error", "ZeroDivisionError") and err.traceback
    assert outputs["def broken(:"][0].ename == "SyntaxError"
    assert [(o.name, o.text) for o in outputs["name = input('name? ')"]] == [
        ("stdin", "Ada\n"), ("stdout", "hello Ada\n"),
    ]  # fmt: skip
    assert outputs["import getpass"][0].text == "········\n"  # never the password
    (widget,) = outputs["import ipywidgets as w"]
    assert "application/vnd.jupyter.widget-view+json" in widget.data
    # JupyterLab opens notebooks through jupyter_server's contents manager
    from jupyter_server.services.contents.filemanager import FileContentsManager

    model = FileContentsManager(root_dir=str(tmp_path)).get("rich.ipynb")
    assert model["type"] == "notebook" and model.get("message") is None
    assert len(model["content"]["cells"]) == 12


def test_notebook_output_rules(tmp_path):
    with LogBuilder(tmp_path / "n.krec") as log:
        log.message("kernel_info_reply", {"status": "ok", "language_info": {"name": "python",
                    "version": "3.11"}})  # fmt: skip
        first = log.execute(
            "progress()",
            [stream("10%\r"), stream("20%\r50%"), stream("\r100%\n"), stream("ab\bc\n"),
             stream("oops\n", "stderr"), stream("more\n", "stderr"),
             display({"text/plain": "v1"}, "d1")],
            count=1,
        )  # fmt: skip
        log.execute(
            "update()",
            [display({"text/plain": "other"}),
             ("update_display_data", {"data": {"text/plain": "v2", "image/png": "iVBOR"},
              "metadata": {"isolated": True}, "transient": {"display_id": "d1"}}),
             ("clear_output", {"wait": True}), stream("still here\n"),
             ("clear_output", {"wait": True}),
             ("execute_result", {"data": {"text/plain": "3", "application/json": {"a": [1]}},
              "metadata": {}, "execution_count": 2})],
            count=2,
        )  # fmt: skip
        silent = log.message("execute_request", {"code": "internal()", "silent": True})
        log.message("stream", {"name": "stdout", "text": "hidden\n"}, parent=silent)
        log.execute("fail()", [error("ValueError", "bad")], status="error", count=3)
        log.message("stream", {"name": "stdout", "text": "late\n"}, parent=first)
    out = tmp_path / "n.ipynb"
    result = run_krec("export", str(log.path), "--to", "ipynb", "-o", str(out))
    assert result.returncode == 0, result.stderr
    nb = _notebook(out)
    assert nb.metadata.language_info.version == "3.11"
    assert [c.source for c in nb.cells] == ["progress()", "update()", "fail()"]
    one, two, three = (c.outputs for c in nb.cells)
    assert [o.output_type for o in one] == ["stream", "stream", "display_data", "stream"]
    assert one[0].text == "100%\nac\n" and one[1].text == "oops\nmore\n"
    assert one[2].data == {"text/plain": "v2", "image/png": "iVBOR"}  # updated in place
    assert one[2].metadata == {"isolated": True}
    assert one[3].text == "late\n"  # output after idle still belongs to its request
    assert len(two) == 1 and two[0].output_type == "execute_result"  # cleared on the next
    assert two[0].data["application/json"] == {"a": [1]} and two[0].execution_count == 2
    assert three[0].output_type == "error" and three[0].evalue == "bad"

    picked = tmp_path / "picked.ipynb"
    run_krec("export", str(log.path), "--to", "ipynb", "-f", "fail", "-o", str(picked))
    assert [c.source for c in _notebook(picked).cells] == ["fail()"]


def test_notebook_outputs_logged_before_their_request(tmp_path):
    # a request and its outputs are captured from different sockets: under load the
    # kernel's first messages can be logged before the request itself
    with LogBuilder(tmp_path / "early.krec") as log:
        log.execute("x = 21", count=1)
        header = {"msg_id": "late-request", "msg_type": "execute_request"}
        log.message("status", {"execution_state": "busy"}, parent=header)
        log.message("stream", {"name": "stdout", "text": "early\n"}, parent=header)
        hidden = {"msg_id": "silent-request", "msg_type": "execute_request"}
        log.message("stream", {"name": "stdout", "text": "hidden\n"}, parent=hidden)
        log.message("execute_request", {"code": "internal()", "silent": True},
                    msg_id="silent-request")  # fmt: skip
        log.message("execute_request", {"code": "print('early')"}, msg_id="late-request")
        log.message("stream", {"name": "stdout", "text": "late\n"}, parent=header)
        log.message("execute_reply", {"status": "ok", "execution_count": 2}, parent=header)
    out = tmp_path / "early.ipynb"
    result = run_krec("export", str(log.path), "--to", "ipynb", "-o", str(out))
    assert result.returncode == 0, result.stderr
    first, second = _notebook(out).cells
    assert first.outputs == []
    assert second.source == "print('early')" and second.execution_count == 2
    assert [(o.name, o.text) for o in second.outputs] == [("stdout", "early\nlate\n")]


def test_notebook_answer_sits_where_the_prompt_was(tmp_path):
    # the input_reply (stdin socket) and the output it causes (iopub) are captured on
    # different sockets: the log may hold the output first
    with LogBuilder(tmp_path / "in.krec") as log:
        req = log.message("execute_request", {"code": "name = input('name? ')"})
        log.message("stream", {"name": "stdout", "text": "before\n"}, parent=req)
        prompt = log.message("input_request", {"prompt": "name? ", "password": False}, parent=req)
        log.message("stream", {"name": "stdout", "text": "hello Ada\n"}, parent=req)
        log.message("input_reply", {"value": "Ada"}, parent=prompt)
        log.message("execute_reply", {"status": "ok", "execution_count": 1}, parent=req)
        again = log.message("execute_request", {"code": "input()"})
        log.message("input_request", {"prompt": "", "password": False}, parent=again)
        log.message("execute_reply", {"status": "ok", "execution_count": 2}, parent=again)
    out = tmp_path / "in.ipynb"
    result = run_krec("export", str(log.path), "--to", "ipynb", "-o", str(out))
    assert result.returncode == 0, result.stderr
    answered, unanswered = (c.outputs for c in _notebook(out).cells)
    assert [(o.name, o.text) for o in answered] == [
        ("stdout", "before\n"), ("stdin", "Ada\n"), ("stdout", "hello Ada\n"),
    ]  # fmt: skip
    assert unanswered == []  # a prompt nobody answered leaves no stdin output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain\n", "plain\n"),
        ("a\rb\n", "b\n"),
        ("abc\rX\rYZ\n", "YZc\n"),
        ("line\r\nnext", "line\nnext"),
        ("partial\r", "partial\r"),
        ("12\b3", "13"),
        ("\b\bx", "\b\bx"),
        ("one\ntwo\rTWO\nthree", "one\nTWO\nthree"),
    ],
)
def test_fix_console(text, expected):
    assert fix_console(text) == expected


def test_redaction(rich_log, tmp_path):
    out = tmp_path / "shared.jsonl"
    result = run_krec(
        "export", str(rich_log), "-o", str(out), "--redact", "Ada", "--redact", r"stdout \w+"
    )
    assert result.returncode == 0
    text = out.read_text()
    assert "Ada" not in text and "stdout line" not in text
    assert REDACTED in text
    for line in text.splitlines():
        json.loads(line)
    nb_path = tmp_path / "shared.ipynb"
    run_krec("export", str(rich_log), "-o", str(nb_path), "--redact", "(?i)ada")
    nb_text = nb_path.read_text()
    assert "Ada" not in nb_text and REDACTED in nb_text
    _notebook(nb_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "{log}"], "give the output format: --to jsonl or --to ipynb"),
        (["export", "{log}", "--to", "csv"], "invalid choice"),
        (["export", "{log}", "--to", "jsonl", "--redact", "("], "--redact '(': bad pattern"),
        (["export", "{log}", "--to", "jsonl", "-f", "ch:"], "ch: needs a value"),
        (["export", "{log}", "-o", "{tmp}/no/such/dir/x.ipynb"], "cannot write"),
        (["export", "{tmp}/none.krec", "--to", "jsonl"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_status_2(rich_log, tmp_path, args, message):
    result = run_krec(*[a.format(log=rich_log, tmp=tmp_path) for a in args])
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr
