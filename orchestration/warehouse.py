"""Small helpers around DuckDB files: one place that opens them."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

# What DuckDB says when it cannot read a file because the file is broken (truncated, overwritten,
# a block whose checksum does not match), as opposed to busy (another process holds its lock).
_DAMAGE_MESSAGES = (
    "Could not read enough bytes",
    "not a valid DuckDB database file",
    "Corrupt database file",
)
_LOCK_CONFLICT = "Could not set lock on file"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


class DamagedDatabaseError(RuntimeError):
    """A DuckDB file that cannot be read because the file itself is broken."""

    def __init__(self, path: Path, error: BaseException):
        self.path = path
        self.error = error
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        super().__init__(f"the DuckDB file {path} is damaged and cannot be read ({first_line})")


def is_damage(error: BaseException) -> bool:
    """Whether a DuckDB error says the file is broken (not busy, not a wrong query)."""
    text = str(error)
    return (
        isinstance(error, duckdb.Error)
        and _LOCK_CONFLICT not in text
        and any(message in text for message in _DAMAGE_MESSAGES)
    )


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file; a broken file raises :class:`DamagedDatabaseError` naming it."""
    if read_only and not path.exists():
        raise FileNotFoundError(f"DuckDB file {path} does not exist: materialise the upstream assets first")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as err:
        if is_damage(err):
            raise DamagedDatabaseError(path, err) from err
        raise


@dataclass(frozen=True)
class FileState:
    """Whether a DuckDB file can be opened now: ``ok``, ``missing``, ``busy`` (another process holds
    its lock: ``pid`` and ``program`` say which) or ``damaged`` (``detail`` says how)."""

    state: str
    detail: str = ""
    pid: int | None = None
    program: str | None = None


def file_state(path: Path) -> FileState:
    """Open ``path`` read-only for a moment to learn whether it is usable, busy or damaged."""
    if not path.exists():
        return FileState("missing")
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            conn.execute("select count(*) from duckdb_tables()").fetchall()
    except duckdb.Error as err:
        text = str(err)
        if _LOCK_CONFLICT in text:
            holder = _LOCK_HOLDER.search(text)
            if holder:
                return FileState("busy", text, int(holder["pid"]), holder["program"])
            return FileState("busy", text)
        if is_damage(err):
            return FileState("damaged", str(DamagedDatabaseError(path, err)))
        raise
    return FileState("ok")


def row_count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


def write_frames(
    path: Path, schema: str, frames: Mapping[str, pd.DataFrame], *, sort_rows: bool = False
) -> None:
    """Replace ``schema.<name>`` by each DataFrame, all in one transaction (what the Python model
    assets write back). pandas holds dates as datetimes: the ``*_date`` columns are stored as DATE,
    like the dbt models' dates. ``sort_rows`` stores the rows in sorted order (deterministic files)."""
    with connect(path) as conn:
        conn.execute(f"create schema if not exists {schema}")
        conn.execute("begin transaction")
        for name, frame in frames.items():
            conn.register("frame", frame)
            columns = ", ".join(
                f'cast("{c}" as date) as "{c}"' if str(c).endswith("_date") else f'"{c}"'
                for c in frame.columns
            )
            order = " order by all" if sort_rows else ""
            conn.execute(f"create or replace table {schema}.{name} as select {columns} from frame{order}")
            conn.unregister("frame")
        conn.execute("commit")


REBUILD_HINT = (
    "The landing files are the source of truth: `lifecycle rebuild` moves the damaged warehouse aside "
    "(kept, not deleted) and reloads every landing day into a new one, then builds, audits and "
    "publishes the mart as `lifecycle run` does."
)


def set_aside(path: Path, label: str, now: dt.datetime | None = None) -> Path | None:
    """Rename a DuckDB file (and its ``.wal``) to ``<name>.<label>-<UTC time>``, keeping it; return
    the new path (None when there was no file)."""
    if not path.exists():
        return None
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.{label}-{stamp}")
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + ".wal"))
    os.replace(path, target)
    return target
