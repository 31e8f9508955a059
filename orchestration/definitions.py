"""The one Definitions object of the lifecycle-mart code location."""

import dagster as dg

from orchestration.assets.churn import churn_risk, churn_risk_checks
from orchestration.assets.clv import customer_clv, customer_clv_checks
from orchestration.assets.dbt import dbt_asset_definitions
from orchestration.assets.ingest import raw_assets
from orchestration.assets.publish import mart_staging, reporting_mart
from orchestration.checks import asset_checks
from orchestration.jobs import jobs, schedules
from orchestration.loggers import LOGGERS
from orchestration.resources import build_resources
from orchestration.sensors import sensors

defs = dg.Definitions(
    assets=[*raw_assets, *dbt_asset_definitions, customer_clv, churn_risk, mart_staging, reporting_mart],
    asset_checks=[*asset_checks, *customer_clv_checks, *churn_risk_checks],
    jobs=jobs,
    schedules=schedules,
    sensors=sensors,
    resources=build_resources(),
    # Dagster's console logger, and `lifecycle run`'s (the same lines without stack traces)
    loggers=LOGGERS,
    # Steps run one after the other in one process: DuckDB takes one writer per file, and the
    # flow is a chain, so a process per step would only add start-up time.
    executor=dg.in_process_executor,
)
