"""Publish: write-audit-publish of the reporting mart, a DuckDB file separate from the warehouse.

``mart_staging`` copies the mart tables into a fresh file under a temporary name; the blocking
checks ``mart_staging__expectations`` and ``mart_staging__reconciliation`` audit that file; only then
``reporting_mart`` exports it to Parquet, keeps it in the version history and swaps it over the
published file with an atomic rename. BI tools read only the published file. The file operations
live in ``orchestration/publication.py`` (no Dagster there).
"""

import time

import dagster as dg
import duckdb
import pandas as pd

from orchestration.plots import MART_PLOTS, markdown_image
from orchestration.project import published_dbt_models
from orchestration.publication import (
    MartLayout,
    PublicationError,
    build_staged_mart,
    publish_staged_mart,
    verify_staged_mart,
)
from orchestration.resources import WAREHOUSE_POOL, LifecycleSettings
from orchestration.warehouse import connect, row_count

# Published table -> warehouse table: every dbt model under models/marts/, and the Python models' tables.
PYTHON_MODEL_TABLES: dict[str, str] = {"customer_clv": "ml.customer_clv", "churn_risk": "ml.churn_risk"}
MART_TABLES: dict[str, str] = dict(sorted({**published_dbt_models(), **PYTHON_MODEL_TABLES}.items()))


def mart_layout(settings: LifecycleSettings) -> MartLayout:
    return MartLayout(settings.mart_dir, settings.published_mart_path.name)


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
    try:
        counts = build_staged_mart(
            settings.warehouse_path, settings.staging_mart_path, context.run.run_id, MART_TABLES
        )
    except PublicationError as err:
        raise dg.Failure(str(err)) from err
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
    kinds={"duckdb", "parquet"},
    owners=["team:data-engineering"],
)
def reporting_mart(context: dg.AssetExecutionContext, settings: LifecycleSettings) -> dg.MaterializeResult:
    """The published reporting mart that BI tools read (read-only): the audited staged file,
    exported to Parquet, kept in the version history and swapped in atomically. A failed audit
    leaves the previously published mart (and its Parquet pointer) as it was."""
    layout = mart_layout(settings)
    started = time.perf_counter()
    try:
        verify_staged_mart(layout.staging, [*MART_TABLES, "mart_info"])
        verified = time.perf_counter() - started
        publication = publish_staged_mart(layout, context.run.run_id, settings.keep_versions)
    except PublicationError as err:
        raise dg.Failure(str(err)) from err
    seconds = {"verify": verified, **publication.seconds}
    published = publication.published
    with connect(published, read_only=True) as conn:
        counts = {table: row_count(conn, table) for table in MART_TABLES}
        (as_of_date,) = conn.execute("select as_of_date from mart_info").fetchone()
        plot_tables = _read_plot_tables(conn, context.log)
    plots = _plot_metadata(plot_tables, context.log)
    context.log.info(
        f"published {published} as version {publication.version} (as of {as_of_date}): {counts}; "
        f"Parquet {publication.parquet_snapshot}; kept {len(publication.kept_versions)} versions, "
        f"pruned {publication.pruned_versions or 'none'}; seconds: "
        + ", ".join(f"{step} {value:.3f}" for step, value in seconds.items())
    )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(published)),
            "as_of_date": str(as_of_date),
            "row_counts": dg.MetadataValue.json(counts),
            "bytes": published.stat().st_size,
            "version": publication.version,
            "version_file": dg.MetadataValue.path(str(layout.version_path(publication.version))),
            "parquet_snapshot": dg.MetadataValue.path(str(publication.parquet_snapshot)),
            "parquet_current": dg.MetadataValue.path(str(layout.parquet_pointer)),
            "kept_versions": dg.MetadataValue.json(publication.kept_versions),
            "pruned_versions": dg.MetadataValue.json(publication.pruned_versions),
            "seconds": dg.MetadataValue.json({step: round(value, 4) for step, value in seconds.items()}),
            **plots,
        }
    )


def _read_plot_tables(conn: duckdb.DuckDBPyConnection, log: dg.DagsterLogManager) -> dict[str, pd.DataFrame]:
    """The tables the plots draw, read from the published mart; a table that cannot be read is
    skipped with a warning (the mart is already published: a plot never fails the publication)."""
    frames = {}
    for table in sorted({table for table, _ in MART_PLOTS.values()}):
        try:
            # customer_clv has a row per customer (a million at scale): read only what is drawn
            columns = "clv" if table == "customer_clv" else "*"
            frames[table] = conn.execute(f"select {columns} from {table}").df()
        except duckdb.Error as err:
            log.warning(f"plots: cannot read {table} from the published mart, its plot is skipped: {err}")
    return frames


def _plot_metadata(frames: dict[str, pd.DataFrame], log: dg.DagsterLogManager) -> dict[str, dg.MetadataValue]:
    """One markdown image per plot of ``orchestration.plots.MART_PLOTS``; a plot that fails to draw
    (an empty table, a missing column) is left out with a warning."""
    metadata = {}
    for key, (table, draw) in MART_PLOTS.items():
        if table not in frames:
            continue
        try:
            metadata[key] = dg.MetadataValue.md(markdown_image(draw(frames[table]), f"{key} ({table})"))
        except Exception as err:  # a plot is a convenience: any failure is logged, never raised
            log.warning(f"plots: {key} from {table} ({len(frames[table])} rows) not drawn: {err!r}")
    return metadata
