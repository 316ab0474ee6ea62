"""One pass over a log: its message rows, its session row and its findings, as Arrow batches.

The pass reads each record once, feeds it to krec check's Checker when the findings
are not computed elsewhere, and gathers the message records' fields for rows.py,
which turns them into columns a batch at a time; events count for the session row
as they go by. Batches are handed out per UTC day, so a log of any size is written
in bounded memory.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pyarrow as pa

from krec.recorder.catalog.rows import (
    BATCH_ROWS,
    RECORD_FIELDS,
    MessageRows,
    SessionFacts,
    loose_fields,
)
from krec.recorder.catalog.schema import FINDINGS, SESSIONS, arrow_schema
from krec.recorder.check.base import Finding
from krec.recorder.check.runner import Checker, check_log
from krec.recorder.log.reader import LogReader
from krec.recorder.log.stats import union_length

#: records read between two progress reports
_STEP = 16_384


def log_id(header: dict[str, Any]) -> str:
    """A stable id for a recording: the same header gives the same id wherever the log lies."""
    data = orjson.dumps(header, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(data).hexdigest()[:20]


def day(t_ns: int) -> str:
    """The UTC day of a time in ns, as the ``date`` partition spells it."""
    return time.strftime("%Y-%m-%d", time.gmtime(t_ns // 1_000_000_000))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class LogExtract:
    """Reads one log and yields ``(dataset, date, RecordBatch)`` for the writer."""

    def __init__(
        self,
        reader: LogReader,
        location: str,
        log_bytes: int,
        *,
        progress: Callable[[int, int], None] | None = None,
        checked: Callable[[], tuple[list[Finding], dict[str, str | None]]] | None = None,
    ) -> None:
        """``checked``, when given, returns the findings and protocol versions computed
        elsewhere (a process of their own for a big log); else this pass runs the checker."""
        self.reader = reader
        self.location = location
        self.log_bytes = log_bytes
        self.header = reader.header
        self.id = log_id(reader.header)
        self.audit = bool(reader.header.get("audit"))
        self.facts = SessionFacts()
        self.checked = checked
        self.checker = Checker(reader.header, start_ns=reader.start_ns)
        self.protocol: dict[str, str | None] = {}
        self.progress = progress

    def batches(self) -> Iterator[tuple[str, str, pa.RecordBatch]]:
        """Message batches as the pass goes, then the findings, then the session row."""
        yield from self._messages()
        if self.checked is not None:
            findings, self.protocol = self.checked()
        else:
            findings, self.protocol = self.checker.finish(), self.checker.protocol()
        by_day: dict[str, list[list[Any]]] = {}
        for f in findings:
            t = f.t or self.reader.start_ns
            cols = by_day.setdefault(day(t), [[] for _ in FINDINGS])
            row = (
                self.id,
                f.index,
                t // 1000,
                f.rule,
                f.severity,
                f.ch or None,
                f.source or None,
                f.msg_type or None,
                f.msg_id or None,
                f.text,
                f.spec,
            )
            for col, value in zip(cols, row, strict=True):
                col.append(value)
        schema = arrow_schema("findings")
        for date, cols in sorted(by_day.items()):
            arrays = [pa.array(c, type=f.type) for c, f in zip(cols, schema, strict=True)]
            yield "findings", date, pa.RecordBatch.from_arrays(arrays, schema=schema)
        row = self.session_row(findings)
        yield "sessions", day(self.reader.start_ns or self.facts.first), row

    def _messages(self) -> Iterator[tuple[str, str, pa.RecordBatch]]:
        # the gathered records are a batch's worth of tuples that live until it is built:
        # CPython's collector would scan them again and again for cycles they cannot have
        # (a checker fed in this pass may make cycles: the collector runs then)
        paused = _collector_paused() if self.checked is not None else contextlib.nullcontext()
        with paused:
            yield from self._gather()

    def _gather(self) -> Iterator[tuple[str, str, pa.RecordBatch]]:
        reader = self.reader
        feed = self.checker.feed if self.checked is None else None
        rows = MessageRows(self.id, self.audit, self.facts)
        total = len(reader)
        progress, event, fields = self.progress, self._event, RECORD_FIELDS
        for start in range(0, total, _STEP):
            if progress is not None:
                progress(start, total)
            gather, index = rows.fields.append, rows.index.append
            for i, raw in reader.raw_records(start, start + _STEP):
                if feed is not None:
                    feed(i, raw)
                if "event" in raw:
                    event(i, raw)
                    continue
                try:
                    gather(fields(raw))
                except KeyError:  # a message record without some frame
                    gather(loose_fields(raw))
                index(i)
            if len(rows) >= BATCH_ROWS:
                for date, batch in rows.batches():
                    yield "messages", date, batch
        if progress is not None:
            progress(total, total)
        for date, batch in rows.batches():
            yield "messages", date, batch

    def _event(self, index: int, raw: dict[str, Any]) -> None:
        facts = self.facts
        facts.records += 1
        t = raw.get("t")
        facts.saw(index, t if isinstance(t, int) else 0)
        name = raw.get("event")
        if not isinstance(name, str):
            return
        events = self.facts.events
        events[name] = events.get(name, 0) + 1
        if name == "client_identity" and not self.facts.identity:
            self.facts.identity = {
                k: v for k in ("user", "session_path", "kernel_id") if (v := _str(raw.get(k)))
            }

    def session_row(self, findings: list[Any]) -> pa.RecordBatch:
        header, facts = self.header, self.facts
        kernel = header.get("kernel") if isinstance(header.get("kernel"), dict) else {}
        info = facts.kernel_info
        language_info = (
            info.get("language_info") if isinstance(info.get("language_info"), dict) else {}
        )
        protocol = self.protocol
        identity = facts.identity
        hub = _str(header.get("jupyterhub_user"))
        start = self.reader.start_ns or facts.first
        errors = sum(f.severity == "error" for f in findings)
        events = facts.events
        values = {
            "log_id": self.id,
            "location": self.location,
            "log_bytes": self.log_bytes,
            "format_version": self.reader.version,
            "krec_version": _str(header.get("krec_version")),
            "audit": self.audit,
            "kernel_name": _str(kernel.get("name")),
            "kernel_display_name": _str(kernel.get("display_name")),
            "language": _str(kernel.get("language")) or _str(language_info.get("name")),
            "kernel_implementation": _str(info.get("implementation")),
            "kernel_version": _str(info.get("implementation_version")),
            "language_version": _str(language_info.get("version")),
            "protocol_client": protocol.get("client"),
            "protocol_kernel": protocol.get("kernel"),
            "protocol_kernelspec": protocol.get("kernelspec"),
            "user": identity.get("user") or hub or _str(header.get("user")),
            "jupyterhub_user": hub,
            "session_path": identity.get("session_path"),
            "kernel_id": identity.get("kernel_id"),
            "host": _str(header.get("host")),
            "start": start // 1000,
            "end": (facts.last or start) // 1000,
            "records": facts.records,
            "messages": facts.messages,
            "requests": facts.requests,
            "errors": facts.errors,
            "findings": len(findings),
            "finding_errors": errors,
            "busy_s": union_length(facts.busy) / 1e9,
            "heartbeat_losses": events.get("heartbeat_lost", 0),
            "restarts": events.get("restart", 0),
            "interrupts": events.get("interrupt", 0),
            "kernel_deaths": events.get("kernel_died", 0),
            "log_warnings": list(self.reader.warnings),
            "catalogued": time.time_ns() // 1000,
        }
        assert list(values) == [name for name, _, _ in SESSIONS]
        schema = arrow_schema("sessions")
        arrays = [pa.array([values[f.name]], type=f.type) for f in schema]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_findings(path: str) -> tuple[list[Finding], dict[str, str | None]]:
    """krec check's findings and protocol versions of the log at ``path`` (every rule)."""
    with LogReader(path) as reader:
        checker = check_log(reader)
        return checker.findings, checker.protocol()
