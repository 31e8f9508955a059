"""Ingest: landing files -> raw schema of the warehouse, one asset per source."""

import datetime as dt
import time
from pathlib import Path

import dagster as dg

from orchestration.resources import WAREHOUSE_POOL, LifecycleSettings
from orchestration.warehouse import connect, row_count

RAW_SCHEMA = "raw"

SOURCES: dict[str, str] = {
    "users": "User sign-ups (one row per user) from the app database export.",
    "events": "Behaviour events (one row per event) from the event collector.",
    "transactions": "Orders and refunds (one row per transaction) from the payment system.",
}


def landing_files(landing_dir: Path, source: str) -> list[Path]:
    """The Parquet files of one source: <landing>/<source>/<YYYY-MM-DD>/*.parquet, sorted."""
    return sorted((landing_dir / source).glob("*/*.parquet"))


def load_source(settings: LifecycleSettings, source: str) -> dict[str, object]:
    """Replace raw.<source> with the rows of every landing file of the source, with provenance."""
    landing_dir = Path(settings.landing_dir)
    files = landing_files(landing_dir, source)
    if not files:
        raise dg.Failure(
            f"No landing files for source '{source}' under {landing_dir / source} "
            "(expected <source>/<YYYY-MM-DD>/*.parquet). Generate the demo data with "
            "`lifecycle generate` or point LIFECYCLE_LANDING_DIR at your landing folder."
        )
    started = time.perf_counter()
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    file_list = [str(path) for path in files]
    with connect(settings.warehouse_path) as conn:
        conn.execute(f"create schema if not exists {RAW_SCHEMA}")
        conn.execute(
            f"""
            create or replace table {RAW_SCHEMA}.{source} as
            select
                * exclude (filename),
                substr(filename, length($landing) + 2) as _source_file,
                cast($loaded_at as timestamp) as _loaded_at
            from read_parquet($files, filename = true, union_by_name = true)
            """,
            {"files": file_list, "landing": str(landing_dir), "loaded_at": loaded_at},
        )
        rows = row_count(conn, f"{RAW_SCHEMA}.{source}")
        columns = [name for name, *_ in conn.execute(f"describe {RAW_SCHEMA}.{source}").fetchall()]
    return {
        "dagster/row_count": rows,
        "files": len(files),
        "columns": ", ".join(columns),
        "landing_dir": str(landing_dir / source),
        "seconds": round(time.perf_counter() - started, 3),
    }


def build_raw_asset(source: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=[RAW_SCHEMA, source],
        group_name="ingest",
        kinds={"python", "duckdb"},
        pool=WAREHOUSE_POOL,
        owners=["team:data-engineering"],
        description=f"{description} Loaded from the landing folder into {RAW_SCHEMA}.{source}.",
    )
    def _raw_asset(context: dg.AssetExecutionContext, settings: LifecycleSettings) -> dg.MaterializeResult:
        metadata = load_source(settings, source)
        context.log.info(
            f"raw.{source}: {metadata['dagster/row_count']:,} rows from {metadata['files']} files "
            f"in {metadata['seconds']} s"
        )
        return dg.MaterializeResult(metadata=metadata)

    return _raw_asset


raw_assets = [build_raw_asset(source, description) for source, description in SOURCES.items()]
