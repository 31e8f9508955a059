"""Churn risk: the SQL snapshots leak nothing from after t0, the label is right on its edges (a dbt unit
test), the model beats both baselines on generated data, splits by time, and is deterministic.

The snapshot tests run the real dbt project (in-process, its own target and log folders under the
test's tmp dir) on small DuckDB warehouses loaded straight from the seeded generator.
"""

import datetime as dt
import json
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from models_py.churn import (
    LABEL,
    NUMERIC_FEATURES,
    SCORE_COLUMNS,
    CannotFitError,
    ChurnModel,
    ChurnParams,
    bgnbd_p_alive_by_snapshot,
    reliability_table,
)
from models_py.generator import GeneratorConfig, generate
from orchestration.landing.tables import ensure_raw_tables
from orchestration.project import DBT_PROJECT_DIR, dbt_executable
from orchestration.warehouse import connect

# 240 days: the six default snapshots (30 days apart, the latest 30 days before d) all have users.
CONFIG = GeneratorConfig(seed=5, n_users=2_000, n_days=240)
AS_OF = CONFIG.end_date
SNAPSHOTS = "intermediate.int_churn_snapshots"
CUSTOMER_SNAPSHOTS = "intermediate.int_churn_customer_snapshots"


class Warehouse:
    """A DuckDB warehouse loaded from generated frames, and dbt runs on it."""

    def __init__(self, root) -> None:
        self.root = root
        self.path = root / "warehouse.duckdb"

    def load(self, dataset) -> None:
        with connect(self.path) as conn:
            ensure_raw_tables(conn)
            for source, time_column in (("users", "signup_at"), ("events", "occurred_at"),
                                        ("transactions", "occurred_at")):  # fmt: skip
                frame = getattr(dataset, source)
                conn.register("frame", frame)
                conn.execute(
                    f"insert into raw.{source} by name select *, 'generated' as _source_file, "
                    f"cast({time_column} as date) as _partition_date, "
                    "row_number() over () as _row_number, timestamp '2026-01-01' as _loaded_at from frame"
                )
                conn.unregister("frame")

    def dbt(self, *args: str) -> None:
        """One dbt command in a subprocess, as Dagster runs it (an in-process run would keep the
        warehouse open in this process); fails the test with dbt's own output."""
        env = {**os.environ, "LIFECYCLE_WAREHOUSE_PATH": str(self.path), "DO_NOT_TRACK": "1"}
        command = [
            dbt_executable(), *args,
            "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(self.root / "dbt_target"),
            "--log-path", str(self.root / "dbt_logs"),
            "--vars", json.dumps({"as_of_date": AS_OF.isoformat()}),
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"dbt {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")

    def query(self, sql: str) -> pd.DataFrame:
        with connect(self.path, read_only=True) as conn:
            return conn.execute(sql).df()

    def execute(self, sql: str) -> None:
        with connect(self.path) as conn:
            conn.execute(sql)


@pytest.fixture(scope="module")
def dataset():
    return generate(CONFIG)


@pytest.fixture(scope="module")
def work_warehouse(tmp_path_factory):
    """One warehouse path and dbt target for every dbt run of the module: dbt re-parses the whole
    project when the profile (the warehouse path) or the vars change, so keep both fixed."""
    return Warehouse(tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, dataset, work_warehouse):
    """The churn snapshots built by dbt on the generated data (and the label unit test run there);
    the warehouse is copied aside for the tests, the work path is reused by the next fixture."""
    work_warehouse.load(dataset)
    # run + the dbt unit tests (the label's needs the parents in the warehouse) in one call
    work_warehouse.dbt("build", "--select", "+int_churn_snapshots", "--exclude", "test_type:data")
    warehouse = Warehouse(tmp_path_factory.mktemp("original"))
    shutil.copyfile(work_warehouse.path, warehouse.path)
    return {
        "warehouse": warehouse,
        "snapshots": warehouse.query(f"select * from {SNAPSHOTS} order by snapshot_date, user_id"),
        "customers": warehouse.query(f"select * from {CUSTOMER_SNAPSHOTS} order by snapshot_date, user_id"),
    }


@pytest.fixture(scope="module")
def p_alive(built):
    labelled = built["customers"].loc[~built["customers"]["is_scoring_snapshot"]]
    frame, failures = bgnbd_p_alive_by_snapshot(labelled)
    return frame, failures


@pytest.fixture(scope="module")
def fitted(built, p_alive):
    return ChurnModel().fit(built["snapshots"], p_alive[0])


# ------------------------------------------------------------------ SQL snapshots
def test_snapshots_cover_the_default_dates_and_the_scoring_day(built):
    snapshots = built["snapshots"]
    dates = sorted(snapshots["snapshot_date"].dt.date.unique())
    expected = [AS_OF - dt.timedelta(days=30 + 30 * k) for k in range(5, -1, -1)] + [AS_OF]
    assert dates == expected
    scoring = snapshots.loc[snapshots["is_scoring_snapshot"]]
    assert scoring["snapshot_date"].dt.date.unique().tolist() == [AS_OF]
    assert scoring[LABEL].isna().all()
    assert snapshots.loc[~snapshots["is_scoring_snapshot"], LABEL].notna().all()
    assert snapshots["days_since_last_active"].between(0, 29).all()


def test_scoring_population_is_every_user_active_in_the_last_30_days(built):
    active = built["warehouse"].query(
        f"select distinct user_id from marts.fct_user_days where activity_date > date '{AS_OF}' - 30"
    )
    scoring = built["snapshots"].loc[built["snapshots"]["is_scoring_snapshot"]]
    assert set(scoring["user_id"]) == set(active["user_id"])


def test_label_matches_the_activity_after_t0(built, dataset):
    """is_churned recomputed in pandas from the generated frames (independent of dbt)."""
    events = dataset.events.loc[dataset.events["event_type"] != "app_heartbeat"]
    tx = dataset.transactions
    orders = tx.loc[(tx["transaction_type"] == "order") & (tx["status"] == "completed")]
    days = pd.concat(
        [
            events[["user_id"]].assign(day=events["occurred_at"].dt.normalize()),
            orders[["user_id"]].assign(day=orders["occurred_at"].dt.normalize()),
            dataset.users[["user_id"]].assign(day=dataset.users["signup_at"].dt.normalize()),
        ]
    ).drop_duplicates()
    labelled = built["snapshots"].loc[~built["snapshots"]["is_scoring_snapshot"]]
    for t0, rows in labelled.groupby("snapshot_date"):
        window = days.loc[(days["day"] > t0) & (days["day"] <= t0 + pd.Timedelta(days=30)), "user_id"]
        expected = ~rows["user_id"].isin(set(window))
        assert (rows[LABEL].astype(bool) == expected).all(), f"label differs at {t0.date()}"
        assert 0.05 < expected.mean() < 0.95


@pytest.fixture(scope="module")
def rebuilt_with_changes_after_t0(work_warehouse, built):
    """The same raw data up to t0 and very different data after it, rebuilt from scratch."""
    dates = sorted(built["snapshots"]["snapshot_date"].dt.date.unique())
    t0 = dates[-3]  # the second latest labelled snapshot: later snapshots exist to differ
    after = f"timestamp '{t0 + dt.timedelta(days=1)}'"
    warehouse = work_warehouse
    warehouse.execute(
        f"""
        -- every completed order up to t0 fully refunded the day after t0
        insert into raw.transactions by name
        select 'late-refund-' || transaction_id as transaction_id, order_id, user_id,
            'refund' as transaction_type, 'completed' as status, amount, currency,
            {after} + interval 2 hour as occurred_at, 'changed' as _source_file,
            cast({after} as date) as _partition_date, row_number() over () as _row_number,
            _loaded_at
        from raw.transactions
        where transaction_type = 'order' and status = 'completed' and occurred_at < {after};
        -- half of the users vanish after t0, the other half come back more often
        delete from raw.events where occurred_at >= {after} and hash(user_id) % 2 = 0;
        delete from raw.transactions where occurred_at >= {after} and hash(user_id) % 2 = 0
            and transaction_type = 'order';
        insert into raw.events by name
        select 'echo-' || event_id as event_id, user_id, event_type,
            occurred_at + interval 11 day as occurred_at, 'changed' as _source_file,
            cast(occurred_at + interval 11 day as date) as _partition_date, _row_number, _loaded_at
        from raw.events
        where occurred_at >= {after} - interval 11 day
            and occurred_at < timestamp '{AS_OF}' - interval 11 day
            and hash(user_id) % 2 = 1;
        """
    )
    # --full-refresh: an incremental fct_user_days would only rebuild its last few days
    warehouse.dbt("run", "--select", "+int_churn_snapshots", "--full-refresh")
    return (
        t0,
        {
            "snapshots": warehouse.query(f"select * from {SNAPSHOTS} order by snapshot_date, user_id"),
            "customers": warehouse.query(
                f"select * from {CUSTOMER_SNAPSHOTS} order by snapshot_date, user_id"
            ),
        },
    )


def test_changing_data_after_t0_does_not_change_the_features_at_t0(built, rebuilt_with_changes_after_t0):
    t0, changed = rebuilt_with_changes_after_t0
    cutoff = pd.Timestamp(t0)
    for table in ("snapshots", "customers"):
        before, after = built[table], changed[table]
        up_to_t0 = [
            frame.loc[frame["snapshot_date"] <= cutoff].reset_index(drop=True) for frame in (before, after)
        ]
        columns = [c for c in before.columns if c != LABEL]
        assert len(up_to_t0[0]) > 500
        pd.testing.assert_frame_equal(up_to_t0[0][columns], up_to_t0[1][columns])
        # ... while the changes were material: later snapshots' features moved
        later = [frame.loc[frame["snapshot_date"] > cutoff] for frame in (before, after)]
        assert not later[0].reset_index(drop=True).equals(later[1].reset_index(drop=True))
    # the label at t0 looks after t0: it must have moved, and the labels whose window ends by t0 not
    before, after = built["snapshots"], changed["snapshots"]
    at_t0 = before["snapshot_date"] == cutoff
    assert (before.loc[at_t0, LABEL].to_numpy() != after.loc[at_t0, LABEL].to_numpy()).sum() > 50
    settled = before["snapshot_date"] + pd.Timedelta(days=30) <= cutoff
    assert settled.sum() > 500
    assert (before.loc[settled, LABEL].to_numpy() == after.loc[settled, LABEL].to_numpy()).all()


# ------------------------------------------------------------------ the model
def test_model_beats_both_baselines_on_generated_data(fitted, p_alive):
    _, failures = p_alive
    assert not failures, failures
    methods = fitted.metrics_["methods"]
    model = methods["model"]
    for baseline in ("baseline_days_since_last_active", "baseline_bgnbd_p_alive"):
        assert model["roc_auc"] > methods[baseline]["roc_auc"] + 0.02, (
            baseline,
            methods[baseline]["roc_auc"],
        )
        assert model["brier"] < methods[baseline]["brier"]
        assert fitted.metrics_["model_beats_baselines"][baseline] is True
    assert model["roc_auc"] > 0.75
    assert sum(row["rows"] for row in model["reliability"]) == fitted.metrics_["evaluation_rows"]


def test_split_is_by_time_and_the_backtest_never_sees_the_evaluation_labels(built, p_alive, fitted):
    metrics = fitted.metrics_
    labelled = built["snapshots"].loc[~built["snapshots"]["is_scoring_snapshot"]]
    latest = labelled["snapshot_date"].max()
    assert metrics["evaluation_snapshot_date"] == latest.date().isoformat()
    assert all(d < metrics["evaluation_snapshot_date"] for d in metrics["training_snapshot_dates"])
    assert metrics["evaluation_rows"] == int((labelled["snapshot_date"] == latest).sum())
    assert metrics["training_rows"] == int((labelled["snapshot_date"] < latest).sum())

    # flipping the evaluation labels changes the metrics, never the backtest's predictions
    flipped = built["snapshots"].copy()
    at_latest = flipped["snapshot_date"] == latest
    flipped.loc[at_latest, LABEL] = ~flipped.loc[at_latest, LABEL].astype(bool)
    refit = ChurnModel().fit(flipped, p_alive[0])
    np.testing.assert_array_equal(refit.backtest_["model"].to_numpy(), fitted.backtest_["model"].to_numpy())
    assert refit.metrics_["methods"]["model"]["roc_auc"] == pytest.approx(
        1 - fitted.metrics_["methods"]["model"]["roc_auc"]
    )
    # ... whereas the final model, refitted on every labelled snapshot, does see them
    assert refit.model_version() != fitted.model_version()


def test_scores_are_probabilities_for_every_scoring_user_and_deterministic(built, p_alive, fitted):
    scores = fitted.score(built["snapshots"])
    scoring = built["snapshots"].loc[built["snapshots"]["is_scoring_snapshot"]]
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert scores["user_id"].tolist() == sorted(scoring["user_id"])
    assert scores["churn_risk"].between(0, 1).all() and scores["churn_risk"].notna().all()
    assert (scores["as_of_date"].dt.date == AS_OF).all()
    assert sorted(scores["risk_decile"].unique()) == list(range(1, 11))
    # the riskiest tenth has the highest risks
    assert (
        scores.loc[scores["risk_decile"] == 10, "churn_risk"].min()
        >= scores.loc[scores["risk_decile"] == 9, "churn_risk"].max()
    )
    again = ChurnModel().fit(built["snapshots"].sample(frac=1.0, random_state=3), p_alive[0])
    pd.testing.assert_frame_equal(again.score(built["snapshots"]), scores)
    assert again.model_version() == fitted.model_version()
    assert fitted.model_version().startswith("churn-hgb-")


def test_sigmoid_calibration_is_fitted_on_a_later_snapshot_than_the_classifier(built, p_alive):
    model = ChurnModel(ChurnParams(calibration="sigmoid")).fit(built["snapshots"], p_alive[0])
    (calibrated,) = model.estimator_.calibrated_classifiers_
    assert calibrated.calibrators[0].__class__.__name__ == "_SigmoidCalibration"
    risk = model.predict_proba(built["snapshots"])
    assert np.isfinite(risk).all() and (risk >= 0).all() and (risk <= 1).all()
    assert model.model_version() != ChurnModel().fit(built["snapshots"], p_alive[0]).model_version()


# ------------------------------------------------------------------ small frames
def tiny_snapshots(n_dates: int = 3, users: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    dates = pd.date_range("2026-01-01", periods=n_dates + 1, freq="30D")
    for i, date in enumerate(dates):
        frame = pd.DataFrame({c: rng.integers(0, 10, users) for c in NUMERIC_FEATURES})
        frame["days_since_last_order"] = np.where(
            rng.random(users) < 0.5, np.nan, frame["days_since_last_order"]
        )
        frame["snapshot_date"] = date
        frame["user_id"] = [f"u{j:03d}" for j in range(users)]
        frame["is_scoring_snapshot"] = i == n_dates
        frame["is_customer"] = frame["days_since_last_order"].notna()
        frame["channel"] = rng.choice(["organic", "paid", "tv"], users)
        frame[LABEL] = pd.array(
            [None] * users
            if i == n_dates
            else (frame["days_since_last_active"] + rng.normal(0, 3, users) > 5),
            dtype="boolean",
        )
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def test_fit_needs_enough_labelled_snapshots_and_columns():
    one = tiny_snapshots(n_dates=1)
    with pytest.raises(
        CannotFitError, match=r"at least 2 labelled snapshot dates .*found 1: \d{4}-\d\d-\d\d \("
    ) as err:
        ChurnModel().fit(one)
    labelled = one.loc[~one["is_scoring_snapshot"]]
    assert err.value.facts == {
        "labelled_snapshot_dates": [str(labelled["snapshot_date"].iloc[0].date())],
        "labelled_rows": len(labelled),
        "min_labelled_snapshot_dates": 2,
        "calibration": "none",
    }
    with pytest.raises(CannotFitError, match="at least 3 labelled snapshot dates"):
        ChurnModel(ChurnParams(calibration="isotonic")).fit(tiny_snapshots(n_dates=2))
    single_class = tiny_snapshots()
    single_class[LABEL] = single_class[LABEL].where(single_class["is_scoring_snapshot"], False)
    with pytest.raises(CannotFitError, match="hold a single class"):
        ChurnModel().fit(single_class)
    # input errors are not a lack of data: plain ValueErrors
    with pytest.raises(ValueError, match=r"missing column\(s\) \['tenure_days'\]"):
        ChurnModel().fit(tiny_snapshots().drop(columns="tenure_days"))
    broken = tiny_snapshots()
    broken.loc[0, LABEL] = pd.NA
    with pytest.raises(ValueError, match="1 rows of labelled snapshots have a null is_churned"):
        ChurnModel().fit(broken)
    with pytest.raises(ValueError, match="calibration must be"):
        ChurnParams(calibration="platt")
    with pytest.raises(RuntimeError, match="not fitted"):
        ChurnModel().score(tiny_snapshots())


def test_without_p_alive_the_bgnbd_baseline_is_missing_not_invented():
    model = ChurnModel(ChurnParams(min_samples_leaf=5, max_iter=20)).fit(tiny_snapshots())
    assert model.metrics_["methods"]["baseline_bgnbd_p_alive"] is None
    assert model.metrics_["model_beats_baselines"]["baseline_bgnbd_p_alive"] is None
    assert model.metrics_["methods"]["baseline_days_since_last_active"]["roc_auc"] > 0.6
    scores = model.score(tiny_snapshots())
    assert len(scores) == 60 and scores["churn_risk"].between(0, 1).all()


def test_reliability_table_bins_every_row_once():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.0, 0.05, 0.55, 0.95, 1.0])
    table = reliability_table(y, p)
    assert [row["rows"] for row in table] == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert table[0] == {"bin": "0.0-0.1", "rows": 2, "mean_predicted": 0.025, "observed_rate": 0.5}
    assert table[1]["observed_rate"] is None
    assert table[9]["observed_rate"] == 0.5


# ------------------------------------------------------------------ suite and asset
def test_published_suite_passes_the_scores_and_fails_a_probability_out_of_range(built, fitted):
    from expectations.runner import validate_dataframe

    scores = fitted.score(built["snapshots"])
    result = validate_dataframe(scores, "churn_risk")
    assert result.success, result.describe()
    bad = scores.copy()
    bad.loc[0, "churn_risk"] = 1.2
    result = validate_dataframe(bad, "churn_risk")
    assert [o.rule for o in result.failures] == ["churn_risk is a probability between 0 and 1"]


def test_asset_writes_scores_evaluation_and_artifact_and_its_checks_pass(built):
    import dagster as dg
    import joblib

    from orchestration.assets.churn import (
        CHURN_TABLE,
        EVALUATION_TABLE,
        ChurnConfig,
        churn_risk,
        churn_risk__beats_baselines,
        churn_risk__every_active_user_scored,
        churn_risk__outputs_in_range,
    )
    from orchestration.resources import LifecycleSettings

    warehouse = built["warehouse"]
    settings = LifecycleSettings(data_dir=str(warehouse.root), landing_dir=str(warehouse.root / "landing"))
    result = churn_risk(dg.build_asset_context(), config=ChurnConfig(), settings=settings)

    def meta(key):
        return getattr(result.metadata[key], "value", result.metadata[key])

    version = meta("model_version")
    scores = warehouse.query(f"select * from {CHURN_TABLE} order by user_id")
    assert len(scores) == meta("dagster/row_count") == built["snapshots"]["is_scoring_snapshot"].sum()
    assert (scores["model_version"] == version).all()
    assert (
        str(scores["as_of_date"].dtype).startswith("datetime64")
        and (scores["as_of_date"].dt.date == AS_OF).all()
    )
    evaluation = warehouse.query(f"select * from {EVALUATION_TABLE}")
    assert set(evaluation["method"]) == {"model", "baseline_days_since_last_active", "baseline_bgnbd_p_alive"}
    assert "| gradient-boosted model |" in meta("model_vs_baselines")

    artifact = warehouse.root / "models" / "churn" / f"{version}.joblib"
    model = joblib.load(artifact)
    assert model.model_version() == version
    record = json.loads(artifact.with_suffix(".json").read_text())
    assert record["metrics"]["methods"]["model"]["roc_auc"] == pytest.approx(meta("roc_auc"))
    np.testing.assert_allclose(model.score(built["snapshots"])["churn_risk"], scores["churn_risk"])

    for check in (
        churn_risk__outputs_in_range,
        churn_risk__every_active_user_scored,
        churn_risk__beats_baselines,
    ):
        outcome = check(settings=settings)
        assert outcome.passed, outcome.description
    # a missing user fails the blocking check, naming the count
    warehouse.execute(f"delete from {CHURN_TABLE} where user_id = (select min(user_id) from {CHURN_TABLE})")
    outcome = churn_risk__every_active_user_scored(settings=settings)
    assert not outcome.passed
    assert outcome.description == (
        f"{CHURN_TABLE}: FAILED 1 of {len(scores):,} active users have no churn score"
    )
