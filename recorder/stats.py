"""`krec stats`: what a recording holds, and how fast the kernel answered.

One pass over the log counts messages by channel and type, pairs every client
request with its reply (latency per request type: median, p95, max), adds up
the time the kernel was busy (each request's iopub busy to idle, overlaps
counted once), and sums bytes by channel. ``--json`` prints the same as data.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .cliutil import Progress, add_command

if TYPE_CHECKING:
    from .logfile import LogReader

EXAMPLES = """\
examples:
  krec stats session.krec           counts, latencies, busy time, slowest requests
  krec stats session.krec --json    the same as JSON
"""
SLOWEST = 5


def add_arguments(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        sub, "stats", "counts by channel and type, reply latencies, busy time", EXAMPLES
    )
    p.add_argument("log", metavar="LOG", help="a .krec log")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=run)


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


def collect(reader: LogReader, progress: Progress | None = None) -> Stats:
    """Statistics of every indexed record of ``reader``."""
    from .logfile import peek_field

    s = Stats()
    pending: dict[str, tuple[int, int, str]] = {}  # request msg_id -> (t, index, type)
    busy_since: dict[str, int] = {}
    intervals: list[tuple[int, int]] = []
    total = len(reader)
    first = last = None
    for record in reader.records():
        s.records += 1
        t = record.t
        if t:
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
        if progress is not None and record.index % 8192 == 0:
            progress.update(record.index, total)
        if record.is_event:
            s.events[record.event or "?"] += 1
            continue
        ch, source, mt = record.ch, record.source, record.msg_type
        s.messages[(ch, source, mt)] += 1
        s.bytes_by_channel[ch] += record.size
        if source == "client" and mt.endswith("_request") and ch in ("shell", "control"):
            s.requests[mt] += 1
            pending[record.msg_id] = (t, record.index, mt)
        elif source == "kernel" and mt.endswith("_reply"):
            request = pending.pop(record.parent_id, None)
            if request is not None:
                latency = t - request[0]
                s.latencies[request[2]].append(latency)
                s.answered.append((latency, request[1], request[2]))
            if peek_field(record.frame("content"), b'"status"') == "error":
                s.error_replies += 1
        elif mt == "error":
            s.error_outputs += 1
        elif mt == "status":
            state = peek_field(record.frame("content"), b'"execution_state"')
            parent = record.parent_id
            if state == "busy":
                busy_since.setdefault(parent, t)
            elif state == "idle" and parent in busy_since:
                intervals.append((busy_since.pop(parent), t))
    s.unanswered = len(pending)
    s.first_ns, s.last_ns = first or 0, last or 0
    s.busy_ns = _union_length(intervals)
    return s


def _union_length(intervals: list[tuple[int, int]]) -> int:
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
    from .summary import short_id, summarize

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
    for ns, index, mt in sorted(s.answered, reverse=True)[:SLOWEST]:
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


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # pragma: no cover


def render(data: dict[str, Any]) -> str:
    """The text report of ``to_json``'s data."""
    arrows = {"client": "->", "kernel": "<-", "krec": "**"}
    span = data["span_s"]
    busy = data["busy_s"]
    share = f" ({100 * busy / span:.1f}% of the span)" if span else ""
    lines = [
        f"log        {data['log']}",
        f"kernel     {data['kernel'] or '?'}",
        f"records    {data['records']} ({data['messages']} messages, "
        f"{sum(data['events'].values())} events) over {_duration(span)}",
        f"requests   {data['requests']} ({data['unanswered']} without a reply)",
        f"errors     {data['error_outputs']} error outputs, {data['error_replies']} error replies",
        f"busy       {_duration(busy)}{share}",
        "",
        "messages by channel and type",
    ]
    for row in data["by_type"]:
        arrow = arrows.get(row["from"], "? ")
        lines.append(f"  {row['ch']:<8} {arrow} {row['msg_type']:<26} {row['count']:>8}")
    if data["events"]:
        lines += ["", "events"]
        lines += [f"  {name:<37} {n:>8}" for name, n in data["events"].items()]
    if data["latency"]:
        lines += ["", f"reply latency{'':<24} {'count':>8} {'median':>10} {'p95':>10} {'max':>10}"]
        for mt, v in data["latency"].items():
            lines.append(
                f"  {mt:<35} {v['count']:>8} {_duration(v['median_s']):>10} "
                f"{_duration(v['p95_s']):>10} {_duration(v['max_s']):>10}"
            )
    if data["slowest"]:
        lines += ["", "slowest requests"]
        for row in data["slowest"]:
            lines.append(
                f"  {_duration(row['latency_s']):>10}  #{row['index']:<7} {row['msg_type']:<22} "
                f"{row['short_id']:<10} {row['summary'][:80]}"
            )
    lines += ["", "bytes by channel"]
    lines += [f"  {ch:<8} {_size(n):>10}" for ch, n in data["bytes_by_channel"].items()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from .logfile import LogReader

    with LogReader(args.log, index=False) as reader:
        with Progress("indexing") as progress:
            while reader.index_more(100_000):
                progress.update(len(reader))
        with Progress("reading", len(reader)) as progress:
            stats = collect(reader, progress)
        data = to_json(stats, reader)
        if args.json:
            print(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            print(render(data))
        for warning in reader.warnings:
            print(f"krec: warning: {reader.path}: {warning}", file=sys.stderr)
    sys.stdout.flush()
    return 0
