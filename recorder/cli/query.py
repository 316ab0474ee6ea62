"""`krec query`: run SQL (DuckDB) over a catalog (catalog/query.py), print the rows.

Rows print as an aligned text table (long cells cut), ``--json`` (an array of
objects) or ``--csv`` (with a header line).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
from typing import Any

from krec.recorder.cli.batch import require_extra

HELP = "run SQL (DuckDB) over a catalog"
EPILOG = """\
examples:
  krec query catalog/ "SELECT kernel_name, count(*) FROM sessions GROUP BY ALL"
  krec query catalog/ "SELECT msg_type, median(latency_ms) FROM messages
                       WHERE latency_ms IS NOT NULL GROUP BY ALL ORDER BY 2 DESC" --csv
  krec query s3://team/catalog/ "SELECT rule, count(*) FROM findings GROUP BY ALL" --json

views: sessions, messages, findings (columns: docs/catalog.md); DuckDB SQL.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("catalog", metavar="CATALOG", help="the catalog folder or URL")
    p.add_argument("sql", metavar="SQL", help="a query over sessions, messages, findings")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a JSON array of rows")
    fmt.add_argument("--csv", action="store_true", help="print CSV with a header line")


def run(args: argparse.Namespace) -> int:
    require_extra("duckdb", "krec query")
    from krec.recorder.catalog.query import run_query

    table = run_query(args.catalog, args.sql)
    names = table.column_names
    rows = table.to_pylist()
    out = sys.stdout
    if args.json:
        json.dump(rows, out, indent=1, default=_jsonable)
        out.write("\n")
    elif args.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([_text(row[n]) for n in names])
    else:
        out.write(render_table(names, rows))
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, default=_jsonable)
    return str(value)


def render_table(names: list[str], rows: list[dict[str, Any]], limit: int = 60) -> str:
    """An aligned text table; long cells are cut at ``limit`` characters."""
    from krec.recorder.log.oneline import one_line

    cells = [[one_line(_text(r[n]), limit) for n in names] for r in rows]
    widths = [max([len(n)] + [len(c[i]) for c in cells]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines) + "\n"
