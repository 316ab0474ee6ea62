"""`krec stats`: what a recording holds, and how fast the kernel answered.

The numbers come from log/stats.py (one pass over the log); this prints them as a
text report, or with ``--json`` as the same data.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from krec.recorder.cli.util import Progress
from krec.recorder.units import format_seconds

HELP = "counts by channel and type, reply latencies, busy time"
READS_LOGS = True
EPILOG = """\
examples:
  krec stats session.krec           counts, latencies, busy time, slowest requests
  krec stats session.krec --json    the same as JSON
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("log", metavar="LOG", help="a .krec log")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


def run(args: argparse.Namespace) -> int:
    from krec.recorder.log.reader import LogReader
    from krec.recorder.log.stats import collect, start_helper, to_json

    with LogReader(args.log, index=False) as reader:
        helper = start_helper(reader)  # it starts up while this process indexes
        with Progress("indexing") as progress:
            while reader.index_more(100_000):
                progress.update(len(reader))
        with Progress("reading", len(reader)) as progress:
            stats = collect(reader, progress.update, helper)
        data = to_json(stats, reader)
        if args.json:
            print(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            print(render(data))
        for warning in reader.warnings:
            print(f"krec: warning: {reader.path}: {warning}", file=sys.stderr)
    sys.stdout.flush()
    return 0


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
        f"{sum(data['events'].values())} events) over {format_seconds(span)}",
        f"requests   {data['requests']} ({data['unanswered']} without a reply)",
        f"errors     {data['error_outputs']} error outputs, {data['error_replies']} error replies",
        f"busy       {format_seconds(busy)}{share}",
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
                f"  {mt:<35} {v['count']:>8} {format_seconds(v['median_s']):>10} "
                f"{format_seconds(v['p95_s']):>10} {format_seconds(v['max_s']):>10}"
            )
    if data["slowest"]:
        lines += ["", "slowest requests"]
        for row in data["slowest"]:
            lines.append(
                f"  {format_seconds(row['latency_s']):>10}  #{row['index']:<7} "
                f"{row['msg_type']:<22} "
                f"{row['short_id']:<10} {row['summary'][:80]}"
            )
    lines += ["", "bytes by channel"]
    lines += [f"  {ch:<8} {_size(n):>10}" for ch, n in data["bytes_by_channel"].items()]
    return "\n".join(lines)
