"""The `krec` command line: the top parser, built from one module per command.

Each command is a module of this package with ``HELP`` (its line in `krec --help`
and its description), ``EPILOG`` (its examples), ``add_arguments(parser)`` and
``run(args) -> int``; optional: ``USAGE``, ``READS_LOGS`` (its log arguments may
be URLs or folders of segments, fetched before ``run``) and ``HIDDEN`` (left out
of `krec --help`). To add a command, copy a neighbour and list it in ``COMMANDS``.
util.py, audit.py and batch.py hold what several commands share.

A user mistake (missing file, corrupt log, bad filter, unknown kernel) is one line
on stderr and exit status 2: every KrecError is turned into that here, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from krec.recorder import __version__
from krec.recorder.cli.util import Parser, fetch_log_urls, formatter
from krec.recorder.errors import KrecError

#: every command, in the order of `krec --help`, -> its module in this package. Only the
#: module of the command being run is imported (all of them for `krec --help`), so keep
#: their top-level imports light.
COMMANDS: dict[str, str] = {
    "record": "record",
    "install": "install",
    "show": "show",
    "stats": "stats",
    "export": "export",
    "view": "view",
    "replay": "replay",
    "diff": "diff",
    "check": "check",
    "serve": "serve",
    "catalog": "catalog",
    "query": "query",
    "verify": "verify",
    "wrap": "wrap",
}

EPILOG = """\
examples:
  krec record -- jupyter lab          record every kernel JupyterLab starts
  krec show krec-logs/*.krec          one line per message
  krec view session.krec              browse, filter, thread by request
  krec replay session.krec            re-run against a fresh kernel, report divergence

run `krec COMMAND --help` for the options and examples of each command.
"""


def command_module(name: str) -> ModuleType:
    """The module of command ``name``."""
    return importlib.import_module(f"krec.recorder.cli.{COMMANDS[name]}")


def _add_command(sub: Any, name: str, command: ModuleType) -> None:
    options: dict[str, Any] = {}
    if not getattr(command, "HIDDEN", False):
        options["help"] = command.HELP  # (a parser added without help has no line)
    p = sub.add_parser(
        name,
        description=command.HELP,
        epilog=getattr(command, "EPILOG", None),
        usage=getattr(command, "USAGE", None),
        formatter_class=formatter,
        **options,
    )
    command.add_arguments(p)
    p.set_defaults(func=command.run)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for every command, or (faster) only what running ``command`` needs."""
    parser = Parser(
        prog="krec",
        description="Record, browse, check and replay Jupyter kernel sessions.",
        formatter_class=formatter,
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"krec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in [command] if command in COMMANDS else COMMANDS:
        _add_command(sub, name, command_module(name))
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    if argv[:1] == ["wrap"]:
        # a frontend appends kernel arguments (nbclient: --HistoryManager.hist_file=:memory:)
        # to the wrapper's argv; they belong to the inner kernel
        args, extra = parser.parse_known_args(argv)
        args.extra_arguments = extra
    else:
        args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        sys.exit(2)
    try:
        if getattr(command_module(args.command), "READS_LOGS", False):
            fetch_log_urls(args)
        code = args.func(args)
    except KrecError as e:
        print(f"krec: error: {e}", file=sys.stderr)
        code = 2
    except BrokenPipeError:
        # `krec show big.krec | head`: the reader went away; that is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except KeyboardInterrupt:
        print("krec: interrupted", file=sys.stderr)
        code = 128 + signal.SIGINT
    sys.exit(code)
