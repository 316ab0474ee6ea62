"""`krec query`: DuckDB in-process over a catalog's views ``sessions``, ``messages``, ``findings``.

Each view reads its dataset's Parquet files with Hive partitioning (``date`` is a
DATE column). A catalog in a bucket is read through its fsspec filesystem
registered with DuckDB, so nothing is downloaded (no httpfs extension). A dataset
with no file yet (no findings at all) is an empty view with the right columns.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from krec.recorder.catalog.schema import DATASETS, PARTITION, arrow_schema
from krec.recorder.catalog.writer import STATE_FILE, Catalog
from krec.recorder.errors import KrecError
from krec.recorder.log.storage import StorageError, describe_error, redact_url


class QueryError(KrecError):
    """The SQL does not run over the catalog."""


def connect(location: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the catalog's views defined."""
    catalog = _open(location)
    con = duckdb.connect(":memory:")
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(catalog.fs, LocalFileSystem):
        prefix = catalog.root
    else:
        con.register_filesystem(catalog.fs)
        protocol = catalog.fs.protocol
        prefix = f"{protocol[0] if isinstance(protocol, tuple) else protocol}://{catalog.root}"
    for dataset in DATASETS:
        try:
            has_files = bool(catalog.fs.glob(catalog.path(dataset, "date=*", "*.parquet")))
        except Exception as e:
            raise StorageError(describe_error(location, e)) from None
        if has_files:
            glob = _quote(f"{prefix}/{dataset}/date=*/*.parquet")
            con.execute(
                f"CREATE VIEW {dataset} AS SELECT * FROM read_parquet({glob}, "
                "hive_partitioning = true, union_by_name = true)"
            )
        else:
            schema = arrow_schema(dataset).append(pa.field(PARTITION[0], pa.date32()))
            con.register(dataset, schema.empty_table())
    return con


def _open(location: str) -> Catalog:
    catalog = Catalog(location)
    try:
        found = catalog.fs.exists(catalog.path(STATE_FILE)) or catalog.fs.exists(
            catalog.path("sessions")
        )
    except Exception as e:
        raise StorageError(describe_error(location, e)) from None
    if not found:
        raise QueryError(
            f"{redact_url(location)}: not a krec catalog (no sessions/ dataset; "
            "make one with krec catalog LOG... -o CATALOG)"
        )
    return catalog


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def run_query(location: str, sql: str) -> pa.Table:
    """Run ``sql`` over the catalog at ``location``; the result as an Arrow table."""
    con = connect(location)
    try:
        relation = con.sql(sql)
        if relation is None:
            return pa.table({})
        fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
        return fetch()
    except duckdb.Error as e:
        raise QueryError(f"query failed: {_first_line(e)}") from None
    finally:
        con.close()


def select_locations(location: str, where: str) -> list[str]:
    """The locations of the sessions matching the SQL condition ``where``, oldest first."""
    table = run_query(location, f"SELECT location FROM sessions WHERE ({where}) ORDER BY start")
    return [str(v) for v in table.column("location").to_pylist()]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    # DuckDB: "Parser Error: syntax error at or near "x"" then LINE 1: ...
    return lines[0]


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """The result as one dict per row (for JSON)."""
    return table.to_pylist()
