"""Content hashes of a mart file: the same data gives the same hash, whatever the row order."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import duckdb

from orchestration.publishing.layout import (
    RUN_COLUMNS,
)


def table_content_hashes(
    mart_path: Path, ignore_columns: Mapping[str, Iterable[str]] = RUN_COLUMNS
) -> dict[str, str]:
    """SHA-256 per table of its column names and types and its rows, independent of row order (the
    MD5 of each row's text, sorted). ``ignore_columns`` (table -> columns) are left out; by default
    ``mart_info``'s run id and build time, so two runs on the same data hash the same."""
    hashes = {}
    with duckdb.connect(str(mart_path), read_only=True) as conn:
        tables = [
            name for (name,) in conn.execute("select table_name from duckdb_tables() order by 1").fetchall()
        ]
        for table in tables:
            ignored = set(ignore_columns.get(table, ()))
            columns = [
                (name, kind)
                for name, kind in conn.execute(
                    "select column_name, data_type from duckdb_columns() "
                    "where table_name = ? order by column_index",
                    [table],
                ).fetchall()
                if name not in ignored
            ]
            if not columns:
                continue
            select_list = ", ".join(f'"{name}"' for name, _ in columns)
            (rows_hash,) = conn.execute(
                "select coalesce(string_agg(row_hash, '' order by row_hash), '') from "
                f"(select md5(cast(r as varchar)) as row_hash from (select {select_list} from {table}) r)"
            ).fetchone()
            digest = hashlib.sha256(repr(columns).encode())
            digest.update(rows_hash.encode())
            hashes[table] = digest.hexdigest()
    return hashes


def mart_content_hash(mart_path: Path, ignore_columns: Mapping[str, Iterable[str]] = RUN_COLUMNS) -> str:
    """One SHA-256 over ``table_content_hashes``."""
    tables = table_content_hashes(mart_path, ignore_columns)
    return hashlib.sha256(repr(sorted(tables.items())).encode()).hexdigest()
