"""Customer lifetime value: BG/NBD for the purchase process, Gamma-Gamma for spend.

This is the only module of lifecycle-mart that imports ``lifetimes``. The library is archived
upstream; keeping it behind :class:`ClvModel` means a move to another implementation (for example
``pymc-marketing``) touches this file only. Everything here is pure: DataFrames in, DataFrames and
fitted objects out.

The input is the per-customer summary built in SQL (``int_customers_summarized``), one row per
customer with at least one purchase day, times in days:

``frequency``
    number of purchase days after the first one (repeat purchase days), an integer >= 0;
``recency``
    days from the first to the last purchase day (0 when ``frequency`` is 0);
``t``
    days from the first purchase day to the observation end (``T`` in the papers; dbt var
    ``clv_observation_end_date``, by default the as-of date);
``monetary_value``
    mean net value of the repeat purchase days (0 or NaN when ``frequency`` is 0).

:func:`evaluate_holdout` refits the purchase model on the same summary as of an earlier
calibration end (``int_clv_calibration_holdout``) and compares its predictions with the purchase
days of the holdout window that follows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit, hyp2f1

with warnings.catch_warnings():
    # lifetimes.utils sets pd.options.mode.chained_assignment at import time, which pandas 3
    # deprecates with a Pandas4Warning (a DeprecationWarning subclass). Filter exactly that one.
    # The context also undoes lifetimes' own import-time warnings.simplefilter("ignore", FutureWarning),
    # which would otherwise silence FutureWarning for the whole process.
    warnings.filterwarnings(
        "ignore",
        message=r"The 'mode\.chained_assignment' option is deprecated",
        category=DeprecationWarning,
        module=r"lifetimes\.utils",
    )
    import lifetimes
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import ConvergenceError

from models_py.errors import CannotFitError

__all__ = [
    "CannotFitError",
    "ClvModel",
    "HoldoutEvaluation",
    "SUMMARY_COLUMNS",
    "HOLDOUT_COLUMNS",
    "evaluate_holdout",
    "expected_purchases",
]

SUMMARY_COLUMNS: tuple[str, ...] = ("frequency", "recency", "t", "monetary_value")
#: Input of :func:`evaluate_holdout` (``int_clv_calibration_holdout``): the calibration summary's
#: times in days, the purchase days in the holdout window and the window's length in days.
HOLDOUT_COLUMNS: tuple[str, ...] = ("frequency", "recency", "t", "holdout_frequency", "holdout_days")
DAYS_PER_TIME_UNIT: dict[str, float] = {"day": 1.0, "week": 7.0}
DAYS_PER_MONTH = 30
#: Fit attempts tried in turn until one converges to finite estimates: (penalizer_coef, tol).
#: The first two are the unpenalized maximum likelihood; ``tol`` is scipy's gradient tolerance,
#: and a looser one stops before BFGS's line search loses precision (the most common lifetimes
#: failure, "Desired error not necessarily achieved due to precision loss"). The last two add an
#: L2 penalty, which pulls the estimates towards 0 but keeps a flat likelihood finite. A penalizer
#: below the model's own ``penalizer_coef`` is raised to it.
FIT_LADDER: tuple[tuple[float, float], ...] = ((0.0, 1e-7), (0.0, 1e-5), (1e-3, 1e-7), (1e-2, 1e-6))
#: Calibration-frequency buckets of the holdout evaluation: 0, 1, ..., 6 and "7+" (as in Figure 4
#: of Fader, Hardie & Lee 2005a).
HOLDOUT_MAX_FREQUENCY_BUCKET = 7
# Gamma-Gamma has three parameters estimated from repeat customers only; below this count the
# estimates (q in particular, which sets the population mean spend) are not worth publishing.
MIN_GAMMA_GAMMA_CUSTOMERS = 30

_TIME_COLUMNS = ("frequency", "recency", "t")
_BGNBD_PARAMS = ("r", "alpha", "a", "b")
_GG_PARAMS = ("p", "q", "v")


class ClvModel:
    r"""BG/NBD purchase process with Gamma-Gamma spend, giving P(alive), expected purchases and CLV.

    Parameters
    ----------
    time_unit : {"day", "week"}, default "day"
        Unit the models are fitted in. Inputs always arrive in days; ``"week"`` divides them by 7
        before fitting, as in the papers. ``alpha`` is then in weeks; ``r``, ``a``, ``b`` and the
        Gamma-Gamma parameters do not depend on the unit, and neither do the predictions.
    penalizer_coef : float, default 0.0
        L2 penalty on the parameters (``lifetimes``' ``penalizer_coef``) for the first fit attempt.
        If a fit fails, the steps of :data:`FIT_LADDER` (looser tolerance, then larger penalizers)
        are tried in turn.

    Attributes
    ----------
    params_ : dict
        ``{"bgnbd": {"r", "alpha", "a", "b"}, "gamma_gamma": {"p", "q", "v"}}`` as floats, in the
        fitted time unit.
    fit_info_ : dict
        The record of the fit: the input size (``n_customers``, ``n_distinct_rows``, repeat and
        Gamma-Gamma customers, ``max_frequency``, ``max_t_days``), ``converged``; per model
        (prefix ``bgnbd_`` / ``gg_``) the ladder step, penalizer and tolerance used and the failed
        attempts before it, the total log-likelihood (without penalty, in the fitted time unit),
        the standard errors; the population mean purchase rate per day ``r / alpha`` and mean
        spend ``p v / (q - 1)`` with delta-method standard errors; and the correlation between
        frequency and monetary value of the repeat customers (Gamma-Gamma assumes independence).

    Notes
    -----
    BG/NBD (Fader, Hardie & Lee 2005a) assumes that

    1. while alive, a customer buys following a Poisson process with rate :math:`\lambda`;
    2. :math:`\lambda \sim \mathrm{Gamma}(r, \alpha)` across customers;
    3. after each *repeat* purchase the customer drops out for good with probability :math:`p`;
    4. :math:`p \sim \mathrm{Beta}(a, b)` across customers;
    5. :math:`\lambda` and :math:`p` are independent.

    Because dropout can only happen right after a repeat purchase, a customer with no repeat
    purchase (``frequency == 0``) cannot have dropped out: ``p_alive`` is exactly 1 for them. This is
    a property of the model, not a bug, and it is not patched here; rank such customers by expected
    purchases instead (which do fall with ``t``).

    Gamma-Gamma (Fader, Hardie & Lee 2005b; Hardie's note 025) assumes that the value of each
    transaction is :math:`\mathrm{Gamma}(p, \nu)` around a customer's mean, that
    :math:`\nu \sim \mathrm{Gamma}(q, \gamma)` across customers (``v`` here is :math:`\gamma`), and
    that spend is independent of the purchase process. It is fitted on customers with
    ``frequency > 0`` and ``monetary_value > 0``; it needs :math:`q > 1` for the population mean
    spend :math:`p\gamma/(q-1)` to exist. Its conditional expectation (note 025, eq. 5) is the
    population mean for ``frequency == 0`` and shrinks a customer's observed mean towards it
    (repeat customers whose repeat days netted to 0 are scored that way but not fitted on).

    Both likelihoods are evaluated on the distinct data rows weighted by their counts (``lifetimes``'
    ``weights``): the same likelihood as one term per customer, so the same estimates, at a fraction
    of the cost for a million customers. The distinct rows are sorted, so row order does not matter.

    CLV over :math:`M` months of 30 days, with monthly discount rate :math:`d` and margin :math:`c`:

    .. math:: \mathrm{CLV} = c\,\mathrm{E}[m]\sum_{i=1}^{M}
              \frac{\mathrm{E}[X(30i)] - \mathrm{E}[X(30(i-1))]}{(1+d)^{i}}

    with :math:`\mathrm{E}[X(t)]` the conditional expected number of purchases in the next
    :math:`t` days (BG/NBD eq. 10) and :math:`\mathrm{E}[m]` the Gamma-Gamma conditional
    expectation. Cash flows are discounted at the end of each month. This is the formula of
    ``lifetimes.GammaGammaFitter.customer_lifetime_value(..., freq="D")``. A month is 30 days in
    both time units (lifetimes' own ``freq="W"`` would use 4.345-week months, about 30.4 days), so
    nothing that ``predict`` returns depends on ``time_unit``.

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005a). "Counting Your Customers the
       Easy Way: An Alternative to the Pareto/NBD Model". Marketing Science 24 (2), 275-284.
    .. [2] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005b). "RFM and CLV: Using Iso-Value
       Curves for Customer Base Analysis". Journal of Marketing Research 42 (4), 415-430.
    .. [3] Fader, P. S. and Hardie, B. G. S. (2013). "The Gamma-Gamma Model of Monetary Value".
       http://www.brucehardie.com/notes/025/
    .. [4] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2008). "Computing P(alive) Using the
       BG/NBD Model". http://www.brucehardie.com/notes/021/

    Examples
    --------
    >>> model = ClvModel(time_unit="week").fit(summary)  # doctest: +SKIP
    >>> scores = model.predict(summary, clv_horizon_months=12)  # doctest: +SKIP
    """

    def __init__(self, time_unit: Literal["day", "week"] = "day", penalizer_coef: float = 0.0) -> None:
        if time_unit not in DAYS_PER_TIME_UNIT:
            raise ValueError(f"time_unit must be one of {sorted(DAYS_PER_TIME_UNIT)}, got {time_unit!r}")
        if not (math.isfinite(penalizer_coef) and penalizer_coef >= 0):
            raise ValueError(f"penalizer_coef must be a finite number >= 0, got {penalizer_coef!r}")
        self.time_unit = time_unit
        self.penalizer_coef = float(penalizer_coef)

    # ------------------------------------------------------------------ fit
    def fit(self, summary: pd.DataFrame) -> ClvModel:
        """Fit BG/NBD and Gamma-Gamma to a customer summary.

        Parameters
        ----------
        summary : pandas.DataFrame
            One row per customer with columns ``frequency``, ``recency``, ``t`` (days) and
            ``monetary_value`` (see the module docstring). Other columns are ignored.

        Returns
        -------
        ClvModel
            ``self``, with ``params_`` and ``fit_info_`` set.

        Raises
        ------
        CannotFitError
            If the data cannot support an honest fit: fewer than :data:`MIN_GAMMA_GAMMA_CUSTOMERS`
            customers have a repeat purchase with positive value (none at all when the summary
            is empty), or a model fails at every step of :data:`FIT_LADDER`. The message gives the
            data's shape and each attempt's failure; ``facts`` the numbers.
        ValueError
            If a column is missing or breaks a rule (an input error, not a lack of data).
        """
        freq, rec, t, monetary = _validated_summary(summary, allow_empty=True)
        is_gg = (freq > 0) & (monetary > 0)
        shape = {**_shape(freq, t), "n_gamma_gamma_customers": int(is_gg.sum())}
        if shape["n_gamma_gamma_customers"] < MIN_GAMMA_GAMMA_CUSTOMERS:
            raise CannotFitError(
                f"Gamma-Gamma needs at least {MIN_GAMMA_GAMMA_CUSTOMERS} repeat customers (frequency > 0 "
                f"and monetary_value > 0), found {shape['n_gamma_gamma_customers']} "
                f"(data: {_describe(shape)}). Wait for more repeat purchases or widen the window.",
                facts={**shape, "min_gamma_gamma_customers": MIN_GAMMA_GAMMA_CUSTOMERS},
            )
        bgf, bg_info = self._fit_bgnbd(freq, rec, t, shape)
        ggf, gg_info = self._fit_gamma_gamma(freq[is_gg], monetary[is_gg], shape)

        self._bgf, self._ggf = bgf, ggf
        self.params_ = {
            "bgnbd": {k: float(bgf.params_[k]) for k in _BGNBD_PARAMS},
            "gamma_gamma": {k: float(ggf.params_[k]) for k in _GG_PARAMS},
        }
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN if all repeat customers spend the same
            corr = np.corrcoef(freq[is_gg], monetary[is_gg])[0, 1]
        self.fit_info_ = {
            **shape,
            "time_unit": self.time_unit,
            "converged": True,
            **bg_info,
            **gg_info,
            "gg_frequency_monetary_corr": float(corr),
            "library": f"lifetimes {lifetimes.__version__}",
        }
        return self

    def _fit_bgnbd(
        self, freq: np.ndarray, rec: np.ndarray, t: np.ndarray, shape: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Fit BG/NBD on the distinct (frequency, recency, t) rows; return the fitter and its record."""
        scale = DAYS_PER_TIME_UNIT[self.time_unit]
        rows = _distinct_rows({"frequency": freq, "recency": rec / scale, "t": t / scale})
        shape["n_distinct_rows"] = len(rows)
        args = tuple(rows[c].to_numpy() for c in ("frequency", "recency", "t", "weight"))
        fitter, attempt = self._fit_with_ladder(
            "BG/NBD",
            lambda pen, tol: BetaGeoFitter(penalizer_coef=pen).fit(*args[:3], weights=args[3], tol=tol),
            _BGNBD_PARAMS,
            shape,
            hint="look for outlying histories (a very high frequency, t near 0 for most customers)",
        )
        n = float(args[3].sum())
        log_params = np.log([float(fitter.params_[k]) for k in _BGNBD_PARAMS])
        # lifetimes reports its objective per customer and on internally rescaled times; this is
        # the total log-likelihood without penalty in the fitted time unit (comparable to the papers).
        with warnings.catch_warnings():  # the likelihood calls warnings.simplefilter: keep it local
            ll = -BetaGeoFitter._negative_log_likelihood(log_params, *args, 0.0) * n
        # Mean purchase rate E[lambda] = r / alpha; its standard error by the delta method on the
        # log parameters (lifetimes' variance_matrix_ has wrong off-diagonal terms, so not that).
        cov = _log_param_covariance(fitter, n)
        rate = float(fitter.params_["r"] / fitter.params_["alpha"]) / scale
        gradient = np.array([1.0, -1.0, 0.0, 0.0])
        return fitter, {
            **{f"bgnbd_{k}": v for k, v in attempt.items()},
            "bgnbd_log_likelihood": float(ll),
            "bgnbd_standard_errors": {k: float(fitter.standard_errors_[k]) for k in _BGNBD_PARAMS},
            "bgnbd_mean_purchase_rate_per_day": rate,
            "bgnbd_mean_purchase_rate_per_day_se": rate * float(np.sqrt(gradient @ cov @ gradient)),
        }

    def _fit_gamma_gamma(
        self, freq: np.ndarray, monetary: np.ndarray, shape: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Fit Gamma-Gamma on the distinct (frequency, monetary_value) rows of repeat customers."""
        rows = _distinct_rows({"frequency": freq, "monetary_value": monetary})
        shape["n_gamma_gamma_distinct_rows"] = len(rows)
        args = (
            rows["frequency"].to_numpy(dtype=float),
            rows["monetary_value"].to_numpy(),
            rows["weight"].to_numpy(),
        )
        fitter, attempt = self._fit_with_ladder(
            "Gamma-Gamma",
            lambda pen, tol: GammaGammaFitter(penalizer_coef=pen).fit(*args[:2], weights=args[2], tol=tol),
            _GG_PARAMS,
            shape,
            extra_check=_gamma_gamma_problem,
            hint="look for heavy-tailed or mis-scaled monetary_value (refunds, currency units)",
        )
        n = float(args[2].sum())
        p, q, v = (float(fitter.params_[k]) for k in _GG_PARAMS)
        with warnings.catch_warnings():
            ll = -GammaGammaFitter._negative_log_likelihood(np.log([p, q, v]), *args, 0.0) * n
        # Population mean spend E[M] = p v / (q - 1) (note 025, eq. 4), delta method on the log parameters.
        cov = _log_param_covariance(fitter, n)
        gradient = np.array([1.0, -q / (q - 1.0), 1.0])
        mean_spend = p * v / (q - 1.0)
        return fitter, {
            **{f"gg_{k}": v for k, v in attempt.items()},
            "gg_log_likelihood": float(ll),
            "gg_standard_errors": {k: float(fitter.standard_errors_[k]) for k in _GG_PARAMS},
            "gg_mean_spend": mean_spend,
            "gg_mean_spend_se": mean_spend * float(np.sqrt(gradient @ cov @ gradient)),
        }

    def _fit_with_ladder(
        self,
        name: str,
        fit_one: Callable[[float, float], Any],
        param_names: Sequence[str],
        shape: dict[str, Any],
        extra_check: Callable[[Any], str | None] | None = None,
        hint: str = "",
    ) -> tuple[Any, dict[str, Any]]:
        """Try the steps of :data:`FIT_LADDER` in turn; return the first good fitter and its record.

        A step fails when the optimiser does not converge (``ConvergenceError``), the Hessian
        cannot be inverted, the parameters, the log-likelihood or the standard errors are not
        finite (a non-finite standard error means the Hessian is not positive definite: not a
        maximum), or ``extra_check`` names a problem.
        """
        ladder: list[tuple[float, float]] = []
        for pen, tol in FIT_LADDER:
            step = (max(pen, self.penalizer_coef), tol)
            if step not in ladder:
                ladder.append(step)
        failures: list[str] = []
        for step, (pen, tol) in enumerate(ladder):
            problem = None
            # lifetimes prints the scipy result on failure and calls warnings.simplefilter inside its
            # likelihood: capture the print (its message goes into our error) and restore the filters.
            printed = io.StringIO()
            with warnings.catch_warnings(), contextlib.redirect_stdout(printed), np.errstate(all="ignore"):
                try:
                    fitter = fit_one(pen, tol)
                except (ConvergenceError, np.linalg.LinAlgError, FloatingPointError) as exc:
                    problem = type(exc).__name__
                    scipy_message = [ln.strip() for ln in printed.getvalue().splitlines() if "message" in ln]
                    if scipy_message:
                        problem += f" ({scipy_message[0]})"
            if problem is None:
                values = np.array([fitter.params_[k] for k in param_names], dtype=float)
                errors = np.array([fitter.standard_errors_[k] for k in param_names], dtype=float)
                if not np.all(np.isfinite(values)) or not np.isfinite(fitter._negative_log_likelihood_):
                    problem = f"non-finite parameters {dict(zip(param_names, values.tolist(), strict=True))}"
                elif not np.all(np.isfinite(errors)):
                    problem = (
                        "non-finite standard errors (the Hessian is not positive definite at "
                        f"{dict(zip(param_names, np.round(values, 6).tolist(), strict=True))}: not a maximum)"
                    )
                elif extra_check is not None:
                    problem = extra_check(fitter)
            if problem is None:
                return fitter, {
                    "ladder_step": step,
                    "penalizer_coef": pen,
                    "tol": tol,
                    "failed_attempts": failures,
                }
            failures.append(f"step {step} (penalizer {pen:g}, tol {tol:g}): {problem}")
        raise CannotFitError(
            f"{name} fit failed at every step of the ladder ({'; '.join(failures)}). "
            f"Data: {_describe(shape)}, time_unit={self.time_unit!r}. In the customer summary, {hint}; "
            "or pass a larger penalizer_coef.",
            facts={**shape, "model": name, "failed_attempts": failures},
        )

    # -------------------------------------------------------------- predict
    def predict(
        self,
        summary: pd.DataFrame,
        *,
        horizons_days: Sequence[int] = (30, 90, 365),
        clv_horizon_months: int = 12,
        monthly_discount_rate: float = 0.01,
        margin: float = 1.0,
    ) -> pd.DataFrame:
        """Score customers: P(alive), expected purchases, expected order value and CLV.

        Parameters
        ----------
        summary : pandas.DataFrame
            Same columns and rules as for :meth:`fit` (times in days).
        horizons_days : sequence of int, default (30, 90, 365)
            Horizons, in days, of the ``expected_purchases_{h}d`` columns.
        clv_horizon_months : int, default 12
            Number of 30-day months summed in ``clv``.
        monthly_discount_rate : float, default 0.01
            Discount rate per month; month ``i``'s cash flow is divided by ``(1 + rate) ** i``.
        margin : float, default 1.0
            Share of the net order value kept as profit.

        Returns
        -------
        pandas.DataFrame
            Same index as ``summary``; columns ``p_alive``, ``expected_purchases_{h}d`` per horizon,
            ``expected_avg_order_value`` and ``clv``. The BG/NBD quantities are computed once per
            distinct ``(frequency, recency, t)`` and broadcast back.

        Raises
        ------
        CannotFitError
            If a score is not finite (the message names the rows and the parameters).
        ValueError
            For a broken input or argument.
        """
        if not hasattr(self, "params_"):
            raise RuntimeError("ClvModel is not fitted: call fit(summary) before predict(summary).")
        horizons = _validated_horizons(horizons_days)
        if isinstance(clv_horizon_months, bool) or not isinstance(clv_horizon_months, (int, np.integer)):
            raise ValueError(f"clv_horizon_months must be an integer >= 0, got {clv_horizon_months!r}")
        if clv_horizon_months < 0:
            raise ValueError(f"clv_horizon_months must be an integer >= 0, got {clv_horizon_months!r}")
        if not (math.isfinite(monthly_discount_rate) and monthly_discount_rate >= 0):
            raise ValueError(
                f"monthly_discount_rate must be a finite number >= 0, got {monthly_discount_rate!r}"
            )
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")

        freq, rec, t, monetary = _validated_summary(summary)
        scale = DAYS_PER_TIME_UNIT[self.time_unit]
        frame = pd.DataFrame({"frequency": freq, "recency": rec / scale, "t": t / scale})
        grouped = frame.groupby(list(_TIME_COLUMNS), sort=True)
        codes = grouped.ngroup().to_numpy()
        distinct = grouped.size().index.to_frame(index=False)
        d_freq = distinct["frequency"].to_numpy()
        d_rec = distinct["recency"].to_numpy()
        d_t = distinct["t"].to_numpy()

        bgf = self._bgf
        params = self.params_["bgnbd"]
        columns: dict[str, np.ndarray] = {}
        columns["p_alive"] = np.asarray(bgf.conditional_probability_alive(d_freq, d_rec, d_t), dtype=float)
        for h in horizons:
            columns[f"expected_purchases_{h}d"] = expected_purchases(params, h / scale, d_freq, d_rec, d_t)
        # Cumulative expected purchases at the end of months 0..M, differenced per month and
        # discounted at the month's end, as lifetimes.utils._customer_lifetime_value does.
        month_ends = DAYS_PER_MONTH * np.arange(clv_horizon_months + 1) / scale
        cumulative = np.stack([expected_purchases(params, m, d_freq, d_rec, d_t) for m in month_ends])
        discount = (1.0 + monthly_discount_rate) ** np.arange(1, clv_horizon_months + 1)
        discounted_purchases = (np.diff(cumulative, axis=0) / discount[:, None]).sum(axis=0)

        # m is undefined without a repeat purchase; the model gives it zero weight there
        # (p x / (p x + q - 1) = 0), so the expectation is exactly the population mean.
        aov = np.asarray(
            self._ggf.conditional_expected_average_profit(freq, np.where(freq > 0, monetary, 0.0)),
            dtype=float,
        )

        result = {name: values[codes] for name, values in columns.items()}
        result["expected_avg_order_value"] = aov
        result["clv"] = margin * aov * discounted_purchases[codes]
        out = pd.DataFrame(result, index=summary.index)
        bad = ~np.isfinite(out.to_numpy()).all(axis=1)
        if bad.any():
            # Not expected with expected_purchases (no log of 2F1, Euler's form where 2F1 overflows):
            # if it happens, the model cannot score these customers, and no score is better than a
            # silently filtered one.
            raise CannotFitError(
                f"predict produced non-finite values for {int(bad.sum())} of {len(out)} rows "
                f"(e.g. index {list(summary.index[bad][:5])}; max frequency {int(freq.max())}; "
                f"BG/NBD {self.params_['bgnbd']}): check those customers' histories.",
                facts={"non_finite_rows": int(bad.sum()), "rows": len(out), "params": self.params_},
            )
        return out

    # ------------------------------------------------------------- identity
    def model_version(self) -> str:
        """Return a short stable identifier of the fitted model, e.g. ``"bgnbd-gg-1a2b3c4d"``.

        It hashes the time unit and the parameters rounded to 12 significant digits, so that two
        fits giving the same parameters share a version and any refit that moves them gets a new one.
        """
        if not hasattr(self, "params_"):
            raise RuntimeError("ClvModel is not fitted: call fit(summary) before model_version().")
        payload = {
            "time_unit": self.time_unit,
            "params": {
                model: {k: f"{v:.12g}" for k, v in params.items()} for model, params in self.params_.items()
            },
        }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return f"bgnbd-gg-{digest[:8]}"

    def __repr__(self) -> str:
        fitted = f", version={self.model_version()!r}" if hasattr(self, "params_") else ""
        return f"ClvModel(time_unit={self.time_unit!r}, penalizer_coef={self.penalizer_coef!r}{fitted})"


# ------------------------------------------------------- holdout evaluation
@dataclasses.dataclass(frozen=True)
class HoldoutEvaluation:
    """Actual vs predicted repeat purchases in a holdout window (see :func:`evaluate_holdout`).

    Attributes
    ----------
    holdout_days : int
        Length of the holdout window.
    n_customers : int
        Customers of the calibration summary (each has a first purchase before the window).
    actual_total, predicted_total : float
        Purchase days in the window, summed over the customers: observed and expected.
    total_relative_error : float
        ``predicted_total / actual_total - 1`` (NaN when nothing was bought in the window).
    total_relative_error_se : float
        Its sampling standard error: the root of the summed squared customer residuals over
        ``actual_total`` (customers are independent; with a few thousand customers a total error
        of 5-10 % is chance).
    bucket_mean_absolute_error : float
        Mean over the calibration-frequency buckets of ``|predicted - actual|`` per customer (the
        distance between the two curves of the papers' conditional-expectations figure).
    customer_mean_absolute_error : float
        Mean over customers of ``|predicted - actual|`` purchase days.
    by_frequency : pandas.DataFrame
        One row per calibration-frequency bucket (index ``"0"``, ..., ``"6"``, ``"7+"``; empty
        buckets left out): ``customers``, ``actual_mean``, ``predicted_mean`` (per customer),
        ``absolute_error``, ``actual_total``, ``predicted_total``.
    params : dict
        BG/NBD parameters fitted on the calibration summary, in the fitted time unit.
    fit_info : dict
        The calibration fit's record (as :attr:`ClvModel.fit_info_`, BG/NBD entries only).
    """

    holdout_days: int
    n_customers: int
    actual_total: float
    predicted_total: float
    total_relative_error: float
    total_relative_error_se: float
    bucket_mean_absolute_error: float
    customer_mean_absolute_error: float
    by_frequency: pd.DataFrame
    params: dict[str, float]
    fit_info: dict[str, Any]

    def metrics(self) -> dict[str, float | int]:
        """The scalar results, for asset metadata and logs."""
        return {
            "holdout_days": self.holdout_days,
            "n_customers": self.n_customers,
            "actual_total": self.actual_total,
            "predicted_total": self.predicted_total,
            "total_relative_error": self.total_relative_error,
            "total_relative_error_se": self.total_relative_error_se,
            "bucket_mean_absolute_error": self.bucket_mean_absolute_error,
            "customer_mean_absolute_error": self.customer_mean_absolute_error,
        }

    def to_markdown(self) -> str:
        """The per-bucket table and the totals as a Markdown table (for the Dagster UI)."""
        lines = [
            f"Holdout of {self.holdout_days} days, {self.n_customers:,} customers; repeat purchase days "
            "per customer by calibration frequency.",
            "",
            "| calibration frequency | customers | actual | predicted | abs. error |",
            "|---|---:|---:|---:|---:|",
        ]
        for bucket, row in self.by_frequency.iterrows():
            lines.append(
                f"| {bucket} | {int(row['customers']):,} | {row['actual_mean']:.3f} | "
                f"{row['predicted_mean']:.3f} | {row['absolute_error']:.3f} |"
            )
        lines += [
            f"| **total** | {self.n_customers:,} | {self.actual_total:,.0f} | {self.predicted_total:,.1f} | "
            f"{self.total_relative_error:+.1%} (relative, SE {self.total_relative_error_se:.1%}) |",
            "",
            f"Mean absolute error per bucket: {self.bucket_mean_absolute_error:.3f}; per customer: "
            f"{self.customer_mean_absolute_error:.3f}.",
        ]
        return "\n".join(lines)


def evaluate_holdout(
    calibration: pd.DataFrame,
    *,
    time_unit: Literal["day", "week"] = "day",
    penalizer_coef: float = 0.0,
    max_frequency_bucket: int = HOLDOUT_MAX_FREQUENCY_BUCKET,
) -> HoldoutEvaluation:
    r"""Refit BG/NBD on a calibration summary and compare its predictions with a holdout window.

    Parameters
    ----------
    calibration : pandas.DataFrame
        One row per customer with a purchase before the holdout window (``int_clv_calibration_holdout``):
        ``frequency``, ``recency``, ``t`` in days as of the calibration end (the rules of
        :meth:`ClvModel.fit`), ``holdout_frequency`` (purchase days in the window) and
        ``holdout_days`` (the window's length, the same on every row).
    time_unit : {"day", "week"}, default "day"
        Unit of the fit, as in :class:`ClvModel` (the predictions do not depend on it).
    penalizer_coef : float, default 0.0
        First penalizer of the fit ladder, as in :class:`ClvModel`.
    max_frequency_bucket : int, default 7
        Calibration frequencies from this one up share the last bucket (``"7+"``).

    Returns
    -------
    HoldoutEvaluation

    Raises
    ------
    CannotFitError
        For a fit that fails at every ladder step, or predictions that are not finite.
    ValueError
        For a broken input (column and rule named).

    Notes
    -----
    Only the purchase process is evaluated: the prediction for a customer is the BG/NBD
    conditional expectation :math:`\mathrm{E}[X(t, t + \tau) \mid x, t_x, T]` (Fader, Hardie &
    Lee 2005a, eq. 10) with :math:`\tau` = ``holdout_days``, fitted on the calibration rows only.
    Grouping customers by calibration frequency and comparing the mean actual and predicted
    purchases per group is the paper's conditional-expectations check (their Figure 4, CDNOW
    weeks 40-78). A customer acquired inside the holdout window is not in the data: the check
    is about customers the model has seen.
    """
    freq, rec, t, actual, holdout_days = _validated_holdout(calibration)
    if isinstance(max_frequency_bucket, bool) or not isinstance(max_frequency_bucket, (int, np.integer)):
        raise ValueError(f"max_frequency_bucket must be an integer >= 1, got {max_frequency_bucket!r}")
    if max_frequency_bucket < 1:
        raise ValueError(f"max_frequency_bucket must be an integer >= 1, got {max_frequency_bucket!r}")
    model = ClvModel(time_unit=time_unit, penalizer_coef=penalizer_coef)
    shape = {**_shape(freq, t), "holdout_days": holdout_days}
    bgf, bg_info = model._fit_bgnbd(freq, rec, t, shape)

    scale = DAYS_PER_TIME_UNIT[time_unit]
    frame = pd.DataFrame({"frequency": freq, "recency": rec / scale, "t": t / scale})
    grouped = frame.groupby(list(_TIME_COLUMNS), sort=True)
    distinct = grouped.size().index.to_frame(index=False)
    params = {k: float(bgf.params_[k]) for k in _BGNBD_PARAMS}
    expected = expected_purchases(
        params,
        holdout_days / scale,
        distinct["frequency"].to_numpy(),
        distinct["recency"].to_numpy(),
        distinct["t"].to_numpy(),
    )
    predicted = expected[grouped.ngroup().to_numpy()]
    if not np.isfinite(predicted).all():
        raise CannotFitError(
            f"the holdout predictions are not finite for {int((~np.isfinite(predicted)).sum())} customers "
            f"(data: {_describe(shape)}); check the calibration summary's extreme histories."
        )

    bucket = np.minimum(freq, max_frequency_bucket).astype(int)
    per_customer = pd.DataFrame({"bucket": bucket, "actual": actual, "predicted": predicted})
    table = per_customer.groupby("bucket", sort=True).agg(
        customers=("actual", "size"),
        actual_mean=("actual", "mean"),
        predicted_mean=("predicted", "mean"),
        actual_total=("actual", "sum"),
        predicted_total=("predicted", "sum"),
    )
    table["absolute_error"] = (table["predicted_mean"] - table["actual_mean"]).abs()
    table.index = [f"{b}+" if b == max_frequency_bucket else str(b) for b in table.index]
    table.index.name = "calibration_frequency"
    table = table[
        ["customers", "actual_mean", "predicted_mean", "absolute_error", "actual_total", "predicted_total"]
    ]

    actual_total, predicted_total = float(actual.sum()), float(predicted.sum())
    return HoldoutEvaluation(
        holdout_days=holdout_days,
        n_customers=len(freq),
        actual_total=actual_total,
        predicted_total=predicted_total,
        total_relative_error=predicted_total / actual_total - 1 if actual_total > 0 else float("nan"),
        total_relative_error_se=(
            float(np.sqrt(np.sum((predicted - actual) ** 2))) / actual_total
            if actual_total > 0
            else float("nan")
        ),
        bucket_mean_absolute_error=float(table["absolute_error"].mean()),
        customer_mean_absolute_error=float(np.abs(predicted - actual).mean()),
        by_frequency=table,
        params={k: float(bgf.params_[k]) for k in _BGNBD_PARAMS},
        fit_info={**shape, "time_unit": time_unit, "converged": True, **bg_info},
    )


# ------------------------------------------------- BG/NBD conditional expectation
def expected_purchases(
    params: dict[str, float],
    horizon: float,
    frequency: np.ndarray,
    recency: np.ndarray,
    t: np.ndarray,
) -> np.ndarray:
    r"""BG/NBD conditional expected number of purchases in the next ``horizon`` time units.

    Parameters
    ----------
    params : dict
        BG/NBD parameters ``r``, ``alpha``, ``a``, ``b`` (``alpha`` in the time unit of the times).
    horizon : float
        Length of the future window, in the fitted time unit.
    frequency, recency, t : numpy.ndarray
        The customers' histories (``x``, ``t_x``, ``T``), in the fitted time unit.

    Returns
    -------
    numpy.ndarray
        :math:`\mathrm{E}[Y(\tau) \mid x, t_x, T]` per customer (float; NaN only if both forms
        of the hypergeometric term below fail).

    Notes
    -----
    Fader, Hardie & Lee (2005a), eq. 10, with :math:`\tau` = ``horizon``,
    :math:`z = \tau / (\alpha + T + \tau)` and :math:`c = a + b + x - 1`:

    .. math:: \mathrm{E}[Y(\tau) \mid x, t_x, T] =
              \frac{c}{a - 1}\,\frac{1 - (1 - z)^{r + x}\,{}_2F_1(r + x, b + x; c; z)}
              {1 + \delta_{x>0}\,\frac{a}{b + x - 1}\left(\frac{\alpha + T}{\alpha + t_x}\right)^{r + x}}

    ``lifetimes`` evaluates the hypergeometric term as ``exp(log(2F1(...)) + ...)``. When
    :math:`c < 0`, which happens for customers without a repeat purchase (:math:`x = 0`) whenever
    :math:`a + b < 1`, :math:`{}_2F_1` is negative, its logarithm is NaN and so is the prediction
    (the formula itself holds for any :math:`a \ne 1`: the factor :math:`c / (a - 1)` is negative
    too). Fits with :math:`a + b < 1` are common on short histories with few repeat customers
    (e.g. 500 generated users over 120 days give :math:`a = 0.18, b = 0.73`; 800 users over 90
    days give :math:`a, b \approx 10^{-6}`, dropout concentrated at :math:`p = 0` and
    :math:`p = 1`). Here the term is computed without a logarithm, and where
    :math:`{}_2F_1` overflows (a long, frequent history) through Euler's transformation

    .. math:: (1 - z)^{r + x}\,{}_2F_1(r + x, b + x; c; z)
              = (1 - z)^{a - 1}\,{}_2F_1(a + b - 1 - r, a - 1; c; z).

    The odds of having dropped out are taken in logs, so that a certainly dead history gives
    exactly 0 expected purchases instead of an overflow.
    """
    r, alpha, a, b = (float(params[k]) for k in _BGNBD_PARAMS)
    x = np.asarray(frequency, dtype=float)
    t_x = np.asarray(recency, dtype=float)
    big_t = np.asarray(t, dtype=float)
    c = a + b + x - 1
    z = horizon / (alpha + big_t + horizon)
    survival = (alpha + big_t) / (alpha + big_t + horizon)  # 1 - z without the rounding of 1 - z
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        term = survival ** (r + x) * hyp2f1(r + x, b + x, c, z)
        euler = survival ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, c, z)
        term = np.where(np.isfinite(term), term, euler)
        alive_part = c / (a - 1) * (1 - term)
        log_odds_dead = (
            np.log(a)
            - np.log(np.where(x > 0, b + x - 1, 1.0))
            + (r + x) * np.log((alpha + big_t) / (alpha + t_x))
        )
    return np.where(x > 0, alive_part * expit(-log_odds_dead), alive_part)


# ---------------------------------------------------------------- helpers
def _numeric_columns(
    frame: pd.DataFrame, columns: Sequence[str], what: str, *, allow_empty: bool = False
) -> dict[str, np.ndarray]:
    """The named columns of ``frame`` as float arrays, after checking they exist and are numeric."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} is missing column(s) {missing}; expected {list(columns)} "
            "(times in days, one row per customer)."
        )
    if len(frame) == 0 and not allow_empty:
        raise ValueError(f"{what} has no rows: there are no customers to fit or score.")
    arrays = {}
    for col in columns:
        series = frame[col]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise ValueError(f"column {col!r} must be numeric, got dtype {series.dtype}")
        arrays[col] = series.to_numpy(dtype="float64", na_value=np.nan)
    return arrays


def _rule_checker(frame: pd.DataFrame, upstream: str) -> Callable[[str, np.ndarray, str], None]:
    def check(col: str, broken: np.ndarray, rule: str) -> None:
        if broken.any():
            examples = list(frame.index[broken][:5])
            raise ValueError(
                f"column {col!r}: {int(broken.sum())} of {len(broken)} rows break the rule '{rule}' "
                f"(e.g. index {examples}). Fix {upstream} upstream."
            )

    return check


def _checked_times(
    arrays: dict[str, np.ndarray], check: Callable[[str, np.ndarray, str], None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    freq, rec, t = (arrays[c] for c in _TIME_COLUMNS)
    for col in _TIME_COLUMNS:
        check(col, ~np.isfinite(arrays[col]), f"{col} is a finite number (no NaN/inf)")
        check(col, arrays[col] < 0, f"{col} >= 0")
    check("frequency", freq != np.floor(freq), "frequency is a whole number of repeat purchase days")
    check("recency", rec > t, "recency <= t (the last purchase is not after the as-of date)")
    check("recency", (freq == 0) & (rec != 0), "recency == 0 when frequency == 0")
    check("recency", (freq > 0) & (rec == 0), "recency > 0 when frequency > 0")
    return freq, rec, t


def _validated_summary(
    summary: pd.DataFrame, *, allow_empty: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check the summary's columns and rules; return frequency, recency, t, monetary_value as float arrays."""
    arrays = _numeric_columns(summary, SUMMARY_COLUMNS, "summary", allow_empty=allow_empty)
    check = _rule_checker(summary, "the customer summary")
    freq, rec, t = _checked_times(arrays, check)
    monetary = arrays["monetary_value"]
    check(
        "monetary_value", (freq > 0) & ~np.isfinite(monetary), "monetary_value is finite when frequency > 0"
    )
    check("monetary_value", monetary < 0, "monetary_value >= 0")
    return freq, rec, t, monetary


def _validated_holdout(
    calibration: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Check the holdout evaluation's input; return frequency, recency, t, holdout_frequency, holdout_days."""
    arrays = _numeric_columns(calibration, HOLDOUT_COLUMNS, "calibration")
    check = _rule_checker(calibration, "the calibration/holdout data (int_clv_calibration_holdout)")
    freq, rec, t = _checked_times(arrays, check)
    actual, days = arrays["holdout_frequency"], arrays["holdout_days"]
    check("holdout_frequency", ~np.isfinite(actual), "holdout_frequency is a finite number")
    check(
        "holdout_frequency",
        (actual < 0) | (actual != np.floor(actual)),
        "holdout_frequency is a whole number >= 0",
    )
    check(
        "holdout_days",
        ~np.isfinite(days) | (days < 1) | (days != np.floor(days)),
        "holdout_days is a whole number >= 1",
    )
    check("holdout_days", days != days[0], "holdout_days is the same on every row (one holdout window)")
    return freq, rec, t, actual, int(days[0])


def _shape(freq: np.ndarray, t: np.ndarray) -> dict[str, Any]:
    """The input size recorded with every fit (and quoted in every fit error)."""
    return {
        "n_customers": len(freq),
        "n_repeat_customers": int((freq > 0).sum()),
        "max_frequency": int(freq.max()) if len(freq) else 0,
        "max_t_days": float(t.max()) if len(t) else 0.0,
    }


def _log_param_covariance(fitter: Any, n: float) -> np.ndarray:
    """Asymptotic covariance of the log parameters: the inverse Hessian of lifetimes' objective
    (the mean negative log-likelihood per customer, in log parameters) divided by the customers."""
    return np.linalg.inv(np.asarray(fitter._hessian_, dtype=float)) / n


def _validated_horizons(horizons_days: Sequence[int]) -> list[int]:
    horizons = list(horizons_days)
    if not horizons or any(
        isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h <= 0 for h in horizons
    ):
        raise ValueError(f"horizons_days must be positive integers (days), got {horizons_days!r}")
    if len(set(horizons)) != len(horizons):
        raise ValueError(f"horizons_days has duplicates: {horizons_days!r}")
    return [int(h) for h in horizons]


def _distinct_rows(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Distinct combinations of the columns, sorted, with their counts in ``weight``."""
    frame = pd.DataFrame(columns)
    return frame.groupby(list(columns), sort=True).size().rename("weight").reset_index()


def _gamma_gamma_problem(fitter: Any) -> str | None:
    q = float(fitter.params_["q"])
    if q <= 1:
        return f"q = {q:.4g} <= 1, so the population mean spend p*v/(q-1) does not exist"
    return None


def _describe(shape: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in shape.items())
