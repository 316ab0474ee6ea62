"""Regenerate docs/cli.md from the argument parsers, so the reference never drifts.

python docs/make_cli.py            # rewrite docs/cli.md
python docs/make_cli.py --check    # exit 1 if docs/cli.md is out of date (used by a test)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from krec.recorder.cli import build_parser

HEADER = """# krec command line

Every command prints its own help with `--help`; this page is generated from
the same parsers (`python docs/make_cli.py`). A user mistake (missing file,
corrupt log, bad filter, unknown kernel) prints one line on stderr and exits
with status 2.
"""


def render() -> str:
    os.environ["COLUMNS"] = "100"
    parser = build_parser()
    parts = [HEADER, "## krec\n", "```text", parser.format_help().rstrip(), "```\n"]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub._choices_actions:
        name = action.dest
        parts += [f"## krec {name}\n", "```text", sub.choices[name].format_help().rstrip(), "```\n"]
    return "\n".join(parts)


def main() -> int:
    target = Path(__file__).with_name("cli.md")
    text = render()
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            print("docs/cli.md is out of date: run python docs/make_cli.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
