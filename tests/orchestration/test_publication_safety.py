"""Publication under stress, with real processes: a publisher SIGKILLed at each step boundary, and BI-like
readers querying the published mart while new versions are swapped in.

The publisher is a small harness that calls the real steps of ``orchestration/publishing/`` in the
order ``publish_staged_mart`` calls them and kills itself at the chosen boundary (no hooks in the
production code). Marts are tiny files built directly with DuckDB, so the whole module takes seconds.
"""

import datetime as dt
import inspect
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from orchestration.project import PROJECT_ROOT
from orchestration.publishing.hashes import mart_content_hash
from orchestration.publishing.layout import MartLayout
from orchestration.publishing.parquet import parquet_pointer_target
from orchestration.publishing.staging import build_staged_mart, verify_staged_mart
from orchestration.publishing.versions import current_version, list_versions, publish_staged_mart, rollback

TABLES = {"dim_users": "marts.dim_users", "customer_clv": "ml.customer_clv"}
KEEP = 3

HARNESS = """
import os, signal, sys, threading
from pathlib import Path

from orchestration.publishing.layout import MartLayout
from orchestration.publishing.staging import build_staged_mart, verify_staged_mart
from orchestration.publishing.versions import (
    finish_publication, new_version_name, prepare_version, recover_interrupted, swap_in,
)
from orchestration.publishing.files import publication_lock

root, warehouse, run_id, kill_at, keep = sys.argv[1:]
layout = MartLayout(Path(root))
tables = {"dim_users": "marts.dim_users", "customer_clv": "ml.customer_clv"}


def boundary(name):
    if name == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


if kill_at == "during_staging":  # lands somewhere inside the DuckDB writes of the candidate
    threading.Timer(0.005, boundary, args=["during_staging"]).start()
build_staged_mart(Path(warehouse), layout.staging, run_id, tables)
boundary("during_staging")
boundary("after_staging")
verify_staged_mart(layout.staging, tables)
boundary("after_audit")
with publication_lock(layout):
    recover_interrupted(layout)
    version = new_version_name(layout, run_id)
    prepare_version(layout, version)
    boundary("before_rename")
    swap_in(layout.staging, layout.published)
    boundary("after_rename")
    finish_publication(layout, version, int(keep))
print(version)
"""

READER = """
import json, os, sys, time
import duckdb

path, mode, stop, ready, out = sys.argv[1:]
QUERY = '''
select (select min(marker) from dim_users), (select max(marker) from dim_users),
       (select count(*) from dim_users), (select min(marker) from customer_clv),
       (select max(marker) from customer_clv), (select count(*) from customer_clv),
       (select run_id from mart_info)
'''
errors, seen, queries = [], {}, 0
held = duckdb.connect(path, read_only=True) if mode == "hold" else None
while not os.path.exists(stop):
    try:
        if held is None:
            with duckdb.connect(path, read_only=True) as conn:
                row = conn.execute(QUERY).fetchone()
        else:
            row = held.execute(QUERY).fetchone()
        low, high, users, clv_low, clv_high, customers, run_id = row
        expected = (low, low, 1000 + 100 * low, low, low, 500 + 50 * low, f"run{low:05d}")
        if row != expected:
            raise AssertionError(f"a mix of versions in one query: {row}, expected {expected}")
        seen[low] = seen.get(low, 0) + 1
    except Exception as err:
        errors.append(repr(err))
    queries += 1
    if queries == 1:
        open(ready, "w").close()
    time.sleep(0.005)  # a dashboard, not a busy loop: leave the CPU to the publisher
if held is not None:
    held.close()
with open(out, "w") as handle:
    json.dump({"errors": errors, "seen": seen, "queries": queries}, handle)
"""


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{PROJECT_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def write_warehouse(path: Path, version: int) -> None:
    """Content number ``version``: every row carries the marker, and the row counts follow from it."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema if not exists marts; create schema if not exists ml")
        conn.execute(
            "create or replace table marts.dim_users as select 'u' || i as user_id, "
            f"date '2026-03-01' + {version} as as_of_date, {version} as marker "
            f"from range({1000 + 100 * version}) t(i)"
        )
        conn.execute(
            "create or replace table ml.customer_clv as select 'u' || i as user_id, "
            f"{version} as marker, i / 7 as clv from range({500 + 50 * version}) t(i)"
        )


def publish_in_process(warehouse: Path, layout: MartLayout, version: int) -> float:
    """Stage, audit and publish content ``version``; return the seconds of the publish step."""
    write_warehouse(warehouse, version)
    build_staged_mart(warehouse, layout.staging, f"run{version:05d}", TABLES)
    verify_staged_mart(layout.staging, TABLES)
    return publish_staged_mart(layout, f"run{version:05d}", KEEP).seconds["total"]


def run_harness(tmp_path: Path, layout: MartLayout, warehouse: Path, version: int, kill_at: str):
    script = tmp_path / "harness.py"
    script.write_text(HARNESS)
    write_warehouse(warehouse, version)
    return subprocess.run(
        [sys.executable, script, layout.root, warehouse, f"run{version:05d}", kill_at, str(KEEP)],
        env=subprocess_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def published_marker(layout: MartLayout) -> int:
    with duckdb.connect(str(layout.published), read_only=True) as conn:
        return conn.execute("select max(marker) from dim_users").fetchone()[0]


def parquet_marker(layout: MartLayout) -> int:
    current = layout.parquet_dir / (parquet_pointer_target(layout) or "?") / "dim_users.parquet"
    with duckdb.connect() as conn:
        return conn.execute(f"select max(marker) from read_parquet('{current}')").fetchone()[0]


def leftovers(layout: MartLayout) -> list[str]:
    return [p.name for p in layout.root.rglob("*") if p.name.endswith((".pending", ".partial", ".tmp"))]


def test_the_harness_follows_the_order_of_publish_staged_mart():
    from orchestration.publishing import versions as publication

    source = inspect.getsource(publication.publish_staged_mart)
    steps = ["publication_lock(", "recover_interrupted(", "new_version_name(", "prepare_version("]
    steps += ["swap_in(", "finish_publication("]
    positions = [source.index(step) for step in steps]
    assert positions == sorted(positions)
    harness_positions = [HARNESS.rindex(step) for step in steps]
    assert harness_positions == sorted(harness_positions)


@pytest.mark.parametrize("kill_at", ["during_staging", "after_staging", "after_audit", "before_rename"])
def test_a_publisher_killed_before_the_rename_leaves_the_previous_mart(tmp_path, kill_at):
    layout, warehouse = MartLayout(tmp_path / "mart"), tmp_path / "warehouse.duckdb"
    publish_in_process(warehouse, layout, 1)
    previous = current_version(layout)
    before = mart_content_hash(layout.published, ignore_columns={})

    killed = run_harness(tmp_path, layout, warehouse, 2, kill_at)

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert mart_content_hash(layout.published, ignore_columns={}) == before  # opens read-only, same content
    assert current_version(layout) == previous and [v.name for v in list_versions(layout)] == [previous]
    assert parquet_pointer_target(layout) == previous and parquet_marker(layout) == 1
    if kill_at in ("during_staging", "after_staging"):
        # what a kill inside DuckDB's writes leaves: a stale candidate with a write-ahead log
        layout.staging.parent.mkdir(parents=True, exist_ok=True)
        layout.staging.with_name(layout.staging.name + ".wal").write_bytes(b"\x00torn write-ahead log")

    following = run_harness(tmp_path, layout, warehouse, 3, "none")

    assert following.returncode == 0, following.stderr
    assert published_marker(layout) == 3 and parquet_marker(layout) == 3
    assert [v.name for v in list_versions(layout)] == [previous, following.stdout.strip()]
    assert current_version(layout) == following.stdout.strip()
    assert not leftovers(layout) and not layout.staging.exists()
    assert sorted(p.name for p in layout.parquet_dir.iterdir() if p.is_dir() and not p.is_symlink()) == [
        previous,
        following.stdout.strip(),
    ]


def test_a_publisher_killed_after_the_rename_is_completed_by_the_next_run(tmp_path):
    layout, warehouse = MartLayout(tmp_path / "mart"), tmp_path / "warehouse.duckdb"
    publish_in_process(warehouse, layout, 1)
    first = current_version(layout)

    killed = run_harness(tmp_path, layout, warehouse, 2, "after_rename")

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert published_marker(layout) == 2  # the new mart is in place and opens
    assert parquet_pointer_target(layout) == first  # the pointer has not moved yet

    following = run_harness(tmp_path, layout, warehouse, 3, "none")

    assert following.returncode == 0, following.stderr
    names = [v.name for v in list_versions(layout)]
    assert len(names) == 3 and names[0] == first and names[2] == following.stdout.strip()
    assert not leftovers(layout)
    assert rollback(layout).version == names[1]  # the killed run's version was kept
    assert published_marker(layout) == 2 and parquet_marker(layout) == 2


def test_readers_never_fail_and_always_see_one_complete_version(tmp_path):
    layout, warehouse = MartLayout(tmp_path / "mart"), tmp_path / "warehouse.duckdb"
    publish_in_process(warehouse, layout, 0)
    script, stop = tmp_path / "reader.py", tmp_path / "stop"
    script.write_text(READER)
    readers = {}
    for mode in ("reconnect", "hold"):
        ready, out = tmp_path / f"{mode}.ready", tmp_path / f"{mode}.json"
        process = subprocess.Popen(
            [sys.executable, str(script), str(layout.published), mode, str(stop), str(ready), str(out)],
            env=subprocess_env(),
            cwd=tmp_path,
        )
        readers[mode] = (process, ready, out)
    try:
        deadline = time.monotonic() + 30
        while not all(ready.exists() for _, ready, _ in readers.values()):
            assert time.monotonic() < deadline, "the readers did not start"
            assert all(process.poll() is None for process, _, _ in readers.values()), "a reader died"
            time.sleep(0.02)
        publish_seconds = []
        for version in range(1, 6):
            publish_seconds.append(publish_in_process(warehouse, layout, version))
            time.sleep(0.1)
        time.sleep(0.2)
    finally:
        stop.touch()
        for process, _, _ in readers.values():
            process.wait(timeout=30)
    results = {mode: json.loads(out.read_text()) for mode, (_, _, out) in readers.items()}
    errors = {mode: result["errors"] for mode, result in results.items()}
    print(
        f"\n5 publications: median publish {statistics.median(publish_seconds):.3f} s "
        f"(max {max(publish_seconds):.3f} s); reader errors {sum(map(len, errors.values()))}; "
        + "; ".join(
            f"{mode}: {r['queries']} queries, versions seen {r['seen']}" for mode, r in results.items()
        )
    )
    assert errors == {"reconnect": [], "hold": []}
    assert set(results["hold"]["seen"]) == {"0"}  # an open connection keeps its version, consistently
    seen = set(results["reconnect"]["seen"])
    assert "5" in seen and len(seen) >= 3, seen  # reconnecting readers follow the new versions
    assert published_marker(layout) == 5 and parquet_marker(layout) == 5
    assert len(list_versions(layout)) == KEEP


def test_version_names_sort_by_time_even_with_a_clock_going_back(tmp_path):
    layout, warehouse = MartLayout(tmp_path / "mart"), tmp_path / "warehouse.duckdb"
    late = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    for version, now in ((1, late), (2, late - dt.timedelta(days=1))):
        write_warehouse(warehouse, version)
        build_staged_mart(warehouse, layout.staging, f"run{version:05d}", TABLES)
        publish_staged_mart(layout, f"run{version:05d}", KEEP, now=now)
    names = [v.name for v in list_versions(layout)]
    assert names[1] > names[0] and names[1].endswith("_run00002") and current_version(layout) == names[1]
