"""Reading landing files (CSV, JSON lines, Parquet; gzip): a file-level problem raises. No Dagster here."""

from __future__ import annotations

import csv
import gzip
import hashlib
import zlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from orchestration.landing.contract import (
    Column,
    SourceContract,
)
from orchestration.landing.folders import DataFile
from orchestration.landing.tables import ident, lit

# Helper columns added to each file's Arrow table; a file may not use these names.
ROW_COLUMN = "__ingest_row_number__"
RECORD_COLUMN = "__ingest_record__"
# A JSON line never holds a raw control character, so this delimiter keeps each line whole.
_JSONL_DELIMITER = "\x1f"


class LandingFileError(Exception):
    """A landing file cannot be loaded as a whole (its partition fails)."""


# Exceptions that mean "this file is bad", not "this code or the database is broken".
FILE_ERRORS = (LandingFileError, pa.ArrowException, OSError, EOFError, UnicodeError, zlib.error, csv.Error)


# ---------------------------------------------------------------------------------------------
# Reading files (file-level problems raise LandingFileError or a pyarrow/OS error)


@dataclass
class ReadFile:
    file: DataFile
    index: int
    size: int  # of the bytes read (and hashed), which the fingerprint records
    sha256: str
    table: (
        pa.Table
    )  # the file's columns (contract ones as read), ROW_COLUMN, and for JSON lines RECORD_COLUMN
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
        empty = pa.table({ROW_COLUMN: pa.array([], pa.int64()), RECORD_COLUMN: pa.array([], pa.string())})
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
    lines = lines.append_column(ROW_COLUMN, pa.array(np.arange(1, lines.num_rows + 1, dtype=np.int64)))
    view = "_ingest_jsonl_lines"
    conn.register(view, lines)
    try:
        ((bad_row, keys),) = conn.execute(
            f"""
            select
                min({ROW_COLUMN}) filter (
                    where not (case when json_valid(line) then json_type(line) = 'OBJECT' else false end)
                ),
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
        paths = "[" + ", ".join(lit(f"$.{name}") for name in wanted) + "]"
        values = ", ".join(f"v[{i}] as {ident(name)}" for i, name in enumerate(wanted, start=1))
        table = conn.sql(
            f"""
            select {values + "," if values else ""} {ROW_COLUMN}, line as {RECORD_COLUMN}
            from (select json_extract_string(line, {paths}) as v, {ROW_COLUMN}, line from {view})
            order by {ROW_COLUMN}
            """
        ).to_arrow_table()
    finally:
        conn.unregister(view)
    return table, keys


def is_text_type(type_: pa.DataType) -> bool:
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    return pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_)


def _type_problem(col: Column, type_: pa.DataType) -> str | None:
    """Why a Parquet column's type cannot hold the contract column, or None."""
    if pa.types.is_null(type_) or is_text_type(type_):
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


def read_file(
    conn: duckdb.DuckDBPyConnection, contract: SourceContract, file: DataFile, index: int
) -> ReadFile:
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
    reserved = {ROW_COLUMN, RECORD_COLUMN} & set(columns)
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
    if ROW_COLUMN not in table.column_names:
        table = table.append_column(ROW_COLUMN, pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
    extra = [name for name in columns if name not in contract.column_names]
    return ReadFile(file, index, len(raw), sha256, table, columns, extra)


def describe_file_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, LandingFileError):
        return text
    if isinstance(exc, UnicodeError) or "utf8" in text.lower() or "utf-8" in text.lower():
        return f"is not valid UTF-8 text ({text})"
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"is not a complete gzip file ({text})"
    return f"could not be read ({type(exc).__name__}: {text})"
