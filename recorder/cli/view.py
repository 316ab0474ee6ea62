"""`krec view LOG`: open a recording in the terminal UI (krec.viewer, imported only here).

The log is opened and its header checked before the UI starts, so a missing,
empty or foreign file is one line on stderr and exit status 2, never a blank
screen. A log that another krec is still writing is followed from the start.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from krec.recorder.cli.util import add_command
from krec.recorder.errors import KrecError

EPILOG = """\
examples:
  krec view session.krec                    browse: Enter opens a message, ? lists the keys
  krec view session.krec -f 'status:error'  start with a filter (/ edits it, Escape clears)
  krec view --follow krec-logs/python3-*.krec   keep showing the newest messages

keys: / filter, Enter detail, t threads, l timeline, f follow, r replay, ? help, q quit
"""


def add_arguments(sub: Any) -> None:
    p = add_command(sub, "view", "browse, filter and thread a recording in a terminal UI", EPILOG)
    p.add_argument("log", metavar="LOG", help="the .krec file to open")
    p.add_argument(
        "-f",
        "--filter",
        metavar="FILTER",
        default="",
        help="start with this filter applied (the language of `krec show -f`)",
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="keep the cursor on the newest record as the log grows "
        "(the default for a log still being recorded)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from krec.recorder.logfile import LogReader, being_written

    # raises LogFormatError (one line, exit 2) for a missing or foreign file
    reader = LogReader(args.log, index=False)
    try:
        if args.filter:
            _check_filter(args.filter)
        if not (sys.stdin.isatty() and sys.stderr.isatty()):  # Textual draws on stderr
            raise KrecError("krec view needs a terminal; use `krec show` to print records")
        follow = args.follow or being_written(args.log)
    except BaseException:
        reader.close()
        raise
    from krec.viewer.app import run_viewer

    run_viewer(reader, follow=follow, filter_text=args.filter)
    return 0


def _check_filter(text: str) -> None:
    try:
        from krec.recorder.filter import compile_filter
    except ImportError:
        raise KrecError("this krec has no filter support yet") from None
    compile_filter(text)
