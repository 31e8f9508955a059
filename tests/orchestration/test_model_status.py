"""The churn_risk checks when the model was not fitted: they warn once with the reason, pass the
blocking rules that have nothing to check, and still refuse scores that exist without a model.
On a tiny warehouse written by hand (the asset itself runs in the small-data end-to-end test)."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from orchestration.assets.churn import (
    CHURN_TABLE,
    FIT_TABLE,
    SNAPSHOT_DATES_TABLE,
    USER_DAYS_TABLE,
    churn_risk__beats_baselines,
    churn_risk__every_active_user_scored,
    churn_risk__outputs_in_range,
    churn_risk_checks,
)
from orchestration.checks.model_status import dependent_audiences, fit_status
from orchestration.project import load_audiences
from orchestration.resources import LifecycleSettings
from orchestration.warehouse import connect

REASON = "the churn model needs at least 2 labelled snapshot dates with active users, found 1: 2025-01-20"


@pytest.fixture
def settings(tmp_path) -> LifecycleSettings:
    settings = LifecycleSettings(data_dir=str(tmp_path / "data"), landing_dir=str(tmp_path / "landing"))
    settings.warehouse_path.parent.mkdir(parents=True)
    with connect(settings.warehouse_path) as conn:
        for schema in ("ml", "intermediate", "marts"):
            conn.execute(f"create schema {schema}")
        conn.execute(
            f"create table {CHURN_TABLE} (user_id varchar, as_of_date date, churn_risk double, "
            "risk_decile bigint, days_since_last_active bigint, model_version varchar)"
        )
        conn.execute(
            f"create table {FIT_TABLE} as select cast(null as varchar) as model_version, "
            "date '2025-02-19' as as_of_date, false as is_fitted, $reason as not_fitted_reason, "
            "$facts as fit_info",
            {"reason": REASON, "facts": json.dumps({"labelled_snapshot_dates": ["2025-01-20"]})},
        )
        conn.execute(
            f"create table {SNAPSHOT_DATES_TABLE} as select date '2025-02-19' as snapshot_date, "
            "date '2025-01-21' as lookback_start_date, true as is_scoring_snapshot"
        )
        conn.execute(
            f"create table {USER_DAYS_TABLE} as select * from (values ('u1', date '2025-02-01'), "
            "('u2', date '2025-02-18')) as t(user_id, activity_date)"
        )
    return settings


def _suite_check():
    return next(c for c in churn_risk_checks if "churn_risk__expectations" in str(c.check_keys))


def _fitted_check():
    return next(c for c in churn_risk_checks if "churn_risk__model_fitted" in str(c.check_keys))


def test_not_fitted_warns_once_and_blocks_nothing(settings):
    status = fit_status(settings, "churn_risk")
    assert (status.is_fitted, status.reason, status.model_version) == (False, REASON, None)
    assert status.fit_info == {"labelled_snapshot_dates": ["2025-01-20"]}

    warning = _fitted_check()(settings=settings)
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
    assert warning.description.startswith(f"churn_risk: WARN not fitted: {REASON}.")
    assert "get no members: churn_rescue." in warning.description
    assert warning.metadata["audiences_without_members"].value == ["churn_rescue"]

    for check in (churn_risk__outputs_in_range, churn_risk__every_active_user_scored):
        result = check(settings=settings)
        assert result.passed and result.severity == dg.AssetCheckSeverity.ERROR, result.description
        assert "not applicable, the model was not fitted" in result.description
    assert (
        "none of the 2 active users is scored"
        in churn_risk__every_active_user_scored(settings=settings).description
    )
    suite = _suite_check()(dg.build_asset_check_context(), settings=settings)
    assert suite.passed, suite.description
    baselines = churn_risk__beats_baselines(settings=settings)
    assert not baselines.passed and baselines.severity == dg.AssetCheckSeverity.WARN
    assert "no backtest, the model was not fitted" in baselines.description


def test_scores_without_a_model_fail_the_blocking_checks(settings):
    with connect(settings.warehouse_path) as conn:
        conn.execute(f"insert into {CHURN_TABLE} values ('u2', date '2025-02-19', 0.3, 5, 1, 'churn-hgb-x')")
    for check in (churn_risk__outputs_in_range, churn_risk__every_active_user_scored):
        result = check(settings=settings)
        assert not result.passed and "but no model was fitted" in result.description
    suite = _suite_check()(dg.build_asset_check_context(), settings=settings)
    assert not suite.passed
    assert "churn_risk holds no rows while its model is not fitted" in suite.description


def test_a_fitted_model_is_checked_in_full(settings):
    # the same empty table with a record that says "fitted": the full suite and rules apply
    with connect(settings.warehouse_path) as conn:
        conn.execute(
            f"update {FIT_TABLE} set is_fitted = true, not_fitted_reason = null, model_version = 'v'"
        )
    assert _fitted_check()(settings=settings).passed
    suite = _suite_check()(dg.build_asset_check_context(), settings=settings)
    assert not suite.passed and "churn_risk has at least one scored user" in suite.description
    scored = churn_risk__every_active_user_scored(settings=settings)
    assert not scored.passed and "2 of 2 active users have no churn score" in scored.description


def test_dependent_audiences_are_those_with_conditions_on_the_scores():
    shipped = load_audiences()
    assert dependent_audiences(shipped, "customer_clv") == ["win_back_high_value", "churn_rescue", "vip_care"]
    assert dependent_audiences(shipped, "churn_risk") == ["churn_rescue"]
    custom = [
        {"name": "a", "where": {"p_alive": {"max": 0.2}}},
        {"name": "b", "where": {"lifecycle_stage": "loyal"}},
        {"name": "c", "where": {"churn_risk": {"min": 0.9}, "clv": {"min": 10}}},
    ]
    assert dependent_audiences(custom, "customer_clv") == ["a", "c"]
    assert dependent_audiences(custom, "churn_risk") == ["c"]
    assert dependent_audiences(pd.DataFrame().to_dict(orient="records"), "churn_risk") == []
