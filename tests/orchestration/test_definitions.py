"""The definitions load without side effects and expose the expected graph (a snapshot: drift shows)."""

import dagster as dg

from orchestration.definitions import defs

EXPECTED_ASSETS = {
    "raw/users",
    "raw/events",
    "raw/transactions",
    "stg_raw__users",
    "stg_raw__events",
    "stg_raw__transactions",
    "int_events_sessionized",
    "int_orders_netted",
    "int_customers_summarized",
    "int_clv_calibration_holdout",
    "int_churn_snapshot_dates",
    "int_churn_customer_snapshots",
    "int_churn_snapshots",
    "fct_user_days",
    "dim_users",
    "fct_user_stage_intervals",
    "rpt_daily_stage_counts",
    "fct_stage_transitions",
    "rpt_activity_lifecycle",
    "rpt_retention_cohorts",
    "rpt_stickiness",
    "rpt_days_active_per_week",
    "rpt_kpis",
    "rfm_segments",
    "int_customers_rfm_scored",
    "fct_customer_rfm",
    "rpt_rfm_segments",
    "fct_audience_members",
    "rpt_model_status",
    "customer_clv",
    "churn_risk",
    "mart_staging",
    "reporting_mart",
}
EXPECTED_OWN_CHECKS = {
    "raw/users:raw_users__quarantine_share",
    "raw/events:raw_events__quarantine_share",
    "raw/transactions:raw_transactions__quarantine_share",
    "raw/users:raw_users__expectations",
    "raw/events:raw_events__expectations",
    "raw/transactions:raw_transactions__expectations",
    "customer_clv:customer_clv__expectations",
    "customer_clv:customer_clv__fit_converged",
    "customer_clv:customer_clv__parameters_finite",
    "customer_clv:customer_clv__gamma_gamma_q_above_1",
    "customer_clv:customer_clv__outputs_in_range",
    "churn_risk:churn_risk__expectations",
    "churn_risk:churn_risk__outputs_in_range",
    "churn_risk:churn_risk__every_active_user_scored",
    "mart_staging:mart_staging__expectations",
    "mart_staging:mart_staging__reconciliation",
}
# Own checks that only warn (never block publication).
EXPECTED_OWN_WARNING_CHECKS = {
    "customer_clv:customer_clv__holdout_error",
    "customer_clv:customer_clv__model_fitted",
    "churn_risk:churn_risk__beats_baselines",
    "churn_risk:churn_risk__model_fitted",
    "raw/users:raw_users__empty_days",
    "raw/events:raw_events__empty_days",
    "raw/transactions:raw_transactions__empty_days",
    "raw/users:raw_users__unknown_columns",
    "raw/events:raw_events__unknown_columns",
    "raw/transactions:raw_transactions__unknown_columns",
    "raw/users:raw_users__landing_folder",
    "raw/events:raw_events__landing_folder",
    "raw/transactions:raw_transactions__landing_folder",
}
EXPECTED_GROUPS = {
    "raw/users": "ingest",
    "stg_raw__users": "staging",
    "int_orders_netted": "intermediate",
    "dim_users": "marts",
    "customer_clv": "models",
    "reporting_mart": "publish",
}


def asset_graph():
    return defs.get_repository_def().asset_graph


def test_asset_keys_snapshot():
    keys = {key.to_user_string() for key in asset_graph().get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS


def test_blocking_checks_snapshot():
    graph = asset_graph()
    checks = {key.to_user_string() for key in graph.asset_check_keys}
    assert checks >= EXPECTED_OWN_CHECKS
    # dbt tests are checks too (dagster-dbt), e.g. the key of dim_users
    assert "dim_users:unique_dim_users_user_id" in checks
    for check in EXPECTED_OWN_CHECKS:
        asset, name = check.split(":")
        spec = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey.from_user_string(asset), name))
        assert spec.blocking, f"{check} must be blocking"


def test_warning_checks_snapshot():
    graph = asset_graph()
    assert {key.to_user_string() for key in graph.asset_check_keys} >= EXPECTED_OWN_WARNING_CHECKS
    for check in EXPECTED_OWN_WARNING_CHECKS:
        asset, name = check.split(":")
        spec = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey.from_user_string(asset), name))
        assert not spec.blocking, f"{check} must only warn"


def test_jobs_schedules_and_sensors():
    repo = defs.get_repository_def()
    assert {job.name for job in repo.get_all_jobs()} >= {"build_mart_job"}
    assert {schedule.name for schedule in repo.schedule_defs} == {"build_mart_job_schedule"}
    assert {sensor.name for sensor in repo.sensor_defs} == {
        "landing_sensor",
        "validation_report_on_success",
        "validation_report_on_failure",
    }


DAILY_ASSETS = {
    "raw/users",
    "raw/events",
    "raw/transactions",
    "stg_raw__users",
    "stg_raw__events",
    "stg_raw__transactions",
    "int_orders_netted",
    "fct_user_days",
}


def test_the_ingest_assets_and_the_dbt_daily_layer_are_partitioned_by_day_and_backfilled_in_one_run():
    graph = asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.to_user_string() in DAILY_ASSETS:
            assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition), key
            assert node.partitions_def.timezone == "UTC"
            assert node.backfill_policy == dg.BackfillPolicy.single_run(), key
        else:
            assert node.partitions_def is None, f"{key.to_user_string()} should not be partitioned"
    # the unpartitioned models read the latest partition of the daily layer
    dim_users = graph.get(dg.AssetKey("dim_users"))
    mapping = dim_users.partition_mappings.get(dg.AssetKey("fct_user_days"))
    assert isinstance(mapping, dg.LastPartitionMapping)


def test_the_published_mart_has_a_freshness_policy_and_every_asset_owner_and_kinds():
    graph = asset_graph()
    policy = graph.get(dg.AssetKey("reporting_mart")).freshness_policy
    assert policy is not None and policy.fail_window.to_timedelta().total_seconds() == 26 * 3600
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners, f"{key.to_user_string()} has no owner"
        assert node.kinds, f"{key.to_user_string()} has no kinds"
    assert "great_expectations" in graph.get(dg.AssetKey(["raw", "events"])).kinds
    assert "dbt" in graph.get(dg.AssetKey("dim_users")).kinds
    columns = graph.get(dg.AssetKey("dim_users")).metadata["dagster/column_schema"].columns
    assert {"user_id", "lifecycle_stage"} <= {column.name for column in columns}


def test_every_asset_has_a_description_and_group():
    graph = asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, f"{key.to_user_string()} has no description"
    for key, group in EXPECTED_GROUPS.items():
        assert graph.get(dg.AssetKey.from_user_string(key)).group_name == group


def test_lineage_runs_from_ingest_to_publish():
    graph = asset_graph()
    upstream = graph.get(dg.AssetKey("reporting_mart")).parent_keys
    assert upstream == {dg.AssetKey("mart_staging")}
    ancestors = dg.AssetSelection.assets("reporting_mart").upstream().resolve(graph)
    assert {
        dg.AssetKey(["raw", "transactions"]),
        dg.AssetKey("customer_clv"),
        dg.AssetKey("dim_users"),
    } <= ancestors


def test_every_published_table_has_an_expectation_suite_and_feeds_the_staged_mart():
    from expectations.runner import list_suites
    from orchestration.assets.publish import MART_TABLES

    assert {"dim_users", "fct_user_days", "customer_clv"} <= set(MART_TABLES)
    missing = sorted(set(MART_TABLES) - set(list_suites()))
    assert not missing, f"published tables without a suite in expectations/suites/: {missing}"
    parents = asset_graph().get(dg.AssetKey("mart_staging")).parent_keys
    assert parents == {dg.AssetKey(table) for table in MART_TABLES}


def test_the_dbt_version_known_without_a_subprocess_is_what_dbt_reports():
    from dagster_dbt import DbtCliResource

    from orchestration.resources import build_resources

    dbt = build_resources()["dbt"]
    assert dbt._cli_version == DbtCliResource._cli_version.func(dbt)  # the latter runs `dbt --version`
