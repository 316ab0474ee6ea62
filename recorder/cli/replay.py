"""`krec replay` and `krec diff`: the command-line side of replay.py and diff.py.

Both print the divergence report (or ``--json``) and exit 0 when the sessions
agree, 1 when they diverge, 2 on an error (unreadable log, missing kernel).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from krec.recorder.cli.batch import BATCH_HELP, add_batch_arguments, is_batch, run_replay_batch
from krec.recorder.cli.util import Progress, add_command

REPLAY_EPILOG = """\
examples:
  krec replay session.krec                     fresh kernel, same requests, report divergence
  krec replay session.krec --kernel python3    replay against another kernelspec
  krec replay session.krec -o again.krec       keep the replay's own recording there
  krec replay session.krec --json | jq .first  the report as data
  krec replay session.krec --ignore 're:\\d+\\.\\d+ s'   mask timings before comparing
  krec replay session.krec --repeat 5          5 replays; results that change are nondeterministic
  krec replay session.krec --cwd ~/project     run the kernel there, not in the recorded directory
  krec replay krec-logs/ --kernel python3-next -o replays/   every session against a new kernel
  krec replay --catalog cat --where "user = 'ada'" --scheduler tcp://dask:8786

exit status: 0 no divergence, 1 divergence (report printed), 2 error
""" + BATCH_HELP.format(bad="diverged")

DIFF_EPILOG = """\
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


def add_arguments(sub: Any) -> None:
    p = add_command(
        sub,
        "replay",
        "re-run a recording against a fresh kernel and report where the new run diverges",
        REPLAY_EPILOG,
    )
    p.add_argument("logs", nargs="*", metavar="LOG", help="the log to replay (or many: batch mode)")
    p.add_argument(
        "--kernel",
        metavar="NAME",
        help="kernelspec to replay against (default: the recorded kernel's name)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="NEWLOG",
        help="where the replay is recorded (default: krec-logs/LOG-replay-<stamp>.krec); "
        "in batch mode the folder for every replay's log",
    )
    p.add_argument(
        "--timeout",
        metavar="S",
        type=float,
        default=60.0,
        help="at most this many seconds without a reply before a request counts as hung "
        "(default 60; a request that was quick in the recording counts as hung sooner: "
        "20 times its recorded duration, at least 10 s)",
    )
    p.add_argument(
        "--cwd",
        metavar="DIR",
        help="start the kernel in DIR (default: the recorded kernel's working directory, "
        "or the current one when that does not exist here)",
    )
    p.add_argument(
        "--repeat",
        metavar="N",
        type=int,
        default=1,
        help="replay N times; requests whose results change between replays are reported "
        "as nondeterministic, not as divergences",
    )
    p.add_argument(
        "--password",
        metavar="TEXT",
        help="answer for password prompts whose recorded answer was redacted",
    )
    p.add_argument("--ignore", metavar="X", action="append", default=[], help=IGNORE_HELP)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_batch_arguments(p)
    p.set_defaults(func=run_replay)

    d = add_command(
        sub, "diff", "compare two recordings request by request (the replay report)", DIFF_EPILOG
    )
    d.add_argument("log_a", metavar="LOG_A")
    d.add_argument("log_b", metavar="LOG_B")
    d.add_argument("--ignore", metavar="X", action="append", default=[], help=IGNORE_HELP)
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    d.set_defaults(func=run_diff)


def _print(report: Any, as_json: bool, extra: dict[str, Any] | None = None) -> int:
    if as_json:
        data = report.to_json()
        data.update(extra or {})
        print(json.dumps(data, indent=1))
    else:
        print(report.render(color=sys.stdout.isatty()))
    return 1 if report.diverged else 0


def run_replay(args: argparse.Namespace) -> int:
    from krec.recorder.errors import KrecError

    if is_batch(args, args.logs):
        return run_replay_batch(args)
    if not args.logs:
        raise KrecError("give a LOG to replay")
    args.log = args.logs[0]
    from krec.recorder.logfile import LogReader
    from krec.recorder.replay.replayer import replay

    with LogReader(args.log) as reader:  # a bad log is exit 2 before any kernel starts
        for warning in reader.warnings:
            print(f"krec: warning: {args.log}: {warning}", file=sys.stderr)
    if args.timeout <= 0:
        raise KrecError("--timeout must be positive")
    if args.repeat < 1:
        raise KrecError("--repeat must be at least 1")
    if args.cwd is not None and not os.path.isdir(args.cwd):
        raise KrecError(f"--cwd {args.cwd}: no such directory")
    with Progress("replaying") as progress:
        result = replay(
            args.log,
            kernel_name=args.kernel,
            output=args.output,
            timeout=args.timeout,
            password=args.password,
            ignore=args.ignore,
            progress=progress.update,
            cwd=args.cwd,
            repeat=args.repeat,
        )
    if not args.json:
        times = f" {len(result.logs)} times" if len(result.logs) > 1 else ""
        print(
            f"replayed {args.log}{times} -> {', '.join(result.logs)} ({result.wall_time:.2f} s "
            f"per replay; the original was busy {result.busy_time:.2f} s)",
            file=sys.stderr,
        )
    return _print(
        result.report,
        args.json,
        {
            "replay_log": result.log,
            "replay_logs": result.logs,
            "wall_time": result.wall_time,
            "busy_time": result.busy_time,
        },
    )


def run_diff(args: argparse.Namespace) -> int:
    from krec.recorder.replay.diff import compare

    return _print(compare(args.log_a, args.log_b, ignore=args.ignore), args.json)
