"""The landing loader (orchestration/landing/) on small files written to temporary folders.

Every test uses a real DuckDB file. Row problems must land in raw.quarantine while the good rows
of the same file load; file problems must fail only their partition; reloading must be exact.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.landing.contract import CONTRACTS, RULES, SOURCES, contract_markdown
from orchestration.landing.folders import landing_partitions
from orchestration.landing.loader import ingest_source
from orchestration.landing.reports import SourceReport
from orchestration.landing.tables import PROVENANCE_COLUMNS, ensure_raw_tables

LOADED_AT = dt.datetime(2026, 1, 10, 12, 0)
DAY1, DAY2, DAY3 = dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)
EVENT_HEADER = ["event_id", "user_id", "event_type", "occurred_at"]
TX_HEADER = [
    "transaction_id",
    "order_id",
    "user_id",
    "transaction_type",
    "status",
    "amount",
    "currency",
    "occurred_at",
]


# --- helpers ----------------------------------------------------------------------------------


def day_dir(landing: Path, source: str, day: dt.date) -> Path:
    folder = landing / source / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_csv(
    landing: Path, source: str, day: dt.date, name: str, header: list[str], rows: list[list]
) -> Path:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    path = day_dir(landing, source, day) / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def events(day: dt.date, *ids: str, hour: int = 10) -> list[list]:
    """Good event rows on ``day``: one page_view per id, a minute apart."""
    return [[i, "u1", "page_view", f"{day.isoformat()} {hour:02d}:{n:02d}:00"] for n, i in enumerate(ids)]


def ingest(conn: duckdb.DuckDBPyConnection, landing: Path, source: str, **kwargs) -> SourceReport:
    report = ingest_source(conn, landing, source, loaded_at=kwargs.pop("loaded_at", LOADED_AT), **kwargs)
    assert_counts_add_up(report)
    return report


def assert_counts_add_up(report: SourceReport) -> None:
    for partition in report.partitions:
        for file in partition.files:
            assert file.rows_read == file.rows_loaded + file.rows_quarantined, file
        assert partition.rows_read == partition.rows_loaded + partition.rows_quarantined, partition
        assert partition.rows_read == sum(f.rows_read for f in partition.files)


def raw_ids(conn: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    key = CONTRACTS[source].key
    return [row[0] for row in conn.execute(f"select {key} from raw.{source} order by {key}").fetchall()]


def table(conn: duckdb.DuckDBPyConnection, name: str) -> list[tuple]:
    return conn.execute(f"select * from {name} order by all").fetchall()


def quarantine(conn: duckdb.DuckDBPyConnection, source: str) -> list[dict]:
    cursor = conn.execute(
        "select * from raw.quarantine where source = ? order by partition_date, source_file, row_number",
        [source],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def conn(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


# --- the contract -----------------------------------------------------------------------------


def test_contract_renders_every_source_column_and_rule_as_markdown():
    text = contract_markdown()
    assert text.startswith("## Landing contract")
    for source, contract in CONTRACTS.items():
        assert f"### `{source}`" in text
        for column in contract.columns:
            assert f"| `{column.name}` |" in text
        assert f"Key: `{contract.key}`" in text
    for rule, _ in RULES:
        assert f"`{rule}`" in text
    assert "the row's `transaction_id`" in text  # order_id's default
    assert CONTRACTS["transactions"].column("status").default == "completed"
    assert CONTRACTS["users"].column("channel").default is None
    # The first failing check wins: nulls, ids, timestamps, amounts, enums, duplicates last.
    kinds = [check.kind for check in CONTRACTS["transactions"].row_checks()]
    assert kinds.index("null") < kinds.index("malformed_id") < kinds.index("unparseable_timestamp")
    assert kinds.index("negative_amount") < kinds.index("unknown") < kinds.index("duplicate_key")


# --- row problems -----------------------------------------------------------------------------

USER_HEADER = ["user_id", "signup_at", "channel", "referrer_user_id", "country"]


def event_file(bad: list) -> list[list]:
    """A CSV file of DAY1 events: a good row, ``bad``, a good row."""
    return [EVENT_HEADER, *events(DAY1, "e1"), bad, *events(DAY1, "e3")]


def tx_file(bad: list) -> list[list]:
    return [
        TX_HEADER,
        ["t1", "o1", "u1", "order", "completed", "10.00", "USD", "2025-03-01 09:00:00"],
        bad,
        ["t3", "o3", "u1", "order", "cancelled", "7.50", "USD", "2025-03-01 09:20:00"],
    ]


# (source, rows of one CSV file for DAY1 whose row 2 is bad, rule, column and value the detail names)
ROW_CASES = {
    "null id": (
        "events",
        event_file([None, "u1", "page_view", "2025-03-01 10:05:00"]),
        "null_event_id",
        "event_id",
        "empty",
    ),
    "malformed id": (
        "events",
        event_file(["e2", "user 2!", "page_view", "2025-03-01 10:05:00"]),
        "malformed_id",
        "user_id",
        "'user 2!'",
    ),
    "id longer than 64 characters": (
        "events",
        event_file(["e" * 65, "u1", "page_view", "2025-03-01 10:05:00"]),
        "malformed_id",
        "event_id",
        "'eeeeeeeeee",
    ),
    "unparseable timestamp": (
        "events",
        event_file(["e2", "u1", "page_view", "01/03/2025 10:05"]),
        "unparseable_timestamp",
        "occurred_at",
        "'01/03/2025 10:05'",
    ),
    "timestamp outside the day folder": (  # 01:30 at +02:00 is the previous UTC day
        "events",
        event_file(["e2", "u1", "page_view", "2025-03-01T01:30:00+02:00"]),
        "timestamp_outside_partition",
        "occurred_at",
        "2025-02-28 23:30:00 UTC",
    ),
    "unknown event type": (
        "events",
        event_file(["e2", "u1", "Page_View", "2025-03-01 10:05:00"]),
        "unknown_event_type",
        "event_type",
        "'Page_View'",
    ),
    "negative amount on a completed order": (
        "transactions",
        tx_file(["t2", "o2", "u1", "order", "completed", "-5.00", "USD", "2025-03-01 09:10:00"]),
        "negative_amount",
        "amount",
        "'-5.00'",
    ),
    "unparseable amount": (
        "transactions",
        tx_file(["t2", "o2", "u1", "order", "completed", "12.5O", "USD", "2025-03-01 09:10:00"]),
        "unparseable_amount",
        "amount",
        "'12.5O'",
    ),
    "unknown channel": (
        "users",
        [
            USER_HEADER,
            ["u1", "2025-03-01 08:00:00", "organic", None, "US"],
            ["u2", "2025-03-01 09:00:00", "tv", None, "DE"],
            ["u3", "2025-03-01 10:00:00", None, "u1", None],
        ],
        "unknown_channel",
        "channel",
        "'tv'",
    ),
}


@pytest.mark.parametrize("case", ROW_CASES, ids=list(ROW_CASES))
def test_a_bad_row_is_quarantined_and_the_good_rows_of_its_file_load(conn, landing, case):
    source, (header, *rows), rule, column, shown = ROW_CASES[case]
    write_csv(landing, source, DAY1, "part-1.csv", header, rows)

    report = ingest(conn, landing, source)

    key = CONTRACTS[source].key
    (bad,) = quarantine(conn, source)
    assert (bad["rule"], bad["source_file"], bad["row_number"]) == (
        rule,
        f"{source}/2025-03-01/part-1.csv",
        2,
    )
    assert bad["partition_date"] == DAY1 and bad["loaded_at"] == LOADED_AT
    assert column in bad["detail"] and shown in bad["detail"], bad["detail"]
    assert json.loads(bad["record"]) == {
        name: (None if value is None else str(value)) for name, value in zip(header, rows[1], strict=True)
    }
    good_ids = [row[header.index(key)] for i, row in enumerate(rows) if i != 1]
    assert raw_ids(conn, source) == good_ids
    (partition,) = report.partitions
    assert (partition.status, partition.rows_read, partition.rows_loaded, partition.rows_quarantined) == (
        "loaded", 3, 2, 1,
    )  # fmt: skip
    assert partition.quarantine_by_rule == {rule: 1} == report.to_metadata()["quarantine_by_rule"]
    assert partition.quarantine_share == report.quarantine_share == pytest.approx(1 / 3)
    assert conn.execute(f"select list(_row_number order by _row_number) from raw.{source}").fetchall() == [
        ([1, 3],)
    ]


def test_the_first_failing_rule_is_the_one_recorded(conn, landing):
    # Row 1 is null AND malformed AND has an unknown type: the null comes first in the contract order.
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, [["e1", None, "nope", "garbage"]])
    ingest(conn, landing, "events")
    assert [q["rule"] for q in quarantine(conn, "events")] == ["null_user_id"]


def test_duplicate_keys_within_a_day_keep_the_first_by_file_then_row(conn, landing):
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1", "e2", "e1"))
    write_csv(landing, "events", DAY1, "b.csv", EVENT_HEADER, events(DAY1, "e2", "e3", hour=11))

    report = ingest(conn, landing, "events")

    assert [(q["rule"], q["source_file"], q["row_number"]) for q in quarantine(conn, "events")] == [
        ("duplicate_key", "events/2025-03-01/a.csv", 3),
        ("duplicate_key", "events/2025-03-01/b.csv", 1),
    ]
    details = [q["detail"] for q in quarantine(conn, "events")]
    assert "event_id 'e1'" in details[0] and "events/2025-03-01/a.csv row 1" in details[0]
    assert "event_id 'e2'" in details[1] and "events/2025-03-01/a.csv row 2" in details[1]
    loaded = conn.execute("select event_id, _source_file, _row_number from raw.events order by 1").fetchall()
    assert loaded == [
        ("e1", "events/2025-03-01/a.csv", 1),
        ("e2", "events/2025-03-01/a.csv", 2),
        ("e3", "events/2025-03-01/b.csv", 2),
    ]
    assert [(f.rows_loaded, f.rows_quarantined) for f in report.partitions[0].files] == [(2, 1), (1, 1)]


def test_a_key_loaded_under_another_day_is_quarantined_and_the_loaded_row_stays(conn, landing):
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1", "e2"))
    ingest(conn, landing, "events")
    write_csv(landing, "events", DAY2, "a.csv", EVENT_HEADER, events(DAY2, "e2", "e3"))

    report = ingest(conn, landing, "events")

    (bad,) = quarantine(conn, "events")
    assert (bad["rule"], bad["source_file"], bad["row_number"]) == (
        "duplicate_key",
        "events/2025-03-02/a.csv",
        1,
    )
    assert "event_id 'e2'" in bad["detail"] and "events/2025-03-01/a.csv row 2" in bad["detail"]
    assert "2025-03-01" in bad["detail"]
    assert conn.execute("select event_id, _partition_date from raw.events order by 1").fetchall() == [
        ("e1", DAY1), ("e2", DAY1), ("e3", DAY2),
    ]  # fmt: skip
    assert [p.status for p in report.partitions] == ["unchanged", "loaded"]


def test_a_repeated_order_id_among_orders_is_quarantined_while_its_refund_loads(conn, landing):
    write_csv(landing, "transactions", DAY1, "tx.csv", TX_HEADER, [
        ["t1", "o1", "u1", "order", "completed", "20.00", "USD", "2025-03-01 09:00:00"],
        ["t2", "o1", "u1", "refund", "completed", "5.00", "USD", "2025-03-01 12:00:00"],
        ["t3", "o1", "u2", "order", "completed", "9.99", "USD", "2025-03-01 13:00:00"],
    ])  # fmt: skip
    write_csv(landing, "transactions", DAY2, "tx.csv", TX_HEADER, [
        ["t4", "o1", "u1", "refund", "completed", "15.00", "USD", "2025-03-02 09:00:00"],
        ["t5", "o1", "u3", "order", "completed", "1.00", "USD", "2025-03-02 10:00:00"],
    ])  # fmt: skip

    ingest(conn, landing, "transactions")

    bad = quarantine(conn, "transactions")
    assert [(q["rule"], q["source_file"], q["row_number"]) for q in bad] == [
        ("duplicate_key", "transactions/2025-03-01/tx.csv", 3),
        ("duplicate_key", "transactions/2025-03-02/tx.csv", 2),
    ]
    assert all("order_id 'o1'" in q["detail"] and "transaction_type = 'order'" in q["detail"] for q in bad)
    assert "transactions/2025-03-01/tx.csv row 1" in bad[1]["detail"]
    assert raw_ids(conn, "transactions") == ["t1", "t2", "t4"]


# --- file problems ----------------------------------------------------------------------------


def _missing_column(path: Path) -> None:
    path.write_text("event_id,user_id,event_type\ne9,u1,page_view\n", encoding="utf-8")


def _truncated_parquet(path: Path) -> None:
    full = path.with_suffix(".tmp")
    pq.write_table(pa.table({"event_id": ["e9"], "user_id": ["u1"], "event_type": ["page_view"],
                             "occurred_at": [dt.datetime(2025, 3, 1, 10)]}), full)  # fmt: skip
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 2])


def _latin1_csv(path: Path) -> None:
    path.write_bytes(
        "event_id,user_id,event_type,occurred_at\ne9,usér,page_view,2025-03-01 10:00:00\n".encode("latin-1")
    )


def _empty_csv(path: Path) -> None:
    path.write_bytes(b"")


def _cut_json_line(path: Path) -> None:
    good = {"event_id": "e9", "user_id": "u1", "event_type": "page_view", "occurred_at": "2025-03-01 10:00"}
    path.write_text(json.dumps(good) + '\n{"event_id": "e10", "user_id": "u1", "ev', encoding="utf-8")


def _numeric_ids_parquet(path: Path) -> None:
    pq.write_table(pa.table({"event_id": [9], "user_id": ["u1"], "event_type": ["page_view"],
                             "occurred_at": [dt.datetime(2025, 3, 1, 10)]}), path)  # fmt: skip


FILE_CASES = {
    "missing required column": ("a.csv", _missing_column, "lacks the required column(s) occurred_at"),
    "truncated parquet": ("a.parquet", _truncated_parquet, "could not be read"),
    "not UTF-8": ("a.csv", _latin1_csv, "not valid UTF-8"),
    "empty CSV": ("a.csv", _empty_csv, "needs a header row"),
    "cut JSON line": ("a.jsonl", _cut_json_line, "line 2 is not a JSON object"),
    "numbers for an id in Parquet": (
        "a.parquet",
        _numeric_ids_parquet,
        "column event_id has the Parquet type int64",
    ),
}


@pytest.mark.parametrize("case", FILE_CASES, ids=list(FILE_CASES))
def test_a_bad_file_fails_its_day_only_and_keeps_the_rows_loaded_before(conn, landing, case):
    name, spoil, problem = FILE_CASES[case]
    first = write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1", "e2"))
    write_csv(landing, "events", DAY2, "a.csv", EVENT_HEADER, events(DAY2, "e3"))
    ingest(conn, landing, "events")
    before = table(conn, "raw.events")
    files_before = table(conn, "raw.ingested_files")
    # Day 1 is re-delivered broken; day 3 arrives fine.
    first.unlink()
    spoil(day_dir(landing, "events", DAY1) / name)
    write_csv(landing, "events", DAY3, "a.csv", EVENT_HEADER, events(DAY3, "e4"))

    report = ingest(conn, landing, "events", loaded_at=LOADED_AT + dt.timedelta(days=1))

    by_day = {p.partition_date: p for p in report.partitions}
    assert [by_day[d].status for d in (DAY1, DAY2, DAY3)] == ["failed", "unchanged", "loaded"]
    error = by_day[DAY1].error
    assert f"events/2025-03-01/{name}" in error and problem in error and "Re-deliver" in error, error
    (failed_file,) = by_day[DAY1].files
    assert failed_file.error and problem in failed_file.error and failed_file.rows_read == 0
    assert report.failed == [by_day[DAY1]]
    assert report.to_metadata()["failed_partitions"] == {"2025-03-01": error}
    after = table(conn, "raw.events")
    assert [row for row in after if row[0] != "e4"] == before  # days 1 and 2 exactly as before
    assert raw_ids(conn, "events") == ["e1", "e2", "e3", "e4"]
    assert [row for row in table(conn, "raw.ingested_files") if row[1] != DAY3] == files_before


# --- formats ----------------------------------------------------------------------------------

TX_ROWS = [
    # transaction_id, order_id, user_id, transaction_type, status, amount, currency, occurred_at
    ["t1", None, "u1", None, None, "19.90", "USD", "2025-03-01T09:00:00+02:00"],  # 07:00 UTC, defaults
    ["t2", "o9", "u2", "order", "cancelled", "5", None, "2025-03-01 23:30:00"],  # naive = UTC
    ["t3", "t1", "u1", "refund", "completed", "4.50", "USD", "2025-03-01T20:00:00Z"],
]
EXPECTED_TX = [
    ("t1", "t1", "u1", "order", "completed", "19.90", "USD", dt.datetime(2025, 3, 1, 7)),
    ("t2", "o9", "u2", "order", "cancelled", "5.00", None, dt.datetime(2025, 3, 1, 23, 30)),
    ("t3", "t1", "u1", "refund", "completed", "4.50", "USD", dt.datetime(2025, 3, 1, 20)),
]


def _as_csv(folder: Path) -> str:
    write_csv(folder.parent.parent, "transactions", DAY1, "tx.csv", TX_HEADER, TX_ROWS)
    return "tx.csv"


def _as_csv_gz(folder: Path) -> str:
    text = "\n".join(",".join(TX_HEADER if i < 0 else ["" if v is None else v for v in TX_ROWS[i]])
                     for i in range(-1, len(TX_ROWS)))  # fmt: skip
    (folder / "tx.csv.gz").write_bytes(gzip.compress(text.encode("utf-8")))
    return "tx.csv.gz"


def _json_lines(folder: Path) -> str:
    lines = []
    for row in TX_ROWS:
        record = {k: v for k, v in zip(TX_HEADER, row, strict=True) if v is not None}
        record["amount"] = float(record["amount"])  # numbers, not strings
        lines.append(json.dumps(record))
    (folder / "tx.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "tx.jsonl"


def _parquet(folder: Path) -> str:
    utc = dt.UTC
    pq.write_table(
        pa.table({
            "transaction_id": ["t1", "t2", "t3"],
            "order_id": [None, "o9", "t1"],
            "user_id": ["u1", "u2", "u1"],
            "transaction_type": [None, "order", "refund"],
            "status": [None, "cancelled", "completed"],
            "amount": [19.9, 5.0, 4.5],
            "currency": ["USD", None, "USD"],
            "occurred_at": pa.array(
                [dt.datetime(2025, 3, 1, 7, tzinfo=utc), dt.datetime(2025, 3, 1, 23, 30, tzinfo=utc),
                 dt.datetime(2025, 3, 1, 20, tzinfo=utc)],
                pa.timestamp("us", tz="Europe/Berlin"),
            ),
        }),
        folder / "tx.parquet",
    )  # fmt: skip
    return "tx.parquet"


@pytest.mark.parametrize("write", [_as_csv, _as_csv_gz, _json_lines, _parquet], ids=lambda f: f.__name__)
def test_csv_json_lines_and_parquet_load_the_same_rows(conn, landing, write):
    name = write(day_dir(landing, "transactions", DAY1))

    report = ingest(conn, landing, "transactions")

    (partition,) = report.partitions
    assert partition.status == "loaded" and partition.rows_quarantined == 0, partition
    rows = conn.execute(
        "select transaction_id, order_id, user_id, transaction_type, status, cast(amount as varchar), "
        "currency, occurred_at from raw.transactions order by 1"
    ).fetchall()
    assert rows == EXPECTED_TX
    assert conn.execute("select distinct _source_file from raw.transactions").fetchall() == [
        (f"transactions/2025-03-01/{name}",)
    ]
    types = dict(conn.execute("select column_name, data_type from duckdb_columns() where table_name = "
                              "'transactions' and schema_name = 'raw'").fetchall())  # fmt: skip
    assert (types["amount"], types["occurred_at"], types["_partition_date"]) == (
        "DECIMAL(18,2)",
        "TIMESTAMP",
        "DATE",
    )


def test_the_connection_time_zone_does_not_change_the_loaded_timestamps(conn, landing):
    conn.execute("set TimeZone = 'America/New_York'")
    _as_csv(day_dir(landing, "transactions", DAY1))
    ingest(conn, landing, "transactions")
    assert conn.execute("select current_setting('TimeZone')").fetchall() == [("America/New_York",)]
    conn.execute("set TimeZone = 'UTC'")
    loaded = conn.execute("select transaction_id, occurred_at from raw.transactions order by 1").fetchall()
    assert loaded == [(row[0], row[-1]) for row in EXPECTED_TX]


# --- idempotence and re-deliveries -------------------------------------------------------------


def _snapshot(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    names = [f"raw.{s}" for s in SOURCES] + ["raw.quarantine", "raw.ingested_files"]
    return {name: table(conn, name) for name in names}


def test_loading_the_same_days_twice_changes_nothing(conn, landing):
    write_csv(
        landing, "events", DAY1, "a.csv", EVENT_HEADER, [*events(DAY1, "e1", "e2"), ["e2", "u1", "x", "y"]]
    )
    write_csv(landing, "events", DAY2, "a.csv", EVENT_HEADER, events(DAY2, "e3"))
    first = ingest(conn, landing, "events")
    before = _snapshot(conn)

    second = ingest(conn, landing, "events", loaded_at=LOADED_AT + dt.timedelta(days=1))

    assert [p.status for p in first.partitions] == ["loaded", "loaded"]
    assert [p.status for p in second.partitions] == ["unchanged", "unchanged"]
    assert second.totals == {"rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0}
    assert _snapshot(conn) == before  # _loaded_at included: nothing was rewritten
    assert len(before["raw.quarantine"]) == 1


def test_force_reloads_identical_rows(conn, landing):
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1", "e2"))
    ingest(conn, landing, "events")
    before = _snapshot(conn)
    report = ingest(conn, landing, "events", force=True)
    assert [p.status for p in report.partitions] == ["loaded"]
    assert _snapshot(conn) == before


def test_a_redelivered_file_replaces_exactly_its_day(conn, landing):
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1", "e2", "e3"))
    write_csv(landing, "events", DAY2, "a.csv", EVENT_HEADER, [*events(DAY2, "e4"), ["e5", "u1", "bad", "x"]])
    ingest(conn, landing, "events")
    day2_before = [row for row in table(conn, "raw.events") if row[5] == DAY2]
    quarantine_before = quarantine(conn, "events")
    # Day 1 comes again: e2 dropped, e3 changed, e6 new.
    rows = events(DAY1, "e1", "e3", "e6")
    rows[1][2] = "checkout"
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, rows)

    report = ingest(conn, landing, "events", loaded_at=LOADED_AT + dt.timedelta(days=1))

    assert [(p.partition_date, p.status) for p in report.partitions] == [
        (DAY1, "loaded"),
        (DAY2, "unchanged"),
    ]
    day1 = conn.execute(
        "select event_id, event_type, _row_number, _loaded_at from raw.events "
        "where _partition_date = ? order by 1",
        [DAY1],
    ).fetchall()
    later = LOADED_AT + dt.timedelta(days=1)
    assert day1 == [
        ("e1", "page_view", 1, later),
        ("e3", "checkout", 2, later),
        ("e6", "page_view", 3, later),
    ]
    assert [row for row in table(conn, "raw.events") if row[5] == DAY2] == day2_before
    assert quarantine(conn, "events") == quarantine_before
    assert conn.execute("select count(*), count(distinct event_id) from raw.events").fetchall() == [(4, 4)]
    assert conn.execute(
        "select count(*) from raw.ingested_files where partition_date = ?", [DAY1]
    ).fetchall() == [(1,)]


def test_a_late_file_reloads_its_day_with_every_file(conn, landing):
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1"))
    write_csv(landing, "events", DAY2, "a.csv", EVENT_HEADER, events(DAY2, "e2"))
    ingest(conn, landing, "events")
    write_csv(landing, "events", DAY1, "b.csv", EVENT_HEADER, events(DAY1, "e3", hour=23))

    report = ingest(conn, landing, "events")

    assert [p.status for p in report.partitions] == ["loaded", "unchanged"]
    assert [(f.path, f.rows_loaded) for f in report.partitions[0].files] == [
        ("events/2025-03-01/a.csv", 1), ("events/2025-03-01/b.csv", 1),
    ]  # fmt: skip
    assert raw_ids(conn, "events") == ["e1", "e2", "e3"]
    assert conn.execute("select source_file from raw.ingested_files order by 1").fetchall() == [
        ("events/2025-03-01/a.csv",), ("events/2025-03-01/b.csv",), ("events/2025-03-02/a.csv",),
    ]  # fmt: skip


def test_a_vanished_day_folder_stays_loaded_and_is_reported(conn, landing):
    path = write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1"))
    write_csv(landing, "events", DAY2, "a.csv", EVENT_HEADER, events(DAY2, "e2"))
    ingest(conn, landing, "events")
    path.unlink()
    path.parent.rmdir()

    report = ingest(conn, landing, "events")

    assert report.missing_partitions == [DAY1]
    assert report.to_metadata()["missing_partitions"] == ["2025-03-01"]
    assert raw_ids(conn, "events") == ["e1", "e2"]
    assert landing_partitions(landing, "events") == [DAY2]


def test_only_the_requested_partitions_are_considered(conn, landing):
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1"))
    write_csv(landing, "events", DAY2, "a.csv", EVENT_HEADER, events(DAY2, "e2"))
    report = ingest(conn, landing, "events", partitions=[DAY2, DAY3])
    assert [(p.partition_date, p.status) for p in report.partitions] == [(DAY2, "loaded")]
    assert report.missing_partitions == [DAY3]
    assert raw_ids(conn, "events") == ["e2"]


# --- extra columns, ignored files, empty sources -----------------------------------------------


def test_extra_columns_are_recorded_and_not_loaded(conn, landing):
    write_csv(landing, "events", DAY1, "a.csv", [*EVENT_HEADER, "browser", "app_version"],
              [[*row, "firefox", "1.2"] for row in events(DAY1, "e1")])  # fmt: skip

    report = ingest(conn, landing, "events")

    (file,) = report.partitions[0].files
    assert file.extra_columns == ["browser", "app_version"]
    assert report.to_metadata()["extra_columns"] == {"events/2025-03-01/a.csv": ["browser", "app_version"]}
    assert conn.execute("select extra_columns from raw.ingested_files").fetchall() == [
        (["browser", "app_version"],)
    ]
    columns = [row[0] for row in conn.execute("describe raw.events").fetchall()]
    assert columns == [*EVENT_HEADER, *(name for name, _ in PROVENANCE_COLUMNS)]
    json.dumps([report.to_metadata(), report.files()])  # JSON-able


def test_other_files_in_a_day_folder_are_ignored_and_listed(conn, landing):
    folder = day_dir(landing, "events", DAY1)
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1"))
    for name in ("_SUCCESS", ".a.csv.tmp", "notes.txt", "_b.csv"):
        (folder / name).write_text("x", encoding="utf-8")
    (landing / "events" / "README.md").write_text("x", encoding="utf-8")

    report = ingest(conn, landing, "events")

    ignored = report.to_metadata()["ignored_paths"]
    assert sorted(ignored) == [
        "events/2025-03-01/.a.csv.tmp", "events/2025-03-01/_SUCCESS", "events/2025-03-01/_b.csv",
        "events/2025-03-01/notes.txt", "events/README.md",
    ]  # fmt: skip
    assert ignored["events/2025-03-01/notes.txt"].startswith("not a data file: data files end in .csv")
    assert ignored["events/2025-03-01/_SUCCESS"].startswith("the name starts with . or _")
    assert ignored["events/README.md"].startswith("not in a day folder")
    assert raw_ids(conn, "events") == ["e1"]


def test_a_transaction_only_landing_folder_gives_empty_user_and_event_tables(conn, landing):
    _as_csv(day_dir(landing, "transactions", DAY1))

    reports = {source: ingest(conn, landing, source) for source in SOURCES}

    assert reports["users"].partitions == [] and reports["events"].partitions == []
    for source in ("users", "events"):
        assert conn.execute(f"select count(*) from raw.{source}").fetchall() == [(0,)]
        columns = [row[0] for row in conn.execute(f"describe raw.{source}").fetchall()]
        assert columns == [*CONTRACTS[source].column_names, *(name for name, _ in PROVENANCE_COLUMNS)]
    assert len(raw_ids(conn, "transactions")) == 3
    ensure_raw_tables(conn)  # idempotent
    assert len(raw_ids(conn, "transactions")) == 3


# --- the demo data ----------------------------------------------------------------------------


def test_the_generated_demo_landing_loads_clean_and_passes_the_raw_suites(conn, tmp_path):
    from expectations.runner import validate_dataframe
    from models_py.generator import GeneratorConfig, generate, write_landing

    dataset = generate(GeneratorConfig(n_users=300, n_days=30, seed=7))
    landing = tmp_path / "demo"
    written = write_landing(dataset, landing)

    reports = {source: ingest(conn, landing, source) for source in SOURCES}

    for source, report in reports.items():
        assert report.failed == [] and report.totals["rows_quarantined"] == 0, report.to_metadata()
        assert report.totals["rows_loaded"] == written[source]["rows"]
        assert len(report.loaded) == written[source]["files"]
        result = validate_dataframe(conn.sql(f"select * from raw.{source}").df(), f"raw_{source}")
        assert result.success, result.describe()
    frame = dataset.transactions.sort_values("transaction_id").reset_index(drop=True)
    loaded = conn.sql("select * from raw.transactions order by transaction_id").df()
    assert loaded["order_id"].tolist() == frame["order_id"].tolist()
    assert loaded["amount"].astype(float).round(2).tolist() == frame["amount"].round(2).tolist()
    assert loaded["occurred_at"].tolist() == frame["occurred_at"].tolist()


def test_header_only_csv_empty_json_lines_and_row_less_parquet_are_empty_days(conn, landing):
    folder = day_dir(landing, "events", DAY1)
    (folder / "a.csv").write_text(",".join(EVENT_HEADER) + "\n", encoding="utf-8")
    (folder / "b.jsonl").write_bytes(b"")
    pq.write_table(pa.table({name: pa.array([], pa.string()) for name in EVENT_HEADER}), folder / "c.parquet")

    report = ingest(conn, landing, "events")

    (partition,) = report.partitions
    assert partition.status == "loaded", partition.error
    assert [(f.path.rsplit("/", 1)[1], f.rows_read) for f in partition.files] == [
        ("a.csv", 0),
        ("b.jsonl", 0),
        ("c.parquet", 0),
    ]
    assert conn.execute("select count(*) from raw.ingested_files").fetchall() == [(3,)]
    assert [p.status for p in ingest(conn, landing, "events").partitions] == ["unchanged"]


@pytest.mark.parametrize("broken_day", [DAY1, DAY2])
def test_an_unexpected_error_rolls_back_and_the_next_run_loads_everything(
    conn, landing, monkeypatch, broken_day
):
    import orchestration.landing.loader as ingestion

    for day, event_id in ((DAY1, "e1"), (DAY2, "e2"), (DAY3, "e3")):
        write_csv(landing, "events", day, "a.csv", EVENT_HEADER, events(day, event_id))
    real_check = ingestion._check_counts

    def broken(report):
        if report.partition_date == broken_day:
            raise AssertionError("boom")
        real_check(report)

    monkeypatch.setattr(ingestion, "_check_counts", broken)
    with pytest.raises(AssertionError, match="boom"):
        ingest_source(conn, landing, "events", loaded_at=LOADED_AT)
    # The days up to the broken one shared the rolled-back transaction: nothing is left behind.
    assert conn.execute("select count(*) from raw.events").fetchall() == [(0,)]
    assert conn.execute("select count(*) from raw.ingested_files").fetchall() == [(0,)]

    monkeypatch.setattr(ingestion, "_check_counts", real_check)
    report = ingest(conn, landing, "events")
    assert [p.status for p in report.partitions] == ["loaded", "loaded", "loaded"]
    assert raw_ids(conn, "events") == ["e1", "e2", "e3"]


def test_a_raw_table_left_by_the_previous_loader_is_rebuilt(conn, landing):
    conn.execute("create schema raw")
    conn.execute(
        "create table raw.events as select 'old' as event_id, 'u1' as user_id, 'page_view' as event_type, "
        "timestamp '2025-01-01 10:00:00' as occurred_at, 'x.parquet' as _source_file, now() as _loaded_at"
    )
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1"))

    ingest(conn, landing, "events")

    assert raw_ids(conn, "events") == ["e1"]
    assert "_partition_date" in [row[0] for row in conn.execute("describe raw.events").fetchall()]


# --- renamed columns ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("renamed", "to", "default"),
    [("status", "state", "`completed`"), ("transaction_type", "type", "`order`")],
)
def test_a_renamed_optional_column_with_a_default_fails_the_day_naming_both(
    conn, landing, renamed, to, default
):
    header = [to if name == renamed else name for name in TX_HEADER]
    # a cancelled order (or a refund) would load as a completed order under the default
    row = ["t1", "o1", "u1", "refund", "cancelled", "100.00", "USD", "2025-03-01 09:00:00"]
    write_csv(landing, "transactions", DAY1, "tx.csv", header, [row])

    report = ingest(conn, landing, "transactions")

    (partition,) = report.partitions
    assert partition.status == "failed" and raw_ids(conn, "transactions") == []
    assert (
        f"transactions/2025-03-01/tx.csv: has the unknown column `{to}` and lacks the optional column "
        f"`{renamed}` (default {default}): was `{renamed}` renamed to `{to}`?"
    ) in partition.error
    assert "Rename the column back" in partition.error and "Re-deliver" in partition.error


def test_an_unknown_column_beside_every_defaulted_column_loads_and_an_absent_one_takes_its_default(
    conn, landing
):
    # every optional column with a default is there: the unknown column is only recorded
    row = ["t1", "o1", "u1", "order", "cancelled", "10.00", "USD", "2025-03-01 09:00:00", "x"]
    write_csv(landing, "transactions", DAY1, "a.csv", [*TX_HEADER, "note"], [row])
    # no unknown column: the absent optional columns take their defaults
    write_csv(landing, "transactions", DAY2, "a.csv", ["transaction_id", "user_id", "amount", "occurred_at"],
              [["t2", "u1", "5.00", "2025-03-02 09:00:00"]])  # fmt: skip

    report = ingest(conn, landing, "transactions")

    assert [p.status for p in report.partitions] == ["loaded", "loaded"]
    assert report.to_metadata()["extra_columns"] == {"transactions/2025-03-01/a.csv": ["note"]}
    assert conn.execute(
        "select transaction_id, order_id, transaction_type, status from raw.transactions order by 1"
    ).fetchall() == [("t1", "o1", "order", "cancelled"), ("t2", "t2", "order", "completed")]


def test_a_renamed_required_column_is_named_in_the_error(conn, landing):
    write_csv(landing, "events", DAY1, "a.csv", ["event_id", "user_id", "event_type", "occurred"],
              events(DAY1, "e1"))  # fmt: skip
    (partition,) = ingest(conn, landing, "events").partitions
    assert "lacks the required column(s) occurred_at (was `occurred_at` renamed to `occurred`?)" in (
        partition.error
    )


# --- control characters --------------------------------------------------------------------------


def test_control_characters_in_any_text_value_are_quarantined_and_shown_escaped(conn, landing):
    path = day_dir(landing, "users", DAY1) / "users.csv"
    path.write_bytes(
        b"user_id,signup_at,channel,referrer_user_id,country\n"
        b"u1,2025-03-01 08:00:00,organic,,U\x00S\n"  # a NUL byte in free text
        b'u2,2025-03-01 09:00:00,organic,,"D\r\nE"\n'  # a line break inside a quoted value
        b"u\x013,2025-03-01 09:30:00,organic,,DE\n"  # in an id: its own rule, not malformed_id
        b"u4,2025-03-01 10:00:00,organic,,D\tE\n"  # a tab is allowed
        b"u5,2025-03-01 11:00:00,paid,,FR\n"
    )

    report = ingest(conn, landing, "users")

    bad = quarantine(conn, "users")
    assert [(q["row_number"], q["line_number"], q["rule"]) for q in bad] == [
        (1, 2, "control_character"), (2, 3, "control_character"), (3, 5, "control_character"),
    ]  # fmt: skip
    assert [q["detail"].split(" holds")[0] for q in bad] == [
        "country 'U\\x00S'", "country 'D\\r\\nE'", "user_id 'u\\x013'",
    ]  # fmt: skip
    assert json.loads(bad[0]["record"])["country"] == "U\x00S" and "\\u0000" in bad[0]["record"]
    assert all(not any(ord(c) < 32 for c in q["detail"]) for q in bad)
    assert conn.execute("select user_id, country from raw.users order by 1").fetchall() == [
        ("u4", "D\tE"), ("u5", "FR"),
    ]  # fmt: skip
    assert report.partitions[0].quarantine_by_rule == {"control_character": 3}


def test_control_characters_from_json_lines_and_parquet_are_quarantined(conn, landing):
    folder = day_dir(landing, "events", DAY1)
    good = {"event_id": "e1", "user_id": "u1", "event_type": "page_view", "occurred_at": "2025-03-01 10:00"}
    (folder / "a.jsonl").write_text(
        json.dumps(good) + "\n\n" + json.dumps({**good, "event_id": "e2", "user_id": "u\x00x"}) + "\n",
        encoding="utf-8",
    )  # json.dumps writes the NUL as \u0000: valid JSON
    pq.write_table(pa.table({"event_id": ["e3", "e4"], "user_id": ["u1", "u\nx"],
                             "event_type": ["page_view"] * 2,
                             "occurred_at": [dt.datetime(2025, 3, 1, 11)] * 2}),
                   folder / "b.parquet")  # fmt: skip

    ingest(conn, landing, "events")

    bad = quarantine(conn, "events")
    found = [(q["source_file"].rsplit("/", 1)[1], q["row_number"], q["line_number"], q["rule"]) for q in bad]
    assert found == [("a.jsonl", 2, 3, "control_character"), ("b.parquet", 2, None, "control_character")]
    assert "user_id 'u\\x00x'" in bad[0]["detail"] and "user_id 'u\\nx'" in bad[1]["detail"]
    assert raw_ids(conn, "events") == ["e1", "e3"]


# --- malformed rows and line numbers -----------------------------------------------------------


def test_a_row_with_too_many_or_too_few_values_is_quarantined_with_its_line_and_text(conn, landing):
    path = day_dir(landing, "events", DAY1) / "a.csv"
    path.write_text(
        "event_id,user_id,event_type,occurred_at\n"  # line 1
        "e1,u1,page_view,2025-03-01 10:00:00\n"  # 2: row 1
        'e2,"u1",page_view,2025-03-01 10:01:00,firefox\n'  # 3: row 2, a fifth value
        "\n"  # 4: blank, skipped
        "e3,u1\n"  # 5: row 3, two values
        "e4,u1,page_view,2025-03-01 10:04:00\n",  # 6: row 4
        encoding="utf-8",
    )

    report = ingest(conn, landing, "events")

    (partition,) = report.partitions
    assert (partition.status, partition.rows_read, partition.rows_loaded, partition.rows_quarantined) == (
        "loaded", 4, 2, 2,
    )  # fmt: skip
    bad = quarantine(conn, "events")
    assert [(q["row_number"], q["line_number"], q["rule"], json.loads(q["record"])) for q in bad] == [
        (2, 3, "malformed_row", 'e2,"u1",page_view,2025-03-01 10:01:00,firefox'),
        (3, 5, "malformed_row", "e3,u1"),
    ]
    assert bad[0]["detail"].startswith("the row has 5 values where the header has 4 columns")
    assert bad[1]["detail"].startswith("the row has 2 values where the header has 4 columns")
    assert conn.execute("select event_id, _row_number from raw.events order by 1").fetchall() == [
        ("e1", 1), ("e4", 4),
    ]  # fmt: skip


def test_the_line_of_a_quarantined_row_counts_blank_lines_and_lines_inside_quoted_values(conn, landing):
    path = day_dir(landing, "users", DAY1) / "users.csv"
    path.write_text(
        "\n"  # line 1: blank, before the header
        "user_id,signup_at,channel,referrer_user_id,country\r\n"  # 2: the header (CRLF)
        'u1,2025-03-01 08:00:00,"org\r\n'  # 3: row 1 starts here, its quoted value spans two lines
        'anic",,US\r\n'  # 4
        "\r\n"  # 5: blank
        "u2,2025-03-01 09:00:00,tv,,DE\r\n",  # 6: row 2, unknown channel
        encoding="utf-8",
        newline="",
    )

    ingest(conn, landing, "users")

    assert [(q["row_number"], q["line_number"], q["rule"]) for q in quarantine(conn, "users")] == [
        (1, 3, "control_character"), (2, 6, "unknown_channel"),
    ]  # fmt: skip


def test_rows_are_numbered_as_read_and_lines_are_told_apart_in_a_large_file(conn, landing):
    rows = [[f"e{i}", "u1", "page_view", f"2025-03-01 10:{i % 60:02d}:00"] for i in range(1, 30_001)]
    rows[12_344] = ["e12345", "u1", "page_view", "2025-03-01 10:00:00", "extra"]  # row 12,345
    rows[29_999][1] = "bad id!"  # row 30,000
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, rows)

    report = ingest(conn, landing, "events")

    assert report.partitions[0].rows_read == 30_000
    assert [(q["row_number"], q["line_number"], q["rule"]) for q in quarantine(conn, "events")] == [
        (12_345, 12_346, "malformed_row"), (30_000, 30_001, "malformed_id"),
    ]  # fmt: skip
    assert conn.execute("select max(_row_number), count(*) from raw.events").fetchall() == [(29_999, 29_998)]


# --- file problems with a message in plain words -----------------------------------------------

READABLE_FILE_CASES = {
    "CR-only line endings": (
        "a.csv",
        b"event_id,user_id,event_type,occurred_at\re1,u1,page_view,2025-03-01 10:00:00\r",
        "uses CR-only line endings (classic Mac): save it with LF or CRLF line endings",
    ),
    "NUL-padded CSV": (
        "a.csv",
        b"event_id,user_id,event_type,occurred_at\ne1,u1,page_view,2025-03-01 10:00:00\n" + b"\x00" * 64,
        "ends with 64 NUL bytes (\\x00) from line 3 on: it was not completely written",
    ),
    "NUL bytes only": ("a.jsonl", b"\x00" * 64, "holds nothing but 64 NUL bytes (\\x00)"),
    "not UTF-8, with the line and the column": (
        "a.csv",
        "event_id,user_id,event_type,occurred_at\ne1,u1,page_view,2025-03-01 10:00:00\n"
        "e2,usér,page_view,2025-03-01 10:00:00\n".encode("latin-1"),
        "is not valid UTF-8 text: line 3, column user_id holds the byte 0xE9",
    ),
    "not UTF-8 in the header": (
        "a.csv",
        "event_id,usér_id,event_type,occurred_at\n".encode("latin-1"),
        "is not valid UTF-8 text: line 1 (the header row) holds the byte 0xE9",
    ),
    "not UTF-8 in JSON lines": (
        "a.jsonl",
        '\n{"event_id": "é"}\n'.encode("latin-1"),
        "is not valid UTF-8 text: line 2 holds the byte 0xE9",
    ),
    "a raw control character in a JSON line": (
        "a.jsonl",
        b'{"event_id": "e1"}\n{"event_id": "e\x002"}\n',
        "line 2 is not valid JSON: it holds the raw control character \\x00, which JSON writes escaped",
    ),
    "a control character in a column name": (
        "a.csv",
        b"event_id,user\x07_id,event_type,occurred_at\n",
        "lacks the required column(s) user_id",
    ),
}


@pytest.mark.parametrize("case", READABLE_FILE_CASES, ids=list(READABLE_FILE_CASES))
def test_a_broken_text_file_gets_a_message_in_plain_words(conn, landing, case):
    name, data, problem = READABLE_FILE_CASES[case]
    (day_dir(landing, "events", DAY1) / name).write_bytes(data)

    (partition,) = ingest(conn, landing, "events").partitions

    assert partition.status == "failed"
    assert f"events/2025-03-01/{name}: {problem}" in partition.error, partition.error
    assert not any(ord(char) < 32 for char in partition.error), partition.error


# --- what is not read ----------------------------------------------------------------------------


def test_day_folders_after_until_are_left_for_later_and_the_rest_is_listed_with_the_reason(conn, landing):
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, events(DAY1, "e1"))
    future = dt.date(2999, 1, 1)
    write_csv(landing, "events", future, "a.csv", EVENT_HEADER, events(future, "e9"))
    write_csv(landing, "events", DAY2, "a.csv", EVENT_HEADER, events(DAY2, "e2"))
    (landing / "events" / "2025-02-30").mkdir()
    (landing / "events" / "2025-02-30" / "a.csv").write_text("x", encoding="utf-8")
    (day_dir(landing, "events", DAY1) / "late.csv").symlink_to("nowhere.csv")
    (day_dir(landing, "events", DAY1) / "old").mkdir()

    report = ingest(conn, landing, "events", until=DAY1)
    asked = ingest(conn, landing, "events", until=DAY1, partitions=[DAY2, future], force=True)

    assert [(p.partition_date, p.status) for p in report.partitions] == [(DAY1, "loaded")]
    assert asked.partitions == [] and raw_ids(conn, "events") == ["e1"]
    metadata = report.to_metadata()
    assert (
        metadata["later_partitions"]
        == ["2025-03-02", "2999-01-01"]
        == asked.to_metadata()["later_partitions"]
    )
    assert metadata["ignored_paths"] == {
        "events/2025-02-30/": "not a real date: a day folder is named YYYY-MM-DD",
        "events/2025-03-01/late.csv": "a broken symbolic link (to nowhere.csv, which does not exist)",
        "events/2025-03-01/old/": "a sub-folder of a day folder: not read",
    }
    assert landing_partitions(landing, "events") == [DAY1, DAY2, future]


def test_a_quarantine_table_of_the_earlier_shape_gains_the_line_number(conn, landing):
    conn.execute("create schema raw")
    conn.execute(
        "create table raw.quarantine (source VARCHAR NOT NULL, partition_date DATE NOT NULL, "
        "source_file VARCHAR NOT NULL, row_number BIGINT NOT NULL, rule VARCHAR NOT NULL, "
        "detail VARCHAR NOT NULL, record VARCHAR, loaded_at TIMESTAMP NOT NULL)"
    )
    conn.execute("insert into raw.quarantine values ('events', '2025-01-01', 'f', 1, 'r', 'd', '{}', now())")
    write_csv(landing, "events", DAY1, "a.csv", EVENT_HEADER, [["e1", "bad id!", "page_view", "2025-03-01"]])

    ingest(conn, landing, "events")

    assert conn.execute("select source_file, line_number from raw.quarantine order by all").fetchall() == [
        ("events/2025-03-01/a.csv", 2), ("f", None),
    ]  # fmt: skip
