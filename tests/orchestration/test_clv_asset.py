"""The customer_clv asset and its model-health checks, on a small warehouse built without dbt."""

import json
import warnings

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from orchestration.assets.clv import (
    CLV_TABLE,
    FIT_TABLE,
    HOLDOUT_INPUT_TABLE,
    HOLDOUT_TABLE,
    MAX_HOLDOUT_RELATIVE_ERROR,
    SUMMARY_TABLE,
    customer_clv,
    customer_clv__fit_converged,
    customer_clv__gamma_gamma_q_above_1,
    customer_clv__holdout_error,
    customer_clv__outputs_in_range,
    customer_clv__parameters_finite,
    customer_clv_checks,
)
from orchestration.checks.expectations import warehouse_suite_checks
from orchestration.resources import LifecycleSettings
from orchestration.warehouse import connect

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from lifetimes import BetaGeoFitter
    from lifetimes.datasets import load_dataset


def _cdnow_inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """CDNOW's calibration summary in days as both dbt inputs; a made-up but plausible holdout."""
    with warnings.catch_warnings():
        cdnow = load_dataset("cdnow_customers_summary_with_transactions.csv")
    summary = pd.DataFrame(
        {
            "user_id": [f"cdnow-{i:04d}" for i in cdnow["ID"]],
            "frequency": cdnow["x"],
            "recency": (cdnow["t_x"] * 7).round(),
            "t": (cdnow["T"] * 7).round(),
            "monetary_value": cdnow["zbar"],
            "as_of_date": pd.Timestamp("1997-09-30"),
            "observation_end_date": pd.Timestamp("1997-09-30"),
        }
    )
    # Holdout purchases drawn around what the published CDNOW parameters expect in weeks 40-78.
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(
        39, cdnow["x"], cdnow["t_x"], cdnow["T"]
    )
    holdout = summary.drop(columns="as_of_date").assign(
        holdout_frequency=np.random.default_rng(0).poisson(expected), holdout_days=273
    )
    return summary, holdout


def _write(settings: LifecycleSettings, summary: pd.DataFrame, holdout: pd.DataFrame) -> None:
    with connect(settings.warehouse_path) as conn:
        conn.execute("create schema if not exists intermediate")
        for table, frame in ((SUMMARY_TABLE, summary), (HOLDOUT_INPUT_TABLE, holdout)):
            conn.register("frame", frame)
            conn.execute(f"create or replace table {table} as select * from frame")
            conn.unregister("frame")


@pytest.fixture
def settings(tmp_path) -> LifecycleSettings:
    settings = LifecycleSettings(data_dir=str(tmp_path / "data"), landing_dir=str(tmp_path / "landing"))
    _write(settings, *_cdnow_inputs())
    return settings


def _materialize(settings: LifecycleSettings) -> dg.ExecuteInProcessResult:
    return dg.materialize([customer_clv, *customer_clv_checks], resources={"settings": settings})


def test_asset_scores_records_the_fit_and_every_check_passes(settings):
    result = _materialize(settings)
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {spec.name for check in customer_clv_checks for spec in check.check_specs}
    assert all(e.passed for e in evaluations.values()), {n: e.description for n, e in evaluations.items()}

    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert "| BG/NBD | r | 0.2426 |" in metadata["parameters"].value
    assert "| calibration frequency | customers | actual | predicted | abs. error |" in (
        metadata["holdout_evaluation"].value
    )
    assert abs(metadata["holdout_total_relative_error"].value) < MAX_HOLDOUT_RELATIVE_ERROR
    with connect(settings.warehouse_path, read_only=True) as conn:
        scores = conn.sql(f"select * from {CLV_TABLE}").df()
        fit = conn.sql(f"select * from {FIT_TABLE}").df()
        buckets = conn.sql(f"select * from {HOLDOUT_TABLE}").df()
    assert len(scores) == 2357 and "observation_end_date" not in scores
    assert len(fit) == 1 and fit.loc[0, "model_version"] == scores["model_version"].iloc[0]
    fit_info = json.loads(fit.loc[0, "fit_info"])
    assert fit_info["converged"] and fit_info["n_customers"] == 2357
    assert json.loads(fit.loc[0, "params"])["bgnbd"]["r"] == pytest.approx(0.2426, abs=5e-4)
    assert list(buckets["calibration_frequency"]) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert buckets["customers"].sum() == 2357


def _tamper(settings: LifecycleSettings, sql: str) -> None:
    with connect(settings.warehouse_path) as conn:
        conn.execute(sql)


def test_outputs_out_of_range_fail_the_blocking_check(settings):
    assert _materialize(settings).success
    _tamper(settings, f"update {CLV_TABLE} set p_alive = 1.5 where frequency = 2")
    _tamper(settings, f"update {CLV_TABLE} set clv = 'nan'::double where frequency = 3")
    result = customer_clv__outputs_in_range(settings=settings)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "rows with p_alive missing, not finite or outside [0, 1]" in result.description
    assert "rows with clv missing, not finite or outside [0, inf]" in result.description
    assert json.loads(json.dumps(result.metadata["failing_rows"].value)) == {"p_alive": 214, "clv": 100}


def test_fit_record_problems_fail_the_blocking_checks(settings):
    assert _materialize(settings).success
    with connect(settings.warehouse_path) as conn:
        params = json.loads(conn.execute(f"select params from {FIT_TABLE}").fetchone()[0])
    params["gamma_gamma"]["q"] = 0.9
    params["bgnbd"]["a"] = float("nan")
    _tamper(settings, f"update {FIT_TABLE} set params = '{json.dumps(params)}'")
    q_check = customer_clv__gamma_gamma_q_above_1(settings=settings)
    assert not q_check.passed and "q = 0.9 <= 1" in q_check.description
    finite = customer_clv__parameters_finite(settings=settings)
    assert not finite.passed and "'bgnbd.a': nan" in finite.description
    # Scores of another fit than the recorded one.
    _tamper(settings, f"update {CLV_TABLE} set model_version = 'bgnbd-gg-00000000'")
    converged = customer_clv__fit_converged(settings=settings)
    assert not converged.passed and "holds model_version bgnbd-gg-00000000" in converged.description


def test_holdout_check_only_warns(settings):
    summary, holdout = _cdnow_inputs()
    # A holdout the model cannot predict: everyone bought 3 times.
    _write(settings, summary, holdout.assign(holdout_frequency=3))
    result = _materialize(settings)
    assert result.success  # a warning never fails the run
    (warning,) = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert warning.check_name == "customer_clv__holdout_error"
    assert warning.severity == dg.AssetCheckSeverity.WARN
    assert "WARN above +-20%" in warning.description

    # No holdout data (e.g. the history is shorter than clv_holdout_days): a warning, scores still written.
    _write(settings, summary, holdout.head(0))
    assert _materialize(settings).success
    missing = customer_clv__holdout_error(settings=settings)
    assert not missing.passed and missing.severity == dg.AssetCheckSeverity.WARN
    assert f"{HOLDOUT_INPUT_TABLE} is empty" in missing.description


# ------------------------------------------------------------ too little data
def _few_repeat_customers(n_repeat: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    summary, holdout = _cdnow_inputs()
    keep = (summary["frequency"] == 0) | (
        summary.index.isin(summary.index[summary["frequency"] > 0][:n_repeat])
    )
    return summary[keep].reset_index(drop=True), holdout[keep].reset_index(drop=True)


def _materialize_with_suite(settings: LifecycleSettings) -> dg.ExecuteInProcessResult:
    suite_check = next(c for c in warehouse_suite_checks if "customer_clv__expectations" in str(c.check_keys))
    return dg.materialize([customer_clv, *customer_clv_checks, suite_check], resources={"settings": settings})


def test_too_few_repeat_customers_publish_no_scores_and_warn_with_the_reason(settings):
    summary, holdout = _few_repeat_customers(12)
    _write(settings, summary, holdout)
    result = _materialize_with_suite(settings)
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    fitted = evaluations["customer_clv__model_fitted"]
    assert not fitted.passed and fitted.severity == dg.AssetCheckSeverity.WARN
    assert "Gamma-Gamma needs at least 30 repeat customers" in fitted.description
    assert "found 12 " in fitted.description
    # the shipped audiences that read CLV scores are named
    assert "win_back_high_value, churn_rescue, vip_care" in fitted.description
    facts = fitted.metadata["facts"].value
    assert facts["n_gamma_gamma_customers"] == 12 and facts["n_customers"] == len(summary)
    # the blocking checks have nothing to block on: they pass and say why
    blocking = [
        "customer_clv__fit_converged",
        "customer_clv__parameters_finite",
        "customer_clv__gamma_gamma_q_above_1",
        "customer_clv__outputs_in_range",
        "customer_clv__expectations",
    ]
    for name in blocking:
        assert evaluations[name].passed, (name, evaluations[name].description)
    assert (
        "not applicable, the model was not fitted" in evaluations["customer_clv__fit_converged"].description
    )
    holdout_check = evaluations["customer_clv__holdout_error"]
    assert not holdout_check.passed and holdout_check.severity == dg.AssetCheckSeverity.WARN

    with connect(settings.warehouse_path, read_only=True) as conn:
        columns = [row[0] for row in conn.execute(f"describe {CLV_TABLE}").fetchall()]
        rows = conn.execute(f"select count(*) from {CLV_TABLE}").fetchall()[0][0]
        fit = conn.sql(f"select * from {FIT_TABLE}").df()
    assert rows == 0
    assert columns == [
        "user_id", "frequency", "recency", "t", "monetary_value", "as_of_date", "p_alive",
        "expected_purchases_30d", "expected_purchases_90d", "expected_purchases_365d",
        "expected_avg_order_value", "clv", "clv_horizon_months", "model_version",
    ]  # fmt: skip
    assert not fit.loc[0, "is_fitted"] and pd.isna(fit.loc[0, "model_version"])
    assert fit.loc[0, "not_fitted_reason"].startswith("Gamma-Gamma needs at least 30 repeat customers")
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["is_fitted"].value is False and metadata["dagster/row_count"].value == 0


def test_without_a_fit_the_blocking_checks_still_refuse_scores(settings):
    summary, holdout = _few_repeat_customers(12)
    _write(settings, summary, holdout)
    assert _materialize_with_suite(settings).success
    # scores that appear although no model was fitted are a defect: the strict checks catch them
    _tamper(
        settings,
        f"insert into {CLV_TABLE} (user_id, p_alive, expected_purchases_30d, expected_purchases_90d, "
        "expected_purchases_365d, expected_avg_order_value, clv, model_version) "
        "values ('x', 0.5, 0, 0, 0, 1, 0, 'bgnbd-gg-00000000')",
    )
    converged = customer_clv__fit_converged(settings=settings)
    assert not converged.passed and "holds 1 scores but no model was fitted" in converged.description
    suite_check = next(c for c in warehouse_suite_checks if "customer_clv__expectations" in str(c.check_keys))
    suite = suite_check(dg.build_asset_check_context(), settings=settings)
    assert not suite.passed
    assert "customer_clv holds no rows while its model is not fitted" in suite.description


def test_no_customer_at_all_is_not_fitted_either(settings):
    summary, holdout = _cdnow_inputs()
    _write(settings, summary.head(0), holdout.head(0))
    result = _materialize_with_suite(settings)
    assert result.success
    (fitted,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "customer_clv__model_fitted"
    ]
    assert not fitted.passed and "found 0 " in fitted.description
