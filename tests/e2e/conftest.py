"""End-to-end fixtures: a small generated dataset and one published pipeline run."""

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from models_py.generator import GeneratedDataset, GeneratorConfig, generate, write_landing
from orchestration.execution import RunWindow, execute_build_job
from orchestration.resources import LifecycleSettings

# Small enough for seconds, large enough for a stable CLV fit (a few hundred repeat customers).
E2E_CONFIG = GeneratorConfig(seed=7, n_users=1_500, n_days=150)


@pytest.fixture(scope="session", autouse=True)
def _parsed_dbt_project(dbt_manifest):
    """The job loads the Definitions, which need the dbt manifest."""
    return dbt_manifest


@dataclass
class PipelineRun:
    settings: LifecycleSettings
    dataset: GeneratedDataset
    result: dg.ExecuteInProcessResult


def make_settings(root: Path, *, dbt_unit_tests: bool = False) -> LifecycleSettings:
    return LifecycleSettings(
        data_dir=str(root / "data"), landing_dir=str(root / "landing"), dbt_unit_tests=dbt_unit_tests
    )


@pytest.fixture(scope="session")
def e2e_dataset(tmp_path_factory) -> tuple[GeneratedDataset, Path]:
    """The generated dataset, written once as a landing folder that tests copy before changing."""
    landing = tmp_path_factory.mktemp("dataset") / "landing"
    dataset = generate(E2E_CONFIG)
    write_landing(dataset, landing)
    return dataset, landing


def run_on_copy(e2e_dataset, root: Path, *, dbt_unit_tests: bool = False) -> PipelineRun:
    dataset, landing = e2e_dataset
    settings = make_settings(root, dbt_unit_tests=dbt_unit_tests)
    shutil.copytree(landing, settings.landing_dir)
    return PipelineRun(settings, dataset, execute_build_job(settings))


@pytest.fixture(scope="session")
def published_run(e2e_dataset, tmp_path_factory) -> PipelineRun:
    """One whole run of build_mart_job on the generated dataset (read-only for the tests), with the
    dbt unit tests (the other runs of the suite leave them out, as a daily run does)."""
    return run_on_copy(e2e_dataset, tmp_path_factory.mktemp("published"), dbt_unit_tests=True)


@dataclass
class ScheduledRuns(PipelineRun):
    """The runs of :func:`scheduled_runs`, the last one as ``result``."""

    windows: list[RunWindow] = field(default_factory=list)
    results: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    messages: list[list[str]] = field(default_factory=list)  # each run's log messages
    hashes: dict[str, str] = field(default_factory=dict)  # the published tables' content hashes


@pytest.fixture(scope="session")
def scheduled_runs(e2e_dataset, tmp_path_factory) -> ScheduledRuns:
    """The generated dataset built as a deployment builds it: one range run of every day but the
    last (`lifecycle backfill`), then the run of the last day (what the schedule launches), in one
    Dagster instance. The published mart's content hashes are taken at once: test_backfill compares
    them with published_run's, and test_gate then reuses this data folder as its good run (it
    delivers bad files and runs again)."""
    dataset, landing = e2e_dataset
    settings = make_settings(tmp_path_factory.mktemp("scheduled"))
    shutil.copytree(landing, settings.landing_dir)
    end = E2E_CONFIG.end_date
    windows = [
        RunWindow(E2E_CONFIG.start_date, end - dt.timedelta(days=1), "history"),
        RunWindow(end, end, "day"),
    ]
    results, messages = [], []
    with dg.DagsterInstance.ephemeral() as instance:
        for window in windows:
            results.append(execute_build_job(settings, instance, window=window))
            messages.append([entry.user_message for entry in instance.all_logs(results[-1].run_id)])
    from orchestration.publishing.hashes import table_content_hashes

    hashes = table_content_hashes(settings.published_mart_path) if results[-1].success else {}
    return ScheduledRuns(settings, dataset, results[-1], windows, results, messages, hashes)
