"""One run (or rollback, or rebuild) at a time per data folder: an OS file lock on the folder.

Every run of ``build_mart_job`` holds ``<data dir>/.lifecycle.lock`` for its whole life (the
settings resource takes it when the run starts; ``lifecycle run`` takes it before the run), and so
do ``lifecycle rollback`` and ``lifecycle rebuild``. The kernel drops the lock of a process that
dies, however it dies (SIGKILL, out of memory, power loss), so a free lock with a run still marked
as running means that run's process is gone. The holder writes who it is into the lock file (pid,
host, command, run id, start time), so the one refused can say whom it waits for.

No Dagster in here. Where ``fcntl`` is missing (Windows) the lock is a no-op and says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE_NAME = ".lifecycle.lock"
# What `lifecycle` exits with when the data folder is busy: EX_TEMPFAIL, "try again later".
BUSY_EXIT_CODE = 75


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds (or last held) the lock of a data folder."""

    pid: int
    host: str
    command: str
    started_at: str
    run_id: str | None = None

    def describe(self) -> str:
        run = f"run {self.run_id} " if self.run_id else ""
        return f"{run}({self.command}, pid {self.pid} on {self.host}, started {self.started_at})"


class DataFolderBusy(RuntimeError):
    """Another process holds the data folder."""

    def __init__(self, data_dir: Path, holder: Holder | None):
        self.data_dir = data_dir
        self.holder = holder
        who = holder.describe() if holder else "another process (it did not say who it is)"
        super().__init__(
            f"The data folder {data_dir} is in use by {who}: nothing was changed; "
            "wait for it to finish and try again."
        )


def lock_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / LOCK_FILE_NAME


def _key(data_dir: Path | str) -> str:
    return str(Path(data_dir).resolve())


# The locks this process holds: folder -> [open lock file, how many holds]. flock conflicts between
# two open files of the same process too, so a run inside `lifecycle run` (the settings resource
# taking the lock that the command already holds) must reuse the command's hold.
_HELD: dict[str, list] = {}


def now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def this_host() -> str:
    return socket.gethostname()


def read_holder(data_dir: Path | str) -> Holder | None:
    """The holder the lock file names (the current one while the lock is held)."""
    try:
        data = json.loads(lock_path(data_dir).read_text(encoding="utf-8"))
        return Holder(**{field.name: data.get(field.name) for field in dataclasses.fields(Holder)})
    except (OSError, ValueError, TypeError):
        return None


def _write_holder(handle, holder: Holder) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(dataclasses.asdict(holder), sort_keys=True))
    handle.flush()


@contextlib.contextmanager
def hold(
    data_dir: Path | str,
    command: str,
    *,
    run_id: str | None = None,
    wait: bool = False,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> Iterator[Holder | None]:
    """Hold the data folder's lock for the ``with`` block; yields the holder written into it.

    Raises :class:`DataFolderBusy` when another process holds it, unless ``wait``: then calls
    ``on_wait(holder)`` once and blocks until it is free. Re-entrant within a process (a nested
    hold reuses the outer one and names its run id when the outer one had none).
    """
    key = _key(data_dir)
    if key in _HELD:
        entry = _HELD[key]
        entry[1] += 1
        if run_id and not entry[2].run_id:
            entry[2] = dataclasses.replace(entry[2], run_id=run_id)
            _write_holder(entry[0], entry[2])
        try:
            yield entry[2]
        finally:
            entry[1] -= 1
        return
    path = lock_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = read_holder(data_dir)
                if not wait:
                    raise DataFolderBusy(Path(data_dir), holder) from None
                if on_wait:
                    on_wait(holder)
                fcntl.flock(handle, fcntl.LOCK_EX)
        holder = Holder(os.getpid(), this_host(), command, now_text(), run_id)
        _write_holder(handle, holder)
        _HELD[key] = [handle, 1, holder]
        try:
            yield holder
        finally:
            del _HELD[key]
    finally:
        handle.close()  # closing the file drops the lock


def held_here(data_dir: Path | str) -> bool:
    """Whether this process holds the data folder's lock."""
    return _key(data_dir) in _HELD


def is_free(data_dir: Path | str) -> bool | None:
    """Whether no process holds the data folder's lock (False when this process holds it); None
    when this platform has no file locks."""
    if held_here(data_dir):
        return False
    if fcntl is None:
        return None
    path = lock_path(data_dir)
    if not path.exists():
        return True
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


# ------------------------------------------------------------------------------------ processes
def process_started_at(pid: int) -> float | None:
    """When process ``pid`` of this machine started (epoch seconds), or None when it does not run
    (no such process, or a zombie). 0.0 when it runs but its start time cannot be read (no /proc)."""
    proc = Path("/proc")
    if (proc / "self" / "stat").exists():  # Linux
        try:
            fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            return None
        except (OSError, IndexError):
            return 0.0
        if fields[0] in ("Z", "X"):  # dead, waiting for its parent to collect it
            return None
        boot = next(
            float(line.split()[1])
            for line in (proc / "stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    if os.name != "posix":  # os.kill(pid, 0) would not test the process there, it would end it
        return 0.0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return 0.0


def process_running(pid: int, started_at: float | None = None, before: float | None = None) -> bool:
    """Whether process ``pid`` of this machine still runs and is the same process: it started at
    ``started_at`` (epoch seconds, when known), or no later than ``before`` (a pid taken over by a
    newer process is not the same one)."""
    now = process_started_at(pid)
    if now is None:
        return False
    if now and started_at:
        return abs(now - started_at) < 1.0  # /proc start times are in clock ticks
    if now and before:
        return now <= before + 1.0
    return True


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds passed; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
