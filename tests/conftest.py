"""Root fixtures. Nothing is autouse here: the pure unit tests pay for nothing they do not use."""

from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "server: starts a real server process on this machine (PostgreSQL, the Dagster webserver); "
        "deselect with -m 'not server'",
    )


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """The definitions load @dbt_assets from dbt_project/target/manifest.json: parse once per session."""
    from orchestration.project import prepare_dbt_manifest

    return prepare_dbt_manifest()
