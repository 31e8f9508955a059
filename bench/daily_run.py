"""The scheduled daily run at scale: one new day through the whole job, against the backfill of the
history measured in the same session.

Generates the seeded dataset (cached by its config under ``--work-dir``), then, in a fresh data
folder whose landing folder links the generated day folders in one by one:

1. ``backfill``: one run of ``build_mart_job`` for every day but the last ``--repeat`` days (what
   ``lifecycle backfill`` or the first ``lifecycle run`` does): ingest, dbt, CLV, churn, checks,
   publication;
2. ``daily``: for each of the last ``--repeat`` days in turn, its files land and one run for that
   day's partition follows, exactly what the schedule launches (in-process, one Dagster instance
   for all runs, so the dbt step knows the earlier builds).

Reports the wall time of each run, the median of the daily runs, their ratio to the backfill, the
time per step of the last daily run (from the run's step events) and the process's peak RSS.

Usage::

    python bench/daily_run.py --users 100000 --days 365 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models_py.generator import GeneratorConfig, generate, write_landing  # noqa: E402


def generated_landing(config: GeneratorConfig, work: Path) -> Path:
    key = f"seed{config.seed}_u{config.n_users}_d{config.n_days}_s{config.session_rate_mean_per_day}"
    landing = work / "landing" / key
    if not (landing / ".complete").exists():
        started = time.perf_counter()
        if landing.exists():
            shutil.rmtree(landing)
        write_landing(generate(config), landing)
        (landing / ".complete").write_text(json.dumps(config.to_dict(), default=str))
        print(f"generated {key} in {time.perf_counter() - started:.1f} s", flush=True)
    return landing


def land(source_landing: Path, landing: Path, days: list[dt.date]) -> None:
    """Link the generated day folders of ``days`` into the run's landing folder (no copy)."""
    for source in ("users", "events", "transactions"):
        for day in days:
            folder = source_landing / source / day.isoformat()
            if folder.is_dir():
                (landing / source).mkdir(parents=True, exist_ok=True)
                (landing / source / day.isoformat()).symlink_to(folder, target_is_directory=True)


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds per step of a run, from its STEP_START and STEP_SUCCESS/FAILURE events."""
    import dagster as dg

    starts, seconds = {}, {}
    records = instance.get_records_for_run(run_id, of_type={dg.DagsterEventType.STEP_START}).records
    for record in records:
        starts[record.event_log_entry.step_key] = record.event_log_entry.timestamp
    done = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    ).records
    for record in done:
        key = record.event_log_entry.step_key
        if key in starts:
            seconds[key] = record.event_log_entry.timestamp - starts[key]
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--session-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="daily runs (the last N days)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / ".cache")
    args = parser.parse_args()

    config = GeneratorConfig(
        seed=args.seed,
        n_users=args.users,
        n_days=args.days,
        session_rate_mean_per_day=args.session_rate,
        start_date=dt.date(2025, 1, 1),
    )
    source_landing = generated_landing(config, args.work_dir)
    root = args.work_dir / "daily_run"
    if root.exists():
        shutil.rmtree(root)
    os.environ.setdefault("LIFECYCLE_PARTITION_START", config.start_date.isoformat())

    import dagster as dg

    from orchestration.execution import RunWindow, execute_build_job
    from orchestration.project import prepare_dbt_manifest
    from orchestration.resources import LifecycleSettings

    prepare_dbt_manifest()
    settings = LifecycleSettings(data_dir=str(root / "data"), landing_dir=str(root / "landing"))
    days = [config.start_date + dt.timedelta(days=offset) for offset in range(config.n_days)]
    history, daily = days[: -args.repeat], days[-args.repeat :]
    timings: dict[str, list[float]] = {"backfill": [], "daily": []}
    with dg.DagsterInstance.ephemeral() as instance:
        land(source_landing, Path(settings.landing_dir), history)
        started = time.perf_counter()
        result = execute_build_job(
            settings, instance, window=RunWindow(history[0], history[-1], "backfill"), log_level="WARNING"
        )
        timings["backfill"].append(time.perf_counter() - started)
        assert result.success, "the backfill run failed"
        print(f"backfill of {len(history)} days: {timings['backfill'][0]:.1f} s", flush=True)
        for day in daily:
            land(source_landing, Path(settings.landing_dir), [day])
            started = time.perf_counter()
            result = execute_build_job(settings, instance, window=RunWindow(day, day, "day"), log_level="WARNING")
            seconds = time.perf_counter() - started
            assert result.success, f"the daily run for {day} failed"
            timings["daily"].append(seconds)
            print(f"daily run for {day}: {seconds:.1f} s", flush=True)
        steps = step_seconds(instance, result.run_id)
    median = statistics.median(timings["daily"])
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {
        "users": args.users,
        "days": args.days,
        "backfill_days": len(history),
        "backfill_seconds": round(timings["backfill"][0], 1),
        "daily_seconds": [round(value, 1) for value in timings["daily"]],
        "daily_median_seconds": round(median, 1),
        "daily_over_backfill": round(median / timings["backfill"][0], 3),
        "last_daily_run_steps_seconds": {key: round(value, 1) for key, value in steps.items() if value >= 0.5},
        "peak_rss_mb": round(peak_rss_mb),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
