"""dagster.postgres.yaml against a real, throwaway PostgreSQL server (the `pgserver` wheel bundles one).

The server listens on a Unix socket in its own temporary folder (no TCP port), and the DSN reaches
Dagster the way it does in a shared deployment: through LIFECYCLE_DAGSTER_POSTGRES_URL.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import dagster as dg
import pytest

from orchestration.instance import POSTGRES_CONFIG, POSTGRES_URL_ENV, ensure_dagster_home
from orchestration.resources import WAREHOUSE_POOL

pytestmark = pytest.mark.server

DATABASE = "lifecycle_dagster"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """The DSN of an empty database on a PostgreSQL server started for this module, stopped after it."""
    pytest.importorskip(
        "dagster_postgres", reason="dagster-postgres is not installed: pip install -e '.[postgres]'"
    )
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 (a dagster-postgres dependency) is missing")
    with warnings.catch_warnings():
        # pgserver keeps a lock file in the user's runtime folder; without XDG_RUNTIME_DIR (CI, root)
        # platformdirs falls back to /tmp/runtime-<uid> and says so.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        pgserver = pytest.importorskip(
            "pgserver",
            reason="pgserver (a throwaway PostgreSQL server) is not installed: pip install -e '.[dev]' "
            "(it has wheels for CPython 3.11 and 3.12 on x86_64 Linux and on macOS only)",
        )
    # A short path of our own: the server's socket lives in it (Unix socket paths are limited to
    # ~100 characters), and pgserver widens the folder's parents' permissions when run as root.
    pgdata = Path(tempfile.mkdtemp(prefix="lifecycle-pg-"))
    started = time.perf_counter()
    try:
        with pgserver.get_server(pgdata, cleanup_mode="delete") as server:
            admin = psycopg2.connect(server.get_uri())
            admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with closing(admin), admin.cursor() as cursor:
                cursor.execute(f"create database {DATABASE}")
            print(f"PostgreSQL up in {time.perf_counter() - started:.1f} s")
            # dagster-postgres needs the psycopg2 driver named (see dagster.postgres.yaml)
            yield server.get_uri(database=DATABASE).replace("postgresql://", "postgresql+psycopg2://", 1)
    finally:
        shutil.rmtree(pgdata, ignore_errors=True)


@dg.asset(pool=WAREHOUSE_POOL, description="A one-row table, written under the warehouse pool.")
def tiny_table() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 1})


@dg.asset_check(asset=tiny_table, blocking=True, description="The table has its row.")
def tiny_table__has_rows() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"rows": 1})


def test_postgres_instance_stores_runs_materializations_and_checks(postgres_url, tmp_path, monkeypatch):
    psycopg2 = pytest.importorskip("psycopg2")
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv(POSTGRES_URL_ENV, postgres_url)
    home = ensure_dagster_home()
    assert (home / "dagster.yaml").read_bytes() == POSTGRES_CONFIG.read_bytes()

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        # the settings shared with dagster.yaml load as well
        assert not instance.telemetry_enabled
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1
        assert concurrency.run_queue_config.max_concurrent_runs == 1
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert not instance.run_retries_retry_on_asset_or_op_failure
        result = dg.materialize([tiny_table, tiny_table__has_rows], instance=instance)
        assert result.success
        run_id = result.run_id

    # A fresh instance (as the webserver or the next `lifecycle run` would open) reads it all back.
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        materialization = instance.get_latest_materialization_event(dg.AssetKey("tiny_table"))
        assert materialization is not None and materialization.run_id == run_id
        check = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey("tiny_table"), "tiny_table__has_rows")
        )
        assert check is not None and check.run_id == run_id
        # the step took a slot of the warehouse pool, whose limit came from `pools: default_limit`
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 1

    # ... and it is PostgreSQL that holds them, not SQLite files in DAGSTER_HOME.
    conn = psycopg2.connect(postgres_url.replace("+psycopg2", "", 1))
    with closing(conn), conn.cursor() as cursor:
        cursor.execute("select status from runs where run_id = %s", (run_id,))
        assert cursor.fetchone() == ("SUCCESS",)
    assert not list(home.rglob("*.db")), "SQLite files were written next to a PostgreSQL instance"
