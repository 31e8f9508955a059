"""CLV holdout error on CDNOW through the project's own path (landing files, ingestion, dbt).

Writes CDNOW (the 2,357-customer sample of the papers, or the full 23,570-customer log) as landing
files, loads them with the project's ingestion into a fresh DuckDB warehouse, builds
int_clv_calibration_holdout as of 1998-06-30 with a holdout of 273 days (calibration = weeks 1-39,
holdout = weeks 40-78, as in Fader, Hardie & Lee 2005a) and prints ``evaluate_holdout``: actual vs
predicted repeat purchase days per calibration frequency and in total.

Usage::

    python bench/clv_holdout_cdnow.py --dataset sample --work-dir /tmp/clv_cdnow
    python bench/clv_holdout_cdnow.py --dataset master --work-dir /tmp/clv_cdnow
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models_py.clv import evaluate_holdout  # noqa: E402
from models_py.datasets import write_cdnow_landing  # noqa: E402
from orchestration.landing.loader import ingest_source  # noqa: E402
from orchestration.project import DBT_PROJECT_DIR  # noqa: E402
from orchestration.warehouse import connect  # noqa: E402

AS_OF_DATE = "1998-06-30"
HOLDOUT_DAYS = 273


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("sample", "master"), default="sample")
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--time-unit", choices=("day", "week"), default="week")
    args = parser.parse_args()

    root = args.work_dir / args.dataset
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    write_cdnow_landing(root / "landing", sample=args.dataset == "sample")
    warehouse = root / "warehouse.duckdb"
    with connect(warehouse) as conn:
        report = ingest_source(conn, root / "landing", "transactions", loaded_at=dt.datetime(2026, 1, 1))
    if report.failed:
        raise SystemExit(f"ingestion failed: {[p.error for p in report.failed]}")
    loaded = time.perf_counter()

    from dbt.cli.main import dbtRunner

    os.environ["LIFECYCLE_WAREHOUSE_PATH"] = str(warehouse)
    os.environ["DO_NOT_TRACK"] = "1"
    result = dbtRunner().invoke(
        [
            "build",
            "--select",
            "+int_clv_calibration_holdout",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(root / "dbt_target"),
            "--log-path",
            str(root / "dbt_logs"),
            "--vars",
            json.dumps({"as_of_date": AS_OF_DATE, "clv_holdout_days": HOLDOUT_DAYS}),
            "--quiet",
        ]
    )
    if not result.success:
        raise SystemExit(f"dbt build failed: {result.exception}")
    built = time.perf_counter()
    with connect(warehouse) as conn:
        calibration = conn.sql("select * from intermediate.int_clv_calibration_holdout order by user_id").df()
    evaluation = evaluate_holdout(calibration, time_unit=args.time_unit)
    print(f"CDNOW {args.dataset}: ingestion {loaded - started:.1f} s, dbt {built - loaded:.1f} s")
    print(evaluation.to_markdown())
    print(json.dumps({"params": evaluation.params, **evaluation.metrics()}, indent=2))


if __name__ == "__main__":
    main()
