"""The benchmark code runs once at size S (fewer days), so that it cannot rot. No timing is
asserted here: speed targets live in bench/run.py and its results, never in the test suite.

What is asserted is what the benchmark's numbers rest on: the hand-written baseline computes the
same user-day facts as the pipeline, the project's CLV path gives the plain lifetimes path's
outputs, and every stage of the runs was measured.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from orchestration.project import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def load_bench():
    sys.path.insert(0, str(PROJECT_ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_run", PROJECT_ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_at_size_s_and_its_comparisons_hold(tmp_path):
    bench = load_bench()
    results = tmp_path / "results"
    result = bench.main(
        [
            "--size", "S", "--days", "120", "--repeat", "1", "--daily-runs", "1",
            "--work-dir", str(tmp_path / "work"), "--results-dir", str(results),
        ]
    )  # fmt: skip
    assert json.loads((results / "S.json").read_text())["size"] == "S"
    assert (results / "S.md").read_text().startswith("### Size S: 10,000 users")
    assert result["data"]["users"] == 10_000 and result["data"]["landed_rows"]["events"] > 0

    # the baseline query and fct_user_days agree on every total
    assert result["baseline"]["matches_fct_user_days"], result["baseline"]["totals"]
    # the published mart also holds the day of the daily run
    assert result["mart_rows"]["fct_user_days"] > result["baseline"]["user_days"]

    # the CLV paths agree to 1e-9 on every customer and every output
    assert result["clv"]["customers"] > 100
    assert result["clv"]["max_relative_difference"] <= 1e-9

    # every run and every step has wall time, CPU time and peak memory
    for run in (result["full_build"], result["daily"]):
        assert run["cpu_seconds"] > 0 and run["peak_rss_mb"] > 100
        assert {"raw__events", "lifecycle_dbt_daily", "customer_clv", "churn_risk", "reporting_mart"} <= set(
            run["steps"]
        )
        assert all(step["cpu_seconds"] is not None for step in run["steps"].values())
    assert result["daily"]["over_full_build"] > 0
    assert "targets" not in result  # the targets are for size L
