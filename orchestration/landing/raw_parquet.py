"""Raw rows as Parquet, for a warehouse on another engine (Spark). No Dagster here."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

import duckdb

from orchestration.landing.tables import INGESTED_FILES_TABLE, RAW_SCHEMA

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
            "to ? (format parquet, compression snappy)",
            [day, str(partial)],
        )
        os.replace(partial, path)
        written.append(path)
    return written
