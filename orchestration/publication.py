"""Publication of the reporting mart as files: write-audit-publish, version history, rollback, Parquet.

No Dagster in here: ``orchestration/assets/publish.py`` calls these steps, ``lifecycle versions`` and
``lifecycle rollback`` call them too, and the crash-safety tests call them one by one in a process
they kill. The layout under ``<data dir>/mart/``::

    lifecycle_mart.duckdb                      the published file (BI tools open it read-only)
    _staging/lifecycle_mart.duckdb             the candidate, built and audited before it is swapped in
    versions/<UTC time>_<run id>.duckdb        the last N published files (hard links: no copy cost)
    parquet/<UTC time>_<run id>/<table>.parquet  the same N versions as Parquet
    parquet/current -> <UTC time>_<run id>     pointer (a symlink, swapped atomically)
    parquet/CURRENT                            the same pointer as a one-line text file

Publishing is a sequence of steps whose every prefix leaves a readable published mart: the staged
file is exported to Parquet and linked into the history under a pending name, then renamed over the
published file (the one atomic step readers can observe), then the history entry is completed, the
Parquet pointer moved and old versions pruned. A process killed anywhere in between leaves either
the previous or the new mart published, never a mix; ``recover_interrupted`` (run at the start of
every publish and rollback) finishes or discards what the killed process left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

# DuckDB releases before 2.0 (which many BI drivers embed) cannot read a 2.0 file; a v1.4.0 file
# opens in DuckDB 1.4.0 and every later release.
MART_STORAGE_VERSION = "v1.4.0"
MART_FILE_NAME = "lifecycle_mart.duckdb"
DEFAULT_KEEP_VERSIONS = 7
# Columns that differ between two runs on the same data; the content hash leaves them out.
RUN_COLUMNS: Mapping[str, tuple[str, ...]] = {"mart_info": ("run_id", "built_at")}
# Fixed Parquet settings and a total row order: the same data gives byte-identical files.
PARQUET_OPTIONS = "format parquet, compression snappy, row_group_size 122880, parquet_version v1"
_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_PENDING_SUFFIX = ".pending"
_PARTIAL_SUFFIX = ".partial"


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
        return self.versions_dir / f".{version}.duckdb{_PENDING_SUFFIX}"

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


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def remove_duckdb_file(path: Path) -> None:
    for candidate in (path, wal_path(path)):
        candidate.unlink(missing_ok=True)


def _files_equal(left: Path, right: Path, chunk: int = 1 << 20) -> bool:
    if left.stat().st_size != right.stat().st_size:
        return False
    with left.open("rb") as a, right.open("rb") as b:
        while True:
            block = a.read(chunk)
            if block != b.read(chunk):
                return False
            if not block:
                return True


def _write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def publication_lock(layout: MartLayout) -> Iterator[None]:
    """One publish or rollback at a time per mart folder (the kernel drops the lock of a killed process)."""
    layout.root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the orchestrator's one-writer pool still applies
        yield
        return
    with (layout.root / ".publish.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------ stage and audit


def build_staged_mart(
    warehouse_path: Path, staged_path: Path, run_id: str, tables: Mapping[str, str]
) -> dict[str, int]:
    """Copy the mart tables (published name -> warehouse table) from the warehouse into a new DuckDB
    file in storage version ``MART_STORAGE_VERSION``, plus ``mart_info``; return row counts.

    A candidate (or its ``.wal``) left by an earlier, interrupted run is removed first.
    """
    if not warehouse_path.exists():
        raise PublicationError(f"No warehouse at {warehouse_path}: materialise the upstream assets first")
    staged_path.parent.mkdir(parents=True, exist_ok=True)
    remove_duckdb_file(staged_path)
    counts: dict[str, int] = {}
    with duckdb.connect() as conn:
        conn.execute(f"attach '{warehouse_path}' as warehouse (read_only)")
        conn.execute(f"attach '{staged_path}' as mart (storage_version '{MART_STORAGE_VERSION}')")
        for table, source in tables.items():
            conn.execute(f"create table mart.main.{table} as select * from warehouse.{source}")
            counts[table] = int(conn.execute(f"select count(*) from mart.main.{table}").fetchone()[0])
        _write_mart_info(conn, run_id)
    return counts


def build_staged_mart_from_arrow(
    read_table: Callable[[str], pa.Table],
    staged_path: Path,
    run_id: str,
    tables: Mapping[str, str],
    column_order: Mapping[str, list[str]] | None = None,
) -> dict[str, int]:
    """``build_staged_mart`` for a warehouse on another engine (Spark): each mart table (published
    name -> warehouse table) is pulled whole as Arrow by ``read_table`` and written into the new DuckDB
    file, its columns in the order of ``column_order`` where given (the dbt contract's order; Spark
    stores partition columns last). The mart tables are aggregates and one row per user, so they fit
    on the publishing machine even when the facts behind them need a cluster."""
    column_order = column_order or {}
    staged_path.parent.mkdir(parents=True, exist_ok=True)
    remove_duckdb_file(staged_path)
    counts: dict[str, int] = {}
    with duckdb.connect() as conn:
        # each result fetched to the end: DuckDB 2.0 refuses register() while one is unfinished
        conn.execute(f"attach '{staged_path}' as mart (storage_version '{MART_STORAGE_VERSION}')").fetchall()
        for table, source in tables.items():
            pulled = read_table(source)
            if table in column_order:
                pulled = pulled.select(column_order[table])
            conn.register("pulled", pulled)
            conn.execute(f"create table mart.main.{table} as select * from pulled").fetchall()
            conn.unregister("pulled")
            counts[table] = int(conn.execute(f"select count(*) from mart.main.{table}").fetchall()[0][0])
        _write_mart_info(conn, run_id)
    return counts


def _write_mart_info(conn: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """``mart_info`` (as-of date, run id, build time) in the attached ``mart``, then detach it."""
    (as_of_date,) = conn.execute("select max(as_of_date) from mart.main.dim_users").fetchone()
    conn.execute(
        "create table mart.main.mart_info as select "
        "cast($as_of as date) as as_of_date, cast($run_id as varchar) as run_id, "
        "cast($built_at as timestamp) as built_at",
        {
            "as_of": as_of_date,
            "run_id": run_id,
            "built_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        },
    )
    conn.execute("checkpoint mart")
    conn.execute("detach mart")


def verify_staged_mart(staged_path: Path, tables: Iterable[str]) -> dict[str, int]:
    """The file-level audit of the candidate: it exists, has no write-ahead log, opens read-only and
    holds every table and one ``mart_info`` row. Returns row counts per table.

    (The data-level audit, the Great Expectations suites and reconciliation rules, runs in the
    blocking Dagster checks on the same file.)
    """
    if not staged_path.exists():
        raise PublicationError(f"No staged mart at {staged_path}: materialise mart_staging first")
    if wal_path(staged_path).exists():
        raise PublicationError(
            f"{staged_path} has a write-ahead log: it was not checkpointed; not publishing. "
            "Rebuild it (materialise mart_staging)."
        )
    with duckdb.connect(str(staged_path), read_only=True) as conn:
        present = {name for (name,) in conn.execute("select table_name from duckdb_tables()").fetchall()}
        missing = sorted(set(tables) - present)
        if missing:
            raise PublicationError(f"staged mart {staged_path} lacks the tables {missing}: not publishing")
        counts = {
            name: int(conn.execute(f"select count(*) from {name}").fetchone()[0]) for name in sorted(present)
        }
    if counts.get("mart_info") != 1:
        raise PublicationError(f"staged mart {staged_path}: mart_info must hold exactly one row")
    return counts


# -------------------------------------------------------------------------------------- publish


def new_version_name(layout: MartLayout, run_id: str, now: dt.datetime | None = None) -> str:
    """``<UTC time to the microsecond>_<first 8 characters of the run id>``, later than every kept one."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    kept = version_names(layout)
    if kept:
        moment = max(moment, _parse_version(kept[-1])[0] + dt.timedelta(microseconds=1))
    tag = "".join(ch for ch in run_id if ch.isalnum())[:8] or "run"
    return f"{moment.strftime(_TIMESTAMP_FORMAT)}_{tag}"


def export_parquet(mart_path: Path, target_dir: Path) -> dict[str, int]:
    """Write every table of a mart file as ``<target_dir>/<table>.parquet``; return the file sizes.

    Rows are written in a total order (``order by all``) with fixed settings, so the same data gives
    byte-identical files. The folder appears complete or not at all (written under a partial name,
    then renamed).
    """
    partial = target_dir.with_name(f".{target_dir.name}{_PARTIAL_SUFFIX}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with duckdb.connect(str(mart_path), read_only=True) as conn:
        tables = [
            name for (name,) in conn.execute("select table_name from duckdb_tables() order by 1").fetchall()
        ]
        for table in tables:
            out = partial / f"{table}.parquet"
            conn.execute(f"copy (select * from {table} order by all) to '{out}' ({PARQUET_OPTIONS})")
    sizes = {}
    for table in tables:
        path = partial / f"{table}.parquet"
        fsync_path(path)
        sizes[table] = path.stat().st_size
    fsync_path(partial)
    shutil.rmtree(target_dir, ignore_errors=True)
    os.replace(partial, target_dir)
    fsync_path(target_dir.parent)
    return sizes


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:  # no hard links on this file system (or across devices): pay for a copy
        shutil.copyfile(source, target)
        fsync_path(target)


def prepare_version(layout: MartLayout, version: str) -> dict[str, float]:
    """Before the swap: export the audited candidate to Parquet and link it into the history under a
    pending name (completed only once it is published). Returns the seconds per step."""
    staged = layout.staging
    if wal_path(staged).exists():
        raise PublicationError(f"{staged} has a write-ahead log: it was not checkpointed; not publishing")
    seconds = {}
    started = time.perf_counter()
    fsync_path(staged)
    export_parquet(staged, layout.parquet_snapshot(version))
    seconds["parquet_export"] = time.perf_counter() - started
    started = time.perf_counter()
    layout.versions_dir.mkdir(parents=True, exist_ok=True)
    _link_or_copy(staged, layout.pending_version_path(version))
    fsync_path(layout.versions_dir)
    seconds["record_version"] = time.perf_counter() - started
    return seconds


def swap_in(staged_path: Path, published_path: Path) -> None:
    """Atomically replace the published file with the audited staged file.

    Readers that reconnect see the new version; readers holding a connection keep the old one.
    """
    published_path.parent.mkdir(parents=True, exist_ok=True)
    if wal_path(staged_path).exists():
        raise PublicationError(
            f"{staged_path} has a write-ahead log: it was not checkpointed; not publishing"
        )
    fsync_path(staged_path)
    # A stale .wal beside the published file would make the swapped-in file refuse to open.
    wal_path(published_path).unlink(missing_ok=True)
    os.replace(staged_path, published_path)
    fsync_path(published_path.parent)


def point_parquet_to(layout: MartLayout, version: str) -> None:
    """Swap the Parquet pointer (``parquet/current`` symlink and ``parquet/CURRENT`` file) atomically."""
    if not layout.parquet_snapshot(version).is_dir():
        raise PublicationError(f"no Parquet snapshot {layout.parquet_snapshot(version)} to point to")
    try:
        tmp = layout.parquet_dir / f".current.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(version, tmp, target_is_directory=True)
        os.replace(tmp, layout.parquet_pointer)
    except (OSError, NotImplementedError):  # no symlinks here: CURRENT alone says which one
        pass
    _write_text_atomically(layout.parquet_pointer_file, version + "\n")
    fsync_path(layout.parquet_dir)


def parquet_pointer_target(layout: MartLayout) -> str | None:
    """The version the Parquet pointer names (the CURRENT file, else the symlink)."""
    with contextlib.suppress(OSError):
        return layout.parquet_pointer_file.read_text().strip() or None
    with contextlib.suppress(OSError):
        return os.readlink(layout.parquet_pointer)
    return None


def finish_publication(layout: MartLayout, version: str, keep_versions: int) -> tuple[list[str], list[str]]:
    """After the swap: complete the history entry, move the Parquet pointer, prune old versions.
    Returns (kept, pruned) version names."""
    pending = layout.pending_version_path(version)
    if pending.exists():
        os.replace(pending, layout.version_path(version))
        fsync_path(layout.versions_dir)
    point_parquet_to(layout, version)
    return prune_versions(layout, keep_versions)


def recover_interrupted(layout: MartLayout) -> None:
    """Finish or discard what a killed publish or rollback left behind.

    A pending history entry that is the published file (killed after the swap) is completed and the
    Parquet pointer moved to it; other pending entries, partial Parquet folders and temporary
    pointer files are removed. A stale candidate is left to ``build_staged_mart``, which replaces it.
    """
    for pending in layout.versions_dir.glob(f".*.duckdb{_PENDING_SUFFIX}"):
        if layout.published.exists() and os.path.samefile(pending, layout.published):
            os.replace(pending, layout.versions_dir / pending.name[1 : -len(_PENDING_SUFFIX)])
        else:
            pending.unlink()
    for partial in layout.parquet_dir.glob(f".*{_PARTIAL_SUFFIX}"):
        shutil.rmtree(partial, ignore_errors=True)
    for tmp in layout.parquet_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    remove_duckdb_file(layout.rollback_staging)
    current = current_version(layout)
    if current and layout.parquet_snapshot(current).is_dir() and parquet_pointer_target(layout) != current:
        point_parquet_to(layout, current)


def publish_staged_mart(
    layout: MartLayout,
    run_id: str,
    keep_versions: int = DEFAULT_KEEP_VERSIONS,
    now: dt.datetime | None = None,
) -> Publication:
    """Publish the audited candidate ``layout.staging``: Parquet export and history entry, atomic
    swap over the published file, Parquet pointer, pruning to the last ``keep_versions`` versions."""
    if keep_versions < 1:
        raise ValueError(f"keep_versions must be at least 1, got {keep_versions}")
    started = time.perf_counter()
    with publication_lock(layout):
        recover_interrupted(layout)
        version = new_version_name(layout, run_id, now)
        seconds = prepare_version(layout, version)
        step = time.perf_counter()
        swap_in(layout.staging, layout.published)
        seconds["swap"] = time.perf_counter() - step
        step = time.perf_counter()
        kept, pruned = finish_publication(layout, version, keep_versions)
        seconds["pointer_and_prune"] = time.perf_counter() - step
    seconds["total"] = time.perf_counter() - started
    return Publication(version, layout.published, layout.parquet_snapshot(version), kept, pruned, seconds)


# ------------------------------------------------------------------------------------- versions


def _parse_version(name: str) -> tuple[dt.datetime, str]:
    stamp, _, run_id = name.partition("_")
    return dt.datetime.strptime(stamp, _TIMESTAMP_FORMAT), run_id


def _is_version_name(name: str) -> bool:
    try:
        _parse_version(name)
    except ValueError:
        return False
    return True


def version_names(layout: MartLayout) -> list[str]:
    """Kept versions, oldest first (the names sort by publication time)."""
    if not layout.versions_dir.is_dir():
        return []
    return sorted(
        path.name[: -len(".duckdb")]
        for path in layout.versions_dir.glob("*.duckdb")
        if not path.name.startswith(".") and _is_version_name(path.name[: -len(".duckdb")])
    )


def current_version(layout: MartLayout) -> str | None:
    """The kept version that is published now: the same file (a publish links it) or the same bytes
    (a rollback copies it). None when the published file is not among the kept versions."""
    published = layout.published
    if not published.exists():
        return None
    names = version_names(layout)
    # (a version pruned by a publication meanwhile is simply skipped: `lifecycle versions` takes no lock)
    for name in reversed(names):
        with contextlib.suppress(FileNotFoundError):
            if os.path.samefile(layout.version_path(name), published):
                return name
    for name in reversed(names):
        with contextlib.suppress(FileNotFoundError):
            if _files_equal(layout.version_path(name), published):
                return name
    return None


def prune_versions(layout: MartLayout, keep_versions: int) -> tuple[list[str], list[str]]:
    """Remove all but the newest ``keep_versions`` versions (and their Parquet snapshots), oldest
    first; the published version is never removed. Returns (kept, pruned)."""
    if keep_versions < 1:
        raise ValueError(f"keep_versions must be at least 1, got {keep_versions}")
    names = version_names(layout)
    keep = set(names[-keep_versions:])
    keep.update(name for name in (current_version(layout), parquet_pointer_target(layout)) if name)
    pruned = [name for name in names if name not in keep]
    for name in pruned:
        layout.version_path(name).unlink(missing_ok=True)
        shutil.rmtree(layout.parquet_snapshot(name), ignore_errors=True)
    # Parquet snapshots of versions never published (a publish killed before its swap)
    if layout.parquet_dir.is_dir():
        for folder in layout.parquet_dir.iterdir():
            if (
                folder.is_dir()
                and not folder.is_symlink()
                and _is_version_name(folder.name)
                and folder.name not in keep
            ):
                shutil.rmtree(folder, ignore_errors=True)
    return [name for name in names if name in keep], pruned


def list_versions(layout: MartLayout) -> list[MartVersion]:
    """Kept versions, oldest first, with their as-of date and build time read from ``mart_info``."""
    current = current_version(layout)
    versions = []
    for name in version_names(layout):
        path = layout.version_path(name)
        published_at, run_tag = _parse_version(name)
        as_of_date = built_at = None
        run_id = run_tag
        try:
            size_bytes = path.stat().st_size
        except FileNotFoundError:  # pruned meanwhile
            continue
        with contextlib.suppress(duckdb.Error), duckdb.connect(str(path), read_only=True) as conn:
            as_of_date, run_id, built_at = conn.execute(
                "select as_of_date, run_id, built_at from mart_info"
            ).fetchone()
        versions.append(
            MartVersion(
                name=name,
                path=path,
                published_at=published_at,
                run_id=run_id,
                size_bytes=size_bytes,
                is_current=name == current,
                as_of_date=as_of_date,
                built_at=built_at,
            )
        )
    return versions


def format_versions(versions: list[MartVersion]) -> list[str]:
    """The kept versions as a table, newest first (what ``lifecycle versions`` prints)."""
    lines = [f"  {'version':<34}{'as of':<12}{'run id':<38}{'built at (UTC)':<21}{'size':>12}"]
    for version in reversed(versions):
        built = version.built_at.strftime("%Y-%m-%d %H:%M:%S") if version.built_at else "?"
        lines.append(
            f"{'*' if version.is_current else ' '} {version.name:<34}{version.as_of_date or '?'!s:<12}"
            f"{version.run_id:<38}{built:<21}{version.size_bytes:>12,}"
        )
    return lines


def rollback(layout: MartLayout, to: str | None = None) -> Publication:
    """Publish a kept version again (default: the one before the current one) through the same
    atomic swap; the history file is copied to a staging name first, so it stays intact."""
    started = time.perf_counter()
    with publication_lock(layout):
        recover_interrupted(layout)
        names = version_names(layout)
        if not names:
            raise PublicationError(f"no kept versions under {layout.versions_dir}: nothing to roll back to")
        current = current_version(layout)
        if to is None:
            if current is None:
                raise PublicationError(
                    f"the published mart {layout.published} is none of the kept versions: "
                    "name one with --to (see `lifecycle versions`)"
                )
            position = names.index(current)
            if position == 0:
                raise PublicationError(f"{current} is the oldest kept version: nothing older to roll back to")
            to = names[position - 1]
        elif to not in names:
            raise PublicationError(f"no kept version {to!r}; kept: {', '.join(names)}")
        source, temporary = layout.version_path(to), layout.rollback_staging
        temporary.parent.mkdir(parents=True, exist_ok=True)
        remove_duckdb_file(temporary)
        shutil.copyfile(source, temporary)
        if not layout.parquet_snapshot(to).is_dir():
            export_parquet(source, layout.parquet_snapshot(to))
        swap_in(temporary, layout.published)
        point_parquet_to(layout, to)
    seconds = {"total": time.perf_counter() - started}
    return Publication(to, layout.published, layout.parquet_snapshot(to), version_names(layout), [], seconds)


# ---------------------------------------------------------------------------------- content hash


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
