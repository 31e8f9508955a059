"""`lifecycle status`: where the mart stands, for a person or a script.

What is published (as-of date, version, run, age), what has landed and what the warehouse loaded,
which landing days are new or changed since they were loaded (what the next `lifecycle run` or the
landing sensor would pick up), and the last runs of the build job in the Dagster instance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration import data_lock
from orchestration.landing.contract import SOURCES
from orchestration.landing.folders import landing_partitions
from orchestration.landing.tables import INGESTED_FILES_TABLE
from orchestration.partitions import RANGE_END_TAG, RANGE_START_TAG, last_loadable_day
from orchestration.publishing.layout import MartLayout
from orchestration.publishing.versions import current_version, needs_recovery, repair
from orchestration.resources import LifecycleSettings
from orchestration.warehouse import REBUILD_HINT, DamagedDatabaseError, connect


@dataclass
class MartStatus:
    published: Path
    as_of_date: dt.date | None = None
    run_id: str | None = None
    built_at: dt.datetime | None = None
    version: str | None = None
    landed: dict[str, tuple[dt.date, dt.date, int] | None] = field(default_factory=dict)
    loaded_up_to: dt.date | None = None
    warehouse_note: str | None = None
    pending: list[dt.date] = field(default_factory=list)
    runs: list[dict[str, str]] = field(default_factory=list)
    # Day folders dated after the last day a run loads now (the as-of date or the last complete
    # UTC day): left for later runs, not counted as landed or pending.
    horizon: dt.date | None = None
    later: list[str] = field(default_factory=list)
    running: str | None = None  # who holds the data folder now (a run, a rollback, a rebuild)
    repaired: list[str] = field(default_factory=list)  # what an interrupted publication left, now repaired

    @property
    def latest_landed(self) -> dt.date | None:
        ends = [span[1] for span in self.landed.values() if span]
        return max(ends) if ends else None

    @property
    def up_to_date(self) -> bool:
        """Published, nothing pending, and as of the latest landed day."""
        return (
            self.as_of_date is not None
            and not self.pending
            and self.warehouse_note is None
            and self.as_of_date == self.latest_landed
        )


def read_status(settings: LifecycleSettings) -> MartStatus:
    """Everything but the Dagster runs (see :func:`add_runs`); reads files and DuckDB read-only."""
    from orchestration.execution import pending_days

    layout = MartLayout(settings.mart_dir, settings.published_mart_path.name)
    status = MartStatus(published=layout.published)
    if layout.published.exists():
        with connect(layout.published, read_only=True) as conn:
            status.as_of_date, status.run_id, status.built_at = conn.execute(
                "select as_of_date, run_id, built_at from mart_info"
            ).fetchone()
        status.version = current_version(layout)
    landing = Path(settings.landing_dir)
    status.horizon = last_loadable_day(settings.parsed_as_of_date())
    for source in SOURCES:
        days = landing_partitions(landing, source) if landing.is_dir() else []
        status.later += [f"{source}/{day.isoformat()}/" for day in days if day > status.horizon]
        days = [day for day in days if day <= status.horizon]
        status.landed[source] = (days[0], days[-1], len(days)) if days else None
    if not settings.warehouse_path.exists():
        status.warehouse_note = "no warehouse yet: nothing loaded"
        status.pending = sorted({day for span in status.landed.values() if span for day in _span(span)})
        return status
    try:
        with connect(settings.warehouse_path, read_only=True) as conn:
            (status.loaded_up_to,) = conn.execute(
                f"select max(partition_date) from {INGESTED_FILES_TABLE}"
            ).fetchone()
        pending = pending_days(settings) if landing.is_dir() else []
        status.pending = [day for day in pending if day <= status.horizon]
    except DamagedDatabaseError as err:
        status.warehouse_note = f"{err}. {REBUILD_HINT}"
    except duckdb.Error as err:
        status.warehouse_note = (
            f"warehouse busy or unreadable (a run may be writing it): {str(err).splitlines()[0]}"
        )
    return status


def repair_when_idle(settings: LifecycleSettings) -> tuple[str | None, list[str]]:
    """Who holds the data folder now (None when nobody does) and, when nobody does, what an
    interrupted publication or rollback left that was repaired (the Parquet pointers, temporary
    files); the lock is taken only when there is something to repair."""
    held = data_lock.is_free(settings.data_dir) is False
    if held:
        holder = data_lock.read_holder(settings.data_dir)
        return (holder.describe() if holder else "another process"), []
    layout = MartLayout(settings.mart_dir, settings.published_mart_path.name)
    if not needs_recovery(layout):
        return None, []
    try:
        with data_lock.hold(settings.data_dir, "lifecycle status"):
            return None, repair(layout)
    except data_lock.DataFolderBusy as err:
        return (err.holder.describe() if err.holder else "another process"), []


def _span(span: tuple[dt.date, dt.date, int]) -> list[dt.date]:
    return [span[0] + dt.timedelta(days=offset) for offset in range((span[1] - span[0]).days + 1)]


def add_runs(status: MartStatus, instance, job_name: str = "build_mart_job", limit: int = 5) -> None:
    """The last runs of the job in the Dagster instance: id, status, window, start, duration."""
    import dagster as dg

    for record in instance.get_run_records(filters=dg.RunsFilter(job_name=job_name), limit=limit):
        run = record.dagster_run
        tags = run.tags
        window = tags.get("dagster/partition") or (
            f"{tags[RANGE_START_TAG]} to {tags[RANGE_END_TAG]}" if RANGE_START_TAG in tags else "-"
        )
        started = dt.datetime.fromtimestamp(record.start_time, dt.UTC) if record.start_time else None
        seconds = (record.end_time - record.start_time) if record.start_time and record.end_time else None
        status.runs.append(
            {
                "run_id": run.run_id,
                "status": run.status.value,
                "window": window,
                "trigger": tags.get("lifecycle/trigger", tags.get("dagster/schedule_name", "manual")),
                "started": started.strftime("%Y-%m-%d %H:%M:%S") if started else "-",
                "seconds": f"{seconds:.0f}" if seconds is not None else "-",
            }
        )


def format_status(status: MartStatus, now: dt.datetime) -> list[str]:
    lines = []
    if status.as_of_date is None:
        lines.append(f"Published mart: none yet at {status.published}: run `lifecycle run`")
    else:
        built = status.built_at.replace(tzinfo=dt.UTC) if status.built_at.tzinfo is None else status.built_at
        age_hours = (now - built).total_seconds() / 3600
        lines.append(
            f"Published mart: {status.published}\n"
            f"  as of {status.as_of_date}, version {status.version}, run {status.run_id}, "
            f"built {built:%Y-%m-%d %H:%M:%S} UTC ({age_hours:.1f} h ago)"
        )
    if status.running:
        lines.append(f"Running now: {status.running}")
    for repaired in status.repaired:
        lines.append(f"Repaired: {repaired} (left by an interrupted publication)")
    lines.append("Landing files:")
    for source, span in status.landed.items():
        shown = f"{span[0]} to {span[1]} ({span[2]} days)" if span else "none"
        lines.append(f"  {source:<13}{shown}")
    if status.warehouse_note:
        lines.append(f"Warehouse: {status.warehouse_note}")
    else:
        lines.append(f"Warehouse: landing days loaded up to {status.loaded_up_to}")
    if status.pending:
        shown = ", ".join(day.isoformat() for day in status.pending[:8]) + (
            " ..." if len(status.pending) > 8 else ""
        )
        lines.append(
            f"Pending: {len(status.pending)} landing day(s) new or changed since loaded: {shown} "
            "(`lifecycle run` loads them)"
        )
    else:
        lines.append("Pending: no new or changed landing files")
    if status.later:
        shown = ", ".join(status.later[:5]) + (" ..." if len(status.later) > 5 else "")
        lines.append(
            f"Later: {len(status.later)} day folder(s) dated after {status.horizon}, left for later runs: "
            f"{shown}"
        )
    if status.runs:
        lines.append("Last runs of build_mart_job (newest first):")
        lines.append(
            f"  {'run id':<38}{'status':<10}{'days':<26}{'trigger':<16}{'started (UTC)':<21}{'s':>6}"
        )
        for run in status.runs:
            lines.append(
                f"  {run['run_id']:<38}{run['status']:<10}{run['window']:<26}{run['trigger']:<16}"
                f"{run['started']:<21}{run['seconds']:>6}"
            )
    verdict = "UP TO DATE" if status.up_to_date else "NOT UP TO DATE"
    lines.append(f"Status: {verdict}")
    return lines
