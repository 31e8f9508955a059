"""Tests for expectations/: every suite loads, good tables pass, each kind of bad row fails
with the right rule and count, and validation leaves nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from expectations import runner
from expectations.runner import SuiteError, load_suite_dict, validate_dataframe

REPO_ROOT = Path(__file__).resolve().parents[2]
# Tables with hand-made good samples below; the suites of the other published tables are checked on
# real data by the end-to-end run (mart_staging__expectations must pass there).
TABLES = ["customer_clv", "dim_users", "fct_user_days", "raw_events", "raw_transactions", "raw_users"]
ALL_SUITES = runner.list_suites()


def ts(*values: str) -> pd.Series:
    return pd.to_datetime(pd.Series(values))


# Small good samples, with exactly the columns each suite names.
def good_raw_users() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u001", "u002", "u003"],
            "signup_at": ts("2024-01-01 08:00", "2024-01-02 09:30", "2024-01-03 23:59"),
            "channel": ["organic", "paid", "referral"],
            "referrer_user_id": [None, None, "u001"],
            "country": ["DE", "FR", "DE"],
            "_source_file": ["users_2024-01-03.csv"] * 3,
            "_loaded_at": ts(*["2024-01-04 02:00"] * 3),
        }
    )


def good_raw_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": ["e001", "e002", "e003", "e004"],
            "user_id": ["u001", "u001", "u002", "u003"],
            "event_type": ["session_start", "page_view", "add_to_cart", "app_heartbeat"],
            "occurred_at": ts("2024-01-01 08:00", "2024-01-01 08:01", "2024-01-02 10:00", "2024-01-03 12:00"),
            "_source_file": ["events_2024-01-03.jsonl"] * 4,
            "_loaded_at": ts(*["2024-01-04 02:00"] * 4),
        }
    )


def good_raw_transactions() -> pd.DataFrame:
    # t003 refunds order o002 and so carries its order_id: order_id is unique among orders only.
    return pd.DataFrame(
        {
            "transaction_id": ["t001", "t002", "t003", "t004"],
            "order_id": ["o001", "o002", "o002", "o003"],
            "user_id": ["u001", "u002", "u002", "u003"],
            "transaction_type": ["order", "order", "refund", "order"],
            "status": ["completed", "completed", "completed", "cancelled"],
            "amount": [19.99, 45.00, 45.00, 0.0],
            "currency": ["EUR"] * 4,
            "occurred_at": ts("2024-01-01 08:05", "2024-01-02 10:05", "2024-01-05 11:00", "2024-01-03 12:10"),
            "_source_file": ["transactions_2024-01-05.csv"] * 4,
            "_loaded_at": ts(*["2024-01-06 02:00"] * 4),
        }
    )


def good_dim_users() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u001", "u002", "u003"],
            "lifecycle_stage": ["new_customer", "prospect", "churned"],
            "first_active_date": ts("2024-01-01", "2024-01-02", "2023-06-01"),
            "last_active_date": ts("2024-01-05", "2024-01-02", "2023-07-01"),
            "orders_count": [1, 0, 2],
            "net_revenue": [19.99, 0.0, 80.5],
            "is_advocate": [True, False, False],
        }
    )


def good_customer_clv() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u001", "u003"],
            "p_alive": [1.0, 0.12],
            "expected_purchases_30d": [0.4, 0.0],
            "expected_purchases_90d": [1.1, 0.01],
            "expected_purchases_365d": [3.9, 0.03],
            "expected_avg_order_value": [21.5, 40.25],
            "clv": [80.1, 0.0],
            "model_version": ["bgnbd-gg-2024-01-05"] * 2,
        }
    )


def good_fct_user_days() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u001", "u001", "u002"],
            "activity_date": ts("2024-01-01", "2024-01-02", "2024-01-01"),
            "events_count": [3, 0, 1],
            "orders_count": [1, 1, 0],
        }
    )


GOOD = {
    "raw_users": good_raw_users,
    "raw_events": good_raw_events,
    "raw_transactions": good_raw_transactions,
    "dim_users": good_dim_users,
    "customer_clv": good_customer_clv,
    "fct_user_days": good_fct_user_days,
}


def with_value(df: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    df = df.copy()
    df[column] = df[column].astype(object)
    df.loc[row, column] = value
    return df.infer_objects()


def test_importing_the_runner_does_not_import_great_expectations():
    code = (
        "import sys, expectations.runner as r; r.list_suites(); r.load_suite_dict('dim_users'); "
        "sys.exit('great_expectations imported' if 'great_expectations' in sys.modules else 0)"
    )
    pythonpath = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_one_suite_per_gated_table():
    assert set(TABLES) <= set(ALL_SUITES)
    assert runner.SUITES_DIR == REPO_ROOT / "expectations" / "suites"


@pytest.mark.parametrize("table", ALL_SUITES)
def test_suite_loads_and_every_expectation_states_its_rule(table):
    suite = load_suite_dict(table)
    assert suite["name"] == table
    for spec in suite["expectations"]:
        assert spec["type"].startswith("expect_")
        assert spec["meta"]["rule"].strip()
    rules = [spec["meta"]["rule"] for spec in suite["expectations"]]
    assert len(rules) == len(set(rules)), "two expectations share a rule sentence"


@pytest.mark.parametrize("table", ALL_SUITES)
def test_suite_file_is_great_expectations_own_serialization(table):
    # ExpectationSuite() silently drops configurations it cannot build; a round trip that
    # gives back the same expectations proves GE 1.x accepts every one of them.
    import great_expectations as gx

    suite = load_suite_dict(table)
    built = gx.ExpectationSuite(name=suite["name"], expectations=suite["expectations"], meta=suite["meta"])
    assert built.to_json_dict()["expectations"] == suite["expectations"]


@pytest.mark.parametrize("table", TABLES)
def test_good_sample_passes(table):
    df = GOOD[table]()
    result = validate_dataframe(df, table)
    assert result.failures == [], result.describe()
    assert result.success
    assert result.row_count == len(df)
    assert [o.rule for o in result.outcomes] == [
        e["meta"]["rule"] for e in load_suite_dict(table)["expectations"]
    ]
    assert result.describe() == f"{table}: passed {len(result.outcomes)} expectations on {len(df)} rows"


# (table, make the bad frame, the one rule that must fail, its unexpected_count)
BAD_CASES = {
    "raw_users null user_id": (
        "raw_users",
        lambda: with_value(good_raw_users(), 1, "user_id", None),
        "user_id is present on every user",
        1,
    ),
    "raw_users unknown channel": (
        "raw_users",
        lambda: with_value(good_raw_users(), 0, "channel", "tv"),
        "channel is one of organic, paid, social, referral",
        1,
    ),
    "raw_events null user_id": (
        "raw_events",
        lambda: with_value(good_raw_events(), 2, "user_id", None),
        "user_id is present on every event",
        1,
    ),
    "raw_events duplicated event_id": (
        "raw_events",
        lambda: with_value(good_raw_events(), 3, "event_id", "e001"),
        "event_id is unique among events",
        2,
    ),
    "raw_transactions duplicated order_id among orders": (
        "raw_transactions",
        lambda: with_value(good_raw_transactions(), 3, "order_id", "o001"),
        "order_id is unique among orders",
        2,
    ),
    "raw_transactions negative amount": (
        "raw_transactions",
        lambda: with_value(good_raw_transactions(), 0, "amount", -5.0),
        "amount is not negative",
        1,
    ),
    "dim_users bad stage": (
        "dim_users",
        lambda: with_value(good_dim_users(), 1, "lifecycle_stage", "vip"),
        "lifecycle_stage is one of the seven stages: churned, dormant, reactivated, prospect, "
        "new_customer, loyal, growing",
        1,
    ),
    "dim_users last before first": (
        "dim_users",
        lambda: with_value(good_dim_users(), 0, "last_active_date", pd.Timestamp("2023-12-31")),
        "last_active_date is present and not before first_active_date",
        1,
    ),
    "dim_users null last_active_date": (
        "dim_users",
        lambda: with_value(good_dim_users(), 1, "last_active_date", None),
        "last_active_date is present and not before first_active_date",
        1,
    ),
    "customer_clv null p_alive": (
        "customer_clv",
        lambda: with_value(good_customer_clv(), 0, "p_alive", None),
        "every customer has a p_alive",
        1,
    ),
    "customer_clv p_alive 1.5": (
        "customer_clv",
        lambda: with_value(good_customer_clv(), 1, "p_alive", 1.5),
        "p_alive is a probability between 0 and 1",
        1,
    ),
    "customer_clv negative clv": (
        "customer_clv",
        lambda: with_value(good_customer_clv(), 0, "clv", -3.0),
        "clv is not negative",
        1,
    ),
    "fct_user_days duplicated user-day": (
        "fct_user_days",
        lambda: with_value(good_fct_user_days(), 1, "activity_date", pd.Timestamp("2024-01-01")),
        "(user_id, activity_date) is unique: one row per user per active day",
        2,
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_sample_fails_on_the_right_rule_with_the_right_count(case):
    table, make_bad, rule, count = BAD_CASES[case]
    df = make_bad()
    result = validate_dataframe(df, table)
    assert not result.success
    assert [o.rule for o in result.failures] == [rule], result.describe()
    (failure,) = result.failures
    assert failure.unexpected_count == count
    assert failure.error is None
    line = result.describe()
    assert line.startswith(f"{table}: FAILED {rule} ({failure.expectation_type}")
    assert f": {count} of {failure.element_count} rows" in line
    json.dumps(result.to_dict(), allow_nan=False)


def test_refund_sharing_its_orders_order_id_passes():
    df = good_raw_transactions()
    assert df["order_id"].duplicated().any()  # o002: the order and its refund
    result = validate_dataframe(df, "raw_transactions")
    (outcome,) = [o for o in result.outcomes if o.rule == "order_id is unique among orders"]
    assert outcome.success
    assert outcome.element_count == 3  # the row_condition kept the three orders only


def test_duplicated_order_is_described_exactly():
    df = with_value(good_raw_transactions(), 3, "order_id", "o002")
    result = validate_dataframe(df, "raw_transactions")
    assert result.describe() == (
        "raw_transactions: FAILED order_id is unique among orders "
        "(expect_column_values_to_be_unique on order_id): 2 of 3 rows, e.g. ['o002']"
    )
    (failure,) = result.failures
    assert failure.unexpected_sample == ["o002"]
    assert failure.unexpected_percent == pytest.approx(200 / 3)


def test_samples_and_observed_values_are_json_able():
    df = good_fct_user_days()
    df.loc[1, "activity_date"] = pd.Timestamp("2024-01-01")
    df.loc[2, "events_count"] = -1
    result = validate_dataframe(df, "fct_user_days")
    by_rule = {o.rule: o for o in result.failures}
    compound = by_rule["(user_id, activity_date) is unique: one row per user per active day"]
    assert compound.unexpected_sample == [{"user_id": "u001", "activity_date": "2024-01-01T00:00:00"}]
    assert by_rule["events_count is not negative"].unexpected_sample == [-1]
    as_dict = result.to_dict()
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
    assert as_dict["failure_count"] == 2
    assert as_dict["expectation_count"] == len(load_suite_dict("fct_user_days")["expectations"])


MISSING_COLUMN = {
    "raw_users": "user_id",
    "raw_events": "event_type",
    "raw_transactions": "transaction_type",  # used only in a row_condition by one rule
    "dim_users": "last_active_date",  # one side of a column pair
    "customer_clv": "clv",
    "fct_user_days": "activity_date",  # part of a compound key
}


@pytest.mark.parametrize("table", TABLES)
def test_missing_column_is_a_clear_failure(table):
    column = MISSING_COLUMN[table]
    result = validate_dataframe(GOOD[table]().drop(columns=[column]), table)
    assert not result.success
    columns_check = [o for o in result.failures if o.expectation_type == "expect_table_columns_to_match_set"]
    assert len(columns_check) == 1 and columns_check[0].observed_value["missing"] == [column]
    not_evaluated = [o for o in result.failures if o.error is not None]
    assert not_evaluated, "no rule reported the missing column"
    for outcome in not_evaluated:
        assert outcome.error == f"column(s) missing from the table: {column}"
        assert outcome.observed_value == outcome.error
        assert outcome.unexpected_count is None
    assert len(result.failures) == len(columns_check) + len(not_evaluated)  # every other rule passed
    text = result.describe()
    assert f"missing column(s): {column}" in text
    assert f"could not be checked: column(s) missing from the table: {column}" in text
    json.dumps(result.to_dict(), allow_nan=False)


def test_exception_inside_an_expectation_is_a_failure_with_its_message():
    df = good_raw_transactions()
    df["amount"] = ["19.99", "45.00", "45.00", "0"]  # loaded as text: comparing to 0 raises in GE
    result = validate_dataframe(df, "raw_transactions")
    assert not result.success
    (failure,) = result.failures
    assert failure.rule == "amount is not negative"
    assert failure.error and failure.error.startswith("great_expectations raised: ")
    assert "same type" in failure.error
    assert failure.observed_value == failure.error
    assert failure.error in result.describe()


def test_timestamps_with_a_time_zone_or_as_text_fail_the_type_rule():
    df = good_raw_events()
    df["occurred_at"] = df["occurred_at"].dt.tz_localize("UTC")
    result = validate_dataframe(df, "raw_events")
    assert [o.rule for o in result.failures] == ["occurred_at is a timestamp without time zone (UTC)"]
    assert result.failures[0].observed_value == str(df["occurred_at"].dtype)
    assert "observed 'datetime64[" in result.describe() and "UTC]'" in result.describe()
    df["occurred_at"] = df["occurred_at"].astype(str)
    result = validate_dataframe(df, "raw_events")
    assert [o.rule for o in result.failures] == ["occurred_at is a timestamp without time zone (UTC)"]


def test_empty_published_table_fails():
    result = validate_dataframe(good_dim_users().iloc[0:0], "dim_users")
    assert [o.rule for o in result.failures] == ["dim_users has at least one user"]
    assert result.failures[0].observed_value == 0


@pytest.mark.parametrize("table", ["customer_clv", "churn_risk"])
def test_a_model_table_without_a_fit_must_be_empty_with_its_columns(table):
    columns = runner.load_suite_dict(table)["expectations"][0]["kwargs"]["column_set"]
    empty = pd.DataFrame({column: pd.Series([], dtype="float64") for column in columns})
    result = validate_dataframe(empty, table, empty_because="too few repeat customers")
    assert result.success, result.describe()
    assert [o.expectation_type for o in result.outcomes] == [
        "expect_table_columns_to_match_set",
        "expect_table_row_count_to_equal",
    ]
    one_row = pd.DataFrame({column: [1.0] for column in columns})
    failed = validate_dataframe(one_row, table, empty_because="too few repeat customers")
    assert [o.rule for o in failed.failures] == [
        f"{table} holds no rows while its model is not fitted (too few repeat customers)"
    ]
    missing = validate_dataframe(empty.drop(columns=columns[-1]), table, empty_because="x")
    assert [o.expectation_type for o in missing.failures] == ["expect_table_columns_to_match_set"]


def test_validation_leaves_no_files_and_opens_no_socket(tmp_path, monkeypatch):
    private_tmp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    private_tmp.mkdir()
    cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    monkeypatch.chdir(cwd)

    def no_network(*args, **kwargs):
        raise AssertionError(f"validation tried to open a connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for table in TABLES:
        assert validate_dataframe(GOOD[table](), table).success
    assert validate_dataframe(good_dim_users().iloc[0:0], "dim_users").failures
    assert list(private_tmp.iterdir()) == []
    assert list(cwd.iterdir()) == []


def test_missing_suite_names_the_file():
    with pytest.raises(SuiteError, match=r"no_such_table\.json does not exist"):
        load_suite_dict("no_such_table")
    with pytest.raises(SuiteError, match="invalid suite name"):
        load_suite_dict("../suites/dim_users")


def test_invalid_suite_files_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "SUITES_DIR", tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(SuiteError, match=r"broken\.json could not be read as JSON"):
        load_suite_dict("broken")

    no_rule = {
        "name": "no_rule",
        "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}],
    }
    (tmp_path / "no_rule.json").write_text(json.dumps(no_rule))
    with pytest.raises(SuiteError, match=r"no_rule\.json is not a valid expectation suite: .*meta\.rule"):
        load_suite_dict("no_rule")

    unknown = {
        "name": "unknown",
        "expectations": [
            {
                "type": "expect_column_to_be_awesome",
                "kwargs": {"column": "a"},
                "meta": {"rule": "a is awesome"},
            }
        ],
    }
    (tmp_path / "unknown.json").write_text(json.dumps(unknown))
    with pytest.raises(SuiteError, match=r"unknown\.json: expectation #0 \(expect_column_to_be_awesome\)"):
        validate_dataframe(pd.DataFrame({"a": [1]}), "unknown")


def test_validate_dataframe_needs_a_dataframe():
    with pytest.raises(TypeError, match="pandas DataFrame"):
        validate_dataframe([{"user_id": "u001"}], "dim_users")


def test_failing_rows_are_sampled_whole_with_the_rules_columns_first():
    df = with_value(good_raw_transactions(), 3, "order_id", "o002")
    result = validate_dataframe(df, "raw_transactions")
    (failure,) = result.failures
    assert [row["transaction_id"] for row in failure.failing_rows] == ["t002", "t004"]
    assert list(failure.failing_rows[0]) == ["order_id", "transaction_type", *[
        c for c in df.columns if c not in ("order_id", "transaction_type")
    ]]  # fmt: skip
    assert failure.failing_rows[1]["occurred_at"] == "2024-01-03T12:10:00"
    (record,) = result.failure_records("raw.transactions")
    assert record == {
        "table": "raw.transactions",
        "rule": "order_id is unique among orders",
        "expectation": "expect_column_values_to_be_unique",
        "column": "order_id",
        "failing_count": 2,
        "rows_checked": 3,
        "detail": "2 of 3 rows, e.g. ['o002']",
        "sample_values": ["o002"],
        "sample_rows": failure.failing_rows,
    }
    assert json.loads(json.dumps(record, allow_nan=False)) == record


def test_failing_rows_are_capped_and_long_texts_cut():
    n = 3 * runner.ROW_SAMPLE_SIZE
    df = pd.concat([good_raw_users()] * (n // 3), ignore_index=True)
    df["user_id"] = [f"u{i:04d}" for i in range(n)]
    df["channel"] = "tv"
    df["country"] = "X" * (runner.MAX_CELL_CHARS + 50)
    result = validate_dataframe(df, "raw_users")
    (failure,) = result.failures
    assert failure.unexpected_count == n
    assert len(failure.failing_rows) == runner.ROW_SAMPLE_SIZE
    assert len(failure.failing_rows[0]["country"]) == runner.MAX_CELL_CHARS
    assert failure.failing_rows[0]["country"].endswith("\u2026")


def test_passing_and_table_level_rules_have_no_failing_rows():
    assert all(not o.failing_rows for o in validate_dataframe(good_dim_users(), "dim_users").outcomes)
    result = validate_dataframe(good_dim_users().iloc[0:0], "dim_users")
    (failure,) = result.failures
    assert failure.failing_rows == []
    assert result.failure_records()[0]["failing_count"] is None
    assert "failing_rows" not in result.to_dict(rows=False)["outcomes"][0]
    assert "failing_rows" in result.to_dict()["outcomes"][0]
