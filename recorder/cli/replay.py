"""`krec replay`: re-run a recording against a fresh kernel (replay/replayer.py).

It prints the divergence report of `krec diff` (or ``--json``) and exits 0 when
the sessions agree, 1 when they diverge, 2 on an error (unreadable log, missing
kernel). Many logs are batch mode (cli/batch.py).
"""

from __future__ import annotations

import argparse
import os
import sys

from krec.recorder.cli.batch import BATCH_HELP, add_batch_arguments, is_batch, run_batch_command
from krec.recorder.cli.diff import IGNORE_HELP, print_report
from krec.recorder.cli.util import Progress
from krec.recorder.errors import KrecError

HELP = "re-run a recording against a fresh kernel and report where the new run diverges"
READS_LOGS = True
EPILOG = """\
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


def add_arguments(p: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    if is_batch(args, args.logs):
        return _run_batch(args)
    if not args.logs:
        raise KrecError("give a LOG to replay")
    args.log = args.logs[0]
    from krec.recorder.log.reader import LogReader
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
    return print_report(
        result.report,
        args.json,
        {
            "replay_log": result.log,
            "replay_logs": result.logs,
            "wall_time": result.wall_time,
            "busy_time": result.busy_time,
        },
    )


def _run_batch(args: argparse.Namespace) -> int:
    from krec.recorder.catalog.batch import replay_one

    if args.timeout <= 0:
        raise KrecError("--timeout must be positive")
    output = os.path.abspath(args.output or "krec-logs")
    task_args = [args.kernel, output, args.timeout, args.password, list(args.ignore)]
    return run_batch_command(args, replay_one, task_args, "replaying", "diverged")
