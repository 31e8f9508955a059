"""What every run of the job does before its first step: a run whose process died never blocks it.

A run killed by SIGKILL, the out-of-memory killer or a power loss stays STARTED in the Dagster
instance and keeps the pool slots its steps had claimed (``duckdb_warehouse``), so every later run
would wait for them forever. Before a run starts, while it holds the data folder's lock
(``orchestration/data_lock.py``):

1. every run still marked as running whose process is gone is marked failed and its pool slots
   are freed, and the slots that ended runs still hold are freed (one line each);
2. a warehouse file still locked by another process (a dbt subprocess that outlived the run that
   started it, a tool holding it open read-write) is waited for, up to ``WAREHOUSE_WAIT_SECONDS``;
3. the Parquet pointers are repaired (``publishing/parquet.py``).

`lifecycle run` does this before it launches its run, so its lines come first; every run does it
again when its settings resource starts (``LifecycleSettings.yield_for_execution``), which covers
the runs launched by the daemon (UI, schedule, sensor).

How a dead run is told from a live one: each run carries the tags ``lifecycle/pid``,
``lifecycle/host`` and ``lifecycle/process_started`` of the process that runs it and
``lifecycle/data_dir``. On the same host the process is looked up (a pid now used by a process
started later is not the run's). On another host, the run is dead when no process holds its data
folder's lock (every run holds it for its whole life; the kernel drops it when the process dies).
A run without these tags (started by an older version, or killed before its settings resource
started) is judged by the pid Dagster logged for it, when the instance storage is on this machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from orchestration import data_lock
from orchestration.warehouse import file_state

DATA_DIR_TAG = "lifecycle/data_dir"
PID_TAG = "lifecycle/pid"
HOST_TAG = "lifecycle/host"
PROCESS_STARTED_TAG = "lifecycle/process_started"
TRIGGER_TAG = "lifecycle/trigger"
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
WAREHOUSE_WAIT_SECONDS = 600


def process_tags(data_dir: str | Path) -> dict[str, str]:
    """The tags that say which process runs a run, and on which data folder."""
    started = data_lock.process_started_at(os.getpid())
    return {
        DATA_DIR_TAG: str(Path(data_dir).resolve()),
        PID_TAG: str(os.getpid()),
        HOST_TAG: data_lock.this_host(),
        PROCESS_STARTED_TAG: f"{started:.2f}" if started else "",
    }


@dataclass(frozen=True)
class Verdict:
    """Whether a run marked as running has lost its process (None: cannot tell), and why."""

    dead: bool | None
    why: str


def judge(
    tags: dict[str, str],
    *,
    host: str,
    logged_pid: Callable[[], tuple[int, float] | None],
    lock_free: Callable[[str], bool | None],
    running: Callable[[int, float | None, float | None], bool],
    local_storage: bool,
) -> Verdict:
    """Decide whether the process of a run marked as running is gone (a pure function of its tags
    and of the probes it is given: ``lock_free(data_dir)``, ``running(pid, started_at, before)``,
    ``logged_pid()`` (the pid Dagster logged for the run and when))."""
    pid_text = tags.get(PID_TAG, "")
    if pid_text.isdigit():
        pid, run_host, data_dir = int(pid_text), tags.get(HOST_TAG, "?"), tags.get(DATA_DIR_TAG)
        where = f"pid {pid} on {run_host}"
        if run_host == host:
            started = float(tags.get(PROCESS_STARTED_TAG) or 0) or None
            if running(pid, started, None):
                return Verdict(False, f"its process ({where}) still runs")
            return Verdict(True, f"its process ({where}) is gone")
        free = lock_free(data_dir) if data_dir else None
        if free:
            return Verdict(True, f"its process ({where}) no longer holds the data folder {data_dir}")
        if free is False:
            return Verdict(False, f"its process ({where}) holds the data folder {data_dir}")
        return Verdict(None, f"its process ({where}) is on another machine")
    logged = logged_pid() if local_storage else None
    if logged:
        pid, logged_at = logged
        if running(pid, None, logged_at):
            return Verdict(False, f"its process (pid {pid}) still runs")
        return Verdict(True, f"its process (pid {pid}) is gone")
    return Verdict(None, "it does not say which process runs it")


def _logged_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The first pid Dagster logged for a run ("Started process for run (pid: N)", "Executing steps
    in process (pid: N)") and when."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = (data.metadata or {}).get("pid") if data else None
        text = getattr(pid, "text", None) or getattr(pid, "value", None)
        if text is not None and str(text).isdigit():
            return int(text), entry.timestamp
    return None


def _lock_free(data_dir: str) -> bool | None:
    if not Path(data_dir).is_dir():
        return True
    return data_lock.held_here(data_dir) or data_lock.is_free(data_dir)


def _local_storage(instance: dg.DagsterInstance) -> bool:
    """Whether the instance keeps its runs on this machine (SQLite, in memory), so that a pid Dagster
    logged is a pid of this machine."""
    module = type(instance.run_storage).__module__
    inner = getattr(instance.run_storage, "_storage", None)
    modules = f"{module} {type(inner).__module__ if inner is not None else ''}"
    return not any(remote in modules for remote in ("postgres", "mysql"))


def _slot_runs(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    """Run id -> the pools in which it holds a slot or waits for one."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    runs: dict[str, set[str]] = {}
    for key in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(key)
        for slot in info.claimed_slots:
            runs.setdefault(slot.run_id, set()).add(key)
        for step in info.pending_steps:
            runs.setdefault(step.run_id, set()).add(key)
    return runs


def _when(record: dg.RunRecord) -> str:
    moment = record.start_time or record.create_timestamp.timestamp()
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _free(instance: dg.DagsterInstance, run_id: str) -> None:
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def recover_dead_runs(instance: dg.DagsterInstance, *, by: str) -> list[str]:
    """Mark failed every run still marked as running whose process is gone and free its pool slots;
    free the slots that ended runs still hold. Returns one line per run it changed, and one per live
    run that holds a pool slot (whose steps this run will wait for). ``by`` names who does it."""
    lines = []
    slot_runs = _slot_runs(instance)
    records = {
        record.dagster_run.run_id: record
        for record in instance.get_run_records(filters=dg.RunsFilter(statuses=ACTIVE_STATUSES), limit=500)
    }
    if slot_runs:
        for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=list(slot_runs))):
            records.setdefault(record.dagster_run.run_id, record)
    host, local = data_lock.this_host(), _local_storage(instance)
    for run_id, pools in slot_runs.items():
        if run_id not in records or records[run_id].dagster_run.is_finished:
            status = records[run_id].dagster_run.status.value if run_id in records else "deleted"
            _free(instance, run_id)
            lines.append(
                f"Freed the pool slot(s) {', '.join(sorted(pools))} still held by run {run_id}, "
                f"which ended ({status})."
            )
    for run_id, record in records.items():
        run = record.dagster_run
        if run.is_finished:
            continue
        verdict = judge(
            dict(run.tags),
            host=host,
            logged_pid=lambda run_id=run_id: _logged_pid(instance, run_id),
            lock_free=_lock_free,
            running=data_lock.process_running,
            local_storage=local,
        )
        trigger = run.tags.get(TRIGGER_TAG) or run.tags.get("dagster/schedule_name") or "launched by Dagster"
        if verdict.dead:
            instance.report_run_failed(
                run,
                f"The process of this run ended before the run did (killed, out of memory, or its machine "
                f"stopped): {verdict.why}. Marked failed by {by} at {data_lock.now_text()}.",
            )
            _free(instance, run_id)
            pools = slot_runs.get(run_id)
            freed = f" and freed its pool slot(s) {', '.join(sorted(pools))}" if pools else ""
            lines.append(
                f"Run {run_id} ({trigger}, started {_when(record)}) was still {run.status.value} but "
                f"{verdict.why}: marked it failed{freed}."
            )
        elif run_id in slot_runs:
            lines.append(
                f"Run {run_id} ({trigger}, {run.status.value} since {_when(record)}) holds the pool slot(s) "
                f"{', '.join(sorted(slot_runs[run_id]))} ({verdict.why}): the steps of this run wait for it."
            )
    return lines


class WarehouseBusy(RuntimeError):
    """The warehouse file stayed locked by another process."""


def wait_for_warehouse(
    path: Path, say: Callable[[str], None], timeout: float = WAREHOUSE_WAIT_SECONDS
) -> None:
    """Wait while another process holds the warehouse file's lock (a dbt subprocess that outlived the
    run that started it finishes on its own); raise :class:`WarehouseBusy` after ``timeout`` s."""

    def state():
        try:
            return file_state(path)
        except duckdb.Error:  # not a lock conflict: the steps report it
            return None

    first = state()
    if first is None or first.state != "busy":
        return
    who = f"process {first.pid} ({first.program})" if first.pid else "another process"
    say(
        f"The warehouse {path} is locked by {who}, e.g. a dbt process left by a run that died: "
        f"waiting up to {timeout:.0f} s for it to end."
    )
    if not data_lock.wait_until(lambda: (current := state()) is None or current.state != "busy", timeout):
        raise WarehouseBusy(
            f"The warehouse {path} is still locked by {who} after {timeout:.0f} s: nothing was changed. "
            "Stop that process (a dbt left by a run that died, or a tool that opened the warehouse "
            "read-write) and run again."
        )


def prepare_run(
    instance: dg.DagsterInstance,
    settings,
    *,
    by: str,
    warn: Callable[[str], None],
    info: Callable[[str], None],
) -> None:
    """Everything a run needs before its first step, under the data folder's lock (the module's
    docstring): dead runs failed and their slots freed, the warehouse free, the Parquet pointers
    repaired. ``settings`` is the run's ``LifecycleSettings``."""
    from orchestration.publishing.layout import MartLayout
    from orchestration.publishing.versions import repair

    for line in recover_dead_runs(instance, by=by):
        warn(line)
    wait_for_warehouse(settings.warehouse_path, warn)
    for line in repair(MartLayout(settings.mart_dir, settings.published_mart_path.name)):
        info(f"published mart: {line} (left by an interrupted publication)")


@contextlib.contextmanager
def guarded_run(settings, context: dg.InitResourceContext) -> Iterator[None]:
    """What the settings resource does around every run (``LifecycleSettings.yield_for_execution``):
    hold the data folder's lock for the whole run (waiting, with a line, while another run or a
    rollback holds it), tag the run with its process, then :func:`prepare_run`."""
    run, instance, log = context.run, context.instance, context.log
    if run is None or instance is None:  # a sensor or a schedule, not a run: nothing to guard
        yield
        return

    def waiting(holder: data_lock.Holder | None) -> None:
        who = holder.describe() if holder else "another process"
        if log:
            log.warning(f"the data folder {settings.data_dir} is in use by {who}: waiting for it")

    with data_lock.hold(settings.data_dir, "Dagster run", run_id=run.run_id, wait=True, on_wait=waiting):
        tags = process_tags(settings.data_dir)
        if any(run.tags.get(key) != value for key, value in tags.items()):
            instance.add_run_tags(run.run_id, tags)
        say = (log.warning, log.info) if log else (print, print)
        prepare_run(instance, settings, by=f"run {run.run_id}", warn=say[0], info=say[1])
        yield
