"""Run the build job in-process: what `lifecycle run` and the end-to-end tests both do."""

import dagster as dg

from orchestration.resources import LifecycleSettings, build_resources

BUILD_JOB_NAME = "build_mart_job"


def execute_build_job(
    settings: LifecycleSettings,
    instance: dg.DagsterInstance | None = None,
    *,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    """Materialise every asset and run every check; never raises on a failed step or check.

    With ``instance`` (e.g. ``DagsterInstance.get()``) the run is recorded and shows in the UI;
    without it the run uses an ephemeral instance.
    """
    from orchestration.definitions import defs

    return defs.resolve_job_def(BUILD_JOB_NAME).execute_in_process(
        instance=instance,
        resources=build_resources(settings),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
