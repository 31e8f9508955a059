"""The landing folder: day folders, their data files and their fingerprints (size and SHA-256).

ONE implementation of "which days are new or changed" for the loader, `lifecycle run`, the landing
sensor and `lifecycle status`. No Dagster here."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.landing.contract import (
    CONTRACTS,
    FILE_FORMATS,
    SOURCES,
    SourceContract,
)
from orchestration.landing.tables import INGESTED_FILES_TABLE, existing_columns

_DAY_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")


# ---------------------------------------------------------------------------------------------
# Landing folder


@dataclass(frozen=True)
class DataFile:
    relpath: str  # POSIX, relative to the landing folder
    path: Path
    file_format: str
    size: int


@dataclass(frozen=True)
class Ignored:
    """An entry of the landing folder that no load reads, and why (listed in the load report and
    named by the non-blocking check ``raw_<source>__landing_folder``)."""

    path: str  # POSIX, relative to the landing folder; a folder ends in "/"
    reason: str


@dataclass(frozen=True)
class DayFolder:
    partition_date: dt.date
    files: tuple[DataFile, ...]
    ignored: tuple[Ignored, ...]


@dataclass(frozen=True)
class SourceFolder:
    """What ``<landing>/<source>/`` holds: day folders with data files, and everything else."""

    source: str
    days: dict[dt.date, DayFolder]
    ignored: tuple[Ignored, ...]  # not in a day folder of ``days`` (the days' own are in each DayFolder)

    def all_ignored(self) -> list[Ignored]:
        """Every ignored entry under ``<source>/``, day folders' contents included, by path."""
        found = [*self.ignored, *(entry for folder in self.days.values() for entry in folder.ignored)]
        return sorted(found, key=lambda entry: entry.path)

    def later_than(self, day: dt.date | None) -> list[dt.date]:
        """The day folders (with data files) dated after ``day``, sorted ([] when ``day`` is None)."""
        return [] if day is None else sorted(d for d in self.days if d > day)


HIDDEN = "the name starts with . or _ (hidden or temporary): never read"
SUB_FOLDER = "a sub-folder of a day folder: not read"
NO_DATA_FILE = "not a data file: data files end in " + ", ".join(FILE_FORMATS)
NOT_A_DATE = "not a real date: a day folder is named YYYY-MM-DD"
NOT_A_DAY_FOLDER = "not a day folder: day folders are named YYYY-MM-DD"
NOT_IN_A_DAY_FOLDER = "not in a day folder: files go in <source>/YYYY-MM-DD/"
EMPTY_DAY_FOLDER = "a day folder without data files"
NOT_A_FILE = "neither a regular file nor a folder"


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


def _broken_link(entry: Path) -> str | None:
    """Why ``entry`` is not read when it is a symbolic link to nothing (or a loop), else None."""
    if not entry.is_symlink() or entry.exists():
        return None
    try:
        target = os.readlink(entry)
    except OSError:
        target = "?"
    return f"a broken symbolic link (to {target}, which does not exist)"


def scan_day(landing_dir: Path, folder: Path, day: dt.date) -> DayFolder:
    files, ignored = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        rel = _relpath(entry, landing_dir)
        broken = _broken_link(entry)
        if broken is not None:
            ignored.append(Ignored(rel, broken))
        elif entry.is_dir():
            ignored.append(Ignored(rel + "/", HIDDEN if entry.name.startswith((".", "_")) else SUB_FOLDER))
        elif entry.name.startswith((".", "_")):
            ignored.append(Ignored(rel, HIDDEN))
        elif not entry.is_file():
            ignored.append(Ignored(rel, NOT_A_FILE))
        elif (fmt := _file_format(entry.name)) is None:
            ignored.append(Ignored(rel, NO_DATA_FILE))
        else:
            files.append(DataFile(rel, entry, fmt, entry.stat().st_size))
    return DayFolder(day, tuple(files), tuple(ignored))


def scan_source(landing_dir: Path, source: str) -> SourceFolder:
    """Day folders of ``<landing_dir>/<source>/`` holding at least one data file, and every other
    entry with the reason it is not read."""
    base = landing_dir / source
    days: dict[dt.date, DayFolder] = {}
    ignored: list[Ignored] = []
    if not base.is_dir():
        return SourceFolder(source, days, ())
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        rel = _relpath(entry, landing_dir)
        broken = _broken_link(entry)
        if broken is not None:
            ignored.append(Ignored(rel, broken))
            continue
        if not entry.is_dir():
            ignored.append(Ignored(rel, HIDDEN if entry.name.startswith((".", "_")) else NOT_IN_A_DAY_FOLDER))
            continue
        day = None if entry.name.startswith((".", "_")) else _day(entry.name)
        if day is None:
            if entry.name.startswith((".", "_")):
                reason = HIDDEN
            else:
                reason = NOT_A_DATE if _DAY_FOLDER.fullmatch(entry.name) else NOT_A_DAY_FOLDER
            ignored.append(Ignored(rel + "/", reason))
            continue
        folder = scan_day(landing_dir, entry, day)
        if folder.files:
            days[day] = folder
        else:
            ignored += [Ignored(rel + "/", EMPTY_DAY_FOLDER), *folder.ignored]
    return SourceFolder(source, days, tuple(ignored))


def landing_day_files(landing_dir: Path, source: str) -> dict[dt.date, list[Path]]:
    """Per day folder of ``<landing_dir>/<source>/``: its data files (what a load reads)."""
    contract_for(source)
    days = scan_source(Path(landing_dir), source).days
    return {day: [data_file.path for data_file in folder.files] for day, folder in sorted(days.items())}


def landing_partitions(landing_dir: Path, source: str) -> list[dt.date]:
    """The days of ``<landing_dir>/<source>/<YYYY-MM-DD>/`` folders holding a data file, sorted."""
    contract_for(source)
    return sorted(scan_source(Path(landing_dir), source).days)


def contract_for(source: str) -> SourceContract:
    if source not in CONTRACTS:
        raise ValueError(f"unknown source {source!r}: the landing contract has {', '.join(SOURCES)}")
    return CONTRACTS[source]


def stored_fingerprints(conn: duckdb.DuckDBPyConnection, source: str) -> dict[dt.date, tuple]:
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


def is_unchanged(folder: DayFolder, stored: tuple | None) -> bool:
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
    contract_for(source)
    days = scan_source(Path(landing_dir), source).days
    stored: dict[dt.date, tuple] = {}
    if conn is not None and existing_columns(conn, "ingested_files") is not None:
        stored = stored_fingerprints(conn, source)
    return sorted(day for day, folder in days.items() if not is_unchanged(folder, stored.get(day)))
