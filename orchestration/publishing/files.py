"""File steps that survive a crash: fsync, atomic text writes, hard links, the publication lock."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from orchestration.publishing.layout import (
    MartLayout,
)


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


def files_equal(left: Path, right: Path, chunk: int = 1 << 20) -> bool:
    if left.stat().st_size != right.stat().st_size:
        return False
    with left.open("rb") as a, right.open("rb") as b:
        while True:
            block = a.read(chunk)
            if block != b.read(chunk):
                return False
            if not block:
                return True


def write_text_atomically(path: Path, text: str) -> None:
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


def link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:  # no hard links on this file system (or across devices): pay for a copy
        shutil.copyfile(source, target)
        fsync_path(target)
