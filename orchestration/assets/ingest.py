"""Ingest: landing files -> raw schema of the warehouse, one asset per source, day by day.

The work is in ``orchestration/landing/`` (no Dagster there): each (source, day) partition
whose files are new or changed is reloaded in one transaction, rows that break the landing
contract go to raw.quarantine, unchanged days are skipped.
"""

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.landing.loader import ingest_source
from orchestration.landing.raw_parquet import export_raw_parquet
from orchestration.landing.reports import SourceReport
from orchestration.landing.tables import RAW_SCHEMA, ensure_raw_tables
from orchestration.partitions import (
    daily_partitions,
    days_between,
    last_complete_day,
    last_loadable_day,
    single_run,
    window_of,
)
from orchestration.resources import WAREHOUSE_POOL, LifecycleSettings
from orchestration.warehouse import REBUILD_HINT, DamagedDatabaseError, connect, is_damage, row_count

SOURCES: dict[str, str] = {
    "users": "User sign-ups (one row per user) from the app database export.",
    "events": "Behaviour events (one row per event) from the event collector.",
    "transactions": "Orders and refunds (one row per transaction) from the payment system.",
}


@contextlib.contextmanager
def _open_warehouse(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse, read-write; a damaged file fails the step with a message naming it and saying
    how to rebuild it from the landing files."""
    try:
        with connect(path) as conn:
            yield conn
    except DamagedDatabaseError as err:
        raise dg.Failure(f"{err}. {REBUILD_HINT}") from err
    except duckdb.Error as err:
        if is_damage(err):
            raise dg.Failure(f"{DamagedDatabaseError(path, err)}. {REBUILD_HINT}") from err
        raise


def summarize(report: SourceReport) -> str:
    totals = report.totals
    return (
        f"raw.{report.source}: {len(report.loaded)} days loaded, {len(report.unchanged)} unchanged, "
        f"{len(report.failed)} failed; {totals['rows_read']:,} rows read, {totals['rows_loaded']:,} loaded, "
        f"{totals['rows_quarantined']:,} quarantined"
    )


def build_raw_asset(source: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=[RAW_SCHEMA, source],
        group_name="ingest",
        kinds={"python", "duckdb", "great_expectations"},
        pool=WAREHOUSE_POOL,
        partitions_def=daily_partitions,
        backfill_policy=single_run,
        owners=["team:data-engineering"],
        description=(
            f"{description} Partitioned by landing day: a run loads the days of its window from "
            f"<landing>/{source}/<YYYY-MM-DD>/ into {RAW_SCHEMA}.{source}; new or re-delivered days "
            f"replace their rows, unchanged days are skipped, bad rows go to {RAW_SCHEMA}.quarantine "
            "with the rule that failed."
        ),
    )
    def _raw_asset(context: dg.AssetExecutionContext, settings: LifecycleSettings) -> dg.MaterializeResult:
        started = time.perf_counter()
        landing_dir = Path(settings.landing_dir)
        if not landing_dir.is_dir():
            raise dg.Failure(
                f"Landing folder {landing_dir} does not exist. Run `lifecycle generate` for the demo data "
                "or point LIFECYCLE_LANDING_DIR at your landing folder."
            )
        window = window_of(context)
        days = days_between(*window) if window else None
        # Day folders after the as-of date (or after the last complete day) wait for a later run.
        until = last_loadable_day(settings.parsed_as_of_date())
        until = max(until, window[1]) if window else until
        loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with _open_warehouse(settings.warehouse_path) as conn:
            ensure_raw_tables(conn)
            report = ingest_source(
                conn,
                landing_dir,
                source,
                loaded_at=loaded_at,
                partitions=days,
                currency=settings.currency,
                until=until,
            )
            rows = row_count(conn, f"{RAW_SCHEMA}.{source}")
            if settings.dbt_target == "spark":
                # dbt on Spark reads the raw rows from Parquet files (macros/portable/raw_source.sql):
                # rewrite the days this run loaded, and any loaded day whose file is missing
                exported = export_raw_parquet(
                    conn, settings.raw_parquet_path, source, [p.partition_date for p in report.loaded]
                )
                exported += export_raw_parquet(conn, settings.raw_parquet_path, source)
                context.log.info(
                    f"raw.{source}: {len(exported)} day file(s) written under {settings.raw_parquet_path}"
                )
        seconds = round(time.perf_counter() - started, 3)
        span = f"days {window[0]} to {window[1]}" if window else "every landed day"
        context.log.info(f"{summarize(report)} ({span}) in {seconds} s; raw.{source} holds {rows:,} rows")
        if report.missing_partitions:
            missing = report.missing_partitions
            shown = ", ".join(day.isoformat() for day in missing[:5]) + (" ..." if len(missing) > 5 else "")
            context.log.warning(
                f"{len(missing)} day(s) of the window have no landing files under "
                f"{landing_dir / source}: {shown}"
            )
        if report.later_partitions:
            later = ", ".join(f"{source}/{day.isoformat()}/" for day in report.later_partitions)
            # the folder of the day in progress is expected; one dated after it is a mistake
            expected = report.later_partitions == [last_complete_day() + dt.timedelta(days=1)]
            (context.log.info if expected else context.log.warning)(
                f"{len(report.later_partitions)} day folder(s) dated after {until} are left for a later run "
                f"(not loaded): {later}"
            )
        if report.ignored_paths:
            ignored = "; ".join(f"{entry.path} ({entry.reason})" for entry in report.ignored_paths[:10])
            more = f"; and {len(report.ignored_paths) - 10} more" if len(report.ignored_paths) > 10 else ""
            context.log.warning(
                f"{len(report.ignored_paths)} path(s) under {landing_dir / source} are not read: "
                f"{ignored}{more}"
            )
        metadata = {
            "dagster/row_count": rows,
            "seconds": seconds,
            "landing_dir": str(landing_dir / source),
            "window": span,
            "ingestion": dg.MetadataValue.json(report.to_metadata()),
        }
        if report.failed:
            problems = "\n".join(f"  {partition.error}" for partition in report.failed)
            raise dg.Failure(
                description=(
                    f"{len(report.failed)} day(s) of {source} were not loaded (their previous rows are kept; "
                    f"the other days loaded):\n{problems}"
                ),
                metadata=metadata,
            )
        return dg.MaterializeResult(metadata=metadata)

    return _raw_asset


raw_assets = [build_raw_asset(source, description) for source, description in SOURCES.items()]
