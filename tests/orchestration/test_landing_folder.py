"""What a landing folder holds beside loadable day folders: the warnings of the ingest checks and
the run window of `lifecycle run` (real folders, a real DuckDB file, the checks invoked directly)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from orchestration.checks.quarantine import build_landing_folder_check, build_unknown_columns_check
from orchestration.execution import default_window
from orchestration.landing.loader import ingest_source
from orchestration.partitions import last_complete_day
from orchestration.resources import LifecycleSettings

DAY1, DAY2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)
FUTURE = dt.date(2999, 1, 1)
HEADER = "event_id,user_id,event_type,occurred_at"


def deliver(landing: Path, source: str, folder: str, name: str = "a.csv", text: str | None = None) -> Path:
    path = landing / source / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text or f"{HEADER}\ne_{folder},u1,page_view,{folder} 10:00:00\n", encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> LifecycleSettings:
    (tmp_path / "data").mkdir()
    (tmp_path / "landing").mkdir()
    return LifecycleSettings(data_dir=str(tmp_path / "data"), landing_dir=str(tmp_path / "landing"))


def test_an_unknown_column_warns_naming_the_file_and_the_column(settings):
    landing = Path(settings.landing_dir)
    deliver(landing, "events", "2025-03-01", text=f"{HEADER},browser\ne1,u1,page_view,2025-03-01,firefox\n")
    deliver(landing, "events", "2025-03-02")
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        report = ingest_source(conn, landing, "events", loaded_at=dt.datetime(2026, 1, 1))
    assert [p.rows_loaded for p in report.partitions] == [1, 1]  # the row loads

    result = build_unknown_columns_check("events")(settings=settings)

    assert not result.passed and result.severity.value == "WARN"
    assert "events/2025-03-01/a.csv: browser" in result.description
    assert "events/2025-03-02" not in result.description
    assert build_unknown_columns_check("users")(settings=settings).passed


def test_the_landing_folder_check_names_what_no_run_loads(settings):
    landing = Path(settings.landing_dir)
    deliver(landing, "events", "2025-03-01")
    deliver(landing, "events", "2999-01-01")
    deliver(landing, "events", "2025-02-30")
    deliver(landing, "events", "2025-03-01", name="a.csv.bak")
    (landing / "events" / "2025-03-01" / "b.csv").symlink_to("missing.csv")

    result = build_landing_folder_check("events")(settings=settings)

    assert not result.passed and result.severity.value == "WARN"
    for path in (
        "events/2999-01-01/",
        "events/2025-02-30/",
        "events/2025-03-01/a.csv.bak",
        "events/2025-03-01/b.csv",
    ):
        assert path in result.description, result.description
    assert "left for a later run" in result.description and "not a real date" in result.description
    assert "broken symbolic link" in result.description
    failures = result.metadata["failures"].data
    assert [row["path"] for row in failures[0]["sample_rows"]][:1] == ["events/2999-01-01/"]
    assert build_landing_folder_check("users")(settings=settings).passed


def test_the_folder_of_the_day_in_progress_is_expected_and_an_as_of_date_leaves_later_days(settings):
    landing = Path(settings.landing_dir)
    deliver(landing, "events", "2025-03-01")
    today = last_complete_day() + dt.timedelta(days=1)
    deliver(landing, "events", today.isoformat())

    result = build_landing_folder_check("events")(settings=settings)
    assert result.passed and f"events/{today.isoformat()}/, loads once the day is over" in result.description

    as_of = LifecycleSettings(data_dir=settings.data_dir, landing_dir=str(landing), as_of_date="2025-02-28")
    result = build_landing_folder_check("events")(settings=as_of)
    assert not result.passed and "events/2025-03-01/ (dated after 2025-02-28" in result.description


def test_lifecycle_run_builds_up_to_the_last_complete_landed_day_and_says_what_it_left(settings):
    landing = Path(settings.landing_dir)
    deliver(landing, "events", "2025-03-01")
    deliver(landing, "users", "2025-03-02", text="user_id,signup_at\nu1,2025-03-02 10:00:00\n")
    deliver(landing, "events", "2999-01-01")

    window = default_window(settings)

    assert (window.start, window.end, window.later) == (DAY1, DAY2, ("events/2999-01-01/",))
    assert "left for later runs: 1 day folder(s) dated after 2025-03-02: events/2999-01-01/" in str(window)
    as_of = default_window(settings, DAY1)
    assert (as_of.start, as_of.end, as_of.later) == (DAY1, DAY1, ("users/2025-03-02/", "events/2999-01-01/"))


def test_a_landing_folder_with_only_future_days_says_which_folder_and_what_to_do(settings):
    deliver(Path(settings.landing_dir), "events", "2999-01-01")
    with pytest.raises(
        ValueError, match=r"every landing day folder .* is dated after .*events/2999-01-01/.*rename"
    ):
        default_window(settings)


def test_the_ingest_asset_leaves_a_future_folder_and_lists_what_it_did_not_read(settings):
    import dagster as dg

    from orchestration.assets.ingest import raw_assets
    from orchestration.checks.quarantine import landing_folder_checks

    landing = Path(settings.landing_dir)
    deliver(landing, "events", "2025-03-01")
    deliver(landing, "events", "2999-01-01")
    deliver(landing, "events", "2025-03-01", name="notes.txt")
    events = next(asset for asset in raw_assets if asset.key == dg.AssetKey(["raw", "events"]))
    checks = [check for check in landing_folder_checks if "raw_events" in str(check.check_keys)]

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [events, *checks], partition_key="2025-03-01", resources={"settings": settings}, instance=instance
        )
        logged = [entry.user_message for entry in instance.all_logs(result.run_id)]

    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw__events")
    ingestion = materialization.metadata["ingestion"].data
    assert ingestion["loaded_partitions"] == ["2025-03-01"] and ingestion["later_partitions"] == [
        "2999-01-01"
    ]
    assert list(ingestion["ignored_paths"]) == ["events/2025-03-01/notes.txt"]
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and "events/2999-01-01/" in evaluation.description
    assert any("left for a later run (not loaded): events/2999-01-01/" in m for m in logged)
    assert any("are not read: events/2025-03-01/notes.txt (not a data file" in m for m in logged)
