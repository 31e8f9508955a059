import pytest


@pytest.fixture(scope="session", autouse=True)
def _parsed_dbt_project(dbt_manifest):
    """Every test here loads the Definitions, which need the dbt manifest."""
    return dbt_manifest
