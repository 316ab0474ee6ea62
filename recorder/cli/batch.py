"""Batch mode of `krec check` and `krec replay` (not a command): options, one line per log.

Both add ``add_batch_arguments`` to their parser, call ``is_batch`` on the parsed
arguments and, for many logs, hand their task (catalog/batch.py) to
``run_batch_command``: lines as logs finish (progress on a terminal), or one JSON
document; exit 0 all clean, 1 any violations or divergence, 2 any log in error
(the others still reported).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from krec.recorder.cli.util import Progress
from krec.recorder.errors import KrecError
from krec.recorder.log.storage import is_url, log_locations

BATCH_HELP = """\
batch (many logs, a folder, a URL prefix, or --catalog C --where SQL): one line per
log, run in parallel on Dask (a LocalCluster of this machine's cores unless
--scheduler); exit 0 all clean, 1 any {bad}, 2 any log in error.
"""


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    """The options batch mode adds to check and replay."""
    g = p.add_argument_group("batch (many logs)")
    g.add_argument("--catalog", metavar="C", help="pick the logs from catalog C (with --where)")
    g.add_argument(
        "--where",
        metavar="SQL",
        help="condition on the catalog's sessions view, e.g. \"kernel_name = 'python3'\"",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="run on this Dask scheduler (tcp://HOST:PORT) instead of a LocalCluster",
    )
    g.add_argument(
        "--workers",
        metavar="N",
        type=int,
        help="LocalCluster worker processes (default: one per core, at most one per log)",
    )


def is_batch(args: argparse.Namespace, logs: list[str]) -> bool:
    """Many logs, batch options, or one location that is a folder of logs or a URL prefix."""
    if len(logs) > 1 or args.catalog or args.where or args.scheduler or args.workers:
        return True
    if not logs:
        return False  # the command's own "give a LOG"
    location = logs[0]
    if is_url(location) and not location.startswith("file://"):
        return log_locations([location]) != [location]
    path = location[len("file://") :] if location.startswith("file://") else location
    return os.path.isdir(path) and log_locations([path]) != [path]


def require_extra(module: str, what: str) -> None:
    """A clear error when the catalog extra (pyarrow, DuckDB, Dask) is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise KrecError(f"{what} needs the catalog extra: pip install 'krec[catalog]'")


def _locations(args: argparse.Namespace, logs: list[str]) -> list[str]:
    if args.where and not args.catalog:
        raise KrecError("--where needs --catalog C")
    if args.workers is not None and args.workers < 1:
        raise KrecError("--workers must be 1 or more")
    found = log_locations(logs) if logs else []
    if args.catalog:
        from krec.recorder.catalog.query import select_locations

        found += select_locations(args.catalog, args.where or "true")
    if not found:
        raise KrecError("no logs to run: give LOGs, folders, URLs or --catalog C --where SQL")
    return list(dict.fromkeys(found))


def run_batch_command(
    args: argparse.Namespace, task: Any, task_args: list[Any], label: str, bad: str
) -> int:
    """Run ``task(location, *task_args)`` on every log; ``bad`` names a failed outcome."""
    from krec.recorder.catalog.batch import run_batch

    require_extra("distributed", "batch mode")
    locations = _locations(args, list(args.logs))
    out = sys.stdout
    with Progress(label, len(locations)) as progress:

        def report(outcome: Any, done: int, total: int) -> None:
            if not args.json:
                progress.done()
                out.write(outcome.line + "\n")
                out.flush()
            progress.update(done, total)

        outcomes = run_batch(
            task,
            locations,
            task_args,
            scheduler=args.scheduler,
            workers=args.workers,
            on_outcome=report,
        )
    counts = {s: sum(o.status == s for o in outcomes) for s in ("clean", bad, "error")}
    if args.json:
        json.dump({"logs": [o.to_json() for o in outcomes], "summary": counts}, out, indent=1)
        out.write("\n")
    else:
        print(
            f"{len(outcomes)} log{'' if len(outcomes) == 1 else 's'}: {counts['clean']} clean, "
            f"{counts[bad]} {bad}, {counts['error']} errors",
            file=sys.stderr,
        )
    if counts["error"]:
        return 2
    return 1 if counts[bad] else 0
