"""`krec catalog`: write logs into a Parquet catalog, incrementally (catalog/writer.py)."""

from __future__ import annotations

import argparse
import sys

from krec.recorder.cli.batch import require_extra
from krec.recorder.cli.util import Progress

HELP = "write logs into a Parquet catalog (incremental)"
EPILOG = """\
examples:
  krec catalog krec-logs/ -o catalog/           every log under krec-logs, into ./catalog
  krec catalog s3://team/krec-logs/ -o s3://team/catalog/
  krec catalog a.krec b.krec -o catalog/        again later: adds new logs, replaces changed ones

The catalog is Parquet (sessions/, messages/, findings/, Hive-partitioned by date):
DuckDB, Spark, Trino, Polars and pandas read it as it is (docs/catalog.md).
exit status: 0 every log catalogued, 2 some log could not be read (the others are).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("logs", nargs="+", metavar="LOG", help="logs, folders of logs or URLs")
    p.add_argument("-o", "--output", required=True, metavar="CATALOG", help="a folder or URL")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")


def run(args: argparse.Namespace) -> int:
    require_extra("pyarrow", "krec catalog")
    from krec.recorder.catalog.writer import build_catalog

    with Progress("cataloguing") as progress:

        def told(location: str, what: str) -> None:
            progress.done()
            if what.startswith("error: "):
                print(f"krec: error: {location}: {what[7:]}", file=sys.stderr)
            elif not args.quiet:
                print(f"{location}: {what}")

        result = build_catalog(args.logs, args.output, on_log=told, progress=progress.update)
    for location, warning in result.warnings:
        print(f"krec: warning: {location}: {warning}", file=sys.stderr)
    if not args.quiet:
        print(
            f"{len(result.added)} added, {len(result.replaced)} replaced, "
            f"{len(result.unchanged)} unchanged, {len(result.failed)} failed "
            f"({result.messages} messages written) -> {args.output}",
            file=sys.stderr,
        )
    return 2 if result.failed else 0
