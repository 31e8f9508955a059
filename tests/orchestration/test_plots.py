"""The mart plots (orchestration/plots.py) on tiny frames: PNG out, byte-identical for the same data,
a clear error for an empty table, and the markdown image the publish asset puts in its metadata."""

import base64
import datetime as dt
import logging
import re

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
            "rfm_segment_name": ["Champions", "At Risk", "Others"],
            "segment_order": [1, 8, 11],
            "customers": [10, 4, 1],
        }
    )


def customer_clv() -> pd.DataFrame:
    return pd.DataFrame({"user_id": [f"u{i}" for i in range(200)], "clv": [i**1.5 for i in range(200)]})


CASES = [
    (plots.lifecycle_stages_over_time, stage_counts),
    (plots.activity_lifecycle_bars, activity_lifecycle),
    (plots.rfm_segment_sizes, rfm_segments),
    (plots.clv_distribution, customer_clv),
]
IDS = [draw.__name__ for draw, _ in CASES]


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
    png = plots.rfm_segment_sizes(rfm_segments())
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
