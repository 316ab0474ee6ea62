"""Spans to OpenTelemetry: the OTLP settings, the SDK objects, and ``krec export --to otlp``.

The spans come from krec.recorder.export.spans (SpanBuilder). Live tracing of a
recording (``--otlp URL``) runs in krec.recorder.capture.traces and hands its spans to
the SpanEmitter here; ``export --to otlp`` feeds the same builder from a LogReader,
through the same SDK objects, and writes the OTLP JSON encoding of one
ExportTraceServiceRequest.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from krec.recorder.errors import KrecError
from krec.recorder.export.spans import KrecSpan, SpanBuilder

if TYPE_CHECKING:
    pass

INSTALL_HINT = "pip install 'krec[otel]'"
TRACES_PATH = "/v1/traces"


class OtelMissingError(KrecError):
    """--otlp or --to otlp, without the OpenTelemetry packages (the ``otel`` extra)."""


def require_sdk() -> None:
    """Raise OtelMissingError, naming the extra to install, if the SDK is missing."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as e:
        raise OtelMissingError(
            f"OpenTelemetry export needs the otel extra ({e.name} is missing): {INSTALL_HINT}"
        ) from None


def traces_endpoint(url: str) -> str:
    """The OTLP/HTTP traces URL of ``url``: a collector's base URL gets ``/v1/traces``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise KrecError(f"--otlp {url!r}: give an http(s) URL, e.g. http://localhost:4318")
    if parts.path in ("", "/"):
        return url.rstrip("/") + TRACES_PATH
    return url


@dataclass(frozen=True)
class OtlpSettings:
    """Where spans go, and whether they carry message contents.

    ``include_content`` is the one switch for contents in spans: audit mode sets it
    False (and a log whose header says ``audit: true`` never yields content anyway).
    """

    url: str
    include_content: bool = False

    @classmethod
    def from_options(cls, url: str | None, include_content: bool = False) -> OtlpSettings | None:
        """Checked settings from command-line values (None: no export)."""
        if not url:
            if include_content:
                raise KrecError("--otlp-content needs --otlp URL")
            return None
        require_sdk()
        return cls(traces_endpoint(url), include_content)

    def wrapper_args(self) -> list[str]:
        """The same settings as arguments of ``krec wrap`` (kernelspecs, managers)."""
        return ["--otlp", self.url, *(["--otlp-content"] if self.include_content else [])]


# -- SDK objects, shared by live and export ------------------------------------------------


def _resource(header: dict[str, Any]) -> Any:
    from opentelemetry.sdk.resources import Resource

    from krec.recorder import __version__

    attrs: dict[str, Any] = {"service.name": "krec", "service.version": __version__}
    if isinstance(header.get("host"), str):
        attrs["host.name"] = header["host"]
    return Resource.create(attrs)


class _RequestIds:
    """An IdGenerator that hands out the ids export/spans.py derived for the span being started."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id

    def is_trace_id_random(self) -> bool:
        return False


class SpanEmitter:
    """Turns KrecSpans into SDK spans, ended into ``processor`` (one thread uses it)."""

    def __init__(self, header: dict[str, Any], processor: Any) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.id_generator import IdGenerator

        from krec.recorder import __version__

        ids = _RequestIds()
        IdGenerator.register(_RequestIds)
        self._ids = ids
        self.provider = TracerProvider(
            resource=_resource(header), id_generator=ids, shutdown_on_exit=False
        )
        self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("krec", __version__)

    def emit(self, span: KrecSpan) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import (
            NonRecordingSpan,
            SpanContext,
            SpanKind,
            Status,
            StatusCode,
            TraceFlags,
            TraceState,
        )

        self._ids.trace_id = int.from_bytes(span.trace_id, "big")
        self._ids.span_id = int.from_bytes(span.span_id, "big")
        context = None
        if span.parent_span_id is not None:
            state = TraceState.from_header([span.trace_state]) if span.trace_state else None
            parent = SpanContext(
                trace_id=self._ids.trace_id,
                span_id=int.from_bytes(span.parent_span_id, "big"),
                is_remote=True,
                trace_flags=TraceFlags(span.trace_flags),
                trace_state=state,
            )
            context = trace.set_span_in_context(NonRecordingSpan(parent))
        sdk_span = self._tracer.start_span(
            span.name,
            context=context,
            kind=SpanKind.SERVER,
            attributes=span.attributes,
            start_time=span.start_ns,
        )
        for name, t, attrs in span.events:
            sdk_span.add_event(name, attrs, timestamp=t)
        if span.error is not None:
            sdk_span.set_status(Status(StatusCode.ERROR, span.error))
        sdk_span.end(end_time=span.end_ns)


# -- export: OTLP JSON -------------------------------------------------------------------------


def spans_of_log(
    records: Iterable[Any], header: dict[str, Any], *, include_content: bool = False
) -> list[KrecSpan]:
    """Every span of a log's records, in the order they end."""
    builder = SpanBuilder(header, include_content=include_content)
    spans: list[KrecSpan] = []
    for record in records:
        spans.extend(builder.feed(record))
    spans.extend(builder.close("the log ended"))
    return spans


def otlp_json(spans: Sequence[KrecSpan], header: dict[str, Any]) -> dict[str, Any]:
    """The OTLP JSON form of an ExportTraceServiceRequest holding ``spans``."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    emitter = SpanEmitter(header, SimpleSpanProcessor(memory))
    for span in spans:
        emitter.emit(span)
    emitter.provider.shutdown()
    return request_json(encode_spans(memory.get_finished_spans()))


def request_json(request: Any) -> dict[str, Any]:
    """A protobuf ExportTraceServiceRequest as OTLP JSON: the protobuf JSON mapping, with
    trace and span ids in hex and enums as integers (as the OTLP specification says)."""
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(request, use_integers_for_enums=True)
    for resource in data.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
                for link in span.get("links", []):
                    for key in ("traceId", "spanId"):
                        if key in link:
                            link[key] = base64.b64decode(link[key]).hex()
    return data
