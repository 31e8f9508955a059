"""The blocking checks put the table, each failed rule, its failing count and a sample of the failing
rows in their metadata (what the UI and the validation report show), on tiny DuckDB files."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import duckdb
import pandas as pd
import pytest

from expectations.runner import ROW_SAMPLE_SIZE
from orchestration.checks.expectations import warehouse_suite_checks
from orchestration.checks.quarantine import build_quarantine_share_check
from orchestration.checks.reconciliation import (
    RECONCILIATION_RULES,
    RECONCILIATION_SAMPLES,
    mart_staging__reconciliation,
    reconciliation_failures,
)
from orchestration.resources import LifecycleSettings


@pytest.fixture
def settings(tmp_path) -> LifecycleSettings:
    (tmp_path / "data").mkdir()
    return LifecycleSettings(data_dir=str(tmp_path / "data"), landing_dir=str(tmp_path / "landing"))


def metadata_value(result, key):
    value = result.metadata[key]
    return getattr(value, "data", getattr(value, "value", getattr(value, "md_str", value)))


def raw_transactions(n_bad: int) -> pd.DataFrame:
    n = 40
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{i:03d}" for i in range(n)],
            "order_id": [f"o{i:03d}" for i in range(n)],
            "user_id": [f"u{i % 7:03d}" for i in range(n)],
            "transaction_type": ["order"] * n,
            "status": ["completed"] * n,
            "amount": [10.0 + i for i in range(n)],
            "currency": ["EUR"] * n,
            "occurred_at": pd.to_datetime("2025-01-01 08:00") + pd.to_timedelta(range(n), unit="h"),
            "_source_file": ["transactions/2025-01-01/a.csv"] * n,
            "_loaded_at": pd.to_datetime(["2025-01-03 02:00"] * n),
        }
    )
    frame.loc[: n_bad - 1, "amount"] = -1.0
    return frame


def write_raw_transactions(settings: LifecycleSettings, frame: pd.DataFrame) -> None:
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.register("frame", frame)
        conn.execute("create schema raw")
        conn.execute("create table raw.transactions as select * from frame")


def test_suite_check_metadata_names_table_rule_count_and_failing_rows(settings):
    write_raw_transactions(settings, raw_transactions(n_bad=25))
    check = next(c for c in warehouse_suite_checks if "raw_transactions__expectations" in str(c.check_keys))
    result = check(dg.build_asset_check_context(), settings=settings)
    assert not result.passed
    failures = metadata_value(result, "failures")
    (failure,) = failures
    assert failure["table"] == "raw.transactions"
    assert failure["rule"] == "amount is not negative"
    assert (failure["failing_count"], failure["rows_checked"]) == (25, 40)
    assert failure["sample_values"] == [-1.0]
    rows = failure["sample_rows"]
    assert len(rows) == ROW_SAMPLE_SIZE < 25
    assert list(rows[0])[0] == "amount"  # the rule's column first
    assert {row["transaction_id"] for row in rows} <= {f"t{i:03d}" for i in range(25)}
    assert rows[0]["occurred_at"] == "2025-01-01T08:00:00"
    assert metadata_value(result, "failing_count") == 25
    assert metadata_value(result, "tables") == "raw.transactions"
    markdown = metadata_value(result, "failing_rows")
    assert "**raw.transactions**: amount is not negative" in markdown
    assert "| amount | transaction_id |" in markdown and "| -1.0 | t000 |" in markdown
    json.dumps(failures, allow_nan=False)
    # The per-rule outcomes stay, without a second copy of the rows.
    (suite,) = metadata_value(result, "results")
    assert all("failing_rows" not in outcome for outcome in suite["outcomes"])


def test_passing_suite_check_has_no_failures(settings):
    write_raw_transactions(settings, raw_transactions(n_bad=0))
    check = next(c for c in warehouse_suite_checks if "raw_transactions__expectations" in str(c.check_keys))
    result = check(dg.build_asset_check_context(), settings=settings)
    assert result.passed, result.description
    assert metadata_value(result, "failures") == []
    assert metadata_value(result, "failing_count") == 0
    assert "failing_rows" not in result.metadata


def declared_mart(path) -> None:
    """Empty tables with the declared columns and types of every published table (docs/mart_tables.md)."""
    from orchestration.mart_docs import documented_tables

    with duckdb.connect(str(path)) as conn:
        for table, doc in documented_tables().items():
            columns = ", ".join(f"{name} {type_}" for name, type_, _ in doc["columns"])
            conn.execute(f"create table {table} ({columns})")


def test_every_reconciliation_sample_query_runs_on_the_declared_mart_schema(tmp_path):
    assert set(RECONCILIATION_SAMPLES) == set(RECONCILIATION_RULES)
    declared_mart(tmp_path / "mart.duckdb")
    failed = {rule: {"expected": 1, "actual": 0, "passed": False} for rule in RECONCILIATION_RULES}
    with duckdb.connect(str(tmp_path / "mart.duckdb"), read_only=True) as conn:
        failures = reconciliation_failures(conn, failed)
    assert [failure["rule"] for failure in failures] == list(RECONCILIATION_RULES)
    for failure in failures:
        assert "no sample" not in failure["detail"], failure["detail"]
        assert isinstance(failure["failing_count"], int)


def test_reconciliation_failure_names_the_keys_behind_the_mismatch(settings):
    path = settings.staging_mart_path
    path.parent.mkdir(parents=True)
    declared_mart(path)
    day = dt.date(2025, 1, 2)
    with duckdb.connect(str(path)) as conn:
        conn.execute("insert into fct_user_days (user_id, activity_date, net_revenue) values "
                     "('u1', $d, 10), ('u2', $d, 0)", {"d": day})  # fmt: skip
        conn.execute(
            "insert into dim_users (user_id, orders_count, lifecycle_stage, as_of_date, days_inactive, "
            "net_revenue) values ('u1', 1, 'new_customer', $d, 0, 10)",
            {"d": day},
        )
        conn.execute("insert into customer_clv (user_id) values ('u1')")
        conn.execute(
            "insert into fct_user_stage_intervals (user_id, lifecycle_stage, is_current) "
            "values ('u1', 'new_customer', true)"
        )
        conn.execute(
            "insert into rpt_daily_stage_counts (calendar_date, lifecycle_stage, users_count) "
            "values ($d, 'new_customer', 1)",
            {"d": day},
        )
        conn.execute("insert into fct_customer_rfm (user_id, rfm_segment) values ('u1', 'champions')")
        conn.execute("insert into rpt_rfm_segments (rfm_segment, customers) values ('champions', 1)")
        conn.execute("insert into rpt_stickiness (activity_date, dau, mau) values ($d, 2, 1)", {"d": day})
    result = mart_staging__reconciliation(settings=settings)
    assert not result.passed
    (failure,) = metadata_value(result, "failures")
    assert failure["rule"] == "every known user has exactly one row (one stage) in dim_users"
    assert (failure["table"], failure["expected"], failure["actual"]) == ("dim_users", 2, 1)
    assert failure["failing_count"] == 1
    assert failure["sample_rows"] == [{"user_id": "u2", "in_fct_user_days": True, "dim_users_rows": 0}]
    assert "expected 2, got 1; 1 mismatching key" in result.description
    assert metadata_value(result, "failed_rules") == 1


def test_quarantine_check_samples_the_quarantined_rows_of_the_days_over_the_threshold(settings):
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute("create schema raw")
        conn.execute(
            "create table raw.ingested_files (source varchar, partition_date date, rows_read bigint, "
            "rows_quarantined bigint)"
        )
        conn.execute(
            "create table raw.quarantine (source varchar, partition_date date, source_file varchar, "
            "row_number bigint, rule varchar, detail varchar, record varchar, line_number bigint)"
        )
        conn.execute(
            "insert into raw.ingested_files values ('events', '2025-01-01', 100, 30), "
            "('events', '2025-01-02', 100, 0)"
        )
        conn.execute(
            "insert into raw.quarantine select 'events', date '2025-01-01', 'events/2025-01-01/a.csv', i, "
            "'malformed_id', 'event_id is not an id', '{\"event_id\": \"bad id ' || i || '\"}', i + 1 "
            "from range(1, 31) t(i)"
        )
    result = build_quarantine_share_check("events")(settings=settings)
    assert not result.passed
    (failure,) = metadata_value(result, "failures")
    assert failure["table"] == "raw.events"
    assert (failure["failing_count"], failure["rows_checked"]) == (30, 100)
    assert "malformed_id 30" in failure["detail"]
    rows = failure["sample_rows"]
    assert len(rows) == ROW_SAMPLE_SIZE
    assert rows[0] == {
        "partition_date": "2025-01-01",
        "source_file": "events/2025-01-01/a.csv",
        "row_number": 1,
        "line_number": 2,
        "rule": "malformed_id",
        "detail": "event_id is not an id",
        "record": '{"event_id": "bad id 1"}',
    }


def test_a_partition_run_validates_the_rows_of_its_days_only(settings):
    from orchestration.checks.expectations import validate_table

    frame = raw_transactions(n_bad=0)
    frame["_partition_date"] = [dt.date(2025, 1, 1) + dt.timedelta(days=i % 4) for i in range(len(frame))]
    frame.loc[frame["_partition_date"] == dt.date(2025, 1, 1), "amount"] = -1.0  # outside the window
    write_raw_transactions(settings, frame)
    every, shown = validate_table(settings.warehouse_path, "raw.transactions", "raw_transactions")
    assert (every.row_count, shown, every.success) == (len(frame), "raw.transactions", False)
    window = (dt.date(2025, 1, 2), dt.date(2025, 1, 3))
    days, shown = validate_table(settings.warehouse_path, "raw.transactions", "raw_transactions", window)
    assert (days.row_count, days.success) == (len(frame) // 2, True)
    assert shown == "raw.transactions (days 2025-01-02 to 2025-01-03)"


def big_raw_transactions(n: int) -> pd.DataFrame:
    frame = pd.concat([raw_transactions(n_bad=0)] * (n // 40), ignore_index=True)
    frame["transaction_id"] = [f"t{i:06d}" for i in range(len(frame))]
    frame["order_id"] = [f"o{i:06d}" for i in range(len(frame))]
    return frame


@pytest.fixture
def small_batches(monkeypatch):
    import orchestration.checks.expectations

    monkeypatch.setattr(orchestration.checks.expectations, "BATCH_ROWS", 2048)  # one DuckDB vector per batch


def test_a_large_table_is_validated_in_batches_with_the_same_outcome(settings, small_batches):
    from expectations.runner import validate_dataframe
    from orchestration.checks.expectations import validate_table

    frame = big_raw_transactions(6000)
    frame.loc[[10, 2500, 5000], "amount"] = -1.0  # one bad row in each batch
    frame.loc[5990, "order_id"] = frame.loc[3, "order_id"]  # a key repeated across two batches
    frame.loc[5991, ["order_id", "transaction_type"]] = [frame.loc[4, "order_id"], "refund"]  # not an order
    write_raw_transactions(settings, frame)
    batched, _ = validate_table(settings.warehouse_path, "raw.transactions", "raw_transactions")
    whole = validate_dataframe(frame, "raw_transactions")
    assert batched.row_count == whole.row_count == 6000
    assert [(o.rule, o.success, o.unexpected_count) for o in batched.outcomes] == [
        (o.rule, o.success, o.unexpected_count) for o in whole.outcomes
    ]
    by_rule = {o.expectation_type + str(o.column): o for o in batched.outcomes}
    assert by_rule["expect_column_values_to_be_betweenamount"].unexpected_sample == [-1.0]
    assert len(by_rule["expect_column_values_to_be_betweenamount"].failing_rows) == 3
    assert by_rule["expect_column_values_to_be_uniqueorder_id"].unexpected_sample == [
        frame.loc[3, "order_id"]
    ]


def test_a_large_table_with_a_table_level_rule_is_read_whole(settings, small_batches):
    from expectations.runner import validate_batches, validates_in_batches

    assert validates_in_batches("raw_transactions")
    assert validates_in_batches("fct_user_days")
    assert not validates_in_batches("rpt_rfm_segments")  # the sum of customer_share is table-level
    with pytest.raises(ValueError, match="table-level"):
        validate_batches([], "rpt_rfm_segments", lambda columns, condition: (0, []))


def test_a_row_condition_becomes_a_sql_predicate():
    from expectations.runner import row_condition_sql

    order = {
        "column": {"name": "transaction_type"},
        "operator": "==",
        "parameter": "order",
        "type": "comparison",
    }
    assert row_condition_sql(None) == ("true", [])
    assert row_condition_sql(order) == ("transaction_type = ?", ["order"])
    both = {"type": "and", "conditions": [order, {**order, "operator": "!=", "parameter": "x"}]}
    assert row_condition_sql(both) == ("(transaction_type = ?) and (transaction_type <> ?)", ["order", "x"])
    with pytest.raises(ValueError):
        row_condition_sql('transaction_type == "order"')  # a legacy string condition
    with pytest.raises(ValueError):
        row_condition_sql({**order, "column": {"name": "a; drop table x"}})


def test_clv_rule_wants_every_customer_when_fitted_and_none_when_not(tmp_path):
    (rule,) = [rule for rule in RECONCILIATION_RULES if "has a CLV row" in rule]
    expected_sql, actual_sql = RECONCILIATION_RULES[rule]
    path = tmp_path / "mart.duckdb"
    declared_mart(path)

    def outcome(conn) -> tuple[int, int]:
        return conn.execute(expected_sql).fetchall()[0][0], conn.execute(actual_sql).fetchall()[0][0]

    with duckdb.connect(str(path)) as conn:
        conn.execute("insert into dim_users (user_id, orders_count) values ('u1', 1), ('u2', 0)")
        assert outcome(conn) == (1, 0)  # no status row: the model counts as fitted, the rule is strict
        conn.execute("insert into rpt_model_status (model, is_fitted) values ('customer_clv', true)")
        assert outcome(conn) == (1, 0)
        conn.execute("insert into customer_clv (user_id) values ('u1')")
        assert outcome(conn) == (1, 1)
        conn.execute("update rpt_model_status set is_fitted = false where model = 'customer_clv'")
        assert outcome(conn) == (0, 1)  # a CLV row without a fitted model is a mismatch
        (failure,) = reconciliation_failures(conn, {rule: {"expected": 0, "actual": 1, "passed": False}})
        assert failure["sample_rows"] == [{"user_id": "u1", "orders_count": None, "clv_rows": 1}]
        conn.execute("delete from customer_clv")
        assert outcome(conn) == (0, 0)


def test_mart_suites_of_a_model_that_was_not_fitted_want_its_table_empty(tmp_path):
    from orchestration.checks.expectations import unfitted_models, validate_table

    path = tmp_path / "mart.duckdb"
    declared_mart(path)
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "insert into rpt_model_status (model, is_fitted, not_fitted_reason) values "
            "('customer_clv', true, null), ('churn_risk', false, 'found 1 labelled snapshot date')"
        )
    assert unfitted_models(path) == {"churn_risk": "found 1 labelled snapshot date"}
    empty, shown = validate_table(
        path, "churn_risk", "churn_risk", empty_because="found 1 labelled snapshot date"
    )
    assert empty.success and shown == "churn_risk (model not fitted)"
    assert not validate_table(path, "churn_risk", "churn_risk")[0].success  # the full suite wants rows
