"""Landing files -> ``raw`` schema: per-day, idempotent, quarantining loader.

The landing contract (``orchestration/landing/contract.py``) says what a delivery holds; this module
loads it into DuckDB, one **partition** (source, UTC day folder) at a time:

* **Idempotent per partition.** A partition's fingerprint is the sorted (relative path, size,
  SHA-256) of its data files, stored in ``raw.ingested_files``. An unchanged partition is skipped
  without touching anything; a new or changed one is replaced atomically: the delete of its rows
  from ``raw.<source>``, ``raw.quarantine`` and ``raw.ingested_files`` and the inserts of the new
  ones are in one transaction (consecutive partitions of one call share it, up to
  ``COMMIT_ROWS`` rows). A day folder that disappeared stays loaded and is reported.
* **Row problems** go to ``raw.quarantine`` with a rule code, a sentence naming the column and
  the value (control characters escaped), the original row as JSON and the row's line; the other
  rows load. A CSV row with the wrong number of values (``malformed_row``), a control character in
  a value and a transaction in another currency than the mart's one (:func:`configured_currency`)
  are row problems too. For every file ``rows_read == rows_loaded + rows_quarantined`` (checked
  before the commit).
* **File problems** (unreadable, truncated, not UTF-8, CR-only line endings, NUL padding, no CSV
  header, a required column missing, an unknown column beside a missing optional column with a
  default) fail the partition: nothing of it changes, the error names the file (and the line and
  column where it applies) and says what to do, and the other partitions and sources still load.
  ``ingest_source`` reports them and does not raise; it raises only for programming and database
  errors.
* **What is not read** is reported with the reason: day folders after ``until`` (left for later
  runs), folders that are not a real date, other files, hidden names, sub-folders, broken links.

CSV and JSON lines are read with pyarrow as text (UTF-8 checked), Parquet as typed; every rule
is a vectorised DuckDB expression (no Python loop over rows), evaluated with the connection's
``TimeZone`` set to UTC for the duration of the call. No Dagster here: the ingest asset calls
:func:`ensure_raw_tables` and :func:`ingest_source`.

Row numbers are 1-based data rows of the file (a malformed CSV row keeps its place), blank lines
not counted. ``raw.quarantine.line_number`` is the physical line the row starts on (the CSV
header is line 1, blank lines count, a quoted value spanning lines moves the later rows down; see
``orchestration/landing/text.py``), computed only for files with quarantined rows.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from orchestration.landing.contract import (
    CURRENCY_ENV,
    CURRENCY_PATTERN,
    DEFAULT_CURRENCY,
    SourceContract,
)
from orchestration.landing.folders import (
    DayFolder,
    contract_for,
    is_unchanged,
    scan_source,
    stored_fingerprints,
)
from orchestration.landing.readers import FILE_ERRORS, ROW_COLUMN, ReadFile, describe_file_error, read_file
from orchestration.landing.reports import FileReport, PartitionReport, SourceReport
from orchestration.landing.rules import (
    VISIBLE_MACRO,
    FileSql,
    across_sql,
    key_columns,
    loaded_elsewhere_sql,
    not_quarantined,
    screen_sql,
    uniques,
    visible_macro_sql,
    within_sql,
)
from orchestration.landing.tables import (
    INGESTED_FILES_TABLE,
    QUARANTINE_TABLE,
    RAW_SCHEMA,
    ensure_raw_tables,
    ident,
    lit,
)

#: Consecutive partitions of one call share a transaction until it holds this many rows read or
#: partitions. Each partition is still replaced as a whole or not at all; sharing matters because
#: a DuckDB commit costs time in proportion to the table's size (measured on 2 cores: 4 ms with
#: 0.3M rows in raw.events, 25 ms with 9M), which made one commit per day ~45% of a year's backfill.
COMMIT_ROWS = 1_000_000
COMMIT_PARTITIONS = 64
LINES_VIEW = "_ingest_lines"


def configured_currency(currency: str | None = None) -> str:
    """The mart's one currency: ``currency``, else ``$LIFECYCLE_CURRENCY``, else ``USD``.

    The mart sums amounts and converts nothing, so the loader quarantines a transaction in any
    other currency (rule ``unexpected_currency``). Raises ``ValueError`` unless it is three
    upper-case letters (an ISO 4217 code).
    """
    value = currency if currency is not None else (os.environ.get(CURRENCY_ENV) or DEFAULT_CURRENCY)
    if not re.fullmatch(CURRENCY_PATTERN, value):
        raise ValueError(
            f"the mart's currency {value!r} (from {CURRENCY_ENV} or the caller) is not an ISO 4217 "
            f"code of three upper-case letters, e.g. {DEFAULT_CURRENCY}"
        )
    return value


# ---------------------------------------------------------------------------------------------
# Loading


@contextmanager
def utc_session(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    (previous,) = conn.execute("select current_setting('TimeZone')").fetchall()[0]
    conn.execute("set session TimeZone = 'UTC'")
    try:
        yield
    finally:
        conn.execute(f"set session TimeZone = {lit(previous)}")


@contextmanager
def quarantine_scratch(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Scratch temp tables: the current partition's quarantined rows (emptied per partition) and
    its checked keys (``_ingest_keys``, replaced per partition)."""
    conn.execute(
        "create or replace temp table _ingest_bad "
        "(_file_index INTEGER, _row_number BIGINT, _rule VARCHAR, _detail VARCHAR)"
    )
    conn.execute(visible_macro_sql())
    try:
        yield
    finally:
        conn.execute("drop table if exists _ingest_bad")
        conn.execute("drop table if exists _ingest_keys")
        conn.execute(f"drop macro if exists {VISIBLE_MACRO}")


def _check_counts(report: FileReport) -> None:
    if report.rows_read != report.rows_loaded + report.rows_quarantined:
        raise AssertionError(
            f"{report.path}: {report.rows_read} rows read but {report.rows_loaded} loaded + "
            f"{report.rows_quarantined} quarantined; this is a bug in orchestration/landing/loader.py"
        )


def _count(conn: duckdb.DuckDBPyConnection, sql: str) -> int:
    """Run an INSERT and return how many rows it inserted."""
    ((count,),) = conn.execute(sql).fetchall()
    return count


def _load_partition(
    conn: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    folder: DayFolder,
    loaded_at: dt.datetime,
    *,
    previously_loaded: bool,
    currency: str,
) -> PartitionReport:
    """Replace one partition inside the caller's open transaction, or report it failed untouched.

    Every file is read before anything is written; a file-level problem fails the partition
    without a single write.
    """
    source, day = contract.name, folder.partition_date
    reports = [FileReport(source, day, f.relpath, f.file_format, file_bytes=f.size) for f in folder.files]
    reads: list[ReadFile] = []
    for index, (file, report) in enumerate(zip(folder.files, reports, strict=True)):
        try:
            rf = read_file(conn, contract, file, index)
        except FILE_ERRORS as exc:
            report.error = f"{file.relpath}: {describe_file_error(exc)}"
            continue
        report.file_bytes, report.file_sha256, report.extra_columns = rf.size, rf.sha256, rf.extra_columns
        reads.append(rf)
    errors = [r.error for r in reports if r.error]
    if errors:
        return PartitionReport(
            source,
            day,
            "failed",
            files=reports,
            error=(
                f"{source} {day.isoformat()}: {len(errors)} of {len(reports)} file(s) cannot be loaded, "
                f"so this day keeps the rows it had: {'; '.join(errors)}. Re-deliver the file(s) "
                "and run the ingest again."
            ),
        )

    files = [FileSql(contract, rf, f"_ingest_file_{rf.index}", currency) for rf in reads]
    by_rule: dict[str, int] = {}
    try:
        for f in files:
            conn.register(f.view, f.rf.table)
            reports[f.rf.index].rows_read = f.rf.table.num_rows
        keys = key_columns(contract)
        checked = " union all ".join(f"({f.checked_select(day, keys)})" for f in files)
        conn.execute(f"create or replace temp table _ingest_keys as {checked}")
        failing, *screen = conn.execute(screen_sql(contract)).fetchall()[0]
        unique_rules = uniques(contract)
        ranges = [
            None if screen[3 * k + 1] is None else (screen[3 * k + 1], screen[3 * k + 2])
            for k in range(len(unique_rules))
        ]
        elsewhere = conn.execute(loaded_elsewhere_sql(contract, day, ranges)).fetchall()[0]
        quarantined = 0
        if failing:
            union = " union all ".join(f"({f.failing_select(day)})" for f in files)
            quarantined = _count(conn, f"insert into _ingest_bad {union}")
        for k, u in enumerate(unique_rules):
            if screen[3 * k]:
                quarantined += _count(conn, within_sql(u, [f.rf.file.relpath for f in files]))
            if elsewhere[k]:
                low, high = ranges[k]
                quarantined += _count(conn, across_sql(contract, u, day, low, high))
        if quarantined:
            for index, rule, count in conn.execute(
                "select _file_index, _rule, count(*) from _ingest_bad group by all order by all"
            ).fetchall():
                reports[index].rows_quarantined += count
                by_rule[rule] = by_rule.get(rule, 0) + count

        if previously_loaded:  # rows of a partition exist only with its raw.ingested_files rows
            conn.execute(f"delete from {RAW_SCHEMA}.{source} where _partition_date = ?", [day])
            conn.execute(
                f"delete from {QUARANTINE_TABLE} where source = ? and partition_date = ?", [source, day]
            )
            conn.execute(
                f"delete from {INGESTED_FILES_TABLE} where source = ? and partition_date = ?", [source, day]
            )
        names = ", ".join(ident(c) for c in contract.column_names)
        for f in files:
            report = reports[f.rf.index]
            # Without quarantined rows the scan keeps the file's order; otherwise sort it back.
            keep, order = (
                (f"where {not_quarantined('r')}", "order by r._row_number")
                if report.rows_quarantined
                else ("", "")
            )
            ((report.rows_loaded,),) = conn.execute(
                f"""
                insert into {RAW_SCHEMA}.{source}
                    ({names}, _source_file, _partition_date, _row_number, _loaded_at)
                select {names}, ?, ?, _row_number, ?
                from ({f.typed_select()}) as r {keep} {order}
                """,
                [f.rf.file.relpath, day, loaded_at],
            ).fetchall()
            _check_counts(report)
            if report.rows_quarantined:
                _insert_quarantined(conn, f, source, day, loaded_at)
        if quarantined:
            conn.execute("delete from _ingest_bad")  # empty again for the next partition
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(reports))
        conn.execute(
            f"insert into {INGESTED_FILES_TABLE} values {values}",
            [
                value
                for r in reports
                for value in (source, day, r.path, r.file_format, r.file_bytes, r.file_sha256, r.rows_read,
                              r.rows_loaded, r.rows_quarantined, r.extra_columns, loaded_at)
            ],
        )  # fmt: skip
    finally:
        for f in files:
            with suppress(duckdb.Error):
                conn.unregister(f.view)
    return PartitionReport(
        source,
        day,
        "loaded",
        files=reports,
        rows_read=sum(r.rows_read for r in reports),
        rows_loaded=sum(r.rows_loaded for r in reports),
        rows_quarantined=sum(r.rows_quarantined for r in reports),
        quarantine_by_rule=dict(sorted(by_rule.items())),
    )


def _insert_quarantined(
    conn: duckdb.DuckDBPyConnection, f: FileSql, source: str, day: dt.date, loaded_at: dt.datetime
) -> None:
    """The quarantined rows of one file into raw.quarantine, with their original record and line."""
    lines = f.rf.row_lines()
    line_sql, join = "cast(null as bigint)", ""
    if lines is not None and len(lines) == f.rf.table.num_rows:
        conn.register(LINES_VIEW, pa.table({"row_number": np.arange(1, len(lines) + 1), "line": lines}))
        line_sql, join = "l.line", f"left join {LINES_VIEW} as l on l.row_number = b._row_number"
    try:
        conn.execute(
            f"""
            insert into {QUARANTINE_TABLE}
                (source, partition_date, source_file, row_number, rule, detail, record, loaded_at,
                 line_number)
            select ?, ?, ?, b._row_number, b._rule, b._detail, {f.record()}, ?, {line_sql}
            from _ingest_bad as b join {f.view} as f on f.{ROW_COLUMN} = b._row_number {join}
            where b._file_index = {f.rf.index}
            order by b._row_number
            """,
            [source, day, f.rf.file.relpath, loaded_at],
        )
    finally:
        if join:
            conn.unregister(LINES_VIEW)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def ingest_source(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    source: str,
    *,
    loaded_at: dt.datetime,
    partitions: Iterable[dt.date] | None = None,
    force: bool = False,
    currency: str | None = None,
    until: dt.date | None = None,
) -> SourceReport:
    """Load the new and changed day folders of one source into ``raw.<source>``.

    Parameters
    ----------
    conn
        A read-write DuckDB connection, not inside a transaction. Each partition is replaced
        atomically (consecutive partitions share a transaction up to ``COMMIT_ROWS`` rows read or
        ``COMMIT_PARTITIONS`` partitions); the session ``TimeZone`` is UTC during the call and
        restored after.
    landing_dir
        The landing folder holding ``<source>/<YYYY-MM-DD>/<files>``.
    source
        ``users``, ``events`` or ``transactions``.
    loaded_at
        Written to ``_loaded_at`` of the loaded rows (naive UTC; an aware datetime is converted).
    partitions
        Days to consider (default: every day folder with a data file). A day without landing
        files is reported in ``missing_partitions``; its loaded rows, if any, stay.
    force
        Reload the partitions even when their fingerprint is unchanged.
    currency
        The mart's one currency (default :func:`configured_currency`: ``$LIFECYCLE_CURRENCY`` or
        ``USD``); a transaction in another one is quarantined (``unexpected_currency``). A loaded
        day is not checked again when it changes, unless reloaded (``force``).
    until
        The last day this call may load (the run's as-of date, or the last complete UTC day; None:
        no limit). Day folders dated after it are not loaded, even when asked for, and are reported
        in ``later_partitions``: a folder of a day that is not over yet (or dated in the future by
        mistake) waits for a later run instead of moving the data past the as-of date.

    Returns
    -------
    SourceReport
        Per partition: ``loaded``, ``unchanged`` or ``failed`` (a file-level problem, see the
        module docstring). Failed partitions are reported, not raised: the caller decides (the
        ingest asset fails after every other partition loaded).

    Raises
    ------
    ValueError
        For an unknown source or a currency that is not three upper-case letters. Database
        errors and bugs propagate after the open transaction is rolled back (partitions committed
        before stay loaded; the next run redoes the others).
    """
    started = time.perf_counter()
    contract = contract_for(source)
    currency = configured_currency(currency)
    landing_dir = Path(landing_dir)
    loaded_at = _naive_utc(loaded_at)
    ensure_raw_tables(conn)
    scanned = scan_source(landing_dir, source)
    days = scanned.days
    report = SourceReport(
        source, later_partitions=scanned.later_than(until), ignored_paths=scanned.all_ignored()
    )
    with utc_session(conn), quarantine_scratch(conn):
        stored = stored_fingerprints(conn, source)
        if partitions is None:
            wanted = sorted(days)
            report.missing_partitions = sorted(set(stored) - set(days))
        else:
            wanted = sorted({dt.date(d.year, d.month, d.day) for d in partitions})
            report.missing_partitions = [d for d in wanted if d not in days]
        if until is not None:
            wanted = [day for day in wanted if day <= until]
        pending: list[PartitionReport] = []  # loaded in the open transaction, not committed yet
        in_transaction = False
        try:
            for day in wanted:
                folder = days.get(day)
                if folder is None:
                    continue
                if not force and is_unchanged(folder, stored.get(day)):
                    report.partitions.append(PartitionReport(source, day, "unchanged"))
                    continue
                if not in_transaction:
                    conn.begin()
                    in_transaction = True
                pending.append(
                    _load_partition(
                        conn, contract, folder, loaded_at, previously_loaded=day in stored, currency=currency
                    )
                )
                if sum(p.rows_read for p in pending) >= COMMIT_ROWS or len(pending) >= COMMIT_PARTITIONS:
                    conn.commit()
                    in_transaction = False
                    report.partitions += pending
                    pending = []
            if in_transaction:
                conn.commit()
                in_transaction = False
                report.partitions += pending
        except BaseException:
            if in_transaction:
                conn.rollback()
            raise
    report.partitions.sort(key=lambda p: p.partition_date)
    report.seconds = time.perf_counter() - started
    return report
