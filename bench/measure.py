"""Measure a command as a process tree: wall time, CPU time and memory, over time.

``run_measured`` starts the command and samples the whole process tree (the command and every
process it starts, such as the dbt subprocesses of a Dagster run) every ``interval`` seconds from
``/proc`` (Linux): resident memory summed over the tree and CPU seconds (user + system, including
the children already reaped). Per-stage figures are then cut from the samples by time:
``window_stats(samples, start, end)``.

Elsewhere than Linux only wall time and the whole command's CPU time and largest process RSS
(``resource.getrusage``) are known; the per-stage CPU and memory are then ``None``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Sample:
    at: float  # time.time()
    rss_bytes: int  # summed over the live tree
    cpu_seconds: float  # user + system of the tree, reaped children included


@dataclass
class Measured:
    returncode: int
    wall_seconds: float
    cpu_seconds: float  # the whole command, reaped descendants included (getrusage)
    max_process_rss_bytes: int  # the largest single process of the tree (getrusage)
    samples: list[Sample] = field(default_factory=list)

    @property
    def peak_tree_rss_bytes(self) -> int | None:
        """The largest sampled memory of the whole tree (None without /proc)."""
        return max((s.rss_bytes for s in self.samples), default=None)


def _stat(pid: int) -> tuple[int, float] | None:
    """(rss bytes, cpu seconds incl. reaped children) of one process, None if it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces: split after its closing parenthesis
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    rss_pages = int(fields[21])
    return rss_pages * _PAGE, (utime + stime + cutime + cstime) / _TICKS


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def tree_sample(root: int) -> Sample | None:
    """One sample of the tree under ``root``; None when /proc cannot tell."""
    first = _stat(root)
    if first is None:
        return None
    rss, cpu = first
    pending = _children(root)
    while pending:
        pid = pending.pop()
        stat = _stat(pid)
        if stat is None:
            continue
        rss += stat[0]
        cpu += stat[1]
        pending.extend(_children(pid))
    return Sample(time.time(), rss, cpu)


def run_measured(
    command: list[str], *, env: dict[str, str], log_path: Path, interval: float = 0.2
) -> Measured:
    """Run ``command`` to its end, its output into ``log_path``, sampling its process tree."""
    samples: list[Sample] = []
    stop = threading.Event()
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

        def sample() -> None:
            while not stop.is_set():
                found = tree_sample(process.pid) if _PROC.is_dir() else None
                if found is not None:
                    samples.append(found)
                stop.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        returncode=process.returncode,
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        max_process_rss_bytes=usage.ru_maxrss * (1 if _is_macos() else 1024),
        samples=samples,
    )


def window_stats(samples: list[Sample], start: float, end: float) -> dict[str, float | None]:
    """CPU seconds and peak tree memory between two ``time.time()`` instants, from the samples."""
    inside = [s for s in samples if start <= s.at <= end]
    if not samples:
        return {"cpu_seconds": None, "peak_rss_mb": None}
    before = [s for s in samples if s.at <= start]
    after = [s for s in samples if s.at >= end]
    first = before[-1] if before else samples[0]
    last = after[0] if after else samples[-1]
    cpu = max(last.cpu_seconds - first.cpu_seconds, 0.0)
    peak = max((s.rss_bytes for s in inside or [first, last]), default=0)
    return {"cpu_seconds": round(cpu, 1), "peak_rss_mb": round(peak / 2**20)}


def _is_macos() -> bool:
    return os.uname().sysname == "Darwin"


def self_max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if _is_macos() else 1024)
