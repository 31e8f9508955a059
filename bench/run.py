"""The benchmark: the whole pipeline at S, M or L users, against a hand-written DuckDB baseline.

``make bench SIZE=M`` (or ``python bench/run.py --size M --repeat 3``) does, in one session:

1. **data**: generates the seeded demo dataset with the project's own generator (S = 10k users,
   M = 100k, L = 1M; 365 days), cached under ``bench/.cache`` by seed and size;
2. **baseline**: ``bench/baseline_user_days.sql``, one hand-written DuckDB query that computes the
   user-day facts straight from the landing Parquet files of the history (every day but the last
   ``--daily-runs``); its result is checked against the pipeline's ``fct_user_days`` (rows and sums);
3. **full build**: ``lifecycle backfill`` of the history on an empty data folder and Dagster home,
   as a user would run it (ingest, dbt, CLV, churn, checks, publication), ``--repeat`` times;
4. **daily**: after the last full build, one more day lands and ``lifecycle backfill --day`` runs
   for it (what the schedule launches), for each of the last ``--daily-runs`` days;
5. **CLV scoring**: on the full build's ``int_orders_netted``, the project's path (the SQL customer
   summary of ``int_customers_summarized``, fits on distinct rows with counts as weights, scoring on
   distinct ``(frequency, recency, t)`` rows) against the plain ``lifetimes`` path (pandas
   ``summary_data_from_transaction_data``, one likelihood term per customer,
   ``customer_lifetime_value``), ``--repeat`` times each; their outputs must agree.

Each pipeline run is a subprocess whose whole process tree (dbt included) is sampled from /proc:
wall time, CPU time and peak memory per Dagster step and for the run. Every time is also given as a
ratio to the baseline measured in the same session, since absolute times drift on shared machines.
Results go to ``bench/results/<size>.json`` and ``.md``; ``--update-readme`` copies the table of
every size into the README. Times are medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from measure import Measured, run_measured, window_stats  # noqa: E402

from models_py.generator import GeneratorConfig, generate, write_landing  # noqa: E402

SIZES = {"S": 10_000, "M": 100_000, "L": 1_000_000}
RESULTS_DIR = ROOT / "bench" / "results"
BASELINE_SQL = ROOT / "bench" / "baseline_user_days.sql"
README = ROOT / "README.md"
README_START = "<!-- bench:start (written by `python bench/run.py --update-readme`) -->"
README_END = "<!-- bench:end -->"
SOURCES = ("users", "events", "transactions")
CLV_HORIZONS = (30, 90, 365)
# Targets of the benchmark (medians, 2 cores / 24 GiB), checked at size L.
TARGETS = {
    "full_build_over_baseline_max": 4.0,
    "full_build_peak_rss_mb_max": 4096,
    "clv_speed_up_min": 5.0,
    "clv_max_relative_difference": 1e-9,
    "daily_over_full_build_max": 0.10,
    "daily_l_over_m_max": 1.3,
}


# ------------------------------------------------------------------------------------------ data
def generated_landing(config: GeneratorConfig, work: Path) -> Path:
    """The landing folder of ``config``, generated once and cached under ``work`` by its config."""
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
    """Link the generated day folders of ``days`` into a run's landing folder (no copy)."""
    for source in SOURCES:
        for day in days:
            folder = source_landing / source / day.isoformat()
            if folder.is_dir():
                (landing / source).mkdir(parents=True, exist_ok=True)
                (landing / source / day.isoformat()).symlink_to(folder, target_is_directory=True)


def landed_rows(landing: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect() as conn:
        return {
            source: int(
                conn.execute(
                    "select count(*) from read_parquet(?)", [str(landing / source / "*" / "*.parquet")]
                ).fetchall()[0][0]
            )
            for source in SOURCES
        }


# -------------------------------------------------------------------------------------- baseline
def baseline_sql(landing: Path, as_of: dt.date) -> tuple[str, dict[str, object]]:
    """The baseline query and its parameters (the landing globs, the as-of date, the session gap)."""
    files = {source: str(landing / source / "*" / "*.parquet") for source in SOURCES}
    return BASELINE_SQL.read_text(), {**files, "as_of": as_of.isoformat(), "gap_seconds": 30 * 60}


def run_baseline(landing: Path, as_of: dt.date, database: Path) -> tuple[float, int]:
    """Seconds of the baseline query (into a fresh DuckDB file, as the pipeline writes one) and its rows."""
    import duckdb

    database.unlink(missing_ok=True)
    with duckdb.connect(str(database)) as conn:
        started = time.perf_counter()
        conn.execute(*baseline_sql(landing, as_of))
        conn.execute("checkpoint")
        seconds = time.perf_counter() - started
        rows = int(conn.sql("select count(*) from user_days").fetchall()[0][0])
    return seconds, rows


FACT_TOTALS = (
    "count(*)",
    "sum(events_count)",
    "sum(sessions_count)",
    "sum(orders_count)",
    "sum(net_orders_count)",
    "sum(net_revenue)",
    "count(*) filter (where is_signup_day)",
)


def compare_with_facts(baseline_db: Path, warehouse: Path) -> dict[str, Any]:
    """The baseline's totals against the pipeline's fct_user_days (equal when both compute the same)."""
    import duckdb

    select = ", ".join(FACT_TOTALS)
    with duckdb.connect(str(baseline_db), read_only=True) as conn:
        ours = conn.sql(f"select {select} from user_days").fetchall()[0]
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        pipeline = conn.sql(f"select {select} from marts.fct_user_days").fetchall()[0]
    return {
        "equal": [str(value) for value in ours] == [str(value) for value in pipeline],
        "baseline": dict(zip(FACT_TOTALS, (str(value) for value in ours), strict=True)),
        "fct_user_days": dict(zip(FACT_TOTALS, (str(value) for value in pipeline), strict=True)),
    }


# -------------------------------------------------------------------------------- pipeline runs
def run_environment(scenario: Path, partition_start: dt.date) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LIFECYCLE_DATA_DIR=str(scenario / "data"),
        LIFECYCLE_LANDING_DIR=str(scenario / "landing"),
        DAGSTER_HOME=str(scenario / "dagster_home"),
        LIFECYCLE_PARTITION_START=partition_start.isoformat(),
        DO_NOT_TRACK="1",
    )
    for key in ("LIFECYCLE_AS_OF_DATE", "LIFECYCLE_DAGSTER_POSTGRES_URL", "LIFECYCLE_DBT_UNIT_TESTS"):
        env.pop(key, None)
    return env


def step_windows(dagster_home: Path) -> list[tuple[str, float, float]]:
    """(step, start, end) of the latest run in a Dagster home, from its step events, in run order."""
    import dagster as dg

    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home)  # dagster.yaml reads it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            instance = dg.DagsterInstance.from_config(str(dagster_home))
        with instance:
            run = instance.get_runs(limit=1)[0]
            starts, ends = {}, {}
            for record in instance.get_records_for_run(
                run.run_id, of_type={dg.DagsterEventType.STEP_START}
            ).records:
                starts[record.event_log_entry.step_key] = record.event_log_entry.timestamp
            for record in instance.get_records_for_run(
                run.run_id, of_type={dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
            ).records:
                ends[record.event_log_entry.step_key] = record.event_log_entry.timestamp
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
    return sorted(((key, starts[key], ends[key]) for key in starts if key in ends), key=lambda item: item[1])


def pipeline_run(scenario: Path, partition_start: dt.date, args: list[str], label: str) -> dict[str, Any]:
    """One `lifecycle` command in a subprocess, measured; its steps cut from the samples."""
    log_path = scenario / (re.sub(r"[^A-Za-z0-9-]+", "_", label).strip("_") + ".log")
    measured: Measured = run_measured(
        [sys.executable, "-m", "orchestration.cli", *args],
        env=run_environment(scenario, partition_start),
        log_path=log_path,
    )
    if measured.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(
            f"{label}: `lifecycle {' '.join(args)}` failed (exit {measured.returncode}):\n{tail}"
        )
    steps = {
        key: {"seconds": round(end - start, 1), **window_stats(measured.samples, start, end)}
        for key, start, end in step_windows(scenario / "dagster_home")
    }
    peak = measured.peak_tree_rss_bytes
    result = {
        "seconds": round(measured.wall_seconds, 1),
        "cpu_seconds": round(measured.cpu_seconds, 1),
        "peak_rss_mb": None if peak is None else round(peak / 2**20),
        "max_process_rss_mb": round(measured.max_process_rss_bytes / 2**20),
        "steps": steps,
    }
    print(
        f"{label}: {result['seconds']:.1f} s wall, {result['cpu_seconds']:.1f} s CPU, "
        f"peak {result['peak_rss_mb']} MB",
        flush=True,
    )
    return result


def mart_row_counts(scenario: Path) -> dict[str, int]:
    import duckdb

    mart = scenario / "data" / "mart" / "lifecycle_mart.duckdb"
    with duckdb.connect(str(mart), read_only=True) as conn:
        tables = [
            row[0]
            for row in conn.sql(
                "select table_name from information_schema.tables where table_schema = 'main' order by 1"
            ).fetchall()
        ]
        return {table: int(conn.sql(f"select count(*) from {table}").fetchall()[0][0]) for table in tables}


# ---------------------------------------------------------------------------------- CLV scoring
def compiled_summary_sql(data_dir: Path) -> str:
    """int_customers_summarized's SQL as dbt compiled it in the full build."""
    found = sorted((data_dir / "dbt_target" / "compiled").rglob("int_customers_summarized.sql"))
    if not found:
        raise SystemExit(f"no compiled int_customers_summarized.sql under {data_dir / 'dbt_target'}")
    return found[0].read_text()


def clv_ours(warehouse: Path, summary_sql: str):
    import duckdb

    from models_py.clv import ClvModel

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        summary = conn.sql(summary_sql).df()
    model = ClvModel().fit(summary)
    scores = model.predict(
        summary, horizons_days=CLV_HORIZONS, clv_horizon_months=12, monthly_discount_rate=0.01
    )
    return summary[["user_id", "frequency", "recency", "t", "monetary_value"]].join(scores)


def clv_plain(warehouse: Path, observation_end: dt.date):
    """The textbook lifetimes path: pandas summary, one likelihood term per customer, lifetimes' CLV."""
    import duckdb
    import pandas as pd

    from models_py.clv import ClvModel  # noqa: F401  (imports lifetimes with its warning filtered)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter
        from lifetimes.utils import summary_data_from_transaction_data

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        orders = conn.execute(
            "select user_id, order_date, net_amount from intermediate.int_orders_netted "
            "where not is_fully_refunded and order_date <= ?",
            [observation_end],
        ).df()
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    orders["net_amount"] = orders["net_amount"].astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = summary_data_from_transaction_data(
            orders,
            "user_id",
            "order_date",
            monetary_value_col="net_amount",
            observation_period_end=pd.Timestamp(observation_end),
            freq="D",
        )
        f, r, t, m = (summary[c] for c in ("frequency", "recency", "T", "monetary_value"))
        bgf = BetaGeoFitter().fit(f, r, t)
        repeat = (f > 0) & (m > 0)
        ggf = GammaGammaFitter().fit(f[repeat], m[repeat])
        scores = pd.DataFrame(index=summary.index)
        scores["p_alive"] = bgf.conditional_probability_alive(f, r, t)
        for h in CLV_HORIZONS:
            scores[f"expected_purchases_{h}d"] = bgf.conditional_expected_number_of_purchases_up_to_time(
                h, f, r, t
            )
        scores["expected_avg_order_value"] = ggf.conditional_expected_average_profit(f, m)
        scores["clv"] = ggf.customer_lifetime_value(bgf, f, r, t, m, time=12, discount_rate=0.01, freq="D")
    summary = summary.rename(columns={"T": "t"})
    return summary[["frequency", "recency", "t", "monetary_value"]].join(scores).reset_index(names="user_id")


def max_relative_difference(ours, plain) -> tuple[float, str]:
    import numpy as np

    merged = ours.merge(plain, on="user_id", suffixes=("_ours", "_plain"), validate="one_to_one")
    if len(merged) != len(ours) or len(merged) != len(plain):
        return float("inf"), f"customers differ: {len(ours)} vs {len(plain)}"
    worst, where = 0.0, ""
    for column in [c for c in ours.columns if c != "user_id"]:
        a = merged[f"{column}_ours"].to_numpy(dtype=float)
        b = merged[f"{column}_plain"].to_numpy(dtype=float)
        scale = np.maximum(np.abs(a), np.abs(b))
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(scale > 0, np.abs(a - b) / scale, 0.0)
        if rel.max() > worst:
            worst, where = float(rel.max()), column
    return worst, where


def clv_comparison(warehouse: Path, summary_sql: str, end: dt.date, repeat: int) -> dict[str, Any]:
    """Both CLV paths on the ``int_orders_netted`` of ``warehouse``, ``repeat`` times; their outputs."""
    import lifetimes  # noqa: F401  (imported before the clocks start, as in a running pipeline)

    import models_py.clv  # noqa: F401

    ours_s, plain_s = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        ours = clv_ours(warehouse, summary_sql)
        ours_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        plain = clv_plain(warehouse, end)
        plain_s.append(time.perf_counter() - started)
    worst, column = max_relative_difference(ours, plain)
    result = {
        "customers": len(ours),
        "ours_seconds": [round(s, 2) for s in ours_s],
        "plain_seconds": [round(s, 2) for s in plain_s],
        "ours_median_seconds": round(statistics.median(ours_s), 2),
        "plain_median_seconds": round(statistics.median(plain_s), 2),
        "speed_up": round(statistics.median(plain_s) / statistics.median(ours_s), 1),
        "max_relative_difference": worst,
        "max_relative_difference_column": column,
    }
    print(
        f"CLV scoring of {len(ours):,} customers: ours {result['ours_median_seconds']} s, plain lifetimes "
        f"{result['plain_median_seconds']} s ({result['speed_up']}x), max relative difference {worst:.2e}",
        flush=True,
    )
    return result


def simulated_orders_warehouse(customers: int, seed: int, end: dt.date, path: Path) -> None:
    """A DuckDB file holding ``intermediate.int_orders_netted`` for ``customers`` buyers drawn from the
    BG/NBD + Gamma-Gamma process with the generator's true parameters (days; first purchases uniform
    over the year before ``end``): the CLV comparison at a million customers, which the generated
    L dataset (1M users, about 360k buyers) does not reach."""
    import duckdb
    import numpy as np
    import pandas as pd

    truth = GeneratorConfig()
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 365, customers)
    horizon = (364 - first).astype(float)
    lam = rng.gamma(truth.bgnbd_r, 1.0 / truth.bgnbd_alpha, customers)
    dropout = rng.beta(truth.bgnbd_a, truth.bgnbd_b, customers)
    nu = rng.gamma(truth.gg_q, 1.0 / truth.gg_gamma, customers)
    users, days = [np.arange(customers)], [first]
    clock, active = np.zeros(customers), np.arange(customers)
    while active.size:  # one repeat purchase per round for every customer still alive and in time
        clock[active] += rng.exponential(1.0 / lam[active])
        active = active[clock[active] <= horizon[active]]
        users.append(active)
        days.append(first[active] + np.floor(clock[active]).astype(int))
        active = active[rng.random(active.size) >= dropout[active]]
    user = np.concatenate(users)
    values = np.round(rng.gamma(truth.gg_p, 1.0 / nu[user]), 2)
    orders = pd.DataFrame(
        {
            "user_id": np.char.add("u", user.astype(str)),
            "order_date": pd.Timestamp(end) - pd.to_timedelta(364 - np.concatenate(days), unit="D"),
            "net_amount": np.maximum(values, 0.01),
            "is_fully_refunded": False,
        }
    )
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema intermediate")
        conn.register("orders", orders)
        conn.execute(
            "create table intermediate.int_orders_netted as select user_id, cast(order_date as date) as "
            "order_date, cast(net_amount as decimal(18, 2)) as net_amount, is_fully_refunded from orders"
        )


# ------------------------------------------------------------------------------------- reporting
def machine() -> dict[str, Any]:
    import importlib.metadata as md

    memory_gib = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    versions = {
        name: md.version(name)
        for name in ("dagster", "dbt-core", "dbt-duckdb", "duckdb", "lifetimes", "pandas")
    }
    return {
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }


def check_targets(result: dict[str, Any], m_result: dict[str, Any] | None) -> dict[str, Any]:
    """The issue's targets, evaluated on this result (they are stated for size L)."""
    full, daily = result["full_build"], result["daily"]
    clv = result["clv"].get("simulated") or result["clv"]  # the target is for 1M customers
    checks = {
        "full_build_over_baseline": (full["over_baseline"], TARGETS["full_build_over_baseline_max"], "<="),
        "full_build_peak_rss_mb": (full["peak_rss_mb"], TARGETS["full_build_peak_rss_mb_max"], "<="),
        "clv_speed_up": (clv["speed_up"], TARGETS["clv_speed_up_min"], ">="),
        "clv_max_relative_difference": (
            clv["max_relative_difference"],
            TARGETS["clv_max_relative_difference"],
            "<=",
        ),
        "daily_over_full_build": (daily["over_full_build"], TARGETS["daily_over_full_build_max"], "<="),
    }
    if m_result is not None:
        ratio = daily["median_seconds"] / m_result["daily"]["median_seconds"]
        checks["daily_over_daily_at_m"] = (round(ratio, 2), TARGETS["daily_l_over_m_max"], "<=")
    return {
        name: {
            "value": value,
            "target": target,
            "met": None if value is None else (value <= target if op == "<=" else value >= target),
        }
        for name, (value, target, op) in checks.items()
    }


def markdown(result: dict[str, Any]) -> str:
    data, base, full, daily, clv = (result[k] for k in ("data", "baseline", "full_build", "daily", "clv"))
    host = result["machine"]
    lines = [
        f"### Size {result['size']}: {data['users']:,} users, {data['landed_rows']['events']:,} events, "
        f"{data['landed_rows']['transactions']:,} transactions, {data['days']} days",
        "",
        f"{host['cores']} cores, {host['memory_gib']} GiB; {result['date']}; "
        f"medians of {result['repeat']} (daily: {len(daily['seconds'])} days).",
        "",
        "| measure | value | ratio to baseline |",
        "|---|---:|---:|",
        f"| baseline: user-day facts in one DuckDB query | {base['median_seconds']:.1f} s | 1.0 |",
        f"| full build (`lifecycle backfill` of {data['history_days']} days) "
        f"| {full['median_seconds']:.1f} s | {full['over_baseline']:.1f} |",
        f"| full build: events per second | {full['events_per_second']:,.0f} | |",
        f"| full build: CPU time | {full['cpu_seconds']:.0f} s | |",
        f"| full build: peak memory (process tree) | {full['peak_rss_mb']:,} MB | |",
        f"| daily run (one new day) | {daily['median_seconds']:.1f} s | {daily['over_baseline']:.1f} |",
        f"| daily run / full build | {daily['over_full_build']:.3f} | |",
        f"| CLV scoring, project path ({clv['customers']:,} customers) "
        f"| {clv['ours_median_seconds']:.2f} s | |",
        f"| CLV scoring, plain `lifetimes` | {clv['plain_median_seconds']:.2f} s | |",
        f"| CLV speed-up (max relative difference of the outputs) "
        f"| {clv['speed_up']}x ({clv['max_relative_difference']:.1e}) | |",
    ]
    if clv.get("simulated"):
        sim = clv["simulated"]
        lines += [
            f"| CLV scoring, project path ({sim['customers']:,} simulated buyers) "
            f"| {sim['ours_median_seconds']:.2f} s | |",
            f"| CLV scoring, plain `lifetimes` ({sim['customers']:,} simulated buyers) "
            f"| {sim['plain_median_seconds']:.2f} s | |",
            f"| CLV speed-up at {sim['customers']:,} buyers (max relative difference) "
            f"| {sim['speed_up']}x ({sim['max_relative_difference']:.1e}) | |",
        ]
    lines += [
        "",
        "Slowest steps of the full build and of the last daily run (wall s / CPU s / peak MB):",
        "",
        "| step | full build | daily run |",
        "|---|---:|---:|",
    ]
    full_steps, daily_steps = full["steps"], daily["steps"]
    for key in sorted(full_steps, key=lambda k: -full_steps[k]["seconds"])[:10]:
        f, d = full_steps[key], daily_steps.get(key)
        fmt = lambda s: f"{s['seconds']:.1f} / {s['cpu_seconds']} / {s['peak_rss_mb']}"  # noqa: E731
        lines.append(f"| {key} | {fmt(f)} | {fmt(d) if d else ''} |")
    lines += [
        "",
        "Published mart rows: " + ", ".join(f"{t} {n:,}" for t, n in result["mart_rows"].items()) + ".",
    ]
    lines += [f"\nNote: {note}" for note in result.get("notes", [])]
    if result.get("targets"):
        lines += ["", "| target (size L) | value | target | met |", "|---|---:|---:|---|"]
        for name, check in result["targets"].items():
            lines.append(
                f"| {name} | {check['value']} | {check['target']} | {'yes' if check['met'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def update_readme(results_dir: Path) -> None:
    tables = [
        (results_dir / f"{size}.md").read_text().strip()
        for size in SIZES
        if (results_dir / f"{size}.md").exists()
    ]
    text = README.read_text()
    head, found, rest = text.partition(README_START)
    _, found_end, tail = rest.partition(README_END)
    if not (found and found_end):
        raise SystemExit(f"README.md lacks the markers {README_START!r} ... {README_END!r}")
    README.write_text(f"{head}{README_START}\n" + "\n\n".join(tables) + f"\n{README_END}{tail}")


# ------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="S", help="S = 10k users, M = 100k, L = 1M")
    parser.add_argument("--users", type=int, help="override the size's number of users")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="full builds, baseline and CLV runs (median)")
    parser.add_argument(
        "--daily-runs", type=int, default=3, help="one-day runs after the full build (median)"
    )
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / ".cache")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--clv-customers",
        type=int,
        help="also compare the CLV paths on this many simulated buyers (default: 1M at size L)",
    )
    parser.add_argument(
        "--update-readme", action="store_true", help="copy the results' tables into README.md"
    )
    args = parser.parse_args(argv)
    if args.daily_runs < 1 or args.repeat < 1 or args.daily_runs >= args.days:
        parser.error("--repeat and --daily-runs must be at least 1, and --daily-runs less than --days")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    users = args.users or SIZES[args.size]
    if args.clv_customers is None and args.size == "L":
        args.clv_customers = 1_000_000
    config = GeneratorConfig(seed=args.seed, n_users=users, n_days=args.days, start_date=dt.date(2025, 1, 1))
    source_landing = generated_landing(config, args.work_dir)
    days = [config.start_date + dt.timedelta(days=offset) for offset in range(config.n_days)]
    history, daily_days = days[: -args.daily_runs], days[-args.daily_runs :]
    root = args.work_dir / f"run_{args.size}_u{users}"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)

    from orchestration.project import prepare_dbt_manifest

    prepare_dbt_manifest()  # parsed once here, not inside the first measured run
    history_landing = root / "history_landing"
    land(source_landing, history_landing, history)
    rows = landed_rows(history_landing)

    baseline_s, baseline_rows = [], 0
    for _ in range(args.repeat):
        seconds, baseline_rows = run_baseline(history_landing, history[-1], root / "baseline.duckdb")
        baseline_s.append(seconds)
    print(
        f"baseline: {baseline_rows:,} user-days in {statistics.median(baseline_s):.2f} s (median)", flush=True
    )

    full_runs, scenario = [], root
    for number in range(args.repeat):
        scenario = root / f"full_{number + 1}"
        scenario.mkdir()
        land(source_landing, scenario / "landing", history)
        full_runs.append(
            pipeline_run(
                scenario,
                config.start_date,
                ["backfill", "--from", history[0].isoformat(), "--to", history[-1].isoformat()],
                f"full build {number + 1}/{args.repeat}",
            )
        )
    warehouse = scenario / "data" / "warehouse.duckdb"
    facts = compare_with_facts(root / "baseline.duckdb", warehouse)
    if not facts["equal"]:
        print(f"WARNING: the baseline and fct_user_days differ: {json.dumps(facts, indent=2)}", flush=True)
    summary_sql = compiled_summary_sql(scenario / "data")
    clv = clv_comparison(warehouse, summary_sql, history[-1], args.repeat)
    if args.clv_customers:
        simulated = root / "warehouse.duckdb"  # the compiled SQL names the database "warehouse"
        simulated_orders_warehouse(args.clv_customers, args.seed, history[-1], simulated)
        clv["simulated"] = clv_comparison(simulated, summary_sql, history[-1], args.repeat)

    daily_runs = []
    for day in daily_days:
        land(source_landing, scenario / "landing", [day])
        daily_runs.append(
            pipeline_run(
                scenario, config.start_date, ["backfill", "--day", day.isoformat()], f"daily run {day}"
            )
        )

    baseline_median = statistics.median(baseline_s)
    full_median = statistics.median(run["seconds"] for run in full_runs)
    daily_median = statistics.median(run["seconds"] for run in daily_runs)
    median_full_run = sorted(full_runs, key=lambda run: run["seconds"])[len(full_runs) // 2]
    result: dict[str, Any] = {
        "size": args.size,
        "date": dt.date.today().isoformat(),
        "repeat": args.repeat,
        "machine": machine(),
        "data": {
            "users": users,
            "days": args.days,
            "history_days": len(history),
            "seed": args.seed,
            "landed_rows": rows,  # of the history (the full build's input)
            "generator": config.to_dict(),
        },
        "baseline": {
            "seconds": [round(s, 2) for s in baseline_s],
            "median_seconds": round(baseline_median, 2),
            "user_days": baseline_rows,
            "matches_fct_user_days": facts["equal"],
            "totals": facts,
        },
        "full_build": {
            "seconds": [run["seconds"] for run in full_runs],
            "median_seconds": full_median,
            "over_baseline": round(full_median / baseline_median, 1),
            "events_per_second": round(rows["events"] / full_median),
            "cpu_seconds": median_full_run["cpu_seconds"],
            "peak_rss_mb": max(run["peak_rss_mb"] or 0 for run in full_runs),
            "max_process_rss_mb": max(run["max_process_rss_mb"] for run in full_runs),
            "steps": median_full_run["steps"],
        },
        "daily": {
            "seconds": [run["seconds"] for run in daily_runs],
            "median_seconds": daily_median,
            "over_baseline": round(daily_median / baseline_median, 1),
            "over_full_build": round(daily_median / full_median, 3),
            "cpu_seconds": daily_runs[-1]["cpu_seconds"],
            "peak_rss_mb": max(run["peak_rss_mb"] or 0 for run in daily_runs),
            "steps": daily_runs[-1]["steps"],
        },
        "clv": clv,
        "mart_rows": mart_row_counts(scenario),
    }
    m_file = args.results_dir / "M.json"
    if args.size == "L":
        result["targets"] = check_targets(result, json.loads(m_file.read_text()) if m_file.exists() else None)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{args.size}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.results_dir / f"{args.size}.md").write_text(markdown(result))
    if args.update_readme:
        update_readme(args.results_dir)
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
