"""CLV fit time at scale: the weighted fit on distinct rows against lifetimes' plain per-customer fit.

Draws a customer summary from the BG/NBD + Gamma-Gamma generative process with a seed (first
purchases uniform over a year, times in whole days as ``int_customers_summarized`` has them,
order values rounded to cents), then times, medians of ``--repeat`` runs:

* ``weighted``: ``ClvModel().fit(summary)``: BG/NBD on the distinct (frequency, recency, t) rows and
  Gamma-Gamma on the distinct (frequency, monetary_value) rows, counts as weights, plus the
  record (log-likelihoods, standard errors);
* ``plain``: ``lifetimes`` ``BetaGeoFitter().fit`` on every customer and ``GammaGammaFitter().fit`` on
  every repeat customer (one likelihood term per customer);
* ``predict``: ``ClvModel.predict`` for every customer (P(alive), 3 horizons, CLV over 12 months).

Both fits must give the same parameters; the script prints the largest relative difference.

Usage::

    python bench/clv_fit.py --customers 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models_py.clv import ClvModel  # noqa: E402  (imports lifetimes quietly)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"The 'mode\.chained_assignment'", category=DeprecationWarning)
    from lifetimes import BetaGeoFitter, GammaGammaFitter

# Per day, as models_py/generator.py's defaults.
TRUTH = {"r": 0.25, "alpha": 8.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "gamma": 15.0}


def simulate_summary(n: int, seed: int, days: int = 365) -> pd.DataFrame:
    """One row per customer as int_customers_summarized gives it (whole days)."""
    rng = np.random.default_rng(seed)
    t = rng.integers(1, days + 1, n).astype(float)  # days from the first purchase to the end
    lam = rng.gamma(TRUTH["r"], 1.0 / TRUTH["alpha"], n)
    p = rng.beta(TRUTH["a"], TRUTH["b"], n)
    arrivals = rng.poisson(lam * t)
    frequency = np.minimum(rng.geometric(p), arrivals)
    # The last of x purchases among N uniform arrivals on (0, t) is t * Beta(x, N - x + 1).
    last = t * rng.beta(np.maximum(frequency, 1), np.maximum(arrivals - frequency + 1, 1))
    recency = np.where(frequency > 0, np.clip(np.ceil(last), 1, t), 0.0)
    nu = rng.gamma(TRUTH["q"], 1.0 / TRUTH["gamma"], n)
    # The mean of x Gamma(p, nu) order values is Gamma(p x, nu x); rounded to cents.
    mean_value = rng.gamma(TRUTH["p"] * np.maximum(frequency, 1), 1.0) / (nu * np.maximum(frequency, 1))
    monetary = np.where(frequency > 0, np.round(mean_value, 2), 0.0)
    return pd.DataFrame({"frequency": frequency, "recency": recency, "t": t, "monetary_value": monetary})


def plain_fit(summary: pd.DataFrame) -> dict[str, float]:
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    with warnings.catch_warnings():
        bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["t"])
        ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    return {**bgf.params_.to_dict(), **ggf.params_.to_dict()}


def timed(function, repeat: int) -> tuple[float, list[float], object]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    started = time.perf_counter()
    summary = simulate_summary(args.customers, args.seed)
    print(f"simulated {len(summary):,} customers in {time.perf_counter() - started:.1f} s", flush=True)

    weighted_s, weighted_all, model = timed(lambda: ClvModel().fit(summary), args.repeat)
    info = model.fit_info_
    print(f"weighted fit: median {weighted_s:.2f} s {[round(s, 2) for s in weighted_all]}", flush=True)
    plain_s, plain_all, plain_params = timed(lambda: plain_fit(summary), args.repeat)
    print(f"plain fit:    median {plain_s:.2f} s {[round(s, 2) for s in plain_all]}", flush=True)
    predict_s, predict_all, _ = timed(lambda: model.predict(summary), args.repeat)
    print(f"predict:      median {predict_s:.2f} s {[round(s, 2) for s in predict_all]}", flush=True)

    weighted_params = {**model.params_["bgnbd"], **model.params_["gamma_gamma"]}
    max_rel_diff = max(abs(weighted_params[k] / plain_params[k] - 1) for k in weighted_params)
    print(
        json.dumps(
            {
                "customers": len(summary),
                "repeat_customers": info["n_repeat_customers"],
                "bgnbd_distinct_rows": info["n_distinct_rows"],
                "gamma_gamma_customers": info["n_gamma_gamma_customers"],
                "gamma_gamma_distinct_rows": info["n_gamma_gamma_distinct_rows"],
                "weighted_fit_median_s": round(weighted_s, 3),
                "plain_fit_median_s": round(plain_s, 3),
                "speed_up": round(plain_s / weighted_s, 1),
                "predict_median_s": round(predict_s, 3),
                "max_relative_parameter_difference": max_rel_diff,
                "params": {k: round(v, 4) for k, v in weighted_params.items()},
                "truth": TRUTH,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
