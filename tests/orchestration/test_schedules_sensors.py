"""The daily schedule and the landing sensor, evaluated for given times and landing files: the run
requests name the right partitions, and nothing is launched for files that did not change."""

import datetime as dt
import json
import os
import shutil

import dagster as dg
import pyarrow.parquet as pq
import pytest

from models_py.generator import GeneratorConfig, generate, write_landing
from orchestration.definitions import defs
from orchestration.landing.loader import ingest_source
from orchestration.resources import LifecycleSettings
from orchestration.sensors import landing_sensor
from orchestration.warehouse import connect

CONFIG = GeneratorConfig(seed=3, n_users=60, n_days=6)  # 2026-01-01 to 2026-01-06
DAYS = [(CONFIG.start_date + dt.timedelta(days=offset)).isoformat() for offset in range(CONFIG.n_days)]
UTC = dt.UTC


def tick(moment: dt.datetime):
    schedule = defs.get_repository_def().get_schedule_def("build_mart_job_schedule")
    with dg.build_schedule_context(
        scheduled_execution_time=moment, repository_def=defs.get_repository_def()
    ) as ctx:
        return schedule.evaluate_tick(ctx)


@pytest.mark.parametrize(
    ("moment", "partition"),
    [
        (dt.datetime(2026, 3, 2, 5, 0, tzinfo=UTC), "2026-03-01"),
        (dt.datetime(2026, 3, 1, 0, 0, tzinfo=UTC), "2026-02-28"),  # midnight: the day just over
        (dt.datetime(2026, 3, 1, 23, 59, tzinfo=UTC), "2026-02-28"),
        (dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.timezone(dt.timedelta(hours=5))), "2026-02-28"),  # 22:00 UTC
    ],
)
def test_schedule_runs_the_latest_complete_utc_day(moment, partition):
    result = tick(moment)
    (request,) = result.run_requests
    assert request.partition_key == partition
    assert request.tags["lifecycle/trigger"] == "schedule"


def test_schedule_skips_before_the_first_partition():
    result = tick(dt.datetime(2025, 1, 1, 5, 0, tzinfo=UTC))  # the demo partitions start 2025-01-01
    assert not result.run_requests
    assert "no complete day" in result.skip_message


def test_schedule_cron_and_timezone():
    schedule = defs.get_repository_def().get_schedule_def("build_mart_job_schedule")
    assert schedule.cron_schedule == os.environ.get("LIFECYCLE_SCHEDULE_CRON", "0 5 * * *")
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "build_mart_job"


@pytest.fixture
def landing(tmp_path):
    write_landing(generate(CONFIG), tmp_path / "landing")
    return tmp_path / "landing"


@pytest.fixture
def settings(tmp_path, landing) -> LifecycleSettings:
    return LifecycleSettings(data_dir=str(tmp_path / "data"), landing_dir=str(landing))


def evaluate(
    settings: LifecycleSettings, cursor: str | None
) -> tuple[list[str], str | None, dg.SensorResult]:
    with dg.build_sensor_context(cursor=cursor, resources={"settings": settings}) as ctx:
        result = landing_sensor(ctx)
    runs = sorted(request.partition_key for request in (result.run_requests or []))
    return runs, result.cursor, result


def test_sensor_launches_exactly_the_new_and_changed_days(settings, landing):
    # first tick, nothing loaded yet: every landed day, one run each, keyed by day and files
    runs, cursor, result = evaluate(settings, None)
    assert runs == DAYS
    assert len({request.run_key for request in result.run_requests}) == len(DAYS)
    assert all(
        request.run_key.startswith(f"landing:{request.partition_key}:") for request in result.run_requests
    )

    # nothing changed: no run
    runs, cursor_again, result = evaluate(settings, cursor)
    assert runs == []
    assert json.loads(cursor_again) == json.loads(cursor)

    # the same content delivered again (new modification time): still no run
    events_day_2 = next((landing / "events" / DAYS[2]).iterdir())
    shutil.copyfile(events_day_2, events_day_2.with_suffix(".tmp"))
    os.replace(events_day_2.with_suffix(".tmp"), events_day_2)
    os.utime(events_day_2, ns=(1, 1))
    runs, cursor, _ = evaluate(settings, cursor_again)
    assert runs == []

    # late data for day 2 (one row less) and a new file of day 4: exactly those two days
    table = pq.read_table(events_day_2)
    pq.write_table(table.slice(0, table.num_rows - 1), events_day_2)
    extra = landing / "transactions" / DAYS[4] / "late-delivery.parquet"
    pq.write_table(pq.read_table(next((landing / "users" / DAYS[4]).iterdir())).slice(0, 0), extra)
    runs, cursor, _ = evaluate(settings, cursor)
    assert runs == [DAYS[2], DAYS[4]]

    # a new day lands
    new_day = (CONFIG.end_date + dt.timedelta(days=1)).isoformat()
    shutil.copytree(landing / "events" / DAYS[-1], landing / "events" / new_day)
    runs, cursor, _ = evaluate(settings, cursor)
    assert runs == [new_day]
    assert evaluate(settings, cursor)[0] == []


def test_sensor_first_tick_launches_only_what_the_warehouse_has_not_loaded(settings, landing):
    with connect(settings.warehouse_path) as conn:
        for source in ("users", "events", "transactions"):
            ingest_source(conn, landing, source, loaded_at=dt.datetime(2026, 1, 7))
    assert evaluate(settings, None)[0] == []

    users_day_1 = next((landing / "users" / DAYS[1]).iterdir())
    table = pq.read_table(users_day_1)
    pq.write_table(table.slice(0, table.num_rows - 1), users_day_1)
    assert evaluate(settings, None)[0] == [DAYS[1]]


def test_sensor_waits_for_days_that_are_not_over(settings, landing):
    today = dt.datetime.now(UTC).date().isoformat()
    shutil.copytree(landing / "events" / DAYS[0], landing / "events" / today)
    runs, cursor, _ = evaluate(settings, None)
    assert today not in runs
    assert today not in json.loads(cursor)  # evaluated again on the next tick, launched once it is over
