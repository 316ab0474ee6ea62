"""The span model (export/spans.py) on synthetic logs, and the --otlp options of the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_krec
from factories import LogBuilder, error, log_header, stream

from krec.recorder.export.otlp import OtlpSettings, spans_of_log, traces_endpoint
from krec.recorder.export.spans import SpanBuilder, parse_traceparent
from krec.recorder.log.reader import LogReader

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def spans(path: Path, *, content: bool = False):
    with LogReader(path) as reader:
        return spans_of_log(reader, reader.header, include_content=content)


def by_type(found) -> dict:
    return {s.attributes["jupyter.msg_type"]: s for s in found}


def test_one_span_per_request_from_request_to_the_later_of_reply_and_idle(tmp_path: Path):
    with LogBuilder(tmp_path / "a.krec") as log:
        ok = log.execute("print('SECRET')", [stream("SECRET\n")], count=1)
        bad = log.execute("1/0", [error()], status="error", count=2)
        comm = log.message(
            "comm_msg", {"comm_id": "c", "data": {"x": "SECRET"}}, ch="shell", source="client"
        )
        log.message("status", {"execution_state": "busy"}, parent=comm)
        log.message("status", {"execution_state": "idle"}, parent=comm)
        info = log.message("kernel_info_request", {})
        log.message("status", {"execution_state": "busy"}, parent=info)
        log.message("status", {"execution_state": "idle"}, parent=info)  # idle first
        log.message("kernel_info_reply", {"status": "ok"}, parent=info, ms=5)
    with LogReader(tmp_path / "a.krec") as reader:
        times = {r.msg_id: r.t for r in reader if not r.is_event}
        replies = {r.parent_id: r.t for r in reader if r.msg_type == "kernel_info_reply"}
    found = spans(tmp_path / "a.krec")
    assert [s.name for s in found] == ["execute", "execute", "comm_msg", "kernel_info"]
    first, second, comm_span, info_span = found
    assert first.start_ns == times[ok["msg_id"]]
    assert first.attributes["jupyter.status"] == "ok"
    assert first.attributes["jupyter.execution_count"] == 1
    assert first.attributes["jupyter.kernel_name"] == "python3"
    assert first.attributes["jupyter.session"] == ok["session"]
    assert first.error is None
    assert [e[0] for e in first.events] == ["execute_input", "stream"]
    assert first.events[1][2]["jupyter.stream.name"] == "stdout"
    assert first.events[1][2]["jupyter.size"] > 0
    assert second.start_ns == times[bad["msg_id"]]
    assert second.error == "Error" and second.attributes["jupyter.ename"] == "Error"
    assert comm_span.error is None and "krec.unanswered" not in comm_span.attributes
    assert info_span.end_ns == replies[info["msg_id"]]  # the reply came after idle
    # ids derive from the request: the same log gives the same ids every time
    assert [s.span_id for s in spans(tmp_path / "a.krec")] == [s.span_id for s in found]
    assert len({s.trace_id for s in found}) == 4
    text = json.dumps([[s.attributes, s.events] for s in found], default=str)
    assert "SECRET" not in text and "print(" not in text


def test_content_only_when_asked_and_never_for_an_audit_log(tmp_path: Path):
    for name, header in (("plain", log_header()), ("audit", log_header(audit=True))):
        with LogBuilder(tmp_path / f"{name}.krec", header) as log:
            log.execute("print('SECRET')", [stream("SECRET\n"), error("E", "SECRET value")])
    with_content = spans(tmp_path / "plain.krec", content=True)[0]
    assert with_content.attributes["jupyter.code"] == "print('SECRET')"
    assert "SECRET" in with_content.events[0][2]["jupyter.content"]
    audit = spans(tmp_path / "audit.krec", content=True)[0]
    assert "SECRET" not in json.dumps([audit.attributes, audit.events], default=str)
    assert [e[0] for e in audit.events] == ["stream", "error"]


def test_unanswered_requests_end_with_an_error_at_close_and_when_the_kernel_dies(tmp_path: Path):
    with LogBuilder(tmp_path / "a.krec") as log:
        first = log.message("execute_request", {"code": "import time; time.sleep(99)"})
        log.message("status", {"execution_state": "busy"}, parent=first)
        log.event("kernel_died", exit_code=-9, ms=50)
        log.message("execute_request", {"code": "1"})
    died, ended = spans(tmp_path / "a.krec")
    assert died.error == "no reply: the kernel died"
    assert died.attributes["krec.unanswered"] is True
    assert died.end_ns > died.start_ns  # at the death, not at the request
    assert ended.error == "no reply: the log ended"


def test_traceparent_in_request_metadata_joins_that_trace(tmp_path: Path):
    with LogBuilder(tmp_path / "a.krec") as log:
        meta = {"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "vendor=x"}
        req = log.message("execute_request", {"code": "1"}, metadata=meta)
        log.message("execute_reply", {"status": "ok", "execution_count": 1}, parent=req)
        log.message("status", {"execution_state": "idle"}, parent=req)
        bad = log.message("execute_request", {"code": "2"}, metadata={"traceparent": "junk"})
        log.message("execute_reply", {"status": "ok", "execution_count": 2}, parent=bad)
        log.message("status", {"execution_state": "idle"}, parent=bad)
    joined, alone = spans(tmp_path / "a.krec")
    assert joined.trace_id.hex() == TRACE and joined.parent_span_id.hex() == PARENT
    assert joined.trace_state == "vendor=x"
    assert alone.parent_span_id is None and alone.trace_id.hex() != TRACE


@pytest.mark.parametrize(
    "value",
    [
        "junk",
        f"ff-{TRACE}-{PARENT}-01",
        f"00-{'0' * 32}-{PARENT}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE}-{PARENT}-01-extra",
        None,
        42,
    ],
)
def test_invalid_traceparents_are_ignored(value):
    assert parse_traceparent(value) is None


def test_known_identity_is_enduser_id(tmp_path: Path):
    header = log_header(jupyterhub_user="hubuser", kernel_id="k-1")
    with LogBuilder(tmp_path / "a.krec", header) as log:
        log.event("client_identity", user="ada", session_path="nb.ipynb", kernel_id="k-1")
        log.execute("first")
        log.event("client_identity", user="bob", session_path="nb.ipynb", kernel_id="k-1")
        log.execute("same session: still ada's")
    first, second = spans(tmp_path / "a.krec")
    for span in (first, second):
        assert span.attributes["enduser.id"] == "ada"
        assert span.attributes["jupyter.kernel_id"] == "k-1"
        assert span.attributes["jupyter.session_path"] == "nb.ipynb"
    # no connection announced: the JupyterHub user the server runs for, else nobody
    with LogBuilder(tmp_path / "b.krec", log_header(jupyterhub_user="hubuser")) as log:
        log.execute("hub")
    assert spans(tmp_path / "b.krec")[0].attributes["enduser.id"] == "hubuser"
    with LogBuilder(tmp_path / "c.krec") as log:
        log.execute("nobody")
    assert "enduser.id" not in spans(tmp_path / "c.krec")[0].attributes


def test_builder_fed_raw_records_as_live_gives_the_same_spans(tmp_path: Path):
    with LogBuilder(tmp_path / "a.krec") as log:
        log.execute("print(1)", [stream("1\n")], count=1)
        log.execute("2", count=2)
    with LogReader(tmp_path / "a.krec") as reader:
        live = SpanBuilder(reader.header)
        got = [s for r in reader for s in live.feed_raw(dict(r.raw))] + live.close()
        assert got == spans_of_log(reader, reader.header)


def test_otlp_urls_and_option_errors(tmp_path: Path):
    assert traces_endpoint("http://h:4318") == "http://h:4318/v1/traces"
    assert traces_endpoint("http://h:4318/") == "http://h:4318/v1/traces"
    assert traces_endpoint("https://h/custom/path") == "https://h/custom/path"
    settings = OtlpSettings.from_options("http://h:4318", True)
    assert settings.wrapper_args() == ["--otlp", "http://h:4318/v1/traces", "--otlp-content"]
    for args, message in (
        (["record", "--kernel", "python3", "--otlp-content"], "--otlp-content needs --otlp"),
        (["record", "--kernel", "python3", "--otlp", "ftp://x"], "give an http(s) URL"),
        (["export", "x.krec", "--to", "jsonl", "--otlp-content"], "needs --to otlp"),
    ):
        proc = run_krec(*args, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_install_and_provisioner_specs_carry_otlp(tmp_path: Path):
    from krec.recorder.capture.provisioner import provisioner_spec
    from krec.recorder.kernelspec import find_spec

    proc = run_krec(
        "install", "--prefix", str(tmp_path), "--log-dir", str(tmp_path / "logs"),
        "--otlp", "http://collector:4318", "python3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((tmp_path / "share/jupyter/kernels/python3-krec/kernel.json").read_text())
    argv = spec["argv"]
    assert argv[argv.index("--otlp") + 1] == "http://collector:4318/v1/traces"
    assert "--otlp-content" not in argv
    settings = OtlpSettings.from_options("http://collector:4318", True)
    data = provisioner_spec(find_spec("python3"), str(tmp_path), otlp=settings)
    config = data["metadata"]["kernel_provisioner"]["config"]
    assert config["otlp"] == "http://collector:4318/v1/traces" and config["otlp_content"] is True


def test_events_beyond_the_sdk_limit_are_counted_not_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with LogBuilder(tmp_path / "a.krec") as log:
        log.execute("flood", [stream(f"{i}\n") for i in range(200)], count=1)
    (span,) = spans(tmp_path / "a.krec")
    assert len(span.events) == 128 and span.attributes["krec.events_dropped"] == 73
    assert span.error is None and "krec.idle_missing" not in span.attributes
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "500")
    (span,) = spans(tmp_path / "a.krec")
    assert len(span.events) == 201 and "krec.events_dropped" not in span.attributes


def test_recording_block_specs_carry_otlp(tmp_path: Path):
    from krec.recorder import recording
    from krec.recorder.kernelspec import find_spec

    with recording(tmp_path / "logs", otlp="http://collector:4318", otlp_content=True):
        argv = find_spec("python3")["spec"]["argv"]
    assert argv[argv.index("--otlp") + 1] == "http://collector:4318/v1/traces"
    assert "--otlp-content" in argv and argv[-2:] == ["-f", "{connection_file}"]
