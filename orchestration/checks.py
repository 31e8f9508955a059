"""Blocking asset checks: Great Expectations suites (expectations/) and mart reconciliation.

A failed blocking check stops every downstream asset, so nothing that failed reaches the
published mart. Each check names the table, the rule and the failing count; its metadata
``failures`` holds one record per failed rule (table, rule, failing count, a sample of the failing
values and rows), which the UI shows as ``failing_rows`` (markdown) and the validation report
(orchestration/report.py) as tables.
"""

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from expectations.runner import ROW_SAMPLE_SIZE, jsonable
from orchestration.assets.publish import MART_TABLES, PYTHON_MODEL_TABLES
from orchestration.partitions import window_of
from orchestration.resources import LifecycleSettings
from orchestration.warehouse import connect

#: Failing rows kept per failed rule in check metadata (as for the Great Expectations suites).
SAMPLE_ROWS = ROW_SAMPLE_SIZE
# The markdown view of the failures in the UI: at most this many rules, each with its first rows.
_MARKDOWN_RULES = 10
_MARKDOWN_ROWS = 5
# A quarantine check samples the quarantined rows of at most this many days over the threshold.
_SAMPLED_PARTITIONS = 10


def _md_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")[:80]


def failures_markdown(failures: list[dict]) -> str:
    """The failed rules and their first failing rows as markdown (the UI's view of ``failures``)."""
    parts = []
    for failure in failures[:_MARKDOWN_RULES]:
        parts.append(
            f"**{_md_cell(failure.get('table'))}**: {_md_cell(failure.get('rule'))} ({failure.get('detail')})"
        )
        rows = failure.get("sample_rows") or []
        if rows:
            columns = list(dict.fromkeys(column for row in rows for column in row))
            parts.append("| " + " | ".join(_md_cell(column) for column in columns) + " |")
            parts.append("|" + "---|" * len(columns))
            for row in rows[:_MARKDOWN_ROWS]:
                parts.append("| " + " | ".join(_md_cell(row.get(column)) for column in columns) + " |")
        parts.append("")
    if len(failures) > _MARKDOWN_RULES:
        parts.append(f"... and {len(failures) - _MARKDOWN_RULES} more failed rules (metadata `failures`).")
    return "\n".join(parts).strip()


def _failure_metadata(failures: list[dict]) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "failing_count": sum(failure.get("failing_count") or 0 for failure in failures),
        "failures": dg.MetadataValue.json(failures),
    }
    if failures:
        metadata["failing_rows"] = dg.MetadataValue.md(failures_markdown(failures))
    return metadata


def _suite_check_result(results: list, tables: list[str]) -> dg.AssetCheckResult:
    """One check result for the suites ``results`` run on ``tables`` (same order)."""
    passed = all(result.success for result in results)
    failures = [
        record
        for result, table in zip(results, tables, strict=True)
        for record in result.failure_records(table)
    ]
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="\n".join(result.describe() for result in results),
        metadata={
            "tables": ", ".join(tables),
            "failed_rules": sum(len(result.failures) for result in results),
            "rows_validated": sum(result.row_count for result in results),
            **_failure_metadata(failures),
            # The samples are in `failures`; the outcomes of every rule without them.
            "results": dg.MetadataValue.json([result.to_dict(rows=False) for result in results]),
        },
    )


def error_result(passed: bool, description: str, **metadata: Any) -> dg.AssetCheckResult:
    """An ERROR-severity check result (the model-health checks of the Python model assets)."""
    return dg.AssetCheckResult(
        passed=passed, severity=dg.AssetCheckSeverity.ERROR, description=description, metadata=metadata
    )


def build_warehouse_suite_check(
    asset_key: dg.AssetKey, table: str, suite: str, *, by_day: bool = False
) -> dg.AssetChecksDefinition:
    """A blocking check that validates one warehouse table with one Great Expectations suite.

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
        if settings.dbt_target != "duckdb" and not by_day:
            from expectations.runner import validate_dataframe

            # a model table on another engine (Spark; one row per customer at most); the raw
            # tables stay in the DuckDB file
            frame = settings.warehouse().query(f"select * from {table}")
            return _suite_check_result([validate_dataframe(frame, suite)], [table])
        result, shown = validate_table(
            settings.warehouse_path, table, suite, window_of(context) if by_day else None
        )
        return _suite_check_result([result], [shown])

    return _check


#: A table (or a raw window) with more rows than this is validated batch by batch, so that memory
#: stays bounded at any size (about 1 GB of pandas per batch of raw events; at 1M users the full
#: build's raw.events holds about 47M rows). One batch is 2048-row DuckDB vectors.
BATCH_ROWS = 1_024_000


def validate_table(warehouse: Path, table: str, suite: str, window: tuple[dt.date, dt.date] | None = None):
    """Validate ``table`` (or the rows of the landing days of ``window``, ``_partition_date``, for a
    raw table) with ``suite``; return the suite result and how the check names what it validated.

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
        dg.AssetKey("customer_clv"), PYTHON_MODEL_TABLES["customer_clv"], "customer_clv"
    )
]


def build_quarantine_share_check(source: str) -> dg.AssetChecksDefinition:
    """A blocking check: no (source, day) partition may quarantine more than the allowed share of rows."""

    @dg.asset_check(
        asset=dg.AssetKey(["raw", source]),
        name=f"raw_{source}__quarantine_share",
        blocking=True,
        description=(
            f"No day of raw.{source} has more than LIFECYCLE_MAX_QUARANTINE_SHARE (default 1%) of its "
            "rows in raw.quarantine."
        ),
    )
    def _check(settings: LifecycleSettings) -> dg.AssetCheckResult:
        threshold = settings.max_quarantine_share
        with connect(settings.warehouse_path, read_only=True) as conn:
            over = conn.execute(
                """
                select partition_date, sum(rows_read) as rows_read, sum(rows_quarantined) as rows_quarantined
                from raw.ingested_files
                where source = $source
                group by partition_date
                having sum(rows_quarantined) > $threshold * sum(rows_read)
                order by partition_date
                """,
                {"source": source, "threshold": threshold},
            ).fetchall()
            rules = conn.execute(
                """
                select partition_date, rule, count(*) from raw.quarantine
                where source = $source group by all order by partition_date, count(*) desc, rule
                """,
                {"source": source},
            ).fetchall()
            (total_quarantined,) = conn.execute(
                "select count(*) from raw.quarantine where source = $source", {"source": source}
            ).fetchone()
            samples = _quarantine_samples(conn, source, [day for day, _, _ in over[:_SAMPLED_PARTITIONS]])
        rules_by_day: dict = {}
        for day, rule, count in rules:
            rules_by_day.setdefault(day, []).append(f"{rule} {count:,}")
        lines = [
            f"raw.{source} {day}: FAILED {quarantined:,} of {read:,} rows quarantined "
            f"({quarantined / read:.1%} > {threshold:.1%}): {', '.join(rules_by_day.get(day, []))}. "
            f"See raw.quarantine; fix and re-deliver the day's files."
            for day, read, quarantined in over
        ]
        failures = [
            {
                "table": f"raw.{source}",
                "rule": f"at most {threshold:.1%} of a day's rows quarantined: {day}",
                "failing_count": int(quarantined),
                "rows_checked": int(read),
                "detail": f"{quarantined:,} of {read:,} rows quarantined ({quarantined / read:.1%}): "
                + ", ".join(rules_by_day.get(day, [])),
                "sample_rows": samples.get(day, []),
            }
            for day, read, quarantined in over
        ]
        return dg.AssetCheckResult(
            passed=not over,
            severity=dg.AssetCheckSeverity.ERROR,
            description="\n".join(lines)
            or f"raw.{source}: every day within the {threshold:.1%} quarantine threshold "
            f"({total_quarantined:,} rows quarantined in all)",
            metadata={
                "threshold": threshold,
                "partitions_over_threshold": len(over),
                "rows_quarantined": total_quarantined,
                **_failure_metadata(failures),
            },
        )

    return _check


def _quarantine_samples(conn: duckdb.DuckDBPyConnection, source: str, days: list) -> dict:
    """The first SAMPLE_ROWS quarantined rows (file order) of each of ``days``: day -> rows."""
    if not days:
        return {}
    cursor = conn.execute(
        f"""
        select partition_date, source_file, row_number, rule, detail, record from raw.quarantine
        where source = $source and list_contains($days, partition_date)
        qualify row_number() over (partition by partition_date order by source_file, row_number)
            <= {SAMPLE_ROWS}
        order by partition_date, source_file, row_number
        """,
        {"source": source, "days": days},
    )
    columns = [column[0] for column in cursor.description]
    samples: dict = {}
    for row in cursor.fetchall():
        record = dict(zip(columns, map(jsonable, row), strict=True))
        samples.setdefault(row[0], []).append(record)
    return samples


quarantine_checks = [build_quarantine_share_check(source) for source in ("users", "events", "transactions")]


@dg.asset_check(
    asset="mart_staging",
    name="mart_staging__expectations",
    blocking=True,
    description="Great Expectations suites of every published table, run on the staged mart file.",
)
def mart_staging__expectations(settings: LifecycleSettings) -> dg.AssetCheckResult:
    tables = list(MART_TABLES)
    results = [validate_table(settings.staging_mart_path, table, table)[0] for table in tables]
    return _suite_check_result(results, tables)


# rule -> (query for the expected number, query for the actual number), on the staged mart.
RECONCILIATION_RULES: dict[str, tuple[str, str]] = {
    "every known user has exactly one row (one stage) in dim_users": (
        "select count(distinct user_id) from fct_user_days",
        "select count(*) from dim_users",
    ),
    "every customer (an order not fully refunded) has a CLV row": (
        "select count(*) from dim_users where orders_count > 0",
        "select count(*) from customer_clv c inner join dim_users u on c.user_id = u.user_id",
    ),
    "every user's current stage in the stage history equals dim_users": (
        "select count(*) from dim_users",
        "select count(*) from fct_user_stage_intervals h inner join dim_users u "
        "on h.user_id = u.user_id and h.is_current and h.lifecycle_stage = u.lifecycle_stage",
    ),
    "daily stage counts on the as-of date cover every known user once": (
        "select count(*) from dim_users",
        "select sum(users_count) from rpt_daily_stage_counts "
        "where calendar_date = (select max(as_of_date) from dim_users)",
    ),
    "every customer has exactly one RFM row": (
        "select count(*) from dim_users where orders_count > 0",
        "select count(*) from fct_customer_rfm r inner join dim_users u "
        "on r.user_id = u.user_id and u.orders_count > 0",
    ),
    "RFM segment sizes add up to the RFM customers": (
        "select count(*) from fct_customer_rfm",
        "select sum(customers) from rpt_rfm_segments",
    ),
    "DAU on the as-of date equals that day's user-days": (
        "select count(*) from fct_user_days where activity_date = (select max(as_of_date) from dim_users)",
        "select dau from rpt_stickiness where activity_date = (select max(as_of_date) from dim_users)",
    ),
    "MAU on the as-of date equals the users active in the last 30 days": (
        "select count(*) from dim_users where days_inactive <= 29",
        "select mau from rpt_stickiness where activity_date = (select max(as_of_date) from dim_users)",
    ),
    "net revenue of user-days equals net revenue of users (cents)": (
        "select cast(round(sum(net_revenue) * 100) as bigint) from fct_user_days",
        "select cast(round(sum(net_revenue) * 100) as bigint) from dim_users",
    ),
}


# rule -> (table, query for the rows behind a mismatch), run only when the rule failed; each row is
# one key (user, stage, segment, day) whose two sides differ.
RECONCILIATION_SAMPLES: dict[str, tuple[str, str]] = {
    "every known user has exactly one row (one stage) in dim_users": (
        "dim_users",
        """
        with known as (select distinct user_id from fct_user_days),
        dim as (select user_id, count(*) as dim_users_rows from dim_users group by user_id)
        select coalesce(k.user_id, d.user_id) as user_id, k.user_id is not null as in_fct_user_days,
            coalesce(d.dim_users_rows, 0) as dim_users_rows
        from known k full outer join dim d on k.user_id = d.user_id
        where k.user_id is null or d.dim_users_rows is distinct from 1
        """,
    ),
    "every customer (an order not fully refunded) has a CLV row": (
        "customer_clv",
        """
        with customers as (select user_id, orders_count from dim_users where orders_count > 0),
        clv as (
            select c.user_id, count(*) as clv_rows
            from customer_clv c inner join dim_users u on c.user_id = u.user_id group by c.user_id
        )
        select coalesce(a.user_id, b.user_id) as user_id, a.orders_count, coalesce(b.clv_rows, 0) as clv_rows
        from customers a full outer join clv b on a.user_id = b.user_id
        where a.user_id is null or b.clv_rows is distinct from 1
        """,
    ),
    "every user's current stage in the stage history equals dim_users": (
        "fct_user_stage_intervals",
        """
        with current_spells as (
            select user_id, count(*) as current_spells,
                string_agg(lifecycle_stage, ', ') as current_spell_stages
            from fct_user_stage_intervals where is_current group by user_id
        )
        select u.user_id, u.lifecycle_stage as dim_users_stage,
            coalesce(h.current_spells, 0) as current_spells, h.current_spell_stages
        from dim_users u left join current_spells h on h.user_id = u.user_id
        where h.current_spells is distinct from 1 or h.current_spell_stages is distinct from u.lifecycle_stage
        """,
    ),
    "daily stage counts on the as-of date cover every known user once": (
        "rpt_daily_stage_counts",
        """
        with dim as (select lifecycle_stage, count(*) as users from dim_users group by lifecycle_stage),
        rpt as (
            select lifecycle_stage, sum(users_count) as users from rpt_daily_stage_counts
            where calendar_date = (select max(as_of_date) from dim_users) group by lifecycle_stage
        )
        select coalesce(dim.lifecycle_stage, rpt.lifecycle_stage) as lifecycle_stage,
            coalesce(dim.users, 0) as dim_users_users, coalesce(rpt.users, 0) as rpt_daily_stage_counts_users
        from dim full outer join rpt on dim.lifecycle_stage = rpt.lifecycle_stage
        where coalesce(dim.users, 0) <> coalesce(rpt.users, 0)
        """,
    ),
    "every customer has exactly one RFM row": (
        "fct_customer_rfm",
        """
        with customers as (select user_id, orders_count from dim_users where orders_count > 0),
        rfm as (select user_id, count(*) as rfm_rows from fct_customer_rfm group by user_id)
        select coalesce(a.user_id, b.user_id) as user_id, a.orders_count, coalesce(b.rfm_rows, 0) as rfm_rows
        from customers a full outer join rfm b on a.user_id = b.user_id
        where a.user_id is not null and b.rfm_rows is distinct from 1
        """,
    ),
    "RFM segment sizes add up to the RFM customers": (
        "rpt_rfm_segments",
        """
        with rfm as (select rfm_segment, count(*) as customers from fct_customer_rfm group by rfm_segment),
        segments as (
            select rfm_segment, sum(customers) as customers from rpt_rfm_segments group by rfm_segment
        )
        select coalesce(r.rfm_segment, s.rfm_segment) as rfm_segment,
            coalesce(r.customers, 0) as fct_customer_rfm_customers,
            coalesce(s.customers, 0) as rpt_rfm_segments_customers
        from rfm r full outer join segments s on r.rfm_segment = s.rfm_segment
        where coalesce(r.customers, 0) <> coalesce(s.customers, 0)
        """,
    ),
    "DAU on the as-of date equals that day's user-days": (
        "rpt_stickiness",
        """
        with as_of as (select max(as_of_date) as as_of_date from dim_users)
        select a.as_of_date,
            (select count(*) from fct_user_days where activity_date = a.as_of_date) as user_days,
            (select max(dau) from rpt_stickiness where activity_date = a.as_of_date) as dau
        from as_of a
        """,
    ),
    "MAU on the as-of date equals the users active in the last 30 days": (
        "rpt_stickiness",
        """
        with as_of as (select max(as_of_date) as as_of_date from dim_users)
        select a.as_of_date,
            (select count(*) from dim_users where days_inactive <= 29) as users_active_in_30_days,
            (select max(mau) from rpt_stickiness where activity_date = a.as_of_date) as mau
        from as_of a
        """,
    ),
    "net revenue of user-days equals net revenue of users (cents)": (
        "fct_user_days",
        """
        with days as (select user_id, sum(net_revenue) as net_revenue from fct_user_days group by user_id)
        select coalesce(u.user_id, d.user_id) as user_id, u.net_revenue as dim_users_net_revenue,
            d.net_revenue as fct_user_days_net_revenue
        from dim_users u full outer join days d on u.user_id = d.user_id
        where cast(round(coalesce(u.net_revenue, 0) * 100) as bigint)
            <> cast(round(coalesce(d.net_revenue, 0) * 100) as bigint)
        """,
    ),
}


def reconciliation_failures(conn: duckdb.DuckDBPyConnection, outcomes: dict[str, dict]) -> list[dict]:
    """One record per failed reconciliation rule, with the rows behind the mismatch (up to SAMPLE_ROWS)."""
    failures = []
    for rule, outcome in outcomes.items():
        if outcome["passed"]:
            continue
        table, sample_sql = RECONCILIATION_SAMPLES[rule]
        record = {
            "table": table,
            "rule": rule,
            "expected": jsonable(outcome["expected"]),
            "actual": jsonable(outcome["actual"]),
            "failing_count": None,
            "detail": f"expected {outcome['expected']}, got {outcome['actual']}",
            "sample_rows": [],
        }
        try:
            (count,) = conn.execute(f"select count(*) from ({sample_sql})").fetchone()
            cursor = conn.execute(f"select * from ({sample_sql}) order by all limit {SAMPLE_ROWS}")
            columns = [column[0] for column in cursor.description]
            rows = [dict(zip(columns, map(jsonable, row), strict=True)) for row in cursor.fetchall()]
        except duckdb.Error as err:
            # The rule failed either way; a broken sample query must not hide that.
            record["detail"] += f"; no sample: {err}"
        else:
            record |= {"failing_count": int(count), "sample_rows": rows}
            record["detail"] += f"; {count:,} mismatching {'key' if count == 1 else 'keys'}"
        failures.append(record)
    return failures


@dg.asset_check(
    asset="mart_staging",
    name="mart_staging__reconciliation",
    blocking=True,
    description="The staged mart's tables reconcile with each other (users, customers, revenue).",
)
def mart_staging__reconciliation(settings: LifecycleSettings) -> dg.AssetCheckResult:
    outcomes = {}
    with connect(settings.staging_mart_path, read_only=True) as conn:
        for rule, (expected_sql, actual_sql) in RECONCILIATION_RULES.items():
            # a query without a row (e.g. no row for the as-of date) is a value of None: a failure
            expected = next(iter(conn.execute(expected_sql).fetchone() or ()), None)
            actual = next(iter(conn.execute(actual_sql).fetchone() or ()), None)
            outcomes[rule] = {
                "expected": expected,
                "actual": actual,
                "passed": expected is not None and expected == actual,
            }
        failures = reconciliation_failures(conn, outcomes)
    description = (
        "; ".join(
            f"mart: FAILED {failure['rule']} ({failure['table']}): {failure['detail']}"
            for failure in failures
        )
        or f"mart: {len(outcomes)} reconciliation rules passed"
    )
    return dg.AssetCheckResult(
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "failed_rules": len(failures),
            **_failure_metadata(failures),
            "rules": dg.MetadataValue.json(outcomes),
        },
    )


asset_checks = [
    *quarantine_checks,
    *warehouse_suite_checks,
    mart_staging__expectations,
    mart_staging__reconciliation,
]


def build_empty_days_check(source: str) -> dg.AssetChecksDefinition:
    """A warning, not blocking: days of ``source`` delivered as files without a single data row.

    The landing contract accepts an empty day (it loads as an empty partition and replaces the
    rows the day had), so publication goes on; but a whole day without a row is more often a
    broken export than a quiet day, so the check warns for as long as the day stays empty.
    """

    @dg.asset_check(
        asset=dg.AssetKey(["raw", source]),
        name=f"raw_{source}__empty_days",
        blocking=False,
        description=(
            f"Warns (never blocks) while a day of raw.{source} was delivered as files without a "
            "single data row: a valid delivery, but more often a broken export than a quiet day."
        ),
    )
    def _check(settings: LifecycleSettings) -> dg.AssetCheckResult:
        with connect(settings.warehouse_path, read_only=True) as conn:
            days = [
                day.isoformat()
                for (day,) in conn.execute(
                    "select partition_date from raw.ingested_files where source = ? "
                    "group by partition_date having sum(rows_read) = 0 order by partition_date",
                    [source],
                ).fetchall()
            ]
        shown = ", ".join(days[:10]) + (f" and {len(days) - 10} more" if len(days) > 10 else "")
        return dg.AssetCheckResult(
            passed=not days,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"raw.{source}: WARNING {len(days):,} day(s) delivered without a single row: {shown}. "
                "If a day should have rows, re-deliver its files; the next run reloads it."
                if days
                else f"raw.{source}: no day was delivered empty"
            ),
            metadata={"empty_days": len(days), "days": dg.MetadataValue.json(days)},
        )

    return _check


empty_days_checks = [build_empty_days_check(source) for source in ("users", "events", "transactions")]
asset_checks += empty_days_checks
