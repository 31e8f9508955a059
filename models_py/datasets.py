"""Real public data in the landing contract: the CDNOW purchase log.

CDNOW (Fader & Hardie) is the purchase history of 23,570 customers who made their first purchase at
the online CD retailer CDNOW in the first quarter of 1997, followed to the end of June 1998: 69,659
rows of (customer, day, number of CDs, dollar value). It ships inside the ``lifetimes`` package as
``datasets/CDNOW_master.txt``. It has no sign-ups and no behaviour events, so it exercises the
transaction-only path of the pipeline (activity = orders).

``datasets/CDNOW_sample.txt`` is the 1/10th sample of the same customers (2,357 customers, 6,919
rows) on which Fader, Hardie & Lee estimated BG/NBD and Gamma-Gamma; it has no header and one more
column: ``<master customer id> <sample customer id 1..2357> <YYYYMMDD> <CDs> <dollar value>``.
``cdnow_sample_transactions`` puts it in the same contract (user ids ``cdnow-<master id>``, so a
sample customer has the same id as in the master file), for the golden-value test of the CLV path.

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to
the Pareto/NBD model", Marketing Science 24(2); the dataset note at brucehardie.com.
"""

import importlib.util
import io
import os
from pathlib import Path

import pandas as pd

CDNOW_FILE_NAME = "CDNOW_master.txt"
CDNOW_CUSTOMERS = 23_570
CDNOW_ROWS = 69_659
CDNOW_SAMPLE_FILE_NAME = "CDNOW_sample.txt"
CDNOW_SAMPLE_CUSTOMERS = 2_357
CDNOW_SAMPLE_ROWS = 6_919
#: Columns of the converted frames that the landing contract does not have: the landing files leave
#: them out, since the loader warns about every column it does not know (a renamed column looks the
#: same), and a healthy run of a built-in dataset warns about nothing.
EXTRA_COLUMNS = ("number_of_cds", "sample_customer_id")


def _lifetimes_dataset_path(file_name: str) -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the lifetimes package is not installed: it ships the CDNOW data")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / file_name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the lifetimes installation")
    return path


def cdnow_master_path() -> Path:
    """Where the installed ``lifetimes`` keeps CDNOW_master.txt (found without importing lifetimes)."""
    return _lifetimes_dataset_path(CDNOW_FILE_NAME)


def cdnow_sample_path() -> Path:
    """Where the installed ``lifetimes`` keeps CDNOW_sample.txt (found without importing lifetimes)."""
    return _lifetimes_dataset_path(CDNOW_SAMPLE_FILE_NAME)


def cdnow_transactions(text: str) -> pd.DataFrame:
    """Convert the text of CDNOW_master.txt into transactions of the landing contract.

    Every row becomes one completed order (CDNOW has no refunds), at noon UTC of its day (the
    log has days only), with ``transaction_id`` = ``order_id`` = ``cdnow-<line number>`` and
    ``user_id`` = ``cdnow-<customer id>``. The number of CDs is kept as the extra column
    ``number_of_cds`` (the landing files leave it out: see :data:`EXTRA_COLUMNS`).
    """
    raw = pd.read_csv(
        io.StringIO(text),
        sep=r"\s+",
        skiprows=1,
        header=None,
        names=["customer_id", "date", "number_of_cds", "dollar_value"],
        dtype={"customer_id": str, "date": str, "number_of_cds": "int64", "dollar_value": "float64"},
    )
    line = pd.RangeIndex(2, len(raw) + 2).astype(str).str.zfill(5)
    return _in_contract(raw, "cdnow-" + line)


def cdnow_sample_transactions(text: str) -> pd.DataFrame:
    """Convert the text of CDNOW_sample.txt into transactions of the landing contract.

    As :func:`cdnow_transactions`, with ``transaction_id`` = ``order_id`` = ``cdnow-sample-<line
    number>`` (the file has no header) and ``user_id`` = ``cdnow-<master customer id>``; the sample's
    own customer number (1..2357) is kept as the extra column ``sample_customer_id``.
    """
    raw = pd.read_csv(
        io.StringIO(text),
        sep=r"\s+",
        header=None,
        names=["customer_id", "sample_customer_id", "date", "number_of_cds", "dollar_value"],
        dtype={
            "customer_id": str,
            "sample_customer_id": str,
            "date": str,
            "number_of_cds": "int64",
            "dollar_value": "float64",
        },
    )
    line = pd.RangeIndex(1, len(raw) + 1).astype(str).str.zfill(4)
    frame = _in_contract(raw, "cdnow-sample-" + line)
    frame["sample_customer_id"] = raw["sample_customer_id"]
    return frame


def _in_contract(raw: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """CDNOW rows (customer_id, date, number_of_cds, dollar_value) as completed orders at noon UTC."""
    return pd.DataFrame(
        {
            "transaction_id": ids,
            "order_id": ids,
            "user_id": "cdnow-" + raw["customer_id"],
            "transaction_type": "order",
            "status": "completed",
            "amount": raw["dollar_value"].round(2),
            "currency": "USD",
            "occurred_at": pd.to_datetime(raw["date"], format="%Y%m%d") + pd.Timedelta(hours=12),
            "number_of_cds": raw["number_of_cds"],
        }
    )


def write_cdnow_landing(
    landing_dir: Path, source_text: str | None = None, *, sample: bool = False
) -> dict[str, dict[str, int]]:
    """Write CDNOW as CSV landing files: ``<landing>/transactions/<YYYY-MM-DD>/transactions-<day>.csv``.

    CSV on purpose: the demo data arrives as Parquet, so the two datasets exercise both readers.
    ``sample=True`` writes CDNOW_sample.txt (2,357 customers) instead of CDNOW_master.txt.
    Returns ``{"transactions": {"files": n, "rows": n}}``.
    """
    if sample:
        text = source_text if source_text is not None else cdnow_sample_path().read_text()
        transactions = cdnow_sample_transactions(text)
    else:
        text = source_text if source_text is not None else cdnow_master_path().read_text()
        transactions = cdnow_transactions(text)
    transactions = transactions.drop(columns=[c for c in EXTRA_COLUMNS if c in transactions.columns])
    days = transactions["occurred_at"].dt.strftime("%Y-%m-%d")
    files = 0
    for day, frame in transactions.groupby(days, sort=True):
        folder = Path(landing_dir) / "transactions" / day
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"transactions-{day}.csv"
        temporary = target.with_name("." + target.name + ".tmp")
        frame.to_csv(temporary, index=False, date_format="%Y-%m-%dT%H:%M:%SZ", lineterminator="\n")
        os.replace(temporary, target)
        files += 1
    return {"transactions": {"files": files, "rows": len(transactions)}}
