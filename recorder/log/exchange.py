"""Exchanges: each client request of a log with everything the kernel answered it with.

An Exchange is one request (a client message on shell or control) plus its
reply, its iopub output and status, and the stdin traffic it caused, in log
order. Replay builds its plan from exchanges and diff compares them pairwise.
Log events that change the session (restarts, interrupts) are kept in order
beside the exchanges as ``Marker`` entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from krec.recorder.log.owner import owner as owner_of
from krec.recorder.log.reader import LogReader
from krec.recorder.log.record import Record

REQUEST_CHANNELS = ("shell", "control")


@dataclass
class Exchange:
    """One client request and what answered it."""

    number: int  # 1-based position among the log's requests
    request: Record
    reply: Record | None = None
    outputs: list[Record] = field(default_factory=list)  # iopub, not status
    stdin: list[Record] = field(default_factory=list)  # input_request and input_reply
    busy_t: int | None = None
    idle_t: int | None = None
    records: list[int] = field(default_factory=list)  # every record index of the exchange

    @property
    def msg_type(self) -> str:
        return self.request.msg_type

    @property
    def msg_id(self) -> str:
        return self.request.msg_id

    @property
    def ch(self) -> str:
        return self.request.ch

    @property
    def index(self) -> int:
        """The request's record index (what owner.py needs of a candidate)."""
        return self.request.index

    @property
    def t(self) -> int:
        return self.request.t

    @property
    def code(self) -> str | None:
        code = self.request.content.get("code")
        return code if isinstance(code, str) else None

    @property
    def done_t(self) -> int | None:
        """When the recording saw it complete: the later of reply and idle (None: never)."""
        times = [t for t in (self.reply.t if self.reply else None, self.idle_t) if t is not None]
        return max(times) if times else None

    @property
    def busy_time(self) -> int:
        """ns from request to idle (or reply); 0 if it never completed."""
        done = self.done_t
        return max(0, done - self.t) if done is not None else 0

    def input_replies(self) -> list[Record]:
        return [r for r in self.stdin if r.source == "client" and r.msg_type == "input_reply"]


@dataclass
class Marker:
    """A log event that matters to a replay: ``restart`` or a signal ``interrupt``."""

    event: str
    record: Record

    @property
    def t(self) -> int:
        return self.record.t


@dataclass
class Session:
    """A log's exchanges and markers in log order, plus what replay needs to know."""

    path: str
    header: dict[str, Any]
    exchanges: list[Exchange]
    timeline: list[Exchange | Marker]
    redacted: set[str]  # msg_ids of input_requests whose reply was redacted
    launches: list[dict[str, Any]] = field(default_factory=list)  # kernel_started fields

    @property
    def busy_time(self) -> int:
        return sum(e.busy_time for e in self.exchanges)


def load_session(path: str) -> Session:
    """Read a whole log into exchanges (fine for the logs people replay: not a million)."""
    with LogReader(path) as reader:
        return build_session(reader)


def build_session(reader: LogReader) -> Session:
    """Group a log into exchanges (two passes: outputs may be logged before their request)."""
    exchanges: list[Exchange] = []
    timeline: list[Exchange | Marker] = []
    by_id: dict[str, list[Exchange]] = {}
    redacted: set[str] = set()
    launches: list[dict[str, Any]] = []
    for rec in reader:
        if rec.is_event:
            if rec.event == "restart" or (
                rec.event == "interrupt" and rec.fields.get("mode") == "signal"
            ):
                timeline.append(Marker(rec.event or "", rec))
            elif rec.event == "kernel_started":
                launches.append(dict(rec.fields))
            elif rec.event == "password_redacted":
                parent = rec.fields.get("parent_msg_id")
                if isinstance(parent, str):
                    redacted.add(parent)
        elif rec.source == "client" and rec.ch in REQUEST_CHANNELS:
            ex = Exchange(number=len(exchanges) + 1, request=rec, records=[rec.index])
            exchanges.append(ex)
            timeline.append(ex)
            if rec.msg_id:
                by_id.setdefault(rec.msg_id, []).append(ex)
    prompts: dict[str, Exchange] = {}  # input_request msg_id -> its exchange
    pending_prompt: dict[tuple[bytes, ...], Exchange] = {}  # client identity -> last prompt
    for rec in reader:
        if rec.is_event or (rec.source == "client" and rec.ch in REQUEST_CHANNELS):
            continue
        if rec.ch == "stdin":
            owner = _stdin_owner(rec, by_id, prompts, pending_prompt)
            if owner is not None:
                owner.stdin.append(rec)
                owner.records.append(rec.index)
            continue
        owner = _owner(rec, by_id.get(rec.parent_id))
        if owner is None:
            continue
        owner.records.append(rec.index)
        if rec.ch == owner.ch and rec.source == "kernel" and rec.msg_type.endswith("_reply"):
            if owner.reply is None:
                owner.reply = rec
        elif rec.ch == "iopub":
            if rec.msg_type == "status":
                state = rec.content.get("execution_state")
                if state == "busy" and owner.busy_t is None:
                    owner.busy_t = rec.t
                elif state == "idle":
                    owner.idle_t = rec.t
            else:
                owner.outputs.append(rec)
    for ex in exchanges:
        ex.records.sort()
    return Session(reader.path, reader.header, exchanges, timeline, redacted, launches)


def _owner(rec: Record, candidates: list[Exchange] | None) -> Exchange | None:
    """The exchange ``rec`` belongs to among those with its parent's msg_id (owner.py)."""
    return owner_of(
        candidates, index=rec.index, ch=rec.ch, msg_type=rec.msg_type, parent_type=rec.parent_type
    )


def _stdin_owner(
    rec: Record,
    by_id: dict[str, list[Exchange]],
    prompts: dict[str, Exchange],
    pending: dict[tuple[bytes, ...], Exchange],
) -> Exchange | None:
    """The exchange a stdin record belongs to; notes each input_request as the prompt open
    on its client's stdin (``pending``) and by msg_id (``prompts``)."""
    who = tuple(rec.ids)
    if rec.msg_type == "input_request":
        owner = _owner(rec, by_id.get(rec.parent_id))
        if owner is not None:
            prompts[rec.msg_id] = owner
            pending[who] = owner
        return owner
    asked = prompts.get(rec.parent_id) if rec.parent_id else None
    owner = owner_of(
        [asked] if asked is not None else None,
        index=rec.index,
        ch=rec.ch,
        msg_type=rec.msg_type,
        prompt=pending.get(who),
    )
    if asked is None:
        pending.pop(who, None)
    return owner
