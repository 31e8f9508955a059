"""End-to-end fixtures: a small generated dataset and one published pipeline run."""

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from models_py.generator import GeneratedDataset, GeneratorConfig, generate, write_landing
from orchestration.execution import execute_build_job
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
def run_pipeline_on_copy(e2e_dataset):
    """A function root -> PipelineRun: copy the landing folder under root and run the job there."""
    return lambda root: run_on_copy(e2e_dataset, root)


@pytest.fixture(scope="session")
def published_run(e2e_dataset, tmp_path_factory) -> PipelineRun:
    """One whole run of build_mart_job on the generated dataset (read-only for the tests), with the
    dbt unit tests (the other runs of the suite leave them out, as a daily run does)."""
    return run_on_copy(e2e_dataset, tmp_path_factory.mktemp("published"), dbt_unit_tests=True)
