"""Resources: where the data lives, which day a run is about, and the dbt CLI.

Environment variables (all optional):

- ``LIFECYCLE_DATASET``: ``demo`` (generated, the default), ``cdnow`` (the real CDNOW purchase log), or
  any other name for your own data (then ``LIFECYCLE_LANDING_DIR`` says where it lands).
- ``LIFECYCLE_DATA_DIR``: folder of the warehouse, the published mart and run artefacts
  (default ``data/<dataset>``).
- ``LIFECYCLE_LANDING_DIR``: the landing folder the ingest assets read (default ``<data dir>/landing``).
- ``LIFECYCLE_MAX_QUARANTINE_SHARE``: the share of quarantined rows in one (source, day) partition
  above which the blocking quarantine check fails (default 0.01).
- ``LIFECYCLE_AS_OF_DATE``: the as-of date ``YYYY-MM-DD`` (default: the latest day found in the raw data).
- ``LIFECYCLE_DBT_TARGET``: the dbt target of ``dbt_project/profiles.yml`` (default ``duckdb``);
  ``spark`` switches the whole pipeline to Apache Spark (README "Scale out on Apache Spark"): dbt
  builds on Spark, the model assets read and write their tables there, publication pulls the mart
  from there, and the ingest assets also write the raw rows as Parquet for Spark to read.
- ``LIFECYCLE_RAW_PARQUET_DIR``: with the ``spark`` target, the folder (or URI the cluster reads, e.g.
  on a shared file system) of the raw rows as Parquet, one file per source per landing day (default
  ``<data dir>/raw_parquet``).
- ``LIFECYCLE_AUDIENCES_FILE``: the audience definitions (default ``dbt_project/audiences.yml``).
- ``LIFECYCLE_KEEP_VERSIONS``: how many published versions of the mart (and their Parquet snapshots)
  to keep for rollback (default 7).
- ``LIFECYCLE_CURRENCY``: the mart's one currency; transactions in another are quarantined
  (default ``USD``).
- ``LIFECYCLE_DBT_UNIT_TESTS``: ``1`` to run the dbt unit tests in every run's dbt steps too
  (default: left out, as dbt recommends for production; CI runs them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource
from packaging import version

from orchestration.engines import Warehouse, dbt_target, open_warehouse
from orchestration.landing.contract import CURRENCY_ENV, DEFAULT_CURRENCY
from orchestration.project import AUDIENCES_FILE, PROJECT_ROOT, dbt_executable, dbt_project

# Every step that writes the warehouse file is in this pool; dagster.yaml limits pools to 1
# (DuckDB allows one writer per file).
WAREHOUSE_POOL = "duckdb_warehouse"
MART_FILE_NAME = "lifecycle_mart.duckdb"


class LifecycleSettings(dg.ConfigurableResource):
    """Paths of the embedded deployment and the run's as-of date."""

    dataset: str = "demo"
    data_dir: str
    landing_dir: str
    as_of_date: str | None = None
    max_quarantine_share: float = 0.01
    audiences_file: str = str(AUDIENCES_FILE)
    currency: str = DEFAULT_CURRENCY
    keep_versions: int = 7
    # dbt unit tests check the SQL logic on fixed fixtures, not the data: CI runs them (the end-to-end
    # test's run does), a daily run need not (dbt recommends leaving them out of production builds).
    dbt_unit_tests: bool = False
    # The dbt target (profiles.yml) and so the engine of the warehouse: duckdb or spark.
    dbt_target: str = "duckdb"
    # spark only: where the ingest assets write the raw rows as Parquet (None = <data dir>/raw_parquet)
    raw_parquet_dir: str | None = None

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[LifecycleSettings]:
        """Around every run: hold the data folder for the whole run, mark failed the runs whose process
        died and free their pool slots, wait for a warehouse still locked by another process, repair
        the Parquet pointers (``orchestration/run_guard.py``)."""
        from orchestration.run_guard import guarded_run

        with guarded_run(self, context), super().yield_for_execution(context) as value:
            yield value

    def warehouse(self) -> Warehouse:
        """The engine that holds the dbt and model tables (``dbt_target``): the DuckDB file or Spark."""
        return open_warehouse(self.warehouse_path, self.dbt_target)

    @property
    def raw_parquet_path(self) -> Path:
        return Path(self.raw_parquet_dir) if self.raw_parquet_dir else Path(self.data_dir) / "raw_parquet"

    @property
    def warehouse_path(self) -> Path:
        return Path(self.data_dir) / "warehouse.duckdb"

    @property
    def mart_dir(self) -> Path:
        return Path(self.data_dir) / "mart"

    @property
    def published_mart_path(self) -> Path:
        return self.mart_dir / MART_FILE_NAME

    @property
    def staging_mart_path(self) -> Path:
        return self.mart_dir / "_staging" / MART_FILE_NAME

    @property
    def dbt_target_dir(self) -> Path:
        return Path(self.data_dir) / "dbt_target"

    def parsed_as_of_date(self) -> dt.date | None:
        if not self.as_of_date:
            return None
        try:
            return dt.date.fromisoformat(self.as_of_date)
        except ValueError as err:
            raise dg.Failure(
                f"LIFECYCLE_AS_OF_DATE / as_of_date {self.as_of_date!r} is not a date: use YYYY-MM-DD"
            ) from err

    @contextlib.contextmanager
    def dbt_environment(self) -> Iterator[None]:
        """Environment for a dbt subprocess: the warehouse path that profiles.yml reads.

        Tests are selected "buildable": with a selection, a test runs when every model it reads is
        selected or upstream of the selection. Dagster runs the dbt models in two steps around the
        Python models (fct_audience_members reads their scores), and dbt's default (eager) would
        run fct_audience_members' tests in the first step, before the table is rebuilt.
        """
        keys = (
            "LIFECYCLE_WAREHOUSE_PATH",
            "LIFECYCLE_DBT_TARGET",
            "LIFECYCLE_RAW_PARQUET_DIR",
            "DO_NOT_TRACK",
            "DBT_INDIRECT_SELECTION",
        )
        saved = {key: os.environ.get(key) for key in keys}
        os.environ["LIFECYCLE_WAREHOUSE_PATH"] = str(self.warehouse_path.resolve())
        os.environ["LIFECYCLE_DBT_TARGET"] = self.dbt_target
        if self.dbt_target == "spark":
            os.environ["LIFECYCLE_RAW_PARQUET_DIR"] = str(self.raw_parquet_path)
        os.environ["DO_NOT_TRACK"] = "1"
        os.environ["DBT_INDIRECT_SELECTION"] = "buildable"
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class LifecycleDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource without two fixed costs of every dbt step (measured: about
    3 s and 1 to 2.3 s per step, three dbt steps a run).

    - dagster-dbt learns the dbt version by running `dbt --version` once per resource instance, and
      Dagster makes a new instance for every step. The executable here is the dbt beside this Python
      (``project.dbt_executable``), so its version is the installed dbt-core's (a test checks that
      the two agree).
    - It also opens a dbt adapter in this process, used only by ``fetch_row_counts`` and
      ``fetch_column_metadata``; the row counts come from the warehouse file after dbt exits
      (``assets/dbt.py``), because DuckDB allows no second connection while dbt writes.
    """

    def _initialize_dbt_core_adapter(self, args: Any) -> None:
        return None

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).resolve() != Path(dbt_executable()).resolve():
            return super()._cli_version
        return version.parse(importlib.metadata.version("dbt-core"))


BUILT_IN_DATASETS = ("demo", "cdnow")


def settings_from_env() -> LifecycleSettings:
    own_landing = os.environ.get("LIFECYCLE_LANDING_DIR")
    dataset = os.environ.get("LIFECYCLE_DATASET") or ("custom" if own_landing else "demo")
    data_dir = Path(os.environ.get("LIFECYCLE_DATA_DIR") or PROJECT_ROOT / "data" / dataset)
    landing_dir = Path(own_landing or data_dir / "landing")
    share = os.environ.get("LIFECYCLE_MAX_QUARANTINE_SHARE") or "0.01"
    try:
        max_quarantine_share = float(share)
    except ValueError as err:
        raise ValueError(f"LIFECYCLE_MAX_QUARANTINE_SHARE={share!r} is not a number, e.g. 0.01") from err
    keep = os.environ.get("LIFECYCLE_KEEP_VERSIONS") or "7"
    if not keep.isdigit() or int(keep) < 1:
        raise ValueError(f"LIFECYCLE_KEEP_VERSIONS={keep!r} is not a whole number of at least 1, e.g. 7")
    return LifecycleSettings(
        dataset=dataset,
        data_dir=str(data_dir.resolve()),
        landing_dir=str(landing_dir.resolve()),
        as_of_date=os.environ.get("LIFECYCLE_AS_OF_DATE") or None,
        max_quarantine_share=max_quarantine_share,
        audiences_file=str(Path(os.environ.get("LIFECYCLE_AUDIENCES_FILE") or AUDIENCES_FILE).resolve()),
        currency=os.environ.get(CURRENCY_ENV) or DEFAULT_CURRENCY,
        keep_versions=int(keep),
        dbt_unit_tests=os.environ.get("LIFECYCLE_DBT_UNIT_TESTS", "").lower() in ("1", "true", "yes"),
        dbt_target=dbt_target(),
        raw_parquet_dir=os.environ.get("LIFECYCLE_RAW_PARQUET_DIR") or None,
    )


def build_resources(settings: LifecycleSettings | None = None) -> dict[str, object]:
    return {
        "settings": settings or settings_from_env(),
        "dbt": LifecycleDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
    }
