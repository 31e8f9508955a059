"""Landing files -> ``raw`` schema: per-day, idempotent, quarantining loader.

The landing contract (``models_py/landing_contract.py``) says what a delivery holds; this module
loads it into DuckDB, one **partition** (source, UTC day folder) at a time:

* **Idempotent per partition.** A partition's fingerprint is the sorted (relative path, size,
  SHA-256) of its data files, stored in ``raw.ingested_files``. An unchanged partition is skipped
  without touching anything; a new or changed one is replaced atomically: the delete of its rows
  from ``raw.<source>``, ``raw.quarantine`` and ``raw.ingested_files`` and the inserts of the new
  ones are in one transaction (consecutive partitions of one call share it, up to
  ``COMMIT_ROWS`` rows). A day folder that disappeared stays loaded and is reported.
* **Row problems** go to ``raw.quarantine`` with a rule code, a sentence naming the column and
  the value, and the original row as JSON; the other rows load. A transaction in another currency
  than the mart's one (:func:`configured_currency`) is a row problem too. For every file
  ``rows_read == rows_loaded + rows_quarantined`` (checked before the commit).
* **File problems** (unreadable, truncated, not UTF-8, no CSV header, a required column missing)
  fail the partition: nothing of it changes, the error names the file and says what to do, and
  the other partitions and sources still load. ``ingest_source`` reports them and does not raise;
  it raises only for programming and database errors.

CSV and JSON lines are read with pyarrow as text (UTF-8 checked), Parquet as typed; every rule
is a vectorised DuckDB expression (no Python loop over rows), evaluated with the connection's
``TimeZone`` set to UTC for the duration of the call. No Dagster here: the ingest asset calls
:func:`ensure_raw_tables` and :func:`ingest_source`.

Row numbers are 1-based data rows of the file, blank lines not counted: for CSV the line is
``row_number + 1`` (the header is line 1) unless blank lines or quoted values spanning lines come
before; for JSON lines the row number is the line number unless blank lines come before.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from models_py.landing_contract import (
    CONTRACTS,
    CURRENCY_ENV,
    CURRENCY_PATTERN,
    DECIMAL_PRECISION,
    DECIMAL_SCALE,
    DEFAULT_CURRENCY,
    FILE_FORMATS,
    ID_CHARACTERS,
    ID_MAX_LENGTH,
    SOURCES,
    TIMESTAMP_PATTERN,
    Column,
    SourceContract,
)

RAW_SCHEMA = "raw"
QUARANTINE_TABLE = f"{RAW_SCHEMA}.quarantine"
INGESTED_FILES_TABLE = f"{RAW_SCHEMA}.ingested_files"

# ID_PATTERN as a length test and an unbounded class: RE2 compiles {1,64} into 64 states, per query.
_ID_CHARS = f"[{ID_CHARACTERS}]+"
_DECIMAL = f"DECIMAL({DECIMAL_PRECISION},{DECIMAL_SCALE})"
_RAW_TYPES = {"string": "VARCHAR", "enum": "VARCHAR", "timestamp": "TIMESTAMP", "decimal": _DECIMAL}
PROVENANCE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_file", "VARCHAR"),
    ("_partition_date", "DATE"),
    ("_row_number", "BIGINT"),
    ("_loaded_at", "TIMESTAMP"),
)
_QUARANTINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source", "VARCHAR NOT NULL"),
    ("partition_date", "DATE NOT NULL"),
    ("source_file", "VARCHAR NOT NULL"),
    ("row_number", "BIGINT NOT NULL"),
    ("rule", "VARCHAR NOT NULL"),
    ("detail", "VARCHAR NOT NULL"),
    ("record", "VARCHAR"),
    ("loaded_at", "TIMESTAMP NOT NULL"),
)
_INGESTED_FILES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source", "VARCHAR NOT NULL"),
    ("partition_date", "DATE NOT NULL"),
    ("source_file", "VARCHAR NOT NULL"),
    ("file_format", "VARCHAR NOT NULL"),
    ("file_bytes", "BIGINT NOT NULL"),
    ("file_sha256", "VARCHAR NOT NULL"),
    ("rows_read", "BIGINT NOT NULL"),
    ("rows_loaded", "BIGINT NOT NULL"),
    ("rows_quarantined", "BIGINT NOT NULL"),
    ("extra_columns", "VARCHAR[] NOT NULL"),
    ("loaded_at", "TIMESTAMP NOT NULL"),
)

#: Consecutive partitions of one call share a transaction until it holds this many rows read or
#: partitions. Each partition is still replaced as a whole or not at all; sharing matters because
#: a DuckDB commit costs time in proportion to the table's size (measured on 2 cores: 4 ms with
#: 0.3M rows in raw.events, 25 ms with 9M), which made one commit per day ~45% of a year's backfill.
COMMIT_ROWS = 1_000_000
COMMIT_PARTITIONS = 64

# Helper columns added to each file's Arrow table; a file may not use these names.
_ROW = "__ingest_row_number__"
_RECORD = "__ingest_record__"
_DAY_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")
# A JSON line never holds a raw control character, so this delimiter keeps each line whole.
_JSONL_DELIMITER = "\x1f"
_SHOWN_VALUE_CHARS = 80

PartitionStatus = Literal["loaded", "unchanged", "failed"]


class LandingFileError(Exception):
    """A landing file cannot be loaded as a whole (its partition fails)."""


# Exceptions that mean "this file is bad", not "this code or the database is broken".
_FILE_ERRORS = (LandingFileError, pa.ArrowException, OSError, EOFError, UnicodeError, zlib.error, csv.Error)


# ---------------------------------------------------------------------------------------------
# Reports


@dataclass
class FileReport:
    """What happened to one data file. Counts are zero when its partition failed."""

    source: str
    partition_date: dt.date
    path: str
    file_format: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    extra_columns: list[str] = field(default_factory=list)
    error: str | None = None
    file_bytes: int = 0
    file_sha256: str | None = None


@dataclass
class PartitionReport:
    """What happened to one (source, day) in this run.

    ``status``: ``loaded`` (replaced by this run), ``unchanged`` (same fingerprint as the loaded
    version, not read again: counts are zero and ``files`` is empty) or ``failed`` (a file-level
    problem; the partition keeps its previous rows; ``error`` says which file and what to do).
    """

    source: str
    partition_date: dt.date
    status: PartitionStatus
    files: list[FileReport] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    ignored_files: list[str] = field(default_factory=list)

    @property
    def quarantine_share(self) -> float:
        """Quarantined rows / rows read (0.0 when nothing was read)."""
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


@dataclass
class SourceReport:
    """What one ``ingest_source`` call did, partition by partition.

    ``missing_partitions``: days that are loaded (or were asked for) but have no data files in
    the landing folder; their loaded rows are left as they are. ``ignored_paths``: entries under
    ``<landing>/<source>/`` that are not day folders, and day folders without data files.
    """

    source: str
    partitions: list[PartitionReport] = field(default_factory=list)
    missing_partitions: list[dt.date] = field(default_factory=list)
    ignored_paths: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[PartitionReport]:
        return [p for p in self.partitions if p.status == "failed"]

    @property
    def loaded(self) -> list[PartitionReport]:
        return [p for p in self.partitions if p.status == "loaded"]

    @property
    def unchanged(self) -> list[PartitionReport]:
        return [p for p in self.partitions if p.status == "unchanged"]

    @property
    def empty(self) -> list[PartitionReport]:
        """Partitions this run loaded from files without a single data row (a valid delivery)."""
        return [p for p in self.loaded if p.rows_read == 0]

    @property
    def totals(self) -> dict[str, int]:
        """Rows read, loaded and quarantined by this run (over the partitions it loaded)."""
        return {
            "rows_read": sum(p.rows_read for p in self.partitions),
            "rows_loaded": sum(p.rows_loaded for p in self.partitions),
            "rows_quarantined": sum(p.rows_quarantined for p in self.partitions),
        }

    @property
    def quarantine_share(self) -> float:
        """Quarantined rows / rows read by this run (0.0 when nothing was read)."""
        totals = self.totals
        return totals["rows_quarantined"] / totals["rows_read"] if totals["rows_read"] else 0.0

    def to_metadata(self) -> dict[str, Any]:
        """A JSON-able summary (dates as ISO strings), for Dagster metadata and logs."""
        totals = self.totals
        by_rule: dict[str, int] = {}
        for partition in self.partitions:
            for rule, count in partition.quarantine_by_rule.items():
                by_rule[rule] = by_rule.get(rule, 0) + count
        ignored = list(self.ignored_paths)
        for partition in self.partitions:
            ignored += partition.ignored_files
        return {
            "source": self.source,
            "partitions_loaded": len(self.loaded),
            "partitions_unchanged": len(self.unchanged),
            "partitions_failed": len(self.failed),
            **totals,
            "quarantine_share": round(self.quarantine_share, 6),
            "quarantine_by_rule": dict(sorted(by_rule.items())),
            "loaded_partitions": [p.partition_date.isoformat() for p in self.loaded],
            "failed_partitions": {p.partition_date.isoformat(): p.error for p in self.failed},
            "empty_partitions": [p.partition_date.isoformat() for p in self.empty],
            "missing_partitions": [d.isoformat() for d in self.missing_partitions],
            "extra_columns": {
                f.path: f.extra_columns for p in self.partitions for f in p.files if f.extra_columns
            },
            "ignored_paths": ignored,
            "seconds": round(self.seconds, 3),
        }

    def files(self) -> list[dict[str, Any]]:
        """Every file report as a JSON-able dict."""
        return [
            {**asdict(f), "partition_date": f.partition_date.isoformat()}
            for p in self.partitions
            for f in p.files
        ]


# ---------------------------------------------------------------------------------------------
# Tables


def _raw_columns(contract: SourceContract) -> list[tuple[str, str]]:
    columns = []
    for col in contract.columns:
        not_null = col.required or col.default is not None or col.default_column is not None
        columns.append((col.name, _RAW_TYPES[col.logical_type] + (" NOT NULL" if not_null else "")))
    return columns + [(name, f"{type_} NOT NULL") for name, type_ in PROVENANCE_COLUMNS]


def _existing_columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]] | None:
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [RAW_SCHEMA, table],
    ).fetchall()
    return [(name, type_) for name, type_ in rows] or None


def _create(conn: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]] | tuple) -> None:
    body = ", ".join(f"{name} {type_}" for name, type_ in columns)
    conn.execute(f"create table if not exists {RAW_SCHEMA}.{table} ({body})")


def _same_shape(found: list[tuple[str, str]], expected: list[tuple[str, str]] | tuple) -> bool:
    return [(name, type_.upper()) for name, type_ in found] == [
        (name, type_.replace(" NOT NULL", "").upper()) for name, type_ in expected
    ]


def ensure_raw_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the ``raw`` schema and its tables if needed (idempotent).

    ``raw.<source>`` for every source of the contract (empty when the source has no files):
    the contract's columns (VARCHAR ids, strings and enums, TIMESTAMP, DECIMAL(18,2)) then
    ``_source_file`` (path relative to the landing folder), ``_partition_date``, ``_row_number``
    (1-based data row of the file) and ``_loaded_at``; plus ``raw.quarantine`` and
    ``raw.ingested_files``.

    A ``raw.<source>`` table of another shape that no ingested file accounts for (as left by the
    earlier loader, which replaced the whole table) is dropped and recreated: its rows come back
    from the landing files on the next load. Any other mismatch raises ``RuntimeError``.
    """
    conn.execute(f"create schema if not exists {RAW_SCHEMA}")
    for table, columns in (("ingested_files", _INGESTED_FILES_COLUMNS), ("quarantine", _QUARANTINE_COLUMNS)):
        found = _existing_columns(conn, table)
        if found is not None and not _same_shape(found, columns):
            raise RuntimeError(
                f"{RAW_SCHEMA}.{table} has the columns {found}, expected {list(columns)}: drop the raw "
                "schema of the warehouse (it is rebuilt from the landing files) and run the ingest again"
            )
        _create(conn, table, columns)
    for source in SOURCES:
        columns = _raw_columns(CONTRACTS[source])
        found = _existing_columns(conn, source)
        if found is not None and not _same_shape(found, columns):
            (accounted,) = conn.execute(
                f"select count(*) from {INGESTED_FILES_TABLE} where source = ?", [source]
            ).fetchall()[0]
            if accounted:
                raise RuntimeError(
                    f"{RAW_SCHEMA}.{source} has the columns {found}, expected {columns}: drop the raw "
                    "schema of the warehouse (it is rebuilt from the landing files) and run the ingest again"
                )
            conn.execute(f"drop table {RAW_SCHEMA}.{source}")
        _create(conn, source, columns)


# ---------------------------------------------------------------------------------------------
# Landing folder


@dataclass(frozen=True)
class _DataFile:
    relpath: str  # POSIX, relative to the landing folder
    path: Path
    file_format: str
    size: int


@dataclass(frozen=True)
class _DayFolder:
    partition_date: dt.date
    files: tuple[_DataFile, ...]
    ignored: tuple[str, ...]


def _file_format(name: str) -> str | None:
    lower = name.lower()
    for suffix in sorted(FILE_FORMATS, key=len, reverse=True):
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return FILE_FORMATS[suffix]
    return None


def _day(name: str) -> dt.date | None:
    if not _DAY_FOLDER.fullmatch(name):
        return None
    try:
        return dt.date.fromisoformat(name)
    except ValueError:
        return None


def _relpath(path: Path, landing_dir: Path) -> str:
    return path.relative_to(landing_dir).as_posix()


def _scan_day(landing_dir: Path, folder: Path, day: dt.date) -> _DayFolder:
    files, ignored = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        rel = _relpath(entry, landing_dir)
        fmt = _file_format(entry.name) if entry.is_file() else None
        if fmt is None or entry.name.startswith((".", "_")):
            ignored.append(rel + ("/" if entry.is_dir() else ""))
        else:
            files.append(_DataFile(rel, entry, fmt, entry.stat().st_size))
    return _DayFolder(day, tuple(files), tuple(ignored))


def _scan_source(landing_dir: Path, source: str) -> tuple[dict[dt.date, _DayFolder], list[str]]:
    """Day folders holding at least one data file, and what else lies under ``<source>/``."""
    base = landing_dir / source
    days: dict[dt.date, _DayFolder] = {}
    ignored: list[str] = []
    if not base.is_dir():
        return days, ignored
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        day = _day(entry.name) if entry.is_dir() and not entry.name.startswith((".", "_")) else None
        if day is None:
            ignored.append(_relpath(entry, landing_dir) + ("/" if entry.is_dir() else ""))
            continue
        folder = _scan_day(landing_dir, entry, day)
        if folder.files:
            days[day] = folder
        else:
            ignored += [_relpath(entry, landing_dir) + "/ (no data files)", *folder.ignored]
    return days, ignored


def landing_day_files(landing_dir: Path, source: str) -> dict[dt.date, list[Path]]:
    """Per day folder of ``<landing_dir>/<source>/``: its data files (what a load reads)."""
    _contract(source)
    days, _ = _scan_source(Path(landing_dir), source)
    return {day: [data_file.path for data_file in folder.files] for day, folder in sorted(days.items())}


def landing_partitions(landing_dir: Path, source: str) -> list[dt.date]:
    """The days of ``<landing_dir>/<source>/<YYYY-MM-DD>/`` folders holding a data file, sorted."""
    _contract(source)
    days, _ = _scan_source(Path(landing_dir), source)
    return sorted(days)


def _contract(source: str) -> SourceContract:
    if source not in CONTRACTS:
        raise ValueError(f"unknown source {source!r}: the landing contract has {', '.join(SOURCES)}")
    return CONTRACTS[source]


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
# Reading files (file-level problems raise LandingFileError or a pyarrow/OS error)


@dataclass
class _ReadFile:
    file: _DataFile
    index: int
    size: int  # of the bytes read (and hashed), which the fingerprint records
    sha256: str
    table: pa.Table  # the file's columns (contract ones as read), _ROW, and for JSON lines _RECORD
    columns: list[str]  # the file's column names
    extra_columns: list[str]


def _decompress(data: bytes, file_format: str) -> bytes:
    return gzip.decompress(data) if file_format.endswith(".gz") else data


def _csv_header(data: bytes) -> list[str]:
    """The column names on the first non-blank line ([] for an empty file)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = data[start:end].rstrip(b"\r")
        if line.strip():
            return next(csv.reader([line.decode("utf-8")]))
        start = end + 1
    return []


def _read_csv(data: bytes) -> pa.Table:
    """All columns as text (UTF-8 checked); an empty field is null; blank lines are skipped."""
    buffer = pa.py_buffer(data)
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
        data, buffer = data[3:], buffer.slice(3)
    header = _csv_header(data)
    if not header:
        raise LandingFileError(
            "is empty: a CSV file needs a header row with the column names (write it even when the "
            "day has no rows)"
        )
    table = pa_csv.read_csv(
        pa.BufferReader(buffer),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            check_utf8=True,
            null_values=[""],
            strings_can_be_null=True,
        ),
    )
    if any(not pa.types.is_string(t) for t in table.schema.types):
        raise LandingFileError(f"its header row could not be read consistently (found {table.column_names})")
    return table


def _read_jsonl(
    conn: duckdb.DuckDBPyConnection, data: bytes, contract: SourceContract
) -> tuple[pa.Table, list[str]]:
    """One JSON object per line: the contract's columns as text (numbers too), the line itself as
    the record, and every key found (the file's columns). Blank lines are skipped.

    pyarrow reads the lines as text (UTF-8 checked); DuckDB's JSON functions take them apart, so a
    number and a string in the same column are both fine (pyarrow's JSON reader rejects that).
    """
    if not data or data.isspace():  # isspace stops at the first other byte; strip() would copy
        empty = pa.table({_ROW: pa.array([], pa.int64()), _RECORD: pa.array([], pa.string())})
        return empty, []
    lines = pa_csv.read_csv(
        pa.BufferReader(data),
        read_options=pa_csv.ReadOptions(column_names=["line"]),
        parse_options=pa_csv.ParseOptions(
            delimiter=_JSONL_DELIMITER, quote_char=False, escape_char=False, ignore_empty_lines=True
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={"line": pa.string()}, check_utf8=True, strings_can_be_null=False
        ),
    )
    lines = lines.append_column(_ROW, pa.array(np.arange(1, lines.num_rows + 1, dtype=np.int64)))
    view = "_ingest_jsonl_lines"
    conn.register(view, lines)
    try:
        ((bad_row, keys),) = conn.execute(
            f"""
            select
                min({_ROW}) filter (where not (case when json_valid(line) then json_type(line) = 'OBJECT'
                                               else false end)),
                (select list(distinct k order by k) from (select unnest(json_keys(line)) as k from {view}
                    where json_valid(line) and json_type(line) = 'OBJECT'))
            from {view}
            """
        ).fetchall()
        if bad_row is not None:
            raise LandingFileError(
                f"line {bad_row} (counting non-empty lines) is not a JSON object: the file is corrupt "
                "or truncated"
            )
        keys = list(keys or [])
        wanted = [name for name in contract.column_names if name in keys]
        paths = "[" + ", ".join(_lit(f"$.{name}") for name in wanted) + "]"
        values = ", ".join(f"v[{i}] as {_ident(name)}" for i, name in enumerate(wanted, start=1))
        table = conn.sql(
            f"""
            select {values + "," if values else ""} {_ROW}, line as {_RECORD}
            from (select json_extract_string(line, {paths}) as v, {_ROW}, line from {view})
            order by {_ROW}
            """
        ).to_arrow_table()
    finally:
        conn.unregister(view)
    return table, keys


def _is_text(type_: pa.DataType) -> bool:
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    return pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_)


def _type_problem(col: Column, type_: pa.DataType) -> str | None:
    """Why a Parquet column's type cannot hold the contract column, or None."""
    if pa.types.is_null(type_) or _is_text(type_):
        return None
    if col.logical_type == "timestamp" and (pa.types.is_timestamp(type_) or pa.types.is_date(type_)):
        return None
    if col.logical_type == "decimal" and (
        pa.types.is_integer(type_)
        or pa.types.is_float32(type_)
        or pa.types.is_float64(type_)
        or pa.types.is_decimal128(type_)
    ):
        return None
    expected = {
        "string": "text",
        "enum": "text",
        "timestamp": "a timestamp, a date or ISO 8601 text",
        "decimal": "a number or decimal text",
    }[col.logical_type]
    return f"column {col.name} has the Parquet type {type_}; the contract expects {expected}"


def _read_file(
    conn: duckdb.DuckDBPyConnection, contract: SourceContract, file: _DataFile, index: int
) -> _ReadFile:
    raw = file.path.read_bytes()
    sha256 = hashlib.sha256(raw).hexdigest()
    if file.file_format == "parquet":
        table = pq.read_table(pa.BufferReader(raw))
        columns = table.column_names
    elif file.file_format.startswith("csv"):
        table = _read_csv(_decompress(raw, file.file_format))
        columns = table.column_names
    else:
        table, columns = _read_jsonl(conn, _decompress(raw, file.file_format), contract)
    if len(set(columns)) != len(columns):
        raise LandingFileError(f"has duplicate column names: {columns}")
    reserved = {_ROW, _RECORD} & set(columns)
    if reserved:
        raise LandingFileError(f"uses the reserved column name(s) {sorted(reserved)}")
    if "" in columns:
        raise LandingFileError("has a column without a name (a trailing delimiter in the header?)")
    missing = [name for name in contract.required_columns if name not in columns]
    # A JSON lines file without any line has no columns at all: zero rows, nothing missing.
    if missing and not (file.file_format.startswith("jsonl") and table.num_rows == 0):
        hint = " (is the header row missing?)" if file.file_format.startswith("csv") else ""
        raise LandingFileError(
            f"lacks the required column(s) {', '.join(missing)}{hint}; it has {', '.join(columns) or 'none'}"
        )
    for name in contract.column_names:
        if name in table.column_names:
            problem = _type_problem(contract.column(name), table.schema.field(name).type)
            if problem:
                raise LandingFileError(problem)
    if _ROW not in table.column_names:
        table = table.append_column(_ROW, pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
    extra = [name for name in columns if name not in contract.column_names]
    return _ReadFile(file, index, len(raw), sha256, table, columns, extra)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, LandingFileError):
        return text
    if isinstance(exc, UnicodeError) or "utf8" in text.lower() or "utf-8" in text.lower():
        return f"is not valid UTF-8 text ({text})"
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"is not a complete gzip file ({text})"
    return f"could not be read ({type(exc).__name__}: {text})"


# ---------------------------------------------------------------------------------------------
# SQL


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _shown(text_sql: str) -> str:
    """SQL for a value quoted for a detail sentence, cut at _SHOWN_VALUE_CHARS characters."""
    n = _SHOWN_VALUE_CHARS
    return (
        f"('''' || (case when length({text_sql}) > {n} then left({text_sql}, {n}) || '...' "
        f"else {text_sql} end) || '''')"
    )


class _FileSql:
    """SQL expressions over one registered file (alias ``f``): raw text, parsed and final values.

    ``r<i>``: the value as delivered (text with '' as null, or the Parquet type); ``v<i>``: parsed
    (``try_cast``; NULL when it does not parse); final: typed with the contract's default.
    """

    def __init__(self, contract: SourceContract, rf: _ReadFile, view: str, currency: str) -> None:
        self.contract, self.rf, self.view, self.currency = contract, rf, view, currency
        types = {f.name: f.type for f in rf.table.schema}
        self.present = {name for name in contract.column_names if name in types}
        self.raws, self.parses, self.text, self.is_text = [], [], {}, {}
        for i, col in enumerate(contract.columns):
            type_ = types.get(col.name)
            if type_ is None or pa.types.is_null(type_):
                raw, is_text = "cast(null as varchar)", True
            elif _is_text(type_):
                raw, is_text = f"nullif(cast(f.{_ident(col.name)} as varchar), '')", True
            else:
                raw, is_text = f"f.{_ident(col.name)}", False
            if col.logical_type == "timestamp":  # TIMESTAMPTZ becomes UTC: the session time zone is UTC
                parsed = (
                    f"cast(try_cast(r{i} as timestamptz) as timestamp)"
                    if is_text
                    else f"cast(r{i} as timestamp)"
                )
            elif col.logical_type == "decimal":
                parsed = f"try_cast(r{i} as {_DECIMAL})"
            else:
                parsed = f"r{i}"
            self.raws.append(f"{raw} as r{i}")
            self.parses.append(f"{parsed} as v{i}")
            self.text[col.name] = f"cast(r{i} as varchar)"
            self.is_text[col.name] = is_text
        self.finals = []
        for i, col in enumerate(contract.columns):
            if col.default_column is not None:
                expr = f"coalesce(v{i}, v{contract.column_names.index(col.default_column)})"
            elif col.default is not None:
                expr = f"coalesce(v{i}, {_lit(col.default)})"
            else:
                expr = f"v{i}"
            self.finals.append(f"cast({expr} as {_RAW_TYPES[col.logical_type]}) as {_ident(col.name)}")

    def _parsed(self) -> str:
        return (
            f"(select *, {', '.join(self.parses)} "
            f"from (select f.{_ROW}, {', '.join(self.raws)} from {self.view} as f))"
        )

    def typed_select(self) -> str:
        """Every row of the file with its final values (no checks: join away the quarantined rows)."""
        return (
            f"select {self.rf.index} as _file_index, {_ROW} as _row_number, "
            f"{', '.join(self.finals)} from {self._parsed()}"
        )

    def checked_select(self, day: dt.date, columns: list[str]) -> str:
        """Every row: file index, row number, ``_check`` (0 = passes, else the number of the first
        failing row check) and the final values of ``columns``."""
        checks = self._checks(day)
        failing = " ".join(f"when {cond} then {k}" for k, (_, cond, _) in enumerate(checks, start=1))
        check = f"case {failing} else 0 end" if checks else "0"
        finals = [self.finals[self.contract.column_names.index(name)] for name in columns]
        return (
            f"select {self.rf.index} as _file_index, {_ROW} as _row_number, {check} as _check, "
            f"{', '.join(finals)} from {self._parsed()}"
        )

    def failing_select(self, day: dt.date) -> str:
        """The rows failing a row check: file index, row number, rule and detail (first failure wins)."""
        checks = self._checks(day)
        failing = " ".join(f"when {cond} then {k}" for k, (_, cond, _) in enumerate(checks, start=1))
        rules = " ".join(f"when {k} then {_lit(rule)}" for k, (rule, _, _) in enumerate(checks, start=1))
        details = " ".join(f"when {k} then {detail}" for k, (_, _, detail) in enumerate(checks, start=1))
        return f"""
            select {self.rf.index}, {_ROW}, case _check {rules} end, case _check {details} end
            from (select *, case {failing} else 0 end as _check from {self._parsed()})
            where _check > 0
        """

    def _checks(self, day: dt.date) -> list[tuple[str, str, str]]:
        """(rule, SQL condition, SQL detail) of every row check, in the contract's order."""
        checks = []
        for check in self.contract.row_checks():
            col = self.contract.column(check.column)
            if check.kind == "duplicate_key" or (col.name not in self.present and not col.required):
                continue  # duplicates come later; an absent optional column takes its (valid) default
            i = self.contract.column_names.index(col.name)
            said = f"{_lit(col.name + ' ')} || {_shown(self.text[col.name])} || "
            if check.kind == "null":
                cond = f"r{i} is null"
                detail = _lit(f"required column {col.name} is empty (no value)")
            elif check.kind == "malformed_id":
                bad_id = f"length(v{i}) > {ID_MAX_LENGTH} or not regexp_full_match(v{i}, {_lit(_ID_CHARS)})"
                cond = f"v{i} is not null and ({bad_id})"
                detail = said + _lit(" is not a valid id (1 to 64 characters from A-Z a-z 0-9 _ . : -)")
            elif check.kind == "unparseable_timestamp":
                iso = (
                    f"not regexp_full_match(r{i}, {_lit(TIMESTAMP_PATTERN)}) or "
                    if self.is_text[col.name]
                    else ""
                )
                cond = f"r{i} is not null and ({iso}v{i} is null or not isfinite(v{i}))"
                detail = said + _lit(" is not an ISO 8601 timestamp")
            elif check.kind == "timestamp_outside_partition":
                cond = f"cast(v{i} as date) <> date '{day.isoformat()}'"
                detail = f"{said}' is ' || strftime(v{i}, '%Y-%m-%d %H:%M:%S') || " + _lit(
                    f" UTC, outside the day folder {day.isoformat()}"
                )
            elif check.kind == "unparseable_amount":
                cond = f"r{i} is not null and v{i} is null"
                detail = said + _lit(f" is not a decimal number that fits {_DECIMAL}")
            elif check.kind == "negative_amount":
                cond = f"v{i} < 0"
                detail = said + _lit(
                    " is negative; amounts are >= 0 (a refund is a transaction_type = refund row with a "
                    "positive amount)"
                )
            elif check.kind == "unknown":
                cond = f"v{i} is not null and v{i} not in ({', '.join(_lit(v) for v in col.allowed_values)})"
                detail = said + _lit(" is not one of " + ", ".join(col.allowed_values))
            elif check.kind == "unexpected_currency":
                cond = f"v{i} is not null and v{i} <> {_lit(self.currency)}"
                detail = said + _lit(
                    f" is not the mart's currency {self.currency} ({CURRENCY_ENV}); the mart holds one "
                    "currency and converts nothing"
                )
            else:  # pragma: no cover - the contract and this class list the same kinds
                raise AssertionError(f"unhandled check kind {check.kind}")
            checks.append((check.rule, cond, detail))
        return checks

    def record(self) -> str:
        """SQL for the original row as JSON text (the line itself for JSON lines)."""
        if _RECORD in self.rf.table.column_names:
            return f"f.{_RECORD}"
        if not self.rf.columns:
            return "'{}'"
        fields = ", ".join(f"{_ident(name)} := f.{_ident(name)}" for name in self.rf.columns)
        return f"cast(to_json(struct_pack({fields})) as varchar)"


def _not_quarantined(alias: str) -> str:
    return (
        f"not exists (select 1 from _ingest_bad as b "
        f"where b._file_index = {alias}._file_index and b._row_number = {alias}._row_number)"
    )


@dataclass(frozen=True)
class _Unique:
    """A uniqueness rule: ``column`` unique in ``raw.<source>`` (among rows matching ``condition``)."""

    column: str
    condition: str  # SQL on the row's columns, '' for every row
    among: str  # words for the detail sentence

    def where(self, alias: str) -> str:
        return f" and {alias}.{self.condition}" if self.condition else ""


def _uniques(contract: SourceContract) -> list[_Unique]:
    uniques = [_Unique(contract.key, "", "")]
    for rule in contract.unique_among:
        condition = f"{_ident(rule.where_column)} = {_lit(rule.where_value)}"
        uniques.append(
            _Unique(rule.column, condition, f" among rows with {rule.where_column} = '{rule.where_value}'")
        )
    return uniques


def _key_columns(contract: SourceContract) -> list[str]:
    """The columns the duplicate checks need (kept in the ``_ingest_keys`` scratch table)."""
    names = [contract.key]
    for rule in contract.unique_among:
        names += [rule.column, rule.where_column]
    return [name for name in contract.column_names if name in names]


def _screen_sql(contract: SourceContract) -> str:
    """One pass over ``_ingest_keys``: rows failing a row check, then per uniqueness rule the
    surplus rows (0: no value repeats, the ordered check is skipped) and the value range."""
    counts = ["count(*) filter (where _check > 0)"]
    for u in _uniques(contract):
        col, where = _ident(u.column), "_check = 0" + u.where("k")
        counts += [
            f"count(*) filter (where {where}) - count(distinct k.{col}) filter (where {where})",
            f"min(k.{col}) filter (where {where})",
            f"max(k.{col}) filter (where {where})",
        ]
    return f"select {', '.join(counts)} from _ingest_keys as k"


def _loaded_elsewhere_sql(
    contract: SourceContract, day: dt.date, ranges: list[tuple[str, str] | None]
) -> str:
    """Per uniqueness rule: how many of the partition's values are loaded under another day.

    An upper bound (rows quarantined meanwhile still count): where it is 0, the exact statement
    (:func:`_across_sql`) is skipped, which is the common case. Each count is a semi-join of the
    partition's values against the column of ``raw.<source>``, bounded by the constant range of
    the partition's values so that DuckDB skips the row groups whose min/max lie outside it: with
    ids that grow with time (sequences, ULIDs, UUIDv7, the demo's) it reads a few row groups; with
    random ids it reads the whole column, about 25 ns per loaded row on 2 cores.
    """
    counts = []
    for u, bounds in zip(_uniques(contract), ranges, strict=True):
        if bounds is None:  # no valid value in the partition
            counts.append("0")
            continue
        col = _ident(u.column)
        counts.append(
            f"(select count(*) from _ingest_keys as k semi join {RAW_SCHEMA}.{contract.name} as r "
            f"on r.{col} = k.{col} and r._partition_date <> date '{day.isoformat()}'{u.where('r')} "
            f"and r.{col} between {_lit(bounds[0])} and {_lit(bounds[1])} "
            f"where k._check = 0{u.where('k')})"
        )
    return f"select {', '.join(counts)}"


def _valid_keys(u: _Unique) -> str:
    return f"select * from _ingest_keys as k where k._check = 0{u.where('k')} and {_not_quarantined('k')}"


def _within_sql(u: _Unique, paths: list[str]) -> str:
    """Quarantine values repeated within the partition; the first by file, then row, is kept."""
    col = _ident(u.column)
    path = "case first_file " + " ".join(f"when {i} then {_lit(p)}" for i, p in enumerate(paths)) + " end"
    return f"""
        insert into _ingest_bad
        with valid as ({_valid_keys(u)}),
        repeated as (select {col} from valid group by all having count(*) > 1),
        ranked as (
            select v._file_index, v._row_number, v.{col},
                row_number() over w as occurrence,
                first_value(v._file_index) over w as first_file,
                first_value(v._row_number) over w as first_row
            from valid as v
            where v.{col} in (select {col} from repeated)
            window w as (partition by v.{col} order by v._file_index, v._row_number
                         rows between unbounded preceding and current row)
        )
        select _file_index, _row_number, 'duplicate_key',
            {_lit(u.column + " ")} || {_shown(col)}
            || {_lit(" appears earlier" + u.among + " in this day folder (")}
            || {path} || ' row ' || first_row || '); the first occurrence is kept'
        from ranked
        where occurrence > 1
    """


def _across_sql(contract: SourceContract, u: _Unique, day: dt.date, low: str, high: str) -> str:
    """Quarantine values already loaded under another day (the loaded rows keep their place).

    Bounded by the partition's value range like :func:`_loaded_elsewhere_sql`.
    """
    col = _ident(u.column)
    return f"""
        insert into _ingest_bad
        select s._file_index, s._row_number, 'duplicate_key',
            {_lit(u.column + " ")} || {_shown("s." + col)}
            || {_lit(" is already loaded" + u.among + " from ")} || r._source_file || ' row ' || r._row_number
            || ' (day ' || strftime(r._partition_date, '%Y-%m-%d')
            || '); a value loaded under another day keeps its place'
        from ({_valid_keys(u)}) as s
        join {RAW_SCHEMA}.{contract.name} as r
            on r.{col} = s.{col} and r._partition_date <> date '{day.isoformat()}'{u.where("r")}
            and r.{col} between {_lit(low)} and {_lit(high)}
        qualify row_number() over (
            partition by s._file_index, s._row_number
            order by r._partition_date, r._source_file, r._row_number
        ) = 1
    """


# ---------------------------------------------------------------------------------------------
# Loading


@contextmanager
def _utc_session(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    (previous,) = conn.execute("select current_setting('TimeZone')").fetchall()[0]
    conn.execute("set session TimeZone = 'UTC'")
    try:
        yield
    finally:
        conn.execute(f"set session TimeZone = {_lit(previous)}")


@contextmanager
def _quarantine_scratch(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Scratch temp tables: the current partition's quarantined rows (emptied per partition) and
    its checked keys (``_ingest_keys``, replaced per partition)."""
    conn.execute(
        "create or replace temp table _ingest_bad "
        "(_file_index INTEGER, _row_number BIGINT, _rule VARCHAR, _detail VARCHAR)"
    )
    try:
        yield
    finally:
        conn.execute("drop table if exists _ingest_bad")
        conn.execute("drop table if exists _ingest_keys")


def _stored_fingerprints(conn: duckdb.DuckDBPyConnection, source: str) -> dict[dt.date, tuple]:
    rows = conn.execute(
        f"select partition_date, source_file, file_bytes, file_sha256 from {INGESTED_FILES_TABLE} "
        "where source = ? order by partition_date, source_file",
        [source],
    ).fetchall()
    stored: dict[dt.date, list] = {}
    for day, path, size, sha in rows:
        stored.setdefault(day, []).append((path, size, sha))
    return {day: tuple(files) for day, files in stored.items()}


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _is_unchanged(folder: _DayFolder, stored: tuple | None) -> bool:
    """Whether the folder's files have the stored fingerprint: sorted (path, size, SHA-256).

    Paths and sizes are compared first (no read); only then is every file hashed.
    """
    if stored is None or sorted((f.relpath, f.size) for f in folder.files) != sorted(
        (p, s) for p, s, _ in stored
    ):
        return False
    try:
        return sorted((f.relpath, f.size, file_sha256(f.path)) for f in folder.files) == sorted(stored)
    except OSError:
        return False  # the load reports the unreadable file


def changed_partitions(
    conn: duckdb.DuckDBPyConnection | None, landing_dir: Path, source: str
) -> list[dt.date]:
    """The landing days of ``source`` whose files are new or changed since they were loaded, sorted.

    ``conn`` reads ``raw.ingested_files`` (None, or a warehouse without it: every landed day).
    The same fingerprint as the load (paths, sizes, then SHA-256): what the next load would reload.
    """
    _contract(source)
    days, _ = _scan_source(Path(landing_dir), source)
    stored: dict[dt.date, tuple] = {}
    if conn is not None and _existing_columns(conn, "ingested_files") is not None:
        stored = _stored_fingerprints(conn, source)
    return sorted(day for day, folder in days.items() if not _is_unchanged(folder, stored.get(day)))


def _check_counts(report: FileReport) -> None:
    if report.rows_read != report.rows_loaded + report.rows_quarantined:
        raise AssertionError(
            f"{report.path}: {report.rows_read} rows read but {report.rows_loaded} loaded + "
            f"{report.rows_quarantined} quarantined; this is a bug in orchestration/ingestion.py"
        )


def _count(conn: duckdb.DuckDBPyConnection, sql: str) -> int:
    """Run an INSERT and return how many rows it inserted."""
    ((count,),) = conn.execute(sql).fetchall()
    return count


def _load_partition(
    conn: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    folder: _DayFolder,
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
    reads: list[_ReadFile] = []
    for index, (file, report) in enumerate(zip(folder.files, reports, strict=True)):
        try:
            rf = _read_file(conn, contract, file, index)
        except _FILE_ERRORS as exc:
            report.error = f"{file.relpath}: {_describe(exc)}"
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
            ignored_files=list(folder.ignored),
        )

    files = [_FileSql(contract, rf, f"_ingest_file_{rf.index}", currency) for rf in reads]
    by_rule: dict[str, int] = {}
    try:
        for f in files:
            conn.register(f.view, f.rf.table)
            reports[f.rf.index].rows_read = f.rf.table.num_rows
        key_columns = _key_columns(contract)
        checked = " union all ".join(f"({f.checked_select(day, key_columns)})" for f in files)
        conn.execute(f"create or replace temp table _ingest_keys as {checked}")
        failing, *screen = conn.execute(_screen_sql(contract)).fetchall()[0]
        uniques = _uniques(contract)
        ranges = [
            None if screen[3 * k + 1] is None else (screen[3 * k + 1], screen[3 * k + 2])
            for k in range(len(uniques))
        ]
        elsewhere = conn.execute(_loaded_elsewhere_sql(contract, day, ranges)).fetchall()[0]
        quarantined = 0
        if failing:
            union = " union all ".join(f"({f.failing_select(day)})" for f in files)
            quarantined = _count(conn, f"insert into _ingest_bad {union}")
        for k, u in enumerate(uniques):
            if screen[3 * k]:
                quarantined += _count(conn, _within_sql(u, [f.rf.file.relpath for f in files]))
            if elsewhere[k]:
                low, high = ranges[k]
                quarantined += _count(conn, _across_sql(contract, u, day, low, high))
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
        names = ", ".join(_ident(c) for c in contract.column_names)
        for f in files:
            report = reports[f.rf.index]
            # Without quarantined rows the scan keeps the file's order; otherwise sort it back.
            keep, order = (
                (f"where {_not_quarantined('r')}", "order by r._row_number")
                if report.rows_quarantined
                else ("", "")
            )
            ((report.rows_loaded,),) = conn.execute(
                f"""
                insert into {RAW_SCHEMA}.{source}
                    ({names}, _source_file, _partition_date, _row_number, _loaded_at)
                select {names}, {_lit(f.rf.file.relpath)}, ?, _row_number, ?
                from ({f.typed_select()}) as r {keep} {order}
                """,
                [day, loaded_at],
            ).fetchall()
            _check_counts(report)
            if report.rows_quarantined:
                conn.execute(
                    f"""
                    insert into {QUARANTINE_TABLE}
                    select ?, ?, ?, b._row_number, b._rule, b._detail, {f.record()}, ?
                    from _ingest_bad as b join {f.view} as f on f.{_ROW} = b._row_number
                    where b._file_index = {f.rf.index}
                    order by b._row_number
                    """,
                    [source, day, f.rf.file.relpath, loaded_at],
                )
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
        ignored_files=list(folder.ignored),
    )


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
    contract = _contract(source)
    currency = configured_currency(currency)
    landing_dir = Path(landing_dir)
    loaded_at = _naive_utc(loaded_at)
    ensure_raw_tables(conn)
    days, ignored = _scan_source(landing_dir, source)
    report = SourceReport(source, ignored_paths=ignored)
    with _utc_session(conn), _quarantine_scratch(conn):
        stored = _stored_fingerprints(conn, source)
        if partitions is None:
            wanted = sorted(days)
            report.missing_partitions = sorted(set(stored) - set(days))
        else:
            wanted = sorted({dt.date(d.year, d.month, d.day) for d in partitions})
            report.missing_partitions = [d for d in wanted if d not in days]
        pending: list[PartitionReport] = []  # loaded in the open transaction, not committed yet
        in_transaction = False
        try:
            for day in wanted:
                folder = days.get(day)
                if folder is None:
                    continue
                if not force and _is_unchanged(folder, stored.get(day)):
                    report.partitions.append(
                        PartitionReport(source, day, "unchanged", ignored_files=list(folder.ignored))
                    )
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


# ---------------------------------------------------------------------------------------------
# Raw rows as Parquet, for a warehouse on another engine (Spark)

#: Key column of each raw table: the Parquet files hold their rows in this order (deterministic).
_RAW_ORDER = {
    "users": "user_id",
    "events": "occurred_at, event_id",
    "transactions": "occurred_at, transaction_id",
}


def raw_parquet_path(out_dir: Path, source: str, day: dt.date) -> Path:
    """``<out_dir>/<source>/<YYYY-MM-DD>.parquet``: one file per source per landing day."""
    return Path(out_dir) / source / f"{day.isoformat()}.parquet"


def export_raw_parquet(
    conn: duckdb.DuckDBPyConnection,
    out_dir: Path,
    source: str,
    days: Iterable[dt.date] | None = None,
) -> list[Path]:
    """Write the loaded (validated, de-quarantined) rows of ``raw.<source>`` as one Parquet file per
    landing day: what the dbt sources read on Spark (``macros/portable/raw_source.sql``).

    ``days``: the days to (re)write, e.g. the ones an ingest run loaded; None = every loaded day whose
    file is missing. Each file is written under a temporary name and renamed, so a reader sees the
    old or the new file of a day, never half of one. A day with no rows gets a file with no rows (an
    empty delivery replaces what the day had, as in the raw table). Returns the files written.
    """
    table = f"{RAW_SCHEMA}.{source}"
    loaded = [
        row[0]
        for row in conn.execute(
            f"select distinct partition_date from {INGESTED_FILES_TABLE} where source = ? order by 1",
            [source],
        ).fetchall()
    ]
    if days is None:
        wanted = [day for day in loaded if not raw_parquet_path(out_dir, source, day).exists()]
    else:
        wanted = sorted(set(days))
    written = []
    for day in wanted:
        path = raw_parquet_path(out_dir, source, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        conn.execute(
            f"copy (select * from {table} where _partition_date = ? order by {_RAW_ORDER[source]}) "
            f"to '{partial}' (format parquet, compression snappy)",
            [day],
        )
        os.replace(partial, path)
        written.append(path)
    return written
