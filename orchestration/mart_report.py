"""The HTML report of a published mart version: one self-contained file per publication.

Pure rendering plus one file step, no Dagster: ``reporting_mart`` draws the plots
(``orchestration/plots.py``), calls :func:`render_mart_report` and :func:`write_mart_report` after
the swap. The file opens offline, from a mail or a file share: the images are PNGs inlined as
``data:`` URIs, the CSS is inline, there is no script and no link to any other file or host. The
same inputs give a byte-identical file: nothing in it comes from the clock or the machine, only
what ``mart_info`` and the publication hold (as-of date, run id, build time, version).

Layout under ``<data dir>/mart/``::

    reports/<version>.html     one report per kept version (pruned with the versions)
    reports/latest.html        a copy of the last publication's report
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from orchestration.plots import KPI_COLUMNS, PLOT_TITLES

LATEST_NAME = "latest.html"
# Report sections: (heading, plot keys in order). A drawn plot in no section goes to "Other plots".
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("KPI trends", ("plot_kpi_trends",)),
    ("Lifecycle", ("plot_lifecycle_stages", "plot_activity_lifecycle")),
    ("Retention", ("plot_activity_retention", "plot_purchase_retention")),
    ("Customer value", ("plot_rfm_segments", "plot_clv_distribution")),
    ("Models", ("plot_clv_holdout_calibration", "plot_churn_roc", "plot_churn_reliability")),
)
#: The model each model-dependent plot draws (a model that was not fitted has nothing to draw).
PLOT_MODELS: dict[str, str] = {
    "plot_clv_distribution": "customer_clv",
    "plot_clv_holdout_calibration": "customer_clv",
    "plot_churn_roc": "churn_risk",
    "plot_churn_reliability": "churn_risk",
}
_VERSION_FILE = re.compile(r"^\d{8}T\d{6}\.\d{6}Z_[A-Za-z0-9]+\.html$")
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1000px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1em; margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.up { color: #2e7d32; } td.down { color: #c62828; }
figure { margin: 1em 0 1.5em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.muted { color: #777; font-size: 0.85em; }
ul.problems li { color: #a15c00; }
"""


def kpi_change_table(rpt_kpis: pd.DataFrame, grain: str = "week", periods: int = 6) -> pd.DataFrame:
    """The last ``periods`` periods of ``rpt_kpis`` at ``grain``, newest first: ``period_start``,
    ``is_complete`` and per KPI of :data:`orchestration.plots.KPI_COLUMNS` its value and
    ``<kpi>_change``, its change vs the period before: relative for counts and money, the
    difference for rates (``*_rate``, shown in percentage points); NaN without a previous value
    (or a previous count of 0)."""
    missing = sorted({"period_grain", "period_start", "is_complete", *KPI_COLUMNS} - set(rpt_kpis.columns))
    if missing:
        raise ValueError(f"rpt_kpis: missing columns {missing}; got {sorted(rpt_kpis.columns)}")
    frame = rpt_kpis[rpt_kpis["period_grain"] == grain].sort_values("period_start").reset_index(drop=True)
    out = frame[["period_start", "is_complete"]].copy()
    for column in KPI_COLUMNS:
        values = frame[column].astype("float64")
        previous = values.shift(1)
        if column.endswith("_rate"):
            change = values - previous
        else:
            change = (values / previous - 1).where(previous.notna() & (previous != 0))
        out[column] = values
        out[f"{column}_change"] = change
    return out.tail(periods).iloc[::-1].reset_index(drop=True)


def render_mart_report(
    *,
    info: Mapping[str, Any],
    version: str,
    row_counts: Mapping[str, int],
    images: Mapping[str, bytes],
    problems: Mapping[str, str] | None = None,
    rpt_kpis: pd.DataFrame | None = None,
    model_tables: Mapping[str, pd.DataFrame] | None = None,
    model_status: pd.DataFrame | None = None,
) -> str:
    """The report as an HTML string.

    Parameters
    ----------
    info : mapping
        The ``mart_info`` row: ``as_of_date``, ``run_id``, ``built_at``.
    version : str
        The published version's name (``<UTC time>_<run id>``).
    row_counts : mapping
        Published table -> rows.
    images : mapping
        Plot key (``orchestration.plots.MART_PLOTS`` / ``MODEL_PLOTS``) -> PNG bytes.
    problems : mapping, optional
        Plot key -> why it was not drawn; listed in the report so that a missing plot is visible.
    rpt_kpis : pandas.DataFrame, optional
        The KPI table, for the tables of the last weeks and months with their change.
    model_tables : mapping, optional
        ``customer_clv_holdout`` and ``churn_risk_evaluation``, for the model tables under the plots.
    model_status : pandas.DataFrame, optional
        ``rpt_model_status`` of the mart: the Models section says per model whether it was fitted,
        and a plot of a model that was not fitted is listed as not drawn for that reason.
    """
    as_of = _text(info.get("as_of_date"))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>Lifecycle mart as of {_esc(as_of)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>Lifecycle mart as of {_esc(as_of)}</h1>",
        '<p class="muted">The published reporting mart: KPIs, lifecycle, retention, customer value and '
        "the models' backtests. Self-contained: opens offline, no script.</p>",
        _key_values(
            [
                ("as-of date", as_of),
                ("version", version),
                ("run id", _text(info.get("run_id"))),
                ("built at (UTC)", _text(info.get("built_at"))),
                ("tables", f"{len(row_counts):,}"),
                ("rows", f"{sum(row_counts.values()):,}"),
            ]
        ),
    ]
    placed: set[str] = set()
    model_tables = model_tables or {}
    unfitted = _unfitted_models(model_status)
    problems = {
        **(problems or {}),
        **{
            key: f"{model} was not fitted: {unfitted[model]}"
            for key, model in PLOT_MODELS.items()
            if model in unfitted and key not in images
        },
    }
    for heading, keys in SECTIONS:
        body = []
        if heading == "Models" and model_status is not None and not model_status.empty:
            body.append(_model_status_table(model_status))
        if heading == "KPI trends" and rpt_kpis is not None and not rpt_kpis.empty:
            for grain in ("week", "month"):
                try:
                    body.append(_kpi_table(rpt_kpis, grain))
                except ValueError as err:  # a broken KPI table is reported, the rest still renders
                    body.append(f'<p class="muted">KPI table per {_esc(grain)} not shown: {_esc(err)}</p>')
        for key in keys:
            if key in images:
                body.append(_figure(key, images[key]))
                placed.add(key)
            if key == "plot_clv_holdout_calibration" and "customer_clv_holdout" in model_tables:
                body.append(_clv_holdout_table(model_tables["customer_clv_holdout"]))
            if key == "plot_churn_reliability" and "churn_risk_evaluation" in model_tables:
                body.append(_churn_table(model_tables["churn_risk_evaluation"]))
        if body:
            parts += [f"<h2>{_esc(heading)}</h2>", *body]
    others = [key for key in images if key not in placed]
    if others:
        parts += ["<h2>Other plots</h2>", *(_figure(key, images[key]) for key in others)]
    parts += [
        "<h2>Published tables</h2>",
        _table(["table", "rows"], [[t, n] for t, n in sorted(row_counts.items())]),
    ]
    if problems:
        parts += [
            "<h2>Not drawn</h2>",
            '<ul class="problems">',
            *(
                f"<li><code>{_esc(key)}</code>: {_esc(reason)}</li>"
                for key, reason in sorted(problems.items())
            ),
            "</ul>",
        ]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def write_mart_report(
    reports_dir: Path, version: str, document: str, keep_versions: Iterable[str]
) -> tuple[Path, list[str]]:
    """Write ``<reports_dir>/<version>.html`` and ``latest.html`` (each under a temporary name, then
    renamed: a reader never sees half a file) and remove the reports of versions not in
    ``keep_versions`` (only files named like a version). Returns the report's path and the
    names of the removed files."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"{version}.html"
    data = document.encode("utf-8")
    for target in (path, reports_dir / LATEST_NAME):
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    kept = {f"{name}.html" for name in keep_versions} | {path.name}
    removed = []
    for old in sorted(reports_dir.iterdir()):
        if _VERSION_FILE.match(old.name) and old.name not in kept:
            old.unlink(missing_ok=True)
            removed.append(old.name)
    return path, removed


def point_latest_report(reports_dir: Path, version: str) -> Path | None:
    """Make ``latest.html`` the report of ``version`` again (after a rollback); None when that
    version has no report (published before reports existed)."""
    source = reports_dir / f"{version}.html"
    if not source.exists():
        return None
    latest = reports_dir / LATEST_NAME
    tmp = latest.with_name(f".{latest.name}.{os.getpid()}.tmp")
    tmp.write_bytes(source.read_bytes())
    os.replace(tmp, latest)
    return latest


# ---------------------------------------------------------------- pieces
def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ")
    return str(value)


def _figure(key: str, png: bytes) -> str:
    title = PLOT_TITLES.get(key, key)
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="{_esc(key)}"><img alt="{_esc(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_esc(title)}</figcaption></figure>"
    )


def _key_values(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _table(header: list[str], rows: list[list[Any]], classes: list[list[str]] | None = None) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            css = ["num"] if isinstance(value, (int, float)) or (classes and "num" in classes[i][j]) else []
            if classes:
                css += [c for c in classes[i][j].split() if c != "num"]
            text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _text(value)
            attr = f' class="{" ".join(css)}"' if css else ""
            cells.append(f"<td{attr}>{_esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _format(value: float, template: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else template.format(value)


def _kpi_table(rpt_kpis: pd.DataFrame, grain: str) -> str:
    table = kpi_change_table(rpt_kpis, grain)
    if table.empty:
        return ""
    header = [grain, *(title for title, _ in KPI_COLUMNS.values())]
    rows, classes = [], []
    for record in table.to_dict(orient="records"):
        start = str(record["period_start"])[:10] + ("" if record["is_complete"] else " (to date)")
        row, css = [start], [""]
        for column, (_, template) in KPI_COLUMNS.items():
            value, change = record[column], record[f"{column}_change"]
            text = _format(value, template)
            direction = ""
            if change is not None and math.isfinite(change):
                if column.endswith("_rate"):
                    text += f" ({change * 100:+.1f} pp)"
                else:
                    text += f" ({change:+.1%})"
                # a falling churn rate is good news
                good = change < 0 if column == "churn_rate" else change > 0
                direction = "up" if good and change != 0 else ("down" if change != 0 else "")
            row.append(text)
            css.append(f"num {direction}".strip())
        rows.append(row)
        classes.append(css)
    caption = (
        f'<h3>Last {len(table)} {grain}s, newest first</h3><p class="muted">In brackets: the change vs the '
        f"{grain} before (rates in percentage points); green = better, red = worse. A period "
        "marked <em>to date</em> is incomplete: it counts up to the as-of date.</p>"
    )
    return caption + _table(header, rows, classes)


def _clv_holdout_table(frame: pd.DataFrame) -> str:
    if frame.empty or "actual_mean" not in frame.columns:
        return ""
    rows = [
        [
            str(r["calibration_frequency"]),
            int(r["customers"]),
            _format(float(r["actual_mean"]), "{:.3f}"),
            _format(float(r["predicted_mean"]), "{:.3f}"),
        ]
        for r in frame.to_dict(orient="records")
    ]
    actual = float(frame["actual_total"].sum()) if "actual_total" in frame.columns else math.nan
    predicted = float(frame["predicted_total"].sum()) if "predicted_total" in frame.columns else math.nan
    total = ""
    if math.isfinite(actual) and actual > 0:
        total = (
            f'<p class="muted">Holdout total: predicted {predicted:,.1f} vs actual {actual:,.0f} purchase '
            f"days ({predicted / actual - 1:+.1%}).</p>"
        )
    header = ["calibration frequency", "customers", "actual per customer", "predicted per customer"]
    return "<h3>CLV holdout by calibration frequency</h3>" + _table(header, rows) + total


def _churn_table(frame: pd.DataFrame) -> str:
    if frame.empty or "method" not in frame.columns:
        return ""
    metrics = [
        ("roc_auc", "ROC-AUC"),
        ("pr_auc", "PR-AUC"),
        ("brier", "Brier"),
        ("expected_calibration_error", "ECE"),
    ]
    present = [(c, t) for c, t in metrics if c in frame.columns]
    rows = []
    records = sorted(
        frame.to_dict(orient="records"), key=lambda r: (r["method"] != "model", str(r["method"]))
    )
    for r in records:
        label = r.get("method_label") or r["method"]
        rows.append([str(label), *(_format(_float(r[c]), "{:.4f}") for c, _ in present)])
    return "<h3>Churn backtest</h3>" + _table(["method", *(t for _, t in present)], rows)


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _unfitted_models(model_status: pd.DataFrame | None) -> dict[str, str]:
    """Model -> why it was not fitted, from ``rpt_model_status`` (empty without it)."""
    if model_status is None or model_status.empty or "is_fitted" not in model_status.columns:
        return {}
    return {
        str(r["model"]): _text(r.get("not_fitted_reason"))
        for r in model_status.to_dict(orient="records")
        if not bool(r["is_fitted"])
    }


def _model_status_table(model_status: pd.DataFrame) -> str:
    rows = []
    for r in sorted(model_status.to_dict(orient="records"), key=lambda r: str(r["model"])):
        fitted = bool(r["is_fitted"])
        audiences = _text(r.get("dependent_audiences"))
        rows.append(
            [
                str(r["model"]),
                "fitted" if fitted else "not fitted",
                _text(r.get("model_version")) if fitted else _text(r.get("not_fitted_reason")),
                int(r["scored_rows"]),
                "have members as usual" if fitted or audiences == "n/a" else f"no members: {audiences}",
            ]
        )
    note = ""
    if not model_status["is_fitted"].astype(bool).all():
        note = (
            '<p class="muted">A model the data cannot support honestly publishes no scores (its table '
            "is empty); everything that does not need it is published as usual, and the audiences "
            "with conditions on its scores have no members until it is fitted.</p>"
        )
    header = ["model", "status", "version / why not", "scores", "audiences on its scores"]
    return "<h3>Model status</h3>" + _table(header, rows) + note
