"""Sensors: the validation report of every finished run, for deployments with the Dagster daemon.

`lifecycle run` writes the report itself after its in-process run; runs launched from the UI, a
schedule or a backfill get theirs from these two run status sensors (one on success, one on failure)
when the daemon runs. Both write ``<data dir>/reports/<run id>.html`` and ``latest.html`` and tag the
run with the path (``lifecycle/validation_report``). A run that already carries the tag is left
as it is.
"""

import dagster as dg

from orchestration.report import REPORT_TAG, check_info_from_repository, reports_dir, write_run_report
from orchestration.resources import LifecycleSettings


def _write_report(context: dg.RunStatusSensorContext, settings: LifecycleSettings) -> dg.SkipReason | None:
    run = context.dagster_run
    if REPORT_TAG in run.tags:
        return dg.SkipReason(f"run {run.run_id} already has its report: {run.tags[REPORT_TAG]}")
    check_info = check_info_from_repository(context.repository_def) if context.repository_def else None
    path = write_run_report(
        context.instance,
        run.run_id,
        reports_dir(settings.data_dir),
        check_info=check_info,
        as_of_date=settings.as_of_date,
    )
    context.log.info(f"validation report of run {run.run_id} ({run.status.value}): {path}")
    return None


@dg.run_status_sensor(
    name="validation_report_on_success",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Writes the validation report of a succeeded run to <data dir>/reports/<run id>.html "
        "(and latest.html) and tags the run with its path (lifecycle/validation_report)."
    ),
)
def validation_report_on_success(
    context: dg.RunStatusSensorContext, settings: LifecycleSettings
) -> dg.SkipReason | None:
    """The validation report of every succeeded run of this code location."""
    return _write_report(context, settings)


@dg.run_failure_sensor(
    name="validation_report_on_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Writes the validation report of a failed run (failed checks with samples of failing rows, "
        "failed and skipped steps) to <data dir>/reports/<run id>.html (and latest.html) and tags the "
        "run with its path (lifecycle/validation_report)."
    ),
)
def validation_report_on_failure(
    context: dg.RunFailureSensorContext, settings: LifecycleSettings
) -> dg.SkipReason | None:
    """The validation report of every failed run of this code location."""
    return _write_report(context, settings)


sensors = [validation_report_on_success, validation_report_on_failure]
