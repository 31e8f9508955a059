"""What a load did: per file, per (source, day) partition and per source. No Dagster here."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from orchestration.landing.folders import Ignored

PartitionStatus = Literal["loaded", "unchanged", "failed"]


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

    @property
    def quarantine_share(self) -> float:
        """Quarantined rows / rows read (0.0 when nothing was read)."""
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


@dataclass
class SourceReport:
    """What one ``ingest_source`` call did, partition by partition.

    ``missing_partitions``: days that are loaded (or were asked for) but have no data files in
    the landing folder; their loaded rows are left as they are. ``later_partitions``: day folders
    dated after the last day the call may load (``until``): left for later runs. ``ignored_paths``:
    every entry under ``<landing>/<source>/`` that no load reads (not a day folder, not a real
    date, not a data file, a hidden name, a sub-folder, a broken symbolic link), with the reason.
    """

    source: str
    partitions: list[PartitionReport] = field(default_factory=list)
    missing_partitions: list[dt.date] = field(default_factory=list)
    later_partitions: list[dt.date] = field(default_factory=list)
    ignored_paths: list[Ignored] = field(default_factory=list)
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
            "later_partitions": [d.isoformat() for d in self.later_partitions],
            "extra_columns": {
                f.path: f.extra_columns for p in self.partitions for f in p.files if f.extra_columns
            },
            "ignored_paths": {entry.path: entry.reason for entry in self.ignored_paths},
            "seconds": round(self.seconds, 3),
        }

    def files(self) -> list[dict[str, Any]]:
        """Every file report as a JSON-able dict."""
        return [
            {**asdict(f), "partition_date": f.partition_date.isoformat()}
            for p in self.partitions
            for f in p.files
        ]
