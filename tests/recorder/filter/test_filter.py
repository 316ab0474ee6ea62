"""The filter language: parse/print round trips, errors, every operator on a real session,
text matching corner cases, the scan strategies, progress and cancel, docs in sync."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from factories import LogBuilder, stream, synthetic_log
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import krec.recorder.filter as ops
from krec.recorder.filter import (
    All,
    And,
    Filter,
    FilterError,
    Not,
    Operator,
    Or,
    compile_filter,
    documented,
    filter_help,
    parse,
    register,
    tree,
)
from krec.recorder.filter import scan as scan_module
from krec.recorder.log import reader as log_reader
from krec.recorder.log.oneline import short_id
from krec.recorder.log.reader import LogReader
from krec.recorder.log.record import Record

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs" / "filter.md"
_TMP_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

# -- parse and print ------------------------------------------------------------

_text = st.text(min_size=1, max_size=12)
_leaves = st.one_of(
    _text.map(ops.Text),
    st.sampled_from(
        ["execute_request", "comm_*", "*_reply", "x y", '"q"', "a(b)", "(x)", "(a or b", "("]
    ).map(ops.Type),
    st.sampled_from(["shell", "control", "stdin", "iopub"]).map(ops.Channel),
    st.sampled_from(["client", "kernel", "krec"]).map(ops.Source),
    _text.map(ops.Msg),
    _text.map(ops.Parent),
    _text.map(ops.Subshell),
    st.sampled_from(["error", "ok", "aborted", "busy", "idle", "starting"]).map(ops.Status),
    _text.map(ops.Event),
    st.sampled_from([r"\d+", "(a|b)", "x y", '"', r"a\)", r"\\"]).map(ops.Regex),
    st.builds(ops.Time, st.sampled_from(ops.Time.OPS), st.integers(0, 10**15)),
)
_trees = st.recursive(
    _leaves,
    lambda children: st.one_of(
        children.map(Not),
        st.lists(children, min_size=2, max_size=3).map(lambda items: And(*items)),
        st.lists(children, min_size=2, max_size=3).map(lambda items: Or(*items)),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(_trees)
def test_printed_trees_parse_back_to_the_same_tree(node):
    text = str(node)
    assert parse(text) == node, text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('ab :()"\\tn<>=5s*rex-_'), max_size=20) | st.text())
def test_any_text_parses_or_fails_with_a_filter_error(text):
    try:
        node = parse(text)
    except FilterError as e:
        assert 0 <= e.position <= len(text) and e.expression == text
        assert "\n" not in str(e)
        return
    assert parse(str(node)) == node


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("a b", "a and b"),
        ("a AND b OR c", "a and b or c"),
        ("a (b or c)", "a and (b or c)"),
        ("not not a", "not not a"),
        ("not (a b)", "not (a and b)"),
        ("(a or b) or (c or d)", "a or b or c or d"),
        ("TYPE:execute_request", "type:execute_request"),
        ("ch:IOPUB", "ch:iopub"),
        ('type:"comm_*"', "type:comm_*"),
        ("re:(a|b)", "re:(a|b)"),
        ("(re:(a|b))", "re:(a|b)"),
        ('re:"a b"', 're:"a b"'),
        ('"and"', '"and"'),
        ('"type:x"', '"type:x"'),
        ('"say \\"hi\\""', '"say \\"hi\\""'),
        ("t>1.5m", "t>90s"),
        ("t<=250ms", "t<=250ms"),
        ("t>=0.000001ms", "t>=0.000001ms"),
        ("t<2", "t<2s"),
        ("t>0", "t>0s"),
        ("print(x)", "print(x)"),
        # an operator distributes over a group of values
        ("type:(execute_request or complete_request)",
         "type:execute_request or type:complete_request"),
        ("ch:(shell or control)", "ch:shell or ch:control"),
        ("CH:(Shell OR iopub)", "ch:shell or ch:iopub"),
        ("not type:(a or b)", "not (type:a or type:b)"),
        ("type:(a and not (b or c*))", "type:a and not (type:b or type:c*)"),
        ("type:(a b) c", "type:a and type:b and c"),
        ("type:(x)", "type:x"),
        ('type:("a b" or c)', 'type:"a b" or type:c'),
        ('type:"(x)"', 'type:"(x)"'),
        ("type:a(b)", "type:a(b)"),
        ("(type:(a or b))", "type:a or type:b"),
        ("event:(restart or kernel_*)", "event:restart or event:kernel_*"),
    ],
)  # fmt: skip
def test_canonical_spelling(text, canonical):
    assert str(parse(text)) == canonical
    assert parse(canonical) == parse(text)


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("a or", 4, "ends where an expression should follow"),
        ("and a", 0, "'and' needs an expression before it"),
        ("a or or b", 5, "'or' needs an expression before it"),
        ("(a b", 0, "'(' is never closed"),
        ("a b)", 3, "unmatched ')'"),
        ("()", 0, "empty parentheses"),
        ('x "abc', 2, "unterminated quote"),
        ("tpye:stream", 0, "unknown operator tpye:"),
        ("ch:iopbu", 3, "ch: must be one of shell, control, stdin, iopub"),
        ("from:server", 5, "from: must be one of client, kernel, krec"),
        ("status:bad", 7, "status: must be one of"),
        ("type:", 5, "type: needs a value"),
        ("re:(", 3, "re: bad pattern"),
        ("t>5y", 2, "bad duration"),
        ("t<x", 2, "bad duration"),
        ('""', 0, "empty phrase"),
        ("not", 3, "ends where an expression should follow"),
        # parentheses that do not pair up, after an operator or not
        ("(", 0, "'(' is never closed"),
        ("a (", 2, "'(' is never closed"),
        ("type:(", 5, "'(' is never closed"),
        ("type:(a or b", 5, "'(' is never closed"),
        ("type:(a or (b)", 5, "'(' is never closed"),
        ("type:(a or", 10, "ends where an expression should follow"),
        ("type:()", 5, "empty parentheses"),
        (")", 0, "unmatched ')'"),
        ("type:(a))", 8, "unmatched ')'"),
        ("type:(a or b) c)", 15, "unmatched ')'"),
        ("type:)", 5, "type: needs a value"),
        ("ch:(shell or nowhere)", 13, "ch: must be one of"),
        ("type:(a or ch:shell)", 11, "type:( ... ) holds values of type:"),
        ("type:(a t>5s)", 8, "type:( ... ) holds values of type:"),
        ("type:(and a)", 6, "'and' needs an expression before it"),
    ],
)
def test_errors_point_at_the_position(text, position, message):
    with pytest.raises(FilterError) as e:
        compile_filter(text)
    assert e.value.position == position
    assert message in str(e.value)
    assert str(e.value).endswith(f"at position {position + 1}: {text!r}")


# -- every operator on a real recorded session ---------------------------------


def _requests(reader: LogReader, msg_type: str) -> list[Record]:
    return [r for r in reader if r.msg_type == msg_type and r.source == "client"]


def _expected(reader: LogReader, text: str) -> list[int]:
    """What each filter must select, computed from the Record API independently."""
    records = list(reader)
    request = _requests(reader, "execute_request")[6]  # 1 / 0
    plain = {
        "type:execute_request": lambda r: r.msg_type == "execute_request",
        "type:comm_*": lambda r: r.msg_type.startswith("comm_"),
        "type:*_reply": lambda r: r.msg_type.endswith("_reply"),
        "ch:stdin": lambda r: r.ch == "stdin",
        "ch:iopub": lambda r: r.ch == "iopub",
        "from:krec": lambda r: r.source == "krec",
        "from:client": lambda r: r.source == "client",
        f"parent:{short_id(request.msg_id)}": lambda r: r.parent_id == request.msg_id,
        f"parent:{request.msg_id[:12]}": lambda r: r.parent_id.startswith(request.msg_id[:12]),
        f"msg:{request.msg_id}": lambda r: r.msg_id == request.msg_id,
        "status:error": lambda r: (
            r.msg_type == "error"
            or (r.msg_type.endswith("_reply") and r.content.get("status") == "error")
        ),
        "status:ok": lambda r: r.msg_type.endswith("_reply") and r.content.get("status") == "ok",
        "status:busy": lambda r: (
            r.msg_type == "status" and r.content.get("execution_state") == "busy"
        ),
        "event:password_redacted": lambda r: r.event == "password_redacted",
        "event:*": lambda r: r.is_event,
        "event:kernel_*": lambda r: (r.event or "").startswith("kernel_"),
        "t>1s": lambda r: r.t - reader.start_ns > 1_000_000_000,
        "t<=1s": lambda r: r.t - reader.start_ns <= 1_000_000_000,
        "stdout": lambda r: "stdout" in _text(r).lower(),
        '"STDERR LINE"': lambda r: "stderr line" in _text(r).lower(),
        "zerodivisionerror": lambda r: "zerodivisionerror" in _text(r).lower(),
        "Ada": lambda r: "ada" in _text(r).lower(),
        "re:x\\s*[=*]": lambda r: re.search(r"x\s*[=*]", _text(r)) is not None,
        "type:stream not stdout": lambda r: (
            r.msg_type == "stream" and "stdout" not in _text(r).lower()
        ),
        "ch:shell and (type:execute_request or type:kernel_info_request)": lambda r: (
            r.ch == "shell" and r.msg_type in ("execute_request", "kernel_info_request")
        ),
        "not ch:iopub not ch:shell": lambda r: r.ch not in ("iopub", "shell"),
        "type:(execute_request or complete_request)": lambda r: (
            r.msg_type in ("execute_request", "complete_request")
        ),
        "ch:(shell or control)": lambda r: r.ch in ("shell", "control"),
        "not type:(status or stream)": lambda r: r.msg_type not in ("status", "stream"),
        "type:(*_reply and not (execute_reply or kernel_info_reply))": lambda r: (
            r.msg_type.endswith("_reply")
            and r.msg_type not in ("execute_reply", "kernel_info_reply")
        ),
        "": lambda r: True,
    }[text]
    return [r.index for r in records if plain(r)]


def _text(r: Record) -> str:
    c = r.content
    parts = [c.get(k) for k in ("code", "text", "ename", "evalue", "prompt", "value")]
    data = c.get("data")
    if isinstance(data, dict):
        parts.append(data.get("text/plain"))
    return "\n".join(p for p in parts if isinstance(p, str))


FILTERS = [
    "type:execute_request", "type:comm_*", "type:*_reply", "ch:stdin", "ch:iopub",
    "from:krec", "from:client", "status:error", "status:ok", "status:busy",
    "event:password_redacted", "event:*", "event:kernel_*", "t>1s", "t<=1s", "stdout",
    '"STDERR LINE"', "zerodivisionerror", "Ada", "re:x\\s*[=*]", "type:stream not stdout",
    "ch:shell and (type:execute_request or type:kernel_info_request)",
    "not ch:iopub not ch:shell", "type:(execute_request or complete_request)",
    "ch:(shell or control)", "not type:(status or stream)",
    "type:(*_reply and not (execute_reply or kernel_info_reply))", "",
]  # fmt: skip


@pytest.fixture(scope="module")
def rich_reader(rich_log):
    with LogReader(rich_log) as reader:
        yield reader


@pytest.mark.parametrize("text", [*FILTERS, "parent:SHORT", "parent:PREFIX", "msg:FULL"])
def test_every_operator_on_a_recorded_session(rich_reader, text):
    reader = rich_reader
    request = _requests(reader, "execute_request")[6]
    text = {
        "parent:SHORT": f"parent:{short_id(request.msg_id)}",
        "parent:PREFIX": f"parent:{request.msg_id[:12]}",
        "msg:FULL": f"msg:{request.msg_id}",
    }.get(text, text)
    expected = _expected(reader, text)
    assert expected, f"{text!r} selects nothing in the rich session: the test would prove nothing"
    if text:
        assert len(expected) < len(reader), f"{text!r} selects everything"
    flt = compile_filter(text)
    for strategy in ("auto", "sparse", "dense"):
        assert list(flt.scan(reader, _strategy=strategy)) == expected, strategy
    assert [r.index for r in reader if flt.matches(r)] == expected
    window = list(flt.scan(reader, 20, 60))
    assert window == [i for i in expected if 20 <= i < 60]


def test_short_ids_select_exactly_their_message(rich_reader):
    for record in rich_reader:
        if record.msg_id:
            hits = compile_filter(f"msg:{short_id(record.msg_id)}").scan(rich_reader)
            assert record.index in hits
            assert all(rich_reader[i].msg_id == record.msg_id for i in hits), record


def test_subshell_operator(tmp_path):
    with LogBuilder(tmp_path / "sub.krec") as log:
        log.execute("a = 1")  # 0..3, the main shell
        req = log.message("execute_request", {"code": "b = 2"}, subshell_id="5e1f-sub")  # 4
        log.message("status", {"execution_state": "busy"}, parent=req)  # 5
        log.message("execute_reply", {"status": "ok"}, parent=req, subshell_id="5e1f-sub")  # 6
        log.message("execute_request", {"code": "c"}, subshell_id="77aa-other")  # 7
    with LogReader(log.path) as reader:
        assert list(compile_filter("subshell:5e1f").scan(reader)) == [4, 6]
        assert list(compile_filter("subshell:5e1f-sub ch:shell from:kernel").scan(reader)) == [6]
        assert list(compile_filter("subshell:7").scan(reader)) == [7]
        assert reader[6].subshell_id == "5e1f-sub" and reader[0].subshell_id == ""


# -- free text ------------------------------------------------------------------


def test_free_text_is_case_insensitive_and_reads_decoded_text(tmp_path):
    with LogBuilder(tmp_path / "t.krec") as log:
        log.execute("print('Grüße')", [stream("GRÜSSE und Grüße\n")])  # 0..4, the stream is 2
        log.message("stream", {"name": "stdout", "text": "tab\there"})  # 5
        log.message("stream", raw_content=b'{"name": "stdout", "text": "caf\\u00e9 \\u212aelvin"}')
        log.message("display_data", raw_content=b'{"data": {"text/plain": "\\u003cdiv\\u003e"}}')
        log.message("stream", raw_content=b'{"name": "stdout", "text": "\xc4\xb0stanbul"}')  # 8
        log.message("execute_result", {"data": {"text/plain": ["multi", "part"]}})  # 9
        log.message("error", {"ename": "KeyError", "evalue": "'k'", "traceback": []})  # 10
        log.message("comm_msg", {"comm_id": "x", "data": {"text": "not message text"}})  # 11
    with LogReader(log.path) as reader:

        def hits(text: str) -> list[int]:
            flt = compile_filter(text)
            results = {tuple(flt.scan(reader, _strategy=s)) for s in ("sparse", "dense")}
            assert len(results) == 1, text
            return list(results.pop())

        assert hits("grüße") == [0, 2]
        assert hits("GRÜSSE") == [2]
        assert hits('"tab\there"') == [5]
        assert hits("café") == [6]
        assert hits("kelvin") == [6]  # the Kelvin sign lower-cases to k
        assert hits("<div>") == [7]
        assert hits("istanbul") == []  # İ lower-cases to i + a combining dot
        assert hits("i") and 8 in hits("i")
        assert hits("multi") == []  # text/plain is a string on the wire; lists are not read
        assert hits("keyerror") == [10]
        assert hits('"not message"') == []


# -- scanning -------------------------------------------------------------------


@pytest.fixture(scope="module")
def medium_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("medium") / "medium.krec"
    synthetic_log(path, 6000, seed=7)
    return path


@pytest.mark.parametrize(
    "text",
    [
        "type:execute_request", "status:error", "ValueError", "accuracy", "ch:shell from:kernel",
        "type:comm_* or type:display_data", "not type:status", "event:*", "t>300ms",
        "parent:8f2c3d4e or type:error", '"bad value" or re:loss \\d',
    ],
)  # fmt: skip
def test_strategies_agree_across_many_chunks(medium_log, monkeypatch, text):
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 16 << 10)
    with LogReader(medium_log) as reader:
        flt = compile_filter(text)
        results = {s: list(flt.scan(reader, _strategy=s)) for s in ("auto", "sparse", "dense")}
        expected = [r.index for r in reader if flt.matches(r)]
        assert results == {"auto": expected, "sparse": expected, "dense": expected}


@pytest.mark.parametrize(
    "text", ["type:execute_request", "not type:status", "t>300ms", "ValueError", "event:*"]
)
def test_a_helper_process_scans_half_and_agrees(medium_log, monkeypatch, text):
    """Big scans split the log with a helper process (here: any scan, with small chunks)."""
    monkeypatch.setattr(log_reader, "HELPER_BYTES", 0)
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 64 << 10)
    started = []
    real_start = scan_module._Helper.start

    def start(*args):
        helper = real_start(*args)
        started.append(helper)
        return helper

    monkeypatch.setattr(scan_module._Helper, "start", start)
    with LogReader(medium_log) as reader:
        flt = compile_filter(text)
        seen = []
        found = list(flt.scan(reader, progress=lambda done, total: seen.append((done, total))))
        expected = [r.index for r in reader if flt.matches(r)]
    assert started and started[0] is not None, "no helper process was started"
    assert found == expected
    assert seen[-1] == (len(reader), len(reader))


def test_a_cancelled_scan_stops_its_helper(medium_log, monkeypatch):
    monkeypatch.setattr(log_reader, "HELPER_BYTES", 0)
    cancel = threading.Event()
    cancel.set()
    with LogReader(medium_log) as reader:
        assert list(compile_filter("not type:status").scan(reader, cancel=cancel)) == []
    # the process-hygiene fixture fails this test if the helper is still running


def test_scan_of_an_upgraded_log_uses_str_keys(medium_log):
    with LogReader(medium_log) as reader:
        expected = list(compile_filter("status:error").scan(reader))
        calls = []

        def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
            calls.append(1)
            return raw

        reader.upgrade_record = upgrade  # as a reader of an older format version has
        assert list(compile_filter("status:error").scan(reader)) == expected
        assert len(calls) == len(reader)


def test_progress_and_cancel(medium_log, monkeypatch):
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 16 << 10)
    with LogReader(medium_log) as reader:
        seen: list[tuple[int, int]] = []
        flt = compile_filter("type:stream")
        everything = flt.scan(reader, progress=lambda done, total: seen.append((done, total)))
        assert len(seen) > 10 and seen[-1] == (len(reader), len(reader))
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        cancel = threading.Event()

        def stop_early(done: int, total: int) -> None:
            if done > total // 4:
                cancel.set()

        partial = flt.scan(reader, progress=stop_early, cancel=cancel)
        assert 0 < len(partial) < len(everything)
        assert list(partial) == list(everything[: len(partial)])


def test_empty_filter_matches_everything(medium_log):
    with LogReader(medium_log) as reader:
        flt = compile_filter("  ")
        assert flt.matches_all and isinstance(flt.tree, All)
        assert list(flt.scan(reader, 5, 9)) == [5, 6, 7, 8]


def test_time_needs_the_log(medium_log):
    flt = compile_filter("t>1s")
    with LogReader(medium_log) as reader:
        record = reader[3]
        with pytest.raises(RuntimeError, match="prepare"):
            flt.matches(record)
        flt.prepare(reader)
        assert flt.matches(record) == (record.t - reader.start_ns > 1e9)


# -- extension operators --------------------------------------------------------


class EveryNth(Operator):
    name = "nth"
    syntax = "nth:N"
    help = "every Nth record (a test operator)"

    def check(self, value: str) -> str:
        if not value.isdigit() or int(value) == 0:
            raise ValueError("nth: needs a positive number")
        return value

    def prepare(self, reader: LogReader) -> None:
        self.seen_length = len(reader)
        self.prepared = getattr(self, "prepared", 0) + 1

    def compile(self, fields: tree.Fields) -> tree.Predicate:
        n = int(self.value)
        return lambda i, d: i % n == 0


@pytest.fixture
def nth_operator():
    register(EveryNth)
    yield EveryNth
    tree.unregister(EveryNth)


def test_an_extension_operator_gets_the_reader_first(nth_operator, medium_log):
    assert nth_operator in documented()
    flt = compile_filter("nth:100 type:status")
    with LogReader(medium_log) as reader:
        hits = list(flt.scan(reader))
        assert flt.tree.items[0].seen_length == len(reader)
        assert list(flt.scan(reader, 0, 500)) == [i for i in hits if i < 500]
        assert flt.tree.items[0].prepared == 1  # once per reader and length
        assert hits == [r.index for r in reader if r.index % 100 == 0 and r.msg_type == "status"]
    assert "nth:N" in filter_help()
    with pytest.raises(FilterError, match="nth: needs a positive number"):
        parse("nth:x")
    with pytest.raises(ValueError, match="already registered"):

        class Impostor(EveryNth):
            pass

        register(Impostor)


def test_filter_is_printable():
    flt = compile_filter("a  OR b")
    assert str(flt) == "a or b" and flt.text == "a  OR b"
    assert "a or b" in repr(flt)
    assert isinstance(flt, Filter)


# -- help and docs --------------------------------------------------------------


def test_help_lists_every_operator_and_docs_match_it():
    help_text = filter_help()
    docs = DOCS.read_text()
    for cls in documented():
        assert cls.syntax in help_text and cls.help in " ".join(help_text.split())
        assert cls.syntax in docs, f"docs/filter.md lacks {cls.syntax}"
        assert cls.help in " ".join(docs.split()), f"docs/filter.md lacks the help of {cls.syntax}"
    assert help_text in docs, "docs/filter.md must contain filter_help() verbatim"


def test_help_fits_a_terminal():
    assert all(len(line) <= 100 for line in filter_help().splitlines())


def test_filters_survive_json_round_trip_of_their_text():
    # the viewer stores the filter text; a canonical text is stable
    for text in FILTERS:
        canonical = str(parse(text))
        assert str(parse(json.loads(json.dumps(canonical)))) == canonical


@settings(max_examples=30, deadline=None, suppress_health_check=_TMP_OK)
@given(words=st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=3))
def test_text_search_agrees_with_a_plain_search(tmp_path, words):
    path = tmp_path / f"{os.urandom(6).hex()}.krec"
    with LogBuilder(path) as log:
        for w in words:
            log.message("stream", {"name": "stdout", "text": f"<{w}>"})
            log.message("stream", raw_content=json.dumps({"text": w.upper()}).encode())
    with LogReader(path) as reader:
        for w in words:
            flt = compile_filter(str(ops.Text(w)))
            expected = [r.index for r in reader if w.lower() in _text(r).lower()]
            for strategy in ("sparse", "dense"):
                assert list(flt.scan(reader, _strategy=strategy)) == expected


def test_a_record_the_decoder_rejects_does_not_shift_the_others(tmp_path):
    import msgpack
    from factories import log_header

    path = tmp_path / "odd.krec"
    with open(path, "wb") as f:
        f.write(msgpack.packb(log_header()))
        f.write(msgpack.packb({"t": 1, "event": "first"}))
        f.write(b"\x81\x81\x01\x02\x03")  # a map as a map key: unhashable
        f.write(msgpack.packb({"t": 3, "event": "third"}))
    with LogReader(path) as reader:
        for strategy in ("sparse", "dense"):
            assert list(compile_filter("event:*").scan(reader, _strategy=strategy)) == [0, 1, 2]
            hits = compile_filter("event:third or event:unreadable_record").scan(
                reader, _strategy=strategy
            )
            assert list(hits) == [1, 2]
