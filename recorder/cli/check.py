"""`krec check`: the command line over run_checks (text or JSON report, exit status by severity)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from krec.recorder.cli.batch import BATCH_HELP, add_batch_arguments, is_batch, run_batch_command
from krec.recorder.cli.util import Progress
from krec.recorder.errors import KrecError

HELP = "report every messaging-spec violation in a recording"
READS_LOGS = True
EPILOG = """\
examples:
  krec check session.krec                      every violation, one line each
  krec check session.krec --json | jq '.findings[] | select(.severity == "error")'
  krec check session.krec --ignore stdin-reply-parent --ignore 'output-*'
  krec check session.krec --rule comms --rule execution-count
  krec check --list                            the rules (docs/check.md explains each)
  krec check krec-logs/ s3://team/logs/        many logs in parallel, one line per log
  krec check --catalog cat --where "kernel_version = '7.0.1'" --scheduler tcp://dask:8786

exit status: 0 no errors (warnings alone are fine unless --strict), 1 errors found
(or warnings with --strict), 2 the log cannot be read or the arguments are wrong.
""" + BATCH_HELP.format(bad="violations")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "logs", nargs="*", metavar="LOG", help="the .krec log to check (or many: batch mode)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    p.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="ID",
        help="check only these rules: ids, globs or family names; repeat or comma-separate",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="ID",
        help="skip these rules (same forms as --rule)",
    )
    p.add_argument("--list", action="store_true", help="list the rules and exit")
    p.add_argument("--strict", action="store_true", help="exit 1 when there are warnings too")
    p.add_argument(
        "--kernel-info-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="slow-kernel-info: warn when a kernel_info_reply takes longer (default 10)",
    )
    p.add_argument(
        "--idle-grace",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="status-idle: how long the log must go on after a reply with no idle (default 1)",
    )
    add_batch_arguments(p)


def _split(values: list[str]) -> list[str]:
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    from krec.recorder.check import CheckOptions, resolve_rule_ids
    from krec.recorder.check.runner import check_log

    rules = resolve_rule_ids(_split(args.rule), _split(args.ignore))
    if args.list:
        return _list(rules, args.json)
    if is_batch(args, args.logs):
        return _run_batch(args, _split(args.rule), _split(args.ignore))
    if not args.logs:
        raise KrecError("give a LOG to check (or --list to see the rules)")
    args.log = args.logs[0]
    from krec.recorder.log.reader import LogReader

    options = CheckOptions(kernel_info_timeout=args.kernel_info_timeout, idle_grace=args.idle_grace)
    with LogReader(args.log) as reader:
        for warning in reader.warnings:
            print(f"krec: warning: {args.log}: {warning}", file=sys.stderr)
        with Progress("checking", len(reader)) as progress:
            checker = check_log(reader, rules, options, progress=progress.update, helper=True)
        findings = checker.findings
        errors = sum(f.severity == "error" for f in findings)
        warnings = len(findings) - errors
        summary = {
            "records": len(reader),
            "rules": [r.id for r in rules],
            "protocol": checker.protocol(),
            "errors": errors,
            "warnings": warnings,
        }
        if args.json:
            document = {
                "log": args.log,
                **summary,
                "log_warnings": list(reader.warnings),
                "findings": [f.to_json() for f in findings],
            }
            json.dump(document, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            out = sys.stdout
            for f in findings:
                out.write(f.line() + "\n")
            from krec.recorder.check.runner import summary_line

            out.write(summary_line(summary) + "\n")
    if errors or (warnings and args.strict):
        return 1
    return 0


def _run_batch(args: argparse.Namespace, select: list[str], ignore: list[str]) -> int:
    from krec.recorder.catalog.batch import check_one
    from krec.recorder.check import resolve_rule_ids

    resolve_rule_ids(select, ignore)  # a bad rule id is exit 2 before any cluster starts
    options = {"kernel_info_timeout": args.kernel_info_timeout, "idle_grace": args.idle_grace}
    task_args = [select, ignore, options, args.strict]
    return run_batch_command(args, check_one, task_args, "checking", "violations")


def _list(rules: list[Any], as_json: bool) -> int:
    if as_json:
        data = [
            {
                "id": r.id,
                "family": r.family,
                "severity": r.severity,
                "summary": r.summary,
                "help": r.help,
                "spec": r.spec_url(),
            }
            for r in rules
        ]
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    width = max(len(r.id) for r in rules)
    family = ""
    for r in rules:
        if r.family != family:
            family = r.family
            sys.stdout.write(f"{family}:\n")
        sys.stdout.write(f"  {r.id:<{width}}  {r.severity:<7}  {r.summary}\n")
    return 0
