"""`krec verify`: is each log's hash chain intact, and if not, which record was changed."""

from __future__ import annotations

import argparse
import json
import sys

from krec.recorder.errors import KrecError

HELP = "check each log's hash chain; name the first record changed"
READS_LOGS = True
EPILOG = """\
examples:
  krec verify session.krec                    exit 0: intact; 1: tampered; 2: error
  krec verify --seal-key /etc/krec/seal.key krec-logs/*.krec
  krec verify s3://audit/krec/python3-20261207-053000-ab12cd34.krec    a segmented log
  krec verify --strict --json logs/*.krec     an unsealed tail also exits 1

A tail of records after the last seal (a recording that was killed) is reported
as unsealed, not as tampering; --strict makes it, and a log with no seal at all
(format version 1), exit 1 too.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("logs", metavar="LOG", nargs="+", help="a .krec log (path, folder or URL)")
    p.add_argument(
        "--seal-key",
        metavar="FILE",
        help="the key file the logs were sealed with (keyed logs need it)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per log")
    p.add_argument(
        "--strict",
        action="store_true",
        help="unsealed records (a cut-short or version-1 log) are a failure (exit 1)",
    )


def run(args: argparse.Namespace) -> int:
    from krec.recorder.log.seal import load_key, verify_log

    key = load_key(args.seal_key) if args.seal_key else None
    code = 0
    for path in args.logs:
        try:
            verdict = verify_log(path, key)
        except KrecError as e:
            print(f"krec: error: {e}", file=sys.stderr)
            code = 2
            continue
        failed = verdict.exit_code or (
            args.strict and (verdict.status == "unsealed" or verdict.sealed < verdict.records)
        )
        if args.json:
            print(json.dumps(verdict.to_json()))
        else:
            print(verdict.line())
        if failed and code == 0:
            code = 1
    return code
