"""dbt: staging, intermediate and mart models, built with one `dbt build` per run."""

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.ingestion import RAW_SCHEMA
from orchestration.project import dbt_project
from orchestration.resources import WAREHOUSE_POOL, LifecycleSettings
from orchestration.warehouse import connect


class LifecycleDbtTranslator(DagsterDbtTranslator):
    """Asset key = table name; group = dbt folder (staging, intermediate, marts); nothing else special.

    Sources keep dagster-dbt's default key [source, table] (e.g. raw/users): the ingest assets' keys.
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props.get("resource_type") in ("model", "seed", "snapshot"):
            return dg.AssetKey(dbt_resource_props.get("alias") or dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        resource_type = dbt_resource_props.get("resource_type")
        if resource_type == "model" and len(fqn) > 2:
            return fqn[1]
        if resource_type == "seed":
            return "seeds"
        return super().get_group_name(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return ["team:analytics-engineering"]


def latest_raw_date(settings: LifecycleSettings) -> dt.date:
    """The latest UTC day present in the raw data: the as-of date when none is configured."""
    with connect(settings.warehouse_path, read_only=True) as conn:
        (latest,) = conn.execute(
            f"""
            select max(day) from (
                select max(cast(signup_at as date)) as day from {RAW_SCHEMA}.users
                union all select max(cast(occurred_at as date)) from {RAW_SCHEMA}.events
                union all select max(cast(occurred_at as date)) from {RAW_SCHEMA}.transactions
            )
            """
        ).fetchone()
    if latest is None:
        raise dg.Failure("The raw tables are empty: nothing to build. Check the landing folder.")
    return latest


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=LifecycleDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
    pool=WAREHOUSE_POOL,
)
def lifecycle_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: LifecycleSettings
) -> Iterator[Any]:
    """Build (run + test) the dbt models for the as-of date; an error-severity test failure fails the step."""
    as_of_date = settings.parsed_as_of_date() or latest_raw_date(settings)
    context.log.info(f"dbt build for as_of_date={as_of_date.isoformat()}")
    dbt_vars = {"as_of_date": as_of_date.isoformat()}
    with settings.dbt_environment():
        invocation = dbt.cli(
            ["build", "--vars", json.dumps(dbt_vars)],
            context=context,
            target_path=settings.dbt_target_dir,
        )
        yield from invocation.stream()
