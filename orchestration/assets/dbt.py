"""dbt: the models in two asset definitions, each built with `dbt build` for the run's as-of date.

- ``lifecycle_dbt_daily``: the daily layer, partitioned like the ingest assets: the staging views,
  ``int_orders_netted`` and the incremental ``fct_user_days`` (everything ``fct_user_days`` is built
  from). A run of the days [start, end] passes ``incremental_from_date`` = start, so the facts are
  rebuilt from the window's first day (idempotent per day: delete+insert of whole days).
- ``lifecycle_dbt_models``: every other model, not partitioned: tables rebuilt from the facts as of
  the as-of date; they depend on the latest partition of the daily layer.

The as-of date is ``LIFECYCLE_AS_OF_DATE`` when set, else the latest day in the raw data: a backfill
of old days rebuilds them but never moves the published mart back in time.
"""

import datetime as dt
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.landing.tables import INGESTED_FILES_TABLE, RAW_SCHEMA
from orchestration.partitions import daily_partitions, single_run, window_of
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
        """Seeds also wait for the daily layer (fct_user_days).

        A seed has no upstream in dbt, and Dagster runs the unpartitioned models in steps around
        the assets they do not share (the daily layer, the Python models); without this, the seeds
        would get a dbt step of their own (another dbt start-up, maybe on no warehouse yet).
        """
        spec = super().get_asset_spec(manifest, unique_id, project)
        if manifest["nodes"].get(unique_id, {}).get("resource_type") == "seed":
            daily = dg.AssetDep(INCREMENTAL_MODEL, partition_mapping=dg.LastPartitionMapping())
            spec = spec.replace_attributes(deps=[*spec.deps, daily])
        return spec

    def get_partition_mapping(
        self, dbt_resource_props: Mapping[str, Any], dbt_parent_resource_props: Mapping[str, Any]
    ) -> dg.PartitionMapping | None:
        """An unpartitioned model reads the latest partition of the daily layer (and of raw sources)."""
        if dbt_resource_props.get("name") in DAILY_MODELS:
            return None
        return dg.LastPartitionMapping()


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
# The daily layer: fct_user_days and every model it is built from (dbt selection syntax).
DAILY_SELECTION = "+fct_user_days"


def _daily_models(manifest: Mapping[str, Any]) -> frozenset[str]:
    """The names of the models of DAILY_SELECTION, from the parsed manifest."""
    parents = manifest["parent_map"]
    found, stack = set(), [uid for uid, node in manifest["nodes"].items() if node["name"] == "fct_user_days"]
    while stack:
        uid = stack.pop()
        if uid in found or not uid.startswith("model."):
            continue
        found.add(uid)
        stack.extend(parents.get(uid, []))
    return frozenset(manifest["nodes"][uid]["name"] for uid in found)


_MANIFEST = json.loads(dbt_project.manifest_path.read_text())
DAILY_MODELS = _daily_models(_MANIFEST)
# Every other model and seed, by name: `exclude: +fct_user_days` would also drop the tests that read
# both layers (e.g. rpt_kpis' revenue against fct_user_days), which then would run nowhere.
OTHER_SELECTION = " ".join(
    sorted(
        node["name"]
        for node in _MANIFEST["nodes"].values()
        if node["resource_type"] in ("model", "seed", "snapshot") and node["name"] not in DAILY_MODELS
    )
)


def latest_landed_day(settings: LifecycleSettings) -> dt.date | None:
    """The latest landing day loaded into the warehouse (any source, empty days included)."""
    if not settings.warehouse_path.exists():
        return None
    with connect(settings.warehouse_path, read_only=True) as conn:
        (latest,) = conn.execute(f"select max(partition_date) from {INGESTED_FILES_TABLE}").fetchone()
    return latest


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


def dbt_vars(context: dg.AssetExecutionContext, settings: LifecycleSettings) -> dict[str, Any]:
    """The vars of every dbt step of a run: as-of date, audiences, and the first day to rebuild.

    ``incremental_from_date`` is the older of the partition window's first day and the oldest
    landing day loaded since fct_user_days was last built (files loaded by a run that failed
    before dbt). The steps of one run pass the same vars, so dbt re-parses the project once a run.
    """
    as_of_date = settings.parsed_as_of_date() or latest_raw_date(settings)
    try:
        audiences = load_audiences(settings.audiences_file)
    except ValueError as err:
        raise dg.Failure(str(err)) from err
    found: dict[str, Any] = {"as_of_date": as_of_date.isoformat(), "audiences": audiences}
    starts = [dt.date.fromisoformat(day) for day in incremental_vars(context, settings).values()]
    window = window_of(context)
    if window is not None:
        starts.append(window[0])
    if starts:
        found["incremental_from_date"] = min(starts).isoformat()
    return found


def run_dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    settings: LifecycleSettings,
    dbt_vars: dict[str, Any],
) -> Iterator[Any]:
    shown = {key: value for key, value in dbt_vars.items() if key != "audiences"}
    unit_tests = [] if settings.dbt_unit_tests else ["--exclude-resource-type", "unit_test"]
    context.log.info(
        f"dbt build of {len(context.selected_asset_keys)} models with vars {shown}"
        + ("" if settings.dbt_unit_tests else " (unit tests left out; LIFECYCLE_DBT_UNIT_TESTS=1 runs them)")
    )
    with settings.dbt_environment():
        invocation = dbt.cli(
            ["build", "--vars", json.dumps(dbt_vars), *unit_tests],
            context=context,
            target_path=settings.dbt_target_dir,
        )
        # Held until dbt exits: the row counts are read from the warehouse file, which the dbt
        # process holds open while it runs (dagster-dbt's fetch_row_counts would need a second
        # writer-side connection DuckDB refuses). On a failure, what dbt built is still reported.
        events = []
        try:
            for event in invocation.stream():
                events.append(event)
        except Exception:
            yield from events
            raise
    yield from with_row_counts(events, settings, context.log)


def with_row_counts(events: list[Any], settings: LifecycleSettings, log: Any) -> Iterator[Any]:
    """The events with ``dagster/row_count`` added to each table and incremental model's output
    (views are not counted, as dagster-dbt does not count them: a view's count is a full query)."""
    started = time.perf_counter()
    counted = 0
    counted_nodes = []
    for index, event in enumerate(events):
        unique_id = getattr(event, "metadata", {}).get("unique_id")
        node = _MANIFEST["nodes"].get(str(getattr(unique_id, "value", unique_id)))
        if isinstance(event, dg.Output) and node and node["config"]["materialized"] != "view":
            counted_nodes.append((index, event, node))
    if settings.dbt_target == "duckdb":
        with connect(settings.warehouse_path, read_only=True) as conn:
            counts = [
                conn.execute(f"select count(*) from {node['relation_name']}").fetchone()[0]
                for _, _, node in counted_nodes
            ]
    else:
        # the manifest's relation names are DuckDB's (database.schema.table); schema.table is the
        # same table on Spark, where schema and database are one
        warehouse = settings.warehouse()
        counts = [
            int(warehouse.query(f"select count(*) as n from {node['schema']}.{node['alias']}")["n"].iloc[0])
            for _, _, node in counted_nodes
        ]
    for (index, event, _), rows in zip(counted_nodes, counts, strict=True):
        row_count = {"dagster/row_count": dg.MetadataValue.int(rows)}
        events[index] = event.with_metadata({**event.metadata, **row_count})
        counted += 1
    log.info(f"row counts of {counted} dbt models in {time.perf_counter() - started:.2f} s")
    yield from events


TRANSLATOR = LifecycleDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=DAILY_SELECTION,
    dagster_dbt_translator=TRANSLATOR,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=WAREHOUSE_POOL,
    name="lifecycle_dbt_daily",
)
def lifecycle_dbt_daily(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: LifecycleSettings
) -> Iterator[Any]:
    """The daily layer for the run's days: staging views, netted orders and fct_user_days rebuilt
    from the window's first day; an error-severity test failure fails the step."""
    window = window_of(context)
    latest = latest_landed_day(settings)
    if window is not None and (latest is None or window[1] > latest):
        raise dg.Failure(
            f"No landing files were loaded for {window[1].isoformat()} (the latest loaded landing day is "
            f"{latest.isoformat() if latest else 'none'}): the day has not landed in {settings.landing_dir} "
            "yet. Nothing is built or published; run again once its files are there."
        )
    yield from run_dbt_build(context, dbt, settings, dbt_vars(context, settings))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=OTHER_SELECTION,
    dagster_dbt_translator=TRANSLATOR,
    pool=WAREHOUSE_POOL,
    name="lifecycle_dbt_models",
)
def lifecycle_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: LifecycleSettings
) -> Iterator[Any]:
    """Build (run + test) the unpartitioned dbt models for the as-of date; an error-severity test
    failure fails the step."""
    yield from run_dbt_build(context, dbt, settings, dbt_vars(context, settings))


dbt_asset_definitions = [lifecycle_dbt_daily, lifecycle_dbt_models]


def dbt_test_check_names() -> set[str]:
    """The names of the asset checks that are dbt tests."""
    return {key.name for definition in dbt_asset_definitions for key in definition.check_keys}
