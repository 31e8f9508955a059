"""The whole flow, in-process, on a generated dataset: what the published mart must hold."""

import json

import duckdb
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

STAGES = {"churned", "dormant", "reactivated", "prospect", "new_customer", "loyal", "growing"}


@pytest.fixture(scope="module")
def mart(published_run):
    assert published_run.result.success, "build_mart_job failed; see the captured log"
    with duckdb.connect(str(published_run.settings.published_mart_path), read_only=True) as conn:
        yield {
            table: conn.sql(f"select * from {table}").df()
            for table in ("dim_users", "fct_user_days", "customer_clv", "mart_info")
        }


@pytest.fixture(scope="module")
def expected(published_run):
    """The same facts recomputed in pandas straight from the generated frames (independent of dbt)."""
    dataset = published_run.dataset
    as_of = pd.Timestamp(dataset.config.end_date)
    events = dataset.events[dataset.events["event_type"] != "app_heartbeat"]
    tx = dataset.transactions
    orders = tx[(tx["transaction_type"] == "order") & (tx["status"] == "completed")]
    refunds = tx[tx["transaction_type"] == "refund"].groupby("order_id")["amount"].sum()
    orders = orders.assign(refunded=orders["order_id"].map(refunds).fillna(0.0))
    orders = orders.assign(net=orders["amount"] - orders["refunded"])
    user_days = pd.concat(
        [
            events[["user_id"]].assign(day=events["occurred_at"].dt.normalize()),
            orders[["user_id"]].assign(day=orders["occurred_at"].dt.normalize()),
            dataset.users[["user_id"]].assign(day=dataset.users["signup_at"].dt.normalize()),
        ]
    ).drop_duplicates()
    assert user_days["day"].max() <= as_of
    customers = orders.loc[orders["net"] > 0, "user_id"].nunique()
    return {
        "user_days": len(user_days),
        "users": user_days["user_id"].nunique(),
        "customers": customers,
        "net_revenue": round(orders["net"].sum(), 2),
    }


def test_run_succeeded_and_every_check_passed(published_run):
    result = published_run.result
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    failed = [e.check_name for e in evaluations if not e.passed]
    assert not failed
    names = {e.check_name for e in evaluations}
    assert {
        "raw_transactions__expectations",
        "customer_clv__expectations",
        "mart_staging__expectations",
        "mart_staging__reconciliation",
    } <= names
    # dbt tests ran as checks too
    assert "unique_dim_users_user_id" in names


def test_every_asset_was_materialised(published_run):
    keys = {
        event.asset_key.to_user_string() for event in published_run.result.get_asset_materialization_events()
    }
    assert {
        "raw/users",
        "raw/events",
        "raw/transactions",
        "stg_raw__events",
        "fct_user_days",
        "dim_users",
        "int_customers_summarized",
        "customer_clv",
        "mart_staging",
        "reporting_mart",
    } <= keys


def test_row_counts_match_the_input(mart, expected):
    assert len(mart["fct_user_days"]) == expected["user_days"]
    assert len(mart["dim_users"]) == expected["users"]
    assert len(mart["customer_clv"]) == expected["customers"]
    assert float(mart["dim_users"]["net_revenue"].astype(float).sum()) == pytest.approx(
        expected["net_revenue"], abs=0.01
    )


def test_each_user_is_in_exactly_one_stage(mart):
    users = mart["dim_users"]
    assert users["user_id"].is_unique
    assert set(users["lifecycle_stage"]) <= STAGES
    assert users.groupby("lifecycle_stage").size().sum() == len(users)
    # the rules themselves: inactivity thresholds and order counts
    assert (users.loc[users["lifecycle_stage"] == "churned", "days_inactive"] > 90).all()
    dormant = users.loc[users["lifecycle_stage"] == "dormant", "days_inactive"]
    assert ((dormant > 30) & (dormant <= 90)).all()
    assert (users.loc[users["lifecycle_stage"] == "prospect", "orders_count"] == 0).all()
    assert (users.loc[users["lifecycle_stage"] == "new_customer", "orders_count"] == 1).all()
    assert (users.loc[users["lifecycle_stage"] == "loyal", "orders_in_loyal_window"] >= 4).all()
    # the generator makes every stage appear in a dataset of this size
    assert set(users["lifecycle_stage"]) == STAGES


def test_clv_outputs_are_in_range(mart):
    clv = mart["customer_clv"]
    assert clv["p_alive"].between(0, 1).all()
    assert (clv.loc[clv["frequency"] == 0, "p_alive"] == 1).all()
    assert (clv["clv"] >= 0).all()
    assert (clv["expected_purchases_365d"] >= clv["expected_purchases_30d"]).all()
    assert clv["model_version"].nunique() == 1
    assert set(clv["user_id"]) <= set(mart["dim_users"]["user_id"])


def test_mart_knows_its_as_of_date(mart, published_run):
    (as_of,) = mart["mart_info"]["as_of_date"]
    assert pd.Timestamp(as_of).date() == published_run.dataset.config.end_date
    assert (mart["dim_users"]["as_of_date"] == as_of).all()


def test_publication_links_its_html_report_and_the_models_carry_their_plots(published_run):
    from pathlib import Path

    from orchestration.plots import MART_PLOTS, MODEL_PLOTS

    result = published_run.result
    (publication,) = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key.to_user_string() == "reporting_mart"
    ]
    metadata = publication.materialization.metadata
    report = Path(metadata["report"].value)
    assert report.is_file() and report.stem == metadata["version"].value
    document = report.read_text()
    assert "http://" not in document and "https://" not in document
    # every plot of the mart and of the models is in the report: nothing was left out
    assert "<h2>Not drawn</h2>" not in document
    assert document.count('src="data:image/png;base64,') == len(MART_PLOTS) + len(MODEL_PLOTS)
    for asset, keys in {
        "customer_clv": ["plot_clv_holdout_calibration"],
        "churn_risk": ["plot_churn_roc", "plot_churn_reliability"],
    }.items():
        (event,) = [
            m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == asset
        ]
        for key in keys:
            assert event.materialization.metadata[key].value.startswith("![")


def test_the_dbt_unit_tests_ran_in_the_job_and_passed(published_run):
    """The session's published run has LIFECYCLE_DBT_UNIT_TESTS on: the last dbt step's results
    (fct_audience_members and its audience unit tests) hold unit tests, all passed."""
    run_results = json.loads((published_run.settings.dbt_target_dir / "run_results.json").read_text())
    unit_tests = [r for r in run_results["results"] if r["unique_id"].startswith("unit_test.")]
    assert unit_tests, "no dbt unit test ran"
    assert {r["status"] for r in unit_tests} == {"pass"}
