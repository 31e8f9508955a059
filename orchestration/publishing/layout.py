"""Where the published mart, its candidate, its versions and its Parquet snapshots live; version names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# DuckDB releases before 2.0 (which many BI drivers embed) cannot read a 2.0 file; a v1.4.0 file
# opens in DuckDB 1.4.0 and every later release.
MART_STORAGE_VERSION = "v1.4.0"
MART_FILE_NAME = "lifecycle_mart.duckdb"
DEFAULT_KEEP_VERSIONS = 7
# Columns that differ between two runs on the same data; the content hash leaves them out.
RUN_COLUMNS: Mapping[str, tuple[str, ...]] = {"mart_info": ("run_id", "built_at")}
# Fixed Parquet settings and a total row order: the same data gives byte-identical files.
PARQUET_OPTIONS = "format parquet, compression snappy, row_group_size 122880, parquet_version v1"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
PENDING_SUFFIX = ".pending"
PARTIAL_SUFFIX = ".partial"


class PublicationError(RuntimeError):
    """A publication step cannot go on; the published mart is unchanged."""


@dataclass(frozen=True)
class MartLayout:
    """Where the published mart, its candidate, its versions and its Parquet snapshots live."""

    root: Path
    file_name: str = MART_FILE_NAME

    @property
    def published(self) -> Path:
        return self.root / self.file_name

    @property
    def staging(self) -> Path:
        return self.root / "_staging" / self.file_name

    @property
    def rollback_staging(self) -> Path:
        return self.root / "_staging" / f"rollback_{self.file_name}"

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    @property
    def parquet_dir(self) -> Path:
        return self.root / "parquet"

    @property
    def parquet_pointer(self) -> Path:
        return self.parquet_dir / "current"

    @property
    def parquet_pointer_file(self) -> Path:
        return self.parquet_dir / "CURRENT"

    def version_path(self, version: str) -> Path:
        return self.versions_dir / f"{version}.duckdb"

    def pending_version_path(self, version: str) -> Path:
        return self.versions_dir / f".{version}.duckdb{PENDING_SUFFIX}"

    def parquet_snapshot(self, version: str) -> Path:
        return self.parquet_dir / version


@dataclass(frozen=True)
class MartVersion:
    """One kept version of the published mart."""

    name: str
    path: Path
    published_at: dt.datetime
    run_id: str
    size_bytes: int
    is_current: bool
    as_of_date: dt.date | None = None
    built_at: dt.datetime | None = None


@dataclass(frozen=True)
class Publication:
    """What one publish (or rollback) did."""

    version: str
    published: Path
    parquet_snapshot: Path
    kept_versions: list[str]
    pruned_versions: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- files


def parse_version_name(name: str) -> tuple[dt.datetime, str]:
    stamp, _, run_id = name.partition("_")
    return dt.datetime.strptime(stamp, TIMESTAMP_FORMAT), run_id


def is_version_name(name: str) -> bool:
    try:
        parse_version_name(name)
    except ValueError:
        return False
    return True
