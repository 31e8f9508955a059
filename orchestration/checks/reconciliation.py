"""The staged mart's tables reconcile with each other (blocking)."""

import dagster as dg
import duckdb

from expectations.runner import jsonable
from orchestration.checks.results import SAMPLE_ROWS, failure_metadata
from orchestration.resources import LifecycleSettings
from orchestration.warehouse import connect

# rule -> (query for the expected number, query for the actual number), on the staged mart.
RECONCILIATION_RULES: dict[str, tuple[str, str]] = {
    "every known user has exactly one row (one stage) in dim_users": (
        "select count(distinct user_id) from fct_user_days",
        "select count(*) from dim_users",
    ),
    # No CLV row at all while rpt_model_status says the model was not fitted; without a status row
    # the model counts as fitted (the rule stays strict).
    "every customer (an order not fully refunded) has a CLV row (none while the CLV model is not fitted)": (
        "select count(*) from dim_users where orders_count > 0 "
        "and (select is_fitted from rpt_model_status where model = 'customer_clv') is not false",
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
    "every customer (an order not fully refunded) has a CLV row (none while the CLV model is not fitted)": (
        "customer_clv",
        """
        with customers as (
            select user_id, orders_count from dim_users
            where orders_count > 0
                and (select is_fitted from rpt_model_status where model = 'customer_clv') is not false
        ),
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
            **failure_metadata(failures),
            "rules": dg.MetadataValue.json(outcomes),
        },
    )
