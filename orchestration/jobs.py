"""The build job and its daily schedule.

``build_mart_job`` materialises every asset for a window of daily partitions: the ingest assets
and the dbt daily layer for those days, then the unpartitioned models, the checks and the
publication. The schedule runs it for the latest complete UTC day (yesterday) at
``LIFECYCLE_SCHEDULE_CRON`` (default 05:00 UTC every day); the landing sensor
(``orchestration/sensors.py``) launches the days whose landing files are new or changed.
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

from orchestration.partitions import daily_partitions

SCHEDULE_CRON_ENV = "LIFECYCLE_SCHEDULE_CRON"
DEFAULT_SCHEDULE_CRON = "0 5 * * *"

build_mart_job = dg.define_asset_job(
    name="build_mart_job",
    selection=dg.AssetSelection.all(),
    description=(
        "Ingest the landing files of the run's days, build the dbt models, fit CLV and churn risk, "
        "audit and publish the reporting mart."
    ),
)


def schedule_cron_from_env() -> str:
    cron = os.environ.get(SCHEDULE_CRON_ENV) or DEFAULT_SCHEDULE_CRON
    if len(cron.split()) != 5:
        raise ValueError(
            f"{SCHEDULE_CRON_ENV}={cron!r} is not a cron expression of 5 fields, e.g. '0 5 * * *'"
        )
    return cron


def latest_complete_day(moment: dt.datetime) -> str | None:
    """The partition key of the last UTC day over at ``moment`` (None before the first partition)."""
    day = moment.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    first = dt.date.fromisoformat(daily_partitions.get_first_partition_key())
    return day.isoformat() if day >= first else None


@dg.schedule(
    name="build_mart_job_schedule",
    job=build_mart_job,
    cron_schedule=schedule_cron_from_env(),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=(
        "Builds and publishes the mart for the latest complete UTC day (the partition of the day "
        f"before the tick), at {SCHEDULE_CRON_ENV} (default {DEFAULT_SCHEDULE_CRON!r}: 05:00 UTC)."
    ),
)
def build_mart_job_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """One run for the latest day that is over at the tick time."""
    tick = context.scheduled_execution_time
    day = latest_complete_day(tick)
    if day is None:
        return dg.SkipReason(f"no complete day at {tick.isoformat()}: the partitions start later")
    return dg.RunRequest(
        run_key=f"schedule:{day}:{tick.isoformat()}",
        partition_key=day,
        tags={"lifecycle/trigger": "schedule"},
    )


jobs = [build_mart_job]
schedules = [build_mart_job_schedule]
