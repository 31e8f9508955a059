"""Faults of whole runs, with real processes: `lifecycle` commands as subprocesses on one data folder
(the end-to-end dataset, its own Dagster instance), SIGKILLed in each phase of a run.

One chain, because every run pays the job's fixed costs (three dbt invocations, Dagster, imports):

0. a damaged warehouse file: `lifecycle run` fails at once with a message naming the file and
   `lifecycle rebuild`, without a stack trace, and still writes the validation report;
1. `lifecycle rebuild` moves the damaged file aside (kept) and is killed during ingest;
2. `lifecycle run` marks that run failed and frees its pool slot, and is killed while dbt runs (its
   dbt subprocess lives on, holding the warehouse, as after a real kill);
3. the next run is killed in a model step;
4. the next run is killed in the publication step; while it runs, a second `lifecycle run` and a
   `lifecycle rollback` on the same data folder are refused at once, naming it;
5. the last run publishes: the mart equals a clean run's (content hashes), and no pool slot is held.

Each kill waits for the step in the instance's event log (never for a fixed time), and each next run
must say, in one line, that it marked the killed run failed.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.data_lock import BUSY_EXIT_CODE
from orchestration.project import PROJECT_ROOT
from orchestration.publishing.hashes import table_content_hashes
from orchestration.publishing.layout import MartLayout
from orchestration.publishing.parquet import parquet_pointers
from orchestration.publishing.versions import current_version
from orchestration.run_guard import PID_TAG
from orchestration.warehouse import file_state

STEP_TIMEOUT = 600  # seconds a run may take to reach the step it is killed in (a loaded machine)


class Folder:
    """One data folder, its landing files and its Dagster instance, driven through the CLI."""

    def __init__(self, root: Path, landing: Path):
        root.mkdir()
        self.root = root
        self.data = root / "data"
        self.home = root / "dagster_home"
        self.landing = root / "landing"
        shutil.copytree(landing, self.landing)
        self.logs = root / "logs"
        self.logs.mkdir()
        self.count = 0

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": f"{PROJECT_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "DAGSTER_HOME": str(self.home),
            "LIFECYCLE_DATA_DIR": str(self.data),
            "LIFECYCLE_LANDING_DIR": str(self.landing),
            "DO_NOT_TRACK": "1",
        }

    def start(self, *args: str) -> tuple[subprocess.Popen, Path]:
        """Start `lifecycle <args>` in a process of its own (stdout and stderr into one log file)."""
        self.count += 1
        log = self.logs / f"{self.count}_{args[0]}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "orchestration.cli", *args],
                env=self.env(),
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return process, log

    def run(self, *args: str, timeout: float = STEP_TIMEOUT) -> tuple[int, str]:
        process, log = self.start(*args)
        return process.wait(timeout=timeout), log.read_text()

    def instance(self) -> dg.DagsterInstance:
        """The folder's instance (the test points DAGSTER_HOME at it: dagster.yaml names its storage
        folder through that variable)."""
        assert os.environ["DAGSTER_HOME"] == str(self.home)
        return dg.DagsterInstance.get()


def wait_for_step(folder: Folder, process: subprocess.Popen, log: Path, step: str, message: str = "") -> str:
    """Poll the instance's event log until the run of ``process`` has started ``step`` (and, with
    ``message``, logged a line holding it in that step); return the run id."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while not (folder.home / "dagster.yaml").exists() and process.poll() is None:
        time.sleep(0.2)
    with folder.instance() as instance:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the run ended (exit {process.returncode}) before {step}:\n{log.read_text()}")
            # the run of this process (an earlier, killed run may still show as STARTED)
            records = instance.get_run_records(
                filters=dg.RunsFilter(tags={PID_TAG: str(process.pid)}), limit=1
            )
            if records:
                run_id = records[0].dagster_run.run_id
                for entry in instance.all_logs(run_id):
                    if entry.step_key != step:
                        continue
                    started = entry.dagster_event and entry.dagster_event.event_type_value == "STEP_START"
                    if (message and message in entry.user_message) or (not message and started):
                        return run_id
            time.sleep(0.2)
    pytest.fail(f"{step} not reached within {STEP_TIMEOUT} s:\n{log.read_text()}")


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the `lifecycle` process alone (a dbt it started lives on, as after a real kill)."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def assert_marked_failed(folder: Folder, output: str, run_id: str) -> None:
    """The run after a killed one said in one line that it marked it failed, and freed its slots."""
    lines = [line for line in output.splitlines() if run_id in line and "marked it failed" in line]
    assert len(lines) == 1, output
    with folder.instance() as instance:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        storage = instance.event_log_storage
        holders = {
            slot.run_id
            for key in storage.get_concurrency_keys()
            for slot in storage.get_concurrency_info(key).claimed_slots
        }
        assert run_id not in holders


def damaged_duckdb_file(path: Path) -> int:
    """A real DuckDB file cut to half its size (its catalogue is at the end: it no longer opens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema raw")
        conn.execute(
            "create table raw.events as select range as n, md5(range::varchar) as h from range(300000)"
        )
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size // 2)
    assert file_state(path).state == "damaged"
    return size // 2


@pytest.mark.e2e
@pytest.mark.faults
def test_killed_runs_never_block_the_next_and_lose_nothing(e2e_dataset, published_run, tmp_path, monkeypatch):
    # a folder whose path holds a quote: every path reaches SQL as a parameter (dbt's too)
    folder = Folder(tmp_path / "O'Brien's shop", e2e_dataset[1])
    monkeypatch.setenv("DAGSTER_HOME", str(folder.home))
    warehouse = folder.data / "warehouse.duckdb"

    # 0. a damaged warehouse: one clear message, no stack trace, and the validation report
    damaged_size = damaged_duckdb_file(warehouse)
    code, output = folder.run("run")
    assert code == 1, output
    assert f"the DuckDB file {warehouse} is damaged" in output and "`lifecycle rebuild`" in output, output
    assert "Traceback" not in output and "Stack Trace" not in output, output
    report = next(
        line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("Validation report:")
    )
    assert "is damaged" in Path(report).read_text()

    # 1. `lifecycle rebuild` sets the damaged file aside (kept) and is killed during ingest
    process, log = folder.start("rebuild")
    killed = wait_for_step(folder, process, log, "raw__transactions")
    kill(process)
    (aside,) = folder.data.glob("warehouse.duckdb.set-aside-*")
    assert aside.stat().st_size == damaged_size

    # 2. the next run gets past it and is killed while its dbt subprocess runs
    process, log = folder.start("run")
    next_killed = wait_for_step(folder, process, log, "lifecycle_dbt_daily", message="Running dbt command")
    kill(process)
    assert_marked_failed(folder, log.read_text(), killed)
    killed = next_killed

    # 3. killed in a model step
    process, log = folder.start("run")
    next_killed = wait_for_step(folder, process, log, "customer_clv")
    kill(process)
    assert_marked_failed(folder, log.read_text(), killed)
    killed = next_killed

    # 4. while a run goes on, a second run and a rollback are refused at once, naming it; then it is
    # killed in the publication step
    process, log = folder.start("run")
    running = wait_for_step(folder, process, log, "raw__events")
    for args, first_words in (
        (["run"], "The data folder"),
        (["rollback"], "Rollback refused: The data folder"),
    ):
        code, output = folder.run(*args, timeout=120)
        assert code == BUSY_EXIT_CODE, output
        (line,) = [line for line in output.splitlines() if line.startswith(first_words)]
        assert f"run {running} (lifecycle run, pid {process.pid} on " in line, line
    next_killed = wait_for_step(folder, process, log, "reporting_mart")
    assert next_killed == running
    kill(process)
    assert_marked_failed(folder, log.read_text(), killed)
    killed = next_killed

    # 5. the last run publishes what a clean run publishes
    code, output = folder.run("run")
    assert code == 0, output
    assert_marked_failed(folder, output, killed)
    published = folder.data / "mart" / "lifecycle_mart.duckdb"
    assert table_content_hashes(published) == table_content_hashes(published_run.settings.published_mart_path)
    layout = MartLayout(folder.data / "mart")
    assert parquet_pointers(layout) == (current_version(layout),) * 2
    with folder.instance() as instance:
        storage = instance.event_log_storage
        assert all(
            not storage.get_concurrency_info(key).claimed_slots for key in storage.get_concurrency_keys()
        )
    assert aside.exists()  # the damaged file is kept until someone removes it
