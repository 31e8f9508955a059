"""Small helpers around DuckDB files: one place that opens them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if read_only and not path.exists():
        raise FileNotFoundError(f"DuckDB file {path} does not exist: materialise the upstream assets first")
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


def row_count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


def write_frames(
    path: Path, schema: str, frames: Mapping[str, pd.DataFrame], *, sort_rows: bool = False
) -> None:
    """Replace ``schema.<name>`` by each DataFrame, all in one transaction (what the Python model
    assets write back). pandas holds dates as datetimes: the ``*_date`` columns are stored as DATE,
    like the dbt models' dates. ``sort_rows`` stores the rows in sorted order (deterministic files)."""
    with connect(path) as conn:
        conn.execute(f"create schema if not exists {schema}")
        conn.execute("begin transaction")
        for name, frame in frames.items():
            conn.register("frame", frame)
            columns = ", ".join(
                f'cast("{c}" as date) as "{c}"' if str(c).endswith("_date") else f'"{c}"'
                for c in frame.columns
            )
            order = " order by all" if sort_rows else ""
            conn.execute(f"create or replace table {schema}.{name} as select {columns} from frame{order}")
            conn.unregister("frame")
        conn.execute("commit")
