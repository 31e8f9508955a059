"""CDNOW in the landing contract: every row kept, values unchanged, one CSV per day."""

import pandas as pd
import pytest

from models_py.datasets import (
    CDNOW_CUSTOMERS,
    CDNOW_ROWS,
    cdnow_master_path,
    cdnow_transactions,
    write_cdnow_landing,
)
from orchestration.landing.contract import CONTRACTS

SAMPLE = """ customer_id  date number_of_cds  dollar_value
 00001 19970101  1   11.77
 00002 19970112  1   12.00
 00002 19970112  5   77.00
 00003 19980630  2    0.00
"""


def test_sample_rows_become_completed_orders_at_noon_utc():
    tx = cdnow_transactions(SAMPLE)
    assert list(tx["transaction_id"]) == ["cdnow-00002", "cdnow-00003", "cdnow-00004", "cdnow-00005"]
    assert (tx["transaction_id"] == tx["order_id"]).all()
    assert list(tx["user_id"]) == ["cdnow-00001", "cdnow-00002", "cdnow-00002", "cdnow-00003"]
    assert set(tx["transaction_type"]) == {"order"} and set(tx["status"]) == {"completed"}
    assert list(tx["amount"]) == [11.77, 12.0, 77.0, 0.0]
    assert tx["occurred_at"].iloc[0] == pd.Timestamp("1997-01-01 12:00:00")
    assert list(tx["number_of_cds"]) == [1, 1, 5, 2]


@pytest.fixture(scope="module")
def cdnow():
    text = cdnow_master_path().read_text()
    return text, cdnow_transactions(text)


def test_full_cdnow_keeps_every_row_and_value(cdnow):
    text, tx = cdnow
    assert len(tx) == CDNOW_ROWS
    assert tx["user_id"].nunique() == CDNOW_CUSTOMERS
    assert tx["transaction_id"].is_unique
    assert tx["occurred_at"].min() == pd.Timestamp("1997-01-01 12:00")
    assert tx["occurred_at"].max() == pd.Timestamp("1998-06-30 12:00")
    source_total = sum(float(line.split()[3]) for line in text.splitlines()[1:])
    assert tx["amount"].sum() == pytest.approx(source_total, abs=0.01)


def test_landing_has_one_csv_per_day_and_reads_back(tmp_path, cdnow):
    _, tx = cdnow
    summary = write_cdnow_landing(tmp_path)
    files = sorted((tmp_path / "transactions").glob("*/*.csv"))
    assert summary == {"transactions": {"files": len(files), "rows": CDNOW_ROWS}}
    assert len(files) == tx["occurred_at"].dt.normalize().nunique()
    day = files[0].parent.name
    assert files[0].name == f"transactions-{day}.csv"
    back = pd.read_csv(files[0])
    # exactly the contract's columns: a built-in dataset never warns about unknown columns
    assert tuple(back.columns) == CONTRACTS["transactions"].column_names
    assert back["occurred_at"].str.startswith(day).all()
    assert back["occurred_at"].iloc[0].endswith("T12:00:00Z")
    assert not list(tmp_path.rglob(".*.tmp"))
