"""The raw tables of the warehouse: ``raw.<source>`` per source of the contract, ``raw.quarantine``
and ``raw.ingested_files`` (the ledger of loaded files). No Dagster here."""

from __future__ import annotations

import duckdb

from orchestration.landing.contract import (
    CONTRACTS,
    DECIMAL_PRECISION,
    DECIMAL_SCALE,
    SOURCES,
    SourceContract,
)

RAW_SCHEMA = "raw"
QUARANTINE_TABLE = f"{RAW_SCHEMA}.quarantine"
INGESTED_FILES_TABLE = f"{RAW_SCHEMA}.ingested_files"
DECIMAL_TYPE = f"DECIMAL({DECIMAL_PRECISION},{DECIMAL_SCALE})"
RAW_TYPES = {"string": "VARCHAR", "enum": "VARCHAR", "timestamp": "TIMESTAMP", "decimal": DECIMAL_TYPE}
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
    # The file's line the row starts on (CSV: the header is line 1; JSON lines: the line); null for
    # Parquet. Last, so that a quarantine table written before it existed gains it (ALTER TABLE).
    ("line_number", "BIGINT"),
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


# ---------------------------------------------------------------------------------------------
# Tables


def _raw_columns(contract: SourceContract) -> list[tuple[str, str]]:
    columns = []
    for col in contract.columns:
        not_null = col.required or col.default is not None or col.default_column is not None
        columns.append((col.name, RAW_TYPES[col.logical_type] + (" NOT NULL" if not_null else "")))
    return columns + [(name, f"{type_} NOT NULL") for name, type_ in PROVENANCE_COLUMNS]


def existing_columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]] | None:
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
    ``raw.ingested_files``. A ``raw.quarantine`` of the earlier shape gains ``line_number``.

    A ``raw.<source>`` table of another shape that no ingested file accounts for (as left by the
    earlier loader, which replaced the whole table) is dropped and recreated: its rows come back
    from the landing files on the next load. Any other mismatch raises ``RuntimeError``.
    """
    conn.execute(f"create schema if not exists {RAW_SCHEMA}")
    found = existing_columns(conn, "quarantine")
    if found is not None and _same_shape(found, _QUARANTINE_COLUMNS[:-1]):  # before line_number
        conn.execute(f"alter table {QUARANTINE_TABLE} add column line_number BIGINT")
    for table, columns in (("ingested_files", _INGESTED_FILES_COLUMNS), ("quarantine", _QUARANTINE_COLUMNS)):
        found = existing_columns(conn, table)
        if found is not None and not _same_shape(found, columns):
            raise RuntimeError(
                f"{RAW_SCHEMA}.{table} has the columns {found}, expected {list(columns)}: drop the raw "
                "schema of the warehouse (it is rebuilt from the landing files) and run the ingest again"
            )
        _create(conn, table, columns)
    for source in SOURCES:
        columns = _raw_columns(CONTRACTS[source])
        found = existing_columns(conn, source)
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


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
