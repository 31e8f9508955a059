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
import os
import shutil
import time
from pathlib import Path

import duckdb

from orchestration.publishing.files import (
    files_equal,
    fsync_path,
    link_or_copy,
    publication_lock,
    remove_duckdb_file,
    wal_path,
)
from orchestration.publishing.layout import (
    DEFAULT_KEEP_VERSIONS,
    PARTIAL_SUFFIX,
    PENDING_SUFFIX,
    TIMESTAMP_FORMAT,
    MartLayout,
    MartVersion,
    Publication,
    PublicationError,
    is_version_name,
    parse_version_name,
)
from orchestration.publishing.parquet import (
    export_parquet,
    parquet_pointers,
    point_parquet_to,
)

# -------------------------------------------------------------------------------------- publish


def new_version_name(layout: MartLayout, run_id: str, now: dt.datetime | None = None) -> str:
    """``<UTC time to the microsecond>_<first 8 characters of the run id>``, later than every kept one."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    kept = version_names(layout)
    if kept:
        moment = max(moment, parse_version_name(kept[-1])[0] + dt.timedelta(microseconds=1))
    tag = "".join(ch for ch in run_id if ch.isalnum())[:8] or "run"
    return f"{moment.strftime(TIMESTAMP_FORMAT)}_{tag}"


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
    link_or_copy(staged, layout.pending_version_path(version))
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


def finish_publication(layout: MartLayout, version: str, keep_versions: int) -> tuple[list[str], list[str]]:
    """After the swap: complete the history entry, move the Parquet pointer, prune old versions.
    Returns (kept, pruned) version names."""
    pending = layout.pending_version_path(version)
    if pending.exists():
        os.replace(pending, layout.version_path(version))
        fsync_path(layout.versions_dir)
    point_parquet_to(layout, version)
    return prune_versions(layout, keep_versions)


def recover_interrupted(layout: MartLayout) -> list[str]:
    """Finish or discard what a killed publish or rollback left behind; return what it did.

    A pending history entry that is the published file (killed after the swap) is completed; other
    pending entries, partial Parquet folders, temporary pointer files and a rollback's staged copy are
    removed. The Parquet pointers follow the published file: ``parquet/CURRENT`` is set to the kept
    version that is published, and the link ``parquet/current`` to what ``CURRENT`` names. A stale
    candidate is left to ``build_staged_mart``, which replaces it.
    """
    done = []
    for pending in layout.versions_dir.glob(f".*.duckdb{PENDING_SUFFIX}"):
        if layout.published.exists() and os.path.samefile(pending, layout.published):
            os.replace(pending, layout.versions_dir / pending.name[1 : -len(PENDING_SUFFIX)])
            done.append(f"completed the history entry {pending.name[1 : -len(PENDING_SUFFIX)]}")
        else:
            pending.unlink()
            done.append(f"removed the unpublished history entry {pending.name}")
    for partial in layout.parquet_dir.glob(f".*{PARTIAL_SUFFIX}"):
        shutil.rmtree(partial, ignore_errors=True)
        done.append(f"removed the partial Parquet folder {partial.name}")
    for tmp in layout.parquet_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        done.append(f"removed the temporary file {tmp.name}")
    if layout.rollback_staging.exists():
        remove_duckdb_file(layout.rollback_staging)
        done.append(f"removed the rollback's staged copy {layout.rollback_staging.name}")
    recorded, link = parquet_pointers(layout)
    truth = current_version(layout) or recorded
    if truth and layout.parquet_snapshot(truth).is_dir() and (recorded, link) != (truth, truth):
        point_parquet_to(layout, truth)
        done.append(
            f"pointed the Parquet pointers at {truth} (parquet/CURRENT named {recorded}, "
            f"parquet/current named {link})"
        )
    return done


def needs_recovery(layout: MartLayout) -> bool:
    """Whether :func:`recover_interrupted` has something to do (read-only; cheap)."""
    if not layout.root.is_dir():
        return False
    if any(layout.versions_dir.glob(f".*.duckdb{PENDING_SUFFIX}")) or layout.rollback_staging.exists():
        return True
    if any(layout.parquet_dir.glob(f".*{PARTIAL_SUFFIX}")) or any(layout.parquet_dir.glob(".*.tmp")):
        return True
    recorded, link = parquet_pointers(layout)
    truth = current_version(layout) or recorded
    return bool(truth and layout.parquet_snapshot(truth).is_dir() and (recorded, link) != (truth, truth))


def repair(layout: MartLayout) -> list[str]:
    """:func:`recover_interrupted` under the publication lock (what a run does before it starts and
    `lifecycle status` does when no run holds the data folder); returns what it did."""
    if not layout.root.is_dir():
        return []
    with publication_lock(layout):
        return recover_interrupted(layout)


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


def version_names(layout: MartLayout) -> list[str]:
    """Kept versions, oldest first (the names sort by publication time)."""
    if not layout.versions_dir.is_dir():
        return []
    return sorted(
        path.name[: -len(".duckdb")]
        for path in layout.versions_dir.glob("*.duckdb")
        if not path.name.startswith(".") and is_version_name(path.name[: -len(".duckdb")])
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
            if files_equal(layout.version_path(name), published):
                return name
    return None


def prune_versions(layout: MartLayout, keep_versions: int) -> tuple[list[str], list[str]]:
    """Remove all but the newest ``keep_versions`` versions (and their Parquet snapshots), oldest
    first; the published version is never removed. Returns (kept, pruned)."""
    if keep_versions < 1:
        raise ValueError(f"keep_versions must be at least 1, got {keep_versions}")
    names = version_names(layout)
    keep = set(names[-keep_versions:])
    keep.update(name for name in (current_version(layout), *parquet_pointers(layout)) if name)
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
                and is_version_name(folder.name)
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
        published_at, run_tag = parse_version_name(name)
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
