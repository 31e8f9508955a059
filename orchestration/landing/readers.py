"""Reading landing files (CSV, JSON lines, Parquet; gzip): a file-level problem raises. No Dagster here."""

from __future__ import annotations

import csv
import difflib
import gzip
import hashlib
import zlib
from dataclasses import dataclass, field

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
from orchestration.landing.text import line_breaks, line_of, locate, place_malformed_rows, row_lines, visible

# Helper columns added to each file's Arrow table; a file may not use these names.
ROW_COLUMN = "__ingest_row_number__"
RECORD_COLUMN = "__ingest_record__"
# A CSV row with another number of values than the header has columns: its original text and its
# number of values (null on the other rows; the columns exist only in a file with such rows).
MALFORMED_COLUMN = "__ingest_malformed_text__"
MALFORMED_VALUES_COLUMN = "__ingest_malformed_values__"
_HELPER_COLUMNS = {ROW_COLUMN, RECORD_COLUMN, MALFORMED_COLUMN, MALFORMED_VALUES_COLUMN}
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
    text: bytes | None = None  # a CSV or JSON lines file's (decompressed) bytes: its line numbers
    header_columns: int = 0  # a CSV file's number of header columns
    lines: np.ndarray | None = field(default=None, repr=False)

    def row_lines(self) -> np.ndarray | None:
        """The line of every data row (index ``row_number - 1``; see ``orchestration/landing/text.py``),
        computed on first use; None for Parquet (or when the lines cannot be told)."""
        if self.lines is None and self.text is not None:
            is_csv = self.file.file_format.startswith("csv")
            self.lines = row_lines(self.text, quoted=is_csv, header=is_csv)
            self.text = None  # done with the bytes
        return self.lines


def _decompress(data: bytes, file_format: str) -> bytes:
    return gzip.decompress(data) if file_format.endswith(".gz") else data


def check_text(data: bytes) -> None:
    """Refuse a text file padded with NUL bytes (not completely written) or with CR-only line endings."""
    end = len(data)
    while end and data[end - 1] in b"\r\n":  # a final line break after the padding
        end -= 1
    padding = 0
    if end and data[end - 1] == 0:  # (no copy of the file unless it ends in NUL)
        not_nul = np.flatnonzero(np.frombuffer(data, dtype=np.uint8, count=end))
        padding = end - (int(not_nul[-1]) + 1 if len(not_nul) else 0)
    if padding and padding == end:
        raise LandingFileError(
            f"holds nothing but {padding:,} NUL bytes (\\x00): it was never written (a crashed or "
            "pre-allocated copy?); re-deliver it"
        )
    if padding:
        line = int(line_of(line_breaks(data), end - padding))
        raise LandingFileError(
            f"ends with {padding:,} NUL bytes (\\x00) from line {line} on: it was not completely "
            "written (a crashed or pre-allocated copy?); re-deliver it"
        )
    if b"\r" in data and b"\n" not in data:
        raise LandingFileError(
            "uses CR-only line endings (classic Mac): save it with LF or CRLF line endings and re-deliver it"
        )


def utf8_problem(data: bytes, *, quoted: bool, header: list[str] | None = None) -> str | None:
    """Where ``data`` is not UTF-8 (line; for CSV the column), as an error sentence; None if it is."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start
    else:
        return None
    line, record, value = locate(data, offset, quoted=quoted)
    where = f"line {line}"
    if record == 0:
        where += " (the header row)"
    elif value is not None and header is not None:
        where += (
            f", column {header[value]}"
            if value < len(header)
            else f", value {value + 1} (the header has {len(header)} columns)"
        )
    return (
        f"is not valid UTF-8 text: {where} holds the byte 0x{data[offset]:02X}, which UTF-8 does not "
        "allow there (text saved as Latin-1 or Windows-1252?); save the file as UTF-8 and re-deliver it"
    )


def _is_utf8_error(exc: BaseException) -> bool:
    return isinstance(exc, UnicodeError) or "utf8" in str(exc).lower() or "utf-8" in str(exc).lower()


def _csv_header(data: bytes) -> list[str]:
    """The column names on the first non-blank line ([] for an empty file)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = data[start:end].rstrip(b"\r")
        if line.strip():
            try:
                return next(csv.reader([line.decode("utf-8")]))
            except UnicodeDecodeError as err:
                raise LandingFileError(utf8_problem(data, quoted=True) or str(err)) from err
        start = end + 1
    return []


def _read_csv(data: bytes) -> tuple[pa.Table, np.ndarray | None, int]:
    """All columns as text (UTF-8 checked); an empty field is null; blank lines are skipped.

    A row with another number of values than the header has columns is kept as a malformed row
    (the helper columns hold its text; the other columns are null) for the rule ``malformed_row``.
    Returns the table with ``ROW_COLUMN``, the line of each row when already known, and the number
    of header columns.
    """
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
        data = data[3:]
    check_text(data)
    header = _csv_header(data)
    if not header:
        raise LandingFileError(
            "is empty: a CSV file needs a header row with the column names (write it even when the "
            "day has no rows)"
        )
    malformed: list[tuple[str, int]] = []

    def keep_aside(row: pa_csv.InvalidRow) -> str:
        malformed.append((row.text, row.actual_columns))
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=keep_aside),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                check_utf8=True,
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        problem = utf8_problem(data, quoted=True, header=header) if _is_utf8_error(exc) else None
        if problem:
            raise LandingFileError(problem) from exc
        raise
    if any(not pa.types.is_string(t) for t in table.schema.types):
        raise LandingFileError(f"its header row could not be read consistently (found {table.column_names})")
    if not malformed:
        rows = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
        return table.append_column(ROW_COLUMN, rows), None, len(header)
    placed = place_malformed_rows(data, [text for text, _ in malformed], table.num_rows)
    if placed is None:
        text, count = malformed[0]
        raise LandingFileError(
            f"has {len(malformed):,} row(s) with another number of values than the header's "
            f"{len(header)} columns (one has {count}: '{visible(text, 80)}') that could not be placed "
            "on their lines: check the quoting of the file and re-deliver it"
        )
    good = table.num_rows
    table = (
        table.append_column(ROW_COLUMN, pa.array(placed.good_rows))
        .append_column(MALFORMED_COLUMN, pa.nulls(good, pa.string()))
        .append_column(MALFORMED_VALUES_COLUMN, pa.nulls(good, pa.int64()))
    )
    values = {text.encode("utf-8"): count for text, count in malformed}
    bad = len(placed.bad_rows)
    columns = {name: pa.nulls(bad, pa.string()) for name in table.column_names[: len(header)]}
    bad_table = pa.table(
        {
            **columns,
            ROW_COLUMN: pa.array(placed.bad_rows),
            MALFORMED_COLUMN: pa.array([text.decode("utf-8", "replace") for text in placed.bad_texts]),
            MALFORMED_VALUES_COLUMN: pa.array([values[text] for text in placed.bad_texts], pa.int64()),
        },
        schema=table.schema,
    )
    return pa.concat_tables([table, bad_table]), placed.lines, len(header)


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
    check_text(data)
    split: list[str] = []

    def keep_aside(row: pa_csv.InvalidRow) -> str:  # a line holding the delimiter, a raw control byte
        split.append(row.text)
        return "skip"

    try:
        lines = pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(column_names=["line"]),
            parse_options=pa_csv.ParseOptions(
                delimiter=_JSONL_DELIMITER,
                quote_char=False,
                escape_char=False,
                ignore_empty_lines=True,
                invalid_row_handler=keep_aside,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={"line": pa.string()}, check_utf8=True, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as exc:
        problem = utf8_problem(data, quoted=False) if _is_utf8_error(exc) else None
        if problem:
            raise LandingFileError(problem) from exc
        raise
    if split:
        offset = data.index(_JSONL_DELIMITER.encode())
        raise LandingFileError(
            _raw_control_problem(int(line_of(line_breaks(data), offset)), _JSONL_DELIMITER)
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
            line_numbers = row_lines(data, quoted=False, header=False)
            line = bad_row if line_numbers is None else int(line_numbers[bad_row - 1])
            text = lines.column("line")[bad_row - 1].as_py()
            control = next((char for char in text if char < " " and char != "\t"), None)
            if control is not None:
                raise LandingFileError(_raw_control_problem(line, control))
            raise LandingFileError(f"line {line} is not a JSON object: the file is corrupt or truncated")
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


def _raw_control_problem(line: int, char: str) -> str:
    return (
        f"line {line} is not valid JSON: it holds the raw control character {visible(char)}, which JSON "
        f"writes escaped (\\u{ord(char):04x}); fix the export and re-deliver the file"
    )


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
    text, lines, header_columns = None, None, 0
    if file.file_format == "parquet":
        table = pq.read_table(pa.BufferReader(raw))
        columns = table.column_names
    elif file.file_format.startswith("csv"):
        text = _decompress(raw, file.file_format)
        table, lines, header_columns = _read_csv(text)
        columns = [name for name in table.column_names if name not in _HELPER_COLUMNS]
    else:
        text = _decompress(raw, file.file_format)
        table, columns = _read_jsonl(conn, text, contract)
    if len(set(columns)) != len(columns):
        raise LandingFileError(f"has duplicate column names: {columns}")
    reserved = _HELPER_COLUMNS & set(columns)
    if reserved:
        raise LandingFileError(f"uses the reserved column name(s) {sorted(reserved)}")
    if "" in columns:
        raise LandingFileError("has a column without a name (a trailing delimiter in the header?)")
    extra = [name for name in columns if name not in contract.column_names]
    missing = [name for name in contract.required_columns if name not in columns]
    # A JSON lines file without any line has no columns at all: zero rows, nothing missing.
    if missing and not (file.file_format.startswith("jsonl") and table.num_rows == 0):
        renames = likely_renames(missing, extra)
        hint = " (is the header row missing?)" if file.file_format.startswith("csv") and not renames else ""
        hint += "".join(f" (was `{old}` renamed to `{new}`?)" for old, new in renames)
        raise LandingFileError(
            f"lacks the required column(s) {', '.join(missing)}{hint}; it has {', '.join(columns) or 'none'}"
        )
    defaulted = [
        col
        for col in contract.columns
        if col.name not in columns and (col.default is not None or col.default_column is not None)
    ]
    if extra and defaulted:
        raise LandingFileError(renamed_optional_problem(defaulted, extra))
    for name in contract.column_names:
        if name in table.column_names:
            problem = _type_problem(contract.column(name), table.schema.field(name).type)
            if problem:
                raise LandingFileError(problem)
    if ROW_COLUMN not in table.column_names:
        table = table.append_column(ROW_COLUMN, pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
    return ReadFile(file, index, len(raw), sha256, table, columns, extra, text, header_columns, lines)


def _similarity(name: str, other: str) -> float:
    name, other = name.lower(), other.lower()
    if name in other or other in name:  # `type` for `transaction_type`
        return 0.9
    return difflib.SequenceMatcher(None, name, other).ratio()  # `state` for `status`: 0.73


def likely_renames(absent: list[str], unknown: list[str]) -> list[tuple[str, str]]:
    """(contract column, file column) pairs that look like a rename, each column in one pair at
    most, the most alike first: names at least half alike (or one inside the other), or the only
    absent and the only unknown column."""
    only_pair = len(absent) == 1 and len(unknown) == 1
    scored = sorted(
        (-_similarity(name, other), i, j) for i, name in enumerate(absent) for j, other in enumerate(unknown)
    )
    pairs: list[tuple[int, int]] = []
    for minus_score, i, j in scored:
        if (-minus_score >= 0.5 or only_pair) and all(i != a and j != b for a, b in pairs):
            pairs.append((i, j))
    return [(absent[i], unknown[j]) for i, j in sorted(pairs)]


def renamed_optional_problem(defaulted: list[Column], unknown: list[str]) -> str:
    """Why a file that lacks optional columns with a default and has unknown columns is refused."""
    absent = ", ".join(f"`{col.name}` (default {col.default_text})" for col in defaulted)
    extra = ", ".join(f"`{name}`" for name in unknown)
    renames = likely_renames([col.name for col in defaulted], unknown)
    guesses = " ".join(f"was `{old}` renamed to `{new}`?" for old, new in renames)
    first = next(col for col in defaulted if col.name == (renames[0][0] if renames else col.name))
    many = "s" if len(defaulted) > 1 else ""
    return (
        f"has the unknown column{'s' if len(unknown) > 1 else ''} {extra} and lacks the optional "
        f"column{many} {absent}: {guesses or 'is one of them a contract column under another name?'} "
        f"Loaded as it is, every row would take the default (`{first.name}` = {first.default_text}). "
        f"Rename the column back, or, if {extra} is something else, add the column{many} (empty "
        "values take the default) and re-deliver the file"
    )


def describe_file_error(exc: BaseException) -> str:
    """What is wrong with a file, in a sentence that follows its path (control characters escaped)."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, LandingFileError):
        return visible(text, 2000)
    if isinstance(exc, UnicodeError) or "utf8" in text.lower() or "utf-8" in text.lower():
        return f"is not valid UTF-8 text ({visible(text, 300)})"
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"is not a complete gzip file ({visible(text, 300)})"
    return f"could not be read ({type(exc).__name__}: {visible(text, 300)})"
