"""The same dbt build on DuckDB and on Spark local mode, same data, same process (dbtRunner).

Generates a seeded dataset, loads it with the project's ingestion (and the raw Parquet export Spark
reads), then times ``dbt seed`` + ``dbt run`` of every model but the audiences (they need the Python
model assets), as of the last day, first on DuckDB, then on Spark in a fresh local SparkSession
(in-memory catalog, warehouse in a temporary folder). The Spark time is reported with and without
the session start (the JVM). Data tests are not run: both engines run the same SQL for them.

Usage::

    python bench/dbt_spark_vs_duckdb.py --users 600 --days 100
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models_py.generator import GeneratorConfig, generate, write_landing  # noqa: E402
from orchestration.engines import SPARK_SESSION_CONF  # noqa: E402
from orchestration.landing.loader import ingest_source  # noqa: E402
from orchestration.landing.raw_parquet import export_raw_parquet  # noqa: E402
from orchestration.project import DBT_PROJECT_DIR, load_audiences  # noqa: E402
from orchestration.warehouse import connect  # noqa: E402

SOURCES = ("users", "events", "transactions")


def dbt(root: Path, target: str, as_of: dt.date, *args: str) -> float:
    from dbt.cli.main import dbtRunner

    started = time.perf_counter()
    result = dbtRunner().invoke(
        [
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(root / f"target_{target}"),
            "--log-path",
            str(root / f"logs_{target}"),
            "--vars",
            json.dumps({"as_of_date": as_of.isoformat(), "audiences": load_audiences()}),
            "--quiet",
        ]
    )
    if not result.success:
        raise SystemExit(f"dbt {' '.join(args)} failed on {target}: {result.exception or result.result}")
    return time.perf_counter() - started


def build(root: Path, target: str, as_of: dt.date) -> float:
    os.environ["LIFECYCLE_DBT_TARGET"] = target
    return dbt(root, target, as_of, "seed") + dbt(
        root, target, as_of, "run", "--exclude", "fct_audience_members"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args()
    config = GeneratorConfig(seed=args.seed, n_users=args.users, n_days=args.days)
    with tempfile.TemporaryDirectory(prefix="bench_spark_") as tmp:
        root = Path(tmp)
        write_landing(generate(config), root / "landing")
        warehouse = root / "warehouse.duckdb"
        with connect(warehouse) as conn:
            for source in SOURCES:
                ingest_source(conn, root / "landing", source, loaded_at=dt.datetime(2026, 1, 1))
                export_raw_parquet(conn, root / "raw_parquet", source)
        os.environ.update(
            {
                "LIFECYCLE_WAREHOUSE_PATH": str(warehouse),
                "LIFECYCLE_RAW_PARQUET_DIR": str(root / "raw_parquet"),
                "DO_NOT_TRACK": "1",
                "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
            }
        )
        duckdb_seconds = build(root, "duckdb", config.end_date)

        from pyspark.sql import SparkSession

        started = time.perf_counter()
        builder = (
            SparkSession.builder.master("local[2]")
            .config("spark.sql.catalogImplementation", "in-memory")
            .config("spark.sql.warehouse.dir", str(root / "spark_warehouse"))
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
        )
        for key, value in SPARK_SESSION_CONF.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        spark_start = time.perf_counter() - started
        spark_seconds = build(root, "spark", config.end_date)
        session.stop()
    result = {
        "users": args.users,
        "days": args.days,
        "duckdb_seed_run_seconds": round(duckdb_seconds, 1),
        "spark_session_start_seconds": round(spark_start, 1),
        "spark_seed_run_seconds": round(spark_seconds, 1),
        "spark_over_duckdb": round(spark_seconds / duckdb_seconds, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
