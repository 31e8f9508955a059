"""Tests for models_py.clv: golden CDNOW values, recovery of known truth, and agreement with lifetimes."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models_py import clv
from models_py.clv import CannotFitError, ClvModel, evaluate_holdout
from models_py.generator import GeneratedDataset, GeneratorConfig, generate

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
def _whole_days_summary() -> pd.DataFrame:
    t = np.random.default_rng(11).integers(1, 91, 5000).astype(float)
    return _simulate_bgnbd(5000, r=0.5, alpha=10.0, a=0.8, b=2.5, t=t, seed=11, whole_days=True)


@pytest.mark.parametrize("data", ["cdnow", "whole_days"])
def test_weighted_likelihood_is_the_per_customer_likelihood(data, cdnow):
    # The identity the weighted fit rests on: at any parameters, the weighted log-likelihood of the
    # distinct rows equals the sum over customers, to rounding.
    summary = cdnow if data == "cdnow" else _whole_days_summary()
    f, r, t = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "t"))
    rows = clv._distinct_rows({"frequency": f, "recency": r, "t": t})
    assert len(rows) < 0.75 * len(summary) and rows["weight"].sum() == len(summary)
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    gg_rows = clv._distinct_rows(
        {
            "frequency": repeat["frequency"].to_numpy(dtype=float),
            "monetary_value": repeat["monetary_value"].to_numpy(),
        }
    )
    ones, gg_ones = np.ones(len(summary)), np.ones(len(repeat))
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        for _ in range(5):
            log_params = rng.normal(0.0, 1.0, 4)
            weighted = BetaGeoFitter._negative_log_likelihood(
                log_params, *(rows[c].to_numpy() for c in rows), 0.0
            )
            plain = BetaGeoFitter._negative_log_likelihood(log_params, f, r, t, ones, 0.0)
            assert weighted == pytest.approx(plain, rel=1e-12)
            log_params = rng.normal(1.0, 1.0, 3)
            weighted = GammaGammaFitter._negative_log_likelihood(
                log_params, *(gg_rows[c].to_numpy() for c in gg_rows), 0.0
            )
            plain = GammaGammaFitter._negative_log_likelihood(
                log_params,
                repeat["frequency"].to_numpy(dtype=float),
                repeat["monetary_value"].to_numpy(),
                gg_ones,
                0.0,
            )
            assert weighted == pytest.approx(plain, rel=1e-12)


@pytest.mark.parametrize("data", ["cdnow", "whole_days"])
def test_weighted_fit_equals_unweighted_lifetimes_fit(data, cdnow):
    summary = cdnow if data == "cdnow" else _whole_days_summary()
    model = ClvModel().fit(summary)
    assert model.fit_info_["n_distinct_rows"] < 0.75 * len(summary)

    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    with warnings.catch_warnings():
        bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["t"])
        ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    # Same likelihood, same start and same optimiser: measured agreement is ~1e-12 (the sums are
    # only ordered differently), far inside scipy's tolerance; 1e-9 leaves room for BLAS rounding.
    assert model.params_["bgnbd"] == pytest.approx(bgf.params_.to_dict(), rel=1e-9)
    assert model.params_["gamma_gamma"] == pytest.approx(ggf.params_.to_dict(), rel=1e-9)
    # lifetimes' standard errors are per customer: the weights must not change them either.
    assert model.fit_info_["bgnbd_standard_errors"] == pytest.approx(bgf.standard_errors_.to_dict(), rel=1e-6)
    assert model.fit_info_["gg_standard_errors"] == pytest.approx(ggf.standard_errors_.to_dict(), rel=1e-6)
    # The recorded log-likelihood is the per-customer total at the estimate, in the fitted unit.
    with warnings.catch_warnings():
        plain_ll = -BetaGeoFitter._negative_log_likelihood(
            np.log(bgf.params_.to_numpy()),
            *(summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "t")),
            np.ones(len(summary)),
            0.0,
        ) * len(summary)
    assert model.fit_info_["bgnbd_log_likelihood"] == pytest.approx(plain_ll, rel=1e-9)


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


def _exact_time_summary(dataset: GeneratedDataset) -> pd.DataFrame:
    """The BG/NBD + Gamma-Gamma summary of the generator's purchase process, in exact (fractional) days.

    Every completed order counts (refunds are drawn on top of the process, not part of it), at its
    own time: this is the model the generator draws from, so the MLE is consistent. (The SQL
    summary merges same-day orders, which biases alpha up for the fastest buyers; see
    tests/models_py/test_generator.py.)
    """
    tx = dataset.transactions
    orders = tx[(tx["transaction_type"] == "order") & (tx["status"] == "completed")]
    orders = orders.sort_values(["occurred_at", "transaction_id"])
    per_user = orders.groupby("user_id")
    first, last = per_user["occurred_at"].min(), per_user["occurred_at"].max()
    end = pd.Timestamp(dataset.config.end_date) + pd.Timedelta(days=1)
    day = pd.Timedelta(days=1)
    repeat_mean = orders[per_user.cumcount() > 0].groupby("user_id")["amount"].mean()
    return pd.DataFrame(
        {
            "frequency": per_user.size() - 1,
            "recency": (last - first) / day,
            "t": (end - first) / day,
            "monetary_value": repeat_mean.reindex(first.index).fillna(0.0),
        }
    )


def test_recovers_the_generators_known_truth():
    dataset = generate(GeneratorConfig(seed=3, n_users=40_000, n_days=365))
    summary = _exact_time_summary(dataset)
    model = ClvModel().fit(summary)
    info, truth = model.fit_info_, dataset.truth()
    assert info["n_customers"] > 14_000 and info["n_gamma_gamma_customers"] > 5_000

    # Tolerance: 4 asymptotic standard errors (delta method on the inverse Hessian; for the mean
    # rate and mean spend the covariance terms included). Over 30 seeds of this config the
    # standardised errors (estimate - truth) / SE had standard deviations 0.85 to 0.99 and stayed
    # within +-2.8: the SEs are calibrated, and 4 SE fails by chance with probability ~6e-5 per
    # quantity. The SEs must also be small enough for the bound to mean something.
    relative_se = {"r": 0.03, "alpha": 0.05, "a": 0.08, "b": 0.12, "p": 0.10, "q": 0.05, "v": 0.12}
    estimates = {
        **model.params_["bgnbd"],
        **model.params_["gamma_gamma"],
        "mean_purchase_rate_per_day": info["bgnbd_mean_purchase_rate_per_day"],
        "mean_spend": info["gg_mean_spend"],
    }
    errors = {
        **info["bgnbd_standard_errors"],
        **info["gg_standard_errors"],
        "mean_purchase_rate_per_day": info["bgnbd_mean_purchase_rate_per_day_se"],
        "mean_spend": info["gg_mean_spend_se"],
    }
    bg, gg = truth["bgnbd"], truth["gamma_gamma"]
    expected = {
        **bg,
        "p": gg["p"],
        "q": gg["q"],
        "v": gg["gamma"],
        "mean_purchase_rate_per_day": bg["r"] / bg["alpha"],  # E[lambda] of Gamma(r, rate alpha)
        "mean_spend": gg["p"] * gg["gamma"] / (gg["q"] - 1),  # E[M], note 025 eq. 4
    }
    relative_se |= {"mean_purchase_rate_per_day": 0.03, "mean_spend": 0.015}
    for name, value in expected.items():
        assert errors[name] < relative_se[name] * value, (name, errors[name])
        assert abs(estimates[name] - value) < 4 * errors[name], (name, estimates[name], value, errors[name])


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


# BG/NBD parameters fitted (in days) on the customer summaries of two short demo histories, where
# lifetimes' expected purchases were NaN for every customer without a repeat purchase (a + b < 1
# makes c = a + b + x - 1 negative for x = 0, and lifetimes takes the log of the then negative 2F1).
SHORT_HISTORY_FITS = {
    # 500 users over 120 days, seed 42: 152 customers, 48 repeat; NaN for 104 of 152.
    "500x120": {
        "r": 0.298010202300112,
        "alpha": 14.49234834909029,
        "a": 0.1785639714125963,
        "b": 0.7283603295702477,
    },
    # 800 users over 90 days, seed 42: 258 customers, 72 repeat; NaN for 186 of 258. The fit sits at
    # the edge of the parameter space (a, b -> 0): dropout is p = 0 or p = 1, in odds a : b.
    "800x90": {
        "r": 0.4107944378065358,
        "alpha": 23.83042469835809,
        "a": 3.459258034676221e-07,
        "b": 7.899420866636582e-07,
    },
}
# (x, t_x, T) in days, covering the summaries' ranges (x up to 9, T up to 115).
SHORT_HISTORIES = [(0, 0, 0), (0, 0, 47), (0, 0, 115), (1, 10, 50), (2, 20, 50), (3, 5, 100), (9, 100, 110)]


def _expected_purchases_by_quadrature(params, horizon, x, t_x, big_t):
    """E[Y(horizon) | x, t_x, T] from the model's definition, without hypergeometric functions.

    Given lambda and p, a customer alive at T buys (1 - exp(-lambda p horizon)) / p times on
    average; the history's likelihood is (1-p)^x lambda^x e^(-lambda T) (alive) plus
    p (1-p)^(x-1) lambda^x e^(-lambda t_x) (dropped out after the last purchase, x > 0). With
    lambda ~ Gamma(r, alpha) integrated out in closed form, one integral over p ~ Beta(a, b) is
    left, done numerically (p = s^(1/a) removes the p^(a-1) singularity).
    """
    from scipy import integrate
    from scipy.special import betaln

    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    k, beta = r + x, b - 1 + x

    def integrand(s):
        log_s = np.log(s)
        p = np.exp(log_s / a)
        gain = -np.expm1(-k * np.log1p(p * horizon / (alpha + big_t))) / p
        # (1 - p) / (1 - s), the smooth part of (1 - p)^beta next to the weight (1 - s)^beta
        ratio = np.expm1(log_s / a) / np.expm1(log_s) if log_s < 0 else 1 / a
        return gain * ratio**beta / a

    alive, _ = integrate.quad(
        integrand, 0, 1, weight="alg", wvar=(0, beta), epsabs=0, epsrel=1e-12, limit=200
    )
    likelihood = np.exp(betaln(a, b + x))
    if x > 0:
        likelihood += np.exp(betaln(a + 1, b + x - 1)) * ((alpha + big_t) / (alpha + t_x)) ** k
    return alive / likelihood


def _expected_purchases_two_point_dropout(params, horizon, x, t_x, big_t):
    """The limit a, b -> 0 (a / (a + b) = pi): a share pi drops out at the first repeat purchase
    (p = 1), the others never (p = 0)."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    pi = a / (a + b)
    # p = 0: Poisson purchases at a rate lambda | history ~ Gamma(r + x, alpha + T)
    never = (r + x) / (alpha + big_t) * horizon
    if x == 0:  # both kinds are alive; p = 1 buys once more at most
        return (1 - pi) * never + pi * (1 - ((alpha + big_t) / (alpha + big_t + horizon)) ** r)
    if x == 1:  # p = 1 dropped out right after its one repeat purchase
        alive = (1 - pi) * (alpha + big_t) ** -(r + 1)
        return alive / (alive + pi * (alpha + t_x) ** -(r + 1)) * never
    return never  # two repeat purchases rule p = 1 out


@pytest.mark.parametrize("fit", sorted(SHORT_HISTORY_FITS))
def test_expected_purchases_are_finite_where_lifetimes_gives_nan(fit):
    params = SHORT_HISTORY_FITS[fit]
    x, t_x, big_t = (np.array(column, dtype=float) for column in zip(*SHORT_HISTORIES, strict=True))
    bgf, _ = _lifetimes_fitters({"bgnbd": params, "gamma_gamma": {"p": 1.0, "q": 2.0, "v": 1.0}})
    reference = (
        _expected_purchases_by_quadrature if fit == "500x120" else _expected_purchases_two_point_dropout
    )
    # the 800x90 fit is a + b = 1.1e-6 away from the two-point limit: its dropout odds of order
    # a * ((alpha + T) / (alpha + t_x))^(r + x) (up to 3e-5 here) are what the limit leaves out
    rtol = 1e-12 if fit == "500x120" else 1e-4
    for horizon in (1, 30, 90, 365):
        with np.errstate(invalid="ignore"):
            theirs = bgf.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, big_t)
        if horizon == 365:  # the defect: the log of a negative 2F1 (first buyers, long horizons)
            assert np.isnan(theirs[:2]).all() and np.isfinite(theirs[x > 0]).all()
        ours = clv.expected_purchases(params, horizon, x, t_x, big_t)
        expected = [reference(params, horizon, *history) for history in SHORT_HISTORIES]
        np.testing.assert_allclose(ours, expected, rtol=rtol)
        # where lifetimes is finite, the two agree
        finite = np.isfinite(theirs)
        np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-9)


def test_expected_purchases_equal_lifetimes_on_cdnow(day_model, cdnow):
    bgf, _ = _lifetimes_fitters(day_model.params_)
    f, r, t = (cdnow[c].to_numpy(dtype=float) for c in ("frequency", "recency", "t"))
    for horizon in (0, 1, 30, 365):
        np.testing.assert_allclose(
            clv.expected_purchases(day_model.params_["bgnbd"], horizon, f, r, t),
            bgf.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, t),
            rtol=1e-10,  # 1 - (...) 2F1(...) cancels for short horizons: both lose a few digits there
        )


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


# ---------------------------------------------------------------- holdout
def _simulate_calibration_holdout(n, r, alpha, a, b, t, holdout, seed):
    """BG/NBD histories from the first purchase (time 0) to t + holdout: the calibration summary
    as of t (days) and the purchases in (t, t + holdout], the input of evaluate_holdout."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    horizon = t + holdout
    arrivals = rng.poisson(lam * horizon)  # the Poisson process over the whole window ...
    alive_for = rng.geometric(p)  # ... of which the customer makes the first K (drops out after the K-th)
    customer = np.repeat(np.arange(n), arrivals)
    times = rng.uniform(0.0, horizon[customer])
    order = np.lexsort((times, customer))
    customer, times = customer[order], times[order]
    rank = np.arange(len(customer)) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    made = rank < alive_for[customer]
    customer, times = customer[made], times[made]
    in_calibration = times <= t[customer]
    recency = np.zeros(n)
    np.maximum.at(recency, customer[in_calibration], times[in_calibration])
    return pd.DataFrame(
        {
            "frequency": np.bincount(customer[in_calibration], minlength=n),
            "recency": recency,
            "t": t,
            "holdout_frequency": np.bincount(customer[~in_calibration], minlength=n),
            "holdout_days": holdout,
        }
    )


@pytest.fixture(scope="module")
def simulated_holdout() -> pd.DataFrame:
    t = np.random.default_rng(21).integers(180, 271, 20_000).astype(float)
    return _simulate_calibration_holdout(20_000, r=0.25, alpha=8.0, a=0.8, b=2.5, t=t, holdout=180, seed=21)


def test_holdout_evaluation_predicts_a_simulated_holdout(simulated_holdout):
    data = simulated_holdout
    evaluation = evaluate_holdout(data)
    f, r, t, actual = (
        data[c].to_numpy(dtype=float) for c in ("frequency", "recency", "t", "holdout_frequency")
    )
    # The predictions are lifetimes' conditional expectation E[X(t, t + 180) | x, t_x, T] under
    # the calibration fit.
    bgf, _ = _lifetimes_fitters({"bgnbd": evaluation.params, "gamma_gamma": {"p": 1, "q": 2, "v": 1}})
    predicted = bgf.predict(180, f, r, t)
    assert evaluation.predicted_total == pytest.approx(predicted.sum(), rel=1e-10)
    assert evaluation.actual_total == actual.sum()
    assert evaluation.customer_mean_absolute_error == pytest.approx(
        np.abs(predicted - actual).mean(), rel=1e-10
    )
    # Each customer's holdout count minus its conditional expectation has mean ~0 (the estimate is
    # close to the truth at n = 20,000), and customers are independent: the total error is within
    # 4 standard deviations, estimated by the root of the summed squared residuals. The same
    # holds per calibration-frequency bucket.
    residual = actual - predicted
    assert abs(residual.sum()) < 4 * np.sqrt(np.sum(residual**2)), (
        residual.sum(),
        np.sqrt(np.sum(residual**2)),
    )
    bucket = np.minimum(f, 7).astype(int)
    table = evaluation.by_frequency
    for b in range(8):
        in_bucket = residual[bucket == b]
        label = "7+" if b == 7 else str(b)
        assert table.loc[label, "customers"] == len(in_bucket)
        assert table.loc[label, "absolute_error"] == pytest.approx(abs(in_bucket.mean()), rel=1e-9)
        assert abs(in_bucket.sum()) < 4 * np.sqrt(np.sum(in_bucket**2)), label
    assert evaluation.total_relative_error_se == pytest.approx(np.sqrt(np.sum(residual**2)) / actual.sum())
    assert abs(evaluation.total_relative_error) < 4 * evaluation.total_relative_error_se < 0.1


def test_holdout_evaluation_table_metrics_and_units(simulated_holdout):
    day = evaluate_holdout(simulated_holdout)
    week = evaluate_holdout(simulated_holdout, time_unit="week")
    table = day.by_frequency
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert list(table.columns) == [
        "customers",
        "actual_mean",
        "predicted_mean",
        "absolute_error",
        "actual_total",
        "predicted_total",
    ]
    assert table["customers"].sum() == day.n_customers == len(simulated_holdout)
    assert table["actual_total"].sum() == pytest.approx(day.actual_total)
    assert table["predicted_total"].sum() == pytest.approx(day.predicted_total)
    assert day.total_relative_error == pytest.approx(day.predicted_total / day.actual_total - 1)
    assert day.bucket_mean_absolute_error == pytest.approx(table["absolute_error"].mean())
    assert day.holdout_days == 180 and day.fit_info["holdout_days"] == 180
    assert day.fit_info["converged"] and day.fit_info["bgnbd_ladder_step"] == 0
    # The fitted unit changes alpha, not the predictions.
    assert week.predicted_total == pytest.approx(day.predicted_total, rel=1e-6)
    assert week.params["alpha"] == pytest.approx(day.params["alpha"] / 7, rel=1e-6)
    metrics = day.metrics()
    assert json.loads(json.dumps(metrics)) == metrics
    markdown = day.to_markdown().splitlines()
    assert markdown[2] == "| calibration frequency | customers | actual | predicted | abs. error |"
    assert markdown[4].startswith("| 0 | ") and markdown[11].startswith("| 7+ | ")
    assert markdown[12].startswith("| **total** | 20,000 | ")
    # Fewer buckets on request; the last one collects the rest.
    assert list(evaluate_holdout(simulated_holdout, max_frequency_bucket=2).by_frequency.index) == [
        "0",
        "1",
        "2+",
    ]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.drop(columns="holdout_days"), r"missing column\(s\) \['holdout_days'\]"),
        (
            lambda d: d.assign(holdout_frequency=-d["holdout_frequency"] - 1),
            r"'holdout_frequency'.*whole number >= 0",
        ),
        (lambda d: d.assign(holdout_days=np.arange(len(d)) % 2 + 90), r"'holdout_days'.*same on every row"),
        (lambda d: d.assign(holdout_days=0), r"'holdout_days'.*whole number >= 1"),
        (lambda d: d.assign(recency=d["t"] + 1), r"'recency'.*recency <= t"),
    ],
)
def test_holdout_evaluation_validates_its_input(simulated_holdout, change, match):
    with pytest.raises(ValueError, match=match):
        evaluate_holdout(change(simulated_holdout.head(500).copy()))


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


def test_too_few_repeat_customers_cannot_fit_and_say_why(cdnow):
    few = pd.concat([cdnow[cdnow["frequency"] == 0], cdnow[cdnow["frequency"] > 0].head(5)])
    with pytest.raises(
        CannotFitError, match=r"Gamma-Gamma needs at least 30 repeat customers .*found 5 "
    ) as err:
        ClvModel().fit(few)
    assert err.value.facts["n_gamma_gamma_customers"] == 5
    assert err.value.facts["n_customers"] == len(few)
    assert err.value.facts["min_gamma_gamma_customers"] == clv.MIN_GAMMA_GAMMA_CUSTOMERS


def test_no_customer_yet_cannot_fit_but_a_broken_summary_is_an_input_error(cdnow):
    with pytest.raises(CannotFitError, match=r"needs at least 30 repeat customers .*found 0 ") as err:
        ClvModel().fit(cdnow.head(0))
    assert err.value.facts["n_customers"] == 0
    # A missing column or a broken rule is not a lack of data: a plain ValueError.
    for broken in (cdnow.head(0).drop(columns="t"), cdnow.assign(recency=-1.0)):
        with pytest.raises(ValueError) as err:
            ClvModel().fit(broken)
        assert not isinstance(err.value, CannotFitError)


# ----------------------------------------------------------- convergence
def test_fit_records_parameters_errors_likelihood_ladder_and_size(week_model, day_model):
    info = week_model.fit_info_
    assert info["converged"] is True
    assert (info["n_customers"], info["n_distinct_rows"], info["n_gamma_gamma_distinct_rows"]) == (
        2357,
        1016,
        753,
    )
    assert (info["max_frequency"], info["max_t_days"]) == (29, pytest.approx(38.86 * 7))
    for model in ("bgnbd", "gg"):
        assert info[f"{model}_ladder_step"] == 0 and info[f"{model}_failed_attempts"] == []
        assert (info[f"{model}_penalizer_coef"], info[f"{model}_tol"]) == clv.FIT_LADDER[0]
    assert info["gg_log_likelihood"] < 0 and info["bgnbd_log_likelihood"] < 0
    # The covariance behind the derived SEs reproduces lifetimes' (correct) diagonal SEs.
    for fitter, names, n in ((week_model._bgf, "r alpha a b", 2357), (week_model._ggf, "p q v", 946)):
        cov = clv._log_param_covariance(fitter, n)
        values = fitter.params_[names.split()].to_numpy()
        np.testing.assert_allclose(
            values * np.sqrt(np.diag(cov)), fitter.standard_errors_[names.split()], rtol=1e-10
        )
    bg, gg = week_model.params_["bgnbd"], week_model.params_["gamma_gamma"]
    assert info["bgnbd_mean_purchase_rate_per_day"] == pytest.approx(bg["r"] / bg["alpha"] / 7, rel=1e-12)
    assert info["gg_mean_spend"] == pytest.approx(gg["p"] * gg["v"] / (gg["q"] - 1), rel=1e-12)
    assert 0 < info["bgnbd_mean_purchase_rate_per_day_se"] < 0.1 * info["bgnbd_mean_purchase_rate_per_day"]
    # Per day, the derived quantities do not depend on the unit the model was fitted in.
    for key in ("bgnbd_mean_purchase_rate_per_day", "bgnbd_mean_purchase_rate_per_day_se", "gg_mean_spend"):
        assert day_model.fit_info_[key] == pytest.approx(info[key], rel=1e-6)
    # Every value can be serialised for asset metadata.
    assert json.loads(json.dumps(info)) == info


def test_looser_tolerance_recovers_a_real_precision_loss_failure(cdnow, monkeypatch):
    # At tol 1e-10, scipy's BFGS stops on CDNOW (days) with "Desired error not necessarily
    # achieved due to precision loss", the failure lifetimes users meet most; the next step
    # (same penalizer, looser tolerance) converges to the unpenalized MLE.
    monkeypatch.setattr(clv, "FIT_LADDER", ((0.0, 1e-10), (0.0, 1e-7), (1e-3, 1e-7)))
    model = ClvModel().fit(cdnow)
    for prefix in ("bgnbd", "gg"):
        assert model.fit_info_[f"{prefix}_ladder_step"] == 1
        assert (model.fit_info_[f"{prefix}_penalizer_coef"], model.fit_info_[f"{prefix}_tol"]) == (0.0, 1e-7)
        (failure,) = model.fit_info_[f"{prefix}_failed_attempts"]
        assert "step 0 (penalizer 0, tol 1e-10): ConvergenceError" in failure and "precision loss" in failure
    monkeypatch.undo()
    reference = ClvModel().fit(cdnow).params_
    for name in ("bgnbd", "gamma_gamma"):
        assert model.params_[name] == pytest.approx(reference[name], rel=1e-4)


def test_penalizer_ladder_retries_then_reports_data_shape(cdnow, monkeypatch):
    class FailsUnpenalized(BetaGeoFitter):
        def fit(self, *args, **kwargs):
            if self.penalizer_coef < 1e-3:
                raise ConvergenceError("forced failure")
            return super().fit(*args, **kwargs)

    monkeypatch.setattr(clv, "BetaGeoFitter", FailsUnpenalized)
    model = ClvModel().fit(cdnow)
    assert model.fit_info_["bgnbd_ladder_step"] == 2  # both unpenalized tolerances failed
    assert model.fit_info_["bgnbd_penalizer_coef"] == 1e-3
    assert len(model.fit_info_["bgnbd_failed_attempts"]) == 2
    assert model.fit_info_["gg_ladder_step"] == 0

    # A penalizer_coef above the ladder's raises every step to it.
    assert ClvModel(penalizer_coef=0.002).fit(cdnow).fit_info_["bgnbd_penalizer_coef"] == 0.002

    class NeverConverges(BetaGeoFitter):
        def fit(self, *args, **kwargs):
            raise ConvergenceError("forced failure")

    monkeypatch.setattr(clv, "BetaGeoFitter", NeverConverges)
    with pytest.raises(
        CannotFitError, match=r"BG/NBD fit failed.*n_customers=2357.*max_frequency=29"
    ) as failed:
        ClvModel().fit(cdnow)
    for step, (pen, tol) in enumerate(clv.FIT_LADDER):
        assert f"step {step} (penalizer {pen:g}, tol {tol:g}): ConvergenceError" in str(failed.value)


@pytest.mark.parametrize("broken", ["params", "standard_errors"])
def test_non_finite_estimates_are_a_failed_step(cdnow, monkeypatch, broken):
    class NonFiniteWithoutPenalty(BetaGeoFitter):
        def fit(self, *args, **kwargs):
            fitted = super().fit(*args, **kwargs)
            if self.penalizer_coef == 0:
                getattr(fitted, f"{broken}_")["a"] = np.nan
            return fitted

    monkeypatch.setattr(clv, "BetaGeoFitter", NonFiniteWithoutPenalty)
    info = ClvModel().fit(cdnow).fit_info_
    assert info["bgnbd_ladder_step"] == 2 and info["bgnbd_penalizer_coef"] == 1e-3
    problem = {"params": "non-finite parameters", "standard_errors": "non-finite standard errors"}[broken]
    assert len(info["bgnbd_failed_attempts"]) == 2
    assert all(problem in failure for failure in info["bgnbd_failed_attempts"])


def test_gamma_gamma_without_population_mean_fails_clearly(cdnow):
    # Pareto spend with tail index 0.6 has no mean: Gamma-Gamma answers q <= 1 at every penalizer.
    heavy = cdnow.copy()
    spend = (np.random.default_rng(2).pareto(0.6, len(heavy)) + 1) * 10
    heavy["monetary_value"] = np.where(heavy["frequency"] > 0, spend, 0.0)
    with pytest.raises(
        CannotFitError, match=r"Gamma-Gamma fit failed.*q = .* <= 1.*n_gamma_gamma_customers=946"
    ):
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
