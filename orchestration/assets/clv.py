"""CLV: BG/NBD + Gamma-Gamma on the customer summary built by dbt, scored back into the warehouse.

``customer_clv`` fits the model (``models_py/clv.py``) on ``int_customers_summarized``, scores every
customer into ``ml.customer_clv``, refits on the calibration window of
``int_clv_calibration_holdout`` to measure the holdout error, and records the fit in
``ml.customer_clv_fit`` (one row: the fit behind ``ml.customer_clv``) and the holdout table in
``ml.customer_clv_holdout``. The model-health checks below read those tables; the holdout table
is also drawn as the calibration plot in the asset's metadata and the mart's HTML report.

When the data cannot support an honest fit (``CannotFitError``: fewer than 30 repeat customers,
no convergence, non-finite scores), ``ml.customer_clv`` is written empty with its usual columns,
the fit record says ``is_fitted = false`` with the reason and the numbers, the warning check
``customer_clv__model_fitted`` says so, and the blocking checks have nothing to block on.
"""

import json
import math
import time
from typing import Any, Literal

import dagster as dg
import numpy as np
import pandas as pd

from models_py.clv import CannotFitError, ClvModel, HoldoutEvaluation, evaluate_holdout
from orchestration.checks.model_status import build_model_fitted_check, not_applicable
from orchestration.checks.results import error_result
from orchestration.plots import draw_model_plots, markdown_image
from orchestration.resources import WAREHOUSE_POOL, LifecycleSettings

SUMMARY_TABLE = "intermediate.int_customers_summarized"
HOLDOUT_INPUT_TABLE = "intermediate.int_clv_calibration_holdout"
CLV_SCHEMA = "ml"
CLV_TABLE = f"{CLV_SCHEMA}.customer_clv"
FIT_TABLE = f"{CLV_SCHEMA}.customer_clv_fit"
HOLDOUT_TABLE = f"{CLV_SCHEMA}.customer_clv_holdout"
#: The holdout check warns when the predicted holdout purchases miss the actual total by more
#: than this share (CDNOW, weeks 40-78: -12.1 %; generated demo data: a few %).
MAX_HOLDOUT_RELATIVE_ERROR = 0.20
OUTPUT_RANGES: dict[str, tuple[float, float]] = {
    "p_alive": (0.0, 1.0),
    "expected_purchases_30d": (0.0, math.inf),
    "expected_purchases_90d": (0.0, math.inf),
    "expected_purchases_365d": (0.0, math.inf),
    "expected_avg_order_value": (0.0, math.inf),
    "clv": (0.0, math.inf),
}


class ClvConfig(dg.Config):
    """Model settings (METRICS.md, customer lifetime value)."""

    time_unit: Literal["day", "week"] = "day"
    clv_horizon_months: int = 12
    monthly_discount_rate: float = 0.01
    margin: float = 1.0


def _parameters_markdown(model: ClvModel) -> str:
    info = model.fit_info_
    lines = ["| model | parameter | estimate | standard error |", "|---|---|---:|---:|"]
    for name, value in model.params_["bgnbd"].items():
        lines.append(f"| BG/NBD | {name} | {value:.4g} | {info['bgnbd_standard_errors'][name]:.2g} |")
    for name, value in model.params_["gamma_gamma"].items():
        lines.append(f"| Gamma-Gamma | {name} | {value:.4g} | {info['gg_standard_errors'][name]:.2g} |")
    lines += [
        f"| BG/NBD | mean purchase rate / day | {info['bgnbd_mean_purchase_rate_per_day']:.4g} | "
        f"{info['bgnbd_mean_purchase_rate_per_day_se']:.2g} |",
        f"| Gamma-Gamma | mean spend | {info['gg_mean_spend']:.4g} | {info['gg_mean_spend_se']:.2g} |",
        "",
        f"Time unit {info['time_unit']}; {info['n_customers']:,} customers in {info['n_distinct_rows']:,} "
        f"distinct rows; log-likelihood BG/NBD {info['bgnbd_log_likelihood']:,.1f}, Gamma-Gamma "
        f"{info['gg_log_likelihood']:,.1f}; ladder step BG/NBD {info['bgnbd_ladder_step']}, "
        f"Gamma-Gamma {info['gg_ladder_step']}.",
    ]
    return "\n".join(lines)


def _holdout(holdout_input: pd.DataFrame, time_unit: str) -> tuple[HoldoutEvaluation | None, str | None]:
    """The holdout evaluation, or why there is none (too little history is not an error of the run)."""
    if holdout_input.empty:
        return None, f"{HOLDOUT_INPUT_TABLE} is empty: no customer bought before the calibration end"
    try:
        return evaluate_holdout(holdout_input, time_unit=time_unit), None
    except ValueError as err:
        return None, f"holdout evaluation failed: {err}"


@dg.asset(
    key="customer_clv",
    deps=[dg.AssetKey("int_customers_summarized"), dg.AssetKey("int_clv_calibration_holdout")],
    group_name="models",
    kinds={"python", "duckdb", "great_expectations"},
    pool=WAREHOUSE_POOL,
    owners=["team:data-science"],
)
def customer_clv(
    context: dg.AssetExecutionContext, config: ClvConfig, settings: LifecycleSettings
) -> dg.MaterializeResult:
    """Per customer: P(alive), expected purchases over 30/90/365 days, expected average order value
    and CLV over the horizon (BG/NBD + Gamma-Gamma, fitted with lifetimes on distinct summary rows).
    Also measures the model on a holdout window (refit on int_clv_calibration_holdout) and records
    the fit in ml.customer_clv_fit and ml.customer_clv_holdout."""
    started = time.perf_counter()
    # the engine of the dbt target (DuckDB file or Spark): the inputs are one row per customer
    warehouse = settings.warehouse()
    summary = warehouse.query(
        f"select user_id, frequency, recency, t, monetary_value, as_of_date, observation_end_date "
        f"from {SUMMARY_TABLE} order by user_id"
    )
    holdout_input = warehouse.query(f"select * from {HOLDOUT_INPUT_TABLE} order by user_id")
    try:
        model = ClvModel(time_unit=config.time_unit).fit(summary)
        scores = model.predict(
            summary,
            clv_horizon_months=config.clv_horizon_months,
            monthly_discount_rate=config.monthly_discount_rate,
            margin=config.margin,
        )
    except CannotFitError as err:
        return _not_fitted(context, config, warehouse, summary, err, started)
    output = summary.drop(columns="observation_end_date").join(scores)
    output["clv_horizon_months"] = config.clv_horizon_months
    output["model_version"] = model.model_version()
    fit_seconds = round(time.perf_counter() - started, 3)

    evaluation, holdout_problem = _holdout(holdout_input, config.time_unit)
    if holdout_problem:
        context.log.warning(holdout_problem)
    fit_row = _fit_row(
        context,
        config,
        summary,
        model_version=model.model_version(),
        params=json.dumps(model.params_),
        fit_info=json.dumps(model.fit_info_),
        holdout_metrics=json.dumps(evaluation.metrics()) if evaluation else None,
        holdout_fit_info=json.dumps(evaluation.fit_info) if evaluation else None,
        holdout_problem=holdout_problem,
    )
    holdout_table = (
        evaluation.by_frequency.reset_index().assign(holdout_days=evaluation.holdout_days)
        if evaluation
        else pd.DataFrame({"calibration_frequency": pd.Series([], dtype="str")})
    )
    warehouse.write_frames(
        CLV_SCHEMA,
        {
            table.removeprefix(f"{CLV_SCHEMA}."): frame
            for table, frame in ((CLV_TABLE, output), (FIT_TABLE, fit_row), (HOLDOUT_TABLE, holdout_table))
        },
    )
    seconds = round(time.perf_counter() - started, 3)
    context.log.info(
        f"{CLV_TABLE}: {len(output):,} customers scored in {seconds} s ({model.model_version()})"
    )
    metadata: dict[str, Any] = {
        "dagster/row_count": len(output),
        "is_fitted": True,
        "model_version": model.model_version(),
        "parameters": dg.MetadataValue.md(_parameters_markdown(model)),
        "params": dg.MetadataValue.json(model.params_),
        "fit_info": dg.MetadataValue.json(model.fit_info_),
        "mean_p_alive": float(output["p_alive"].mean()),
        "total_clv": float(output["clv"].sum()),
        "fit_seconds": fit_seconds,
        "seconds": seconds,
    }
    if evaluation:
        metadata |= {
            **_holdout_plot(holdout_table, context.log),
            "holdout_evaluation": dg.MetadataValue.md(evaluation.to_markdown()),
            "holdout_total_relative_error": evaluation.total_relative_error,
            "holdout_bucket_mean_absolute_error": evaluation.bucket_mean_absolute_error,
            "holdout_metrics": dg.MetadataValue.json(evaluation.metrics()),
        }
    else:
        metadata["holdout_problem"] = holdout_problem
    return dg.MaterializeResult(metadata=metadata)


def _fit_row(
    context: dg.AssetExecutionContext,
    config: ClvConfig,
    summary: pd.DataFrame,
    *,
    model_version: str | None,
    params: str | None,
    fit_info: str,
    holdout_metrics: str | None,
    holdout_fit_info: str | None,
    holdout_problem: str | None,
    not_fitted_reason: str | None = None,
) -> pd.DataFrame:
    """The one row of ml.customer_clv_fit: the fit behind ml.customer_clv, or why there is none.
    Text columns are typed, so that a NULL is stored as a NULL text and not as an untyped column."""

    def text(value: str | None) -> pd.Series:
        return pd.Series([value], dtype="str")

    return pd.DataFrame(
        {
            "model_version": text(model_version),
            "is_fitted": [not_fitted_reason is None],
            "not_fitted_reason": text(not_fitted_reason),
            "time_unit": [config.time_unit],
            "as_of_date": [summary["as_of_date"].max()],
            "observation_end_date": [summary["observation_end_date"].max()],
            "n_customers": [len(summary)],
            "params": text(params),
            "fit_info": text(fit_info),
            "holdout_metrics": text(holdout_metrics),
            "holdout_fit_info": text(holdout_fit_info),
            "holdout_problem": text(holdout_problem),
            "run_id": [context.run.run_id],
        }
    )


def _not_fitted(
    context: dg.AssetExecutionContext,
    config: ClvConfig,
    warehouse: Any,
    summary: pd.DataFrame,
    error: CannotFitError,
    started: float,
) -> dg.MaterializeResult:
    """No honest fit: an empty ml.customer_clv with its usual columns, the reason in the fit record."""
    reason = str(error)
    context.log.warning(f"{CLV_TABLE}: not fitted, no scores written: {reason}")
    scores = pd.DataFrame({column: pd.Series([], dtype="float64") for column in OUTPUT_RANGES})
    output = pd.concat(
        [summary.drop(columns="observation_end_date").head(0).reset_index(drop=True), scores], axis=1
    )
    output["clv_horizon_months"] = pd.Series([], dtype="int64")
    output["model_version"] = pd.Series([], dtype="str")
    fit_row = _fit_row(
        context,
        config,
        summary,
        model_version=None,
        params=None,
        fit_info=json.dumps(error.facts, default=str),
        holdout_metrics=None,
        holdout_fit_info=None,
        holdout_problem="the model was not fitted",
        not_fitted_reason=reason,
    )
    holdout_table = pd.DataFrame({"calibration_frequency": pd.Series([], dtype="str")})
    warehouse.write_frames(
        CLV_SCHEMA,
        {
            table.removeprefix(f"{CLV_SCHEMA}."): frame
            for table, frame in ((CLV_TABLE, output), (FIT_TABLE, fit_row), (HOLDOUT_TABLE, holdout_table))
        },
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": 0,
            "is_fitted": False,
            "not_fitted_reason": reason,
            "facts": dg.MetadataValue.json(json.loads(json.dumps(error.facts, default=str))),
            "seconds": round(time.perf_counter() - started, 3),
        }
    )


def _holdout_plot(holdout_table: pd.DataFrame, log: Any) -> dict[str, dg.MetadataValue]:
    """The holdout calibration plot as a markdown image; left out with a warning if it fails to draw."""
    images, problems = draw_model_plots(HOLDOUT_TABLE.removeprefix(f"{CLV_SCHEMA}."), holdout_table)
    for problem in problems.values():
        log.warning(f"plots: {problem}")
    return {key: dg.MetadataValue.md(markdown_image(png, key)) for key, png in images.items()}


# --------------------------------------------------------------- model health
def _latest_fit(settings: LifecycleSettings) -> tuple[dict[str, Any], str | None]:
    """The row of ml.customer_clv_fit (JSON columns decoded) and the model_version(s) in ml.customer_clv."""
    warehouse = settings.warehouse()
    row = warehouse.query(f"select * from {FIT_TABLE}")
    versions = warehouse.query(f"select distinct model_version from {CLV_TABLE}").itertuples(index=False)
    if len(row) != 1:
        raise dg.Failure(f"{FIT_TABLE} has {len(row)} rows, expected the one fit behind {CLV_TABLE}")
    record = row.iloc[0].to_dict()
    for column in ("params", "fit_info", "holdout_metrics", "holdout_fit_info"):
        value = record[column]
        record[column] = json.loads(value) if isinstance(value, str) else None
    return record, ", ".join(sorted(str(v) for (v,) in versions))


@dg.asset_check(
    asset="customer_clv",
    name="customer_clv__fit_converged",
    blocking=True,
    description=(
        "Both fits (BG/NBD, Gamma-Gamma) converged, and ml.customer_clv holds the scores of the "
        "recorded fit (ml.customer_clv_fit)."
    ),
)
def customer_clv__fit_converged(settings: LifecycleSettings) -> dg.AssetCheckResult:
    record, scored_versions = _latest_fit(settings)
    info = record["fit_info"]
    if not record["is_fitted"]:
        # No fit, so nothing converged or not; what must hold is that no score was written.
        rows = int(settings.warehouse().query(f"select count(*) as n from {CLV_TABLE}")["n"].iloc[0])
        reason = record["not_fitted_reason"]
        return error_result(
            rows == 0,
            not_applicable("customer_clv", reason, f"{CLV_TABLE} holds no scores, as it must")
            if rows == 0
            else f"customer_clv: FAILED {CLV_TABLE} holds {rows:,} scores but no model was fitted ({reason})",
            is_fitted=False,
            scored_rows=rows,
        )
    steps = {
        model: (
            f"ladder step {info[f'{model}_ladder_step']} (penalizer {info[f'{model}_penalizer_coef']:g}, "
            f"tol {info[f'{model}_tol']:g})"
        )
        for model in ("bgnbd", "gg")
    }
    problems = []
    if not info.get("converged"):
        problems.append("the recorded fit did not converge")
    if scored_versions != record["model_version"]:
        problems.append(
            f"{CLV_TABLE} holds model_version {scored_versions}, the fit is {record['model_version']}"
        )
    return error_result(
        not problems,
        "; ".join(f"customer_clv: FAILED {p}" for p in problems)
        or f"customer_clv: {record['model_version']} converged on {info['n_customers']:,} customers; "
        f"BG/NBD {steps['bgnbd']}, Gamma-Gamma {steps['gg']}",
        model_version=record["model_version"],
        n_customers=info["n_customers"],
        bgnbd_ladder_step=info["bgnbd_ladder_step"],
        gg_ladder_step=info["gg_ladder_step"],
        failed_attempts=dg.MetadataValue.json(
            {"bgnbd": info["bgnbd_failed_attempts"], "gg": info["gg_failed_attempts"]}
        ),
    )


@dg.asset_check(
    asset="customer_clv",
    name="customer_clv__parameters_finite",
    blocking=True,
    description="Every parameter (r, alpha, a, b, p, q, v) and its standard error is finite and positive.",
)
def customer_clv__parameters_finite(settings: LifecycleSettings) -> dg.AssetCheckResult:
    record, _ = _latest_fit(settings)
    if not record["is_fitted"]:
        reason = record["not_fitted_reason"]
        return error_result(True, not_applicable("customer_clv", reason, "no parameters to check"))
    params, info = record["params"], record["fit_info"]
    values = {
        **{f"bgnbd.{k}": v for k, v in params["bgnbd"].items()},
        **{f"gamma_gamma.{k}": v for k, v in params["gamma_gamma"].items()},
        **{f"se(bgnbd.{k})": v for k, v in info["bgnbd_standard_errors"].items()},
        **{f"se(gamma_gamma.{k})": v for k, v in info["gg_standard_errors"].items()},
    }
    bad = {k: v for k, v in values.items() if v is None or not (math.isfinite(v) and v > 0)}
    return error_result(
        not bad,
        f"customer_clv: FAILED {len(bad)} of {len(values)} values not finite and positive: {bad}"
        if bad
        else f"customer_clv: {len(values)} parameters and standard errors finite and positive",
        params=dg.MetadataValue.json(params),
    )


@dg.asset_check(
    asset="customer_clv",
    name="customer_clv__gamma_gamma_q_above_1",
    blocking=True,
    description=(
        "Gamma-Gamma q > 1, so that the population mean spend p*v/(q-1) exists and the expected "
        "order values are defined."
    ),
)
def customer_clv__gamma_gamma_q_above_1(settings: LifecycleSettings) -> dg.AssetCheckResult:
    record, _ = _latest_fit(settings)
    if not record["is_fitted"]:
        reason = record["not_fitted_reason"]
        return error_result(True, not_applicable("customer_clv", reason, "no Gamma-Gamma q to check"))
    q = record["params"]["gamma_gamma"]["q"]
    passed = q is not None and math.isfinite(q) and q > 1
    return error_result(
        passed,
        f"customer_clv: Gamma-Gamma q = {q:.4g} > 1, mean spend {record['fit_info']['gg_mean_spend']:.2f}"
        if passed
        else f"customer_clv: FAILED Gamma-Gamma q = {q} <= 1: the mean spend does not exist; check "
        "monetary_value in int_customers_summarized (heavy tail, units)",
        q=float(q) if q is not None else None,
    )


@dg.asset_check(
    asset="customer_clv",
    name="customer_clv__outputs_in_range",
    blocking=True,
    description=(
        "Every score is finite and in range: p_alive in [0, 1]; expected purchases, expected "
        "average order value and clv >= 0."
    ),
)
def customer_clv__outputs_in_range(settings: LifecycleSettings) -> dg.AssetCheckResult:
    columns = ", ".join(OUTPUT_RANGES)
    scores = settings.warehouse().query(f"select {columns} from {CLV_TABLE}")
    failing = {}
    for column, (low, high) in OUTPUT_RANGES.items():
        values = scores[column].to_numpy(dtype=float, na_value=np.nan)
        count = int((~np.isfinite(values) | (values < low) | (values > high)).sum())
        if count:
            failing[column] = count
    unfitted = "" if len(scores) else " (no scores: see customer_clv__model_fitted)"
    return error_result(
        not failing,
        "; ".join(
            f"{CLV_TABLE}: FAILED {count:,} of {len(scores):,} rows with {column} missing, not finite or "
            f"outside [{OUTPUT_RANGES[column][0]:g}, {OUTPUT_RANGES[column][1]:g}]"
            for column, count in failing.items()
        )
        or f"{CLV_TABLE}: {len(scores):,} rows, every score finite and in range{unfitted}",
        rows_checked=len(scores),
        failing_rows=dg.MetadataValue.json(failing),
    )


@dg.asset_check(
    asset="customer_clv",
    name="customer_clv__holdout_error",
    blocking=False,
    description=(
        "Warns when the model refitted on the calibration window misses the holdout window's repeat "
        f"purchase days by more than {MAX_HOLDOUT_RELATIVE_ERROR:.0%} in total, or when no holdout "
        "evaluation was possible."
    ),
)
def customer_clv__holdout_error(settings: LifecycleSettings) -> dg.AssetCheckResult:
    record, _ = _latest_fit(settings)
    metrics = record["holdout_metrics"]
    if metrics is None:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"customer_clv: no holdout evaluation: {record['holdout_problem']}",
        )
    error = metrics["total_relative_error"]
    passed = math.isfinite(error) and abs(error) <= MAX_HOLDOUT_RELATIVE_ERROR
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"customer_clv: holdout of {metrics['holdout_days']} days: predicted "
            f"{metrics['predicted_total']:,.1f} vs actual {metrics['actual_total']:,.0f} repeat "
            "purchase days "
            f"({error:+.1%}, sampling SE {metrics['total_relative_error_se']:.1%}; "
            f"{'within' if passed else 'WARN above'} +-{MAX_HOLDOUT_RELATIVE_ERROR:.0%}), "
            f"mean absolute error per frequency bucket {metrics['bucket_mean_absolute_error']:.3f}"
        ),
        metadata={
            "total_relative_error": float(error),
            "threshold": MAX_HOLDOUT_RELATIVE_ERROR,
            "holdout_metrics": dg.MetadataValue.json(metrics),
        },
    )


customer_clv_checks = [
    build_model_fitted_check("customer_clv"),
    customer_clv__fit_converged,
    customer_clv__parameters_finite,
    customer_clv__gamma_gamma_q_above_1,
    customer_clv__outputs_in_range,
    customer_clv__holdout_error,
]
