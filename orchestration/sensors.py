"""Sensors, for deployments with the Dagster daemon: new landing files, and a report of every run.

``landing_sensor`` launches ``build_mart_job`` for exactly the days whose landing files are new or
changed (late or corrected data), one run per day.

`lifecycle run` writes the report itself after its in-process run; runs launched from the UI, a
schedule or a backfill get theirs from these two run status sensors (one on success, one on failure)
when the daemon runs. Both write ``<data dir>/reports/<run id>.html`` and ``latest.html`` and tag the
run with the path (``lifecycle/validation_report``). A run that already carries the tag is left
as it is.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.landing.contract import SOURCES
from orchestration.landing.folders import file_sha256, landing_day_files
from orchestration.landing.tables import INGESTED_FILES_TABLE
from orchestration.partitions import daily_partitions
from orchestration.report import REPORT_TAG, check_info_from_repository, reports_dir, write_run_report
from orchestration.resources import LifecycleSettings


def _write_report(context: dg.RunStatusSensorContext, settings: LifecycleSettings) -> dg.SkipReason | None:
    run = context.dagster_run
    if REPORT_TAG in run.tags:
        return dg.SkipReason(f"run {run.run_id} already has its report: {run.tags[REPORT_TAG]}")
    check_info = check_info_from_repository(context.repository_def) if context.repository_def else None
    path = write_run_report(
        context.instance,
        run.run_id,
        reports_dir(settings.data_dir),
        check_info=check_info,
        as_of_date=settings.as_of_date,
    )
    context.log.info(f"validation report of run {run.run_id} ({run.status.value}): {path}")
    return None


@dg.run_status_sensor(
    name="validation_report_on_success",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Writes the validation report of a succeeded run to <data dir>/reports/<run id>.html "
        "(and latest.html) and tags the run with its path (lifecycle/validation_report)."
    ),
)
def validation_report_on_success(
    context: dg.RunStatusSensorContext, settings: LifecycleSettings
) -> dg.SkipReason | None:
    """The validation report of every succeeded run of this code location."""
    return _write_report(context, settings)


@dg.run_failure_sensor(
    name="validation_report_on_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Writes the validation report of a failed run (failed checks with samples of failing rows, "
        "failed and skipped steps) to <data dir>/reports/<run id>.html (and latest.html) and tags the "
        "run with its path (lifecycle/validation_report)."
    ),
)
def validation_report_on_failure(
    context: dg.RunFailureSensorContext, settings: LifecycleSettings
) -> dg.SkipReason | None:
    """The validation report of every failed run of this code location."""
    return _write_report(context, settings)


# Per landing day (partition key) -> per data file (its path under the landing folder)
# -> [size, mtime_ns, sha256].
Fingerprints = dict[str, dict[str, list]]


def landing_fingerprints(landing_dir: Path, known: Fingerprints | None = None) -> Fingerprints:
    """The data files of every landing day with size, modification time and SHA-256.

    A file whose size and modification time match ``known`` keeps its known hash (nothing read);
    the others are hashed, so a file delivered again with the same content counts as unchanged.
    """
    known = known or {}
    days: Fingerprints = {}
    for source in SOURCES:
        for day, files in landing_day_files(landing_dir, source).items():
            key = day.isoformat()
            entry = days.setdefault(key, {})
            for path in files:
                relpath = path.relative_to(landing_dir).as_posix()
                stat = path.stat()
                size, mtime, sha = (known.get(key, {}).get(relpath) or [None, None, None])[:3]
                if size != stat.st_size or mtime != stat.st_mtime_ns or sha is None:
                    sha = file_sha256(path)
                entry[relpath] = [stat.st_size, stat.st_mtime_ns, sha]
    return days


def _content(files: dict[str, list]) -> dict[str, tuple]:
    return {path: (size, sha) for path, (size, _, sha) in files.items()}


def _digest(files: dict[str, list]) -> str:
    return hashlib.sha256(json.dumps(sorted(_content(files).items())).encode()).hexdigest()[:16]


def changed_days(current: Fingerprints, known: Fingerprints) -> list[str]:
    """The days whose files (paths, sizes, contents) differ from the known ones, new days included."""
    return sorted(
        day for day, files in current.items() if day not in known or _content(known[day]) != _content(files)
    )


def _loaded_fingerprints(warehouse: Path) -> Fingerprints | None:
    """What the warehouse loaded (raw.ingested_files), as fingerprints without modification time;
    None when it cannot be read (a run holds its write lock)."""
    from orchestration.warehouse import connect

    if not warehouse.exists():
        return {}
    try:
        with connect(warehouse, read_only=True) as conn:
            rows = conn.execute(
                f"select partition_date, source_file, file_bytes, file_sha256 from {INGESTED_FILES_TABLE}"
            ).fetchall()
    except duckdb.Error:  # locked by a running writer, or no raw schema yet
        return None
    loaded: Fingerprints = {}
    for day, path, size, sha in rows:
        loaded.setdefault(day.isoformat(), {})[path] = [size, None, sha]
    return loaded


@dg.sensor(
    name="landing_sensor",
    job_name="build_mart_job",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Launches build_mart_job for exactly the landing days whose files are new or changed (late or "
        "corrected data): one run per day, keyed by the day and its files, so a day is never launched "
        "twice for the same files. The first tick compares the landing folder with what the warehouse "
        "loaded. Days that are not over yet (UTC) or before the first partition wait."
    ),
)
def landing_sensor(
    context: dg.SensorEvaluationContext, settings: LifecycleSettings
) -> dg.SensorResult | dg.SkipReason:
    """Runs for the new and changed landing days; the cursor holds each day's file digest."""
    landing = Path(settings.landing_dir)
    if not landing.is_dir():
        return dg.SkipReason(f"landing folder {landing} does not exist")
    if context.cursor:
        known: Fingerprints = json.loads(context.cursor)
    else:
        loaded = _loaded_fingerprints(settings.warehouse_path)
        if loaded is None:
            return dg.SkipReason(f"the warehouse {settings.warehouse_path} is busy; the first tick retries")
        known = loaded
    current = landing_fingerprints(landing, known)
    first = dt.date.fromisoformat(daily_partitions.get_first_partition_key())
    last_key = daily_partitions.get_last_partition_key()
    last = dt.date.fromisoformat(last_key) if last_key else first
    runs, waiting = [], []
    for day in changed_days(current, known):
        if not first <= dt.date.fromisoformat(day) <= last:
            waiting.append(day)
            continue
        digest = _digest(current[day])
        runs.append(
            dg.RunRequest(
                run_key=f"landing:{day}:{digest}",
                partition_key=day,
                tags={"lifecycle/trigger": "landing_sensor"},
            )
        )
    # What is known after this tick: every day as it is now, except the waiting days (as before).
    cursor = {day: files for day, files in current.items() if day not in waiting}
    cursor.update({day: known[day] for day in waiting if day in known})
    if waiting:
        context.log.info(f"landing days outside the partitions {first} to {last} wait: {', '.join(waiting)}")
    if not runs:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("no new or changed landing files"),
            cursor=json.dumps(cursor, sort_keys=True),
        )
    context.log.info(
        f"new or changed landing files for {len(runs)} day(s): {', '.join(r.partition_key for r in runs)}"
    )
    return dg.SensorResult(run_requests=runs, cursor=json.dumps(cursor, sort_keys=True))


sensors = [landing_sensor, validation_report_on_success, validation_report_on_failure]
