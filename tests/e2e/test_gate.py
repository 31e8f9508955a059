"""Bad input never silently gets through: bad rows are quarantined with their rule, too many of them
(or a broken file) block publication, and the published mart stays byte-for-byte as it was."""

import hashlib
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.execution import execute_build_job

pytestmark = pytest.mark.e2e


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def deliver(landing_dir: str, source: str, frame: pd.DataFrame, name: str = "late") -> Path:
    """A late file for the day of the frame's first row, next to the files already there."""
    day = str(frame["occurred_at"].iloc[0].date())
    path = Path(landing_dir) / source / day / f"{source}-{day}-{name}.parquet"
    frame.to_parquet(path, index=False)
    return path


def events_of_one_day(dataset, count: int) -> pd.DataFrame:
    events = dataset.events
    day = events["occurred_at"].dt.normalize().iloc[len(events) // 2]
    return events[events["occurred_at"].dt.normalize() == day].head(count).copy()


def duplicated_orders(dataset) -> tuple[str, pd.DataFrame]:
    """New transactions that carry order_ids of existing orders of the same day."""
    tx = dataset.transactions
    orders = tx[tx["transaction_type"] == "order"]
    day = orders["occurred_at"].dt.normalize().iloc[len(orders) // 2]
    frame = orders[orders["occurred_at"].dt.normalize() == day].copy()
    frame["transaction_id"] = [f"t_dup_{i:04d}" for i in range(len(frame))]
    return "transactions", frame


def null_user_events(dataset) -> tuple[str, pd.DataFrame]:
    """Events without a user_id: 40 of them, far over 1% of one day's events."""
    frame = events_of_one_day(dataset, 40)
    frame["event_id"] = [f"e_null_{i:04d}" for i in range(len(frame))]
    frame["user_id"] = None
    return "events", frame


def read_mart_run_id(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute("select run_id from mart_info").fetchone()[0]


def quarantined(settings, source: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute("select * from raw.quarantine where source = ?", [source]).df()


@pytest.fixture(scope="module")
def good_run(scheduled_runs):
    """The published data folder of the session's scheduled runs (a history run, then a daily run);
    test_backfill has its hashes already, so these tests may change its landing folder."""
    assert scheduled_runs.result.success
    return scheduled_runs


@pytest.mark.parametrize(
    ("corrupt", "check_name", "rule"),
    [
        (duplicated_orders, "raw_transactions__quarantine_share", "duplicate_key"),
        (null_user_events, "raw_events__quarantine_share", "null_user_id"),
    ],
    ids=["duplicated_order_id", "null_user_id"],
)
def test_too_many_bad_rows_block_publication(good_run, corrupt, check_name, rule):
    settings = good_run.settings
    published = settings.published_mart_path
    before = sha256(published)
    source, frame = corrupt(good_run.dataset)
    bad_file = deliver(settings.landing_dir, source, frame)
    try:
        result = execute_build_job(settings)
        rows = quarantined(settings, source)
    finally:
        bad_file.unlink()

    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations[check_name].passed
    description = evaluations[check_name].description
    assert rule in description and "quarantined" in description, description
    # one row per bad row, with its rule, file and row number (of two rows with the same key the
    # one in the file that sorts first loads, so the duplicates may sit in either file)
    assert len(rows) == len(frame)
    assert set(rows["rule"]) == {rule}
    assert set(rows["partition_date"].astype(str)) == {bad_file.parent.name}
    assert rows["row_number"].between(1, len(frame) * 1000).all()
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "reporting_mart" not in materialized and "dim_users" not in materialized
    # the previously published mart is untouched and still readable
    assert sha256(published) == before
    with duckdb.connect(str(published), read_only=True) as conn:
        assert conn.execute("select count(*) from dim_users").fetchone()[0] > 0


def test_a_broken_file_stops_its_day_and_blocks_publication(good_run):
    settings = good_run.settings
    published = settings.published_mart_path
    before = sha256(published)
    good_file = deliver(settings.landing_dir, "events", events_of_one_day(good_run.dataset, 5), name="ok")
    broken = good_file.with_name(good_file.name.replace("-ok", "-broken"))
    broken.write_bytes(good_file.read_bytes()[:-40])  # a truncated Parquet file
    good_file.unlink()
    try:
        result = execute_build_job(settings)
    finally:
        broken.unlink()

    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["raw__events"]
    message = failures[0].step_failure_data.user_failure_data.description
    assert broken.name in message and "re-deliver" in message.lower()
    assert sha256(published) == before


def test_a_few_bad_rows_are_quarantined_and_the_same_mart_republishes(good_run):
    """One bad row in a late file: the row is quarantined, the run publishes, and since the good rows
    are the ones already loaded, every published table is the same as before (idempotent), only the
    run id changes. (One run of the job covers both, for the suite's time.)"""
    from orchestration.publishing.hashes import table_content_hashes

    settings = good_run.settings
    run_id_before = read_mart_run_id(settings.published_mart_path)
    hashes_before = table_content_hashes(settings.published_mart_path)
    frame = events_of_one_day(good_run.dataset, 1)
    frame["event_id"], frame["user_id"] = "e_one_null_user", None
    bad_file = deliver(settings.landing_dir, "events", frame, name="one-bad-row")
    try:
        result = execute_build_job(settings)
        rows = quarantined(settings, "events")
    finally:
        bad_file.unlink()

    assert result.success
    assert rows[["rule", "row_number"]].values.tolist() == [["null_user_id", 1]]
    assert rows["source_file"].iloc[0].endswith(bad_file.name)
    assert read_mart_run_id(settings.published_mart_path) == result.run_id != run_id_before
    hashes_after = table_content_hashes(settings.published_mart_path)
    assert set(hashes_after) == set(hashes_before) and len(hashes_after) > 10
    differing = sorted(table for table in hashes_after if hashes_after[table] != hashes_before[table])
    assert not differing, f"tables that differ after a run that only quarantined a row: {differing}"
    assert not settings.staging_mart_path.exists()
