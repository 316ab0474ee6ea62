"""`krec diff`: compare two recordings request by request (replay/diff.py).

It prints the divergence report that `krec replay` prints (or ``--json``) and
exits 0 when the sessions agree, 1 when they diverge, 2 on an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "compare two recordings request by request (the replay report)"
READS_LOGS = True
EPILOG = """\
examples:
  krec diff monday.krec tuesday.krec           two recordings of the same notebook
  krec diff session.krec krec-logs/session-replay-*.krec
  krec diff a.krec b.krec --ignore text/html   do not compare HTML output

exit status: 0 no divergence, 1 divergence, 2 error
"""

IGNORE_HELP = (
    "also normalize this away: a content key (e.g. text/html, execution_count) or "
    "re:PATTERN for text; repeatable"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("log_a", metavar="LOG_A")
    p.add_argument("log_b", metavar="LOG_B")
    p.add_argument("--ignore", metavar="X", action="append", default=[], help=IGNORE_HELP)
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from krec.recorder.replay.diff import compare

    return print_report(compare(args.log_a, args.log_b, ignore=args.ignore), args.json)


def print_report(report: Any, as_json: bool, extra: dict[str, Any] | None = None) -> int:
    """Print a divergence report (text, coloured on a terminal, or JSON with ``extra``);
    return the exit status: 1 if it diverged, else 0."""
    if as_json:
        data = report.to_json()
        data.update(extra or {})
        print(json.dumps(data, indent=1))
    else:
        print(report.render(color=sys.stdout.isatty()))
    return 1 if report.diverged else 0
