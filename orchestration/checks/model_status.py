"""Whether each Python model was fitted, and the warning that says so when it was not.

A model that the data cannot support honestly (``models_py.errors.CannotFitError``: too few
repeat customers, too few labelled snapshots, ...) writes no scores: its table is empty with its
usual columns, and its fit record (``ml.<model>_fit``, one row) holds ``is_fitted = false`` with
the reason and the numbers. Everything that does not need the scores still publishes. The
``<model>__model_fitted`` check warns (it never blocks) with that reason; the blocking model-health
checks read the same record and stay strict whenever the model did fit. In the published mart,
``rpt_model_status`` carries the same facts (one row per model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from orchestration.project import load_audiences
from orchestration.resources import LifecycleSettings

#: Published scores table (= the model asset) -> the warehouse table of its fit record.
FIT_TABLES: dict[str, str] = {"customer_clv": "ml.customer_clv_fit", "churn_risk": "ml.churn_risk_fit"}
#: The audience conditions (dbt_project/audiences.yml) that read each model's scores: an audience
#: with one of them gets no members while the model has no scores.
AUDIENCE_CONDITIONS: dict[str, tuple[str, ...]] = {
    "customer_clv": ("clv", "clv_percentile", "p_alive"),
    "churn_risk": ("churn_risk",),
}
#: The published table that says, per model, whether it was fitted and why not.
STATUS_TABLE = "rpt_model_status"


@dataclass(frozen=True)
class FitStatus:
    """The fit record of one model: fitted or not, why not, and the numbers behind it."""

    model: str
    is_fitted: bool
    reason: str | None
    model_version: str | None
    fit_info: dict[str, Any]


def fit_status(settings: LifecycleSettings, model: str) -> FitStatus:
    """The fit record of ``model`` (``customer_clv`` or ``churn_risk``) in the warehouse.

    Raises
    ------
    dagster.Failure
        If the record does not hold exactly one row (the asset writes one with every run).
    """
    table = FIT_TABLES[model]
    rows = settings.warehouse().query(
        f"select is_fitted, not_fitted_reason, model_version, fit_info from {table}"
    )
    if len(rows) != 1:
        raise dg.Failure(f"{table} has {len(rows)} rows, expected the one record of the last {model} run")
    row = rows.iloc[0]
    info = row["fit_info"]
    return FitStatus(
        model=model,
        is_fitted=bool(row["is_fitted"]),
        reason=None if _missing(row["not_fitted_reason"]) else str(row["not_fitted_reason"]),
        model_version=None if _missing(row["model_version"]) else str(row["model_version"]),
        fit_info=json.loads(info) if isinstance(info, str) else {},
    )


def not_fitted_reason(settings: LifecycleSettings, model: str) -> str | None:
    """Why ``model`` was not fitted in its last run; None when it was."""
    status = fit_status(settings, model)
    return None if status.is_fitted else (status.reason or "not fitted (no reason recorded)")


def dependent_audiences(definitions: list[dict], model: str) -> list[str]:
    """The audiences whose conditions read ``model``'s scores (and so have no members without them)."""
    columns = set(AUDIENCE_CONDITIONS[model])
    return [
        str(audience.get("name"))
        for audience in definitions
        if isinstance(audience, dict)
        and isinstance(audience.get("where"), dict)
        and columns & set(audience["where"])
    ]


def build_model_fitted_check(model: str) -> dg.AssetChecksDefinition:
    """The non-blocking check ``<model>__model_fitted``: warns with the reason and the numbers when
    the model was not fitted, and names the audiences that get no members without its scores."""
    conditions = ", ".join(AUDIENCE_CONDITIONS[model])

    @dg.asset_check(
        asset=model,
        name=f"{model}__model_fitted",
        blocking=False,
        description=(
            f"Warns when the data cannot support an honest fit of {model} (too little of it): the "
            f"mart then publishes without its scores (an empty {model}), and audiences with "
            f"conditions on {conditions} get no members."
        ),
    )
    def _check(settings: LifecycleSettings) -> dg.AssetCheckResult:
        status = fit_status(settings, model)
        if status.is_fitted:
            return dg.AssetCheckResult(
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"{model}: fitted ({status.model_version})",
                metadata={"model_version": status.model_version or ""},
            )
        try:
            audiences = dependent_audiences(load_audiences(settings.audiences_file), model)
        except ValueError as err:  # the dbt step reports a broken audiences file; say so here too
            audiences, problem = [], f" (audiences not read: {err})"
        else:
            problem = ""
        listed = ", ".join(audiences) if audiences else "none of the defined audiences"
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{model}: WARN not fitted: {(status.reason or '').rstrip('.')}. The mart publishes "
                f"without its scores "
                f"({model} is empty); audiences with conditions on {conditions} get no members: "
                f"{listed}{problem}."
            ),
            metadata={
                "reason": status.reason or "",
                "facts": dg.MetadataValue.json(status.fit_info),
                "audiences_without_members": dg.MetadataValue.json(audiences),
            },
        )

    return _check


def not_applicable(model: str, reason: str, what: str) -> str:
    """The description of a blocking check that has nothing to check because ``model`` was not fitted."""
    return f"{model}: not applicable, the model was not fitted ({reason}); {what}"


def _missing(value: Any) -> bool:
    return value is None or bool(pd.isna(value))
