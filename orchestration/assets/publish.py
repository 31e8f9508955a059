"""Publish: write-audit-publish of the reporting mart, a DuckDB file separate from the warehouse.

``mart_staging`` copies the mart tables into a fresh file under a temporary name; the blocking
check ``mart_staging__expectations`` audits that file; only then ``reporting_mart`` swaps it over
the published file with an atomic rename. BI tools read only the published file.
"""

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.project import published_dbt_models
from orchestration.resources import WAREHOUSE_POOL, LifecycleSettings
from orchestration.warehouse import connect, row_count

# Published table -> warehouse table: every dbt model under models/marts/, and the Python models' tables.
PYTHON_MODEL_TABLES: dict[str, str] = {"customer_clv": "ml.customer_clv", "churn_risk": "ml.churn_risk"}
MART_TABLES: dict[str, str] = dict(sorted({**published_dbt_models(), **PYTHON_MODEL_TABLES}.items()))
# DuckDB releases before 2.0 (which many BI drivers embed) cannot read a 2.0 file: write v1.4.
MART_STORAGE_VERSION = "v1.4.0"


def remove_duckdb_file(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + ".wal")):
        candidate.unlink(missing_ok=True)


def build_staged_mart(
    warehouse_path: Path, staged_path: Path, run_id: str, tables: Mapping[str, str] = MART_TABLES
) -> dict[str, int]:
    """Copy the mart tables from the warehouse into a new DuckDB file; return row counts."""
    staged_path.parent.mkdir(parents=True, exist_ok=True)
    remove_duckdb_file(staged_path)
    counts: dict[str, int] = {}
    if not warehouse_path.exists():
        raise dg.Failure(f"No warehouse at {warehouse_path}: materialise the upstream assets first")
    with duckdb.connect() as conn:
        conn.execute(f"attach '{warehouse_path}' as warehouse (read_only)")
        conn.execute(f"attach '{staged_path}' as mart (storage_version '{MART_STORAGE_VERSION}')")
        for table, source in tables.items():
            conn.execute(f"create table mart.main.{table} as select * from warehouse.{source}")
            counts[table] = row_count(conn, f"mart.main.{table}")
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
    return counts


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def swap_in(staged_path: Path, published_path: Path) -> None:
    """Atomically replace the published file with the audited staged file.

    Readers that reconnect see the new version; readers holding a connection keep the old one.
    """
    published_path.parent.mkdir(parents=True, exist_ok=True)
    if staged_path.with_name(staged_path.name + ".wal").exists():
        raise dg.Failure(f"{staged_path} has a write-ahead log: it was not checkpointed; not publishing")
    _fsync(staged_path)
    # A stale .wal beside the published file would make the swapped-in file refuse to open.
    published_path.with_name(published_path.name + ".wal").unlink(missing_ok=True)
    os.replace(staged_path, published_path)
    _fsync(published_path.parent)


@dg.asset(
    key="mart_staging",
    deps=[dg.AssetKey(table) for table in MART_TABLES],
    group_name="publish",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    owners=["team:data-engineering"],
)
def mart_staging(context: dg.AssetExecutionContext, settings: LifecycleSettings) -> dg.MaterializeResult:
    """The candidate reporting mart: the mart tables copied into a new DuckDB file (storage v1.4.0)
    under a temporary name, waiting for the blocking audit before it is published."""
    counts = build_staged_mart(settings.warehouse_path, settings.staging_mart_path, context.run.run_id)
    context.log.info(f"staged mart {settings.staging_mart_path}: {counts}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(settings.staging_mart_path)),
            "row_counts": dg.MetadataValue.json(counts),
        }
    )


@dg.asset(
    key="reporting_mart",
    deps=[dg.AssetKey("mart_staging")],
    group_name="publish",
    kinds={"duckdb"},
    owners=["team:data-engineering"],
)
def reporting_mart(context: dg.AssetExecutionContext, settings: LifecycleSettings) -> dg.MaterializeResult:
    """The published reporting mart that BI tools read (read-only): the audited staged file,
    swapped in atomically. A failed audit leaves the previously published mart as it was."""
    staged, published = settings.staging_mart_path, settings.published_mart_path
    if not staged.exists():
        raise dg.Failure(f"No staged mart at {staged}: materialise mart_staging first")
    swap_in(staged, published)
    with connect(published, read_only=True) as conn:
        counts = {table: row_count(conn, table) for table in MART_TABLES}
        (as_of_date,) = conn.execute("select as_of_date from mart_info").fetchone()
    context.log.info(f"published {published} (as of {as_of_date}): {counts}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(published)),
            "as_of_date": str(as_of_date),
            "row_counts": dg.MetadataValue.json(counts),
            "bytes": published.stat().st_size,
        }
    )
