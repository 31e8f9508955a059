"""Fixtures for tests that run the real dbt project on a small warehouse, without Dagster.

dbt runs in-process (dbtRunner) with its own target and log folders under the test's tmp dir, on a
DuckDB warehouse loaded from generated landing files by the project's own ingestion.
"""

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from models_py.generator import GeneratorConfig, generate, write_landing
from orchestration.landing.loader import ingest_source
from orchestration.project import DBT_PROJECT_DIR
from orchestration.warehouse import connect

SOURCES = ("users", "events", "transactions")


class DbtWarehouse:
    """A DuckDB warehouse file and a way to run dbt commands on it."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.path = root / "warehouse.duckdb"
        self._monkeypatch = monkeypatch

    def ingest(self, landing_dir: Path) -> None:
        with connect(self.path) as conn:
            for source in SOURCES:
                ingest_source(conn, landing_dir, source, loaded_at=dt.datetime(2026, 1, 1))

    def dbt(self, *args: str, **dbt_vars: object) -> None:
        """Run one dbt command; fail the test with dbt's own message when it fails."""
        from dbt.cli.main import dbtRunner

        self._monkeypatch.setenv("LIFECYCLE_WAREHOUSE_PATH", str(self.path))
        command = [
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(self.root / "dbt_target"),
            "--log-path",
            str(self.root / "dbt_logs"),
            "--vars",
            json.dumps({k: str(v) if isinstance(v, dt.date) else v for k, v in dbt_vars.items()}),
            "--quiet",
        ]
        result = dbtRunner().invoke(command)
        if not result.success:
            failures = [
                f"{r.node.name}: {r.status} {r.message}"
                for r in (getattr(result.result, "results", None) or [])
                if str(r.status) not in ("success", "pass")
            ]
            pytest.fail(f"dbt {' '.join(args)} failed: {result.exception or failures}")

    def query(self, sql: str) -> pd.DataFrame:
        # read-write like dbt-duckdb's own connection, which stays open in this process after a
        # run: DuckDB refuses a second connection to one file with another configuration.
        with connect(self.path) as conn:
            return conn.execute(sql).df()

    def execute(self, sql: str) -> None:
        with connect(self.path) as conn:
            conn.execute(sql)


@pytest.fixture(scope="module")
def small_landing(tmp_path_factory) -> tuple[GeneratorConfig, Path]:
    """Generated landing files: enough users that refunds land on most days."""
    config = GeneratorConfig(seed=11, n_users=1_200, n_days=75)
    landing = tmp_path_factory.mktemp("landing")
    write_landing(generate(config), landing)
    return config, landing


@pytest.fixture
def make_warehouse(tmp_path, monkeypatch, small_landing) -> Callable[[str], DbtWarehouse]:
    """A function name -> DbtWarehouse loaded with the small generated landing files."""

    def make(name: str) -> DbtWarehouse:
        root = tmp_path / name
        root.mkdir()
        warehouse = DbtWarehouse(root, monkeypatch)
        warehouse.ingest(small_landing[1])
        return warehouse

    return make
