"""fct_user_days is incremental by day: daily runs, reruns, late data and going back in time all
give exactly the table that a full rebuild as of the same day gives."""

import datetime as dt

import pandas as pd
import pytest

TABLE = "marts.fct_user_days"
SELECT = ("--select", "+fct_user_days")


def table(warehouse) -> pd.DataFrame:
    return warehouse.query(f"select * from {TABLE} order by user_day_id").reset_index(drop=True)


def full_build(warehouse, as_of: dt.date) -> pd.DataFrame:
    warehouse.dbt("run", *SELECT, "--full-refresh", as_of_date=as_of)
    return table(warehouse)


def full_build_elsewhere(make_warehouse, as_of: dt.date) -> pd.DataFrame:
    return full_build(make_warehouse(f"full_{as_of}"), as_of)


def incremental(warehouse, as_of: dt.date, **dbt_vars) -> pd.DataFrame:
    warehouse.dbt("run", *SELECT, as_of_date=as_of, **dbt_vars)
    return table(warehouse)


@pytest.fixture
def end(small_landing) -> dt.date:
    config, _ = small_landing
    return config.end_date


def test_daily_runs_rerun_and_going_back_equal_the_full_build(make_warehouse, end):
    warehouse = make_warehouse("daily")
    expected = full_build(warehouse, end)
    start = end - dt.timedelta(days=12)
    # Refunds made after the first build on orders older than its lookback window (start - 3):
    # the incremental runs must carry them back to the order's day. Without such refunds in the
    # data, this test would prove nothing about them.
    (refunded_old_orders,) = warehouse.query(
        f"""
        select count(*) from intermediate.int_orders_netted
        where order_date < date '{start - dt.timedelta(days=3)}'
          and cast(last_refunded_at as date) > date '{start}'
        """
    ).iloc[0]
    assert refunded_old_orders > 0
    assert full_build(warehouse, start)["activity_date"].max().date() == start

    # a jump of several days, then single days, then the same day again
    incremental(warehouse, end - dt.timedelta(days=6))
    incremental(warehouse, end - dt.timedelta(days=1))
    pd.testing.assert_frame_equal(incremental(warehouse, end), expected)
    pd.testing.assert_frame_equal(incremental(warehouse, end), expected)

    # back to an older day: the table is the one a full build as of that day gives (the refunds
    # made after it no longer count on their orders' days)
    old = end - dt.timedelta(days=20)
    back = incremental(warehouse, old)
    assert back["activity_date"].max().date() == old
    pd.testing.assert_frame_equal(back, full_build_elsewhere(make_warehouse, old))
    # forward again to the end: the lookback starts from the last day kept
    pd.testing.assert_frame_equal(incremental(warehouse, end), expected)


def test_late_data_is_rebuilt_from_incremental_from_date(make_warehouse, end):
    """Rows that arrive late for an old day are picked up when the run is told where to start."""
    warehouse = make_warehouse("late")
    late_day = end - dt.timedelta(days=25)
    # the late rows: hold back one day's events and orders, build, then "land" them
    warehouse.execute(
        f"""
        create table raw.held_events as select * from raw.events where _partition_date = date '{late_day}';
        delete from raw.events where _partition_date = date '{late_day}';
        """
    )
    before = full_build(warehouse, end)
    warehouse.execute("insert into raw.events select * from raw.held_events; drop table raw.held_events;")
    expected_rows = table(warehouse)  # unchanged until dbt runs
    pd.testing.assert_frame_equal(expected_rows, before)

    # without the hint, the lookback does not reach the late day: the day stays stale
    stale = incremental(warehouse, end)
    pd.testing.assert_frame_equal(stale, before)
    got = incremental(warehouse, end, incremental_from_date=late_day)
    assert not got.equals(before), "the late events changed nothing: the test proves nothing"
    pd.testing.assert_frame_equal(got, full_build(warehouse, end))
