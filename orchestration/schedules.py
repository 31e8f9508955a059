"""Jobs and schedules."""

import dagster as dg

build_mart_job = dg.define_asset_job(
    name="build_mart_job",
    selection=dg.AssetSelection.all(),
    description=(
        "Ingest the landing files, build the dbt models, fit CLV, audit and publish the reporting mart."
    ),
)

build_mart_job_schedule = dg.ScheduleDefinition(
    job=build_mart_job,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily at 05:00 UTC: build and publish the mart for the latest landed day.",
)

jobs = [build_mart_job]
schedules = [build_mart_job_schedule]
