"""What a recording holds, and how fast the kernel answered (the numbers of `krec stats`).

One pass over the log counts messages by channel and type, pairs every client
request with its reply (latency per request type: median, p95, max), adds up
the time the kernel was busy (each request's iopub busy to idle, overlaps
counted once), and sums bytes by channel; ``to_json`` turns that into data. On a
big log a helper process (``python -m krec.recorder.log.stats``) counts half.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import pickle
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from krec.recorder.log.reader import LogReader

SLOWEST = 5

#: told (records counted, records in all) as the count goes on
ProgressCallback = Callable[[int, int], None]


@dataclass
class Stats:
    """Everything `krec stats` reports about one log."""

    records: int = 0
    events: Counter[str] = field(default_factory=Counter)
    messages: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    bytes_by_channel: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    #: (latency ns, request record index, request type)
    answered: list[tuple[int, int, str]] = field(default_factory=list)
    unanswered: int = 0
    error_outputs: int = 0
    error_replies: int = 0
    busy_ns: int = 0
    first_ns: int = 0
    last_ns: int = 0

    @property
    def span_ns(self) -> int:
        return max(self.last_ns - self.first_ns, 0)

    def add(self, other: Stats) -> None:
        """Add the counts of ``other`` (a helper's part of the log)."""
        self.records += other.records
        self.events.update(other.events)
        self.messages.update(other.messages)
        self.bytes_by_channel.update(other.bytes_by_channel)
        self.requests.update(other.requests)
        self.error_outputs += other.error_outputs
        self.error_replies += other.error_replies


def collect(
    reader: LogReader,
    progress: ProgressCallback | None = None,
    helper: _StatsHelper | None = None,
) -> Stats:
    """Statistics of every indexed record of ``reader``.

    One pass over the records' raw maps, reading only the fields each record needs
    (most headers are peeked at, not parsed). On a big log a helper process takes the
    second half (a little less): it counts on its own and hands back, in order, what pairs requests
    with replies and busy with idle, which is replayed here after the first half.
    ``helper`` is one ``start_helper`` started before the log was indexed.
    """
    s = Stats()
    pairing = _Pairing()
    total = len(reader)
    if helper is None and _worth_a_helper(reader):
        helper = _StatsHelper.spawn()
    if helper is not None and not (_worth_a_helper(reader) and helper.send(reader)):
        helper.cancel()
        helper = None
    stop = helper.lo if helper is not None else total
    first, last = _count(reader.raw_records(0, stop), s, pairing, progress, total)
    if helper is not None:
        part = helper.result()
        if part is None:  # the helper failed: count its half here
            part_first, part_last = _count(
                reader.raw_records(stop, total), s, pairing, progress, total
            )
        else:
            counted, part_first, part_last, ops = part
            s.add(counted)
            pairing.replay(ops)
        first = min((x for x in (first, part_first) if x is not None), default=None)
        last = max((x for x in (last, part_last) if x is not None), default=None)
    s.unanswered = len(pairing.pending)
    s.first_ns, s.last_ns = first or 0, last or 0
    s.latencies, s.answered = pairing.latencies, pairing.answered
    s.busy_ns = union_length(pairing.intervals)
    return s


class _Pairing:
    """Pairs requests with replies (latency) and busy with idle (busy intervals), in order."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[int, int, str]] = {}  # request msg_id -> (t, index, type)
        self.busy_since: dict[str, int] = {}
        self.intervals: list[tuple[int, int]] = []
        self.latencies: dict[str, list[int]] = defaultdict(list)
        self.answered: list[tuple[int, int, str]] = []

    def request(self, msg_id: str, t: int, index: int, msg_type: str) -> None:
        self.pending[msg_id] = (t, index, msg_type)

    def reply(self, parent: str, t: int) -> None:
        request = self.pending.pop(parent, None)
        if request is not None:
            latency = t - request[0]
            self.latencies[request[2]].append(latency)
            self.answered.append((latency, request[1], request[2]))

    def status(self, parent: str, state: str | None, t: int) -> None:
        if state == "busy":
            self.busy_since.setdefault(parent, t)
        elif state == "idle" and parent in self.busy_since:
            self.intervals.append((self.busy_since.pop(parent), t))

    def replay(self, ops: list[tuple[Any, ...]]) -> None:
        act = {"q": self.request, "r": self.reply, "s": self.status}
        for op in ops:
            act[op[0]](*op[1:])


class _Ops:
    """A _Pairing stand-in for a helper: notes each step, in order, to replay later."""

    def __init__(self) -> None:
        self.ops: list[tuple[Any, ...]] = []

    def request(self, msg_id: str, t: int, index: int, msg_type: str) -> None:
        self.ops.append(("q", msg_id, t, index, msg_type))

    def reply(self, parent: str, t: int) -> None:
        self.ops.append(("r", parent, t))

    def status(self, parent: str, state: str | None, t: int) -> None:
        self.ops.append(("s", parent, state, t))


_FRAMES = ("header", "parent", "metadata", "content")


def _frame(value: Any) -> bytes:
    """``Record.frame`` of a stored value."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return b"{}"


def _count(
    records: Iterator[tuple[int, dict[str, Any]]],
    s: Stats,
    pairing: _Pairing | _Ops,
    progress: ProgressCallback | None,
    total: int,
) -> tuple[int | None, int | None]:
    """Count ``records`` into ``s``; return the first and last time seen (what the
    Record accessors would give, read straight from the raw maps: this is the hot loop).

    Parent headers and small contents repeat (every message a request causes has the
    same parent; ``status: busy`` is always the same bytes), so what is peeked in them
    is remembered by their bytes."""
    from krec.recorder.log.record import _ID_AND_TYPE, peek_id_and_type, peek_str

    first = last = None
    events, messages, sizes, requests = s.events, s.messages, s.bytes_by_channel, s.requests
    parent_ids: dict[bytes, str] = {}
    small: dict[tuple[bytes, bytes], str | None] = {}

    def parent_id_of(parent: bytes | None) -> str:
        if parent is None:
            return ""
        found = parent_ids.get(parent)
        if found is None:
            found = peek_str(parent, b'"msg_id"') or ""
            if len(parent_ids) >= 1024:
                parent_ids.clear()
            parent_ids[parent] = found
        return found

    def content_field(content: bytes, key: bytes) -> str | None:
        if len(content) > 96:
            return peek_str(content, key)
        cached = small.get((content, key), small)
        if cached is small:
            cached = peek_str(content, key)
            if len(small) >= 1024:
                small.clear()
            small[(content, key)] = cached
        return cached  # type: ignore[return-value]

    id_and_type = _ID_AND_TYPE.match
    request, reply, status = pairing.request, pairing.reply, pairing.status
    n = 0
    for index, raw in records:
        n += 1
        get = raw.get
        t = get("t")
        if t.__class__ is not int:
            t = t if isinstance(t, int) else 0
        if t:
            if first is None or t < first:
                first = t
            if last is None or t > last:
                last = t
        if progress is not None and index % 8192 == 0:
            progress(index, total)
        if "event" in raw:
            event = raw["event"]
            events[event if isinstance(event, str) and event else "?"] += 1
            continue
        ch = get("ch")
        if ch.__class__ is not str:
            ch = ch if isinstance(ch, str) else ""
        source = get("from")
        if source.__class__ is not str:
            source = source if isinstance(source, str) else ""
        header, parent, metadata, content = (
            get("header"),
            get("parent"),
            get("metadata"),
            get("content"),
        )
        if (
            header.__class__ is bytes
            and parent.__class__ is bytes
            and metadata.__class__ is bytes
            and content.__class__ is bytes
        ):
            size = len(header) + len(parent) + len(metadata) + len(content)
        else:
            size = sum(len(_frame(f)) for f in (header, parent, metadata, content))
            header = _frame(header) if header is not None else None
            parent = _frame(parent) if parent is not None else None
            content = _frame(content)
        # peek_id_and_type's common case inline, the msg_id only for a request (the hot spot)
        m = id_and_type(header) if header is not None else None
        if m is not None and header.count(b"{") == 1:  # type: ignore[union-attr]
            try:
                mt = m.group(2).decode()
            except UnicodeDecodeError:
                m = None
        else:
            m = None
        if m is None:
            msg_id, mt = peek_id_and_type(header) if header is not None else ("", "")
        messages[(ch, source, mt)] += 1
        buffers = get("buffers")
        if buffers:
            size += (
                sum(len(b) for b in buffers if isinstance(b, bytes))
                if buffers.__class__ is list
                else 0
            )
        sizes[ch] += size
        if source == "client" and mt.endswith("_request") and ch in ("shell", "control"):
            requests[mt] += 1
            if m is not None:
                try:
                    msg_id = m.group(1).decode()
                except UnicodeDecodeError:  # peek_id_and_type's own way with it
                    msg_id = peek_id_and_type(header)[0]  # type: ignore[arg-type]
            request(msg_id, t, index, mt)
        elif source == "kernel" and mt.endswith("_reply"):
            reply(parent_id_of(parent), t)
            # a status of "error" is spelled "error" in the frame, unless escaped
            if (b'"error"' in content or b"\\" in content) and content_field(
                content, b'"status"'
            ) == "error":
                s.error_replies += 1
        elif mt == "error":
            s.error_outputs += 1
        elif mt == "status":
            state = content_field(content, b'"execution_state"')
            parent_id = parent_ids.get(parent) if parent is not None else None  # type: ignore[arg-type]
            status(parent_id_of(parent) if parent_id is None else parent_id, state, t)
    s.records += n
    return first, last


# -- a helper process for big logs ---------------------------------------------------


def _worth_a_helper(reader: LogReader) -> bool:
    from krec.recorder.log.reader import helper_pays_off

    n = len(reader)
    return n >= 2 and reader.upgrade_record is None and helper_pays_off(reader.span_bytes(0, n))


#: the share of the records a helper counts: a little less than half, as it also notes
#: and pickles each pairing step (this process replays them, a cheaper part)
_HELPER_SHARE = 0.45


def start_helper(reader: LogReader) -> _StatsHelper | None:
    """A helper process for ``collect``, started before ``reader`` is indexed so that its
    start-up overlaps the indexing (None when the log is too small to need one)."""
    from krec.recorder.log.reader import helper_pays_off

    if reader.upgrade_record is not None or not helper_pays_off(reader.unindexed_bytes()):
        return None
    return _StatsHelper.spawn()


class _StatsHelper:
    """``python -m krec.recorder.log.stats`` counting records ``lo``.. of a log."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self.lo = 0

    @classmethod
    def spawn(cls) -> _StatsHelper | None:
        """Start the process; it waits for its job (``send``) or for ``cancel``."""
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "krec.recorder.log.stats"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except Exception:  # no second process here: count everything in this one
            return None
        return cls(process)

    def send(self, reader: LogReader) -> bool:
        """Give the helper the second half of ``reader``; False if it cannot take it."""
        n = len(reader)
        self.lo = n - int(n * _HELPER_SHARE)
        job = pickle.dumps(
            (reader.path, self.lo, reader.offsets[self.lo :].tobytes(), reader.record_end(n - 1))
        )
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(job)
            self._process.stdin.close()
        except OSError:
            return False
        return True

    def cancel(self) -> None:
        """Let the helper go without a job (it exits at once)."""
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def result(self) -> tuple[Stats, int | None, int | None, list[tuple[Any, ...]]] | None:
        from krec.recorder.log.reader import helper_result

        return helper_result(self._process)  # type: ignore[no-any-return]


def _helper_main() -> None:
    # this file runs as __main__ here: what is pickled back must name its real module
    from krec.recorder.log.reader import LogReader
    from krec.recorder.log.stats import Stats, _count, _Ops

    job = sys.stdin.buffer.read()
    if not job:  # cancelled: the log was not worth a helper after all
        return
    path, lo, offsets, end = pickle.loads(job)
    with LogReader.part(path, offsets, end) as reader:
        s = Stats()
        ops = _Ops()
        first, last = _count(((lo + i, raw) for i, raw in reader.raw_records()), s, ops, None, 0)
    sys.stdout.buffer.write(pickle.dumps((s, first, last, ops.ops)))
    sys.stdout.buffer.flush()


def union_length(intervals: list[tuple[int, int]]) -> int:
    total = 0
    end = None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def percentile(sorted_values: list[int], p: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def to_json(s: Stats, reader: LogReader) -> dict[str, Any]:
    from krec.recorder.log.oneline import short_id, summarize

    latency = {}
    for mt, values in sorted(s.latencies.items()):
        values.sort()
        latency[mt] = {
            "count": len(values),
            "median_s": percentile(values, 50) / 1e9,
            "p95_s": percentile(values, 95) / 1e9,
            "max_s": values[-1] / 1e9,
        }
    slowest = []
    for ns, index, mt in heapq.nlargest(SLOWEST, s.answered):  # sorted(reverse)[:5]
        record = reader[index]
        slowest.append(
            {
                "index": index,
                "msg_type": mt,
                "msg_id": record.msg_id,
                "short_id": short_id(record.msg_id),
                "latency_s": ns / 1e9,
                "summary": summarize(record),
            }
        )
    kernel = reader.header.get("kernel") if isinstance(reader.header.get("kernel"), dict) else {}
    return {
        "log": reader.path,
        "kernel": kernel.get("name", ""),
        "records": s.records,
        "messages": sum(s.messages.values()),
        "events": dict(sorted(s.events.items())),
        "span_s": s.span_ns / 1e9,
        "by_type": [
            {"ch": ch, "from": source, "msg_type": mt, "count": n}
            for (ch, source, mt), n in sorted(s.messages.items())
        ],
        "requests": sum(s.requests.values()),
        "requests_by_type": dict(sorted(s.requests.items())),
        "unanswered": s.unanswered,
        "error_outputs": s.error_outputs,
        "error_replies": s.error_replies,
        "latency": latency,
        "busy_s": s.busy_ns / 1e9,
        "slowest": slowest,
        "bytes_by_channel": dict(sorted(s.bytes_by_channel.items())),
        "warnings": list(reader.warnings),
    }


if __name__ == "__main__":
    _helper_main()
