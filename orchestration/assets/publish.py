"""Publish: write-audit-publish of the reporting mart, a DuckDB file separate from the warehouse.

``mart_staging`` copies the mart tables into a fresh file under a temporary name; the blocking
checks ``mart_staging__expectations`` and ``mart_staging__reconciliation`` audit that file; only then
``reporting_mart`` exports it to Parquet, keeps it in the version history and swaps it over the
published file with an atomic rename. BI tools read only the published file. The file operations
live in ``orchestration/publishing/`` (no Dagster there).

With every publication ``reporting_mart`` also draws the plots of the published mart into its
metadata and writes a self-contained HTML report of the version (``orchestration/mart_report.py``)
to ``<data dir>/mart/reports/<version>.html`` and ``latest.html``; the report's model plots come
from the models' evaluation tables, which ``mart_staging`` saves beside the staged file (read in the
same step as the mart tables, so they belong to the same data). Neither can fail the publication.
"""

import contextlib
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from orchestration.mart_report import render_mart_report, write_mart_report
from orchestration.plots import MART_PLOTS, MODEL_PLOTS, draw_plots, markdown_image
from orchestration.project import published_dbt_columns, published_dbt_models
from orchestration.publishing.layout import MartLayout, PublicationError
from orchestration.publishing.staging import (
    build_staged_mart,
    build_staged_mart_from_arrow,
    verify_staged_mart,
)
from orchestration.publishing.versions import publish_staged_mart
from orchestration.resources import WAREHOUSE_POOL, LifecycleSettings
from orchestration.warehouse import connect, row_count

# Published table -> warehouse table: every dbt model under models/marts/, and the Python models' tables.
PYTHON_MODEL_TABLES: dict[str, str] = {"customer_clv": "ml.customer_clv", "churn_risk": "ml.churn_risk"}
MART_TABLES: dict[str, str] = dict(sorted({**published_dbt_models(), **PYTHON_MODEL_TABLES}.items()))
# Model evaluation table (report name -> warehouse table): the report's model plots, not published.
MODEL_EVALUATION_TABLES: dict[str, str] = {
    "customer_clv_holdout": "ml.customer_clv_holdout",
    "churn_risk_evaluation": "ml.churn_risk_evaluation",
}
MODEL_EVALUATION_FILE = "model_evaluation.json"


FRESHNESS_HOURS_ENV = "LIFECYCLE_FRESHNESS_HOURS"


def mart_freshness_policy() -> dg.FreshnessPolicy:
    """The published mart is expected once a day: it warns after 24 hours without a publication and
    fails after ``LIFECYCLE_FRESHNESS_HOURS`` (default 26: a day plus two hours for the run)."""
    value = os.environ.get(FRESHNESS_HOURS_ENV) or "26"
    try:
        hours = float(value)
    except ValueError as err:
        raise ValueError(f"{FRESHNESS_HOURS_ENV}={value!r} is not a number of hours, e.g. 26") from err
    if hours <= 1:
        raise ValueError(f"{FRESHNESS_HOURS_ENV}={value!r}: give more than 1 hour")
    fail = dt.timedelta(hours=hours)
    warn = min(dt.timedelta(hours=24), fail - dt.timedelta(hours=1))
    return dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn)


def mart_layout(settings: LifecycleSettings) -> MartLayout:
    return MartLayout(settings.mart_dir, settings.published_mart_path.name)


def reports_dir(settings: LifecycleSettings) -> Path:
    """Where the HTML report of each published version goes: ``<data dir>/mart/reports``."""
    return Path(settings.mart_dir) / "reports"


def model_evaluation_path(settings: LifecycleSettings) -> Path:
    return settings.staging_mart_path.parent / MODEL_EVALUATION_FILE


@dg.asset(
    key="mart_staging",
    # fct_user_days is partitioned by day: the mart holds its latest state
    deps=[dg.AssetDep(table, partition_mapping=dg.LastPartitionMapping()) for table in MART_TABLES],
    group_name="publish",
    kinds={"duckdb", "great_expectations"},
    pool=WAREHOUSE_POOL,
    owners=["team:data-engineering"],
)
def mart_staging(context: dg.AssetExecutionContext, settings: LifecycleSettings) -> dg.MaterializeResult:
    """The candidate reporting mart: the mart tables copied into a new DuckDB file (storage v1.4.0)
    under a temporary name, waiting for the blocking audit before it is published."""
    try:
        if settings.dbt_target == "duckdb":
            counts = build_staged_mart(
                settings.warehouse_path, settings.staging_mart_path, context.run.run_id, MART_TABLES
            )
        else:
            # a warehouse on Spark: the mart tables (aggregates, one row per user) are pulled whole
            counts = build_staged_mart_from_arrow(
                settings.warehouse().arrow,
                settings.staging_mart_path,
                context.run.run_id,
                MART_TABLES,
                published_dbt_columns(),
            )
    except PublicationError as err:
        raise dg.Failure(str(err)) from err
    context.log.info(f"staged mart {settings.staging_mart_path}: {counts}")
    _save_model_evaluation(settings, context.run.run_id, context.log)
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
    freshness_policy=mart_freshness_policy(),
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
        cursor = conn.execute("select * from mart_info")
        info = dict(zip([column for column, *_ in cursor.description], cursor.fetchone(), strict=True))
        as_of_date = info["as_of_date"]
        plot_tables = _read_plot_tables(conn, context.log)
        model_status = _read_model_status(conn, context.log)
    started = time.perf_counter()
    images, problems = _draw_mart_plots(plot_tables, context.log)
    seconds["plots"] = time.perf_counter() - started
    started = time.perf_counter()
    report = _write_report(
        settings,
        info=info,
        version=publication.version,
        kept_versions=publication.kept_versions,
        row_counts=counts,
        images=images,
        problems=problems,
        rpt_kpis=plot_tables.get("rpt_kpis"),
        model_status=model_status,
        log=context.log,
    )
    seconds["report"] = time.perf_counter() - started
    context.log.info(
        f"published {published} as version {publication.version} (as of {as_of_date}): {counts}; "
        f"Parquet {publication.parquet_snapshot}; kept {len(publication.kept_versions)} versions, "
        f"pruned {publication.pruned_versions or 'none'}; report {report or 'not written'}; seconds: "
        + ", ".join(f"{step} {value:.3f}" for step, value in seconds.items())
    )
    report_metadata: dict[str, dg.MetadataValue] = {}
    if report:
        report_metadata = {
            "report": dg.MetadataValue.path(str(report)),
            "report_link": dg.MetadataValue.md(
                f"[HTML report of version {publication.version}]({report.resolve().as_uri()}) "
                f"(self-contained, opens offline; `{report}`)"
            ),
        }
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
            **report_metadata,
            **_image_metadata(images),
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


def _read_model_status(conn: duckdb.DuckDBPyConnection, log: dg.DagsterLogManager) -> pd.DataFrame | None:
    """rpt_model_status of the published mart (whether each Python model was fitted), for the
    report; None with a warning if it cannot be read (the report then says nothing about it)."""
    try:
        return conn.execute("select * from rpt_model_status order by model").df()
    except duckdb.Error as err:
        log.warning(f"report: cannot read rpt_model_status from the published mart: {err}")
        return None


def _draw_mart_plots(
    frames: dict[str, pd.DataFrame], log: dg.DagsterLogManager
) -> tuple[dict[str, bytes], dict[str, str]]:
    """The PNGs of ``orchestration.plots.MART_PLOTS`` and why the others were not drawn; a plot
    that fails to draw (an empty table, a missing column) is left out with a warning."""
    images, problems = draw_plots(MART_PLOTS, frames)
    for problem in problems.values():
        log.warning(f"plots: {problem}")
    return images, problems


def _image_metadata(images: dict[str, bytes]) -> dict[str, dg.MetadataValue]:
    return {
        key: dg.MetadataValue.md(markdown_image(png, f"{key} ({MART_PLOTS[key][0]})"))
        for key, png in images.items()
    }


def _plot_metadata(frames: dict[str, pd.DataFrame], log: dg.DagsterLogManager) -> dict[str, dg.MetadataValue]:
    """One markdown image per plot of ``orchestration.plots.MART_PLOTS``; a plot that fails to draw
    is left out with a warning."""
    return _image_metadata(_draw_mart_plots(frames, log)[0])


# ----------------------------------------------------------------- model evaluation and report
def _save_model_evaluation(settings: LifecycleSettings, run_id: str, log: Any) -> None:
    """Save the models' evaluation tables (``MODEL_EVALUATION_TABLES``) as JSON beside the staged
    mart, tagged with the run id that ``mart_info`` of the staged file carries: the report of this
    publication draws its model plots from them. Read in the step that copies the mart tables (which
    holds the warehouse), so they belong to the same data; a table that cannot be read is saved as
    missing with a warning (the report then shows why its plots are absent)."""
    tables: dict[str, Any] = {}
    try:
        with contextlib.ExitStack() as stack:
            if settings.dbt_target == "duckdb":
                conn = stack.enter_context(connect(settings.warehouse_path, read_only=True))
                read, errors = (lambda sql: conn.execute(sql).df()), (duckdb.Error,)
            else:
                read, errors = settings.warehouse().query, (Exception,)
            for name, source in MODEL_EVALUATION_TABLES.items():
                try:
                    frame = read(f"select * from {source}")
                except errors as err:
                    log.warning(
                        f"report: cannot read {source}, its plots will be missing from the report: {err}"
                    )
                    continue
                tables[name] = json.loads(frame.to_json(orient="records", date_format="iso"))
        path = model_evaluation_path(settings)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"run_id": run_id, "tables": tables}, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except (OSError, duckdb.Error) as err:
        log.warning(f"report: model evaluation not saved for the report: {err}")


def _load_model_evaluation(
    settings: LifecycleSettings, run_id: str
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The model evaluation tables ``mart_staging`` saved for the mart with ``run_id`` and, for the
    model plots that cannot be drawn from them, why (no file, another run's file)."""
    path = model_evaluation_path(settings)
    reason = None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        reason = f"no model evaluation saved beside the staged mart ({path}: {err})"
    else:
        if saved.get("run_id") != run_id:
            reason = f"{path} belongs to run {saved.get('run_id')}, the published mart to run {run_id}"
    if reason:
        return {}, {key: reason for key in MODEL_PLOTS}
    frames = {name: pd.DataFrame.from_records(rows) for name, rows in saved["tables"].items()}
    return frames, {}


def _write_report(
    settings: LifecycleSettings,
    *,
    info: dict[str, Any],
    version: str,
    kept_versions: list[str],
    row_counts: dict[str, int],
    images: dict[str, bytes],
    problems: dict[str, str],
    rpt_kpis: pd.DataFrame | None,
    log: Any,
    model_status: pd.DataFrame | None = None,
) -> Path | None:
    """Draw the model plots and write the HTML report of the published version; on any failure
    warn and return None (the mart is already published: the report never fails the publication)."""
    try:
        model_tables, model_problems = _load_model_evaluation(settings, str(info.get("run_id")))
        model_images, drawn_problems = draw_plots(MODEL_PLOTS, model_tables)
        model_problems = {**drawn_problems, **model_problems}
        for problem in dict.fromkeys(model_problems.values()):
            log.warning(f"report: {problem}")
        document = render_mart_report(
            info=info,
            version=version,
            row_counts=row_counts,
            images={**images, **model_images},
            problems={**problems, **model_problems},
            rpt_kpis=rpt_kpis,
            model_tables=model_tables,
            model_status=model_status,
        )
        path, removed = write_mart_report(reports_dir(settings), version, document, kept_versions)
    except Exception as err:  # the report is a convenience: any failure is logged, never raised
        log.warning(f"report: the HTML report of version {version} was not written: {err!r}")
        return None
    if removed:
        log.info(f"report: removed the reports of pruned versions {removed}")
    return path
