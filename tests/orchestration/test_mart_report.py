"""The HTML report of a published mart (orchestration/mart_report.py) on tiny frames: every plot inlined,
nothing remote, byte-identical for the same inputs, the KPI change table, and the report files."""

import base64
import datetime as dt
import re

import pandas as pd
import pytest

from orchestration import mart_report, plots
from tests.orchestration.test_plots import FRAMES, kpis

INFO = {"as_of_date": dt.date(2026, 3, 30), "run_id": "3f2a9c1d-0000-4000-8000-000000000000",
        "built_at": dt.datetime(2026, 3, 31, 5, 0, 12, 345678)}  # fmt: skip
VERSION = "20260331T050013.000001Z_3f2a9c1d"
FIGURE = r'<figure id="([a-z_]+)"><img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"'
COUNTS = {"dim_users": 1500, "rpt_kpis": 42, "customer_clv": 700}


@pytest.fixture(scope="module")
def images():
    frames = {table: make() for table, make in FRAMES.items()}
    drawn, problems = plots.draw_plots({**plots.MART_PLOTS, **plots.MODEL_PLOTS}, frames)
    assert not problems
    return drawn


def render(images, **overrides):
    arguments = {
        "info": INFO,
        "version": VERSION,
        "row_counts": COUNTS,
        "images": images,
        "problems": {},
        "rpt_kpis": kpis(),
        "model_tables": {
            "customer_clv_holdout": FRAMES["customer_clv_holdout"]().assign(
                actual_total=10.0, predicted_total=9.0
            ),
            "churn_risk_evaluation": FRAMES["churn_risk_evaluation"](),
        },
    }
    return mart_report.render_mart_report(**{**arguments, **overrides})


def test_report_inlines_every_plot_and_links_nothing_remote(images):
    document = render(images)
    inlined = re.findall(FIGURE, document)
    assert {key for key, _ in inlined} == set(plots.MART_PLOTS) | set(plots.MODEL_PLOTS)
    assert all(base64.b64decode(data) == images[key] for key, data in inlined)
    for remote in ("http://", "https://", 'src="//', "<script", "<link", "@import", "url("):
        assert remote not in document, remote
    # every src is a data: URI
    assert set(re.findall(r'src="([a-z]+):', document)) == {"data"}
    for text in ("as of 2026-03-30", VERSION, INFO["run_id"], "2026-03-31 05:00:12.345678", "1,500", "2,242"):
        assert text in document, text


def test_same_inputs_give_the_same_bytes(images):
    assert render(images) == render(dict(images))


def test_report_lists_what_was_not_drawn(images):
    rest = {key: png for key, png in images.items() if key != "plot_churn_roc"}
    document = render(rest, problems={"plot_churn_roc": "no model evaluation saved <beside> the mart"})
    assert 'id="plot_churn_roc"' not in document
    assert "<code>plot_churn_roc</code>: no model evaluation saved &lt;beside&gt; the mart" in document


def test_report_renders_without_kpis_or_models():
    document = render({}, rpt_kpis=None, model_tables={})
    assert "<h2>Published tables</h2>" in document and "<figure" not in document


def test_kpi_change_table_is_newest_first_with_changes():
    table = mart_report.kpi_change_table(kpis(), "week", periods=3)
    assert list(table["period_start"]) == [dt.date(2026, 3, 30), dt.date(2026, 3, 23), dt.date(2026, 3, 16)]
    assert list(table["is_complete"]) == [False, True, True]
    assert table.loc[0, "active_users_change"] == pytest.approx(140 / 130 - 1)
    # rates change by their difference; no previous value -> NaN
    assert table.loc[1, "churn_rate_change"] == pytest.approx(-0.005)
    assert pd.isna(table.loc[0, "conversion_rate_change"])


def test_kpi_table_in_the_report_shows_change_and_direction(images):
    document = render(images)
    assert "2026-03-30 (to date)" in document
    assert "+7.7%" in document  # active users 130 -> 140
    assert '<td class="num up">3.5% (-0.5 pp)</td>' in document  # a falling churn rate is good news


def test_write_report_writes_latest_and_prunes_reports_of_removed_versions(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    old, kept = "20260101T000000.000000Z_aaaaaaaa", "20260201T000000.000000Z_bbbbbbbb"
    for name in (old, kept):
        (reports / f"{name}.html").write_text("old")
    (reports / "notes.html").write_text("mine")
    path, removed = mart_report.write_mart_report(reports, VERSION, "<html>new</html>", [kept, VERSION])
    assert path == reports / f"{VERSION}.html"
    assert path.read_text() == (reports / "latest.html").read_text() == "<html>new</html>"
    assert removed == [f"{old}.html"]
    assert sorted(p.name for p in reports.iterdir()) == sorted(
        [f"{kept}.html", f"{VERSION}.html", "latest.html", "notes.html"]
    )


def test_a_broken_kpi_table_is_noted_not_raised(images):
    document = render(images, rpt_kpis=pd.DataFrame({"marker": [1]}))
    assert "KPI table per week not shown: rpt_kpis: missing columns" in document
    assert 'id="plot_kpi_trends"' in document


def model_status(*, clv_fitted: bool) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["customer_clv", "churn_risk"],
            "is_fitted": [clv_fitted, True],
            "not_fitted_reason": [
                None if clv_fitted else "Gamma-Gamma needs at least 30 repeat customers, found 12",
                None,
            ],
            "model_version": ["bgnbd-gg-1a2b3c4d" if clv_fitted else None, "churn-hgb-0123456789ab"],
            "scored_rows": [700 if clv_fitted else 0, 300],
            "dependent_audiences": ["churn_rescue, vip_care, win_back_high_value", "churn_rescue"],
            "as_of_date": [INFO["as_of_date"]] * 2,
        }
    )


def test_report_says_which_model_was_not_fitted_and_why(images):
    # the CLV plots could not be drawn (no scores): the report says why instead of a plotting error
    drawn = {key: png for key, png in images.items() if mart_report.PLOT_MODELS.get(key) != "customer_clv"}
    problems = {"plot_clv_distribution": "customer_clv: no non-null clv values, nothing to plot"}
    document = render(drawn, problems=problems, model_status=model_status(clv_fitted=False))
    reason = "Gamma-Gamma needs at least 30 repeat customers, found 12"
    assert "<h3>Model status</h3>" in document
    assert f"<td>not fitted</td><td>{reason}</td>" in document
    assert "no members: churn_rescue, vip_care, win_back_high_value" in document
    for key in ("plot_clv_distribution", "plot_clv_holdout_calibration"):
        assert f"<code>{key}</code>: customer_clv was not fitted: {reason}" in document
    assert "no non-null clv values" not in document
    assert 'id="plot_churn_roc"' in document  # the other model's plots are there

    fitted = render(images, model_status=model_status(clv_fitted=True))
    assert "<td>fitted</td><td>bgnbd-gg-1a2b3c4d</td>" in fitted and "Not drawn" not in fitted
