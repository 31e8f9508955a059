"""Churn risk: the gradient-boosted model of ``models_py/churn.py`` on the dbt snapshots, scored back
into the warehouse.

``churn_risk`` reads ``int_churn_snapshots`` (features and labels per snapshot date) and
``int_churn_customer_snapshots`` (the BG/NBD inputs per snapshot date, for the P(alive) baseline),
backtests the model on the latest labelled snapshot against the two baselines, refits it on every
labelled snapshot and scores the users active as of d into ``ml.churn_risk``. The backtest goes to
``ml.churn_risk_evaluation`` (one row per method, with its reliability table and ROC curve as JSON)
and, with the fitted model, to a versioned artifact ``<data dir>/models/churn/<model_version>.joblib``
with its ``.json`` beside it; ``ml.churn_risk_fit`` (one row) records whether the model was fitted.
The model-health checks below read those tables; the ROC and reliability curves are drawn in the
asset's metadata and the mart's HTML report.

When the history cannot support an honest fit (``CannotFitError``: fewer than two labelled snapshot
dates, a single class), ``ml.churn_risk`` and ``ml.churn_risk_evaluation`` are written empty with
their usual columns, ``ml.churn_risk_fit`` says ``is_fitted = false`` with the reason and the
numbers, the warning check ``churn_risk__model_fitted`` says so, and no artifact is saved.
"""

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import joblib
import numpy as np
import pandas as pd

from models_py.churn import (
    METHODS,
    SCORE_COLUMNS,
    CannotFitError,
    ChurnModel,
    ChurnParams,
    bgnbd_p_alive_by_snapshot,
)
from orchestration.checks.expectations import build_warehouse_suite_check
from orchestration.checks.model_status import (
    build_model_fitted_check,
    fit_status,
    not_applicable,
    not_fitted_reason,
)
from orchestration.checks.results import error_result
from orchestration.plots import draw_model_plots, markdown_image
from orchestration.resources import WAREHOUSE_POOL, LifecycleSettings

SNAPSHOTS_TABLE = "intermediate.int_churn_snapshots"
CUSTOMER_SNAPSHOTS_TABLE = "intermediate.int_churn_customer_snapshots"
SNAPSHOT_DATES_TABLE = "intermediate.int_churn_snapshot_dates"
USER_DAYS_TABLE = "marts.fct_user_days"
CHURN_SCHEMA = "ml"
CHURN_TABLE = f"{CHURN_SCHEMA}.churn_risk"
EVALUATION_TABLE = f"{CHURN_SCHEMA}.churn_risk_evaluation"
FIT_TABLE = f"{CHURN_SCHEMA}.churn_risk_fit"
METRIC_COLUMNS = ("roc_auc", "pr_auc", "brier", "log_loss", "expected_calibration_error", "roc_auc_customers")
METHOD_LABELS = {
    "model": "gradient-boosted model",
    "baseline_days_since_last_active": "baseline: days since last activity",
    "baseline_bgnbd_p_alive": "baseline: 1 - P(alive) (BG/NBD)",
}


class ChurnConfig(dg.Config):
    """Model settings (METRICS.md "Churn risk"; the snapshot windows are dbt vars churn_*)."""

    learning_rate: float = 0.05
    max_iter: int = 200
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    calibration: Literal["none", "sigmoid", "isotonic"] = "none"
    random_state: int = 0
    n_threads: int = 1


def artifact_dir(settings: LifecycleSettings) -> Path:
    return Path(settings.data_dir) / "models" / "churn"


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _comparison_markdown(metrics: dict[str, Any]) -> str:
    lines = [
        "| method | ROC-AUC | PR-AUC | Brier | log-loss | ECE | ROC-AUC customers |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    for method in METHODS:
        m = metrics["methods"][method]
        if m is None:
            lines.append(f"| {METHOD_LABELS[method]} | n/a | n/a | n/a | n/a | n/a | n/a |")
            continue
        lines.append(
            f"| {METHOD_LABELS[method]} | {fmt(m['roc_auc'])} | {fmt(m['pr_auc'])} | {fmt(m['brier'])} | "
            f"{fmt(m['log_loss'])} | {fmt(m['expected_calibration_error'])} | {fmt(m['roc_auc_customers'])} |"
        )
    lines += [
        "",
        f"Backtest: trained on the snapshots {', '.join(metrics['training_snapshot_dates'])} "
        f"({metrics['training_rows']:,} rows, churn rate {metrics['training_churn_rate']:.1%}), evaluated on "
        f"{metrics['evaluation_snapshot_date']} ({metrics['evaluation_rows']:,} rows, churn rate "
        f"{metrics['evaluation_churn_rate']:.1%}). ROC-AUC customers: on customers only, raw scores.",
    ]
    return "\n".join(lines)


def _reliability_markdown(metrics: dict[str, Any]) -> str:
    available = [m for m in METHODS if metrics["methods"][m] is not None]
    header = "| predicted | " + " | ".join(
        f"{METHOD_LABELS[m]}: rows, mean predicted, observed" for m in available
    )
    lines = [header + " |", "|---|" + "---:|" * len(available)]
    bins = metrics["methods"]["model"]["reliability"]
    for i, row in enumerate(bins):
        cells = []
        for method in available:
            r = metrics["methods"][method]["reliability"][i]
            cells.append(
                f"{r['rows']:,}, {r['mean_predicted']:.3f}, {r['observed_rate']:.3f}" if r["rows"] else "0"
            )
        lines.append(f"| {row['bin']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _evaluation_rows(metrics: dict[str, Any], model_version: str, as_of_date: Any) -> pd.DataFrame:
    rows = []
    for method in METHODS:
        m = metrics["methods"][method] or {}
        rows.append(
            {
                "model_version": model_version,
                "as_of_date": as_of_date,
                "evaluation_snapshot_date": metrics["evaluation_snapshot_date"],
                "method": method,
                "rows": metrics["evaluation_rows"],
                "churn_rate": metrics["evaluation_churn_rate"],
                **{key: m.get(key) for key in METRIC_COLUMNS},
                "reliability": json.dumps(m.get("reliability")),
                "roc_curve": json.dumps(m.get("roc_curve")),
                "method_label": METHOD_LABELS[method],
            }
        )
    frame = pd.DataFrame(rows)
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
    frame["evaluation_snapshot_date"] = pd.to_datetime(frame["evaluation_snapshot_date"])
    return frame.astype({key: "float64" for key in METRIC_COLUMNS})


@dg.asset(
    key="churn_risk",
    deps=[dg.AssetKey("int_churn_snapshots"), dg.AssetKey("int_churn_customer_snapshots")],
    group_name="models",
    kinds={"python", "duckdb", "scikit-learn", "great_expectations"},
    pool=WAREHOUSE_POOL,
    owners=["team:data-science"],
)
def churn_risk(
    context: dg.AssetExecutionContext, config: ChurnConfig, settings: LifecycleSettings
) -> dg.MaterializeResult:
    """Per user active in the last churn_lookback_days days as of d: the probability of no activity in
    the next churn_horizon_days (gradient-boosted trees on SQL snapshots, time-based backtest against
    days-since-last-activity and BG/NBD P(alive)), its decile and the model version."""
    started = time.perf_counter()
    # the engine of the dbt target (DuckDB file or Spark): snapshots of active users, not events
    warehouse = settings.warehouse()
    snapshots = warehouse.query(f"select * from {SNAPSHOTS_TABLE} order by snapshot_date, user_id")
    customers = warehouse.query(
        f"select snapshot_date, user_id, frequency, recency, t, monetary_value "
        f"from {CUSTOMER_SNAPSHOTS_TABLE} where not is_scoring_snapshot order by snapshot_date, user_id"
    )
    scoring_dates = warehouse.query(
        f"select snapshot_date from {SNAPSHOT_DATES_TABLE} where is_scoring_snapshot"
    )
    scoring_date = None if scoring_dates.empty else (scoring_dates["snapshot_date"].iloc[0].date(),)
    if scoring_date is None or not snapshots["is_scoring_snapshot"].any():
        raise dg.Failure(
            f"{SNAPSHOTS_TABLE} has no user active in the lookback window ending on the as-of date: "
            "nothing to score (is the as-of date before the data?)"
        )
    (as_of_date,) = scoring_date
    params = ChurnParams(**{k: v for k, v in config.model_dump().items() if k != "n_threads"})
    p_alive, bgnbd_failures = bgnbd_p_alive_by_snapshot(customers)
    for date, reason in bgnbd_failures.items():
        context.log.warning(f"P(alive) baseline: no BG/NBD fit as of {date}: {reason}")
    try:
        model = ChurnModel(params, n_threads=config.n_threads).fit(snapshots, p_alive)
    except CannotFitError as err:
        return _not_fitted(context, warehouse, as_of_date, err, started)
    except ValueError as err:
        raise dg.Failure(f"churn model: {err}") from err
    scores = model.score(snapshots)
    version = model.model_version()
    metrics = {**model.metrics_, "bgnbd_fit_failures": bgnbd_failures}
    fit_seconds = round(time.perf_counter() - started, 3)

    directory = artifact_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    artifact = directory / f"{version}.joblib"
    _write_atomic(artifact, lambda path: joblib.dump(model, path))
    record = {
        "model_version": version,
        "as_of_date": str(as_of_date),
        "metrics": metrics,
        "fit_info": model.fit_info_,
    }
    _write_atomic(
        directory / f"{version}.json",
        lambda path: path.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8"),
    )

    evaluation = _evaluation_rows(metrics, version, as_of_date)
    fit_row = _fit_row(as_of_date, version, json.dumps(model.fit_info_, default=str))
    warehouse.write_frames(
        CHURN_SCHEMA,
        {
            table.removeprefix(f"{CHURN_SCHEMA}."): frame
            for table, frame in ((CHURN_TABLE, scores), (EVALUATION_TABLE, evaluation), (FIT_TABLE, fit_row))
        },
        sort_rows=True,
    )
    seconds = round(time.perf_counter() - started, 3)
    context.log.info(f"{CHURN_TABLE}: {len(scores):,} active users scored in {seconds} s ({version})")
    model_metrics = metrics["methods"]["model"]
    plots = _evaluation_plots(evaluation, context.log)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scores),
            "is_fitted": True,
            "model_version": version,
            "model_vs_baselines": dg.MetadataValue.md(_comparison_markdown(metrics)),
            "reliability": dg.MetadataValue.md(_reliability_markdown(metrics)),
            "roc_auc": model_metrics["roc_auc"],
            "pr_auc": model_metrics["pr_auc"],
            "brier": model_metrics["brier"],
            "model_beats_baselines": dg.MetadataValue.json(metrics["model_beats_baselines"]),
            "params": dg.MetadataValue.json(model.fit_info_["params"]),
            "training_rows": model.fit_info_["training_rows"],
            "mean_churn_risk": float(scores["churn_risk"].mean()),
            "artifact": dg.MetadataValue.path(str(artifact)),
            "fit_seconds": fit_seconds,
            "seconds": seconds,
            **plots,
        }
    )


def _fit_row(
    as_of_date: Any,
    model_version: str | None,
    fit_info: str,
    not_fitted_reason: str | None = None,
) -> pd.DataFrame:
    """The one row of ml.churn_risk_fit: the model behind ml.churn_risk, or why there is none."""
    return pd.DataFrame(
        {
            "model_version": pd.Series([model_version], dtype="str"),
            "as_of_date": pd.to_datetime([as_of_date]),
            "is_fitted": [not_fitted_reason is None],
            "not_fitted_reason": pd.Series([not_fitted_reason], dtype="str"),
            "fit_info": pd.Series([fit_info], dtype="str"),
        }
    )


def _not_fitted(
    context: dg.AssetExecutionContext, warehouse: Any, as_of_date: Any, error: CannotFitError, started: float
) -> dg.MaterializeResult:
    """No honest fit: empty ml.churn_risk and ml.churn_risk_evaluation with their usual columns, the
    reason in ml.churn_risk_fit, no artifact."""
    reason = str(error)
    context.log.warning(f"{CHURN_TABLE}: not fitted, no scores written: {reason}")
    dtypes = {
        "user_id": "str",
        "as_of_date": "datetime64[us]",
        "churn_risk": "float64",
        "risk_decile": "int64",
        "days_since_last_active": "int64",
        "model_version": "str",
    }
    scores = pd.DataFrame({column: pd.Series([], dtype=dtypes[column]) for column in SCORE_COLUMNS})
    evaluation = pd.DataFrame(
        {
            "model_version": pd.Series([], dtype="str"),
            "as_of_date": pd.Series([], dtype="datetime64[us]"),
            "evaluation_snapshot_date": pd.Series([], dtype="datetime64[us]"),
            "method": pd.Series([], dtype="str"),
            "rows": pd.Series([], dtype="int64"),
            "churn_rate": pd.Series([], dtype="float64"),
            **{key: pd.Series([], dtype="float64") for key in METRIC_COLUMNS},
            "reliability": pd.Series([], dtype="str"),
            "roc_curve": pd.Series([], dtype="str"),
            "method_label": pd.Series([], dtype="str"),
        }
    )
    facts = json.loads(json.dumps(error.facts, default=str))
    fit_row = _fit_row(as_of_date, None, json.dumps(facts), reason)
    warehouse.write_frames(
        CHURN_SCHEMA,
        {
            table.removeprefix(f"{CHURN_SCHEMA}."): frame
            for table, frame in ((CHURN_TABLE, scores), (EVALUATION_TABLE, evaluation), (FIT_TABLE, fit_row))
        },
        sort_rows=True,
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": 0,
            "is_fitted": False,
            "not_fitted_reason": reason,
            "facts": dg.MetadataValue.json(facts),
            "seconds": round(time.perf_counter() - started, 3),
        }
    )


def _evaluation_plots(evaluation: pd.DataFrame, log: Any) -> dict[str, dg.MetadataValue]:
    """The ROC and reliability curves of the backtest as markdown images; a plot that fails to draw
    is left out with a warning (it never fails the asset)."""
    images, problems = draw_model_plots(EVALUATION_TABLE.removeprefix(f"{CHURN_SCHEMA}."), evaluation)
    for problem in problems.values():
        log.warning(f"plots: {problem}")
    return {key: dg.MetadataValue.md(markdown_image(png, key)) for key, png in images.items()}


# --------------------------------------------------------------- model health
@dg.asset_check(
    asset="churn_risk",
    name="churn_risk__outputs_in_range",
    blocking=True,
    description=(
        "Every score is finite and in range: churn_risk in [0, 1], risk_decile 1-10, "
        "days_since_last_active >= 0; one as-of date and one model version, the evaluated one."
    ),
)
def churn_risk__outputs_in_range(settings: LifecycleSettings) -> dg.AssetCheckResult:
    warehouse = settings.warehouse()
    scores = warehouse.query(f"select * from {CHURN_TABLE}")
    status = fit_status(settings, "churn_risk")
    if not status.is_fitted:
        # No model: what must hold is that no score was written.
        return error_result(
            scores.empty,
            not_applicable("churn_risk", status.reason, f"{CHURN_TABLE} holds no scores, as it must")
            if scores.empty
            else f"{CHURN_TABLE}: FAILED {len(scores):,} scores but no model was fitted ({status.reason})",
            rows_checked=len(scores),
        )
    evaluated = set(
        warehouse.query(f"select distinct model_version from {EVALUATION_TABLE}")["model_version"]
    )
    risk = scores["churn_risk"].to_numpy(dtype=float, na_value=np.nan)
    decile = scores["risk_decile"].to_numpy(dtype=float, na_value=np.nan)
    days = scores["days_since_last_active"].to_numpy(dtype=float, na_value=np.nan)
    failing = {
        "churn_risk missing, not finite or outside [0, 1]": int(
            (~np.isfinite(risk) | (risk < 0) | (risk > 1)).sum()
        ),
        "risk_decile missing or outside 1-10": int((~np.isin(decile, np.arange(1, 11))).sum()),
        "days_since_last_active missing or negative": int((~np.isfinite(days) | (days < 0)).sum()),
    }
    failing = {rule: count for rule, count in failing.items() if count}
    problems = [f"{count:,} of {len(scores):,} rows with {rule}" for rule, count in failing.items()]
    versions = set(scores["model_version"].dropna())
    if len(versions) != 1 or versions != evaluated:
        problems.append(f"model_version(s) {sorted(versions)} in the scores, {sorted(evaluated)} evaluated")
    if scores["as_of_date"].nunique() != 1:
        problems.append(f"{scores['as_of_date'].nunique()} as-of dates, expected one")
    return error_result(
        not problems,
        "; ".join(f"{CHURN_TABLE}: FAILED {p}" for p in problems)
        or f"{CHURN_TABLE}: {len(scores):,} rows, every score finite and in range ({next(iter(versions))})",
        rows_checked=len(scores),
        failing_rows=dg.MetadataValue.json(failing),
    )


@dg.asset_check(
    asset="churn_risk",
    name="churn_risk__every_active_user_scored",
    blocking=True,
    description=(
        "ml.churn_risk holds exactly one row per user active in the churn_lookback_days days ending on "
        "d (fct_user_days), no user missing and none extra."
    ),
)
def churn_risk__every_active_user_scored(settings: LifecycleSettings) -> dg.AssetCheckResult:
    counts = settings.warehouse().query(
        f"""
            with window_ as (
                select snapshot_date, lookback_start_date
                from {SNAPSHOT_DATES_TABLE}
                where is_scoring_snapshot
            ),
            active as (
                select distinct d.user_id from {USER_DAYS_TABLE} d, window_ w
                where d.activity_date between w.lookback_start_date and w.snapshot_date
            ),
            scored as (select distinct user_id from {CHURN_TABLE})
            select
                (select count(*) from active) as expected,
                (select count(*) from scored) as scored,
                (select count(*) from {CHURN_TABLE}) as row_count,
                (select count(*) from active where user_id not in (select user_id from scored)) as missing,
                (select count(*) from scored where user_id not in (select user_id from active)) as extra
            """
    )
    (expected, scored, rows, missing, extra) = (int(value) for value in counts.iloc[0])
    status = fit_status(settings, "churn_risk")
    if not status.is_fitted:
        return error_result(
            rows == 0,
            not_applicable(
                "churn_risk", status.reason, f"none of the {expected:,} active users is scored, as it must"
            )
            if rows == 0
            else f"{CHURN_TABLE}: FAILED {rows:,} scores but no model was fitted ({status.reason})",
            active_users=expected,
            scored_rows=rows,
        )
    problems = []
    if missing:
        problems.append(f"{missing:,} of {expected:,} active users have no churn score")
    if extra:
        problems.append(f"{extra:,} scored users were not active in the lookback window")
    if rows != scored:
        problems.append(f"{rows - scored:,} duplicate rows")
    return error_result(
        not problems,
        "; ".join(f"{CHURN_TABLE}: FAILED {p}" for p in problems)
        or f"{CHURN_TABLE}: all {expected:,} users active in the lookback window scored once",
        active_users=expected,
        scored_rows=rows,
        missing_users=missing,
        extra_users=extra,
    )


@dg.asset_check(
    asset="churn_risk",
    name="churn_risk__beats_baselines",
    blocking=False,
    description=(
        "Warns when the model's backtest ROC-AUC is below a baseline's (days since last activity, "
        "1 - P(alive)) on the latest labelled snapshot, or when a baseline could not be evaluated."
    ),
)
def churn_risk__beats_baselines(settings: LifecycleSettings) -> dg.AssetCheckResult:
    status = fit_status(settings, "churn_risk")
    if not status.is_fitted:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"churn_risk: no backtest, the model was not fitted ({status.reason})",
        )
    evaluation = settings.warehouse().query(
        f"select method, roc_auc, rows, evaluation_snapshot_date from {EVALUATION_TABLE}"
    )
    auc = {row.method: row.roc_auc for row in evaluation.itertuples()}
    model = auc.get("model")
    # Every line that makes the check warn starts with WARN, so the text agrees with the status.
    lines, passed = [], model is not None and math.isfinite(model)
    if not passed:
        lines.append("WARN model ROC-AUC not available")
    for baseline in METHODS[1:]:
        value = auc.get(baseline)
        if value is None or not math.isfinite(value):
            passed = False
            lines.append(f"WARN {METHOD_LABELS[baseline]}: not available, the model was not compared with it")
        elif model is None or not math.isfinite(model):
            continue
        elif not model >= value:
            passed = False
            lines.append(f"WARN model ROC-AUC {model:.4f} below {METHOD_LABELS[baseline]} {value:.4f}")
        else:
            lines.append(f"model ROC-AUC {model:.4f} >= {METHOD_LABELS[baseline]} {value:.4f}")
    snapshot = evaluation["evaluation_snapshot_date"].max()
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"churn_risk backtest on {pd.Timestamp(snapshot).date()}: " + "; ".join(lines),
        metadata={k: float(v) for k, v in auc.items() if v is not None and math.isfinite(v)},
    )


churn_risk_checks = [
    build_model_fitted_check("churn_risk"),
    build_warehouse_suite_check(
        dg.AssetKey("churn_risk"),
        CHURN_TABLE,
        "churn_risk",
        empty_because=lambda settings: not_fitted_reason(settings, "churn_risk"),
    ),
    churn_risk__outputs_in_range,
    churn_risk__every_active_user_scored,
    churn_risk__beats_baselines,
]
