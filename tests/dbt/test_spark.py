"""The same dbt project on Apache Spark (local mode, dbt-spark's `session` method) gives the same mart
as on DuckDB, and a one-day incremental run on Spark keeps the other days.

One SparkSession (one JVM) for the module, an in-memory catalog and a warehouse folder under the
module's temporary folder; dbt runs in this process (dbtRunner), so dbt-spark's `session` method
uses that session. The Python model assets (CLV, churn) run through Dagster on the same session and
write their scores back to Spark, where dbt reads them for the audiences. The DuckDB build of the
same landing files runs the dbt CLI in a subprocess (dbt-duckdb keeps its connection open in the
process that ran it, and the model assets open the file again). Skipped only where Java is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from models_py.generator import GeneratorConfig, generate, write_landing
from orchestration.assets.churn import churn_risk, churn_risk_checks
from orchestration.assets.clv import customer_clv, customer_clv_checks
from orchestration.assets.publish import MART_TABLES
from orchestration.engines import SPARK_SESSION_CONF, SparkWarehouse
from orchestration.landing.loader import ingest_source
from orchestration.landing.raw_parquet import export_raw_parquet
from orchestration.project import DBT_PROJECT_DIR, dbt_executable, load_audiences, published_dbt_columns
from orchestration.publishing.staging import build_staged_mart, build_staged_mart_from_arrow
from orchestration.resources import LifecycleSettings
from orchestration.warehouse import connect

pytestmark = pytest.mark.spark

SOURCES = ("users", "events", "transactions")
# a few hundred users over a few months: every mart table has rows and the CLV fit converges
CONFIG = GeneratorConfig(seed=23, n_users=600, n_days=100)
END = CONFIG.end_date
# rows of fct_user_days before this day are outside the incremental run's lookback (3 days)
UNTOUCHED_BEFORE = END - dt.timedelta(days=4)
DAILY_LAYER = "+fct_user_days"
# The dbt models that read the Python models' tables: built after them.
AFTER_MODELS = ("fct_audience_members", "rpt_model_status")
TIMINGS: dict[str, float] = {}


def _java_missing() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is None and not (java_home and (Path(java_home) / "bin" / "java").exists())


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """A local-mode SparkSession for the module: in-memory catalog, warehouse under tmp, UTC."""
    if _java_missing():
        pytest.skip("Java is not installed (Spark needs a JDK 17 or 21 on PATH or in JAVA_HOME)")
    from pyspark.sql import SparkSession

    # local mode talks to itself only: bind the driver to the loopback interface
    patch = pytest.MonkeyPatch()
    patch.setenv("SPARK_LOCAL_IP", os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"))
    started = time.perf_counter()
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("lifecycle-mart-tests")
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark_warehouse")))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
    )
    for key, value in SPARK_SESSION_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    TIMINGS["spark_start"] = time.perf_counter() - started
    yield session
    session.stop()
    patch.undo()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Landing files, the DuckDB warehouse (raw schema) and the raw Parquet files: the last day is
    loaded and exported after the others, as a daily run would."""
    root = tmp_path_factory.mktemp("spark_data")
    landing = root / "landing"
    write_landing(generate(CONFIG), landing)
    days = [CONFIG.start_date + dt.timedelta(days=n) for n in range(CONFIG.n_days)]
    with connect(root / "warehouse.duckdb") as conn:
        for window in (days[:-1], days[-1:]):
            for source in SOURCES:
                report = ingest_source(
                    conn, landing, source, loaded_at=dt.datetime(2026, 1, 1), partitions=window
                )
                export_raw_parquet(
                    conn, root / "raw_parquet", source, [p.partition_date for p in report.loaded]
                )
    return root


def _settings(root: Path, target: str) -> LifecycleSettings:
    return LifecycleSettings(
        dataset="spark_test",
        data_dir=str(root / target),
        landing_dir=str(root / "landing"),
        as_of_date=END.isoformat(),
        dbt_target=target,
        raw_parquet_dir=str(root / "raw_parquet"),
    )


def _dbt_args(root: Path, target: str, as_of: dt.date) -> list[str]:
    dbt_vars = {"as_of_date": as_of.isoformat(), "audiences": load_audiences()}
    return [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(root / f"dbt_target_{target}"),
        "--log-path",
        str(root / f"dbt_logs_{target}"),
        "--vars",
        json.dumps(dbt_vars),
        "--quiet",
    ]


def _run_spark_dbt(root: Path, *args: str, as_of: dt.date) -> None:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke([*args, *_dbt_args(root, "spark", as_of)])
    if not result.success:
        failures = [
            f"{r.node.name}: {r.status} {r.message}"
            for r in (getattr(result.result, "results", None) or [])
            if str(r.status) not in ("success", "pass")
        ]
        pytest.fail(f"dbt {' '.join(args)} on Spark failed: {result.exception or failures}")


def _run_models(settings: LifecycleSettings) -> None:
    """The Python model assets and their blocking checks, on the settings' engine."""
    result = dg.materialize(
        [customer_clv, *customer_clv_checks, churn_risk, *churn_risk_checks],
        resources={"settings": settings},
    )
    assert result.success
    failed = [
        e.asset_check_key
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity.value == "ERROR"
    ]
    assert not failed, failed


def _env(root: Path, target: str) -> dict[str, str]:
    settings = _settings(root, target)
    return {
        **os.environ,
        "LIFECYCLE_DBT_TARGET": target,
        "LIFECYCLE_WAREHOUSE_PATH": str(settings.warehouse_path),
        "LIFECYCLE_RAW_PARQUET_DIR": str(settings.raw_parquet_path),
        "DO_NOT_TRACK": "1",
    }


def _run_duckdb_dbt(root: Path, *args: str) -> None:
    completed = subprocess.run(
        [dbt_executable(), *args, *_dbt_args(root, "duckdb", END)],
        env=_env(root, "duckdb"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]


@pytest.fixture(scope="module")
def duckdb_build(data_dir) -> Path:
    """The whole project on DuckDB as of END (dbt CLI in a subprocess), with the model assets."""
    settings = _settings(data_dir, "duckdb")
    settings.warehouse_path.parent.mkdir(parents=True)
    shutil.copy(data_dir / "warehouse.duckdb", settings.warehouse_path)
    started = time.perf_counter()
    _run_duckdb_dbt(data_dir, "build", "--exclude", *AFTER_MODELS, "--exclude-resource-type", "unit_test")
    TIMINGS["duckdb_dbt_build"] = time.perf_counter() - started
    _run_models(settings)
    _run_duckdb_dbt(data_dir, "build", "--select", *AFTER_MODELS, "--exclude-resource-type", "unit_test")
    return settings.warehouse_path


@pytest.fixture(scope="module")
def spark_build(spark, data_dir, monkeypatch_module) -> dict[str, pd.DataFrame]:
    """The project on Spark: the daily layer as of END - 1, one incremental day to END, every other
    model as of END, the model assets writing to Spark, then the audiences and the singular data
    tests (the cross-model rules; the generic unique/not_null/accepted_values/relationships tests
    are dbt's own portable macros, and the DuckDB build runs them all on the same data).
    Returns fct_user_days before and after the incremental day."""
    settings = _settings(data_dir, "spark")
    for key, value in _env(data_dir, "spark").items():
        monkeypatch_module.setenv(key, value)
    started = time.perf_counter()
    _run_spark_dbt(data_dir, "run", "--select", DAILY_LAYER, as_of=END - dt.timedelta(days=1))
    before = SparkWarehouse(spark).query("select * from marts.fct_user_days")
    started_day = time.perf_counter()
    _run_spark_dbt(data_dir, "run", "--select", DAILY_LAYER, as_of=END)
    TIMINGS["spark_incremental_day"] = time.perf_counter() - started_day
    after = SparkWarehouse(spark).query("select * from marts.fct_user_days")
    _run_spark_dbt(data_dir, "seed", as_of=END)
    _run_spark_dbt(data_dir, "run", "--exclude", DAILY_LAYER, *AFTER_MODELS, as_of=END)
    TIMINGS["spark_dbt_models"] = time.perf_counter() - started
    started_models = time.perf_counter()
    _run_models(settings)
    TIMINGS["spark_python_models"] = time.perf_counter() - started_models
    _run_spark_dbt(data_dir, "run", "--select", *AFTER_MODELS, as_of=END)
    started_tests = time.perf_counter()
    _run_spark_dbt(data_dir, "test", "--select", "test_type:singular", as_of=END)
    TIMINGS["spark_dbt_tests"] = time.perf_counter() - started_tests
    return {"before": before, "after": after}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_one_incremental_day_on_spark_keeps_the_other_days(spark_build, duckdb_build):
    """insert_overwrite with partition_by replaces the rebuilt days only: the days before the
    lookback are untouched, and the table equals DuckDB's full build as of the same day."""
    before, after = spark_build["before"], spark_build["after"]
    assert after["activity_date"].max() == pd.Timestamp(END)
    assert before["activity_date"].max() == pd.Timestamp(END - dt.timedelta(days=1))
    old_before = _ordered(before[before["activity_date"] < pd.Timestamp(UNTOUCHED_BEFORE)])
    old_after = _ordered(after[after["activity_date"] < pd.Timestamp(UNTOUCHED_BEFORE)])
    assert len(old_before) > 1000 and old_before["activity_date"].nunique() > 60
    pd.testing.assert_frame_equal(old_before, old_after)
    with connect(duckdb_build, read_only=True) as conn:
        expected = conn.execute(
            "select count(*), count(distinct activity_date) from marts.fct_user_days"
        ).fetchall()[0]
    assert (len(after), after["activity_date"].nunique()) == expected


def test_every_mart_table_on_spark_equals_the_duckdb_build(spark, spark_build, duckdb_build, tmp_path):
    """Both warehouses staged for publication as DuckDB files (Spark's pulled through Arrow): the
    same tables with the same column types, the same rows, numbers equal within float tolerance."""
    from_duckdb = tmp_path / "duckdb_mart.duckdb"
    from_spark = tmp_path / "spark_mart.duckdb"
    counts = build_staged_mart(duckdb_build, from_duckdb, "run", MART_TABLES)
    started = time.perf_counter()
    pulled = build_staged_mart_from_arrow(
        SparkWarehouse(spark).arrow, from_spark, "run", MART_TABLES, published_dbt_columns()
    )
    assert pulled == counts
    TIMINGS["spark_publication_pull"] = time.perf_counter() - started
    assert all(counts[table] > 0 for table in counts), counts
    with duckdb.connect() as conn:
        conn.execute(f"attach '{from_duckdb}' as expected (read_only)")
        conn.execute(f"attach '{from_spark}' as actual (read_only)")
        for table in MART_TABLES:
            types = [
                conn.sql(f"select column_name, column_type from (describe {db}.{table})").fetchall()
                for db in ("expected", "actual")
            ]
            assert types[1] == types[0], table
            # model_version hashes the fitted parameters (CLV, to 12 digits) or the training rows'
            # bytes (churn): Spark adds floats in another order, so their last bits and the hash
            # differ while every score agrees (checked below); the version is compared for shape only
            # (one per scores table; rpt_model_status has one per model)
            expected, actual = (
                conn.sql(f"select * from {db}.{table} order by all").df() for db in ("expected", "actual")
            )
            if "model_version" in expected.columns:
                versions = 2 if table == "rpt_model_status" else 1
                assert actual["model_version"].nunique() == expected["model_version"].nunique() == versions
                assert [v.split("-")[:2] for v in actual["model_version"]] == [
                    v.split("-")[:2] for v in expected["model_version"]
                ]
                expected, actual = (frame.drop(columns="model_version") for frame in (expected, actual))
            pd.testing.assert_frame_equal(
                actual, expected, check_exact=False, rtol=1e-6, atol=1e-9, obj=table
            )
    print("timings (s): " + ", ".join(f"{key} {value:.1f}" for key, value in TIMINGS.items()))
