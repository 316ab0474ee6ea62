"""The messages table of one log, built a column at a time from the records' frames.

The pass over the log only gathers each message record's fields (one itemgetter call
per record); a batch of them then becomes Arrow columns: the headers are parsed with
orjson in one comprehension and their fields taken with ``map``, parent headers go
through a memo (the messages a request causes share its header), sizes are summed
from ``map(len, ...)``, and content is looked at only for the rows whose columns need
it (requests, replies, status, error, execute_input/result), in record order, since
latency and busy time pair messages across batches. A malformed record (a frame
missing or not bytes, a header that is not a JSON object, a number where a string
belongs) takes a slower path giving the values a record-by-record reading gives.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from krec.recorder.catalog.schema import arrow_schema
from krec.recorder.wire import peek_field

DAY_NS = 86_400 * 1_000_000_000
#: rows per Arrow batch (one Parquet row group): until a batch is built its records and
#: parsed headers take about 3 KB a row
BATCH_ROWS = 65_536
#: the fields of a message record, in the order ``MessageRows.fields`` keeps them
RECORD_FIELDS = operator.itemgetter(
    "t", "ch", "from", "header", "parent", "metadata", "content", "buffers"
)
_COUNT = re.compile(rb'"execution_count"\s*:\s*(-?\d+)')
_REQUEST_CHANNELS = ("shell", "control")
_COUNTED = frozenset({"execute_reply", "execute_input", "execute_result"})
_HEADER_KEYS = ("msg_type", "msg_id", "session", "username", "subshell_id", "version")
_STR_TYPES = frozenset({str, type(None)})
#: entries per memo (parent headers, status contents) before it starts afresh
_MEMO_SIZE = 4096
_MISSING = object()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json(frame: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass
class SessionFacts:
    """What the session row gathers while the messages go by."""

    records: int = 0
    messages: int = 0
    requests: int = 0
    errors: int = 0
    #: time of the first record with a time, and that record's index
    first: int = 0
    first_index: int = -1
    last: int = 0
    events: dict[str, int] = field(default_factory=dict)
    identity: dict[str, str] = field(default_factory=dict)
    kernel_info: dict[str, Any] = field(default_factory=dict)
    busy_since: dict[str, int] = field(default_factory=dict)
    busy: list[tuple[int, int]] = field(default_factory=list)

    def saw(self, index: int, t: int) -> None:
        """Record ``index`` has time ``t`` (0: none)."""
        if t:
            if not self.first or index < self.first_index:
                self.first, self.first_index = t, index
            if t > self.last:
                self.last = t


def loose_fields(raw: dict[str, Any]) -> tuple[Any, ...]:
    """``RECORD_FIELDS`` of a message record that lacks some of them."""
    get = raw.get
    return (
        get("t"),
        get("ch"),
        get("from"),
        get("header", b""),
        get("parent", b""),
        get("metadata"),
        get("content", b""),
        get("buffers"),
    )


class MessageRows:
    """Message rows gathered from a log's records, handed out as Arrow batches per UTC day.

    The pass appends each message record's index to ``index`` and its
    ``RECORD_FIELDS`` to ``fields``; ``batches()`` turns what was gathered into
    batches and updates ``facts`` (counts, busy spans, kernel_info_reply).
    """

    def __init__(self, log_id: str, audit: bool, facts: SessionFacts) -> None:
        self.log_id = log_id
        self.audit = audit
        self.facts = facts
        self.index: list[int] = []
        self.fields: list[tuple[Any, ...]] = []
        self._pending: dict[str, int] = {}  # request msg_id -> t
        self._parents: dict[bytes, tuple[str | None, str | None]] = {}
        self._states: dict[bytes, str | None] = {}

    def __len__(self) -> int:
        return len(self.index)

    def batches(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        """``(date, batch)`` of the rows gathered so far, in record order; then none are left."""
        index, fields = self.index, self.fields
        if not index:
            return
        self.index, self.fields = [], []
        batch, times, first, last = self._batch(index, fields)
        if first // DAY_NS == last // DAY_NS:
            yield _date(first // DAY_NS), batch
            return
        rows: dict[int, list[int]] = {}
        for i, t in enumerate(times):
            rows.setdefault(t // DAY_NS, []).append(i)
        for number, which in sorted(rows.items()):
            yield _date(number), batch.take(pa.array(which, pa.int64()))

    def _batch(
        self, index: list[int], fields: list[tuple[Any, ...]]
    ) -> tuple[pa.RecordBatch, Sequence[int], int, int]:
        n = len(index)
        facts = self.facts
        facts.records += n
        facts.messages += n
        times, ch, source, header, parent, metadata, content, buffers = zip(*fields, strict=True)
        del fields
        if not set(map(type, times)) <= {int}:
            times = tuple(t if isinstance(t, int) else 0 for t in times)
        time_ns = pa.array(times, pa.int64())
        first, last = (v.as_py() for v in pc.min_max(time_ns).values())
        timed = 0 if times[0] else next((i for i, t in enumerate(times) if t), 0)
        facts.saw(index[timed], times[timed])
        facts.last = max(facts.last, last)
        header, parent, content = _bytes(header), _bytes(parent), _bytes(content)
        size = _sizes(header, parent, content, metadata, buffers)

        heads = _headers(header)
        msg_type, msg_id, session, username, subshell_id, version = (
            list(map(dict.get, heads, repeat(key))) for key in _HEADER_KEYS
        )
        del heads
        msg_type, msg_id = _str_values(msg_type), _str_values(msg_id)
        parent_id, parent_type = self._parent_ids(parent)
        ch_array, source_array = _record_strings(ch), _record_strings(source)
        type_array = pa.array(msg_type, pa.string())
        request = pc.and_(
            pc.equal(source_array, "client"),
            pc.is_in(ch_array, value_set=_REQUEST_CHANNEL_ARRAY),
        ).fill_null(False)
        extra = self._content_columns(
            type_array, request, times, msg_type, msg_id, parent_id, content
        )
        if first >= 0:
            us = pc.divide(time_ns, 1000)
        else:  # floor, as Python divides
            us = pa.array([t // 1000 for t in times], pa.int64())
        schema = arrow_schema("messages")
        arrays = [
            pa.repeat(self.log_id, n),
            pa.array(index, pa.int64()),
            us.view(schema.field("time").type),
            ch_array,
            source_array,
            type_array,
            pa.array(msg_id, pa.string()),
            pa.array(parent_id, pa.string()),
            pa.array(parent_type, pa.string()),
            _strings(session),
            _strings(username),
            _strings(subshell_id),
            _strings(version),
            pa.array(size, pa.int64()),
            *extra,
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=schema), times, first, last

    def _parent_ids(
        self, frames: Sequence[bytes]
    ) -> tuple[Sequence[str | None], Sequence[str | None]]:
        memo = self._parents
        get = memo.get
        pairs = []
        append = pairs.append
        for frame in frames:
            ids = get(frame)
            if ids is None:
                ids = _NO_PARENT
                if len(frame) > 2:
                    parsed = _json(frame)
                    ids = (_str(parsed.get("msg_id")), _str(parsed.get("msg_type")))
                if len(memo) >= _MEMO_SIZE:
                    memo.clear()
                memo[frame] = ids
            append(ids)
        parent_id, parent_type = zip(*pairs, strict=True)
        return parent_id, parent_type

    def _content_columns(
        self,
        type_array: pa.Array,
        request: pa.Array,
        times: Sequence[int],
        msg_type: Sequence[str | None],
        msg_id: Sequence[str | None],
        parent_id: Sequence[str | None],
        content: Sequence[bytes],
    ) -> list[pa.Array]:
        """execution_count, status, execution_state, ename, evalue, latency_ms and code: the
        columns read from content, each for the rows it applies to (in record order)."""
        facts = self.facts
        n = len(type_array)
        answer = pc.invert(request)  # what is not a request may be read for these
        status_rows = _and(answer, pc.equal(type_array, "status"))
        reply_rows = _and(answer, pc.ends_with(type_array, "_reply"))
        answer_rows = pc.or_(reply_rows, _and(answer, pc.equal(type_array, "error")))
        counted_rows = _and(answer, pc.is_in(type_array, value_set=_COUNTED_ARRAY))

        # execution_state, and the busy spans it opens and closes
        states, memo = [], self._states
        rows = _rows(status_rows)
        for body in _pick(content, rows):
            value = memo.get(body, _MISSING)
            if value is _MISSING:
                value = peek_field(body, b'"execution_state"')
                if len(memo) >= _MEMO_SIZE:
                    memo.clear()
                memo[body] = value
            states.append(value)
        busy_since, busy = facts.busy_since, facts.busy
        for value, key, t in zip(states, _pick(parent_id, rows), _pick(times, rows), strict=True):
            if value == "busy":
                busy_since.setdefault(key or "", t)
            elif value == "idle" and (key or "") in busy_since:
                busy.append((busy_since.pop(key or ""), t))

        # status of replies, ename and evalue of error replies and error outputs
        status: list[str | None] = []
        ename: list[str | None] = []
        evalue: list[str | None] = []
        rows = _rows(answer_rows)
        for mt, body in zip(_pick(msg_type, rows), _pick(content, rows), strict=True):
            value = None
            if mt == "kernel_info_reply" and not facts.kernel_info:
                facts.kernel_info = _json(body)
                value = _str(facts.kernel_info.get("status"))
            elif mt != "error":
                value = _top_level(body, b'"status"')
            status.append(value)
            if value == "error":
                facts.errors += 1
            if mt == "error" or value == "error":
                parsed = _json(body)
                ename.append(_str(parsed.get("ename")))
                text = parsed.get("evalue")
                evalue.append(text if isinstance(text, str) else None)
            else:
                ename.append(None)
                evalue.append(None)

        # latency: a reply pairs with the latest request before it that has its parent's id
        paired = pc.or_(request, reply_rows)
        pending, latency, rows = self._pending, [], _rows(paired)
        for is_request, mid, pid, t in zip(
            request.filter(paired).to_pylist(),
            _pick(msg_id, rows),
            _pick(parent_id, rows),
            _pick(times, rows),
            strict=True,
        ):
            if is_request:
                if mid:
                    pending[mid] = t
            else:
                sent = pending.pop(pid, None) if pid is not None else None
                latency.append(None if sent is None else (t - sent) / 1e6)
        facts.requests += pc.sum(request).as_py() or 0

        code: list[str | None] = []
        code_rows = _and(request, pc.equal(type_array, "execute_request"))
        if not self.audit:
            picked = _pick(content, _rows(code_rows))
            code = [_str(_json(c).get("code")) if c else None for c in picked]
        counts = [_count(body) for body in _pick(content, _rows(counted_rows))]
        return [
            _scatter(n, counted_rows, _integers(counts)),
            _scatter(n, answer_rows, pa.array(status, pa.string())),
            _scatter(n, status_rows, pa.array(states, pa.string())),
            _scatter(n, answer_rows, pa.array(ename, pa.string())),
            _scatter(n, answer_rows, pa.array(evalue, pa.string())),
            _scatter(n, reply_rows, pa.array(latency, pa.float64())),
            _scatter(n, code_rows, pa.array(code, pa.string())),
        ]


_NO_PARENT: tuple[None, None] = (None, None)
_COUNTED_ARRAY = pa.array(sorted(_COUNTED), pa.string())
_REQUEST_CHANNEL_ARRAY = pa.array(_REQUEST_CHANNELS, pa.string())


def _and(a: pa.Array, b: pa.Array) -> pa.Array:
    """``a and b``, a null (no msg_type) taken as false."""
    return pc.and_(a, b).fill_null(False)


def _rows(mask: pa.Array) -> list[int]:
    """The rows ``mask`` selects, in order."""
    return pc.indices_nonzero(mask).to_pylist()


def _pick(values: Sequence[Any], rows: list[int]) -> list[Any]:
    return list(map(values.__getitem__, rows))


def _scatter(n: int, mask: pa.Array, values: pa.Array) -> pa.Array:
    """A column of ``n`` nulls with ``values`` at the rows ``mask`` selects, in order."""
    if not len(values):
        return pa.nulls(n, values.type)
    return pc.replace_with_mask(pa.nulls(n, values.type), mask, values)


def _count(body: bytes) -> int | None:
    m = _COUNT.search(body)
    return int(m.group(1)) if m else None


def _record_strings(values: Sequence[Any]) -> pa.Array:
    """A string column of a record's own fields (msgpack may give bytes): other values are
    null."""
    try:
        array = pa.array(values)  # one pass: its type says whether all were str (or None)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        array = None
    if array is not None and array.type == pa.string():
        return array
    if array is not None and array.type == pa.null():
        return pa.nulls(len(values), pa.string())
    return pa.array([v if isinstance(v, str) else None for v in values], pa.string())


def _date(number: int) -> str:
    """The ``date`` partition of UTC day ``number`` (days since the epoch)."""
    return time.strftime("%Y-%m-%d", time.gmtime(number * 86_400))


def _bytes(frames: Sequence[Any]) -> Sequence[bytes]:
    """The frames, a frame that is not bytes taken as empty."""
    if set(map(type, frames)) == {bytes}:
        return frames
    return [f if isinstance(f, bytes) else b"" for f in frames]


def _sizes(
    header: Sequence[bytes],
    parent: Sequence[bytes],
    content: Sequence[bytes],
    metadata: Sequence[Any],
    buffers: Sequence[Any],
) -> list[int]:
    try:
        meta = list(map(len, metadata))
    except TypeError:  # a missing (None) or odd metadata frame
        meta = [len(m) if m and hasattr(m, "__len__") else 0 for m in metadata]
    lengths = zip(map(len, header), map(len, parent), map(len, content), meta, strict=True)
    size = list(map(sum, lengths))
    if any(buffers):
        for i, frames in enumerate(buffers):
            if frames and isinstance(frames, (list, tuple)):
                size[i] += sum(len(b) for b in frames if isinstance(b, bytes))
    return size


def _headers(frames: Sequence[bytes]) -> list[dict[str, Any]]:
    """The header frames as dicts ({} for one that is empty or not a JSON object)."""
    loads = orjson.loads
    try:
        heads = [loads(f) for f in frames]
    except orjson.JSONDecodeError:
        heads = [_json(f) if f else {} for f in frames]
    if set(map(type, heads)) != {dict}:
        heads = [h if isinstance(h, dict) else {} for h in heads]
    return heads


def _str_values(values: list[Any]) -> list[Any]:
    """Values as ``_str`` gives them: a string, or None for anything else and for ''."""
    if not set(map(type, values)) <= _STR_TYPES:
        return [_str(v) for v in values]
    if "" in values:
        return [v or None for v in values]
    return values


def _strings(values: Sequence[Any]) -> pa.Array:
    """A string column of JSON values: what is not a string (a malformed header's number)
    is null."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([v if isinstance(v, str) else None for v in values], pa.string())


def _integers(values: list[int | None]) -> pa.Array:
    try:
        return pa.array(values, pa.int64())
    except (OverflowError, pa.ArrowInvalid):  # an execution_count beyond int64
        return pa.array(
            [v if v is None or -(2**63) <= v < 2**63 else None for v in values], pa.int64()
        )


def _top_level(frame: bytes, key: bytes) -> str | None:
    """``peek_field(frame, key)``, with orjson for the full parse of a nested frame."""
    if frame.count(b"{") != 1 and frame.find(key) >= 0:
        try:
            parsed = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return peek_field(frame, key)
        value = parsed.get(key[1:-1].decode()) if isinstance(parsed, dict) else None
        return value if isinstance(value, str) else None
    return peek_field(frame, key)
