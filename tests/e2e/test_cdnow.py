"""The real CDNOW purchase log through the whole job, as `make run DATASET=cdnow` runs it.

CDNOW is transaction-only (no users file, no events): the path a shop with an orders export takes.
The run is the `lifecycle run` command in a process of its own (the daily partitions of a dataset are
fixed when the code location loads, and CDNOW's start in 1997), on the 1/10th sample of CDNOW's
customers that ships with lifetimes (2,357 customers, 6,919 orders on 545 days: the sample on which
Fader, Hardie & Lee estimated BG/NBD), big enough for both models.
"""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from models_py.datasets import (
    CDNOW_SAMPLE_CUSTOMERS,
    cdnow_sample_path,
    cdnow_sample_transactions,
    write_cdnow_landing,
)

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cdnow_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cdnow")
    landing = root / "landing"
    write_cdnow_landing(landing, sample=True)
    env = {
        **os.environ,
        "LIFECYCLE_DATASET": "cdnow",
        "LIFECYCLE_DATA_DIR": str(root / "data"),
        "LIFECYCLE_LANDING_DIR": str(landing),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    for name in ("LIFECYCLE_AS_OF_DATE", "LIFECYCLE_PARTITION_START"):
        env.pop(name, None)
    completed = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return completed, root / "data" / "mart" / "lifecycle_mart.duckdb"


def test_cdnow_publishes_every_customer(cdnow_run):
    completed, mart = cdnow_run
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-6000:]
    with duckdb.connect(str(mart), read_only=True) as conn:
        (as_of,) = conn.execute("select as_of_date from mart_info").fetchone()
        users, customers, orders, revenue = conn.execute(
            "select count(*), count(*) filter (where orders_count > 0), sum(orders_count), sum(net_revenue) "
            "from dim_users"
        ).fetchone()
        (user_days,) = conn.execute("select count(*) from fct_user_days").fetchone()
        (scored,) = conn.execute("select count(*) from customer_clv").fetchone()
        stages = dict(conn.execute("select lifecycle_stage, count(*) from dim_users group by 1").fetchall())
    log = cdnow_sample_transactions(cdnow_sample_path().read_text())
    assert str(as_of) == "1998-06-30"
    # every customer, order and dollar of the log, each customer with a CLV row: nothing dropped
    assert users == customers == scored == CDNOW_SAMPLE_CUSTOMERS
    assert orders == len(log)
    assert user_days == len(log[["user_id"]].assign(day=log["occurred_at"].dt.date).drop_duplicates())
    assert round(float(revenue), 2) == round(float(log["amount"].sum()), 2)
    # 18 months of a cohort that bought in the first quarter of 1997: most have churned by mid-1998
    assert stages.get("churned", 0) > users / 2 and "prospect" not in stages, stages
