"""Kernel activity to OpenTelemetry: live (``--otlp URL``) and from a log (``export --to otlp``).

Live: ``LiveTraces.tee(writer)`` wraps the LogWriter a Proxy's capture thread writes to,
so every record the log receives is also put, as it is, on a queue (the capture
thread's whole cost; forwarding never waits for it). A thread of its own feeds them
to otel.py's SpanBuilder and hands each finished span to the OpenTelemetry SDK
(a TracerProvider with a BatchSpanProcessor and the OTLP/HTTP protobuf exporter), so
encoding and HTTP happen off the recording path too. A collector that cannot be
reached costs one warning (and one more when it works again); the session goes on.
Export: the same builder over a LogReader, through the same SDK objects, written as
the OTLP JSON encoding of one ExportTraceServiceRequest.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from krec.recorder.capture.otel import KrecSpan, SpanBuilder
from krec.recorder.errors import KrecError

if TYPE_CHECKING:
    from krec.recorder.log.writer import LogWriter

INSTALL_HINT = "pip install 'krec[otel]'"
TRACES_PATH = "/v1/traces"
EXPORT_TIMEOUT = 5.0  # seconds per export request (the SDK retries within it)
# where the OTLP/HTTP exporter logs each failed or retried batch (krec warns instead)
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.common.http",
)
_QUEUE_LIMIT = 1_000_000  # records waiting for the span thread; beyond, they are dropped


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
    """An IdGenerator that hands out the ids otel.py derived for the span being started."""

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


# -- live ------------------------------------------------------------------------------------


class _QuietExporterLog(logging.Filter):
    """Silences the OTLP exporter's own log lines (several per failed batch); keeps the
    first of an outage as the reason krec's one warning gives."""

    def __init__(self) -> None:
        super().__init__()
        self.first = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            if not self.first:
                with contextlib.suppress(Exception):
                    self.first = record.getMessage()[:300]
            return False
        return True


class _WarningExporter:
    """The OTLP/HTTP exporter, turning failed exports into one warning per outage."""

    def __init__(self, url: str, warn: Callable[[str], None]) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self._inner = OTLPSpanExporter(endpoint=url, timeout=EXPORT_TIMEOUT)
        self._url = url
        self._warn = warn
        self._failing = False
        self._log = _QuietExporterLog()
        self.exported = 0
        self.failed = 0
        for name in _EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(self._log)

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            result = self._inner.export(spans)
        except Exception as e:  # an exporter bug must not end the span thread
            self._log.first = self._log.first or repr(e)[:300]
            result = SpanExportResult.FAILURE
        if result == SpanExportResult.SUCCESS:
            self._log.first = ""
            self.exported += len(spans)
            if self._failing:
                self._failing = False
                self._warn(f"exporting spans to {self._url} again")
        else:
            self.failed += len(spans)
            if not self._failing:
                self._failing = True
                why = f" ({self._log.first})" if self._log.first else ""
                self._warn(
                    f"cannot export spans to {self._url}{why}; the session goes on, "
                    "spans are dropped until the collector answers"
                )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()
        for name in _EXPORTER_LOGGERS:
            logging.getLogger(name).removeFilter(self._log)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _TeeWriter:
    """A LogWriter that also puts every record it is given on the span thread's queue.

    ``write_message`` is the capture thread's hot path: one extra C call (the queue's
    put) per record, nothing else; the span thread itself watches its backlog.
    """

    def __init__(self, writer: LogWriter, traces: LiveTraces) -> None:
        self._writer = writer
        self._traces = traces
        write, put = writer.write_message, traces.put_nowait

        def write_message(*fields: Any) -> None:
            write(*fields)
            put(fields)

        self.write_message = write_message

    def write_event(self, event: str, t: int | None = None, **fields: Any) -> None:
        t = time.time_ns() if t is None else t
        self._writer.write_event(event, t, **fields)
        self._traces.put_nowait({"t": t, "event": event, **fields})

    def write_record(self, record: dict[str, Any]) -> None:
        self._writer.write_record(record)
        self._traces.put_nowait(dict(record))

    def close(self) -> None:
        self._writer.close()
        self._traces.put_nowait(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


_MESSAGE_KEYS = ("t", "ch", "from", "ids", "header", "parent", "metadata", "content", "buffers")


class LiveTraces:
    """The span thread of one recording: records in (from ``tee``), spans out over OTLP/HTTP."""

    def __init__(
        self,
        settings: OtlpSettings,
        header: dict[str, Any],
        warn: Callable[[str], None] | None = None,
    ) -> None:
        require_sdk()
        self.settings = settings
        self._header = header
        self._warn = warn or (lambda text: print(f"krec: {text}", file=sys.stderr, flush=True))
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: queue one record: a message's field tuple, an event map, None (the log closed)
        self.put_nowait = self._queue.put
        self._thread = threading.Thread(target=self._run, name="krec-otel", daemon=True)
        self._dropping = False
        self._closed = False
        self.spans = 0
        self.exporter: _WarningExporter | None = None
        self._emitter: SpanEmitter | None = None

    def tee(self, writer: LogWriter) -> Any:
        """``writer``, with every record also handed to this exporter."""
        return _TeeWriter(writer, self)

    def start(self) -> None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.exporter = _WarningExporter(self.settings.url, self._warn)
        delay = float(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", 1000))
        processor = BatchSpanProcessor(self.exporter, schedule_delay_millis=delay)  # type: ignore[arg-type]
        self._emitter = SpanEmitter(self._header, processor)
        self._thread.start()

    def _run(self) -> None:
        from krec.recorder.capture.thread import name_thread

        name_thread("krec-otel")
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)
        builder = SpanBuilder(self._header, include_content=self.settings.include_content)
        emitter = self._emitter
        assert emitter is not None
        get = self._queue.get
        backlog = self._queue.qsize
        try:
            while True:
                item = get()
                if item is None:
                    break
                if backlog() > _QUEUE_LIMIT and self._skip_backlog():
                    break
                if isinstance(item, tuple):
                    spans = builder.feed_raw(dict(zip(_MESSAGE_KEYS, item, strict=False)))
                else:
                    spans = builder.feed_raw(item)
                for span in spans:
                    emitter.emit(span)
                    self.spans += 1
            for span in builder.close("the recording stopped"):
                emitter.emit(span)
                self.spans += 1
        except Exception as e:  # crash visibly; the recording itself goes on
            self._warn(f"span export failed: {e!r}; no more spans are sent")

    def _skip_backlog(self) -> bool:
        """Far behind the recording: drop what is queued (the log has it); True at the end."""
        if not self._dropping:
            self._dropping = True
            self._warn("spans fall too far behind the recording: records skipped for spans")
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True

    def close(self, timeout: float = 15.0) -> None:
        """Let the span thread end what is open, then flush the SDK (bounded waits)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._emitter is not None:
            provider = self._emitter.provider
            done = threading.Thread(target=provider.shutdown, name="krec-otel-flush", daemon=True)
            done.start()
            done.join(timeout)


def live_traces(
    settings: OtlpSettings | None,
    header: dict[str, Any],
    warn: Callable[[str], None] | None = None,
) -> LiveTraces | None:
    """A LiveTraces for ``settings``, or None when there is nothing to export."""
    return LiveTraces(settings, header, warn) if settings is not None else None


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
