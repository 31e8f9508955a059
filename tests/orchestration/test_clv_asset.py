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
