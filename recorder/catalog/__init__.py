"""The catalog: logs as Parquet datasets (writer), SQL over them (query), batch runs (batch).

Importing this package is cheap: pyarrow, DuckDB and Dask (the ``catalog`` extra)
are imported by the modules that need them.
"""
