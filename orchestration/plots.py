"""Plots of the published mart and of the models' evaluations as PNG images, for the Dagster UI
(asset metadata) and the HTML report of each publication (``orchestration/mart_report.py``).

Pure functions: a table as a pandas DataFrame in, PNG bytes out; no Dagster, no database.
``MART_PLOTS`` are drawn from published mart tables (``reporting_mart``'s metadata), ``MODEL_PLOTS``
from the model evaluation tables ``ml.customer_clv_holdout`` and ``ml.churn_risk_evaluation``
(the ``customer_clv`` and ``churn_risk`` assets' metadata).
Drawn with matplotlib's Agg canvas on a bare ``Figure`` (no pyplot, so no global figure state and no
GUI backend), with fixed size, dpi and style and no software/date stamp in the file: the same data
gives byte-identical PNGs. An empty table raises ``ValueError`` naming the table: a blank chart
would look like "no users" rather than "nothing to draw".
"""

from __future__ import annotations

import base64
import functools
import io
import json
from collections.abc import Callable, Iterable

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

FIGSIZE = (8.0, 4.0)
DPI = 100
# Fixed style, independent of any matplotlibrc on the machine; hashsalt fixes SVG ids (a later SVG export).
_RC = {
    **{key: value for key, value in mpl.rcParamsDefault.items() if key != "backend"},
    "svg.hashsalt": "lifecycle-mart",
    "font.size": 9,
}
# Dormant users are stored as negative counts; they are drawn below zero as they are.
ACTIVITY_COLUMNS = {
    "new_users": ("new", "#4c9f70"),
    "returning_users": ("returning", "#3b75af"),
    "resurrecting_users": ("resurrecting", "#f0a030"),
    "dormant_users": ("dormant", "#c8553d"),
}


def _require(frame: pd.DataFrame, table: str, columns: Iterable[str]) -> None:
    missing = sorted(set(columns) - set(frame.columns))
    if missing:
        raise ValueError(f"{table}: missing columns {missing}; got {sorted(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{table}: 0 rows, nothing to plot; publish a mart with data first")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _figure(figsize: tuple[float, float] = FIGSIZE) -> tuple[Figure, Axes]:
    """A figure and its axes; call inside ``mpl.rc_context(_RC)`` (the style applies at draw time too)."""
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def _json_column(value: object, what: str) -> object:
    """A JSON column as stored in the warehouse (a string), or the already decoded value."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"{what}: not valid JSON ({err})") from err
    return value


def markdown_image(png: bytes, alt: str) -> str:
    """A markdown image with the PNG inlined as a ``data:`` URI (Dagster renders markdown metadata)."""
    alt_text = alt.replace("[", "(").replace("]", ")")
    return f"![{alt_text}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def lifecycle_stages_over_time(rpt_daily_stage_counts: pd.DataFrame) -> bytes:
    """Stacked area of users per lifecycle stage by calendar date, stages in ``stage_order``."""
    frame = rpt_daily_stage_counts
    _require(
        frame, "rpt_daily_stage_counts", ["calendar_date", "lifecycle_stage", "stage_order", "users_count"]
    )
    stages = frame.groupby("lifecycle_stage")["stage_order"].min().sort_values(kind="stable")
    wide = (
        frame.pivot_table(
            index="calendar_date", columns="lifecycle_stage", values="users_count", aggfunc="sum"
        )
        .reindex(columns=list(stages.index))
        .fillna(0)
        .sort_index()
    )
    with mpl.rc_context(_RC):
        fig, ax = _figure()
        ax.stackplot(pd.to_datetime(wide.index), wide.to_numpy().T, labels=list(wide.columns))
        ax.set_title("Users per lifecycle stage")
        ax.set_ylabel("users")
        ax.legend(loc="upper left", fontsize=7, ncols=2)
        return _png(fig)


def activity_lifecycle_bars(rpt_activity_lifecycle: pd.DataFrame, grain: str = "week") -> bytes:
    """Bars per period of the grain (day, week, month): new, returning and resurrecting users
    stacked above zero, dormant users below (stored negative). Provisional periods are hatched."""
    frame = rpt_activity_lifecycle
    _require(
        frame, "rpt_activity_lifecycle", ["period_grain", "period_start", "is_complete", *ACTIVITY_COLUMNS]
    )
    frame = frame[frame["period_grain"] == grain].sort_values("period_start")
    if frame.empty:
        raise ValueError(f"rpt_activity_lifecycle: 0 rows for period_grain {grain!r}, nothing to plot")
    x = np.arange(len(frame))
    hatch = ["//" if not complete else "" for complete in frame["is_complete"]]
    with mpl.rc_context(_RC):
        fig, ax = _figure()
        bottom = np.zeros(len(frame))
        for column, (label, color) in ACTIVITY_COLUMNS.items():
            values = frame[column].to_numpy(dtype=float)
            base = 0 if column == "dormant_users" else bottom
            ax.bar(x, values, bottom=base, color=color, label=label, hatch=hatch, width=0.8)
            if column != "dormant_users":
                bottom = bottom + values
        ax.axhline(0, color="black", linewidth=0.8)
        step = max(1, len(frame) // 12)
        ax.set_xticks(x[::step], [str(p)[:10] for p in frame["period_start"].iloc[::step]], rotation=45)
        ax.set_title(f"Activity lifecycle per {grain} (dormant below zero; hatched = incomplete)")
        ax.set_ylabel("users")
        ax.legend(loc="upper left", fontsize=7, ncols=4)
        return _png(fig)


def rfm_segments_size_and_value(rpt_rfm_segments: pd.DataFrame) -> bytes:
    """RFM segments in ``segment_order`` (Champions on top), two panels sharing the segments:
    customers (with their share) and total monetary value (with the average per customer)."""
    frame = rpt_rfm_segments
    _require(
        frame,
        "rpt_rfm_segments",
        ["rfm_segment_name", "segment_order", "customers", "total_monetary", "avg_monetary"],
    )
    frame = frame.sort_values(["segment_order", "rfm_segment_name"], ascending=False)
    names = list(frame["rfm_segment_name"])
    customers = frame["customers"].to_numpy(dtype=float)
    total = frame["total_monetary"].to_numpy(dtype=float, na_value=0.0)
    average = frame["avg_monetary"].to_numpy(dtype=float, na_value=np.nan)
    share = customers / customers.sum() if customers.sum() > 0 else np.zeros_like(customers)
    money_share = total / total.sum() if total.sum() > 0 else np.zeros_like(total)
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(9.0, 4.5), dpi=DPI, layout="constrained")
        left, right = fig.subplots(1, 2, sharey=True)
        left.barh(names, customers, color="#3b75af")
        right.barh(names, total, color="#4c9f70")
        for y, (n, s_) in enumerate(zip(customers, share, strict=True)):
            left.annotate(f" {n:,.0f} ({s_:.0%})", (n, y), va="center", fontsize=7)
        for y, (t, s_, a) in enumerate(zip(total, money_share, average, strict=True)):
            label = f" {t:,.0f} ({s_:.0%})" + (f", avg {a:,.2f}" if np.isfinite(a) else "")
            right.annotate(label, (t, y), va="center", fontsize=7)
        left.set_title("Customers per RFM segment")
        left.set_xlabel("customers")
        right.set_title("Total monetary value (avg per customer)")
        right.set_xlabel("net revenue")
        for ax, values in ((left, customers), (right, total)):
            ax.set_xlim(0, max(float(values.max()), 1.0) * 1.6)  # room for the labels
        return _png(fig)


def clv_distribution(customer_clv: pd.DataFrame, bins: int = 50) -> bytes:
    """Histogram of customer lifetime value, clipped at the 99th percentile (the long tail would
    squeeze everyone else into one bar); the clipped customers fall into the last bin."""
    _require(customer_clv, "customer_clv", ["clv"])
    clv = customer_clv["clv"].astype(float).dropna().to_numpy()
    if clv.size == 0:
        raise ValueError("customer_clv: no non-null clv values, nothing to plot")
    cap = float(np.percentile(clv, 99))
    clipped = int((clv > cap).sum())
    with mpl.rc_context(_RC):
        fig, ax = _figure()
        ax.hist(np.clip(clv, None, cap), bins=bins, color="#4c9f70")
        ax.set_title(
            f"CLV per customer ({clv.size} customers; {clipped} above the 99th percentile {cap:,.2f})"
        )
        ax.set_xlabel("clv (clipped at p99)")
        ax.set_ylabel("customers")
        return _png(fig)


def retention_heatmap(
    rpt_retention_cohorts: pd.DataFrame,
    retention_type: str = "activity",
    grain: str = "month",
    max_cohorts: int = 24,
    max_periods: int = 24,
) -> bytes:
    """Cohort retention triangle: one row per cohort (its start and size), one column per period N,
    the colour the retention rate ("on" N exactly). The last ``max_cohorts`` cohorts and the first
    ``max_periods`` periods are drawn; the rates are written in the cells while they stay readable.
    The colour scale stops at the highest rate from N = 1 on (N = 0 is 100% for activity cohorts
    and would wash the rest out)."""
    frame = rpt_retention_cohorts
    table = "rpt_retention_cohorts"
    _require(
        frame,
        table,
        [
            "retention_type",
            "period_grain",
            "cohort_period_start",
            "period_number",
            "cohort_users",
            "retention_rate",
        ],
    )
    frame = frame[(frame["retention_type"] == retention_type) & (frame["period_grain"] == grain)]
    if frame.empty:
        raise ValueError(f"{table}: 0 rows for {retention_type} retention per {grain}, nothing to plot")
    frame = frame[frame["period_number"] < max_periods]
    rates = frame.pivot_table(
        index="cohort_period_start", columns="period_number", values="retention_rate", aggfunc="first"
    ).sort_index()
    sizes = frame.groupby("cohort_period_start")["cohort_users"].max()
    rates = rates.iloc[-max_cohorts:]
    values = rates.to_numpy(dtype=float)
    later = values[:, 1:] if values.shape[1] > 1 else values
    vmax = float(np.nanmax(later)) if np.isfinite(later).any() and np.nanmax(later) > 0 else 1.0
    n_cohorts, n_periods = values.shape
    height = min(10.0, max(3.5, 1.6 + 0.32 * n_cohorts))
    with mpl.rc_context(_RC):
        fig, ax = _figure((9.0, height))
        image = ax.imshow(
            np.ma.masked_invalid(values),
            cmap="Blues",
            vmin=0.0,
            vmax=vmax,
            aspect="auto",
            interpolation="nearest",
        )
        fig.colorbar(image, ax=ax, label="retention rate", format=PercentFormatter(xmax=1.0))
        if n_periods <= 18 and n_cohorts <= 24:
            fontsize = 7 if n_periods <= 12 else 6
            for (row, col), rate in np.ndenumerate(values):
                if np.isfinite(rate):
                    color = "white" if rate > 0.6 * vmax else "black"
                    ax.text(col, row, f"{rate:.0%}", ha="center", va="center", fontsize=fontsize, color=color)
        ax.set_xticks(np.arange(n_periods), [str(int(n)) for n in rates.columns])
        labels = [f"{str(start)[:10]} (n={int(sizes[start]):,})" for start in rates.index]
        ax.set_yticks(np.arange(n_cohorts), labels, fontsize=7)
        ax.set_xlabel(f"{grain}s since the cohort {grain} (N)")
        ax.set_title(f"{retention_type.capitalize()} retention per {grain} cohort (retained in {grain} N)")
        return _png(fig)


# rpt_kpis column -> (title, number format): the trends drawn and tabulated.
KPI_COLUMNS: dict[str, tuple[str, str]] = {
    "active_users": ("active users", "{:,.0f}"),
    "new_customers": ("new customers", "{:,.0f}"),
    "net_revenue": ("net revenue", "{:,.2f}"),
    "arpu": ("ARPU", "{:,.2f}"),
    "conversion_rate": ("conversion rate", "{:.1%}"),
    "churn_rate": ("churn rate", "{:.1%}"),
}


def kpi_trends(rpt_kpis: pd.DataFrame, grain: str = "week") -> bytes:
    """Small multiples of the headline KPIs (:data:`KPI_COLUMNS`) per period of the grain; the
    incomplete period holding the as-of date is drawn as a hollow marker, not joined to the line
    (its flows count only up to the as-of date)."""
    frame = rpt_kpis
    _require(frame, "rpt_kpis", ["period_grain", "period_start", "is_complete", *KPI_COLUMNS])
    frame = frame[frame["period_grain"] == grain].sort_values("period_start")
    if frame.empty:
        raise ValueError(f"rpt_kpis: 0 rows for period_grain {grain!r}, nothing to plot")
    x = pd.to_datetime(frame["period_start"]).to_numpy()
    complete = frame["is_complete"].astype(bool).to_numpy()
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(9.0, 5.0), dpi=DPI, layout="constrained")
        axes = fig.subplots(2, 3, sharex=True).ravel()
        for ax, (column, (title, _)) in zip(axes, KPI_COLUMNS.items(), strict=True):
            y = frame[column].to_numpy(dtype=float, na_value=np.nan)
            ax.plot(x[complete], y[complete], color="#3b75af", marker=".", markersize=3, linewidth=1)
            ax.plot(x[~complete], y[~complete], linestyle="none", marker="o", markersize=4,
                    markerfacecolor="none", color="#3b75af")  # fmt: skip
            ax.set_title(title)
            if column.endswith("_rate"):
                ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        fig.suptitle(f"KPIs per {grain} (hollow = incomplete period)")
        return _png(fig)


def _frequency_bucket_order(bucket: object) -> tuple[int, str]:
    text = str(bucket)
    digits = text.rstrip("+")
    return (int(digits) if digits.isdigit() else 10**9, text)


def clv_holdout_calibration(customer_clv_holdout: pd.DataFrame) -> bytes:
    """Actual vs predicted repeat purchase days per customer in the holdout window, by purchase
    frequency in the calibration period (the conditional-expectations plot of Fader, Hardie & Lee
    2005, Figure 4, as lifetimes' ``plot_calibration_purchases_vs_holdout_purchases``), with the
    customers per bucket as bars on a second axis. Input: ``evaluate_holdout(...).by_frequency``
    with its index as a column (``ml.customer_clv_holdout``), optionally ``holdout_days``."""
    frame = customer_clv_holdout
    table = "customer_clv_holdout"
    _require(frame, table, ["calibration_frequency", "customers", "actual_mean", "predicted_mean"])
    frame = frame.iloc[
        sorted(
            range(len(frame)), key=lambda i: _frequency_bucket_order(frame["calibration_frequency"].iloc[i])
        )
    ]
    labels = [str(b) for b in frame["calibration_frequency"]]
    x = np.arange(len(frame))
    days = ""
    if "holdout_days" in frame.columns and frame["holdout_days"].notna().any():
        days = f" {int(frame['holdout_days'].dropna().iloc[0])}-day"
    with mpl.rc_context(_RC):
        fig, ax = _figure()
        counts = ax.twinx()
        counts.bar(x, frame["customers"].to_numpy(dtype=float), color="#d9d9d9", width=0.6, label="customers")
        counts.set_ylabel("customers")
        ax.set_zorder(counts.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.plot(x, frame["actual_mean"].to_numpy(dtype=float), marker="o", color="#3b75af", label="actual")
        ax.plot(x, frame["predicted_mean"].to_numpy(dtype=float), marker="s", linestyle="--",
                color="#c8553d", label="predicted (BG/NBD)")  # fmt: skip
        ax.set_xticks(x, labels)
        ax.set_xlabel("repeat purchase days in the calibration period")
        ax.set_ylabel(f"purchase days per customer in the{days} holdout")
        ax.set_ylim(bottom=0)
        ax.set_title("CLV holdout: actual vs predicted purchases by calibration frequency")
        handles = ax.get_legend_handles_labels()
        bars = counts.get_legend_handles_labels()
        ax.legend(handles[0] + bars[0], handles[1] + bars[1], loc="upper left", fontsize=7)
        return _png(fig)


_CHURN_COLORS = ("#3b75af", "#f0a030", "#4c9f70", "#c8553d", "#7f7f7f")


def _churn_methods(frame: pd.DataFrame, column: str) -> list[tuple[str, object, pd.Series]]:
    """(label, decoded JSON column, row) per method with a value in ``column``, in table order."""
    out = []
    # the model first (first colour, top of the legend), then the baselines by name
    order = sorted(
        range(len(frame)), key=lambda i: (frame["method"].iloc[i] != "model", str(frame["method"].iloc[i]))
    )
    for _, row in frame.iloc[order].iterrows():
        value = _json_column(row[column], f"churn_risk_evaluation.{column} of {row['method']}")
        if value:
            label = (
                row["method_label"]
                if "method_label" in frame.columns and pd.notna(row.get("method_label"))
                else row["method"]
            )
            out.append((str(label), value, row))
    if not out:
        raise ValueError(f"churn_risk_evaluation: no method has a {column}, nothing to plot")
    return out


def churn_roc_curves(churn_risk_evaluation: pd.DataFrame) -> bytes:
    """ROC curve of the churn model and of each baseline on the held-out evaluation snapshot, with
    their ROC-AUC in the legend. Input: ``ml.churn_risk_evaluation`` (``method``, ``roc_auc``,
    ``roc_curve`` as JSON ``{"fpr": [...], "tpr": [...]}``, optionally ``method_label``)."""
    frame = churn_risk_evaluation
    _require(frame, "churn_risk_evaluation", ["method", "roc_auc", "roc_curve"])
    methods = _churn_methods(frame, "roc_curve")
    with mpl.rc_context(_RC):
        fig, ax = _figure((6.0, 5.0))
        ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1, label="chance (0.5)")
        for (label, curve, row), color in zip(methods, _CHURN_COLORS, strict=False):
            auc = row["roc_auc"]
            auc_text = f" ({auc:.3f})" if pd.notna(auc) else ""
            ax.plot(curve["fpr"], curve["tpr"], color=color, linewidth=1.5, label=f"{label}{auc_text}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("false positive rate (retained users flagged)")
        ax.set_ylabel("true positive rate (churners flagged)")
        ax.set_title(_churn_title("ROC", frame))
        ax.legend(loc="lower right", fontsize=7)
        return _png(fig)


def churn_reliability(churn_risk_evaluation: pd.DataFrame) -> bytes:
    """Reliability (calibration) curve of the churn model and the baselines: mean predicted
    probability vs observed churn rate per bin of the predicted probability (empty bins left out),
    marker area by rows. Input: ``ml.churn_risk_evaluation`` (``method``, ``reliability`` as the
    JSON list of :func:`models_py.churn.reliability_table`, optionally ``method_label``, ``brier``)."""
    frame = churn_risk_evaluation
    _require(frame, "churn_risk_evaluation", ["method", "reliability"])
    methods = _churn_methods(frame, "reliability")
    with mpl.rc_context(_RC):
        fig, ax = _figure((6.0, 5.0))
        ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1, label="perfectly calibrated")
        for (label, bins, row), color in zip(methods, _CHURN_COLORS, strict=False):
            used = [b for b in bins if b.get("rows")]
            predicted = np.array([b["mean_predicted"] for b in used], dtype=float)
            observed = np.array([b["observed_rate"] for b in used], dtype=float)
            rows = np.array([b["rows"] for b in used], dtype=float)
            brier = row.get("brier") if "brier" in frame.columns else None
            extra = f" (Brier {brier:.3f})" if brier is not None and pd.notna(brier) else ""
            ax.plot(predicted, observed, color=color, linewidth=1, label=f"{label}{extra}")
            ax.scatter(predicted, observed, s=8 + 120 * rows / max(rows.max(), 1.0), color=color, alpha=0.6)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("mean predicted churn probability (bin)")
        ax.set_ylabel("observed churn rate")
        ax.set_title(_churn_title("reliability", frame))
        ax.legend(loc="upper left", fontsize=7)
        return _png(fig)


def _churn_title(what: str, frame: pd.DataFrame) -> str:
    if "evaluation_snapshot_date" in frame.columns and frame["evaluation_snapshot_date"].notna().any():
        day = str(frame["evaluation_snapshot_date"].dropna().iloc[0])[:10]
        rows = f", {int(frame['rows'].iloc[0]):,} users" if "rows" in frame.columns else ""
        return f"Churn {what}: backtest on {day}{rows}"
    return f"Churn {what}: held-out snapshot"


# Metadata key -> (published table, plot function): what the publish asset draws, in report order.
MART_PLOTS: dict[str, tuple[str, Callable[[pd.DataFrame], bytes]]] = {
    "plot_kpi_trends": ("rpt_kpis", kpi_trends),
    "plot_lifecycle_stages": ("rpt_daily_stage_counts", lifecycle_stages_over_time),
    "plot_activity_lifecycle": ("rpt_activity_lifecycle", activity_lifecycle_bars),
    "plot_activity_retention": ("rpt_retention_cohorts", retention_heatmap),
    "plot_purchase_retention": (
        "rpt_retention_cohorts",
        functools.partial(retention_heatmap, retention_type="purchase"),
    ),
    "plot_rfm_segments": ("rpt_rfm_segments", rfm_segments_size_and_value),
    "plot_clv_distribution": ("customer_clv", clv_distribution),
}
# Metadata key -> (model evaluation table, plot function): drawn on the model assets and in the report.
MODEL_PLOTS: dict[str, tuple[str, Callable[[pd.DataFrame], bytes]]] = {
    "plot_clv_holdout_calibration": ("customer_clv_holdout", clv_holdout_calibration),
    "plot_churn_roc": ("churn_risk_evaluation", churn_roc_curves),
    "plot_churn_reliability": ("churn_risk_evaluation", churn_reliability),
}
# Metadata key -> caption (the HTML report's figure titles).
PLOT_TITLES: dict[str, str] = {
    "plot_kpi_trends": "KPI trends per week",
    "plot_lifecycle_stages": "Users per lifecycle stage over time",
    "plot_activity_lifecycle": "Activity lifecycle per week",
    "plot_activity_retention": "Activity retention per monthly cohort",
    "plot_purchase_retention": "Purchase retention per monthly cohort",
    "plot_rfm_segments": "RFM segments: size and value",
    "plot_clv_distribution": "CLV distribution",
    "plot_clv_holdout_calibration": "CLV model: holdout calibration",
    "plot_churn_roc": "Churn model: ROC curves",
    "plot_churn_reliability": "Churn model: reliability",
}


def draw_plots(
    plots: dict[str, tuple[str, Callable[[pd.DataFrame], bytes]]], frames: dict[str, pd.DataFrame]
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Draw every plot whose table is in ``frames``: (metadata key -> PNG, metadata key -> why it was
    not drawn). A plot that fails (empty table, missing column) is reported, never raised: a plot is
    a convenience and must not fail the asset that draws it."""
    images, problems = {}, {}
    for key, (table, draw) in plots.items():
        if table not in frames:
            problems[key] = f"{table} could not be read"
            continue
        try:
            images[key] = draw(frames[table])
        except Exception as err:  # any failure is reported to the caller, which warns
            problems[key] = f"{key} from {table} ({len(frames[table])} rows) not drawn: {err!r}"
    return images, problems


def draw_model_plots(table: str, frame: pd.DataFrame) -> tuple[dict[str, bytes], dict[str, str]]:
    """:func:`draw_plots` for the :data:`MODEL_PLOTS` of one model evaluation table (what the model
    asset that writes the table shows in its metadata)."""
    return draw_plots({key: spec for key, spec in MODEL_PLOTS.items() if spec[0] == table}, {table: frame})
