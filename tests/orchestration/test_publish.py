"""Write-audit-publish mechanics on tiny DuckDB files (no Dagster run needed): staging, the atomic
swap, version history and pruning, rollback, the Parquet export and its pointer, the content hash."""

import datetime as dt
import hashlib
import os
from pathlib import Path

import duckdb
import pytest

from orchestration.publishing.hashes import mart_content_hash, table_content_hashes
from orchestration.publishing.layout import MART_STORAGE_VERSION, MartLayout, PublicationError
from orchestration.publishing.parquet import export_parquet, parquet_pointer_target
from orchestration.publishing.staging import build_staged_mart, verify_staged_mart
from orchestration.publishing.versions import (
    current_version,
    list_versions,
    prune_versions,
    publish_staged_mart,
    rollback,
    swap_in,
)

TABLES = {
    "dim_users": "marts.dim_users",
    "fct_user_days": "marts.fct_user_days",
    "customer_clv": "ml.customer_clv",
}
T0 = dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC)


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


def write_version(warehouse: Path, version: int) -> None:
    """Warehouse content number ``version``: its own as-of date, row counts and values."""
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "create or replace table marts.dim_users as select 'u' || i as user_id, "
            f"date '2026-03-01' + {version} as as_of_date, {version} as marker from range({3 + version}) t(i)"
        )
        conn.execute(
            "create or replace table ml.customer_clv as select 'u' || i as user_id, "
            f"{version} / 10 + i / 1000 as p_alive from range({2 * version}) t(i)"
        )


def publish_version(warehouse: Path, layout: MartLayout, version: int, keep: int = 7):
    write_version(warehouse, version)
    build_staged_mart(warehouse, layout.staging, f"run{version:05d}-abc", TABLES)
    verify_staged_mart(layout.staging, TABLES)
    return publish_staged_mart(layout, f"run{version:05d}-abc", keep, now=T0 + dt.timedelta(hours=version))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_marker(path, value: str) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute(f"create or replace table mart_info as select '{value}' as run_id")


def read_marker(conn) -> str:
    return conn.execute("select run_id from mart_info").fetchone()[0]


def test_staged_mart_copies_tables_in_an_old_storage_version(warehouse, tmp_path):
    staged = tmp_path / "mart" / "_staging" / "m.duckdb"
    counts = build_staged_mart(warehouse, staged, run_id="run-1", tables=TABLES)
    assert counts == {"dim_users": 3, "fct_user_days": 1, "customer_clv": 1}
    assert not staged.with_name(staged.name + ".wal").exists()
    with duckdb.connect(str(staged), read_only=True) as conn:
        tags = conn.execute("select tags from duckdb_databases() where database_name = 'm'").fetchone()[0]
        assert tags["storage_version"].startswith(MART_STORAGE_VERSION)
        assert conn.execute("select run_id, cast(as_of_date as varchar) from mart_info").fetchone() == (
            "run-1",
            "2026-03-01",
        )
    assert verify_staged_mart(staged, TABLES)["dim_users"] == 3
    with pytest.raises(PublicationError, match="lacks the tables"):
        verify_staged_mart(staged, [*TABLES, "rpt_kpis"])


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
    with pytest.raises(PublicationError, match="write-ahead log"):
        swap_in(staged, published)
    with pytest.raises(PublicationError, match="write-ahead log"):
        verify_staged_mart(staged, [])
    with duckdb.connect(str(published), read_only=True) as conn:
        assert read_marker(conn) == "old"


def test_publish_keeps_the_last_versions_as_hard_links_and_prunes_the_oldest(warehouse, tmp_path):
    layout = MartLayout(tmp_path / "mart")
    done = [publish_version(warehouse, layout, version, keep=3) for version in range(1, 6)]
    names = [publication.version for publication in done]
    assert names == sorted(names) and names[0].startswith("20260301T070000.000000Z_run00001")
    assert done[3].pruned_versions == [names[0]] and done[4].pruned_versions == [names[1]]
    versions = list_versions(layout)
    assert [v.name for v in versions] == names[2:] == done[4].kept_versions
    assert [v.is_current for v in versions] == [False, False, True]
    assert [str(v.as_of_date) for v in versions] == ["2026-03-04", "2026-03-05", "2026-03-06"]
    assert versions[-1].run_id == "run00005-abc" and versions[-1].built_at is not None
    assert versions[-1].size_bytes == layout.published.stat().st_size
    assert os.path.samefile(versions[-1].path, layout.published)  # a link, not a copy
    # Parquet snapshots follow the same history; the pointer names the published version
    snapshots = sorted(p.name for p in layout.parquet_dir.iterdir() if p.is_dir() and not p.is_symlink())
    assert snapshots == names[2:]
    assert os.readlink(layout.parquet_pointer) == names[4] == parquet_pointer_target(layout)
    assert layout.parquet_pointer_file.read_text() == names[4] + "\n"
    assert not layout.staging.exists()
    assert not [p for p in layout.root.rglob("*") if p.name.endswith((".pending", ".partial", ".tmp"))]


def test_the_published_version_is_never_pruned(warehouse, tmp_path):
    layout = MartLayout(tmp_path / "mart")
    names = [publish_version(warehouse, layout, version).version for version in range(1, 4)]
    rollback(layout, to=names[0])
    kept, pruned = prune_versions(layout, 1)
    assert kept == [names[0], names[2]] and pruned == [names[1]]
    assert current_version(layout) == names[0]
    assert parquet_pointer_target(layout) == names[0] and layout.parquet_snapshot(names[0]).is_dir()
    with pytest.raises(ValueError, match="at least 1"):
        prune_versions(layout, 0)


def test_rollback_restores_the_previous_version_exactly(warehouse, tmp_path):
    layout = MartLayout(tmp_path / "mart")
    first = publish_version(warehouse, layout, 1)
    before_hash = mart_content_hash(layout.published, ignore_columns={})
    before_bytes = sha256(layout.published)
    second = publish_version(warehouse, layout, 2)
    assert mart_content_hash(layout.published, ignore_columns={}) != before_hash
    history_file = layout.version_path(second.version)
    history_bytes = sha256(history_file)

    done = rollback(layout)

    assert done.version == first.version == current_version(layout)
    assert mart_content_hash(layout.published, ignore_columns={}) == before_hash
    assert sha256(layout.published) == before_bytes
    assert not os.path.samefile(layout.published, layout.version_path(first.version))  # a copy
    assert parquet_pointer_target(layout) == first.version == os.readlink(layout.parquet_pointer)
    assert sha256(history_file) == history_bytes and len(list_versions(layout)) == 2
    assert not layout.rollback_staging.exists()
    with pytest.raises(PublicationError, match="oldest kept version"):
        rollback(layout)
    assert rollback(layout, to=second.version).version == second.version
    assert current_version(layout) == second.version
    with pytest.raises(PublicationError, match="no kept version"):
        rollback(layout, to="20990101T000000.000000Z_nope")


def test_rollback_without_history_says_what_to_do(tmp_path):
    with pytest.raises(PublicationError, match="nothing to roll back to"):
        rollback(MartLayout(tmp_path / "mart"))


def test_parquet_export_holds_every_table_and_is_byte_identical_for_the_same_data(warehouse, tmp_path):
    layout = MartLayout(tmp_path / "mart")
    published = publish_version(warehouse, layout, 2)
    snapshot = published.parquet_snapshot
    assert sorted(p.name for p in snapshot.iterdir()) == [
        "customer_clv.parquet",
        "dim_users.parquet",
        "fct_user_days.parquet",
        "mart_info.parquet",
    ]
    with duckdb.connect(str(layout.published), read_only=True) as conn:
        for table in ("dim_users", "customer_clv", "mart_info"):
            difference = conn.execute(
                f"select count(*) from ((select * from {table} except all "
                f"select * from read_parquet('{snapshot / table}.parquet')) union all "
                f"(select * from read_parquet('{snapshot / table}.parquet') except all "
                f"select * from {table}))"
            ).fetchone()[0]
            assert difference == 0, table
    again = tmp_path / "again"
    export_parquet(layout.published, again)
    for path in snapshot.iterdir():
        assert sha256(again / path.name) == sha256(path), path.name
    # the same data staged by another run: every table but mart_info is byte-identical
    write_version(warehouse, 2)
    build_staged_mart(warehouse, layout.staging, "another-run", TABLES)
    other = tmp_path / "other"
    export_parquet(layout.staging, other)
    for name in ("customer_clv.parquet", "dim_users.parquet", "fct_user_days.parquet"):
        assert sha256(other / name) == sha256(snapshot / name), name


def test_content_hash_ignores_row_order_and_run_columns_but_not_values(warehouse, tmp_path):
    layout = MartLayout(tmp_path / "mart")
    build_staged_mart(warehouse, layout.staging, "run-a", TABLES)
    first = table_content_hashes(layout.staging)
    assert set(first) == {*TABLES, "mart_info"}
    build_staged_mart(warehouse, layout.staging, "run-b", TABLES)
    assert table_content_hashes(layout.staging) == first
    assert table_content_hashes(layout.staging, ignore_columns={})["mart_info"] != first["mart_info"]
    with duckdb.connect(str(layout.staging)) as conn:
        conn.execute("create or replace table dim_users as select * from dim_users order by user_id desc")
    assert table_content_hashes(layout.staging) == first
    with duckdb.connect(str(layout.staging)) as conn:
        conn.execute("update customer_clv set p_alive = 0.7")
    changed = table_content_hashes(layout.staging)
    assert changed["customer_clv"] != first["customer_clv"] and changed["dim_users"] == first["dim_users"]


def test_cli_versions_and_rollback(warehouse, tmp_path, monkeypatch, capsys):
    from orchestration.cli.main import main

    data_dir = tmp_path / "data"
    monkeypatch.setenv("LIFECYCLE_DATA_DIR", str(data_dir))
    layout = MartLayout(data_dir / "mart")
    names = [publish_version(warehouse, layout, version).version for version in (1, 2)]

    assert main(["versions"]) == 0
    listing = capsys.readouterr().out
    assert f"* {names[1]}  2026-03-03  run00002-abc" in listing and f"  {names[0]}  2026-03-02" in listing
    assert main(["rollback"]) == 0
    out = capsys.readouterr().out
    assert f"to version {names[0]}" in out and f"* {names[0]}" in out
    assert main(["rollback"]) == 1
    assert "oldest kept version" in capsys.readouterr().out
    assert main(["rollback", "--to", names[1]]) == 0
    assert current_version(layout) == names[1]


def test_keep_versions_setting_from_the_environment(monkeypatch):
    from orchestration.resources import settings_from_env

    monkeypatch.setenv("LIFECYCLE_KEEP_VERSIONS", "3")
    assert settings_from_env().keep_versions == 3
    monkeypatch.setenv("LIFECYCLE_KEEP_VERSIONS", "0")
    with pytest.raises(ValueError, match="LIFECYCLE_KEEP_VERSIONS"):
        settings_from_env()
    monkeypatch.delenv("LIFECYCLE_KEEP_VERSIONS")
    assert settings_from_env().keep_versions == 7


def test_reporting_mart_asset_publishes_and_reports_versions(tmp_path):
    import dagster as dg

    from orchestration.assets.publish import MART_TABLES, reporting_mart
    from orchestration.resources import LifecycleSettings

    settings = LifecycleSettings(data_dir=str(tmp_path / "data"), landing_dir=str(tmp_path), keep_versions=1)
    for run in range(2):
        settings.staging_mart_path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(settings.staging_mart_path)) as conn:
            for table in MART_TABLES:
                conn.execute(f"create table {table} as select {run} as marker")
            conn.execute(f"create table mart_info as select date '2026-03-0{run + 1}' as as_of_date")
        result = dg.materialize([reporting_mart], resources={"settings": settings})
    metadata = result.asset_materializations_for_node("reporting_mart")[0].metadata
    layout = MartLayout(settings.mart_dir)
    assert metadata["version"].value == current_version(layout)
    assert metadata["version"].value.endswith("_" + result.run_id[:8])
    assert metadata["kept_versions"].value == [v.name for v in list_versions(layout)]
    assert len(metadata["kept_versions"].value) == 1 and len(metadata["pruned_versions"].value) == 1
    assert metadata["parquet_snapshot"].value == str(layout.parquet_snapshot(metadata["version"].value))
    assert metadata["as_of_date"].value == "2026-03-02"
    assert metadata["seconds"].value["total"] > 0
    # The HTML report of the version: written, linked, the only one kept (the first went with its version).
    report = Path(metadata["report"].value)
    assert report == Path(settings.mart_dir) / "reports" / f"{metadata['version'].value}.html"
    assert report.read_bytes() == (report.parent / "latest.html").read_bytes()
    assert sorted(p.name for p in report.parent.iterdir()) == sorted([report.name, "latest.html"])
    assert report.as_uri() in metadata["report_link"].value
    document = report.read_text()
    assert "as of 2026-03-02" in document and "https://" not in document and "http://" not in document
    # the tables hold no plottable data here: the report says so instead of failing the publication
    assert "<h2>Not drawn</h2>" in document and "no model evaluation saved" in document
