"""A backfill of a range gives the same mart as runs day by day.

The published run of the session (one run for every landed day, like `lifecycle backfill`) is
compared with a second warehouse built by a range run of all but the last day, then the run of
the last day, as the schedule launches it (the session fixture scheduled_runs, which test_gate
then reuses as its good run). Both publish; the marts' content hashes (every table,
every row; not the run id or build time) must be equal. (One daily run, not more: each run of the
whole job costs about a minute of the suite; tests/dbt/test_incremental.py chains several days of
the incremental facts with dbt alone.)
"""

import datetime as dt

from orchestration.partitions import RANGE_END_TAG, RANGE_START_TAG
from orchestration.publishing.hashes import table_content_hashes

from .conftest import E2E_CONFIG


def materialized_partitions(result, asset: str) -> set[str]:
    """The partition keys an asset's materialisations of a run cover (a range run: one event per day)."""
    return {
        event.partition
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == asset
    }


def test_range_backfill_equals_day_by_day_runs(published_run, scheduled_runs):
    end = E2E_CONFIG.end_date
    assert published_run.result.dagster_run.tags[RANGE_START_TAG] == E2E_CONFIG.start_date.isoformat()
    assert published_run.result.dagster_run.tags[RANGE_END_TAG] == end.isoformat()
    runs = zip(scheduled_runs.windows, scheduled_runs.results, scheduled_runs.messages, strict=True)
    for window, result, messages in runs:
        assert result.success, f"the run for {window} failed"
        days = {(window.start + dt.timedelta(days=offset)).isoformat() for offset in range(window.days)}
        assert materialized_partitions(result, "fct_user_days") == days
        assert materialized_partitions(result, "raw/events") == days
        assert materialized_partitions(result, "dim_users") == {None}  # unpartitioned
        # the facts are rebuilt from the window's first day, not from the first landed day
        assert any(f"'incremental_from_date': '{window.start}'" in message for message in messages)

    day_by_day = scheduled_runs.hashes
    backfill = table_content_hashes(published_run.settings.published_mart_path)
    assert sorted(day_by_day) == sorted(backfill)
    differing = sorted(table for table in backfill if backfill[table] != day_by_day[table])
    assert not differing, f"tables that differ between the range backfill and day-by-day runs: {differing}"


def test_status_after_a_publication_is_up_to_date(published_run):
    from orchestration.cli.status import format_status, read_status

    status = read_status(published_run.settings)
    assert status.as_of_date == E2E_CONFIG.end_date
    assert status.run_id == published_run.result.run_id
    assert status.pending == []
    assert status.up_to_date, "\n".join(format_status(status, dt.datetime.now(dt.UTC)))
