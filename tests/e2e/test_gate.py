"""Bad input fails the gate, names the rule, and leaves the published mart byte-for-byte intact."""

import hashlib
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.execution import execute_build_job

pytestmark = pytest.mark.e2e


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def add_landing_file(landing_dir: str, source: str, frame: pd.DataFrame, day: str) -> Path:
    path = Path(landing_dir) / source / day / f"{source}-{day}-redelivery.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def duplicate_order(dataset) -> tuple[str, pd.DataFrame]:
    tx = dataset.transactions
    order = tx[tx["transaction_type"] == "order"].head(1).copy()
    order["transaction_id"] = "t_duplicate_0001"  # a new transaction carrying an existing order_id
    return "transactions", order


def null_user_event(dataset) -> tuple[str, pd.DataFrame]:
    event = dataset.events.head(1).copy()
    event["event_id"] = "e_null_user_0001"
    event["user_id"] = None
    return "events", event


@pytest.fixture(scope="module")
def good_run(run_pipeline_on_copy, tmp_path_factory):
    run = run_pipeline_on_copy(tmp_path_factory.mktemp("gate"))
    assert run.result.success
    return run


@pytest.mark.parametrize(
    ("corrupt", "check_name", "rule_words"),
    [
        (duplicate_order, "raw_transactions__expectations", ["order_id is unique among orders", "2 of"]),
        (null_user_event, "raw_events__expectations", ["user_id", "1 of"]),
    ],
    ids=["duplicated_order_id", "null_user_id"],
)
def test_bad_input_blocks_publication(good_run, corrupt, check_name, rule_words):
    settings = good_run.settings
    published = settings.published_mart_path
    before = sha256(published)
    source, frame = corrupt(good_run.dataset)
    day = str(frame["occurred_at"].iloc[0].date())
    bad_file = add_landing_file(settings.landing_dir, source, frame, day)
    try:
        result = execute_build_job(settings)
    finally:
        bad_file.unlink()

    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations[check_name].passed
    description = evaluations[check_name].description
    for words in rule_words:
        assert words in description, description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "reporting_mart" not in materialized and "dim_users" not in materialized
    # the previously published mart is untouched and still readable
    assert sha256(published) == before
    with duckdb.connect(str(published), read_only=True) as conn:
        assert conn.execute("select count(*) from dim_users").fetchone()[0] > 0


def test_a_second_good_run_republishes(good_run):
    settings = good_run.settings
    run_id_before = duckdb_run_id(settings.published_mart_path)
    result = execute_build_job(settings)
    assert result.success
    assert duckdb_run_id(settings.published_mart_path) == result.run_id != run_id_before
    assert not settings.staging_mart_path.exists()


def duckdb_run_id(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute("select run_id from mart_info").fetchone()[0]
