"""The validation report: pure rendering (escaping, failures with their rows, nothing remote), and
collecting, writing and linking the report of a real (tiny) run in an ephemeral Dagster instance,
from `lifecycle run`'s code path and from the run status sensors."""

from __future__ import annotations

import re

import dagster as dg
import pytest

from orchestration.report import (
    LATEST_NAME,
    REPORT_TAG,
    CheckReport,
    RunReport,
    StepReport,
    check_info_from_repository,
    collect_run_report,
    render_report,
    reports_dir,
    write_report,
    write_run_report,
)
from orchestration.resources import LifecycleSettings

FAILURE = {
    "table": "raw.transactions",
    "rule": "amount is not negative",
    "expectation": "expect_column_values_to_be_between",
    "column": "amount",
    "failing_count": 1234,
    "rows_checked": 50000,
    "detail": "1,234 of 50,000 rows, e.g. [-5.0]",
    "sample_values": [-5.0],
    "sample_rows": [
        {"amount": -5.0, "transaction_id": "t-neg-0001", "user_id": "u042", "currency": None},
        {"amount": -7.5, "transaction_id": "t-neg-0002", "user_id": "u043", "currency": "EUR"},
    ],
}


def make_report(**overrides) -> RunReport:
    checks = [
        CheckReport(
            asset="raw/transactions",
            name="raw_transactions__expectations",
            status="failed",
            severity="ERROR",
            blocking=True,
            description="Great Expectations suite on raw.transactions.",
            result="raw_transactions: FAILED amount is not negative",
            counts={"failed_rules": 1, "failing_count": 1234},
            failures=[FAILURE],
        ),
        CheckReport(
            asset="dim_users",
            name="unique_dim_users_user_id",
            status="passed",
            severity="ERROR",
            blocking=True,
            counts={"failed_row_count": 0},
            is_dbt_test=True,
        ),
        CheckReport(
            asset="mart_staging", name="mart_staging__reconciliation", status="not run", blocking=True
        ),
    ]
    values = {
        "run_id": "0f1e2d3c-run",
        "job_name": "build_mart_job",
        "status": "FAILURE",
        "as_of_date": "2025-12-31",
        "started_at": "2026-01-01T05:00:00",
        "ended_at": "2026-01-01T05:03:00",
        "checks": checks,
        "steps": [
            StepReport(
                "raw__transactions_raw_transactions__expectations", "failed", "1 blocking check failed"
            ),
            StepReport("reporting_mart", "not run", "Dependencies for step reporting_mart failed"),
        ],
    }
    return RunReport(**{**values, **overrides})


def test_failed_check_shows_its_rule_count_and_failing_rows_as_a_table():
    page = render_report(make_report())
    assert "raw/transactions :: raw_transactions__expectations" in page
    assert "raw.transactions: amount is not negative" in page
    assert "<b>1,234</b> of 50,000 failing" in page
    table = page[page.index("First 2 failing rows") :]
    assert re.search(r"<th>amount</th><th>transaction_id</th><th>user_id</th><th>currency</th>", table)
    assert "<td>t-neg-0002</td>" in table and "<td>-7.5</td>" in table
    assert '<span class="null">null</span>' in table  # the missing currency
    # The summary, the steps and the checks that did not run.
    assert "1 passed, 1 failed (1 blocking), 1 not run" in page
    assert "reporting_mart" in page and "Dependencies for step reporting_mart failed" in page
    assert "Checks that did not run" in page and "mart_staging__reconciliation" in page
    assert "as-of date</th><td>2025-12-31" in page
    # Failed checks come before passed ones in the table of all checks.
    all_checks = page[page.index("<h2>All checks</h2>") :]
    assert all_checks.index("raw_transactions__expectations") < all_checks.index("unique_dim_users_user_id")


def test_every_value_is_escaped():
    evil = '<script>alert("x")</script>'
    failure = {**FAILURE, "rule": evil, "sample_rows": [{evil: evil, "amount": "<b>&"}]}
    check = CheckReport(
        asset=evil, name=evil, status="failed", severity="ERROR", blocking=True,
        description=evil, result=evil, counts={evil: evil}, failures=[failure],
    )  # fmt: skip
    page = render_report(make_report(run_id=evil, job_name=evil, as_of_date=evil, checks=[check]))
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;&amp;" in page


def test_report_is_self_contained():
    page = render_report(make_report())
    assert page.startswith("<!doctype html>")
    assert not re.search(r"https?:|//[a-z]", page, re.IGNORECASE)
    for tag in ("<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "@font-face"):
        assert tag not in page.lower(), tag
    assert all(link.startswith("#") for link in re.findall(r'href="([^"]*)"', page))
    assert "default-src 'none'" in page  # the browser may not fetch anything either


def test_a_passing_run_says_so():
    report = make_report(
        status="SUCCESS",
        steps=[],
        checks=[CheckReport(asset="a", name="a_ok", status="passed", severity="ERROR", blocking=True)],
    )
    page = render_report(report)
    assert "Every check that ran passed." in page
    assert "<h2>Failed checks</h2>\n<p>None.</p>" in page
    assert "Steps that failed" not in page


def test_write_report_replaces_latest(tmp_path):
    first = write_report(make_report(run_id="run-1"), tmp_path / "reports")
    second = write_report(make_report(run_id="run-2", status="SUCCESS"), tmp_path / "reports")
    assert first.name == "run-1.html" and second.name == "run-2.html"
    assert (tmp_path / "reports" / LATEST_NAME).read_text() == second.read_text()
    assert sorted(path.name for path in (tmp_path / "reports").iterdir()) == [
        LATEST_NAME,
        "run-1.html",
        "run-2.html",
    ]


# ------------------------------------------------------------- a tiny real run in an ephemeral instance
@dg.asset
def source_table() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"as_of_date": "2025-06-30"})


@dg.asset(deps=[source_table])
def derived_table() -> None:
    return None


@dg.asset_check(asset=source_table, blocking=True, description="source_table has rows.")
def source_table__has_rows() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"rows": 3})


@dg.asset_check(asset=source_table, blocking=True, description="amount is never negative.")
def source_table__amount_not_negative() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False,
        description="source_table: FAILED amount is not negative",
        metadata={"failing_count": 1, "failures": dg.MetadataValue.json([FAILURE])},
    )


@dg.asset_check(asset=derived_table, blocking=True, description="derived_table is fine.")
def derived_table__fine() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


TINY_DEFS = dg.Definitions(
    assets=[source_table, derived_table],
    asset_checks=[source_table__has_rows, source_table__amount_not_negative, derived_table__fine],
    jobs=[dg.define_asset_job("tiny_job", selection=dg.AssetSelection.all())],
)


@pytest.fixture(scope="module")
def tiny_run():
    """One in-process run of tiny_job, recorded in an ephemeral instance: a check fails and blocks."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = TINY_DEFS.resolve_job_def("tiny_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        yield instance, result


def test_collect_reads_checks_steps_and_as_of_date_from_the_event_log(tiny_run):
    instance, result = tiny_run
    info = check_info_from_repository(TINY_DEFS.get_repository_def())
    report = collect_run_report(instance, result.run_id, check_info=info)
    assert (report.run_id, report.job_name, report.status) == (result.run_id, "tiny_job", "FAILURE")
    assert report.as_of_date == "2025-06-30"
    assert report.started_at and report.ended_at
    checks = {check.name: check for check in report.checks}
    assert set(checks) == {
        "source_table__has_rows",
        "source_table__amount_not_negative",
        "derived_table__fine",
    }
    passed, failed = checks["source_table__has_rows"], checks["source_table__amount_not_negative"]
    assert (passed.status, passed.counts, passed.description) == (
        "passed",
        {"rows": 3},
        "source_table has rows.",
    )
    assert (failed.status, failed.severity, failed.blocking) == ("failed", "ERROR", True)
    assert failed.failures == [FAILURE]
    assert failed.result == "source_table: FAILED amount is not negative"
    assert checks["derived_table__fine"].status == "not run"
    steps = {step.key: step for step in report.steps}
    assert steps["source_table_source_table__amount_not_negative"].status == "failed"
    assert "blocking asset check failed" in steps["source_table_source_table__amount_not_negative"].message
    assert steps["derived_table"].status == "not run"
    assert "Not executing" in steps["derived_table"].message
    assert "source_table" not in steps

    page = render_report(report)
    assert "<td>t-neg-0001</td>" in page


def test_write_run_report_writes_the_files_and_tags_the_run(tiny_run, tmp_path):
    instance, result = tiny_run
    path = write_run_report(instance, result.run_id, reports_dir(tmp_path))
    assert path == (tmp_path / "reports" / f"{result.run_id}.html").resolve()
    assert "amount is not negative" in path.read_text()
    assert (tmp_path / "reports" / LATEST_NAME).read_text() == path.read_text()
    assert instance.get_run_by_id(result.run_id).tags[REPORT_TAG] == str(path)


def test_unknown_run_is_a_clear_error(tiny_run):
    instance, _ = tiny_run
    with pytest.raises(ValueError, match="no run nope"):
        collect_run_report(instance, "nope")


def test_failure_sensor_writes_and_links_the_report_once(tmp_path):
    from orchestration.sensors import validation_report_on_failure

    settings = LifecycleSettings(data_dir=str(tmp_path / "data"), landing_dir=str(tmp_path / "landing"))
    with dg.DagsterInstance.ephemeral() as instance:
        result = TINY_DEFS.resolve_job_def("tiny_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        run = instance.get_run_by_id(result.run_id)
        # `with`: the settings resource is a context manager (it guards each run; see run_guard.py)
        with dg.build_run_status_sensor_context(
            sensor_name="validation_report_on_failure",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=run,
            resources={"settings": settings},
        ) as context:
            assert validation_report_on_failure(context.for_run_failure()) is None
        path = tmp_path / "data" / "reports" / f"{result.run_id}.html"
        assert instance.get_run_by_id(result.run_id).tags[REPORT_TAG] == str(path.resolve())
        assert "source_table__amount_not_negative" in path.read_text()

        with dg.build_run_status_sensor_context(
            sensor_name="validation_report_on_failure",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            resources={"settings": settings},
        ) as tagged:
            assert isinstance(validation_report_on_failure(tagged.for_run_failure()), dg.SkipReason)


def test_report_sensors_are_registered():
    from orchestration.definitions import defs

    sensors = {sensor.name: sensor for sensor in defs.get_repository_def().sensor_defs}
    assert {"validation_report_on_success", "validation_report_on_failure"} <= set(sensors)
    assert sensors["validation_report_on_success"].default_status == dg.DefaultSensorStatus.RUNNING


def test_a_failed_step_keeps_its_stack_trace_folded_away():
    """`lifecycle run` prints a failure as one line; the report keeps the whole error, escaped."""
    step = StepReport("raw__events", "failed", "IOException: cannot read", 'Traceback\n  File "a.py" <b>')
    page = render_report(make_report(steps=[step]))
    assert (
        "<pre>IOException: cannot read</pre><details><summary>stack trace</summary>"
        "<pre>Traceback\n  File &quot;a.py&quot; &lt;b&gt;</pre></details>"
    ) in page
