"""The dbt asset tells the incremental models which older days to rebuild: the oldest landing day
loaded since fct_user_days was last materialised in this Dagster instance."""

import datetime as dt
import time

import dagster as dg
import pyarrow.parquet as pq
import pytest

from models_py.generator import GeneratorConfig, generate, write_landing
from orchestration.assets.dbt import INCREMENTAL_MODEL, incremental_vars
from orchestration.landing.loader import ingest_source
from orchestration.resources import LifecycleSettings
from orchestration.warehouse import connect

CONFIG = GeneratorConfig(seed=5, n_users=150, n_days=20)


def ingest(settings: LifecycleSettings) -> None:
    with connect(settings.warehouse_path) as conn:
        for source in ("users", "events", "transactions"):
            ingest_source(conn, settings.landing_dir, source, loaded_at=dt.datetime.now(dt.UTC))


@pytest.fixture
def settings(tmp_path) -> LifecycleSettings:
    settings = LifecycleSettings(data_dir=str(tmp_path / "data"), landing_dir=str(tmp_path / "landing"))
    write_landing(generate(CONFIG), tmp_path / "landing")
    ingest(settings)
    return settings


def hint(instance: dg.DagsterInstance, settings: LifecycleSettings) -> dict[str, str]:
    return incremental_vars(dg.build_asset_context(instance=instance), settings)


def test_without_a_recorded_build_every_loaded_day_is_rebuilt(settings):
    with dg.DagsterInstance.ephemeral() as instance:
        assert hint(instance, settings) == {"incremental_from_date": CONFIG.start_date.isoformat()}


def test_after_a_build_only_days_loaded_since_are_rebuilt(settings, tmp_path):
    with dg.DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(INCREMENTAL_MODEL))
        time.sleep(0.01)
        assert hint(instance, settings) == {}  # nothing new: the models' own lookback suffices

        # late data: one old day's events file is delivered again with a row less
        late_day = CONFIG.start_date + dt.timedelta(days=5)
        folder = tmp_path / "landing" / "events" / late_day.isoformat()
        (path,) = folder.iterdir()
        table = pq.read_table(path)
        pq.write_table(table.slice(0, table.num_rows - 1), path)
        ingest(settings)
        assert hint(instance, settings) == {"incremental_from_date": late_day.isoformat()}

        # a build later, the hint is gone again
        instance.report_runless_asset_event(dg.AssetMaterialization(INCREMENTAL_MODEL))
        assert hint(instance, settings) == {}
