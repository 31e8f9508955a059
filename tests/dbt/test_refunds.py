"""No refund is dropped by a join: assert_refunds_match_completed_orders names every completed refund
that int_orders_netted could not net against its order, and lets one through once its order arrives."""

import datetime as dt
import shutil

import pandas as pd
import pytest

from orchestration.landing.contract import CONTRACTS

TEST = "assert_refunds_match_completed_orders"


def failing_refunds(warehouse, as_of: dt.date) -> dict[str, str]:
    """transaction_id -> problem of every refund the test returns (stored with --store-failures)."""
    from dbt.cli.main import dbtRunner

    warehouse.dbt("run", "--select", "stg_raw__transactions", as_of_date=as_of)
    # the test fails on these rows, so it is run directly (DbtWarehouse.dbt fails on any failure)
    args = ["test", "--select", TEST, "--store-failures", "--vars", f'{{"as_of_date": "{as_of}"}}']
    args += [
        "--project-dir",
        str(warehouse.dbt_project_dir),
        "--profiles-dir",
        str(warehouse.dbt_project_dir),
    ]
    args += [
        "--target-path",
        str(warehouse.root / "dbt_target"),
        "--log-path",
        str(warehouse.root / "dbt_logs"),
    ]
    result = dbtRunner().invoke([*args, "--quiet"])
    assert result.exception is None, result.exception
    (outcome,) = result.result.results
    rows = warehouse.query(f"select transaction_id, problem from {outcome.node.relation_name}")
    assert int(outcome.failures or 0) == len(rows)
    return dict(zip(rows["transaction_id"], rows["problem"], strict=True))


def deliver(landing, day: dt.date, name: str, rows: list[dict]) -> None:
    columns = CONTRACTS["transactions"].column_names
    frame = pd.DataFrame([{column: row.get(column) for column in columns} for row in rows])
    folder = landing / "transactions" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / f"{name}.csv", index=False)


@pytest.fixture
def warehouse(make_warehouse, small_landing, tmp_path):
    """A warehouse loaded from its own copy of the generated landing files (the test adds files)."""
    from orchestration.project import DBT_PROJECT_DIR

    built = make_warehouse("refunds")
    built.landing = tmp_path / "landing"
    built.dbt_project_dir = DBT_PROJECT_DIR
    shutil.copytree(small_landing[1], built.landing)
    return built


def test_refunds_that_cannot_be_netted_block_until_their_order_arrives(warehouse, small_landing):
    config, _ = small_landing
    end = config.end_date
    assert failing_refunds(warehouse, end) == {}  # the generated data passes

    tx = warehouse.query(
        "select * from raw.transactions where transaction_type = 'order' order by occurred_at, transaction_id"
    )
    completed = tx[tx["status"] == "completed"]
    cancelled = tx[tx["status"] == "cancelled"]
    assert len(cancelled) > 0, "the generated data has no cancelled order to refund"
    order, other = completed.iloc[len(completed) // 2], completed.iloc[len(completed) // 3]
    assert order["user_id"] != other["user_id"]
    at = f"{end.isoformat()} 12:00:00"

    def refund(transaction_id: str, of: pd.Series, amount: float, **changes) -> dict:
        row = {"transaction_id": transaction_id, "order_id": of["order_id"], "user_id": of["user_id"],
               "transaction_type": "refund", "status": "completed", "amount": amount, "currency": "USD",
               "occurred_at": at}  # fmt: skip
        return {**row, **changes}

    late_day = end - dt.timedelta(days=10)
    late_user = completed[completed["_partition_date"] <= pd.Timestamp(late_day)].iloc[0]["user_id"]
    deliver(warehouse.landing, end, "refunds", [
        refund("r_orphan", order, 1.0, order_id="o_no_such_order"),
        refund("r_cancelled", cancelled.iloc[0], 1.0),
        refund("r_other_user", order, 1.0, user_id=other["user_id"]),
        refund("r_too_much", other, float(other["amount"]) + 5.0),
        refund("r_late", order, 2.0, order_id="o_late", user_id=late_user),
        refund("r_cancelled_refund", order, 999.0, order_id="o_nowhere", status="cancelled"),
    ])  # fmt: skip
    warehouse.ingest(warehouse.landing)
    problems = failing_refunds(warehouse, end)
    assert problems == {
        "r_orphan": "no order with this order_id",
        "r_cancelled": "the order is cancelled",
        "r_other_user": f"the order belongs to user {order['user_id']}",
        "r_too_much": problems.get("r_too_much"),
        "r_late": "no order with this order_id",
    }
    assert (
        problems["r_too_much"].startswith("refunds of the order (")
        and "exceed its amount" in problems["r_too_much"]
    )

    # the order of r_late arrives late, in a file delivered for an earlier day: r_late passes, with
    # no re-delivery of the refund
    deliver(warehouse.landing, late_day, "late-order", [{
        "transaction_id": "t_late", "order_id": "o_late", "user_id": late_user, "transaction_type": "order",
        "status": "completed", "amount": 30.0, "currency": "USD", "occurred_at": f"{late_day} 09:00:00",
    }])  # fmt: skip
    warehouse.ingest(warehouse.landing)
    assert set(failing_refunds(warehouse, end)) == {"r_orphan", "r_cancelled", "r_other_user", "r_too_much"}
    # as of a day before the refunds, none of them counts yet
    assert failing_refunds(warehouse, end - dt.timedelta(days=1)) == {}
