"""Blocking asset checks: Great Expectations suites (expectations/) and mart reconciliation.

A failed blocking check stops every downstream asset, so nothing that failed reaches the
published mart. Each check names the table, the rule and the failing count.
"""

import dagster as dg

from orchestration.assets.publish import MART_TABLES, PYTHON_MODEL_TABLES
from orchestration.resources import LifecycleSettings
from orchestration.warehouse import connect, read_table


def _suite_check_result(results: list) -> dg.AssetCheckResult:
    passed = all(result.success for result in results)
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="\n".join(result.describe() for result in results),
        metadata={
            "failed_rules": sum(len(result.failures) for result in results),
            "rows_validated": sum(result.row_count for result in results),
            "results": dg.MetadataValue.json([result.to_dict() for result in results]),
        },
    )


def build_warehouse_suite_check(asset_key: dg.AssetKey, table: str, suite: str) -> dg.AssetChecksDefinition:
    """A blocking check that validates one warehouse table with one Great Expectations suite."""

    @dg.asset_check(
        asset=asset_key,
        name=f"{suite}__expectations",
        blocking=True,
        description=f"Great Expectations suite expectations/suites/{suite}.json on {table}.",
    )
    def _check(settings: LifecycleSettings) -> dg.AssetCheckResult:
        from expectations.runner import validate_dataframe

        return _suite_check_result([validate_dataframe(read_table(settings.warehouse_path, table), suite)])

    return _check


warehouse_suite_checks = [
    build_warehouse_suite_check(dg.AssetKey(["raw", source]), f"raw.{source}", f"raw_{source}")
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
        rules_by_day: dict = {}
        for day, rule, count in rules:
            rules_by_day.setdefault(day, []).append(f"{rule} {count:,}")
        lines = [
            f"raw.{source} {day}: FAILED {quarantined:,} of {read:,} rows quarantined "
            f"({quarantined / read:.1%} > {threshold:.1%}): {', '.join(rules_by_day.get(day, []))}. "
            f"See raw.quarantine; fix and re-deliver the day's files."
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
            },
        )

    return _check


quarantine_checks = [build_quarantine_share_check(source) for source in ("users", "events", "transactions")]


@dg.asset_check(
    asset="mart_staging",
    name="mart_staging__expectations",
    blocking=True,
    description="Great Expectations suites of every published table, run on the staged mart file.",
)
def mart_staging__expectations(settings: LifecycleSettings) -> dg.AssetCheckResult:
    from expectations.runner import validate_dataframe

    results = [
        validate_dataframe(read_table(settings.staging_mart_path, table), table) for table in MART_TABLES
    ]
    return _suite_check_result(results)


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
            expected = conn.execute(expected_sql).fetchone()[0]
            actual = conn.execute(actual_sql).fetchone()[0]
            outcomes[rule] = {"expected": expected, "actual": actual, "passed": expected == actual}
    failed = [rule for rule, outcome in outcomes.items() if not outcome["passed"]]
    description = (
        "; ".join(
            f"mart: FAILED {rule}: expected {outcomes[rule]['expected']}, got {outcomes[rule]['actual']}"
            for rule in failed
        )
        or f"mart: {len(outcomes)} reconciliation rules passed"
    )
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"rules": dg.MetadataValue.json(outcomes)},
    )


asset_checks = [
    *quarantine_checks,
    *warehouse_suite_checks,
    mart_staging__expectations,
    mart_staging__reconciliation,
]
