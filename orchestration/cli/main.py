"""`lifecycle`: the commands a data engineer scripts around the pipeline.

lifecycle generate [--users N --days N --seed N --start-date YYYY-MM-DD]
lifecycle run [--as-of YYYY-MM-DD]
                         generate demo data if the landing folder is empty (a folder with files is used
                         as it is, never replaced), then one run for the new or changed landing days up
                         to the latest (or --as-of): build, audit, publish
lifecycle backfill --from YYYY-MM-DD --to YYYY-MM-DD   (or --day YYYY-MM-DD)
                         one run for a range of days: reload their changed files, rebuild the facts
                         from the first day, rebuild the marts, audit, publish
lifecycle rebuild        move the warehouse aside (kept) and reload every landing day into a new one,
                         then build, audit, publish (after the warehouse file was damaged)
lifecycle status [--check]
                         what is published, landed, loaded and pending, and the last runs
                         (--check: exit code 1 unless the mart is up to date)
lifecycle summary        print what the published mart holds
lifecycle versions       list the kept published versions of the mart (which one is current)
lifecycle rollback [--to VERSION]
                         publish a kept version again (default: the one before the current)
lifecycle prepare        parse the dbt project (target/manifest.json)
lifecycle docs           regenerate the generated documentation
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from orchestration import data_lock
from orchestration.instance import ensure_dagster_home
from orchestration.project import PROJECT_ROOT, prepare_dbt_manifest
from orchestration.resources import BUILT_IN_DATASETS, LifecycleSettings, settings_from_env

log = logging.getLogger("lifecycle")


def generate_demo_data(settings: LifecycleSettings, args: argparse.Namespace, *, force: bool) -> None:
    """Write the seeded demo dataset to the landing folder, unless the same config is already there."""
    from models_py.generator import GeneratorConfig, generate, write_landing

    config = GeneratorConfig(
        seed=args.seed,
        n_users=args.users,
        n_days=args.days,
        start_date=dt.date.fromisoformat(args.start_date),
    )
    landing = Path(settings.landing_dir)
    marker = landing / "_truth" / "generator.json"
    found = _generator_config(marker)
    if not force:
        if found == config.to_dict():
            log.info(
                "landing folder %s already holds this demo dataset (seed %s): reused", landing, config.seed
            )
            return
        if _holds_files(landing):
            what = (
                "demo data generated with " + _describe_config(found)
                if found
                else "files that `lifecycle generate` did not write"
            )
            log.warning(
                "landing folder %s already holds %s: used as it is (`lifecycle run` never replaces a "
                "landing folder). To replace it with other demo data: `lifecycle generate --users N "
                "--days N [--seed N --start-date YYYY-MM-DD]`, then `lifecycle run`.",
                landing,
                what,
            )
            return
    started = time.perf_counter()
    if landing.exists():
        shutil.rmtree(landing)
    dataset = generate(config)
    summary = write_landing(dataset, landing)
    rows = ", ".join(
        f"{source} {counts['rows']:,} rows in {counts['files']} files" for source, counts in summary.items()
    )
    log.info(
        "generated %s users over %s days (seed %s) into %s in %.1f s: %s",
        f"{config.n_users:,}",
        config.n_days,
        config.seed,
        landing,
        time.perf_counter() - started,
        rows,
    )


def _generator_config(marker: Path) -> dict | None:
    try:
        return json.loads(marker.read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        return None


def _describe_config(config: dict) -> str:
    names = {"n_users": "--users", "n_days": "--days", "seed": "--seed", "start_date": "--start-date"}
    return " ".join(f"{flag} {config[key]}" for key, flag in names.items() if key in config)


def _holds_files(folder: Path) -> bool:
    """Whether a folder holds any file (the generator's own ``_truth`` folder aside)."""
    if not folder.is_dir():
        return False
    return any(
        path.is_file() and "_truth" not in path.relative_to(folder).parts for path in folder.rglob("*")
    )


def convert_cdnow(settings: LifecycleSettings, *, force: bool) -> None:
    """Write the CDNOW purchase log (shipped with lifetimes) as CSV landing files."""
    from models_py.datasets import write_cdnow_landing

    landing = Path(settings.landing_dir)
    if not force and any((landing / "transactions").glob("*/*.csv")):
        log.info("landing folder %s already holds CDNOW: reused", landing)
        return
    if landing.exists():
        shutil.rmtree(landing)
    summary = write_cdnow_landing(landing)["transactions"]
    log.info(
        "wrote CDNOW into %s: %s transactions in %s daily CSV files",
        landing,
        f"{summary['rows']:,}",
        summary["files"],
    )


def prepare_landing(settings: LifecycleSettings, args: argparse.Namespace, *, force: bool) -> None:
    """Make sure the landing folder holds the chosen dataset (never touches a user's own folder)."""
    if os.environ.get("LIFECYCLE_LANDING_DIR"):
        if not Path(settings.landing_dir).is_dir():
            raise SystemExit(f"LIFECYCLE_LANDING_DIR={settings.landing_dir} is not a folder")
        log.info("reading your landing folder %s", settings.landing_dir)
        return
    if settings.dataset == "demo":
        generate_demo_data(settings, args, force=force)
    elif settings.dataset == "cdnow":
        convert_cdnow(settings, force=force)
    else:
        raise SystemExit(
            f"dataset {settings.dataset!r} is not built in ({', '.join(BUILT_IN_DATASETS)}): "
            "set LIFECYCLE_LANDING_DIR to your own landing folder"
        )


def run_pipeline(
    settings: LifecycleSettings,
    window=None,
    trigger: str = "lifecycle run",
    run_id: str | None = None,
    rebuild: bool = False,
) -> bool:
    """Materialise every asset and run every check in the Dagster instance; True when published.

    Called with the data folder's lock held (:func:`run_command`). First marks failed the runs whose
    process died and frees their pool slots, waits for a warehouse still locked by another process and
    repairs the Parquet pointers (``orchestration/run_guard.py``), one line each; with ``rebuild``,
    moves the warehouse aside and reloads every landing day. Success or failure, the run's validation
    report is written to <data dir>/reports/<run id>.html (and latest.html) and linked from the run
    (tag lifecycle/validation_report). Expected failures print without Dagster's stack traces (they
    stay in the event log and the report).
    """
    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from orchestration.execution import (
        RunWindow,
        check_window,
        default_window,
        execute_build_job,
        landed_days,
    )
    from orchestration.report import check_info_from_repository, reports_dir, write_run_report
    from orchestration.run_guard import prepare_run, process_tags
    from orchestration.warehouse import set_aside

    with DagsterInstance.get() as instance:
        prepare_run(instance, settings, by=f"{trigger} (pid {os.getpid()})", warn=log.warning, info=log.info)
        try:
            if rebuild:
                days = landed_days(Path(settings.landing_dir))
                if not days:
                    raise ValueError(
                        f"no landing files under {settings.landing_dir}: nothing to rebuild from"
                    )
                end = settings.parsed_as_of_date() or days[-1]
                window = RunWindow(days[0], end, "rebuild: every landing day")
                check_window(window.start, window.end)
                aside = set_aside(settings.warehouse_path, "set-aside")
                if aside:
                    log.warning(
                        "moved the warehouse aside to %s (kept, not deleted: remove it once the rebuild "
                        "has published); reloading every landing day into a new %s",
                        aside,
                        settings.warehouse_path.name,
                    )
            elif window is None:
                window = default_window(settings, settings.parsed_as_of_date())
        except ValueError as err:
            raise SystemExit(f"Cannot run: {err}") from err
        log.info("run window: %s", window)
        result = execute_build_job(
            settings,
            instance,
            window=window,
            tags={"lifecycle/trigger": trigger, **process_tags(settings.data_dir)},
            run_id=run_id,
            logger="brief_console",
        )
        try:
            report = write_run_report(
                instance,
                result.run_id,
                reports_dir(settings.data_dir),
                check_info=check_info_from_repository(defs.get_repository_def()),
                as_of_date=settings.as_of_date,
            )
        except Exception as err:  # the report must never hide the run's own outcome
            report = None
            log.warning("could not write the validation report of run %s: %s", result.run_id, err)
    print_check_results(result)
    if not result.success:
        print_failure(result)
    if report is not None:
        print(f"\nValidation report: {report}")
    return result.success


def failure_messages(result) -> dict[str, list[str]]:
    """What failed the run, message -> the steps it failed (a message shared by several steps, e.g. a
    damaged warehouse failing each ingest step, is said once); the run's own error when no step
    failed (e.g. a resource that could not start)."""
    from dagster import DagsterEventType

    from orchestration.loggers import innermost_error

    messages: dict[str, list[str]] = {}
    for event in result.all_events:
        if event.is_step_failure:
            failure = event.step_failure_data
            if failure.user_failure_data and failure.user_failure_data.description:
                message = failure.user_failure_data.description
            elif failure.error:
                message = root_error_message(failure.error)
            else:
                message = "failed"
            messages.setdefault(message, []).append(event.step_key)
    if not messages:
        for event in result.all_events:
            error = getattr(event.event_specific_data, "error", None)
            if event.event_type == DagsterEventType.PIPELINE_FAILURE and error is not None:
                messages.setdefault(innermost_error(error), []).append("the run")
    return messages


def print_failure(result) -> None:
    messages = failure_messages(result)
    where = ", ".join(step for steps in messages.values() for step in steps) or "a step"
    print(f"\nRun {result.run_id} FAILED at {where}; the published mart is unchanged.")
    for message, steps in messages.items():
        print(f"  {', '.join(steps)}: {message}")


def root_error_message(error) -> str:
    """The innermost error of a Dagster error chain: the one that says what went wrong."""
    while error.cause is not None:
        error = error.cause
    return f"{error.cls_name}: {error.message.strip()[:2000]}"


def check_status(evaluation) -> str:
    """PASS, WARN (a non-blocking check of severity WARN that did not pass) or FAIL."""
    from dagster import AssetCheckSeverity

    if evaluation.passed:
        return "PASS"
    return "WARN" if evaluation.severity == AssetCheckSeverity.WARN else "FAIL"


def print_check_results(result) -> None:
    """Every failed or warning check with its reason; the project's own checks by name; dbt tests as
    a count."""
    from orchestration.assets.dbt import dbt_test_check_names

    dbt_tests = dbt_test_check_names()
    evaluations = result.get_asset_check_evaluations()
    statuses = [check_status(evaluation) for evaluation in evaluations]
    header = f"\nChecks: {statuses.count('PASS')} of {len(evaluations)} passed"
    for status, word in (("WARN", "warned"), ("FAIL", "failed")):
        if statuses.count(status):
            header += f", {statuses.count(status)} {word}"
    print(header)
    order = {"FAIL": 0, "WARN": 1, "PASS": 2}
    dbt_passed = 0
    for status, evaluation in sorted(
        zip(statuses, evaluations, strict=True), key=lambda pair: (order[pair[0]], pair[1].check_name)
    ):
        if status == "PASS" and evaluation.check_name in dbt_tests:
            dbt_passed += 1
            continue
        print(f"  {status}  {evaluation.asset_key.to_user_string()} :: {evaluation.check_name}")
        if status != "PASS" and evaluation.description:
            for line in evaluation.description.splitlines():
                print(f"        {line}")
    if dbt_passed:
        print(f"  PASS  {dbt_passed} dbt tests (unique, not_null, accepted_values, relationships)")


def print_summary(settings: LifecycleSettings) -> None:
    from orchestration.warehouse import connect, row_count

    path = settings.published_mart_path
    if not path.exists():
        print(f"No published mart at {path} yet: run `make run`.")
        return
    with connect(path, read_only=True) as conn:
        as_of_date, run_id = conn.execute("select as_of_date, run_id from mart_info").fetchone()
        print(f"\nPublished mart: {path} (as of {as_of_date}, run {run_id})")
        tables = [
            name for (name,) in conn.execute("select table_name from duckdb_tables() order by 1").fetchall()
        ]
        print("Tables: " + ", ".join(f"{name} ({row_count(conn, name):,})" for name in tables))
        print("\nUsers per lifecycle stage:")
        stages = conn.execute(
            "select lifecycle_stage, count(*) as users, round(100.0 * count(*) / sum(count(*)) over (), 1) "
            "from dim_users group by lifecycle_stage order by users desc"
        ).fetchall()
        for stage, users, share in stages:
            print(f"  {stage:<14}{users:>10,}  {share:>5}%")
        print(f"  {'total':<14}{sum(row[1] for row in stages):>10,}")
        unfitted = dict(
            conn.execute(
                "select model, not_fitted_reason from rpt_model_status where not is_fitted order by model"
            ).fetchall()
            if "rpt_model_status" in tables
            else []
        )
        for model, reason in unfitted.items():
            print(f"\n{model}: not fitted, no scores published: {reason}")
        print("\nTop customers by CLV:")
        if "customer_clv" in unfitted:
            print("  none: the CLV model was not fitted (see above)")
            return
        rows = conn.execute(
            "select c.user_id, u.lifecycle_stage, c.frequency, round(c.p_alive, 3), round(c.clv, 2) "
            "from customer_clv c join dim_users u using (user_id) order by c.clv desc, c.user_id limit 5"
        ).fetchall()
        print(f"  {'user_id':<12}{'stage':<14}{'repeat':>7}{'P(alive)':>10}{'CLV':>12}")
        for user_id, stage, frequency, p_alive, clv in rows:
            print(f"  {user_id:<12}{stage:<14}{frequency:>7}{p_alive:>10}{clv:>12,.2f}")


def backfill_window(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The window of `lifecycle backfill` from --day or --from/--to; exits with a usage error."""
    from orchestration.execution import RunWindow, check_window

    if args.day and (args.start or args.end):
        parser.error("use either --day or --from/--to")
    start, end = (args.day, args.day) if args.day else (args.start, args.end or args.start)
    if not start:
        parser.error("backfill needs --day YYYY-MM-DD or --from YYYY-MM-DD [--to YYYY-MM-DD]")
    try:
        window = RunWindow(dt.date.fromisoformat(start), dt.date.fromisoformat(end), "backfill")
        check_window(window.start, window.end)
    except ValueError as err:
        parser.error(f"backfill: {err}")
    return window


def print_status(settings: LifecycleSettings, *, check: bool) -> int:
    from orchestration.cli.status import add_runs, format_status, read_status, repair_when_idle

    running, repaired = repair_when_idle(settings)
    status = read_status(settings)
    status.running, status.repaired = running, repaired
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home")
    if (home / "dagster.yaml").exists():
        from dagster import DagsterInstance

        os.environ["DAGSTER_HOME"] = str(home.resolve())
        with DagsterInstance.get() as instance:
            add_runs(status, instance)
    print("\n".join(format_status(status, dt.datetime.now(dt.UTC))))
    return 1 if check and not status.up_to_date else 0


README_PATH = PROJECT_ROOT / "README.md"
CONTRACT_START = (
    "<!-- landing-contract:start (generated by `lifecycle docs` from orchestration/landing/contract.py) -->"
)
CONTRACT_END = "<!-- landing-contract:end -->"


def readme_with_contract(readme: str) -> str:
    """The README text with the landing-contract section replaced by the contract's own markdown."""
    from orchestration.landing.contract import contract_markdown

    head, found, rest = readme.partition(CONTRACT_START)
    _, found_end, tail = rest.partition(CONTRACT_END)
    if not (found and found_end):
        raise ValueError(f"README.md lacks the markers {CONTRACT_START!r} ... {CONTRACT_END!r}")
    return f"{head}{CONTRACT_START}\n{contract_markdown().strip()}\n{CONTRACT_END}{tail}"


def write_docs() -> list[str]:
    """Regenerate the generated docs: the README's landing contract and docs/mart_tables.md (from the
    parsed dbt manifest, which is refreshed first when the dbt project changed). Returns what changed."""
    from orchestration.mart_docs import MART_DOCS_PATH, mart_tables_markdown

    README_PATH.write_text(readme_with_contract(README_PATH.read_text()))
    prepare_dbt_manifest()
    MART_DOCS_PATH.parent.mkdir(parents=True, exist_ok=True)
    MART_DOCS_PATH.write_text(mart_tables_markdown())
    return [f"the landing contract in {README_PATH}", f"the mart tables in {MART_DOCS_PATH}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lifecycle", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {name: sub.add_parser(name) for name in ("run", "generate", "summary", "prepare", "docs")}
    commands["backfill"] = sub.add_parser(
        "backfill",
        help="one run for a range of days (reload changed files, rebuild from the first day, publish)",
    )
    commands["backfill"].add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first day")
    commands["backfill"].add_argument(
        "--to", dest="end", metavar="YYYY-MM-DD", help="last day (default: --from)"
    )
    commands["backfill"].add_argument("--day", metavar="YYYY-MM-DD", help="one day (same as --from D --to D)")
    commands["status"] = sub.add_parser("status", help="what is published, landed, loaded and pending")
    commands["status"].add_argument(
        "--check", action="store_true", help="exit code 1 unless the mart is up to date"
    )
    commands["versions"] = sub.add_parser("versions", help="list the kept versions of the published mart")
    commands["rollback"] = sub.add_parser(
        "rollback", help="publish a kept version again (default: the one before the current one)"
    )
    commands["rollback"].add_argument(
        "--to", metavar="VERSION", help="a version listed by `lifecycle versions`"
    )
    commands["rebuild"] = sub.add_parser(
        "rebuild",
        help="move the warehouse aside (kept) and reload every landing day into a new one, then build, "
        "audit and publish (after the warehouse file was damaged)",
    )
    for name in ("run", "generate", "summary", "versions", "rollback", "backfill", "status", "rebuild"):
        commands[name].add_argument(
            "--dataset",
            help="demo (default) or cdnow; sets LIFECYCLE_DATASET and the data folder data/<dataset>",
        )
    commands["run"].add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="the as-of date of the run (sets LIFECYCLE_AS_OF_DATE; default: the latest landed day)",
    )
    for name in ("run", "generate"):
        commands[name].add_argument("--users", type=int, default=5_000, help="demo: number of users")
        commands[name].add_argument("--days", type=int, default=365, help="demo: number of days")
        commands[name].add_argument("--seed", type=int, default=42, help="demo: random seed")
        commands[name].add_argument("--start-date", default="2025-01-01", help="demo: first day")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s lifecycle %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    if getattr(args, "dataset", None):
        os.environ["LIFECYCLE_DATASET"] = args.dataset
    if getattr(args, "as_of", None):
        try:
            dt.date.fromisoformat(args.as_of)
        except ValueError:
            parser.error(f"--as-of {args.as_of!r} is not a date YYYY-MM-DD")
        os.environ["LIFECYCLE_AS_OF_DATE"] = args.as_of
    settings = settings_from_env()

    if args.command == "prepare":
        print(prepare_dbt_manifest())
        return 0
    if args.command == "docs":
        print("updated " + " and ".join(write_docs()))
        return 0
    if args.command == "generate":
        try:
            with data_lock.hold(settings.data_dir, "lifecycle generate"):
                prepare_landing(settings, args, force=True)
        except data_lock.DataFolderBusy as err:
            print(err)
            return data_lock.BUSY_EXIT_CODE
        return 0
    if args.command == "summary":
        print_summary(settings)
        return 0
    if args.command == "status":
        return print_status(settings, check=args.check)
    if args.command == "backfill":
        return run_command(settings, args, "lifecycle backfill", window=backfill_window(parser, args))
    if args.command == "rebuild":
        return run_command(settings, args, "lifecycle rebuild", rebuild=True)
    if args.command in ("versions", "rollback"):
        from orchestration.publishing.layout import MartLayout, PublicationError
        from orchestration.publishing.versions import format_versions, list_versions, rollback

        layout = MartLayout(settings.mart_dir, settings.published_mart_path.name)
        if args.command == "rollback":
            try:
                # the data folder's lock: never while a run is going (its publication would silently
                # replace the version rolled back to)
                with data_lock.hold(settings.data_dir, "lifecycle rollback"):
                    done = rollback(layout, args.to)
            except data_lock.DataFolderBusy as err:
                print(f"Rollback refused: {err}")
                return data_lock.BUSY_EXIT_CODE
            except PublicationError as err:
                print(f"Rollback failed: {err}. The published mart is unchanged.")
                return 1
            print(
                f"Rolled back {layout.published} to version {done.version} in {done.seconds['total']:.2f} s"
            )
            print(f"Parquet: {layout.parquet_pointer} -> {done.parquet_snapshot.name}")
            from orchestration.mart_report import point_latest_report

            latest = point_latest_report(settings.mart_dir / "reports", done.version)
            print(
                f"Report: {latest} is the report of {done.version}"
                if latest
                else "Report: none for that version"
            )
        versions = list_versions(layout)
        if not versions:
            print(f"No kept versions under {layout.versions_dir} yet: run `make run`.")
            return 0
        print(f"Kept versions of {layout.published} (* = published now), newest first:")
        print("\n".join(format_versions(versions)))
        return 0
    return run_command(settings, args, "lifecycle run")


def run_command(
    settings: LifecycleSettings, args: argparse.Namespace, command: str, *, window=None, rebuild: bool = False
) -> int:
    """`lifecycle run`, `backfill` and `rebuild`: one run of the job, holding the data folder's lock
    from before the run until after its report; refused at once, with one line naming the holder,
    while another run, a rollback or a rebuild holds it."""
    from orchestration.run_guard import WarehouseBusy

    started = time.perf_counter()
    ensure_dagster_home()
    run_id = str(uuid.uuid4())
    try:
        with data_lock.hold(settings.data_dir, command, run_id=run_id):
            if command == "lifecycle run":
                prepare_landing(settings, args, force=False)
            log.info("checking the dbt manifest (parsing the dbt project if it changed)")
            prepare_dbt_manifest()
            log.info(
                "%s: build_mart_job on %s%s (Dagster home %s)",
                command,
                settings.dataset,
                f", {window}" if window else "",
                os.environ["DAGSTER_HOME"],
            )
            ok = run_pipeline(settings, window, trigger=command, run_id=run_id, rebuild=rebuild)
    except data_lock.DataFolderBusy as err:
        print(err)
        return data_lock.BUSY_EXIT_CODE
    except WarehouseBusy as err:
        print(err)
        return 1
    if ok and command != "lifecycle backfill":
        print_summary(settings)
    print(f"\n{'Done' if ok else 'Failed'} in {time.perf_counter() - started:.1f} s.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
