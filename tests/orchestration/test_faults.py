"""Faults around runs, in seconds, with real processes, files and Dagster instances: the data folder's
lock, runs whose process died (a tiny job in a pool, SIGKILLed), a warehouse locked or damaged, the
Parquet pointers after a kill between their two updates, paths with a quote in SQL, a landing folder
made with other generator options, and what `lifecycle run` prints for checks and failures.

The whole-pipeline chain of kills is in tests/e2e/test_faults.py.
"""

import argparse
import datetime as dt
import hashlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration import data_lock
from orchestration.cli.main import generate_demo_data, main, print_check_results
from orchestration.project import PROJECT_ROOT
from orchestration.publishing.hashes import table_content_hashes
from orchestration.publishing.layout import MartLayout
from orchestration.publishing.parquet import parquet_pointers
from orchestration.publishing.staging import build_staged_mart, verify_staged_mart
from orchestration.publishing.versions import current_version, publish_staged_mart, rollback
from orchestration.resources import LifecycleSettings
from orchestration.run_guard import (
    DATA_DIR_TAG,
    HOST_TAG,
    PID_TAG,
    PROCESS_STARTED_TAG,
    WarehouseBusy,
    judge,
    recover_dead_runs,
    wait_for_warehouse,
)
from orchestration.warehouse import DamagedDatabaseError, connect, file_state, set_aside

TABLES = {"dim_users": "marts.dim_users", "customer_clv": "ml.customer_clv"}


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{PROJECT_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "DO_NOT_TRACK": "1",
    }


def start_python(code: str, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """A Python process running ``code``; its first line of output says it is ready."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**env(), **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def ready(process: subprocess.Popen, word: str) -> None:
    line = process.stdout.readline()
    assert word in line, line + process.stdout.read()


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


HOLD = """
import sys, time
from orchestration import data_lock
with data_lock.hold(sys.argv[1], "lifecycle run", run_id="run-of-the-holder"):
    print("held", flush=True)
    time.sleep(120)
"""


# ------------------------------------------------------------------------------- the folder lock
def test_a_second_holder_is_refused_naming_the_first_until_the_first_is_killed(tmp_path):
    holder = start_python(HOLD, str(tmp_path))
    try:
        ready(holder, "held")
        assert data_lock.is_free(tmp_path) is False
        with (
            pytest.raises(data_lock.DataFolderBusy) as refused,
            data_lock.hold(tmp_path, "lifecycle rollback"),
        ):
            pass
        assert str(refused.value).startswith(
            f"The data folder {tmp_path} is in use by run run-of-the-holder (lifecycle run, pid {holder.pid} "
            f"on {data_lock.this_host()}, started "
        )
    finally:
        kill(holder)
    # the kernel dropped the dead holder's lock
    assert data_lock.is_free(tmp_path) is True
    with data_lock.hold(tmp_path, "lifecycle rollback") as taken:
        assert taken.pid == os.getpid() and data_lock.read_holder(tmp_path) == taken


def test_the_lock_is_reentrant_in_one_process_and_learns_the_run_id(tmp_path):
    with data_lock.hold(tmp_path, "lifecycle run") as outer:
        assert outer.run_id is None and data_lock.held_here(tmp_path)
        with data_lock.hold(tmp_path, "Dagster run", run_id="r1", wait=True) as inner:
            assert inner.run_id == "r1" and inner.command == "lifecycle run"
            assert data_lock.read_holder(tmp_path).run_id == "r1"
        assert data_lock.held_here(tmp_path)
    assert not data_lock.held_here(tmp_path) and data_lock.is_free(tmp_path)


def test_a_pid_taken_over_by_a_newer_process_is_not_the_same_process():
    started = data_lock.process_started_at(os.getpid())
    assert data_lock.process_running(os.getpid(), started)
    assert not data_lock.process_running(os.getpid(), started - 100)  # the pid's owner started later
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert data_lock.process_started_at(gone.pid) is None
    assert not data_lock.process_running(gone.pid)


# ---------------------------------------------------------------------------- dead or alive
def verdict(tags, *, free=None, running=False, logged=None, local=True, host="here"):
    return judge(
        tags,
        host=host,
        logged_pid=lambda: logged,
        lock_free=lambda data_dir: free,
        running=lambda pid, started, before: running,
        local_storage=local,
    )


TAGS = {PID_TAG: "42", HOST_TAG: "here", DATA_DIR_TAG: "/data", PROCESS_STARTED_TAG: "1000.0"}


@pytest.mark.parametrize(
    ("tags", "probes", "dead"),
    [
        (TAGS, {"running": False}, True),  # this machine: the process is gone
        (TAGS, {"running": True, "free": True}, False),  # still finishing, though the lock is free
        ({**TAGS, HOST_TAG: "other"}, {"free": True}, True),  # another machine: its lock is free
        ({**TAGS, HOST_TAG: "other"}, {"free": False}, False),  # ... held
        ({**TAGS, HOST_TAG: "other"}, {"free": None}, None),  # ... cannot tell
        ({}, {"logged": (7, 5.0), "running": False}, True),  # untagged: the pid Dagster logged
        ({}, {"logged": (7, 5.0), "running": True}, False),
        ({}, {"logged": (7, 5.0), "local": False}, None),  # a pid of another machine's instance
        ({}, {"logged": None}, None),
    ],
)
def test_a_run_is_dead_only_when_its_process_is_known_to_be_gone(tags, probes, dead):
    assert verdict(tags, **probes).dead is dead


TINY_JOB = """
import os, sys, time
from pathlib import Path
import dagster as dg
from orchestration.loggers import LOGGERS
from orchestration.resources import LifecycleSettings

@dg.asset(pool="duckdb_warehouse")
def slow(settings: LifecycleSettings) -> None:
    Path(settings.data_dir, "started").write_text("yes")
    time.sleep(float(os.environ.get("SLEEP", "0")))

if __name__ == "__main__":
    data = sys.argv[1]
    settings = LifecycleSettings(data_dir=data, landing_dir=data)
    defs = dg.Definitions(
        assets=[slow],
        jobs=[dg.define_asset_job("tiny_job", selection=[slow])],
        resources={"settings": settings},
        loggers=LOGGERS,
        executor=dg.in_process_executor,
    )
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("tiny_job").execute_in_process(
            instance=instance,
            run_config={"loggers": {"brief_console": {"config": {"log_level": "INFO"}}}},
            raise_on_error=False,
            tags={"lifecycle/trigger": "tiny"},
        )
        print("success" if result.success else "failure", result.run_id, flush=True)
"""


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    """A DAGSTER_HOME with the repo's dagster.yaml (one slot per pool)."""
    from orchestration.instance import ensure_dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("LIFECYCLE_DAGSTER_POSTGRES_URL", raising=False)
    return ensure_dagster_home()


def killed_in_its_pool_step(tmp_path: Path, dagster_home: Path) -> str:
    """Start the tiny job in a process of its own, SIGKILL it while its step holds the pool slot;
    return the run id (STARTED for ever in the instance, holding the slot)."""
    script = tmp_path / "tiny_job.py"
    script.write_text(TINY_JOB)
    data = tmp_path / "data"
    data.mkdir()
    process = subprocess.Popen(
        [sys.executable, str(script), str(data)],
        env={**env(), "DAGSTER_HOME": str(dagster_home), "SLEEP": "120"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert data_lock.wait_until(lambda: (data / "started").exists() or process.poll() is not None, 120)
        assert process.poll() is None
    finally:
        kill(process)
    with dg.DagsterInstance.get() as instance:
        (record,) = instance.get_run_records()
        info = instance.event_log_storage.get_concurrency_info("duckdb_warehouse")
        assert record.dagster_run.status == dg.DagsterRunStatus.STARTED
        assert [slot.run_id for slot in info.claimed_slots] == [record.dagster_run.run_id]
        return record.dagster_run.run_id


def test_the_next_run_fails_a_killed_run_frees_its_slot_and_goes_on(tmp_path, dagster_home):
    dead = killed_in_its_pool_step(tmp_path, dagster_home)
    # without the guard, this run would wait for the slot for ever
    done = subprocess.run(
        [sys.executable, str(tmp_path / "tiny_job.py"), str(tmp_path / "data")],
        env={**env(), "DAGSTER_HOME": str(dagster_home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "success" in done.stdout, done.stdout + done.stderr
    (line,) = [line for line in done.stderr.splitlines() if dead in line]
    assert "was still STARTED but its process (pid " in line
    assert line.endswith("is gone: marked it failed and freed its pool slot(s) duckdb_warehouse.")
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info("duckdb_warehouse").claimed_slots


def test_a_run_marked_failed_by_hand_gets_its_slot_freed(tmp_path, dagster_home):
    dead = killed_in_its_pool_step(tmp_path, dagster_home)
    with dg.DagsterInstance.get() as instance:
        instance.report_run_failed(instance.get_run_by_id(dead))  # what "terminate" in the UI does
        assert instance.event_log_storage.get_concurrency_info("duckdb_warehouse").claimed_slots
        assert recover_dead_runs(instance, by="test") == [
            f"Freed the pool slot(s) duckdb_warehouse still held by run {dead}, which ended (FAILURE)."
        ]
        assert not instance.event_log_storage.get_concurrency_info("duckdb_warehouse").claimed_slots
        assert recover_dead_runs(instance, by="test") == []


# -------------------------------------------------------------------------------- the warehouse
HOLD_DUCKDB = """
import sys, time
import duckdb
conn = duckdb.connect(sys.argv[1])
conn.execute("create table if not exists t as select 1 as x")
print("open", flush=True)
time.sleep(120)
"""


def test_a_warehouse_locked_by_another_process_is_waited_for_then_named(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    holder = start_python(HOLD_DUCKDB, str(path))
    said = []
    try:
        ready(holder, "open")
        with pytest.raises(WarehouseBusy) as busy:
            wait_for_warehouse(path, said.append, timeout=1)
        assert f"locked by process {holder.pid} (" in said[0] and "waiting up to 1 s" in said[0]
        assert str(busy.value).startswith(f"The warehouse {path} is still locked by process {holder.pid} (")
    finally:
        kill(holder)
    said.clear()
    wait_for_warehouse(path, said.append, timeout=1)
    assert said == []


def damaged(path: Path) -> Path:
    """A real DuckDB file cut to half its size."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("create table t as select range as n, md5(range::varchar) as h from range(300000)")
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    return path


def test_a_damaged_warehouse_is_named_and_set_aside_not_deleted(tmp_path):
    path = damaged(tmp_path / "warehouse.duckdb")
    state = file_state(path)
    assert state.state == "damaged" and str(path) in state.detail
    with pytest.raises(DamagedDatabaseError, match=f"the DuckDB file {path} is damaged"):
        connect(path, read_only=True)
    size = path.stat().st_size
    aside = set_aside(path, "set-aside", now=dt.datetime(2026, 3, 1, 5, tzinfo=dt.UTC))
    assert aside == tmp_path / "warehouse.duckdb.set-aside-20260301T050000Z"
    assert aside.stat().st_size == size and not path.exists()


def test_status_names_a_damaged_warehouse_and_the_rebuild_command(tmp_path, monkeypatch, capsys):
    for folder in ("landing", "data"):
        (tmp_path / folder).mkdir()
    damaged(tmp_path / "data" / "warehouse.duckdb")
    monkeypatch.setenv("LIFECYCLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIFECYCLE_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no_dagster_home"))
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"Warehouse: the DuckDB file {tmp_path / 'data' / 'warehouse.duckdb'} is damaged" in out
    assert "`lifecycle rebuild` moves the damaged warehouse aside" in out


# ------------------------------------------------------------------ publication and its pointers
def write_warehouse(path: Path, version: int) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema if not exists marts; create schema if not exists ml")
        conn.execute(
            "create or replace table marts.dim_users as select 'u' || i as user_id, "
            f"date '2026-03-01' + {version} as as_of_date, {version} as marker "
            f"from range({10 + version}) t(i)"
        )
        conn.execute(f"create or replace table ml.customer_clv as select 'u1' as user_id, {version} as clv")


def publish(warehouse: Path, layout: MartLayout, version: int):
    write_warehouse(warehouse, version)
    build_staged_mart(warehouse, layout.staging, f"run{version}", TABLES)
    verify_staged_mart(layout.staging, TABLES)
    return publish_staged_mart(layout, f"run{version}", 7)


def test_publication_rollback_and_parquet_in_folders_whose_names_hold_quotes(tmp_path):
    root = tmp_path / "O'Brien's data"
    root.mkdir()
    warehouse, layout = root / "warehouse.duckdb", MartLayout(root / "mart 'q'")
    first = publish(warehouse, layout, 1)
    second = publish(warehouse, layout, 2)
    assert current_version(layout) == second.version
    assert table_content_hashes(layout.published) == table_content_hashes(layout.version_path(second.version))
    with duckdb.connect() as conn:
        (marker,) = conn.execute(
            "select max(marker) from read_parquet(?)", [str(layout.parquet_pointer / "dim_users.parquet")]
        ).fetchone()
    assert marker == 2
    assert rollback(layout).version == first.version
    assert parquet_pointers(layout) == (first.version, first.version)


def test_raw_parquet_export_and_loading_from_folders_whose_names_hold_quotes(tmp_path):
    from models_py.generator import GeneratorConfig, generate, write_landing
    from orchestration.landing.loader import ingest_source
    from orchestration.landing.raw_parquet import export_raw_parquet
    from orchestration.landing.tables import ensure_raw_tables

    landing = tmp_path / "d'Artagnan's landing"
    write_landing(generate(GeneratorConfig(seed=3, n_users=20, n_days=2)), landing)
    out = tmp_path / "raw 'parquet'"
    with duckdb.connect(str(tmp_path / "it's a warehouse.duckdb")) as conn:
        ensure_raw_tables(conn)
        report = ingest_source(conn, landing, "users", loaded_at=dt.datetime(2026, 1, 1), currency="USD")
        assert not report.failed
        (rows, files) = conn.execute(
            "select count(*), count(distinct _source_file) from raw.users"
        ).fetchone()
        written = export_raw_parquet(conn, out, "users")
    assert rows == 20 and files >= 1 and len(written) >= 1
    with duckdb.connect() as conn:
        (back,) = conn.execute(
            "select count(*) from read_parquet(?)", [str(out / "users" / "*.parquet")]
        ).fetchone()
    assert back == rows


PUBLISH_AND_DIE = """
import os, signal, sys
from pathlib import Path
from orchestration.publishing.files import publication_lock, write_text_atomically
from orchestration.publishing.layout import MartLayout
from orchestration.publishing.versions import new_version_name, prepare_version, swap_in

layout, kill_at = MartLayout(Path(sys.argv[1])), sys.argv[2]
with publication_lock(layout):
    version = new_version_name(layout, "run3")
    prepare_version(layout, version)
    swap_in(layout.staging, layout.published)
    os.replace(layout.pending_version_path(version), layout.version_path(version))
    if kill_at == "inside_the_pointer_file":  # the temporary file written, not yet renamed
        tmp = layout.parquet_dir / f".CURRENT.{os.getpid()}.tmp"
        tmp.write_text(version + "\\n")
    else:  # parquet/CURRENT moved, the link not yet
        write_text_atomically(layout.parquet_pointer_file, version + "\\n")
    print(version, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("kill_at", ["inside_the_pointer_file", "between_the_two_pointers"])
def test_status_repairs_the_parquet_pointers_a_killed_publication_left(
    tmp_path, monkeypatch, capsys, kill_at
):
    data = tmp_path / "data"
    data.mkdir()
    warehouse, layout = data / "warehouse.duckdb", MartLayout(data / "mart")
    published = publish(warehouse, layout, 1)
    publish(warehouse, layout, 2)
    write_warehouse(warehouse, 3)
    build_staged_mart(warehouse, layout.staging, "run3", TABLES)
    died = subprocess.run(
        [sys.executable, "-c", PUBLISH_AND_DIE, str(layout.root), kill_at],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    version = died.stdout.strip()
    assert current_version(layout) == version != published.version
    assert parquet_pointers(layout) != (version, version)
    assert list(layout.parquet_dir.glob(".*.tmp")) or kill_at == "between_the_two_pointers"

    monkeypatch.setenv("LIFECYCLE_DATA_DIR", str(data))
    monkeypatch.setenv("LIFECYCLE_LANDING_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no_dagster_home"))
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"Repaired: pointed the Parquet pointers at {version}" in out
    assert parquet_pointers(layout) == (version, version)
    assert not list(layout.parquet_dir.glob(".*.tmp"))
    assert main(["status"]) == 0
    assert "Repaired" not in capsys.readouterr().out


def test_rollback_is_refused_while_the_data_folder_is_held(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    warehouse, layout = data / "warehouse.duckdb", MartLayout(data / "mart")
    publish(warehouse, layout, 1)
    publish(warehouse, layout, 2)
    before = hashlib.sha256(layout.published.read_bytes()).hexdigest()
    monkeypatch.setenv("LIFECYCLE_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no_dagster_home"))
    holder = start_python(HOLD, str(data))
    try:
        ready(holder, "held")
        assert main(["rollback"]) == data_lock.BUSY_EXIT_CODE
        (line,) = capsys.readouterr().out.splitlines()
        assert main(["status"]) == 0
        status = capsys.readouterr().out
    finally:
        kill(holder)
    who = f"run run-of-the-holder (lifecycle run, pid {holder.pid} on {data_lock.this_host()}, started "
    assert line.startswith(f"Rollback refused: The data folder {data} is in use by {who}")
    assert f"Running now: {who}" in status
    assert hashlib.sha256(layout.published.read_bytes()).hexdigest() == before
    assert main(["rollback"]) == 0


# ---------------------------------------------------------------------- landing folder, output
def demo_args(**values) -> argparse.Namespace:
    return argparse.Namespace(
        **{"users": 5_000, "days": 365, "seed": 42, "start_date": "2025-01-01", **values}
    )


@pytest.mark.parametrize("marker", [True, False])
def test_run_never_replaces_a_landing_folder_it_finds(tmp_path, caplog, marker):
    landing = tmp_path / "landing"
    delivered = landing / "events" / "2025-01-01" / "events.csv"
    delivered.parent.mkdir(parents=True)
    delivered.write_text("event_id,user_id,event_type,occurred_at\n")
    if marker:
        (landing / "_truth").mkdir()
        (landing / "_truth" / "generator.json").write_text(
            '{"config": {"seed": 42, "n_users": 800, "n_days": 90, "start_date": "2025-01-01"}}'
        )
    settings = LifecycleSettings(data_dir=str(tmp_path), landing_dir=str(landing))
    with caplog.at_level(logging.INFO, logger="lifecycle"):
        generate_demo_data(settings, demo_args(), force=False)
    assert delivered.read_text() == "event_id,user_id,event_type,occurred_at\n"
    (message,) = caplog.messages
    found = "demo data generated with --users 800 --days 90 --seed 42" if marker else "files that"
    assert f"landing folder {landing} already holds {found}" in message
    assert "used as it is" in message and "`lifecycle generate --users N --days N" in message


def test_a_warning_check_prints_warn_and_a_failed_one_fail(capsys):
    def check(name, passed, severity):
        @dg.asset_check(asset="thing", name=name, blocking=False)
        def _check() -> dg.AssetCheckResult:
            return dg.AssetCheckResult(passed=passed, severity=severity, description=f"{name} says so")

        return _check

    @dg.asset
    def thing() -> None:
        return None

    checks = [
        check("fine", True, dg.AssetCheckSeverity.WARN),
        check("worrying", False, dg.AssetCheckSeverity.WARN),
        check("broken", False, dg.AssetCheckSeverity.ERROR),
    ]
    result = dg.materialize([thing, *checks], raise_on_error=False)
    print_check_results(result)
    assert capsys.readouterr().out.splitlines() == [
        "",
        "Checks: 1 of 3 passed, 1 warned, 1 failed",
        "  FAIL  thing :: broken",
        "        broken says so",
        "  WARN  thing :: worrying",
        "        worrying says so",
        "  PASS  thing :: fine",
    ]


def test_beats_baselines_warns_with_a_text_that_says_why(tmp_path):
    from orchestration.assets.churn import EVALUATION_TABLE, churn_risk__beats_baselines

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute("create schema ml")
        conn.execute(
            f"create table {EVALUATION_TABLE} as select * from (values "
            "('model', 0.81, 100, date '2026-03-01'), "
            "('baseline_days_since_last_active', 0.74, 100, date '2026-03-01'), "
            "('baseline_bgnbd_p_alive', null, 100, date '2026-03-01')) "
            "t(method, roc_auc, rows, evaluation_snapshot_date)"
        )
        conn.execute(  # the fit record of a fitted model (orchestration/checks/model_status.py)
            "create table ml.churn_risk_fit as select true as is_fitted, "
            "cast(null as varchar) as not_fitted_reason, 'churn-test' as model_version, '{}' as fit_info"
        )
    settings = LifecycleSettings(data_dir=str(tmp_path), landing_dir=str(tmp_path))
    outcome = churn_risk__beats_baselines(settings=settings)
    assert not outcome.passed and outcome.severity == dg.AssetCheckSeverity.WARN
    assert outcome.description.startswith("churn_risk backtest on 2026-03-01: model ROC-AUC 0.8100 >= ")
    assert outcome.description.endswith(": not available, the model was not compared with it")
    assert "; WARN " in outcome.description


def test_a_failed_step_prints_one_line_without_its_stack_trace(capfd):
    from orchestration.loggers import LOGGERS

    @dg.asset
    def broken() -> None:
        raise dg.Failure("the landing file x.csv lacks the column occurred_at")

    defs = dg.Definitions(assets=[broken], loggers=LOGGERS)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        raise_on_error=False, run_config={"loggers": {"brief_console": {"config": {"log_level": "INFO"}}}}
    )
    assert not result.success
    err = capfd.readouterr().err
    (failure,) = [line for line in err.splitlines() if "STEP_FAILURE" in line]
    assert failure.endswith(
        "(Failure: the landing file x.csv lacks the column occurred_at; stack trace in the Dagster event log)"
    )
    assert "Stack Trace" not in err and 'File "' not in err
