"""Stage and audit: the candidate mart file built from the warehouse (or from Arrow tables), checked
as a file before the data-level audit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import duckdb
import pyarrow as pa

from orchestration.publishing.files import (
    remove_duckdb_file,
    wal_path,
)
from orchestration.publishing.layout import (
    MART_STORAGE_VERSION,
    PublicationError,
)

# ------------------------------------------------------------------------------ stage and audit


def build_staged_mart(
    warehouse_path: Path, staged_path: Path, run_id: str, tables: Mapping[str, str]
) -> dict[str, int]:
    """Copy the mart tables (published name -> warehouse table) from the warehouse into a new DuckDB
    file in storage version ``MART_STORAGE_VERSION``, plus ``mart_info``; return row counts.

    A candidate (or its ``.wal``) left by an earlier, interrupted run is removed first.
    """
    if not warehouse_path.exists():
        raise PublicationError(f"No warehouse at {warehouse_path}: materialise the upstream assets first")
    staged_path.parent.mkdir(parents=True, exist_ok=True)
    remove_duckdb_file(staged_path)
    counts: dict[str, int] = {}
    with duckdb.connect() as conn:
        # paths are parameters, never pasted into the SQL (a folder name may hold a quote)
        conn.execute("attach ? as warehouse (read_only)", [str(warehouse_path)])
        conn.execute(f"attach ? as mart (storage_version '{MART_STORAGE_VERSION}')", [str(staged_path)])
        for table, source in tables.items():
            conn.execute(f"create table mart.main.{table} as select * from warehouse.{source}")
            counts[table] = int(conn.execute(f"select count(*) from mart.main.{table}").fetchone()[0])
        write_mart_info(conn, run_id)
    return counts


def build_staged_mart_from_arrow(
    read_table: Callable[[str], pa.Table],
    staged_path: Path,
    run_id: str,
    tables: Mapping[str, str],
    column_order: Mapping[str, list[str]] | None = None,
) -> dict[str, int]:
    """``build_staged_mart`` for a warehouse on another engine (Spark): each mart table (published
    name -> warehouse table) is pulled whole as Arrow by ``read_table`` and written into the new DuckDB
    file, its columns in the order of ``column_order`` where given (the dbt contract's order; Spark
    stores partition columns last). The mart tables are aggregates and one row per user, so they fit
    on the publishing machine even when the facts behind them need a cluster."""
    column_order = column_order or {}
    staged_path.parent.mkdir(parents=True, exist_ok=True)
    remove_duckdb_file(staged_path)
    counts: dict[str, int] = {}
    with duckdb.connect() as conn:
        # each result fetched to the end: DuckDB 2.0 refuses register() while one is unfinished
        conn.execute(
            f"attach ? as mart (storage_version '{MART_STORAGE_VERSION}')", [str(staged_path)]
        ).fetchall()
        for table, source in tables.items():
            pulled = read_table(source)
            if table in column_order:
                pulled = pulled.select(column_order[table])
            conn.register("pulled", pulled)
            conn.execute(f"create table mart.main.{table} as select * from pulled").fetchall()
            conn.unregister("pulled")
            counts[table] = int(conn.execute(f"select count(*) from mart.main.{table}").fetchall()[0][0])
        write_mart_info(conn, run_id)
    return counts


def write_mart_info(conn: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """``mart_info`` (as-of date, run id, build time) in the attached ``mart``, then detach it."""
    (as_of_date,) = conn.execute("select max(as_of_date) from mart.main.dim_users").fetchone()
    conn.execute(
        "create table mart.main.mart_info as select "
        "cast($as_of as date) as as_of_date, cast($run_id as varchar) as run_id, "
        "cast($built_at as timestamp) as built_at",
        {
            "as_of": as_of_date,
            "run_id": run_id,
            "built_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        },
    )
    conn.execute("checkpoint mart")
    conn.execute("detach mart")


def verify_staged_mart(staged_path: Path, tables: Iterable[str]) -> dict[str, int]:
    """The file-level audit of the candidate: it exists, has no write-ahead log, opens read-only and
    holds every table and one ``mart_info`` row. Returns row counts per table.

    (The data-level audit, the Great Expectations suites and reconciliation rules, runs in the
    blocking Dagster checks on the same file.)
    """
    if not staged_path.exists():
        raise PublicationError(f"No staged mart at {staged_path}: materialise mart_staging first")
    if wal_path(staged_path).exists():
        raise PublicationError(
            f"{staged_path} has a write-ahead log: it was not checkpointed; not publishing. "
            "Rebuild it (materialise mart_staging)."
        )
    with duckdb.connect(str(staged_path), read_only=True) as conn:
        present = {name for (name,) in conn.execute("select table_name from duckdb_tables()").fetchall()}
        missing = sorted(set(tables) - present)
        if missing:
            raise PublicationError(f"staged mart {staged_path} lacks the tables {missing}: not publishing")
        counts = {
            name: int(conn.execute(f"select count(*) from {name}").fetchone()[0]) for name in sorted(present)
        }
    if counts.get("mart_info") != 1:
        raise PublicationError(f"staged mart {staged_path}: mart_info must hold exactly one row")
    return counts
