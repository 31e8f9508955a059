"""Write-audit-publish mechanics on tiny DuckDB files (no Dagster run needed)."""

import duckdb
import pytest

from orchestration.assets.publish import MART_STORAGE_VERSION, build_staged_mart, swap_in


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema marts; create schema ml")
        conn.execute(
            "create table marts.dim_users as select 'u' || i as user_id, date '2026-03-01' as as_of_date "
            "from range(3) t(i)"
        )
        conn.execute(
            "create table marts.fct_user_days as select 'u1' as user_id, date '2026-02-01' as activity_date"
        )
        conn.execute("create table ml.customer_clv as select 'u1' as user_id, 0.5 as p_alive")
    return path


def write_marker(path, value: str) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute(f"create or replace table mart_info as select '{value}' as run_id")


def read_marker(conn) -> str:
    return conn.execute("select run_id from mart_info").fetchone()[0]


def test_staged_mart_copies_tables_in_an_old_storage_version(warehouse, tmp_path):
    staged = tmp_path / "mart" / "_staging" / "m.duckdb"
    tables = {
        "dim_users": "marts.dim_users",
        "fct_user_days": "marts.fct_user_days",
        "customer_clv": "ml.customer_clv",
    }
    counts = build_staged_mart(warehouse, staged, run_id="run-1", tables=tables)
    assert counts == {"dim_users": 3, "fct_user_days": 1, "customer_clv": 1}
    assert not staged.with_name(staged.name + ".wal").exists()
    with duckdb.connect(str(staged), read_only=True) as conn:
        tags = conn.execute("select tags from duckdb_databases() where database_name = 'm'").fetchone()[0]
        assert tags["storage_version"].startswith(MART_STORAGE_VERSION)
        assert conn.execute("select run_id, cast(as_of_date as varchar) from mart_info").fetchone() == (
            "run-1",
            "2026-03-01",
        )


def test_swap_replaces_atomically_and_open_readers_keep_their_version(tmp_path):
    published, staged = tmp_path / "mart.duckdb", tmp_path / "staged.duckdb"
    write_marker(published, "old")
    write_marker(staged, "new")
    published.with_name(published.name + ".wal").write_bytes(b"stale")
    reader = duckdb.connect(str(published), read_only=True)
    try:
        swap_in(staged, published)
        assert read_marker(reader) == "old"  # a BI connection opened before keeps a consistent old version
    finally:
        reader.close()
    assert not staged.exists()
    assert not published.with_name(published.name + ".wal").exists()
    with duckdb.connect(str(published), read_only=True) as conn:
        assert read_marker(conn) == "new"


def test_swap_refuses_a_staged_file_with_a_write_ahead_log(tmp_path):
    published, staged = tmp_path / "mart.duckdb", tmp_path / "staged.duckdb"
    write_marker(published, "old")
    write_marker(staged, "new")
    staged.with_name(staged.name + ".wal").write_bytes(b"pending")
    with pytest.raises(Exception, match="write-ahead log"):
        swap_in(staged, published)
    with duckdb.connect(str(published), read_only=True) as conn:
        assert read_marker(conn) == "old"
