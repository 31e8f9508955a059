"""Daily partitions of the landing days: the ingest assets and the dbt daily layer.

A partition is one UTC day of landing files (``<landing>/<source>/<YYYY-MM-DD>/``). The ingest
assets load the days of a run's partition window; the dbt daily layer (the staging views, the
netted orders and the incremental ``fct_user_days``) rebuilds the facts from the window's first day
on. The other models are not partitioned: they are rebuilt from the facts as of the as-of date and
depend on the latest partition. A range of days is one run (single-run backfill policy): one load
per source and one dbt call, whatever the number of days.

``LIFECYCLE_PARTITION_START`` sets the first day (default per dataset: the demo's and CDNOW's first
day, 2020-01-01 for your own data). The last partition is the latest complete UTC day (yesterday).
"""

from __future__ import annotations

import datetime as dt
import os
import warnings

import dagster as dg

# Dagster marks the backfill_policy parameter beta; it is what makes a range one run. Only this
# one warning is filtered (at every definition that passes it).
warnings.filterwarnings(
    "ignore", message=r"Parameter `backfill_policy` .* is currently in beta", category=dg.BetaWarning
)

PARTITION_START_ENV = "LIFECYCLE_PARTITION_START"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
DEFAULT_PARTITION_START = {"demo": "2025-01-01", "cdnow": "1997-01-01"}
OTHER_DATASETS_PARTITION_START = "2020-01-01"


def partition_start_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> dt.date:
    """The first partition day: ``LIFECYCLE_PARTITION_START``, else the dataset's default."""
    environ = os.environ if environ is None else environ
    value = environ.get(PARTITION_START_ENV)
    if value:
        try:
            return dt.date.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"{PARTITION_START_ENV}={value!r} is not a date YYYY-MM-DD") from err
    own_landing = environ.get("LIFECYCLE_LANDING_DIR")
    dataset = environ.get("LIFECYCLE_DATASET") or ("custom" if own_landing else "demo")
    return dt.date.fromisoformat(DEFAULT_PARTITION_START.get(dataset, OTHER_DATASETS_PARTITION_START))


daily_partitions = dg.DailyPartitionsDefinition(
    start_date=partition_start_from_env().isoformat(),
    timezone="UTC",
    fmt="%Y-%m-%d",
)

# A range of days is one run: one load per source, one dbt call.
single_run = dg.BackfillPolicy.single_run()


def window_of(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> tuple[dt.date, dt.date] | None:
    """The first and last day of the run's partition window; None for a run without partitions.

    Read from the run's tags, so every step of a run sees the same window, the unpartitioned
    ones included (the dbt steps then pass the same vars and dbt parses the project once a run).
    """
    try:
        tags = context.run.tags
    except dg.DagsterError:  # a context built outside a run (tests): no run, no window
        return None
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return dt.date.fromisoformat(tags[RANGE_START_TAG]), dt.date.fromisoformat(tags[RANGE_END_TAG])
    if PARTITION_TAG in tags:
        day = dt.date.fromisoformat(tags[PARTITION_TAG])
        return day, day
    return None


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]


def last_complete_day() -> dt.date:
    """The latest day that is over (UTC): the last daily partition (the day before the first one
    while there is none)."""
    key = daily_partitions.get_last_partition_key()
    if key:
        return dt.date.fromisoformat(key)
    return daily_partitions.start.date() - dt.timedelta(days=1)


def last_loadable_day(as_of: dt.date | None) -> dt.date:
    """The last landing day a run may load: the as-of date when one is set, else the last complete
    UTC day. Day folders dated after it wait for a later run."""
    return as_of or last_complete_day()
