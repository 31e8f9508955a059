"""dbt build time at scale: a full rebuild against a one-day incremental run (medians of N).

Generates the seeded dataset (cached by its config), loads it with the project's ingestion, then
times, on the same warehouse and in the same run:

* ``full``: ``dbt build --full-refresh`` as of the last day (every model and test);
* ``incremental``: ``dbt build`` as of the last day after the warehouse was built as of the day
  before (the daily run: fct_user_days rebuilds its lookback window; the other models are tables).

Each is reported as the command's wall time, dbt's own time in the nodes (models, tests, unit
tests: without start-up and parsing, which dbt redoes in full whenever a var such as as_of_date
changes), and the time of the fct_user_days node alone.

The models that read the Python models' tables (fct_audience_members and the ml sources) are
excluded: they need the CLV and churn assets, which this script does not run.

Usage::

    python bench/dbt_incremental.py --users 100000 --days 365 --session-rate 0.3 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models_py.generator import GeneratorConfig, generate, write_landing  # noqa: E402
from orchestration.landing.loader import ingest_source  # noqa: E402
from orchestration.project import DBT_PROJECT_DIR, dbt_executable, load_audiences  # noqa: E402
from orchestration.warehouse import connect  # noqa: E402

EXCLUDE = ["--exclude", "fct_audience_members", "source:ml"]


def prepare(config: GeneratorConfig, work: Path) -> Path:
    key = f"seed{config.seed}_u{config.n_users}_d{config.n_days}_s{config.session_rate_mean_per_day}"
    landing = work / "landing" / key
    if not (landing / ".complete").exists():
        started = time.perf_counter()
        write_landing(generate(config), landing)
        (landing / ".complete").write_text(json.dumps(config.to_dict(), default=str))
        print(f"generated {key} in {time.perf_counter() - started:.1f} s", flush=True)
    warehouse = work / f"warehouse_{key}.duckdb"
    if not warehouse.exists():
        started = time.perf_counter()
        with connect(warehouse) as conn:
            for source in ("users", "events", "transactions"):
                ingest_source(conn, landing, source, loaded_at=dt.datetime(2026, 1, 1))
        print(f"ingested in {time.perf_counter() - started:.1f} s", flush=True)
    return warehouse


def dbt(project_dir: Path, work: Path, args: list[str], dbt_vars: dict) -> dict[str, float]:
    """Run dbt; wall time of the command, dbt's own time in the nodes, and fct_user_days' node."""
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target-path",
        str(work / "dbt_target"),
        "--log-path",
        str(work / "dbt_logs"),
        "--vars",
        json.dumps(dbt_vars),
        "--quiet",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - started
    results = json.loads((work / "dbt_target" / "run_results.json").read_text())["results"]
    return {
        "wall": wall,
        "nodes": sum(r["execution_time"] for r in results),
        "fct_user_days": sum(
            r["execution_time"] for r in results if r["unique_id"] == "model.lifecycle_mart.fct_user_days"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--session-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / ".cache")
    parser.add_argument("--project-dir", type=Path, default=DBT_PROJECT_DIR)
    args = parser.parse_args()

    config = GeneratorConfig(
        seed=args.seed, n_users=args.users, n_days=args.days, session_rate_mean_per_day=args.session_rate
    )
    args.work_dir.mkdir(parents=True, exist_ok=True)
    warehouse = prepare(config, args.work_dir)
    os.environ["LIFECYCLE_WAREHOUSE_PATH"] = str(warehouse)
    with connect(warehouse, read_only=True) as conn:
        (events,) = conn.execute("select count(*) from raw.events").fetchone()
    end = config.end_date
    day_before = end - dt.timedelta(days=1)
    base = {"audiences": load_audiences()}
    at_end = {**base, "as_of_date": end.isoformat()}
    before = {**base, "as_of_date": day_before.isoformat()}
    project = args.project_dir

    runs: dict[str, list[dict[str, float]]] = {"full": [], "incremental": []}
    for i in range(args.repeat):
        runs["full"].append(dbt(project, args.work_dir, ["build", "--full-refresh", *EXCLUDE], at_end))
        dbt(project, args.work_dir, ["run", "--select", "fct_user_days"], before)  # back to d - 1
        runs["incremental"].append(dbt(project, args.work_dir, ["build", *EXCLUDE], at_end))
        print(
            f"round {i + 1}: "
            + "; ".join(
                f"{k} " + ", ".join(f"{m} {x:.1f} s" for m, x in v[-1].items()) for k, v in runs.items()
            ),
            flush=True,
        )

    medians = {
        kind: {measure: round(statistics.median(r[measure] for r in rounds), 2) for measure in rounds[0]}
        for kind, rounds in runs.items()
    }
    result = {
        "users": args.users,
        "days": args.days,
        "events": events,
        "repeat": args.repeat,
        "cores": os.cpu_count(),
        "median_seconds": medians,
        "incremental_over_full": {
            measure: round(medians["incremental"][measure] / medians["full"][measure], 3)
            for measure in medians["full"]
        },
        "all_seconds": {k: [{m: round(x, 2) for m, x in r.items()} for r in v] for k, v in runs.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
