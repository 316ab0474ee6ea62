"""`krec view LOG`: open a recording in the terminal UI (krec.viewer, imported only here).

The log is opened and its header checked before the UI starts, so a missing,
empty or foreign file is one line on stderr and exit status 2, never a blank
screen. A log that another krec is still writing is followed from the start.
"""

from __future__ import annotations

import argparse
import sys

from krec.recorder.errors import KrecError

HELP = "browse, filter and thread a recording in a terminal UI"
READS_LOGS = True
EPILOG = """\
examples:
  krec view session.krec                    browse: Enter opens a message, ? lists the keys
  krec view session.krec -f 'status:error'  start with a filter (/ edits it, Escape clears)
  krec view --follow krec-logs/python3-*.krec   keep showing the newest messages

keys: / filter, Enter detail, t threads, l timeline, f follow, r replay, ? help, q quit
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    from krec.recorder.filter import compile_filter
    from krec.recorder.log.reader import LogReader
    from krec.recorder.log.writer import being_written

    # raises LogFormatError (one line, exit 2) for a missing or foreign file
    reader = LogReader(args.log, index=False)
    try:
        if args.filter:
            compile_filter(args.filter)  # a bad filter: one line and exit 2, not a blank UI
        if not (sys.stdin.isatty() and sys.stderr.isatty()):  # Textual draws on stderr
            raise KrecError("krec view needs a terminal; use `krec show` to print records")
        follow = args.follow or being_written(args.log)
    except BaseException:
        reader.close()
        raise
    from krec.viewer.app import run_viewer

    run_viewer(reader, follow=follow, filter_text=args.filter)
    return 0
