"""Tests for models_py.clv: golden CDNOW values, recovery of known truth, and agreement with lifetimes."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models_py import clv
from models_py.clv import ClvModel

with warnings.catch_warnings():
    # The tests compare with lifetimes itself; it is already imported (quietly) by models_py.clv.
    warnings.filterwarnings(
        "ignore", message=r"The 'mode\.chained_assignment' option is deprecated", category=DeprecationWarning
    )
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value
    from lifetimes.utils import ConvergenceError

REPO_ROOT = Path(__file__).resolve().parents[2]

# Fader, Hardie & Lee (2005a), CDNOW, weeks: BG/NBD estimates and log-likelihood.
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LL = -9582.4
# Fader, Hardie & Lee (2005b) / Hardie's note 025: Gamma-Gamma on the 946 CDNOW repeat customers.
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


# ------------------------------------------------------------------ data
def _cdnow_days() -> pd.DataFrame:
    """CDNOW summary (2,357 customers) converted from weeks to days, in the project's column names."""
    weeks = load_cdnow_summary(index_col=[0])
    with_value = load_cdnow_summary_data_with_monetary_value()
    # The two bundled files describe the same customers; the second one adds the mean spend.
    assert np.array_equal(
        weeks[["frequency", "recency", "T"]].to_numpy(), with_value[["frequency", "recency", "T"]]
    )
    return pd.DataFrame(
        {
            "frequency": weeks["frequency"].to_numpy(),
            "recency": weeks["recency"].to_numpy() * 7,
            "t": weeks["T"].to_numpy() * 7,
            "monetary_value": with_value["monetary_value"].to_numpy(),
        },
        index=weeks.index,
    )


def _simulate_bgnbd(n, r, alpha, a, b, t, seed, whole_days=False):
    """Draw (frequency, recency) from the BG/NBD generative story for ages ``t``.

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); the customer drops out right after the K-th repeat
    purchase, K ~ Geometric(p) on {1, 2, ...}; purchases while alive are Poisson(lambda). So
    x = min(K, N(t)) with N(t) ~ Poisson(lambda t), and given N(t) = n the purchase times are n
    uniform order statistics on (0, t): the x-th one is t * Beta(x, n - x + 1).
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    n_t = rng.poisson(lam * t)
    x = np.minimum(rng.geometric(p), n_t)
    u = rng.beta(np.maximum(x, 1), np.maximum(n_t - x + 1, 1))
    recency = np.where(x > 0, t * u, 0.0)
    if whole_days:
        recency = np.ceil(recency)
    monetary = np.where(x > 0, np.round(rng.gamma(6.0, 2.0, n), 2), 0.0)
    return pd.DataFrame({"frequency": x, "recency": recency, "t": t, "monetary_value": monetary})


def _lifetimes_fitters(params: dict) -> tuple[BetaGeoFitter, GammaGammaFitter]:
    """lifetimes fitters carrying the given parameters (lifetimes binds ``predict`` only inside fit)."""
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(params["bgnbd"])
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series(params["gamma_gamma"])
    return bgf, ggf


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return _cdnow_days()


@pytest.fixture(scope="module")
def week_model(cdnow) -> ClvModel:
    return ClvModel(time_unit="week").fit(cdnow)


@pytest.fixture(scope="module")
def day_model(cdnow) -> ClvModel:
    return ClvModel(time_unit="day").fit(cdnow)


# ---------------------------------------------------------------- import
def test_import_filters_only_the_lifetimes_pandas_warning():
    # A fresh interpreter with every warning turned into an error: importing models_py.clv must be
    # clean, must not leave lifetimes' global "ignore FutureWarning" behind, and the one warning we
    # filter must still exist (if lifetimes stops emitting it, drop the filter).
    script = """
import importlib, warnings
warnings.simplefilter("error")
import models_py.clv
assert not [f for f in warnings.filters if f[0] == "ignore" and f[2] is FutureWarning], warnings.filters
import lifetimes.utils
try:
    importlib.reload(lifetimes.utils)
except DeprecationWarning as exc:
    assert "mode.chained_assignment" in str(exc), exc
else:
    raise SystemExit("lifetimes no longer warns at import: remove the filter in models_py/clv.py")
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_fit_and_predict_leave_warning_filters_alone(cdnow):
    # lifetimes calls warnings.simplefilter("ignore", FutureWarning) inside its likelihoods.
    before = list(warnings.filters)
    ClvModel().fit(cdnow).predict(cdnow.head(50))
    assert warnings.filters == before


# --------------------------------------------------------------- golden
def test_cdnow_bgnbd_reproduces_published_parameters(week_model):
    bg = week_model.params_["bgnbd"]
    for name, published in PUBLISHED_BGNBD.items():
        # Published to three decimals: the estimate must round to the published value.
        assert abs(bg[name] - published) <= 0.0005, (name, bg[name], published)
    # Published to one decimal; the total log-likelihood is in weeks, as in the paper.
    assert abs(week_model.fit_info_["bgnbd_log_likelihood"] - PUBLISHED_BGNBD_LL) <= 0.05
    assert week_model.fit_info_["n_customers"] == 2357
    assert week_model.fit_info_["n_repeat_customers"] == 946
    assert week_model.fit_info_["n_distinct_rows"] < 2357  # weights did real work


def test_cdnow_gamma_gamma_reproduces_published_parameters(week_model):
    gg = week_model.params_["gamma_gamma"]
    for name, published in PUBLISHED_GAMMA_GAMMA.items():
        # Published to two decimals from the raw spend; the bundled file stores the mean spend
        # rounded to cents, which moves the MLE in the third decimal (v comes out at 15.448):
        # allow one unit of the last published digit.
        assert abs(gg[name] - published) <= 0.01, (name, gg[name], published)
    assert week_model.fit_info_["n_gamma_gamma_customers"] == 946


def test_day_unit_scales_alpha_only(week_model, day_model, cdnow):
    week, day = week_model.params_, day_model.params_
    for name in ("r", "a", "b"):
        assert day["bgnbd"][name] == pytest.approx(week["bgnbd"][name], rel=1e-8)
    assert day["bgnbd"]["alpha"] == pytest.approx(7 * week["bgnbd"]["alpha"], rel=1e-8)
    assert day["gamma_gamma"] == pytest.approx(week["gamma_gamma"], rel=1e-12)
    # Predictions do not depend on the unit the model was fitted in (a month is 30 days in both).
    pd.testing.assert_frame_equal(week_model.predict(cdnow), day_model.predict(cdnow), rtol=1e-8)
    assert week_model.model_version() != day_model.model_version()


# -------------------------------------------------------------- weights
@pytest.mark.parametrize("data", ["cdnow", "whole_days"])
def test_weighted_fit_equals_unweighted_lifetimes_fit(data, cdnow):
    if data == "cdnow":
        summary = cdnow
    else:
        t = np.random.default_rng(11).integers(1, 91, 5000).astype(float)
        summary = _simulate_bgnbd(5000, r=0.5, alpha=10.0, a=0.8, b=2.5, t=t, seed=11, whole_days=True)
    model = ClvModel().fit(summary)
    assert model.fit_info_["n_distinct_rows"] < 0.75 * len(summary)

    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    with warnings.catch_warnings():
        bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["t"])
        ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    assert model.params_["bgnbd"] == pytest.approx(bgf.params_.to_dict(), rel=1e-6)
    assert model.params_["gamma_gamma"] == pytest.approx(ggf.params_.to_dict(), rel=1e-6)
    # lifetimes' standard errors are per-customer based: the weights must not change them either.
    assert model.fit_info_["bgnbd_standard_errors"] == pytest.approx(bgf.standard_errors_.to_dict(), rel=1e-4)


# ------------------------------------------------------------- recovery
def test_recovers_known_bgnbd_parameters():
    truth = PUBLISHED_BGNBD
    n = 50_000
    t_weeks = np.random.default_rng(5).uniform(26, 78, n)
    summary = _simulate_bgnbd(n, **truth, t=t_weeks, seed=5)
    summary[["recency", "t"]] *= 7  # the model takes days
    model = ClvModel(time_unit="week").fit(summary)
    est, se = model.params_["bgnbd"], model.fit_info_["bgnbd_standard_errors"]
    for name, value in truth.items():
        # The MLE is asymptotically normal around the truth with lifetimes' standard error: 4 SE
        # fails by chance with probability ~6e-5 per parameter (and the seed is fixed). The SEs
        # must also be small (< 10 %), so that the bound says something (a ~4 %, b ~6 % at n=50k).
        assert se[name] < 0.1 * value, (name, se[name])
        assert abs(est[name] - value) < 4 * se[name], (name, est[name], value, se[name])


# --------------------------------------------------------------- predict
def test_predict_shape_index_and_model_properties(day_model, cdnow):
    summary = cdnow.sample(frac=1.0, random_state=3)  # shuffled
    summary.index = [f"user_{i}" for i in summary.index]
    summary["ignored"] = "x"
    out = day_model.predict(summary, horizons_days=(30, 90, 365))

    assert list(out.columns) == [
        "p_alive",
        "expected_purchases_30d",
        "expected_purchases_90d",
        "expected_purchases_365d",
        "expected_avg_order_value",
        "clv",
    ]
    assert out.index.equals(summary.index)
    first_buyers = summary["frequency"].to_numpy() == 0
    p_alive = out["p_alive"].to_numpy()
    assert ((p_alive >= 0) & (p_alive <= 1)).all()
    assert (p_alive[first_buyers] == 1).all()  # BG/NBD: no repeat purchase, no chance to drop out
    assert (p_alive[~first_buyers] < 1).all()
    assert (out["expected_purchases_30d"] < out["expected_purchases_90d"]).all()
    assert (out["expected_purchases_90d"] < out["expected_purchases_365d"]).all()
    assert (out["clv"] >= 0).all()
    gg = day_model.params_["gamma_gamma"]
    population_mean = gg["p"] * gg["v"] / (gg["q"] - 1)
    np.testing.assert_allclose(out.loc[first_buyers, "expected_avg_order_value"], population_mean, rtol=1e-12)


def test_predict_first_buyers_accept_nan_monetary_value(day_model, cdnow):
    summary = cdnow.copy()
    summary["monetary_value"] = summary["monetary_value"].where(summary["frequency"] > 0)  # NaN
    pd.testing.assert_frame_equal(day_model.predict(summary), day_model.predict(cdnow))


@pytest.mark.parametrize(
    ("kwargs", "lifetimes_kwargs", "margin"),
    [
        ({}, {"time": 12, "discount_rate": 0.01}, 1.0),
        (
            {"clv_horizon_months": 6, "monthly_discount_rate": 0.02, "margin": 0.3},
            {"time": 6, "discount_rate": 0.02},
            0.3,
        ),
    ],
)
def test_predict_equals_lifetimes(day_model, cdnow, kwargs, lifetimes_kwargs, margin):
    sample = cdnow.sample(n=600, random_state=7)  # includes repeated (frequency, recency, t) rows
    out = day_model.predict(sample, **kwargs)
    bgf, ggf = _lifetimes_fitters(day_model.params_)
    f, r, t, m = (sample[c] for c in ("frequency", "recency", "t", "monetary_value"))

    np.testing.assert_allclose(out["p_alive"], bgf.conditional_probability_alive(f, r, t), rtol=1e-12)
    for h in (30, 90, 365):
        np.testing.assert_allclose(out[f"expected_purchases_{h}d"], bgf.predict(h, f, r, t), rtol=1e-12)
    np.testing.assert_allclose(
        out["expected_avg_order_value"], ggf.conditional_expected_average_profit(f, m), rtol=1e-12
    )
    expected_clv = margin * ggf.customer_lifetime_value(bgf, f, r, t, m, freq="D", **lifetimes_kwargs)
    assert np.max(np.abs(out["clv"] / expected_clv - 1)) < 1e-9


def test_predict_certainly_dead_history_is_zero_without_warnings(day_model):
    # 300 purchase days in the first 10 days, then nothing for two years: lifetimes' odds term
    # overflows to inf; the model's limit is 0 expected purchases, and no warning should leak.
    extreme = pd.DataFrame({"frequency": [300], "recency": [10.0], "t": [730.0], "monetary_value": [20.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = day_model.predict(extreme)
    assert out.loc[0, "p_alive"] == pytest.approx(0.0, abs=1e-12)
    assert out.loc[0, "expected_purchases_365d"] == pytest.approx(0.0, abs=1e-12)
    assert out.loc[0, "clv"] == pytest.approx(0.0, abs=1e-9)


def test_predict_argument_errors(day_model, cdnow):
    with pytest.raises(ValueError, match="horizons_days"):
        day_model.predict(cdnow, horizons_days=(30, 30))
    with pytest.raises(ValueError, match="horizons_days"):
        day_model.predict(cdnow, horizons_days=(0,))
    with pytest.raises(ValueError, match="clv_horizon_months"):
        day_model.predict(cdnow, clv_horizon_months=-1)
    with pytest.raises(ValueError, match="monthly_discount_rate"):
        day_model.predict(cdnow, monthly_discount_rate=float("nan"))
    with pytest.raises(RuntimeError, match="not fitted"):
        ClvModel().predict(cdnow)


# ------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("frequency", -1, r"'frequency'.*frequency >= 0"),
        ("frequency", 1.5, r"'frequency'.*whole number"),
        ("recency", -3.0, r"'recency'.*recency >= 0"),
        ("recency", np.nan, r"'recency'.*finite"),
        ("t", -1.0, r"'t'.*t >= 0"),
        ("recency", 10_000.0, r"'recency'.*recency <= t"),
        ("monetary_value", -5.0, r"'monetary_value'.*monetary_value >= 0"),
        ("monetary_value", np.nan, r"'monetary_value'.*finite when frequency > 0"),
    ],
)
def test_validation_names_column_and_rule(cdnow, column, value, match):
    bad = cdnow.copy()
    bad[column] = bad[column].astype(float)
    repeat_row = bad.index[bad["frequency"] > 1][0]
    bad.loc[repeat_row, column] = value
    with pytest.raises(ValueError, match=match):
        ClvModel().fit(bad)


def test_validation_first_buyer_rules_and_missing_column(cdnow, day_model):
    bad = cdnow.copy()
    bad.loc[bad.index[bad["frequency"] == 0][0], "recency"] = 3.0
    with pytest.raises(ValueError, match=r"'recency'.*recency == 0 when frequency == 0"):
        ClvModel().fit(bad)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['t'\]"):
        ClvModel().fit(cdnow.drop(columns="t"))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['monetary_value'\]"):
        day_model.predict(cdnow.drop(columns="monetary_value"))


def test_too_few_repeat_customers_fail_clearly(cdnow):
    few = pd.concat([cdnow[cdnow["frequency"] == 0], cdnow[cdnow["frequency"] > 0].head(5)])
    with pytest.raises(ValueError, match=r"only 5 customers with frequency > 0 and monetary_value > 0"):
        ClvModel().fit(few)


# ----------------------------------------------------------- convergence
def test_penalizer_ladder_retries_then_reports_data_shape(cdnow, monkeypatch):
    class FailsUnpenalized(BetaGeoFitter):
        def fit(self, *args, **kwargs):
            if self.penalizer_coef < 1e-3:
                raise ConvergenceError("forced failure")
            return super().fit(*args, **kwargs)

    monkeypatch.setattr(clv, "BetaGeoFitter", FailsUnpenalized)
    model = ClvModel().fit(cdnow)
    assert model.fit_info_["bgnbd_ladder_step"] == 1
    assert model.fit_info_["bgnbd_penalizer_coef"] == 1e-3
    assert model.fit_info_["gg_ladder_step"] == 0

    class NeverConverges(BetaGeoFitter):
        def fit(self, *args, **kwargs):
            raise ConvergenceError("forced failure")

    monkeypatch.setattr(clv, "BetaGeoFitter", NeverConverges)
    with pytest.raises(ValueError, match=r"BG/NBD fit failed.*n_customers=2357.*max_frequency=29"):
        ClvModel().fit(cdnow)


def test_gamma_gamma_without_population_mean_fails_clearly(cdnow):
    # Pareto spend with tail index 0.6 has no mean: Gamma-Gamma answers q <= 1 at every penalizer.
    heavy = cdnow.copy()
    spend = (np.random.default_rng(2).pareto(0.6, len(heavy)) + 1) * 10
    heavy["monetary_value"] = np.where(heavy["frequency"] > 0, spend, 0.0)
    with pytest.raises(ValueError, match=r"Gamma-Gamma fit failed.*q = .* <= 1.*n_gamma_gamma_customers=946"):
        ClvModel().fit(heavy)


# ----------------------------------------------------------- determinism
def test_fit_is_deterministic_and_versioned(cdnow, day_model):
    again = ClvModel().fit(cdnow)
    shuffled = ClvModel().fit(cdnow.sample(frac=1.0, random_state=1))
    assert again.params_ == day_model.params_
    assert shuffled.params_ == day_model.params_  # the distinct rows are sorted: row order is irrelevant
    assert again.model_version() == day_model.model_version()
    assert (
        again.model_version().startswith("bgnbd-gg-") and len(again.model_version()) == len("bgnbd-gg-") + 8
    )
    other = ClvModel().fit(cdnow.iloc[: len(cdnow) // 2])
    assert other.model_version() != day_model.model_version()
