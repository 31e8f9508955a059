"""The mart and model plots (orchestration/plots.py) on tiny frames: PNG out, byte-identical for the
same data, a clear error for an empty table, and the markdown image the assets put in their metadata."""

import base64
import datetime as dt
import json
import logging
import re

import numpy as np
import pandas as pd
import pytest

from orchestration import plots
from orchestration.assets.publish import _plot_metadata

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(5)]


def stage_counts() -> pd.DataFrame:
    stages = [("prospect", 1), ("new_customer", 2), ("churned", 7)]
    rows = [
        {"calendar_date": day, "lifecycle_stage": stage, "stage_order": order, "users_count": i + order}
        for i, day in enumerate(DAYS)
        for stage, order in stages
    ]
    return pd.DataFrame(rows)


def activity_lifecycle() -> pd.DataFrame:
    rows = [
        {
            "period_grain": grain,
            "period_start": dt.date(2026, 3, 2) + dt.timedelta(weeks=i),
            "is_complete": i < 2,
            "new_users": 5,
            "returning_users": 3 + i,
            "resurrecting_users": 1,
            "dormant_users": -2,
        }
        for grain in ("week", "month")
        for i in range(3)
    ]
    return pd.DataFrame(rows)


def rfm_segments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rfm_segment_name": ["Champions", "At Risk", "Hibernating", "Others"],
            "segment_order": [1, 8, 10, 11],
            "customers": [10, 4, 0, 1],
            "total_monetary": [1200.5, 300.0, 0.0, 20.0],
            "avg_monetary": [120.05, 75.0, None, 20.0],
        }
    )


def retention_cohorts() -> pd.DataFrame:
    rows = []
    for kind in ("activity", "purchase"):
        for cohort in range(4):
            start = dt.date(2026, 1 + cohort, 1)
            for n in range(4 - cohort):
                rows.append(
                    {
                        "retention_type": kind,
                        "period_grain": "month",
                        "cohort_period_start": start,
                        "period_number": n,
                        "cohort_users": 100 + cohort,
                        "retention_rate": 1.0 if n == 0 else 0.5 / n,
                    }
                )
    return pd.DataFrame(rows)


def kpis() -> pd.DataFrame:
    rows = [
        {
            "period_grain": grain,
            "period_start": dt.date(2026, 3, 2) + dt.timedelta(weeks=i),
            "is_complete": i < 4,
            "active_users": 100 + 10 * i,
            "new_customers": 5 + i,
            "net_revenue": 1000.0 + 50 * i,
            "arpu": (1000.0 + 50 * i) / (100 + 10 * i),
            "conversion_rate": None if i > 2 else 0.1 + 0.01 * i,
            "churn_rate": 0.05 - 0.005 * i,
        }
        for grain in ("week", "month")
        for i in range(5)
    ]
    return pd.DataFrame(rows)


def clv_holdout() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "calibration_frequency": ["7+", "0", "2", "1"],
            "customers": [5, 120, 30, 60],
            "actual_mean": [4.1, 0.2, 1.1, 0.6],
            "predicted_mean": [3.8, 0.25, 1.0, 0.55],
            "holdout_days": [90] * 4,
        }
    )


def churn_evaluation() -> pd.DataFrame:
    reliability = [
        {"bin": f"{b / 10:.1f}-{(b + 1) / 10:.1f}", "rows": 10 * b, "mean_predicted": b / 10 + 0.05,
         "observed_rate": min(1.0, b / 10 + 0.02)} if b else {"bin": "0.0-0.1", "rows": 0,
         "mean_predicted": None, "observed_rate": None}
        for b in range(10)
    ]  # fmt: skip
    curve = {"fpr": [0.0, 0.1, 0.3, 1.0], "tpr": [0.0, 0.5, 0.8, 1.0]}
    return pd.DataFrame(
        {
            "method": ["model", "baseline_days_since_last_active", "baseline_bgnbd_p_alive"],
            "method_label": ["gradient-boosted model", "days since", "1 - P(alive)"],
            "roc_auc": [0.81, 0.74, None],
            "brier": [0.12, 0.15, None],
            "rows": [450, 450, 450],
            "evaluation_snapshot_date": [pd.Timestamp("2026-02-01")] * 3,
            "reliability": [json.dumps(reliability), json.dumps(reliability), json.dumps(None)],
            "roc_curve": [json.dumps(curve), json.dumps(curve), json.dumps(None)],
        }
    )


def customer_clv() -> pd.DataFrame:
    return pd.DataFrame({"user_id": [f"u{i}" for i in range(200)], "clv": [i**1.5 for i in range(200)]})


CASES = [
    (plots.lifecycle_stages_over_time, stage_counts),
    (plots.activity_lifecycle_bars, activity_lifecycle),
    (plots.rfm_segments_size_and_value, rfm_segments),
    (plots.clv_distribution, customer_clv),
    (plots.retention_heatmap, retention_cohorts),
    (plots.kpi_trends, kpis),
    (plots.clv_holdout_calibration, clv_holdout),
    (plots.churn_roc_curves, churn_evaluation),
    (plots.churn_reliability, churn_evaluation),
]
IDS = [draw.__name__ for draw, _ in CASES]
# The frame each table-keyed plot of MART_PLOTS / MODEL_PLOTS draws from.
FRAMES = {
    "rpt_daily_stage_counts": stage_counts,
    "rpt_activity_lifecycle": activity_lifecycle,
    "rpt_rfm_segments": rfm_segments,
    "customer_clv": customer_clv,
    "rpt_retention_cohorts": retention_cohorts,
    "rpt_kpis": kpis,
    "customer_clv_holdout": clv_holdout,
    "churn_risk_evaluation": churn_evaluation,
}


@pytest.mark.parametrize(("draw", "frame"), CASES, ids=IDS)
def test_plot_is_a_deterministic_png(draw, frame):
    first = draw(frame())
    assert first.startswith(PNG_MAGIC)
    assert draw(frame()) == first
    assert b"Software" not in first  # no version stamp: a matplotlib upgrade alone does not change bytes


@pytest.mark.parametrize(("draw", "frame"), CASES, ids=IDS)
def test_empty_table_raises_a_clear_error(draw, frame):
    with pytest.raises(ValueError, match="0 rows, nothing to plot"):
        draw(frame().iloc[0:0])


def test_missing_column_is_named():
    with pytest.raises(ValueError, match=r"customer_clv: missing columns \['clv'\]"):
        plots.clv_distribution(pd.DataFrame({"user_id": ["u1"]}))


def test_activity_lifecycle_without_the_grain_raises():
    frame = activity_lifecycle()
    with pytest.raises(ValueError, match="0 rows for period_grain 'week'"):
        plots.activity_lifecycle_bars(frame[frame["period_grain"] == "month"])


def test_markdown_image_round_trips_base64():
    png = plots.rfm_segments_size_and_value(rfm_segments())
    markdown = plots.markdown_image(png, "RFM [segments]")
    match = re.fullmatch(r"!\[(?P<alt>[^\]]*)\]\(data:image/png;base64,(?P<data>[A-Za-z0-9+/=]+)\)", markdown)
    assert match, markdown[:80]
    assert match["alt"] == "RFM (segments)"
    assert base64.b64decode(match["data"]) == png


def test_publish_metadata_skips_a_failing_plot_with_a_warning(caplog):
    frames = {"rpt_rfm_segments": rfm_segments(), "customer_clv": customer_clv().iloc[0:0]}
    with caplog.at_level(logging.WARNING):
        metadata = _plot_metadata(frames, logging.getLogger("test_plots"))
    assert sorted(metadata) == ["plot_rfm_segments"]
    assert metadata["plot_rfm_segments"].value.startswith("![")
    assert "plot_clv_distribution from customer_clv (0 rows) not drawn" in caplog.text


def test_plot_tables_are_read_on_a_connection_with_an_unfinished_result():
    """reporting_mart reads the plot tables on the connection that just ran fetchone(): DuckDB
    refuses conn.sql() there ("unfinished result"), so every plot was silently skipped once."""
    import logging

    import duckdb

    from orchestration.assets.publish import _read_plot_tables

    with duckdb.connect() as conn:
        conn.execute("create table rpt_rfm_segments as select 1 as customers")
        conn.execute("select * from range(10)").fetchone()  # leaves the result unfinished
        frames = _read_plot_tables(conn, logging.getLogger("test"))
    assert list(frames["rpt_rfm_segments"]["customers"]) == [1]


def test_every_registered_plot_draws_and_has_a_title():
    registry = {**plots.MART_PLOTS, **plots.MODEL_PLOTS}
    frames = {table: make() for table, make in FRAMES.items()}
    images, problems = plots.draw_plots(registry, frames)
    assert not problems
    assert set(images) == set(registry) == set(plots.PLOT_TITLES)
    assert all(png.startswith(PNG_MAGIC) for png in images.values())


def test_draw_plots_reports_instead_of_raising():
    images, problems = plots.draw_plots(
        plots.MODEL_PLOTS, {"churn_risk_evaluation": churn_evaluation().iloc[0:0]}
    )
    assert images == {}
    assert problems["plot_clv_holdout_calibration"] == "customer_clv_holdout could not be read"
    assert "0 rows, nothing to plot" in problems["plot_churn_roc"]


def test_retention_heatmap_per_type_and_grain():
    frame = retention_cohorts()
    purchase = frame.assign(retention_rate=frame["retention_rate"] / 2)
    both = pd.concat(
        [frame[frame["retention_type"] == "activity"], purchase[purchase["retention_type"] == "purchase"]]
    )
    assert plots.retention_heatmap(both) != plots.retention_heatmap(both, retention_type="purchase")
    with pytest.raises(ValueError, match="0 rows for activity retention per week"):
        plots.retention_heatmap(frame, grain="week")
    # many cohorts and periods: drawn without numbers in the cells, still a PNG
    big = pd.concat(
        [frame.assign(cohort_period_start=frame["cohort_period_start"] + dt.timedelta(days=40 * k),
                      period_number=frame["period_number"] + 4 * k) for k in range(8)]
    )  # fmt: skip
    assert plots.retention_heatmap(big).startswith(PNG_MAGIC)


def test_kpi_trends_without_the_grain_raises():
    frame = kpis()
    with pytest.raises(ValueError, match="0 rows for period_grain 'day'"):
        plots.kpi_trends(frame, grain="day")


def test_clv_holdout_buckets_are_drawn_in_frequency_order():
    # the plot sorts "0", "1", "2", "7+" numerically, so a shuffled frame gives the same image
    frame = clv_holdout()
    assert plots.clv_holdout_calibration(frame) == plots.clv_holdout_calibration(frame.iloc[::-1])


def test_churn_plots_need_a_method_with_data():
    frame = churn_evaluation().iloc[2:]  # the P(alive) baseline without a curve
    with pytest.raises(ValueError, match="no method has a roc_curve"):
        plots.churn_roc_curves(frame)
    with pytest.raises(ValueError, match="no method has a reliability"):
        plots.churn_reliability(frame)


def test_roc_curve_points_are_thinned_and_keep_the_ends():
    from models_py.churn import roc_curve_points

    rng = np.random.default_rng(0)
    y = rng.random(20_000) < 0.3
    score = y * 0.3 + rng.random(20_000)
    curve = roc_curve_points(y, score, max_points=101)
    assert len(curve["fpr"]) <= 103
    assert (curve["fpr"][0], curve["tpr"][0]) == (0.0, 0.0)
    assert (curve["fpr"][-1], curve["tpr"][-1]) == (1.0, 1.0)
    assert np.all(np.diff(curve["fpr"]) >= 0) and np.all(np.diff(curve["tpr"]) >= 0)
    small = roc_curve_points([False, True, False, True], [0.1, 0.9, 0.4, 0.3])
    assert small == {"fpr": [0.0, 0.0, 0.5, 0.5, 1.0], "tpr": [0.0, 0.5, 0.5, 1.0, 1.0]}
