"""dbt: staging, intermediate and mart models, built with one `dbt build` per run."""

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from models_py.landing_contract import SOURCES as RAW_SOURCES
from orchestration.ingestion import RAW_SCHEMA
from orchestration.project import dbt_project, load_audiences
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

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> dg.AssetSpec:
        """Seeds also wait for the ingest assets.

        A seed has no upstream in dbt, and fct_audience_members reads the Python models' tables,
        so Dagster splits the dbt step around them; without this, the seeds would get a dbt step
        of their own before ingestion (another dbt start-up, on a warehouse that may not exist).
        """
        spec = super().get_asset_spec(manifest, unique_id, project)
        if manifest["nodes"].get(unique_id, {}).get("resource_type") == "seed":
            raw_keys = [dg.AssetKey([RAW_SCHEMA, source]) for source in RAW_SOURCES]
            spec = spec.replace_attributes(deps=[*spec.deps, *(dg.AssetDep(key) for key in raw_keys)])
        return spec


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


INCREMENTAL_MODEL = dg.AssetKey("fct_user_days")


def oldest_day_loaded_since(settings: LifecycleSettings, since: dt.datetime | None) -> dt.date | None:
    """The oldest landing day whose files were loaded after ``since`` (naive UTC); every loaded day
    when ``since`` is None. None when nothing qualifies."""
    with connect(settings.warehouse_path, read_only=True) as conn:
        (oldest,) = conn.execute(
            f"select min(partition_date) from {RAW_SCHEMA}.ingested_files where ? is null or loaded_at > ?",
            [since, since],
        ).fetchone()
    return oldest


def incremental_vars(context: dg.AssetExecutionContext, settings: LifecycleSettings) -> dict[str, str]:
    """dbt vars telling the incremental models which older days to rebuild (late data).

    fct_user_days rebuilds from its last built day minus a lookback by itself; landing files of
    older days loaded since its last materialisation in this Dagster instance need the hint
    ``incremental_from_date``. Without a recorded materialisation, every loaded day counts.
    """
    event = context.instance.get_latest_materialization_event(INCREMENTAL_MODEL)
    since = (
        dt.datetime.fromtimestamp(event.timestamp, dt.UTC).replace(tzinfo=None) if event is not None else None
    )
    oldest = oldest_day_loaded_since(settings, since)
    if oldest is None:
        context.log.info("No landing file loaded since the last build: incremental models use their lookback")
        return {}
    when = "(no build recorded)"
    if since is not None:
        when = f"since the last build ({since.isoformat(timespec='seconds')} UTC)"
    context.log.info(
        f"Landing files of days from {oldest.isoformat()} on were loaded {when}: "
        f"incremental models rebuild from {oldest.isoformat()} at the latest"
    )
    return {"incremental_from_date": oldest.isoformat()}


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
    try:
        audiences = load_audiences(settings.audiences_file)
    except ValueError as err:
        raise dg.Failure(str(err)) from err
    dbt_vars = {
        "as_of_date": as_of_date.isoformat(),
        "audiences": audiences,
        **incremental_vars(context, settings),
    }
    with settings.dbt_environment():
        invocation = dbt.cli(
            ["build", "--vars", json.dumps(dbt_vars)],
            context=context,
            target_path=settings.dbt_target_dir,
        )
        yield from invocation.stream()
