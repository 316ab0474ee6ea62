"""One pass over a log: its message rows, its session row and its findings, as Arrow batches.

The pass decodes each record once and feeds it both to krec check's Checker (the
findings) and to the row builder. Only the fields a column needs are taken from
the JSON frames: headers are parsed, content is peeked at (status, ename,
execution_count) and fully parsed only for execute requests (their code) and
kernel_info_reply. Rows are handed out in batches per UTC day, so a log of any size
is written in bounded memory.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from krec.recorder.catalog.schema import FINDINGS, SESSIONS, arrow_schema
from krec.recorder.check.base import Finding
from krec.recorder.check.runner import Checker, check_log
from krec.recorder.log.reader import LogReader
from krec.recorder.log.stats import union_length
from krec.recorder.wire import peek_field

DAY_NS = 86_400 * 1_000_000_000
BATCH_ROWS = 131_072
_COUNT = re.compile(rb'"execution_count"\s*:\s*(-?\d+)')
_REQUEST_CHANNELS = ("shell", "control")
_CONTENT_WANTED = frozenset(
    {"execute_reply", "error", "execute_input", "execute_result", "status", "kernel_info_reply"}
)


def log_id(header: dict[str, Any]) -> str:
    """A stable id for a recording: the same header gives the same id wherever the log lies."""
    data = orjson.dumps(header, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(data).hexdigest()[:20]


def day(t_ns: int) -> str:
    """The UTC day of a time in ns, as the ``date`` partition spells it."""
    return time.strftime("%Y-%m-%d", time.gmtime(t_ns // 1_000_000_000))


def _json(frame: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass
class SessionFacts:
    """What the session row gathers while the messages go by."""

    records: int = 0
    messages: int = 0
    requests: int = 0
    errors: int = 0
    first: int = 0
    last: int = 0
    events: dict[str, int] = field(default_factory=dict)
    identity: dict[str, str] = field(default_factory=dict)
    kernel_info: dict[str, Any] = field(default_factory=dict)
    busy_since: dict[str, int] = field(default_factory=dict)
    busy: list[tuple[int, int]] = field(default_factory=list)


class _Columns:
    """One day's message rows, turned into columns a batch at a time."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self) -> pa.RecordBatch:
        schema = arrow_schema("messages")
        columns = list(zip(*self.rows, strict=True))
        arrays = []
        for col, f in zip(columns, schema, strict=True):
            try:
                arrays.append(pa.array(col, type=f.type))
            except (pa.ArrowTypeError, pa.ArrowInvalid):  # a malformed header's number
                arrays.append(pa.array(_strings(col), type=f.type))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _strings(col: tuple[Any, ...]) -> list[str | None]:
    """A string column; anything else (a malformed header's number) becomes null."""
    return [v if isinstance(v, str) else None for v in col]


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
        self.checker = Checker(reader.header, start_ns=reader.start_ns)
        self.checked = checked
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
        reader, facts = self.reader, self.facts
        feed = self.checker.feed if self.checked is None else _ignore
        audit, lid = self.audit, self.id
        pending: dict[str, int] = {}  # request msg_id -> t
        days: dict[int, _Columns] = {}
        total = len(reader)
        progress = self.progress
        loads = orjson.loads
        for index, raw in reader.raw_records():
            feed(index, raw)
            facts.records += 1
            if progress is not None and not index & 0x3FFF:
                progress(index, total)
            t = raw.get("t")
            t = t if isinstance(t, int) else 0
            if t:
                if not facts.first:
                    facts.first = t
                facts.last = max(facts.last, t)
            if "event" in raw:
                self._event(raw)
                continue
            facts.messages += 1
            header_frame = raw.get("header", b"")
            parent_frame = raw.get("parent", b"")
            content = raw.get("content", b"")
            if not isinstance(header_frame, bytes):
                header_frame = b""
            if not isinstance(parent_frame, bytes):
                parent_frame = b""
            if not isinstance(content, bytes):
                content = b""
            try:
                header = loads(header_frame) if header_frame else {}
            except orjson.JSONDecodeError:
                header = {}
            if not isinstance(header, dict):
                header = {}
            msg_type = _str(header.get("msg_type"))
            msg_id = _str(header.get("msg_id"))
            if len(parent_frame) > 2:
                try:
                    parent = loads(parent_frame)
                except orjson.JSONDecodeError:
                    parent = {}
                if not isinstance(parent, dict):
                    parent = {}
                parent_id = _str(parent.get("msg_id"))
                parent_type = _str(parent.get("msg_type"))
            else:
                parent_id = parent_type = None
            ch = raw.get("ch")
            source = raw.get("from")
            buffers = raw.get("buffers") or ()
            size = len(header_frame) + len(parent_frame) + len(content)
            size += len(raw.get("metadata") or b"")
            for b in buffers:
                size += len(b) if isinstance(b, bytes) else 0
            count = status = state = ename = evalue = code = None
            latency = None
            mt = msg_type or ""
            if source == "client" and ch in _REQUEST_CHANNELS:
                facts.requests += 1
                if msg_id:
                    pending[msg_id] = t
                if mt == "execute_request" and not audit:
                    code = _str(_json(content).get("code")) if content else None
            elif mt in _CONTENT_WANTED or mt.endswith("_reply"):
                if mt == "status":
                    state = peek_field(content, b'"execution_state"')
                    key = parent_id or ""
                    if state == "busy":
                        facts.busy_since.setdefault(key, t)
                    elif state == "idle" and key in facts.busy_since:
                        facts.busy.append((facts.busy_since.pop(key), t))
                elif mt == "error" or mt.endswith("_reply"):
                    if mt == "kernel_info_reply" and not facts.kernel_info:
                        facts.kernel_info = _json(content)
                        status = _str(facts.kernel_info.get("status"))
                    else:
                        status = peek_field(content, b'"status"') if mt != "error" else None
                    if status == "error":
                        facts.errors += 1
                    if mt == "error" or status == "error":
                        body = _json(content)
                        ename = _str(body.get("ename"))
                        evalue = body.get("evalue") if isinstance(body.get("evalue"), str) else None
                    if mt.endswith("_reply") and parent_id is not None:
                        sent = pending.pop(parent_id, None)
                        if sent is not None:
                            latency = (t - sent) / 1e6
                if mt in ("execute_reply", "execute_input", "execute_result"):
                    m = _COUNT.search(content)
                    count = int(m.group(1)) if m else None
            number = t // DAY_NS
            cols = days.get(number)
            if cols is None:
                cols = days[number] = _Columns()
            get = header.get
            cols.rows.append(
                (
                    lid,
                    index,
                    t // 1000,
                    ch,
                    source,
                    msg_type,
                    msg_id,
                    parent_id,
                    parent_type,
                    get("session"),
                    get("username"),
                    get("subshell_id"),
                    get("version"),
                    size,
                    count,
                    status,
                    state,
                    ename,
                    evalue,
                    latency,
                    code,
                )
            )
            if len(cols) >= BATCH_ROWS:
                yield "messages", day(t), cols.batch()
                days[number] = _Columns()
        if progress is not None:
            progress(total, total)
        for number, cols in sorted(days.items()):
            if len(cols):
                yield "messages", day(number * DAY_NS), cols.batch()

    def _event(self, raw: dict[str, Any]) -> None:
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


def _ignore(index: int, raw: dict[str, Any]) -> None:
    pass


def check_findings(path: str) -> tuple[list[Finding], dict[str, str | None]]:
    """krec check's findings and protocol versions of the log at ``path`` (every rule)."""
    with LogReader(path) as reader:
        checker = check_log(reader)
        return checker.findings, checker.protocol()
