"""The catalogue of bad inputs: every kind of bad delivery, how it is made and what it must lead to.

``CATALOGUE`` is the list (README "The quality gate" shows it as a table, checked below). Outcomes:

* ``quarantined``: the row goes to ``raw.quarantine`` with the rule code; the file's other rows load.
* ``partition failed``: that day of that source is not loaded; the error names the file and the
  problem (and, in a pipeline run, the ingest asset fails, so nothing is published).
* ``loaded empty, warns``: the day loads with zero rows, the load report lists it and the
  non-blocking check ``raw_<source>__empty_days`` warns.
* ``loaded, warns``: the file's rows load and the named non-blocking check warns.
* ``not loaded, warns``: no run loads it now (a day folder dated later is left for a later run;
  anything else under the source folder is never read): the load report lists it with the reason
  and the non-blocking check ``raw_<source>__landing_folder`` warns.
* ``publication blocked``: the named blocking check (or dbt test) fails, nothing downstream is built
  and the published mart's content (every table, hashed) is unchanged.

All but the blocked kinds are tested on the loader alone (``ingest_source`` on a small warehouse:
every quarantine kind sits in one landing folder, every failing file in a day folder of its own,
so one call per source covers them all) and the warning checks invoked on its warehouse and
landing folder. Only the blocked kinds run the Dagster job, twice in all, each on
a copy of the session's published run: the raw-level kinds together (a blocking check on the raw
tables stops the job before dbt), then the cross-source dbt tests together.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.checks.quarantine import (
    build_empty_days_check,
    build_landing_folder_check,
    build_unknown_columns_check,
)
from orchestration.execution import execute_build_job
from orchestration.landing.contract import CONTRACTS, DEFAULT_CURRENCY
from orchestration.landing.loader import ingest_source
from orchestration.landing.reports import SourceReport
from orchestration.resources import LifecycleSettings

QUARANTINED = "quarantined"
PARTITION_FAILED = "partition failed"
LOADED_EMPTY = "loaded empty, warns"
LOADED_WARNS = "loaded, warns"
NOT_LOADED_WARNS = "not loaded, warns"
BLOCKED = "publication blocked"

LOADED_AT = dt.datetime(2026, 1, 10, 12, 0)
UNTIL = dt.date(2026, 1, 9)  # the last day the loads may load (as a run passes it)
DAY = dt.date(2025, 3, 1)  # the day folder of the quarantine kinds (every source)
NEXT_DAY = dt.date(2025, 3, 2)


@dataclass(frozen=True)
class BadInput:
    """One kind of bad input.

    ``change``: for a quarantined kind, the columns in which the bad row differs from a good row
    (see ``GOOD_ROW``), or ``text``: the bad row's text as written; ``write``: for a failed, empty,
    warned or unread file, writes it at the given path (``<source>/<day>/<file_name>``, or
    ``<source>/<place>`` when ``place`` is set); ``deliver``: for a blocked kind, drops files into
    a copy of the published run's landing folder. ``expect`` is the rule code, a fragment of the
    error, or the name of the check.
    """

    kind: str
    source: str
    how: str
    outcome: str
    expect: str
    change: dict | None = None
    day: dt.date = DAY
    write: Callable[[Path], None] | None = None
    file_name: str = ""
    text: str = ""
    place: str = ""  # a path under <source>/ that is not <day>/<file_name> (not a day folder, ...)
    deliver: Callable[[object, Path], list[Path]] | None = None
    run: str = ""  # blocked kinds: the pipeline run that delivers them ("raw" or "dbt")


# --- how the files are made -------------------------------------------------------------------

EVENT_COLUMNS = ("event_id", "user_id", "event_type", "occurred_at")


def _one_event_table(day: dt.date) -> pa.Table:
    return pa.table({"event_id": ["e_file"], "user_id": ["u1"], "event_type": ["page_view"],
                     "occurred_at": [dt.datetime.combine(day, dt.time(10))]})  # fmt: skip


def truncated_parquet(path: Path) -> None:
    day = dt.date.fromisoformat(path.parent.name)
    sink = pa.BufferOutputStream()
    pq.write_table(_one_event_table(day), sink)
    data = sink.getvalue().to_pybytes()
    path.write_bytes(data[: len(data) // 2])


def latin1_csv(path: Path) -> None:
    text = f"{','.join(EVENT_COLUMNS)}\ne_file,usér,page_view,{path.parent.name} 10:00:00\n"
    path.write_bytes(text.encode("latin-1"))


def csv_without_occurred_at(path: Path) -> None:
    path.write_text("event_id,user_id,event_type\ne_file,u1,page_view\n", encoding="utf-8")


def cut_json_lines(path: Path) -> None:
    good = {"event_id": "e_file", "user_id": "u1", "event_type": "page_view",
            "occurred_at": f"{path.parent.name} 10:00:00"}  # fmt: skip
    path.write_text(json.dumps(good) + '\n{"event_id": "e_file2", "user_id": "u1", "ev', encoding="utf-8")


def truncated_gzip_csv(path: Path) -> None:
    header = ",".join(CONTRACTS["transactions"].column_names)
    row = f"t_file,o_file,u1,order,completed,10.00,USD,{path.parent.name} 09:00:00"
    data = gzip.compress(f"{header}\n{row}\n".encode())
    path.write_bytes(data[:-12])


def zero_byte_file(path: Path) -> None:
    path.write_bytes(b"")


def header_only_csv(path: Path) -> None:
    path.write_text(",".join(EVENT_COLUMNS) + "\n", encoding="utf-8")


def _transactions_csv(path: Path, header: list[str], row: list[str]) -> None:
    path.write_text(",".join(header) + "\n" + ",".join(row) + "\n", encoding="utf-8")


def status_renamed_to_state(path: Path) -> None:
    header = ["state" if c == "status" else c for c in CONTRACTS["transactions"].column_names]
    row = ["t_state", "o_state", "u1", "order", "cancelled", "100.00", "USD", f"{path.parent.name} 09:00:00"]
    _transactions_csv(path, header, row)


def type_renamed(path: Path) -> None:
    header = ["type" if c == "transaction_type" else c for c in CONTRACTS["transactions"].column_names]
    row = ["t_type", "o1", "u1", "refund", "completed", "20.00", "USD", f"{path.parent.name} 09:00:00"]
    _transactions_csv(path, header, row)


def one_event_csv(path: Path, *, extra: str = "", newline: str = "\n") -> None:
    day = path.parent.name
    header, row = ",".join(EVENT_COLUMNS), f"e_{path.stem}_{day},u1,page_view,{day} 10:00:00"
    if extra:  # a column the contract does not know
        name, value = extra.split("=")
        header, row = f"{header},{name}", f"{row},{value}"
    path.write_bytes(f"{header}{newline}{row}{newline}".encode())


def cr_only_csv(path: Path) -> None:
    one_event_csv(path, newline="\r")


def nul_padded_csv(path: Path) -> None:
    one_event_csv(path)
    path.write_bytes(path.read_bytes() + b"\x00" * 64)


def csv_with_a_browser_column(path: Path) -> None:
    one_event_csv(path, extra="browser=firefox")


def broken_link(path: Path) -> None:
    path.symlink_to("delivered-elsewhere.csv")


# Blocked kinds: rows made from the generated dataset (dtypes as generated), delivered as late
# Parquet files next to a day's files, as an upstream system would.


def _late_file(landing: Path, source: str, frame: pd.DataFrame, name: str) -> Path:
    time_column = CONTRACTS[source].time_column
    day = frame[time_column].iloc[0].date().isoformat()
    assert (frame[time_column].dt.date.astype(str) == day).all()
    path = landing / source / day / f"{source}-{day}-{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def _orders_of_a_day(dataset, position: float) -> pd.DataFrame:
    tx = dataset.transactions
    orders = tx[tx["transaction_type"] == "order"]
    day = orders["occurred_at"].dt.normalize().iloc[int(len(orders) * position)]
    return orders[orders["occurred_at"].dt.normalize() == day].copy()


def orphan_transaction(dataset, landing: Path) -> list[Path]:
    frame = _orders_of_a_day(dataset, 0.4).head(1)
    frame[["transaction_id", "order_id", "user_id"]] = ["t_orphan_1", "o_orphan_1", "u_unknown_1"]
    return [_late_file(landing, "transactions", frame, "orphan")]


def orphan_event(dataset, landing: Path) -> list[Path]:
    events = dataset.events
    frame = events.iloc[[len(events) // 3]].copy()
    frame[["event_id", "user_id"]] = ["e_orphan_1", "u_unknown_2"]
    return [_late_file(landing, "events", frame, "orphan")]


def order_before_signup(dataset, landing: Path) -> list[Path]:
    users = dataset.users
    late_signups = users[users["signup_at"].dt.hour >= 12]
    user = late_signups.iloc[len(late_signups) // 2]
    frame = _orders_of_a_day(dataset, 0.5).head(1)
    frame[["transaction_id", "order_id", "user_id"]] = ["t_early_1", "o_early_1", user["user_id"]]
    frame["occurred_at"] = user["signup_at"].normalize() + pd.Timedelta(hours=1)  # hours before sign-up
    return [_late_file(landing, "transactions", frame, "before-signup")]


def refund_of_no_order(dataset, landing: Path) -> list[Path]:
    frame = _orders_of_a_day(dataset, 0.6).head(1)  # a known user, after the sign-up
    frame[["transaction_id", "order_id", "transaction_type"]] = ["t_refund_1", "o_no_such_order", "refund"]
    return [_late_file(landing, "transactions", frame, "orphan-refund")]


def many_foreign_currency_rows(dataset, landing: Path) -> list[Path]:
    frame = _orders_of_a_day(dataset, 0.7).head(5)
    frame["transaction_id"] = [f"t_eur_{i}" for i in range(len(frame))]
    frame["order_id"] = [f"o_eur_{i}" for i in range(len(frame))]
    frame["currency"] = "EUR"
    return [_late_file(landing, "transactions", frame, "eur")]


def broken_file_in_a_run(dataset, landing: Path) -> list[Path]:
    events = dataset.events
    day = events["occurred_at"].dt.normalize().iloc[len(events) // 2]
    good = _late_file(landing, "events", events[events["occurred_at"].dt.normalize() == day].head(5), "cut")
    good.write_bytes(good.read_bytes()[:-40])  # a truncated Parquet file
    return [good]


# --- the catalogue ----------------------------------------------------------------------------

CATALOGUE: tuple[BadInput, ...] = (
    # Row problems: the row is quarantined with its rule, the good rows of its file load.
    BadInput("duplicate key within a day", "events", "an event_id that appears earlier in the day folder",
             QUARANTINED, "duplicate_key", {"event_id": "e1"}),
    BadInput("key already loaded under another day", "events",
             "an event_id loaded from an earlier day folder", QUARANTINED, "duplicate_key",
             {"event_id": "e2", "occurred_at": "2025-03-02 10:00:00"}, day=NEXT_DAY),
    BadInput("order id repeated among orders", "transactions",
             "a second order (new transaction_id) with the order_id of an order", QUARANTINED,
             "duplicate_key", {"transaction_id": "t_dup", "order_id": "o1"}),
    BadInput("null required value", "events", "an empty user_id", QUARANTINED, "null_user_id",
             {"user_id": ""}),
    BadInput("malformed id", "events", "user_id 'user 7!' (a space and a '!')", QUARANTINED,
             "malformed_id", {"user_id": "user 7!"}),
    BadInput("unparseable timestamp", "events", "occurred_at '01/03/2025 10:05'", QUARANTINED,
             "unparseable_timestamp", {"occurred_at": "01/03/2025 10:05"}),
    BadInput("timestamp outside the day folder", "events",
             "01:30 at +02:00, i.e. the previous UTC day", QUARANTINED, "timestamp_outside_partition",
             {"occurred_at": "2025-03-01T01:30:00+02:00"}),
    BadInput("unknown event type", "events", "event_type 'Page_View' (wrong case)", QUARANTINED,
             "unknown_event_type", {"event_type": "Page_View"}),
    BadInput("unknown acquisition channel", "users", "channel 'tv'", QUARANTINED, "unknown_channel",
             {"user_id": "u_tv", "channel": "tv"}),
    BadInput("negative amount", "transactions", "amount -5.00 on a completed order", QUARANTINED,
             "negative_amount", {"amount": "-5.00"}),
    BadInput("unparseable amount", "transactions", "amount '12.5O' (a letter O)", QUARANTINED,
             "unparseable_amount", {"amount": "12.5O"}),
    BadInput("wrong currency", "transactions", f"currency 'EUR' in a {DEFAULT_CURRENCY} mart",
             QUARANTINED, "unexpected_currency", {"currency": "EUR"}),
    BadInput("currency code in lower case", "transactions", "currency 'usd'", QUARANTINED,
             "unexpected_currency", {"currency": "usd"}),
    BadInput("control character in a value", "users", "a NUL byte inside country ('U', NUL, 'S')",
             QUARANTINED, "control_character", {"user_id": "u_nul", "country": "U\x00S"}),
    BadInput("row with an extra value", "events", "a fifth value after occurred_at (a stray comma)",
             QUARANTINED, "malformed_row", text="e_long,u1,page_view,2025-03-01 11:30:00,firefox"),
    BadInput("row with values missing", "transactions", "a row of three values", QUARANTINED,
             "malformed_row", text="t_short,u1,10.00"),
    # File problems: the whole day of that source fails, naming the file; other days load.
    BadInput("truncated Parquet file", "events", "the first half of a Parquet file", PARTITION_FAILED,
             "could not be read", day=dt.date(2025, 3, 3), write=truncated_parquet, file_name="cut.parquet"),
    BadInput("not UTF-8", "events", "a CSV encoded in Latin-1 ('usér')", PARTITION_FAILED,
             "is not valid UTF-8 text: line 2, column user_id holds the byte 0xE9", day=dt.date(2025, 3, 4),
             write=latin1_csv, file_name="latin1.csv"),
    BadInput("CR-only line endings", "events", "a CSV whose lines end in CR alone (classic Mac)",
             PARTITION_FAILED, "uses CR-only line endings (classic Mac)", day=dt.date(2025, 3, 8),
             write=cr_only_csv, file_name="mac.csv"),
    BadInput("file padded with NUL bytes", "events", "a CSV followed by 64 NUL bytes (an interrupted copy)",
             PARTITION_FAILED, "ends with 64 NUL bytes (\\x00) from line 3 on", day=dt.date(2025, 3, 9),
             write=nul_padded_csv, file_name="padded.csv"),
    BadInput("renamed optional column", "transactions",
             "status delivered as state, on a cancelled 100.00 order", PARTITION_FAILED,
             "has the unknown column `state` and lacks the optional column `status` (default `completed`): "
             "was `status` renamed to `state`?", day=dt.date(2025, 3, 4), write=status_renamed_to_state,
             file_name="state.csv"),
    BadInput("renamed transaction type", "transactions", "transaction_type delivered as type, on a refund",
             PARTITION_FAILED, "was `transaction_type` renamed to `type`?", day=dt.date(2025, 3, 5),
             write=type_renamed, file_name="type.csv"),
    BadInput("required column missing", "events", "a CSV without occurred_at", PARTITION_FAILED,
             "lacks the required column(s) occurred_at", day=dt.date(2025, 3, 5),
             write=csv_without_occurred_at, file_name="no-time.csv"),
    BadInput("truncated JSON lines file", "events", "a file cut in the middle of its second line",
             PARTITION_FAILED, "is not a JSON object", day=dt.date(2025, 3, 6), write=cut_json_lines,
             file_name="cut.jsonl"),
    BadInput("truncated gzip file", "transactions", "a .csv.gz without its last 12 bytes",
             PARTITION_FAILED, "is not a complete gzip file", day=dt.date(2025, 3, 3),
             write=truncated_gzip_csv, file_name="cut.csv.gz"),
    BadInput("CSV without a header", "users", "a zero-byte .csv file", PARTITION_FAILED,
             "needs a header row", day=dt.date(2025, 3, 3), write=zero_byte_file, file_name="empty.csv"),
    # A valid but suspicious delivery.
    BadInput("empty day", "events", "a day folder holding a header-only CSV", LOADED_EMPTY,
             "raw_events__empty_days", day=dt.date(2025, 3, 7), write=header_only_csv,
             file_name="header-only.csv"),
    BadInput("unknown column", "events", "a CSV with a browser column the contract does not have",
             LOADED_WARNS, "raw_events__unknown_columns", day=dt.date(2025, 3, 10),
             write=csv_with_a_browser_column, file_name="browser.csv"),
    # Not loaded by any run now, and said so.
    BadInput("day folder dated in the future", "events", "events/2999-01-01/ holding a good CSV",
             NOT_LOADED_WARNS, "raw_events__landing_folder", write=one_event_csv, place="2999-01-01/a.csv"),
    BadInput("day folder that is not a date", "events", "events/2025-02-30/ holding a good CSV",
             NOT_LOADED_WARNS, "raw_events__landing_folder", write=one_event_csv, place="2025-02-30/a.csv"),
    BadInput("file of another type", "events", "events.csv.bak beside a day's CSV", NOT_LOADED_WARNS,
             "raw_events__landing_folder", write=one_event_csv, place="2025-03-01/events.csv.bak"),
    BadInput("broken symbolic link", "transactions", "a .csv link to a file that is not there",
             NOT_LOADED_WARNS, "raw_transactions__landing_folder", write=broken_link,
             place="2025-03-01/late.csv"),
    # Publication blocked: a blocking check (or an error-severity dbt test) fails.
    BadInput("too many bad rows in one day", "transactions",
             "5 EUR orders delivered late into one day (far above 1% of its rows)", BLOCKED,
             "raw_transactions__quarantine_share", deliver=many_foreign_currency_rows, run="raw"),
    BadInput("broken file in a pipeline run", "events", "a truncated Parquet file delivered late",
             BLOCKED, "`raw/events` fails, naming the file", deliver=broken_file_in_a_run, run="raw"),
    BadInput("orphan transaction", "transactions", "an order of a user_id no users file holds",
             BLOCKED, "assert_transactions_have_known_users", deliver=orphan_transaction, run="dbt"),
    BadInput("orphan event", "events", "an event of a user_id no users file holds", BLOCKED,
             "assert_events_have_known_users", deliver=orphan_event, run="dbt"),
    BadInput("order before the user's sign-up", "transactions",
             "an order on the sign-up day, hours before signup_at", BLOCKED,
             "assert_transactions_follow_signup", deliver=order_before_signup, run="dbt"),
    BadInput("refund of no order", "transactions", "a refund whose order_id matches no order", BLOCKED,
             "assert_refunds_match_completed_orders", deliver=refund_of_no_order, run="dbt"),
)  # fmt: skip
BY_KIND = {bad.kind: bad for bad in CATALOGUE}


def kinds(outcome: str, run: str | None = None) -> list[str]:
    return [b.kind for b in CATALOGUE if b.outcome == outcome and (run is None or b.run == run)]


def catalogue_markdown() -> str:
    """The catalogue as the README table: kind, what the input is, outcome, rule/check/message."""
    lines = ["| bad input | source | made as | outcome | rule / check / message |", "|---|---|---|---|---|"]
    for bad in CATALOGUE:
        if bad.outcome == PARTITION_FAILED:
            expect = f'"{bad.expect}" and the file'
        else:
            expect = bad.expect if " " in bad.expect else f"`{bad.expect}`"
        lines.append(f"| {bad.kind} | {bad.source} | {bad.how} | {bad.outcome} | {expect} |")
    return "\n".join(lines)


def test_the_catalogue_is_complete_and_in_the_readme():
    assert len(CATALOGUE) >= 12 and len(BY_KIND) == len(CATALOGUE)
    assert {b.outcome for b in CATALOGUE} == {
        QUARANTINED, PARTITION_FAILED, LOADED_EMPTY, LOADED_WARNS, NOT_LOADED_WARNS, BLOCKED
    }  # fmt: skip
    required = {"orphan transaction", "order before the user's sign-up", "wrong currency", "empty day",
                "truncated Parquet file", "renamed optional column", "control character in a value",
                "row with an extra value", "day folder dated in the future"}  # fmt: skip
    assert required <= set(BY_KIND)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert catalogue_markdown() in readme, "README's quality-gate table is stale:\n" + catalogue_markdown()


# --- the loader: quarantined, failed and empty partitions -------------------------------------

GOOD_ROWS: dict[str, list[dict]] = {
    "users": [
        {"user_id": "u1", "signup_at": "2025-03-01 08:00:00", "channel": "organic", "country": "US"},
        {"user_id": "u2", "signup_at": "2025-03-01 09:00:00", "channel": "referral",
         "referrer_user_id": "u1"},
    ],
    "events": [
        {"event_id": f"e{i}", "user_id": "u1", "event_type": "page_view",
         "occurred_at": f"2025-03-01 10:0{i}:00"}
        for i in (1, 2, 3)
    ],
    "transactions": [
        {"transaction_id": "t1", "order_id": "o1", "user_id": "u1", "amount": "20.00", "currency": "USD",
         "occurred_at": "2025-03-01 09:00:00"},
        {"transaction_id": "t2", "order_id": "o1", "user_id": "u1", "transaction_type": "refund",
         "amount": "5.00", "occurred_at": "2025-03-01 12:00:00"},  # no currency: the mart's
        {"transaction_id": "t3", "user_id": "u2", "status": "cancelled", "amount": "7.50",
         "currency": "USD", "occurred_at": "2025-03-01 13:00:00"},
    ],
}  # fmt: skip
# The day whose bad row repeats a key loaded from DAY holds a good row too.
NEXT_DAY_ROWS = {
    "events": {NEXT_DAY: [{"event_id": "e_next", "user_id": "u2", "event_type": "checkout",
                           "occurred_at": "2025-03-02 09:00:00"}]},
}  # fmt: skip
GOOD_ROW: dict[str, dict] = {  # what a bad row of a kind holds, but for its ``change``
    "users": {"user_id": "u_bad", "signup_at": "2025-03-01 10:00:00", "channel": "paid"},
    "events": {"event_id": "e_bad", "user_id": "u1", "event_type": "page_view",
               "occurred_at": "2025-03-01 11:00:00"},
    "transactions": {"transaction_id": "t_bad", "user_id": "u1", "amount": "10.00", "currency": "USD",
                     "occurred_at": "2025-03-01 14:00:00"},
}  # fmt: skip


def write_rows(path: Path, source: str, rows: list[dict | str]) -> None:
    """A CSV of ``rows`` (dicts by column; a string is written as the row's text)."""
    columns = CONTRACTS[source].column_names
    lines = [",".join(columns)] + [
        row if isinstance(row, str) else ",".join(str(row.get(c) or "") for c in columns) for row in rows
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class Loaded:
    landing: Path
    warehouse: Path
    reports: dict[str, SourceReport]
    files: dict[str, tuple[str, int]]  # quarantined kind -> (file, row number)
    good_keys: dict[str, list[str]]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Loaded:
    """One landing folder with every loader-level kind, loaded source by source into a new warehouse."""
    root = tmp_path_factory.mktemp("catalogue")
    landing = root / "landing"
    files: dict[str, tuple[str, int]] = {}
    good_keys: dict[str, list[str]] = {}
    for source, good in GOOD_ROWS.items():
        by_day: dict[dt.date, list[dict]] = {DAY: list(good), **NEXT_DAY_ROWS.get(source, {})}
        good_keys[source] = [row[CONTRACTS[source].key] for rows in by_day.values() for row in rows]
        for bad in CATALOGUE:
            if bad.source == source and bad.outcome == QUARANTINED:
                rows = by_day[bad.day]
                rows.append(bad.text or {**GOOD_ROW[source], **bad.change})
                files[bad.kind] = (f"{source}/{bad.day.isoformat()}/{source}.csv", len(rows))
        for day, rows in by_day.items():
            write_rows(landing / source / day.isoformat() / f"{source}.csv", source, rows)
    for bad in CATALOGUE:
        if bad.write is not None:
            path = written_path(landing, bad)
            path.parent.mkdir(parents=True, exist_ok=True)
            bad.write(path)
    warehouse = root / "data" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as conn:
        reports = {s: ingest_source(conn, landing, s, loaded_at=LOADED_AT, until=UNTIL) for s in GOOD_ROWS}
    return Loaded(landing, warehouse, reports, files, good_keys)


def written_path(landing: Path, bad: BadInput) -> Path:
    return landing / bad.source / (bad.place or f"{bad.day.isoformat()}/{bad.file_name}")


def query(loaded: Loaded, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(loaded.warehouse), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


@pytest.mark.parametrize("kind", kinds(QUARANTINED))
def test_a_bad_row_is_quarantined_with_its_rule(loaded, kind):
    bad = BY_KIND[kind]
    path, row_number = loaded.files[kind]
    rows = query(
        loaded,
        "select rule, detail, record from raw.quarantine "
        "where source = ? and source_file = ? and row_number = ?",
        [bad.source, path, row_number],
    )
    assert len(rows) == 1, f"{kind}: expected one quarantined row at {path} row {row_number}, got {rows}"
    rule, detail, record = rows[0]
    assert rule == bad.expect, detail
    if bad.text:  # the row's original text, as a JSON string
        assert json.loads(record) == bad.text
        return
    changed = {column: value or None for column, value in bad.change.items()}
    assert {column: json.loads(record)[column] for column in changed} == changed
    assert not any(ord(char) < 32 for char in detail), detail


def test_the_good_rows_load_and_every_quarantined_row_is_a_catalogued_one(loaded):
    for source, keys in loaded.good_keys.items():
        key = CONTRACTS[source].key
        sql = f"select {key} from raw.{source} where _partition_date in (?, ?)"
        assert sorted(k for (k,) in query(loaded, sql, [DAY, NEXT_DAY])) == sorted(keys)
    quarantined = query(loaded, "select source_file, row_number from raw.quarantine order by all")
    assert quarantined == sorted(loaded.files.values())
    for report in loaded.reports.values():
        for partition in report.loaded:
            assert partition.rows_read == partition.rows_loaded + partition.rows_quarantined


@pytest.mark.parametrize("kind", kinds(PARTITION_FAILED))
def test_a_broken_file_fails_its_day_naming_the_file(loaded, kind):
    bad = BY_KIND[kind]
    report = loaded.reports[bad.source]
    (partition,) = [p for p in report.partitions if p.partition_date == bad.day]
    path = f"{bad.source}/{bad.day.isoformat()}/{bad.file_name}"
    assert partition.status == "failed"
    assert path in partition.error and bad.expect in partition.error and "Re-deliver" in partition.error
    assert report.to_metadata()["failed_partitions"][bad.day.isoformat()] == partition.error
    # nothing of that day is loaded, accounted for or quarantined
    assert query(loaded, f"select count(*) from raw.{bad.source} where _partition_date = ?", [bad.day]) == [
        (0,)
    ]
    for table in ("raw.ingested_files", "raw.quarantine"):
        sql = f"select count(*) from {table} where source = ? and partition_date = ?"
        assert query(loaded, sql, [bad.source, bad.day]) == [(0,)]
    # ... while the good days of the same source loaded
    assert any(p.status == "loaded" and p.rows_loaded > 0 for p in report.partitions)


def test_an_empty_day_loads_as_an_empty_partition_and_warns(loaded):
    bad = BY_KIND["empty day"]
    report = loaded.reports[bad.source]
    (partition,) = [p for p in report.partitions if p.partition_date == bad.day]
    assert (partition.status, partition.rows_read, partition.error) == ("loaded", 0, None)
    assert report.to_metadata()["empty_partitions"] == [bad.day.isoformat()]
    assert query(loaded, "select rows_read, source_file from raw.ingested_files where partition_date = ?",
                 [bad.day]) == [(0, f"{bad.source}/{bad.day.isoformat()}/{bad.file_name}")]  # fmt: skip
    folder = str(loaded.warehouse.parent)
    settings = LifecycleSettings(data_dir=folder, landing_dir=folder)
    result = build_empty_days_check(bad.source)(settings=settings)
    assert bad.expect == f"raw_{bad.source}__empty_days"
    assert not result.passed and result.severity.value == "WARN"
    assert bad.day.isoformat() in result.description
    assert build_empty_days_check("transactions")(settings=settings).passed  # no empty day there


def loader_settings(loaded: Loaded) -> LifecycleSettings:
    return LifecycleSettings(data_dir=str(loaded.warehouse.parent), landing_dir=str(loaded.landing))


@pytest.mark.parametrize("kind", kinds(LOADED_WARNS))
def test_a_file_with_an_unknown_column_loads_and_warns(loaded, kind):
    bad = BY_KIND[kind]
    path = written_path(loaded.landing, bad).relative_to(loaded.landing).as_posix()
    (partition,) = [p for p in loaded.reports[bad.source].partitions if p.partition_date == bad.day]
    assert (partition.status, partition.rows_loaded) == ("loaded", 1)
    assert query(loaded, f"select count(*) from raw.{bad.source} where _source_file = ?", [path]) == [(1,)]
    result = build_unknown_columns_check(bad.source)(settings=loader_settings(loaded))
    assert bad.expect == f"raw_{bad.source}__unknown_columns"
    assert not result.passed and result.severity.value == "WARN"
    assert f"{path}: browser" in result.description, result.description


@pytest.mark.parametrize("kind", kinds(NOT_LOADED_WARNS))
def test_what_no_run_loads_now_is_listed_with_the_reason_and_warns(loaded, kind):
    bad = BY_KIND[kind]
    path = written_path(loaded.landing, bad).relative_to(loaded.landing).as_posix()
    metadata = loaded.reports[bad.source].to_metadata()
    listed = [*metadata["ignored_paths"], *(f"{bad.source}/{day}/" for day in metadata["later_partitions"])]
    (entry,) = [p for p in listed if path == p or (p.endswith("/") and path.startswith(p))]
    assert query(loaded, f"select count(*) from raw.{bad.source} where _source_file = ?", [path]) == [(0,)]
    result = build_landing_folder_check(bad.source)(settings=loader_settings(loaded))
    assert bad.expect == f"raw_{bad.source}__landing_folder"
    assert not result.passed and result.severity.value == "WARN"
    assert f"{entry} (" in result.description, result.description


def test_the_currency_is_a_setting(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    rows = [{**GOOD_ROW["transactions"], "transaction_id": f"t{i}", "currency": c}
            for i, c in enumerate(("EUR", "USD", None))]  # fmt: skip
    write_rows(landing / "transactions" / DAY.isoformat() / "tx.csv", "transactions", rows)
    monkeypatch.setenv("LIFECYCLE_CURRENCY", "EUR")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        report = ingest_source(conn, landing, "transactions", loaded_at=LOADED_AT)
        assert report.partitions[0].quarantine_by_rule == {"unexpected_currency": 1}
        assert conn.execute("select transaction_id from raw.transactions order by 1").fetchall() == [
            ("t0",), ("t2",)
        ]  # fmt: skip
        monkeypatch.setenv("LIFECYCLE_CURRENCY", "euro")
        with pytest.raises(ValueError, match="LIFECYCLE_CURRENCY"):
            ingest_source(conn, landing, "transactions", loaded_at=LOADED_AT, force=True)


# --- the pipeline: publication blocked, the published mart unchanged --------------------------


def mart_content_hash(path: Path) -> dict[str, str]:
    """Per table of a DuckDB file: SHA-256 of its column names and types and of its sorted rows."""
    hashes = {}
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() and table_type = 'BASE TABLE' order by all"
        ).fetchall()
        for schema, table in tables:
            columns = conn.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            rows = conn.execute(
                f'select cast(to_json(r) as varchar) as j from "{schema}"."{table}" as r order by j'
            ).fetchall()
            digest = hashlib.sha256(repr(columns).encode())
            for (row,) in rows:
                digest.update(row.encode() + b"\n")
            hashes[f"{schema}.{table}"] = digest.hexdigest()
    return hashes


@dataclass
class BlockedRun:
    result: object
    settings: object
    delivered: list[Path]
    hash_before: dict[str, str]
    bytes_before: str


def run_with_bad_inputs(published_run, root: Path, run: str) -> BlockedRun:
    """Copy the published run (landing folder and data), deliver the run's kinds, run the job."""
    settings = LifecycleSettings(data_dir=str(root / "data"), landing_dir=str(root / "landing"))
    shutil.copytree(published_run.settings.landing_dir, settings.landing_dir)
    shutil.copytree(published_run.settings.data_dir, settings.data_dir)
    published = settings.published_mart_path
    hash_before = mart_content_hash(published)
    bytes_before = hashlib.sha256(published.read_bytes()).hexdigest()
    delivered = []
    for kind in kinds(BLOCKED, run):
        delivered += BY_KIND[kind].deliver(published_run.dataset, Path(settings.landing_dir))
    if run == "raw":  # an empty day rides along (after the last day: the as-of date stays): it only warns
        day = published_run.dataset.config.end_date + dt.timedelta(days=1)
        empty = Path(settings.landing_dir) / "users" / day.isoformat() / "users-empty.csv"
        empty.parent.mkdir(parents=True)
        empty.write_text(",".join(CONTRACTS["users"].column_names) + "\n", encoding="utf-8")
    return BlockedRun(execute_build_job(settings), settings, delivered, hash_before, bytes_before)


@pytest.fixture(scope="module")
def raw_blocked(published_run, tmp_path_factory) -> BlockedRun:
    return run_with_bad_inputs(published_run, tmp_path_factory.mktemp("blocked_raw"), "raw")


@pytest.fixture(scope="module")
def dbt_blocked(published_run, tmp_path_factory) -> BlockedRun:
    return run_with_bad_inputs(published_run, tmp_path_factory.mktemp("blocked_dbt"), "dbt")


def evaluations(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def assert_not_published(blocked: BlockedRun) -> None:
    result = blocked.result
    assert not result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert not materialized & {"mart_staging", "reporting_mart", "dim_users"}, materialized
    published = blocked.settings.published_mart_path
    assert hashlib.sha256(published.read_bytes()).hexdigest() == blocked.bytes_before
    assert mart_content_hash(published) == blocked.hash_before


@pytest.mark.e2e
def test_too_many_bad_rows_block_publication(raw_blocked):
    bad = BY_KIND["too many bad rows in one day"]
    check = evaluations(raw_blocked.result)[bad.expect]
    (path,) = [p for p in raw_blocked.delivered if "-eur" in p.name]
    assert not check.passed and check.severity.value == "ERROR"
    assert f"raw.transactions {path.parent.name}: FAILED" in check.description
    assert "unexpected_currency 5" in check.description, check.description
    assert_not_published(raw_blocked)


@pytest.mark.e2e
def test_a_broken_file_in_a_run_fails_its_asset_and_blocks_publication(raw_blocked):
    (path,) = [p for p in raw_blocked.delivered if "-cut" in p.name]
    failures = {e.step_key: e for e in raw_blocked.result.all_events if e.is_step_failure}
    # the other failed step is the quarantine check of the kind above, delivered in the same run
    assert set(failures) == {"raw__events", "raw__transactions_raw_transactions__quarantine_share"}
    message = failures["raw__events"].step_failure_data.user_failure_data.description
    assert path.name in message and "could not be read" in message and "Re-deliver" in message, message
    assert_not_published(raw_blocked)


@pytest.mark.e2e
def test_an_empty_day_in_a_run_only_warns(raw_blocked):
    check = evaluations(raw_blocked.result)["raw_users__empty_days"]
    assert not check.passed and check.severity.value == "WARN", check.description
    assert evaluations(raw_blocked.result)["raw_users__quarantine_share"].passed


@pytest.mark.e2e
@pytest.mark.parametrize("kind", kinds(BLOCKED, "dbt"))
def test_a_cross_source_problem_fails_its_dbt_test_and_blocks_publication(dbt_blocked, published_run, kind):
    bad = BY_KIND[kind]
    assert evaluations(published_run.result)[bad.expect].passed  # the good data passes the same test
    check = evaluations(dbt_blocked.result)[bad.expect]
    assert not check.passed
    failed_rows = {k: v.value for k, v in check.metadata.items() if "failed_row_count" in k}
    assert list(failed_rows.values()) == [1], check.metadata
    assert_not_published(dbt_blocked)
