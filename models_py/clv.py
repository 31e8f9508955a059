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
    days from the first purchase day to the as-of date (``T`` in the papers);
``monetary_value``
    mean net value of the repeat purchase days (0 or NaN when ``frequency`` is 0).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

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

__all__ = ["ClvModel", "SUMMARY_COLUMNS"]

SUMMARY_COLUMNS: tuple[str, ...] = ("frequency", "recency", "t", "monetary_value")
DAYS_PER_TIME_UNIT: dict[str, float] = {"day": 1.0, "week": 7.0}
DAYS_PER_MONTH = 30
# Penalizers tried in turn when a fit fails; see ClvModel.fit.
PENALIZER_LADDER: tuple[float, ...] = (0.0, 1e-3, 1e-2)
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
        If a fit fails, larger penalizers from :data:`PENALIZER_LADDER` are tried in turn.

    Attributes
    ----------
    params_ : dict
        ``{"bgnbd": {"r", "alpha", "a", "b"}, "gamma_gamma": {"p", "q", "v"}}`` as floats, in the
        fitted time unit.
    fit_info_ : dict
        Data shape, the penalizer and ladder step used per model, total log-likelihoods (without
        penalty, in the fitted time unit), standard errors and the correlation between frequency
        and monetary value of the repeat customers (Gamma-Gamma assumes independence).

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
        ValueError
            If a column is missing or breaks a rule, if fewer than
            :data:`MIN_GAMMA_GAMMA_CUSTOMERS` customers have a repeat purchase with positive
            value, or if a model does not converge at any penalizer of the ladder.
        """
        freq, rec, t, monetary = _validated_summary(summary)
        is_repeat = freq > 0
        is_gg = is_repeat & (monetary > 0)
        shape = {
            "n_customers": len(freq),
            "n_repeat_customers": int(is_repeat.sum()),
            "n_gamma_gamma_customers": int(is_gg.sum()),
            "max_frequency": int(freq.max()),
            "max_t_days": float(t.max()),
        }
        if shape["n_gamma_gamma_customers"] < MIN_GAMMA_GAMMA_CUSTOMERS:
            raise ValueError(
                f"summary has only {shape['n_gamma_gamma_customers']} customers with frequency > 0 and "
                f"monetary_value > 0; Gamma-Gamma needs at least {MIN_GAMMA_GAMMA_CUSTOMERS} "
                f"(data: {_describe(shape)}). Wait for more repeat purchases or widen the window."
            )

        scale = DAYS_PER_TIME_UNIT[self.time_unit]
        bg_rows = _distinct_rows({"frequency": freq, "recency": rec / scale, "t": t / scale})
        shape["n_distinct_rows"] = len(bg_rows)
        bg_args = (
            bg_rows["frequency"].to_numpy(),
            bg_rows["recency"].to_numpy(),
            bg_rows["t"].to_numpy(),
            bg_rows["weight"].to_numpy(),
        )
        bgf, bg_step = self._fit_with_ladder(
            "BG/NBD",
            lambda pen: BetaGeoFitter(penalizer_coef=pen).fit(*bg_args[:3], weights=bg_args[3]),
            _BGNBD_PARAMS,
            shape,
            hint="look for outlying histories (a very high frequency, t near 0 for most customers)",
        )

        gg_rows = _distinct_rows({"frequency": freq[is_gg], "monetary_value": monetary[is_gg]})
        shape["n_gamma_gamma_distinct_rows"] = len(gg_rows)
        gg_args = (
            gg_rows["frequency"].to_numpy(dtype=float),
            gg_rows["monetary_value"].to_numpy(),
            gg_rows["weight"].to_numpy(),
        )
        ggf, gg_step = self._fit_with_ladder(
            "Gamma-Gamma",
            lambda pen: GammaGammaFitter(penalizer_coef=pen).fit(*gg_args[:2], weights=gg_args[2]),
            _GG_PARAMS,
            shape,
            extra_check=_gamma_gamma_problem,
            hint="look for heavy-tailed or mis-scaled monetary_value (refunds, currency units)",
        )

        self._bgf, self._ggf = bgf, ggf
        self.params_ = {
            "bgnbd": {k: float(bgf.params_[k]) for k in _BGNBD_PARAMS},
            "gamma_gamma": {k: float(ggf.params_[k]) for k in _GG_PARAMS},
        }
        bg_log_params = np.log([self.params_["bgnbd"][k] for k in _BGNBD_PARAMS])
        gg_log_params = np.log([self.params_["gamma_gamma"][k] for k in _GG_PARAMS])
        # lifetimes reports its objective per customer and on internally rescaled times; these are
        # total log-likelihoods without penalty in the fitted time unit (comparable to the papers).
        with warnings.catch_warnings():  # the likelihoods call warnings.simplefilter: keep it local
            bg_ll = -BetaGeoFitter._negative_log_likelihood(bg_log_params, *bg_args, 0.0) * bg_args[3].sum()
            gg_ll = (
                -GammaGammaFitter._negative_log_likelihood(gg_log_params, *gg_args, 0.0) * gg_args[2].sum()
            )
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN if all repeat customers spend the same
            corr = np.corrcoef(freq[is_gg], monetary[is_gg])[0, 1]
        self.fit_info_ = {
            **shape,
            "time_unit": self.time_unit,
            "bgnbd_penalizer_coef": bgf.penalizer_coef,
            "bgnbd_ladder_step": bg_step,
            "gg_penalizer_coef": ggf.penalizer_coef,
            "gg_ladder_step": gg_step,
            "bgnbd_log_likelihood": float(bg_ll),
            "gg_log_likelihood": float(gg_ll),
            "bgnbd_standard_errors": {k: float(bgf.standard_errors_[k]) for k in _BGNBD_PARAMS},
            "gg_standard_errors": {k: float(ggf.standard_errors_[k]) for k in _GG_PARAMS},
            "gg_frequency_monetary_corr": float(corr),
            "library": f"lifetimes {lifetimes.__version__}",
        }
        return self

    def _fit_with_ladder(
        self,
        name: str,
        fit_one: Callable[[float], Any],
        param_names: Sequence[str],
        shape: dict[str, Any],
        extra_check: Callable[[Any], str | None] | None = None,
        hint: str = "",
    ) -> tuple[Any, int]:
        """Fit with ``self.penalizer_coef``, then each larger ladder penalizer; return (fitter, step)."""
        ladder = [self.penalizer_coef] + [p for p in PENALIZER_LADDER if p > self.penalizer_coef]
        failures = []
        for step, pen in enumerate(ladder):
            problem = None
            # lifetimes prints the scipy result on failure and calls warnings.simplefilter inside its
            # likelihood: capture the print (its message goes into our error) and restore the filters.
            printed = io.StringIO()
            with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
                try:
                    fitter = fit_one(pen)
                except (ConvergenceError, np.linalg.LinAlgError, FloatingPointError) as exc:
                    problem = type(exc).__name__
                    scipy_message = [ln.strip() for ln in printed.getvalue().splitlines() if "message" in ln]
                    if scipy_message:
                        problem += f" ({scipy_message[0]})"
            if problem is None:
                values = np.array([fitter.params_[k] for k in param_names], dtype=float)
                if not np.all(np.isfinite(values)) or not np.isfinite(fitter._negative_log_likelihood_):
                    problem = f"non-finite parameters {dict(zip(param_names, values.tolist(), strict=True))}"
                elif extra_check is not None:
                    problem = extra_check(fitter)
            if problem is None:
                return fitter, step
            failures.append(f"penalizer {pen:g}: {problem}")
        raise ValueError(
            f"{name} fit failed at every penalizer of the ladder ({'; '.join(failures)}). "
            f"Data: {_describe(shape)}, time_unit={self.time_unit!r}. In the customer summary, {hint}; "
            "or pass a larger penalizer_coef."
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
        columns: dict[str, np.ndarray] = {}
        columns["p_alive"] = np.asarray(bgf.conditional_probability_alive(d_freq, d_rec, d_t), dtype=float)
        # For histories where death is all but certain (many purchases long ago) lifetimes' term
        # ((alpha + T) / (alpha + recency)) ** (r + x) overflows to inf, and 1 / (1 + inf) = 0 is the
        # right limit: keep that overflow quiet here only (NaN is still caught below).
        with np.errstate(over="ignore"):
            for h in horizons:
                columns[f"expected_purchases_{h}d"] = np.asarray(
                    bgf.conditional_expected_number_of_purchases_up_to_time(h / scale, d_freq, d_rec, d_t),
                    dtype=float,
                )
            # Cumulative expected purchases at the end of months 0..M, differenced per month and
            # discounted at the month's end, as lifetimes.utils._customer_lifetime_value does.
            month_ends = DAYS_PER_MONTH * np.arange(clv_horizon_months + 1) / scale
            cumulative = np.stack(
                [
                    bgf.conditional_expected_number_of_purchases_up_to_time(m, d_freq, d_rec, d_t)
                    for m in month_ends
                ]
            )
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
            raise ValueError(
                f"predict produced non-finite values for {int(bad.sum())} of {len(out)} rows "
                f"(e.g. index {list(summary.index[bad][:5])}; max frequency {int(freq.max())}). "
                "The hypergeometric term of BG/NBD can overflow for extreme histories: check those rows."
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


# ---------------------------------------------------------------- helpers
def _validated_summary(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check the summary's columns and rules; return frequency, recency, t, monetary_value as float arrays."""
    if not isinstance(summary, pd.DataFrame):
        raise TypeError(f"summary must be a pandas DataFrame, got {type(summary).__name__}")
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(
            f"summary is missing column(s) {missing}; expected {list(SUMMARY_COLUMNS)} "
            "(times in days, one row per customer)."
        )
    if len(summary) == 0:
        raise ValueError("summary has no rows: there are no customers to fit or score.")

    arrays = {}
    for col in SUMMARY_COLUMNS:
        series = summary[col]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise ValueError(f"column {col!r} must be numeric, got dtype {series.dtype}")
        arrays[col] = series.to_numpy(dtype="float64", na_value=np.nan)
    freq, rec, t, monetary = (arrays[c] for c in SUMMARY_COLUMNS)

    def check(col: str, broken: np.ndarray, rule: str) -> None:
        if broken.any():
            examples = list(summary.index[broken][:5])
            raise ValueError(
                f"column {col!r}: {int(broken.sum())} of {len(broken)} rows break the rule '{rule}' "
                f"(e.g. index {examples}). Fix the customer summary upstream."
            )

    for col in _TIME_COLUMNS:
        check(col, ~np.isfinite(arrays[col]), f"{col} is a finite number (no NaN/inf)")
        check(col, arrays[col] < 0, f"{col} >= 0")
    check("frequency", freq != np.floor(freq), "frequency is a whole number of repeat purchase days")
    check("recency", rec > t, "recency <= t (the last purchase is not after the as-of date)")
    check("recency", (freq == 0) & (rec != 0), "recency == 0 when frequency == 0")
    check("recency", (freq > 0) & (rec == 0), "recency > 0 when frequency > 0")
    check(
        "monetary_value", (freq > 0) & ~np.isfinite(monetary), "monetary_value is finite when frequency > 0"
    )
    check("monetary_value", monetary < 0, "monetary_value >= 0")
    return freq, rec, t, monetary


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
