"""Checks on what the loader did: the share of quarantined rows per day (blocking) and days
delivered empty (a warning)."""

import dagster as dg
import duckdb

from expectations.runner import jsonable
from orchestration.checks.results import SAMPLE_ROWS, failure_metadata
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
        select partition_date, source_file, row_number, rule, detail, record from raw.quarantine
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
