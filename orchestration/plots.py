"""Plots of the published mart as PNG images, for the Dagster UI (asset metadata) and the HTML report.

Pure functions: a mart table as a pandas DataFrame in, PNG bytes out; no Dagster, no database.
Drawn with matplotlib's Agg canvas on a bare ``Figure`` (no pyplot, so no global figure state and no
GUI backend), with fixed size, dpi and style and no software/date stamp in the file: the same data
gives byte-identical PNGs. An empty table raises ``ValueError`` naming the table: a blank chart
would look like "no users" rather than "nothing to draw".
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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


def _figure() -> tuple[Figure, Axes]:
    """A figure and its axes; call inside ``mpl.rc_context(_RC)`` (the style applies at draw time too)."""
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


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


def rfm_segment_sizes(rpt_rfm_segments: pd.DataFrame) -> bytes:
    """Horizontal bars of customers per RFM segment, in ``segment_order`` (Champions on top)."""
    frame = rpt_rfm_segments
    _require(frame, "rpt_rfm_segments", ["rfm_segment_name", "segment_order", "customers"])
    frame = frame.sort_values(["segment_order", "rfm_segment_name"], ascending=False)
    with mpl.rc_context(_RC):
        fig, ax = _figure()
        ax.barh(frame["rfm_segment_name"], frame["customers"].to_numpy(dtype=float), color="#3b75af")
        ax.set_title("Customers per RFM segment")
        ax.set_xlabel("customers")
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


# Metadata key -> (published table, plot function): what the publish asset draws.
MART_PLOTS = {
    "plot_lifecycle_stages": ("rpt_daily_stage_counts", lifecycle_stages_over_time),
    "plot_activity_lifecycle": ("rpt_activity_lifecycle", activity_lifecycle_bars),
    "plot_rfm_segments": ("rpt_rfm_segments", rfm_segment_sizes),
    "plot_clv_distribution": ("customer_clv", clv_distribution),
}
