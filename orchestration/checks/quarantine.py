"""Checks on what the loader did: the share of quarantined rows per day (blocking); days
delivered empty, files with columns the contract does not know and what the landing folder holds
that no run loads (warnings)."""

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb

from expectations.runner import jsonable
from orchestration.checks.results import SAMPLE_ROWS, failure_metadata
from orchestration.landing.contract import FILE_FORMATS
from orchestration.landing.folders import scan_source
from orchestration.partitions import last_complete_day, last_loadable_day
from orchestration.resources import LifecycleSettings
from orchestration.warehouse import connect

# A quarantine check samples the quarantined rows of at most this many days over the threshold.
_SAMPLED_PARTITIONS = 10


def build_quarantine_share_check(source: str) -> dg.AssetChecksDefinition:
    """A blocking check: no (source, day) partition may quarantine more than the allowed share of rows."""

    @dg.asset_check(
        asset=dg.AssetKey(["raw", source]),
        name=f"raw_{source}__quarantine_share",
        blocking=True,
        description=(
            f"No day of raw.{source} has more than LIFECYCLE_MAX_QUARANTINE_SHARE (default 1%) of its "
            "rows in raw.quarantine."
        ),
    )
    def _check(settings: LifecycleSettings) -> dg.AssetCheckResult:
        threshold = settings.max_quarantine_share
        with connect(settings.warehouse_path, read_only=True) as conn:
            over = conn.execute(
                """
                select partition_date, sum(rows_read) as rows_read, sum(rows_quarantined) as rows_quarantined
                from raw.ingested_files
                where source = $source
                group by partition_date
                having sum(rows_quarantined) > $threshold * sum(rows_read)
                order by partition_date
                """,
                {"source": source, "threshold": threshold},
            ).fetchall()
            rules = conn.execute(
                """
                select partition_date, rule, count(*) from raw.quarantine
                where source = $source group by all order by partition_date, count(*) desc, rule
                """,
                {"source": source},
            ).fetchall()
            (total_quarantined,) = conn.execute(
                "select count(*) from raw.quarantine where source = $source", {"source": source}
            ).fetchone()
            samples = _quarantine_samples(conn, source, [day for day, _, _ in over[:_SAMPLED_PARTITIONS]])
        rules_by_day: dict = {}
        for day, rule, count in rules:
            rules_by_day.setdefault(day, []).append(f"{rule} {count:,}")
        lines = [
            f"raw.{source} {day}: FAILED {quarantined:,} of {read:,} rows quarantined "
            f"({quarantined / read:.1%} > {threshold:.1%}): {', '.join(rules_by_day.get(day, []))}. "
            f"See raw.quarantine; fix and re-deliver the day's files."
            for day, read, quarantined in over
        ]
        failures = [
            {
                "table": f"raw.{source}",
                "rule": f"at most {threshold:.1%} of a day's rows quarantined: {day}",
                "failing_count": int(quarantined),
                "rows_checked": int(read),
                "detail": f"{quarantined:,} of {read:,} rows quarantined ({quarantined / read:.1%}): "
                + ", ".join(rules_by_day.get(day, [])),
                "sample_rows": samples.get(day, []),
            }
            for day, read, quarantined in over
        ]
        return dg.AssetCheckResult(
            passed=not over,
            severity=dg.AssetCheckSeverity.ERROR,
            description="\n".join(lines)
            or f"raw.{source}: every day within the {threshold:.1%} quarantine threshold "
            f"({total_quarantined:,} rows quarantined in all)",
            metadata={
                "threshold": threshold,
                "partitions_over_threshold": len(over),
                "rows_quarantined": total_quarantined,
                **failure_metadata(failures),
            },
        )

    return _check


def _quarantine_samples(conn: duckdb.DuckDBPyConnection, source: str, days: list) -> dict:
    """The first SAMPLE_ROWS quarantined rows (file order) of each of ``days``: day -> rows."""
    if not days:
        return {}
    cursor = conn.execute(
        f"""
        select partition_date, source_file, row_number, line_number, rule, detail, record from raw.quarantine
        where source = $source and list_contains($days, partition_date)
        qualify row_number() over (partition by partition_date order by source_file, row_number)
            <= {SAMPLE_ROWS}
        order by partition_date, source_file, row_number
        """,
        {"source": source, "days": days},
    )
    columns = [column[0] for column in cursor.description]
    samples: dict = {}
    for row in cursor.fetchall():
        record = dict(zip(columns, map(jsonable, row), strict=True))
        samples.setdefault(row[0], []).append(record)
    return samples


quarantine_checks = [build_quarantine_share_check(source) for source in ("users", "events", "transactions")]


def build_empty_days_check(source: str) -> dg.AssetChecksDefinition:
    """A warning, not blocking: days of ``source`` delivered as files without a single data row.

    The landing contract accepts an empty day (it loads as an empty partition and replaces the
    rows the day had), so publication goes on; but a whole day without a row is more often a
    broken export than a quiet day, so the check warns for as long as the day stays empty.
    """

    @dg.asset_check(
        asset=dg.AssetKey(["raw", source]),
        name=f"raw_{source}__empty_days",
        blocking=False,
        description=(
            f"Warns (never blocks) while a day of raw.{source} was delivered as files without a "
            "single data row: a valid delivery, but more often a broken export than a quiet day."
        ),
    )
    def _check(settings: LifecycleSettings) -> dg.AssetCheckResult:
        with connect(settings.warehouse_path, read_only=True) as conn:
            days = [
                day.isoformat()
                for (day,) in conn.execute(
                    "select partition_date from raw.ingested_files where source = ? "
                    "group by partition_date having sum(rows_read) = 0 order by partition_date",
                    [source],
                ).fetchall()
            ]
        shown = ", ".join(days[:10]) + (f" and {len(days) - 10} more" if len(days) > 10 else "")
        return dg.AssetCheckResult(
            passed=not days,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"raw.{source}: WARNING {len(days):,} day(s) delivered without a single row: {shown}. "
                "If a day should have rows, re-deliver its files; the next run reloads it."
                if days
                else f"raw.{source}: no day was delivered empty"
            ),
            metadata={"empty_days": len(days), "days": dg.MetadataValue.json(days)},
        )

    return _check


empty_days_checks = [build_empty_days_check(source) for source in ("users", "events", "transactions")]


def _shown(items: list[str], limit: int = 10) -> str:
    return "; ".join(items[:limit]) + (f"; and {len(items) - limit:,} more" if len(items) > limit else "")


def build_unknown_columns_check(source: str) -> dg.AssetChecksDefinition:
    """A warning, not blocking: loaded files of ``source`` with columns the landing contract does
    not know. Their rows load (the column is recorded in raw.ingested_files, not loaded), but the
    column may be a contract column under another name, or data the mart should have."""

    @dg.asset_check(
        asset=dg.AssetKey(["raw", source]),
        name=f"raw_{source}__unknown_columns",
        blocking=False,
        description=(
            f"Warns (never blocks) while a loaded file of raw.{source} has a column the landing "
            "contract does not know (recorded, not loaded): a renamed column or data the mart lacks."
        ),
    )
    def _check(settings: LifecycleSettings) -> dg.AssetCheckResult:
        with connect(settings.warehouse_path, read_only=True) as conn:
            files = conn.execute(
                "select source_file, extra_columns from raw.ingested_files "
                "where source = ? and len(extra_columns) > 0 order by source_file",
                [source],
            ).fetchall()
        columns = sorted({name for _, names in files for name in names})
        failures = []
        if files:
            failures.append(
                {
                    "table": f"raw.{source}",
                    "rule": "every column of a landing file is in the landing contract",
                    "failing_count": len(files),
                    "detail": f"{len(files):,} file(s) with the unknown column(s) {', '.join(columns)}",
                    "sample_rows": [
                        {"source_file": path, "unknown_columns": ", ".join(names)}
                        for path, names in files[:SAMPLE_ROWS]
                    ],
                }
            )
        return dg.AssetCheckResult(
            passed=not files,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"raw.{source}: WARNING {len(files):,} loaded file(s) have column(s) the landing contract "
                f"does not know, not loaded: "
                + _shown([f"{path}: {', '.join(names)}" for path, names in files])
                + ". If it is a contract column under another name, rename it and re-deliver the file; "
                "if the mart should have it, add it to orchestration/landing/contract.py."
                if files
                else f"raw.{source}: every loaded file has only columns of the landing contract"
            ),
            metadata={
                "files_with_unknown_columns": len(files),
                "unknown_columns": ", ".join(columns),
                **failure_metadata(failures),
            },
        )

    return _check


unknown_columns_checks = [build_unknown_columns_check(s) for s in ("users", "events", "transactions")]


def build_landing_folder_check(source: str) -> dg.AssetChecksDefinition:
    """A warning, not blocking: what ``<landing>/<source>/`` holds that no run loads now.

    Day folders dated after the last day a run may load (the as-of date, or the last complete UTC
    day) are left for later runs; folders that are not a real date, files without a data file
    extension, hidden or temporary names, sub-folders of day folders and broken symbolic links are
    never read. The same list is in the ingest asset's metadata (``ingestion``)."""

    @dg.asset_check(
        asset=dg.AssetKey(["raw", source]),
        name=f"raw_{source}__landing_folder",
        blocking=False,
        description=(
            f"Warns (never blocks) while <landing>/{source}/ holds what no run loads now: day folders "
            "dated after the as-of date or the last complete UTC day (left for later runs), folders "
            "that are not a real date, files that are not data files, hidden names, sub-folders and "
            "broken symbolic links."
        ),
    )
    def _check(settings: LifecycleSettings) -> dg.AssetCheckResult:
        until = last_loadable_day(settings.parsed_as_of_date())
        # The folder of the day in progress (UTC) is expected: it loads once the day is over.
        in_progress = last_complete_day() + dt.timedelta(days=1)
        scanned = scan_source(Path(settings.landing_dir), source)
        later = [day for day in scanned.later_than(until) if day != in_progress]
        waiting = in_progress in scanned.later_than(until)
        rows = [
            {
                "path": f"{source}/{day.isoformat()}/",
                "why": f"dated after {until}, the last day a run loads now: left for a later run",
            }
            for day in later
        ]
        rows += [{"path": entry.path, "why": entry.reason} for entry in scanned.all_ignored()]
        failures = []
        if rows:
            failures.append(
                {
                    "table": f"<landing>/{source}/",
                    "rule": f"every entry is a day folder up to {until} holding data files",
                    "failing_count": len(rows),
                    "detail": f"{len(rows):,} path(s) not loaded",
                    "sample_rows": rows[:SAMPLE_ROWS],
                }
            )
        return dg.AssetCheckResult(
            passed=not rows,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"raw.{source}: WARNING {len(rows):,} path(s) under the landing folder are not loaded: "
                + _shown([f"{row['path']} ({row['why']})" for row in rows])
                + f". Day folders are <source>/YYYY-MM-DD/ holding {', '.join(FILE_FORMATS)} files; a day "
                "folder dated later loads once its day is over (or as of a later date)."
                if rows
                else f"raw.{source}: every entry of the landing folder is a day folder up to {until} "
                "holding data files"
            )
            + (
                f" (the folder of the day in progress, {source}/{in_progress.isoformat()}/, loads once "
                "the day is over)"
                if waiting
                else ""
            ),
            metadata={
                "last_loadable_day": until.isoformat(),
                "later_day_folders": len(later),
                "paths_not_loaded": len(rows),
                **failure_metadata(failures),
            },
        )

    return _check


landing_folder_checks = [build_landing_folder_check(s) for s in ("users", "events", "transactions")]
