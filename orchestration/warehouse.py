"""Small helpers around DuckDB files: one place that opens them."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if read_only and not path.exists():
        raise FileNotFoundError(f"DuckDB file {path} does not exist: materialise the upstream assets first")
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


def read_table(path: Path, table: str) -> pd.DataFrame:
    """Read a whole table into pandas (what the Great Expectations suites validate)."""
    with connect(path, read_only=True) as conn:
        return conn.sql(f"select * from {table}").df()


def row_count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(conn.execute(f"select count(*) from {table}").fetchone()[0])
