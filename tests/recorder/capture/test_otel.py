"""--otlp with real kernels: spans reach a real OTLP/HTTP receiver, match the log and
``krec export --to otlp``, and a collector that is down costs one warning, not the session."""

from __future__ import annotations

import base64
import json
import socket
import sys
from pathlib import Path

import pytest
from conftest import run_krec
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlpreceiver import Receiver, attributes
from sessions import execute, introspect

from krec.recorder import RecordingKernelManager
from krec.recorder.log.reader import LogReader

pytestmark = pytest.mark.timeout(240)

MARK = "krec-otel-marker-7d1f"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
ERROR = 2  # Status.code STATUS_CODE_ERROR


def requests_of(log: Path) -> list[tuple[str, int]]:
    """(msg_id, capture time) of each client request in the log (msg_ids may repeat)."""
    with LogReader(log) as reader:
        assert not reader.warnings, reader.warnings
        return sorted(
            (r.msg_id, r.t)
            for r in reader
            if not r.is_event and r.source == "client" and r.ch in ("shell", "control")
        )


def started(spans: list[dict]) -> list[tuple[str, int]]:
    """(msg_id, start time) of each span."""
    return sorted((attributes(s)["jupyter.msg_id"], int(s["startTimeUnixNano"])) for s in spans)


def send_with_traceparent(kc, code: str) -> str:
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}  # fmt: skip
    msg = kc.session.msg(
        "execute_request", content, metadata={"traceparent": f"00-{TRACE}-{PARENT}-01"}
    )
    kc.shell_channel.send(msg)
    while True:
        reply = kc.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return msg["header"]["msg_id"]


def comparable(span: dict) -> dict:
    events = span.get("events", [])
    return {
        "name": span["name"],
        "traceId": span["traceId"],
        "spanId": span["spanId"],
        "parentSpanId": span.get("parentSpanId", ""),
        "kind": span["kind"],
        "start": int(span["startTimeUnixNano"]),
        "end": int(span["endTimeUnixNano"]),
        "attributes": attributes(span),
        "events": [(e["name"], int(e["timeUnixNano"]), attributes(e)) for e in events],
        "status": span.get("status", {}),
    }


def exported_spans(log: Path, tmp_path: Path, *extra: str) -> list[dict]:
    out = tmp_path / "spans.json"
    proc = run_krec("export", str(log), "--to", "otlp", "-o", str(out), *extra)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    # the file is the OTLP JSON mapping of ExportTraceServiceRequest: it parses as one
    # once the hex ids are turned back into protobuf JSON's base64
    as_proto = json.loads(out.read_text())
    for resource in as_proto["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    ParseDict(as_proto, ExportTraceServiceRequest())
    (resource,) = data["resourceSpans"]
    assert attributes(resource["resource"])["service.name"] == "krec"
    return [s for scope in resource["scopeSpans"] for s in scope["spans"]]


def test_record_kernel_exports_a_span_per_request_live(recorder, tmp_path: Path):
    with Receiver() as rx:
        rec = recorder(extra=["--otlp", rx.url])
        kc = rec.client()
        assert execute(kc, f"print('{MARK}')")["content"]["status"] == "ok"
        assert execute(kc, "1 / 0")["content"]["ename"] == "ZeroDivisionError"
        introspect(kc)
        joined = send_with_traceparent(kc, "x = 1")
        sleeping = kc.execute("import time; time.sleep(120)")  # still running at the stop
        while True:  # the kernel has started it
            msg = kc.get_iopub_msg(timeout=60)
            if msg["msg_type"] == "execute_input":
                break
        assert rec.stop() == 0, rec.stderr
        requests = requests_of(rec.log)
        spans = rx.wait_spans(len(requests))
        assert "/v1/traces" in rx.paths and "cannot export" not in rec.stderr
        assert MARK not in rx.raw().decode("utf-8", "replace"), "content without --otlp-content"
        resources = rx.resources()
    for resource in resources:
        assert attributes(resource["resource"])["service.name"] == "krec"
    # one span per request of the log, starting at the request's recorded time
    assert started(spans) == requests
    by_id = {attributes(s)["jupyter.msg_id"]: s for s in spans}
    for span in spans:
        assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
        attrs = attributes(span)
        assert attrs["jupyter.kernel_name"] == "python3"
        assert attrs["jupyter.session"] and attrs["jupyter.msg_type"].startswith(span["name"])
    names = sorted(s["name"] for s in spans)
    for name in ("complete", "inspect", "is_complete", "history", "kernel_info", "execute"):
        assert name in names, names
    executes = [s for s in spans if s["name"] == "execute"]
    printed = next(s for s in executes if any(e["name"] == "stream" for e in s.get("events", [])))
    attrs = attributes(printed)
    assert attrs["jupyter.status"] == "ok" and attrs["jupyter.execution_count"] >= 1
    (out,) = [e for e in printed["events"] if e["name"] == "stream"]
    assert attributes(out)["jupyter.stream.name"] == "stdout"
    assert attributes(out)["jupyter.size"] > len(MARK)
    assert "jupyter.content" not in attributes(out) and "jupyter.code" not in attrs
    failed = next(s for s in executes if attributes(s).get("jupyter.status") == "error")
    assert attributes(failed)["jupyter.ename"] == "ZeroDivisionError"
    assert failed["status"]["code"] == ERROR
    assert "error" in [e["name"] for e in failed["events"]]
    join = by_id[joined]
    assert join["traceId"] == TRACE and join["parentSpanId"] == PARENT
    assert all(s.get("parentSpanId", "") == "" for s in spans if s is not join)
    unanswered = by_id[sleeping]
    assert unanswered["status"]["code"] == ERROR
    # Ctrl-C: krec stops the kernel it started (a kernel_stopped event), then the recording
    assert unanswered["status"]["message"] == "no reply: the kernel was stopped"
    assert attributes(unanswered)["krec.unanswered"] is True
    # the export of the log is the same spans
    exported = exported_spans(rec.log, tmp_path)
    assert sorted(map(json.dumps, map(comparable, exported))) == sorted(
        map(json.dumps, map(comparable, spans))
    )


def test_recording_kernel_manager_exports_spans_with_content(tmp_path: Path):
    log = tmp_path / "km.krec"
    with Receiver() as rx:
        km = RecordingKernelManager(
            kernel_name="python3", log_path=str(log), otlp=rx.url, otlp_content=True
        )
        km.start_kernel()
        kc = km.client()
        try:
            kc.start_channels()
            kc.wait_for_ready(timeout=60)
            assert execute(kc, f"print('{MARK}')")["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
            km.shutdown_kernel()
        requests = requests_of(log)
        spans = rx.wait_spans(len(requests))
    assert started(spans) == requests
    assert {s["name"] for s in spans} >= {"kernel_info", "execute", "shutdown"}
    printed = next(s for s in spans if attributes(s).get("jupyter.code") == f"print('{MARK}')")
    (out,) = [e for e in printed["events"] if e["name"] == "stream"]
    assert MARK in attributes(out)["jupyter.content"]
    shutdown = next(s for s in spans if s["name"] == "shutdown")
    assert attributes(shutdown)["jupyter.channel"] == "control"
    assert attributes(shutdown)["jupyter.status"] == "ok"
    exported = exported_spans(log, tmp_path, "--otlp-content")
    assert sorted(map(json.dumps, map(comparable, exported))) == sorted(
        map(json.dumps, map(comparable, spans))
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_collector_that_is_down_costs_one_warning_not_the_session(recorder):
    rec = recorder(extra=["--otlp", f"http://127.0.0.1:{closed_port()}"])
    kc = rec.client()
    for i in range(5):
        assert execute(kc, f"print({i})")["content"]["status"] == "ok"
    assert rec.stop() == 0, rec.stderr
    # krec's one warning, with the reason, and none of the exporter's own lines
    (warning,) = [line for line in rec.stderr.splitlines() if "export" in line.lower()]
    assert warning.startswith("krec: cannot export spans to http://127.0.0.1:"), rec.stderr
    assert "Connection refused" in warning and "the session goes on" in warning
    assert "Traceback" not in rec.stderr
    with LogReader(rec.log) as reader:
        assert not reader.warnings, reader.warnings
        records = list(reader)
    replies = [r for r in records if r.msg_type == "execute_reply"]
    assert [r.content["status"] for r in replies] == ["ok"] * 5
    assert records[-2].event == "recording_stopped" and records[-1].event == "seal"


def test_provisioner_exports_spans_with_the_kernel_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from jupyter_client import KernelManager

    from krec.recorder.capture.provisioner import provisioner_spec
    from krec.recorder.export.otlp import OtlpSettings
    from krec.recorder.kernelspec import find_spec

    with Receiver() as rx:
        folder = tmp_path / "jupyter" / "kernels" / "py-krec"
        folder.mkdir(parents=True)
        settings = OtlpSettings.from_options(rx.url)
        spec = provisioner_spec(find_spec("python3"), str(tmp_path / "logs"), otlp=settings)
        (folder / "kernel.json").write_text(json.dumps(spec))
        monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
        km = KernelManager(kernel_name="py-krec")
        km.start_kernel()
        try:
            kc = km.client()
            kc.start_channels()
            kc.wait_for_ready(timeout=60)
            assert execute(kc, "6 * 7")["content"]["status"] == "ok"
            kc.stop_channels()
        finally:
            km.shutdown_kernel(now=False)
        (log,) = (tmp_path / "logs").glob("*.krec")
        spans = rx.wait_spans(len(requests_of(log)))
    assert started(spans) == requests_of(log)
    assert {s["name"] for s in spans} >= {"kernel_info", "execute", "shutdown"}
    for span in spans:
        assert attributes(span)["jupyter.kernel_id"] == km.kernel_id
        assert attributes(span)["jupyter.kernel_name"] == "py-krec"


def test_record_command_exports_the_spans_of_every_kernel_it_starts(tmp_path: Path):
    script = tmp_path / "drive.py"
    script.write_text(
        "from jupyter_client.manager import start_new_kernel\n"
        "km, kc = start_new_kernel(kernel_name='python3', startup_timeout=60)\n"
        "try:\n"
        "    r = kc.execute_interactive('print(1)', timeout=30)\n"
        "    assert r['content']['status'] == 'ok'\n"
        "finally:\n"
        "    kc.stop_channels()\n"
        "    km.shutdown_kernel()\n"
    )
    logs = tmp_path / "logs"
    with Receiver() as rx:
        proc = run_krec(
            "record", "--otlp", rx.url, "-o", str(logs), "--", sys.executable, str(script)
        )
        assert proc.returncode == 0, proc.stderr
        (log,) = logs.glob("*.krec")
        spans = rx.wait_spans(len(requests_of(log)))
    assert started(spans) == requests_of(log)
    assert "execute" in {s["name"] for s in spans}


def test_existing_mode_exports_spans(recorder):
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    try:
        with Receiver() as rx:
            rec = recorder(mode=["--existing", km.connection_file], extra=["--otlp", rx.url])
            kc = rec.client()
            assert execute(kc, "1 + 1")["content"]["status"] == "ok"
            assert rec.stop() == 0, rec.stderr
            requests = requests_of(rec.log)
            spans = rx.wait_spans(len(requests))
        assert started(spans) == requests
        assert {"kernel_info", "execute"} <= {s["name"] for s in spans}
        assert all(s.get("status", {}).get("code", 0) != ERROR for s in spans)
    finally:
        km.shutdown_kernel(now=True)
        km.cleanup_resources()
