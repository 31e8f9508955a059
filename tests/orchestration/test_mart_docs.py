"""docs/mart_tables.md stays in step with the dbt manifest and the Python models' tables."""

import json

import pytest

from expectations.runner import load_suite_dict
from orchestration.assets.publish import MART_TABLES
from orchestration.mart_docs import (
    MART_DOCS_PATH,
    PYTHON_TABLE_DOCS,
    documented_tables,
    grain_of,
    mart_tables_markdown,
    short_grain,
)


def test_committed_mart_docs_match_the_code():
    assert MART_DOCS_PATH.read_text() == mart_tables_markdown(), (
        "docs/mart_tables.md is stale: run `lifecycle docs`"
    )


def test_every_published_table_is_documented_with_grain_and_columns():
    tables = documented_tables()
    assert set(tables) == set(MART_TABLES) | {"mart_info"}
    text = MART_DOCS_PATH.read_text()
    for table, doc in tables.items():
        assert f"\n## {table}\n" in text
        assert doc["grain"].lower().startswith("one row")
        assert doc["columns"], table
        for name, type_, description in doc["columns"]:
            assert type_ and description, f"{table}.{name}"
            assert f"| `{name}` | {type_} |" in text


@pytest.mark.parametrize("table", sorted(set(PYTHON_TABLE_DOCS) - {"mart_info"}))
def test_python_table_docs_cover_the_columns_its_suite_requires(table):
    (columns,) = [
        spec["kwargs"]["column_set"]
        for spec in load_suite_dict(table)["expectations"]
        if spec["type"] == "expect_table_columns_to_match_set"
    ]
    documented = [name for name, _, _ in PYTHON_TABLE_DOCS[table]["columns"]]
    assert set(columns) <= set(documented)


def test_grain_is_taken_from_the_description():
    assert grain_of("t", "Stuff as of d. Grain: one row per user per day (UTC). More text.") == (
        "one row per user per day (UTC)"
    )
    assert grain_of("t", "User-day facts: one row per user per active day up to d (sparse). Rest.") == (
        "one row per user per active day up to d (sparse)"
    )
    with pytest.raises(ValueError, match="t states no grain"):
        grain_of("t", "No grain here.")
    assert short_grain("one row per week (Monday, Sunday) per N, zero rows included") == (
        "one row per week (Monday, Sunday) per N"
    )


def test_an_undocumented_column_or_table_is_an_error(tmp_path, monkeypatch, dbt_manifest):
    manifest = json.loads(dbt_manifest.read_text())
    node = next(n for n in manifest["nodes"].values() if n["name"] == "dim_users")
    node["columns"]["user_id"]["description"] = ""
    broken = tmp_path / "manifest.json"
    broken.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="dim_users has columns without a description: user_id"):
        documented_tables(broken)
    monkeypatch.delitem(PYTHON_TABLE_DOCS, "churn_risk")
    with pytest.raises(ValueError, match="without documentation: churn_risk"):
        documented_tables()
