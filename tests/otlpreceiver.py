"""A real OTLP/HTTP trace receiver for tests: POST /v1/traces on 127.0.0.1, protobuf decoded.

Each request body is parsed with the OpenTelemetry protobuf definitions
(ExportTraceServiceRequest) and kept, with its raw bytes, so a test can check both
the decoded spans and that some text never reached the collector. Spans are
returned as plain dicts in the OTLP JSON shape (ids in hex), written here
independently of krec's own encoder.
"""

from __future__ import annotations

import base64
import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class Receiver:
    """An OTLP/HTTP collector stand-in; ``url`` is its base URL (krec adds ``/v1/traces``)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)  # a malformed body fails the handler loudly
                with receiver._lock:
                    receiver.bodies.append(body)
                    receiver.requests.append(request)
                    receiver.paths.append(self.path)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def resources(self) -> list[dict[str, Any]]:
        """Every resourceSpans entry received, decoded."""
        with self._lock:
            requests = list(self.requests)
        out = []
        for request in requests:
            data = MessageToDict(request, use_integers_for_enums=True)
            out.extend(data.get("resourceSpans", []))
        return out

    def spans(self) -> list[dict[str, Any]]:
        """Every span received, as an OTLP JSON dict (hex ids)."""
        return [
            hex_ids(span)
            for resource in self.resources()
            for scope in resource.get("scopeSpans", [])
            for span in scope.get("spans", [])
        ]

    def wait_spans(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """At least ``count`` spans, polling until ``timeout``; fails with what came."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if len(spans) >= count:
                return spans
            if time.monotonic() > deadline:
                names = [s["name"] for s in spans]
                raise AssertionError(f"{len(spans)} spans after {timeout:.0f} s: {names}")
            time.sleep(0.05)

    def raw(self) -> bytes:
        with self._lock:
            return b"".join(self.bodies)


def hex_ids(span: dict[str, Any]) -> dict[str, Any]:
    span = dict(span)
    for key in ("traceId", "spanId", "parentSpanId"):
        if key in span:
            span[key] = base64.b64decode(span[key]).hex()
    return span


def attributes(item: dict[str, Any]) -> dict[str, Any]:
    """An OTLP JSON span's or event's attributes as a plain map."""
    out: dict[str, Any] = {}
    for attr in item.get("attributes", []):
        value = attr["value"]
        ((kind, v),) = value.items()
        if kind == "intValue":
            v = int(v)
        elif kind == "arrayValue":
            v = [next(iter(x.values())) for x in v.get("values", [])]
        out[attr["key"]] = v
    return out
