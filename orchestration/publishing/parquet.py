"""The Parquet export of each version and the pointer to the published one."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import duckdb

from orchestration.publishing.files import (
    fsync_path,
    write_text_atomically,
)
from orchestration.publishing.layout import (
    PARQUET_OPTIONS,
    PARTIAL_SUFFIX,
    MartLayout,
    PublicationError,
)


def export_parquet(mart_path: Path, target_dir: Path) -> dict[str, int]:
    """Write every table of a mart file as ``<target_dir>/<table>.parquet``; return the file sizes.

    Rows are written in a total order (``order by all``) with fixed settings, so the same data gives
    byte-identical files. The folder appears complete or not at all (written under a partial name,
    then renamed).
    """
    partial = target_dir.with_name(f".{target_dir.name}{PARTIAL_SUFFIX}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with duckdb.connect(str(mart_path), read_only=True) as conn:
        tables = [
            name for (name,) in conn.execute("select table_name from duckdb_tables() order by 1").fetchall()
        ]
        for table in tables:
            out = partial / f"{table}.parquet"
            # the path is a parameter, never pasted into the SQL (a folder may hold a quote)
            conn.execute(f"copy (select * from {table} order by all) to ? ({PARQUET_OPTIONS})", [str(out)])
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


def point_parquet_to(layout: MartLayout, version: str) -> None:
    """Point the Parquet pointers at ``version``: first ``parquet/CURRENT`` (the pointer of record,
    a one-line text file replaced atomically), then the symbolic link ``parquet/current`` derived
    from it. A process killed between the two leaves the link behind the file, never ahead of it;
    :func:`orchestration.publishing.versions.recover_interrupted` brings it level."""
    if not layout.parquet_snapshot(version).is_dir():
        raise PublicationError(f"no Parquet snapshot {layout.parquet_snapshot(version)} to point to")
    write_text_atomically(layout.parquet_pointer_file, version + "\n")
    _link_to(layout, version)
    fsync_path(layout.parquet_dir)


def _link_to(layout: MartLayout, version: str) -> None:
    try:
        tmp = layout.parquet_dir / f".current.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(version, tmp, target_is_directory=True)
        os.replace(tmp, layout.parquet_pointer)
    except (OSError, NotImplementedError):  # no symbolic links here: CURRENT alone says which one
        pass


def parquet_pointers(layout: MartLayout) -> tuple[str | None, str | None]:
    """What ``parquet/CURRENT`` and the link ``parquet/current`` name (None where absent)."""
    recorded = link = None
    with contextlib.suppress(OSError):
        recorded = layout.parquet_pointer_file.read_text().strip() or None
    with contextlib.suppress(OSError):
        link = os.readlink(layout.parquet_pointer)
    return recorded, link


def parquet_pointer_target(layout: MartLayout) -> str | None:
    """The version the Parquet pointer names: ``parquet/CURRENT``, the pointer of record (the
    symbolic link where the file is missing)."""
    recorded, link = parquet_pointers(layout)
    return recorded or link
