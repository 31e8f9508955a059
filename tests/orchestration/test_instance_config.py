"""The repo's dagster.yaml loads as a real instance with the settings the README promises."""

import shutil

import dagster as dg

from orchestration.project import PROJECT_ROOT


def test_dagster_yaml_gives_the_promised_instance(tmp_path, monkeypatch):
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert not instance.telemetry_enabled
        # one run and one writer of each DuckDB file at a time
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        # crashed runs are retried once; runs failed by a step or a check are not
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == 1
        assert not instance.run_retries_retry_on_asset_or_op_failure
