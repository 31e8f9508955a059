"""Great Expectations suites in blocking checks: the raw tables (the rows of the run's days), the
Python models' tables and the staged mart file."""

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from orchestration.assets.publish import MART_TABLES, PYTHON_MODEL_TABLES
from orchestration.checks.model_status import STATUS_TABLE, not_fitted_reason
from orchestration.checks.results import (
    suite_check_result,
)
from orchestration.partitions import window_of
from orchestration.resources import LifecycleSettings
from orchestration.warehouse import connect


def build_warehouse_suite_check(
    asset_key: dg.AssetKey,
    table: str,
    suite: str,
    *,
    by_day: bool = False,
    empty_because: Callable[[LifecycleSettings], str | None] | None = None,
) -> dg.AssetChecksDefinition:
    """A blocking check that validates one warehouse table with one Great Expectations suite.

    ``empty_because`` (the Python models' tables): returns why the table must be empty this run (its
    model was not fitted), or None; the table is then validated as empty with the suite's columns
    (``expectations.runner.empty_table_suite``), else with the whole suite.

    ``by_day`` (the raw tables, partitioned by landing day): a run with a partition window validates
    the rows of its days only (``_partition_date``), the ones it loaded; the older days passed when
    they were loaded. Keys unique across days are the loader's rule (``duplicate_key``) and the dbt
    unique tests', which read every day. At 100k users this took the daily check from 20 s to well
    under a second.
    """
    scope = " (the rows of the run's days)" if by_day else ""

    @dg.asset_check(
        asset=asset_key,
        name=f"{suite}__expectations",
        blocking=True,
        description=f"Great Expectations suite expectations/suites/{suite}.json on {table}{scope}.",
    )
    def _check(context: dg.AssetCheckExecutionContext, settings: LifecycleSettings) -> dg.AssetCheckResult:
        reason = empty_because(settings) if empty_because else None
        if settings.dbt_target != "duckdb" and not by_day:
            from expectations.runner import validate_dataframe

            # a model table on another engine (Spark; one row per customer at most); the raw
            # tables stay in the DuckDB file
            frame = settings.warehouse().query(f"select * from {table}")
            return suite_check_result([validate_dataframe(frame, suite, empty_because=reason)], [table])
        window = window_of(context) if by_day else None
        result, shown = validate_table(settings.warehouse_path, table, suite, window, empty_because=reason)
        return suite_check_result([result], [shown])

    return _check


#: A table (or a raw window) with more rows than this is validated batch by batch, so that memory
#: stays bounded at any size (about 1 GB of pandas per batch of raw events; at 1M users the full
#: build's raw.events holds about 47M rows). One batch is 2048-row DuckDB vectors.
BATCH_ROWS = 1_024_000


def validate_table(
    warehouse: Path,
    table: str,
    suite: str,
    window: tuple[dt.date, dt.date] | None = None,
    *,
    empty_because: str | None = None,
):
    """Validate ``table`` (or the rows of the landing days of ``window``, ``_partition_date``, for a
    raw table) with ``suite``; return the suite result and how the check names what it validated.
    With ``empty_because`` the table must be empty (its model was not fitted, for that reason).

    Up to :data:`BATCH_ROWS` rows are read into one DataFrame. Above that, when every rule of the
    suite adds up over batches (row-level rules, the row count, unique keys), the rows stream in
    batches of about BATCH_ROWS and unique keys are counted over all of them in DuckDB
    (``expectations.runner.validate_batches``); otherwise the whole table is read.
    """
    from expectations.runner import validate_batches, validate_dataframe, validates_in_batches

    where, params = "", []
    shown = table
    if window is not None:
        where, params = "where _partition_date between ? and ?", list(window)
        shown = f"{table} (days {window[0]} to {window[1]})"
    with connect(warehouse, read_only=True) as conn:
        rows = int(conn.execute(f"select count(*) from {table} {where}", params).fetchone()[0])
        if empty_because is not None:
            frame = conn.execute(f"select * from {table} {where}", params).df()
            shown += " (model not fitted)"
            return validate_dataframe(frame, suite, empty_because=empty_because), shown
        if rows <= BATCH_ROWS or not validates_in_batches(suite):
            return validate_dataframe(
                conn.execute(f"select * from {table} {where}", params).df(), suite
            ), shown

        def batches():
            cursor = conn.cursor()
            result = cursor.execute(f"select * from {table} {where}", params)
            batch = result.fetch_df_chunk(BATCH_ROWS // 2048)
            while len(batch):
                yield batch
                batch = result.fetch_df_chunk(BATCH_ROWS // 2048)

        def duplicates(columns: list[str], condition: tuple[str, list]) -> tuple[int, list]:
            key = ", ".join(columns)
            predicate, condition_params = condition
            scope = f"{where} and ({predicate})" if where else f"where {predicate}"
            found = conn.execute(
                f"""
                select count(*) over () as keys, sum(n) over () as duplicated_rows, {key}
                from (select {key}, count(*) as n from {table} {scope} group by all having count(*) > 1)
                order by all limit 5
                """,
                params + condition_params,
            ).fetchall()
            if not found:
                return 0, []
            sample = [
                row[2] if len(columns) == 1 else dict(zip(columns, row[2:], strict=True)) for row in found
            ]
            return int(found[0][1]), sample

        return validate_batches(batches(), suite, duplicates), shown


warehouse_suite_checks = [
    build_warehouse_suite_check(dg.AssetKey(["raw", source]), f"raw.{source}", f"raw_{source}", by_day=True)
    for source in ("users", "events", "transactions")
] + [
    build_warehouse_suite_check(
        dg.AssetKey("customer_clv"),
        PYTHON_MODEL_TABLES["customer_clv"],
        "customer_clv",
        empty_because=lambda settings: not_fitted_reason(settings, "customer_clv"),
    )
]


@dg.asset_check(
    asset="mart_staging",
    name="mart_staging__expectations",
    blocking=True,
    description="Great Expectations suites of every published table, run on the staged mart file.",
)
def mart_staging__expectations(settings: LifecycleSettings) -> dg.AssetCheckResult:
    tables = list(MART_TABLES)
    unfitted = unfitted_models(settings.staging_mart_path)
    results = [
        validate_table(settings.staging_mart_path, table, table, empty_because=unfitted.get(table))[0]
        for table in tables
    ]
    return suite_check_result(results, tables)


def unfitted_models(mart: Path) -> dict[str, str]:
    """The Python models that were not fitted, with the reason, as ``rpt_model_status`` in the mart
    file says. A model without a row there counts as fitted: its table is then checked in full."""
    with connect(mart, read_only=True) as conn:
        rows = conn.execute(
            f"select model, not_fitted_reason from {STATUS_TABLE} where not is_fitted order by model"
        ).fetchall()
    return {model: reason or "no reason recorded" for model, reason in rows}
