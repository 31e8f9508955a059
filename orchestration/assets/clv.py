"""CLV: BG/NBD + Gamma-Gamma on the customer summary built by dbt, scored back into the warehouse."""

import time
from typing import Literal

import dagster as dg

from models_py.clv import ClvModel
from orchestration.resources import WAREHOUSE_POOL, LifecycleSettings
from orchestration.warehouse import connect

SUMMARY_TABLE = "intermediate.int_customers_summarized"
CLV_SCHEMA = "ml"
CLV_TABLE = f"{CLV_SCHEMA}.customer_clv"


class ClvConfig(dg.Config):
    """Model settings (METRICS.md, customer lifetime value)."""

    time_unit: Literal["day", "week"] = "day"
    clv_horizon_months: int = 12
    monthly_discount_rate: float = 0.01
    margin: float = 1.0


@dg.asset(
    key="customer_clv",
    deps=[dg.AssetKey("int_customers_summarized")],
    group_name="models",
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    owners=["team:data-science"],
)
def customer_clv(
    context: dg.AssetExecutionContext, config: ClvConfig, settings: LifecycleSettings
) -> dg.MaterializeResult:
    """Per customer: P(alive), expected purchases over 30/90/365 days, expected average order value
    and CLV over the horizon (BG/NBD + Gamma-Gamma, fitted with lifetimes on distinct summary rows)."""
    started = time.perf_counter()
    with connect(settings.warehouse_path, read_only=True) as conn:
        summary = conn.sql(
            f"select user_id, frequency, recency, t, monetary_value, as_of_date from {SUMMARY_TABLE} "
            "order by user_id"
        ).df()
    if summary.empty:
        raise dg.Failure(f"{SUMMARY_TABLE} is empty: no customer with a completed order to model")
    model = ClvModel(time_unit=config.time_unit).fit(summary)
    scores = model.predict(
        summary,
        clv_horizon_months=config.clv_horizon_months,
        monthly_discount_rate=config.monthly_discount_rate,
        margin=config.margin,
    )
    output = summary.join(scores)
    output["clv_horizon_months"] = config.clv_horizon_months
    output["model_version"] = model.model_version()
    with connect(settings.warehouse_path) as conn:
        conn.execute(f"create schema if not exists {CLV_SCHEMA}")
        conn.register("clv_output", output)
        conn.execute(f"create or replace table {CLV_TABLE} as select * from clv_output")
        conn.unregister("clv_output")
    seconds = round(time.perf_counter() - started, 3)
    context.log.info(
        f"{CLV_TABLE}: {len(output):,} customers scored in {seconds} s ({model.model_version()})"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(output),
            "model_version": model.model_version(),
            "params": dg.MetadataValue.json(model.params_),
            "fit_info": dg.MetadataValue.json(model.fit_info_),
            "mean_p_alive": float(output["p_alive"].mean()),
            "total_clv": float(output["clv"].sum()),
            "seconds": seconds,
        }
    )
