"""Live traces of a recording (``--otlp URL``): spans built and sent while the kernel runs.

``LiveTraces.tee(writer)`` wraps the LogWriter a Proxy's capture thread writes to, so
every record the log receives is also put, as it is, on a queue (the capture thread's
whole cost; forwarding never waits for it). A thread of its own feeds them to
krec.recorder.export.spans' SpanBuilder and hands each finished span to the
OpenTelemetry SDK (a TracerProvider with a BatchSpanProcessor and the OTLP/HTTP
protobuf exporter), so encoding and HTTP happen off the recording path too. A
collector that cannot be reached costs one warning (and one more when it works
again); the session goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from krec.recorder.capture.thread import name_thread
from krec.recorder.export.otlp import OtlpSettings, SpanEmitter, require_sdk
from krec.recorder.export.spans import SpanBuilder

if TYPE_CHECKING:
    from krec.recorder.log.writer import LogWriter

EXPORT_TIMEOUT = 5.0  # seconds per export request (the SDK retries within it)
# where the OTLP/HTTP exporter logs each failed or retried batch (krec warns instead)
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.common.http",
)
_QUEUE_LIMIT = 1_000_000  # records waiting for the span thread; beyond, they are dropped


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
