"""Run the build job in-process: what `lifecycle run`/`backfill` and the end-to-end tests do.

Every run of ``build_mart_job`` covers a window of daily partitions [start, end] (one run, like a
single-run backfill): the ingest assets load those landing days, the dbt daily layer rebuilds the
facts from ``start``, and the unpartitioned models and the publication follow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from orchestration.landing.contract import SOURCES
from orchestration.partitions import (
    PARTITION_START_ENV,
    RANGE_END_TAG,
    RANGE_START_TAG,
    daily_partitions,
    last_complete_day,
)
from orchestration.resources import LifecycleSettings, build_resources
from orchestration.warehouse import DamagedDatabaseError

BUILD_JOB_NAME = "build_mart_job"


@dataclass(frozen=True)
class RunWindow:
    """The partition window of a run and why it was chosen; ``later``: landing day folders dated
    after ``end`` that the run leaves for later runs (``<source>/<YYYY-MM-DD>/``)."""

    start: dt.date
    end: dt.date
    reason: str
    later: tuple[str, ...] = ()

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def tags(self) -> dict[str, str]:
        return {RANGE_START_TAG: self.start.isoformat(), RANGE_END_TAG: self.end.isoformat()}

    def __str__(self) -> str:
        span = self.start.isoformat() if self.start == self.end else f"{self.start} to {self.end}"
        text = f"{span} ({self.days} day{'s' if self.days != 1 else ''}; {self.reason})"
        if self.later:
            shown = ", ".join(self.later[:5]) + (
                f" and {len(self.later) - 5} more" if len(self.later) > 5 else ""
            )
            text += f"; left for later runs: {len(self.later)} day folder(s) dated after {self.end}: {shown}"
        return text


def landed_days(landing_dir: Path) -> list[dt.date]:
    """Every day with landing files of any source, sorted."""
    from orchestration.landing.folders import landing_partitions

    return sorted({day for source in SOURCES for day in landing_partitions(landing_dir, source)})


def later_day_folders(landing_dir: Path, after: dt.date) -> list[str]:
    """The day folders with landing files dated after ``after``: ``<source>/<YYYY-MM-DD>/``, by day."""
    from orchestration.landing.folders import landing_partitions

    found = [
        (day, source) for source in SOURCES for day in landing_partitions(landing_dir, source) if day > after
    ]
    return [f"{source}/{day.isoformat()}/" for day, source in sorted(found)]


def pending_days(settings: LifecycleSettings) -> list[dt.date]:
    """Landing days of any source whose files are new or changed since they were loaded."""
    from orchestration.landing.folders import changed_partitions
    from orchestration.warehouse import connect

    landing = Path(settings.landing_dir)
    if not settings.warehouse_path.exists():
        return landed_days(landing)
    with connect(settings.warehouse_path, read_only=True) as conn:
        return sorted({day for source in SOURCES for day in changed_partitions(conn, landing, source)})


def check_window(start: dt.date, end: dt.date) -> None:
    """Raise ValueError unless [start, end] is a non-empty range of existing daily partitions."""
    first = dt.date.fromisoformat(daily_partitions.get_first_partition_key())
    last_key = daily_partitions.get_last_partition_key()
    last = dt.date.fromisoformat(last_key) if last_key else first
    if start > end:
        raise ValueError(f"the window starts on {start} after it ends on {end}")
    if start < first:
        raise ValueError(
            f"{start} is before the first daily partition {first}: set {PARTITION_START_ENV} to "
            f"{start} or earlier (the default depends on the dataset)"
        )
    if end > last:
        raise ValueError(
            f"{end} is after the last complete day {last}: a day is a partition once it is over (UTC); "
            f"end the window on {last} or earlier"
        )


def default_window(settings: LifecycleSettings, as_of: dt.date | None = None) -> RunWindow:
    """What `lifecycle run` builds: from the oldest new or changed landing day up to the latest
    landed day that is over (or ``as_of``); the latest day alone when nothing changed.

    Day folders dated after the last complete UTC day (or after ``as_of``) are left for later runs
    and listed in the window's ``later``: a folder dated in the future by mistake never stops a run.
    """
    landing = Path(settings.landing_dir)
    days = landed_days(landing)
    if not days:
        raise ValueError(f"no landing files under {settings.landing_dir}: nothing to build")
    last = last_complete_day()
    due = [day for day in days if day <= (as_of or last)]
    if as_of is None and not due:
        later = later_day_folders(landing, last)
        raise ValueError(
            f"every landing day folder under {settings.landing_dir} is dated after {last}, the last "
            f"complete day (UTC): {', '.join(later[:5])}{' ...' if len(later) > 5 else ''}. A day is "
            "built once it is over; if a folder's date is wrong, rename or remove it"
        )
    end = as_of or due[-1]
    later = tuple(later_day_folders(landing, end))
    try:
        pending = [day for day in pending_days(settings) if day <= end]
    except DamagedDatabaseError:
        # the run's ingest steps fail on it with a message that says how to rebuild it
        window = RunWindow(end, end, "the warehouse cannot be read", later)
        check_window(window.start, window.end)
        return window
    if pending:
        window = RunWindow(min(pending), end, f"{len(pending)} new or changed landing day(s)", later)
    else:
        window = RunWindow(end, end, "no new or changed landing day: the latest day again", later)
    check_window(window.start, window.end)
    return window


def execute_build_job(
    settings: LifecycleSettings,
    instance: dg.DagsterInstance | None = None,
    *,
    window: RunWindow | None = None,
    tags: dict[str, str] | None = None,
    log_level: str = "INFO",
    run_id: str | None = None,
    logger: str = "console",
) -> dg.ExecuteInProcessResult:
    """Materialise every asset for the window's days and run every check; never raises on a failed
    step or check.

    ``window`` defaults to :func:`default_window` (as of ``settings.as_of_date`` when set). With
    ``instance`` (e.g. ``DagsterInstance.get()``) the run is recorded and shows in the UI; without
    it the run uses an ephemeral instance. ``logger`` is ``console`` (Dagster's) or ``brief_console``
    (the same lines without stack traces, ``orchestration/loggers.py``).
    """
    from orchestration.definitions import defs

    if window is None:
        window = default_window(settings, settings.parsed_as_of_date())
    else:
        check_window(window.start, window.end)
    return defs.resolve_job_def(BUILD_JOB_NAME).execute_in_process(
        instance=instance,
        resources=build_resources(settings),
        raise_on_error=False,
        run_id=run_id,
        tags={**(tags or {}), **window.tags()},
        run_config={"loggers": {logger: {"config": {"log_level": log_level}}}},
    )
