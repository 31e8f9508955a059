"""The engine that holds the warehouse's dbt and model tables: DuckDB (the embedded default) or Spark.

``LIFECYCLE_DBT_TARGET`` (the dbt target of ``dbt_project/profiles.yml``) picks it. The Python model
assets read their per-customer inputs through ``Warehouse.query`` and write their scores back with
``Warehouse.write_frames``; publication pulls the mart tables with ``Warehouse.arrow``. The raw
schema, the ingest bookkeeping and the quarantine stay in the DuckDB file on both engines (the
loader's transactions need it); on Spark, dbt reads the raw rows from the Parquet files the ingest
assets write per landing day (``ingestion.export_raw_parquet``, ``macros/portable/raw_source.sql``).

Both engines return the same pandas shapes for the same query: dates as ``datetime64``, decimals as
``float64`` (DuckDB's ``.df()`` conventions), so pure code (``models_py``) sees no difference.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa

from orchestration import warehouse as duckdb_files

DBT_TARGET_ENV = "LIFECYCLE_DBT_TARGET"
ENGINES = ("duckdb", "spark")

#: Settings of a Spark session this project starts itself (``session`` method: local mode, or the
#: driver of a ``spark-submit``). The first two are also in the dbt profile's server_side_parameters.
SPARK_SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    # dbt-spark turns ANSI mode off on its connections; the model assets' session does the same
    "spark.sql.ansi.enabled": "false",
}


def dbt_target() -> str:
    """The configured dbt target (``duckdb`` unless ``LIFECYCLE_DBT_TARGET`` says otherwise)."""
    target = os.environ.get(DBT_TARGET_ENV) or "duckdb"
    if target not in ENGINES:
        raise ValueError(
            f"{DBT_TARGET_ENV}={target!r} is not a target of dbt_project/profiles.yml: use one of {ENGINES}"
        )
    return target


class Warehouse(Protocol):
    """What the Python model assets and the publication need from the engine."""

    kind: str

    def query(self, sql: str) -> pd.DataFrame:
        """Run a query, return its rows (dates as datetime64, decimals as float64)."""
        ...

    def arrow(self, table: str) -> pa.Table:
        """A whole table as Arrow, with the warehouse's own types (decimals stay decimals)."""
        ...

    def write_frames(
        self, schema: str, frames: Mapping[str, pd.DataFrame], *, sort_rows: bool = False
    ) -> None:
        """Replace ``schema.<name>`` by each DataFrame (``*_date`` columns stored as dates)."""
        ...


class DuckDBWarehouse:
    """The warehouse file of the embedded deployment (one writer at a time: each call opens and
    closes its own connection)."""

    kind = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def query(self, sql: str) -> pd.DataFrame:
        with duckdb_files.connect(self.path, read_only=True) as conn:
            return conn.sql(sql).df()

    def arrow(self, table: str) -> pa.Table:
        with duckdb_files.connect(self.path, read_only=True) as conn:
            return conn.sql(f"select * from {table}").to_arrow_table()

    def write_frames(
        self, schema: str, frames: Mapping[str, pd.DataFrame], *, sort_rows: bool = False
    ) -> None:
        duckdb_files.write_frames(self.path, schema, frames, sort_rows=sort_rows)


def spark_session(conf: Mapping[str, str] | None = None) -> Any:
    """The process's SparkSession (``getOrCreate``: the one a test or a driver already started, else
    a new local one), with ``SPARK_SESSION_CONF`` applied. dbt-spark's ``session`` method gets the same
    session in the same process, so the model assets see the tables dbt built."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("lifecycle-mart")
    for key, value in {**SPARK_SESSION_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _to_pandas_like_duckdb(frame: Any) -> pd.DataFrame:
    """A Spark DataFrame as pandas with DuckDB's ``.df()`` conventions (dates as datetime64,
    decimals as float64), through Arrow."""
    table = frame.toArrow()
    columns = []
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_decimal(field.type):
            column = column.cast(pa.float64())
        elif pa.types.is_date(field.type):
            column = column.cast(pa.timestamp("us"))
        elif pa.types.is_timestamp(field.type) and field.type.tz is not None:
            column = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
        columns.append(column)
    return pa.table(columns, names=table.schema.names).to_pandas()


class SparkWarehouse:
    """Tables in a Spark catalog, through the process's SparkSession (``session`` method).

    Writes are managed tables in ``file_format`` (``LIFECYCLE_SPARK_FILE_FORMAT``, default Parquet),
    one file per table with the rows sorted when ``sort_rows``: a few thousand per-customer rows, not
    data that needs the cluster's parallelism.
    """

    kind = "spark"

    def __init__(self, session: Any | None = None, file_format: str | None = None) -> None:
        self._session = session
        self.file_format = file_format or os.environ.get("LIFECYCLE_SPARK_FILE_FORMAT") or "parquet"

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = spark_session()
        return self._session

    def query(self, sql: str) -> pd.DataFrame:
        return _to_pandas_like_duckdb(self.session.sql(sql))

    def arrow(self, table: str) -> pa.Table:
        arrow_table = self.session.sql(f"select * from {table}").toArrow()
        # Spark timestamps are instants (UTC here); the mart's are naive UTC, as DuckDB's
        fields = [
            pa.field(f.name, pa.timestamp("us"), f.nullable)
            if pa.types.is_timestamp(f.type)
            else pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type, f.nullable)
            for f in arrow_table.schema
        ]
        columns = [
            arrow_table.column(f.name).cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
            if pa.types.is_timestamp(f.type)
            else arrow_table.column(f.name).cast(fields[i].type)
            for i, f in enumerate(arrow_table.schema)
        ]
        return pa.Table.from_arrays(columns, schema=pa.schema(fields))

    def write_frames(
        self, schema: str, frames: Mapping[str, pd.DataFrame], *, sort_rows: bool = False
    ) -> None:
        from pyspark.sql import functions as F

        session = self.session
        session.sql(f"create database if not exists {schema}")
        for name, frame in frames.items():
            data = session.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))
            data = data.select(
                *[
                    F.col(c).cast("date").alias(c) if str(c).endswith("_date") else F.col(c)
                    for c in data.columns
                ]
            )
            if sort_rows:
                data = data.orderBy(*data.columns)
            (
                data.coalesce(1)
                .write.mode("overwrite")
                .format(self.file_format)
                .saveAsTable(f"{schema}.{name}")
            )


def open_warehouse(duckdb_path: Path, target: str | None = None) -> Warehouse:
    """The warehouse of the configured dbt target: the DuckDB file at ``duckdb_path``, or Spark."""
    target = target or dbt_target()
    if target == "spark":
        return SparkWarehouse()
    return DuckDBWarehouse(duckdb_path)
