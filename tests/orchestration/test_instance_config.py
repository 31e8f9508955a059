"""The repo's instance settings: dagster.yaml (SQLite) loads as a real instance with the settings the
README promises, and dagster.postgres.yaml differs from it in its storage only.

The PostgreSQL storage itself is exercised against a real server in test_postgres_storage.py.
"""

import sys

import dagster as dg
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._serdes.config_class import class_from_code_pointer

from orchestration.instance import (
    POSTGRES_CONFIG,
    POSTGRES_URL_ENV,
    SQLITE_CONFIG,
    ensure_dagster_home,
    instance_config_file,
)

DSN = "postgresql+psycopg2://dagster:secret@db.example.org:5432/dagster"


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    """An empty DAGSTER_HOME, with the PostgreSQL switch off unless a test turns it on."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.delenv(POSTGRES_URL_ENV, raising=False)
    return tmp_path


def test_dagster_yaml_gives_the_promised_instance(dagster_home):
    assert ensure_dagster_home() == dagster_home
    assert (dagster_home / "dagster.yaml").read_bytes() == SQLITE_CONFIG.read_bytes()
    with dg.DagsterInstance.get() as instance:
        assert not instance.telemetry_enabled
        # one run and one writer of each DuckDB file at a time
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        # crashed runs are retried once; runs failed by a step or a check are not
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == 1
        assert not instance.run_retries_retry_on_asset_or_op_failure
        # the daemon frees the pool slots of ended runs (a killed run's steps never free theirs)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60
        # the explicit SQLite storage is Dagster's default layout, in DAGSTER_HOME
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        instance.get_runs(limit=1)
    assert (dagster_home / "history" / "runs.db").is_file()
    assert (dagster_home / "schedules" / "schedules.db").is_file()


def test_the_two_instance_files_differ_in_storage_only():
    sqlite, postgres = (yaml.safe_load(path.read_text()) for path in (SQLITE_CONFIG, POSTGRES_CONFIG))
    assert sqlite.pop("storage") == {"sqlite": {"base_dir": {"env": "DAGSTER_HOME"}}}
    assert postgres.pop("storage") == {"postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}}
    assert sqlite == postgres
    assert {"telemetry", "concurrency", "run_retries", "run_monitoring"} <= set(sqlite)


def test_postgres_yaml_fits_dagsters_instance_schema(dagster_home, monkeypatch):
    """Without a server: the file validates and names dagster-postgres' storage, DSN from the env."""
    dagster_postgres_utils = pytest.importorskip(
        "dagster_postgres.utils", reason="dagster-postgres is not installed: pip install -e '.[postgres]'"
    )
    pg_url_from_config = dagster_postgres_utils.pg_url_from_config
    monkeypatch.setenv(POSTGRES_URL_ENV, DSN)
    ensure_dagster_home()
    assert (dagster_home / "dagster.yaml").read_bytes() == POSTGRES_CONFIG.read_bytes()
    dagster_instance_config(str(dagster_home))  # raises DagsterInvalidConfigError on a bad file
    ref = InstanceRef.from_dir(str(dagster_home))
    storage = ref.storage_data
    assert (storage.module_name, storage.class_name) == ("dagster_postgres", "DagsterPostgresStorage")
    # the file keeps a reference to the variable, which the storage resolves in each Dagster process
    # (webserver, daemon, run workers) from its own environment: the DSN never lands in a file
    assert storage.config_dict == {"postgres_url": {"env": POSTGRES_URL_ENV}}
    storage_class = class_from_code_pointer(storage.module_name, storage.class_name)
    resolved = process_config(resolve_to_config_type(storage_class.config_type()), storage.config_dict)
    assert resolved.success, resolved.errors
    assert pg_url_from_config(resolved.value) == DSN
    assert ref.settings["concurrency"]["pools"]["default_limit"] == 1


def test_switching_storage_replaces_the_copy_in_dagster_home(dagster_home, monkeypatch):
    assert instance_config_file() == SQLITE_CONFIG
    ensure_dagster_home()
    monkeypatch.setenv(POSTGRES_URL_ENV, DSN)
    assert instance_config_file() == POSTGRES_CONFIG
    ensure_dagster_home()
    assert (dagster_home / "dagster.yaml").read_bytes() == POSTGRES_CONFIG.read_bytes()
    monkeypatch.setenv(POSTGRES_URL_ENV, "  ")  # blank counts as unset
    ensure_dagster_home()
    assert (dagster_home / "dagster.yaml").read_bytes() == SQLITE_CONFIG.read_bytes()


def test_postgres_switch_without_dagster_postgres_says_what_to_install(dagster_home, monkeypatch):
    monkeypatch.setenv(POSTGRES_URL_ENV, DSN)
    monkeypatch.setitem(sys.modules, "dagster_postgres", None)  # find_spec() then reports it missing
    with pytest.raises(
        SystemExit, match=r"dagster-postgres is not installed: run `pip install -e '\.\[postgres\]'`"
    ):
        ensure_dagster_home()
    assert not (dagster_home / "dagster.yaml").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("db.example.org:5432/dagster", "is not a database URL"),
        ("mysql://dagster:secret@db.example.org/dagster", "is a mysql URL"),
        # SQLAlchemy 2.1 opens a bare postgresql:// with psycopg 3, which dagster-postgres 0.29 fails on
        (
            "postgresql+psycopg://dagster:secret@db.example.org/dagster",
            "write it as postgresql\\+psycopg2://",
        ),
    ],
)
def test_postgres_switch_rejects_a_url_dagster_cannot_use(dagster_home, monkeypatch, url, expected):
    pytest.importorskip("dagster_postgres", reason="dagster-postgres is not installed")
    monkeypatch.setenv(POSTGRES_URL_ENV, url)
    with pytest.raises(SystemExit, match=expected) as raised:
        instance_config_file()
    assert "secret" not in str(raised.value), "the error message must not print the password"


def test_a_bare_postgresql_url_is_taken_only_where_sqlalchemy_opens_it_with_psycopg2(
    dagster_home, monkeypatch
):
    pytest.importorskip("dagster_postgres", reason="dagster-postgres is not installed")
    from sqlalchemy.engine import make_url

    url = "postgresql://dagster:secret@db.example.org/dagster"
    monkeypatch.setenv(POSTGRES_URL_ENV, url)
    if make_url(url).get_dialect().driver == "psycopg2":  # SQLAlchemy < 2.1
        assert instance_config_file() == POSTGRES_CONFIG
    else:
        with pytest.raises(SystemExit, match="write it as postgresql\\+psycopg2://"):
            instance_config_file()
