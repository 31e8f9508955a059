"""The landing contract: what the producers of raw data deliver, as data.

One :class:`SourceContract` per source (``users``, ``events``, ``transactions``) lists its
columns (logical type, required or optional, default, allowed values, description), its key
and its time column. The ingestion (``orchestration/landing/``) derives the raw tables and
the row checks from it, and :func:`contract_markdown` renders it as the README section, so the
documentation and the loader cannot drift apart.

Pure: no I/O, no database, no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LogicalType = Literal["string", "timestamp", "decimal", "enum"]
LOGICAL_TYPES: tuple[str, ...] = ("string", "timestamp", "decimal", "enum")

#: An id: 1 to ``ID_MAX_LENGTH`` characters from ``ID_CHARACTERS`` (``ID_PATTERN``, full match).
ID_CHARACTERS = "A-Za-z0-9_.:-"
ID_MAX_LENGTH = 64
ID_PATTERN = f"[{ID_CHARACTERS}]{{1,{ID_MAX_LENGTH}}}"
#: ISO 8601 timestamps accepted as text (RE2/Python syntax, full match): a date, optionally a time,
#: and an offset (``Z``, ``±HH``, ``±HHMM``, ``±HH:MM``) only after a time.
TIMESTAMP_PATTERN = r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?)?"
#: Raw storage of ``decimal`` columns: DECIMAL(precision, scale).
DECIMAL_PRECISION, DECIMAL_SCALE = 18, 2
#: The mart is single-currency (no conversion): a currency column must hold this ISO 4217 code or
#: nothing (= this currency). The environment variable ``CURRENCY_ENV`` sets another one; the
#: generated demo data and CDNOW are in US dollars.
DEFAULT_CURRENCY = "USD"
CURRENCY_ENV = "LIFECYCLE_CURRENCY"
#: What a configured currency must look like (full match): three upper-case letters.
CURRENCY_PATTERN = r"[A-Z]{3}"

#: Data file suffixes (lower case) and the format they hold. Anything else is ignored.
FILE_FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".csv.gz": "csv.gz",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl.gz",
    ".ndjson.gz": "jsonl.gz",
}


@dataclass(frozen=True)
class Column:
    """One column of a landing file.

    ``default`` is the literal value an optional column takes when it is absent from a file or
    empty in a row (``None``: null); ``default_column`` instead names the column of the same row
    whose value it takes (``order_id`` defaults to the ``transaction_id``). ``is_id`` marks
    columns whose values must match :data:`ID_PATTERN`; ``is_currency`` the column whose values
    must be the mart's one currency (:data:`DEFAULT_CURRENCY` unless configured).
    """

    name: str
    logical_type: LogicalType
    required: bool
    description: str
    is_id: bool = False
    allowed_values: tuple[str, ...] = ()
    default: str | None = None
    default_column: str | None = None
    is_currency: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.logical_type not in LOGICAL_TYPES:
            problems.append(f"logical_type must be one of {LOGICAL_TYPES}")
        if (self.logical_type == "enum") != bool(self.allowed_values):
            problems.append("allowed_values are required for enum columns and only for them")
        if self.is_id and self.logical_type != "string":
            problems.append("an id column is a string column")
        if self.is_currency and (self.logical_type != "string" or self.is_id):
            problems.append("a currency column is a string column (not an id)")
        if self.required and (self.default is not None or self.default_column is not None):
            problems.append("a required column has no default")
        if self.default is not None and self.default_column is not None:
            problems.append("give either default or default_column")
        if self.default is not None and self.allowed_values and self.default not in self.allowed_values:
            problems.append(f"default {self.default!r} is not one of {self.allowed_values}")
        if problems:
            raise ValueError(f"column {self.name}: " + "; ".join(problems))

    @property
    def default_text(self) -> str:
        """The default in words, for the documentation ('' for a required column)."""
        if self.required:
            return ""
        if self.default_column is not None:
            return f"the row's `{self.default_column}`"
        return "null" if self.default is None else f"`{self.default}`"


@dataclass(frozen=True)
class UniqueAmong:
    """``column`` is unique among the rows whose ``where_column`` equals ``where_value``."""

    column: str
    where_column: str
    where_value: str


@dataclass(frozen=True)
class RowCheck:
    """One row check, in the order the ingestion applies them (the first that fails wins).

    ``kind`` is one of :data:`CHECK_KINDS`; ``rule`` is the code written to ``raw.quarantine``;
    ``column`` is '' for a check of the whole row (``malformed_row``).
    """

    rule: str
    kind: str
    column: str


#: Row-check kinds in evaluation order; see :data:`RULES` for what each means.
CHECK_KINDS: tuple[str, ...] = (
    "malformed_row",
    "null",
    "control_character",
    "malformed_id",
    "unparseable_timestamp",
    "timestamp_outside_partition",
    "unparseable_amount",
    "negative_amount",
    "unknown",
    "unexpected_currency",
    "duplicate_key",
)

#: Quarantine rule codes (``<column>`` stands for a column name) and their meaning, in order.
RULES: tuple[tuple[str, str], ...] = (
    (
        "malformed_row",
        "a CSV row with more or fewer values than the header has columns (a stray delimiter, a "
        "missing value, an unbalanced quote); `record` holds the row's original text as a JSON string",
    ),
    ("null_<column>", "a required column is absent from the row or empty (`''` counts as empty)"),
    (
        "control_character",
        "a value holds a control character: U+0000 to U+001F except tab, so a NUL byte, and also a "
        "line break inside a quoted CSV value (no column of the contract holds multi-line text, and a "
        "line break in a value is most often a stray quote that took in the next rows); the detail "
        "shows them escaped (`\\x00`, `\\n`)",
    ),
    ("malformed_id", f"an id is not 1 to {ID_MAX_LENGTH} characters from `A-Z a-z 0-9 _ . : -`"),
    (
        "unparseable_timestamp",
        "a timestamp is not ISO 8601 (`YYYY-MM-DD[( |T)HH:MM[:SS[.fff]][Z|±HH[[:]MM]]]`)",
    ),
    ("timestamp_outside_partition", "the time column's UTC day is not the day folder's date"),
    ("unparseable_amount", "an amount is not a decimal number that fits DECIMAL(18,2)"),
    ("negative_amount", "an amount is below zero (a refund is a positive `refund` row)"),
    ("unknown_<column>", "an enum value outside the allowed values (case-sensitive)"),
    (
        "unexpected_currency",
        f"a `currency` other than the mart's one currency (`{CURRENCY_ENV}`, default "
        f"`{DEFAULT_CURRENCY}`; case-sensitive; empty means that currency): the mart adds amounts up "
        "and converts nothing",
    ),
    (
        "duplicate_key",
        "the key appears earlier in the same day folder (the first by file path, then row, is "
        "kept), or is already loaded under another day (the loaded row keeps its place); for "
        "transactions also an `order_id` repeated among orders. Checked among the rows that passed "
        "every other rule",
    ),
)


@dataclass(frozen=True)
class SourceContract:
    """What one source delivers: columns, key, time column and extra uniqueness rules."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: str
    time_column: str
    unique_among: tuple[UniqueAmong, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        problems = []
        if len(set(names)) != len(names):
            problems.append("duplicate column names")
        for name, what in ((self.key, "key"), (self.time_column, "time column")):
            if name not in names:
                problems.append(f"{what} {name!r} is not a column")
        if self.key in names and not (self.column(self.key).required and self.column(self.key).is_id):
            problems.append("the key must be a required id column")
        if self.time_column in names and not (
            self.column(self.time_column).required
            and self.column(self.time_column).logical_type == "timestamp"
        ):
            problems.append("the time column must be a required timestamp")
        for col in self.columns:
            if col.default_column is not None and col.default_column not in names:
                problems.append(f"{col.name}: default_column {col.default_column!r} is not a column")
        for rule in self.unique_among:
            if rule.column not in names or rule.where_column not in names:
                problems.append(f"unique_among {rule} names an unknown column")
        if problems:
            raise ValueError(f"source contract {self.name}: " + "; ".join(problems))

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def optional_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.required)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"source {self.name} has no column {name!r} (columns: {', '.join(self.column_names)})")

    def row_checks(self) -> tuple[RowCheck, ...]:
        """Every row check of this source in evaluation order (the first that fails wins).

        By kind in :data:`CHECK_KINDS` order, then by column in contract order: a CSV row with
        the wrong number of values, nulls of required columns, control characters in any column
        (as text), malformed ids, unparseable timestamps, the time column
        outside the day folder, unparseable then negative amounts, unknown enum values, a
        currency other than the mart's, and last duplicate keys (checked only among rows that
        passed every other check, so a bad row never shadows a good one).
        """
        checks: list[RowCheck] = []
        for kind in CHECK_KINDS:
            if kind == "malformed_row":
                checks.append(RowCheck("malformed_row", kind, ""))
            for col in self.columns:
                if kind == "null" and col.required:
                    checks.append(RowCheck(f"null_{col.name}", kind, col.name))
                elif kind == "control_character":
                    checks.append(RowCheck("control_character", kind, col.name))
                elif kind == "malformed_id" and col.is_id:
                    checks.append(RowCheck("malformed_id", kind, col.name))
                elif kind == "unparseable_timestamp" and col.logical_type == "timestamp":
                    checks.append(RowCheck("unparseable_timestamp", kind, col.name))
                elif kind == "timestamp_outside_partition" and col.name == self.time_column:
                    checks.append(RowCheck("timestamp_outside_partition", kind, col.name))
                elif kind in ("unparseable_amount", "negative_amount") and col.logical_type == "decimal":
                    checks.append(RowCheck(kind, kind, col.name))
                elif kind == "unknown" and col.logical_type == "enum":
                    checks.append(RowCheck(f"unknown_{col.name}", kind, col.name))
                elif kind == "unexpected_currency" and col.is_currency:
                    checks.append(RowCheck("unexpected_currency", kind, col.name))
            if kind == "duplicate_key":
                checks.append(RowCheck("duplicate_key", kind, self.key))
                checks += [RowCheck("duplicate_key", kind, rule.column) for rule in self.unique_among]
        return tuple(checks)

    def to_markdown(self) -> str:
        """This source as a README subsection: a column table, the key and the time column."""
        lines = [
            f"### `{self.name}`",
            "",
            self.description,
            "",
            "| column | type | required | default | allowed values | description |",
            "|---|---|---|---|---|---|",
        ]
        for col in self.columns:
            type_text = "id" if col.is_id else col.logical_type
            if col.logical_type == "decimal":
                type_text = f"decimal ({DECIMAL_PRECISION},{DECIMAL_SCALE})"
            allowed = ", ".join(f"`{v}`" for v in col.allowed_values)
            lines.append(
                f"| `{col.name}` | {type_text} | {'yes' if col.required else 'no'} | {col.default_text} "
                f"| {allowed} | {col.description} |"
            )
        lines += [
            "",
            f"Key: `{self.key}`. Time column: `{self.time_column}` (its UTC day is the day folder).",
        ]
        for rule in self.unique_among:
            where = f"{rule.where_column} = '{rule.where_value}'"
            lines.append(f"`{rule.column}` is also unique among rows with `{where}`.")
        lines += list(self.notes)
        return "\n".join(lines)


def _id(name: str, description: str, *, required: bool = True, default_column: str | None = None) -> Column:
    return Column(name, "string", required, description, is_id=True, default_column=default_column)


CONTRACTS: dict[str, SourceContract] = {
    "users": SourceContract(
        name="users",
        description="One row per user sign-up (the app database's user export).",
        columns=(
            _id("user_id", "Key of the user."),
            Column("signup_at", "timestamp", True, "Sign-up time."),
            Column(
                "channel",
                "enum",
                False,
                "Acquisition channel.",
                allowed_values=("organic", "paid", "social", "referral"),
            ),
            _id("referrer_user_id", "The user who referred this one (channel `referral`).", required=False),
            Column("country", "string", False, "ISO 3166-1 alpha-2 country code (not checked)."),
        ),
        key="user_id",
        time_column="signup_at",
    ),
    "events": SourceContract(
        name="events",
        description="One row per behaviour event from the event collector.",
        columns=(
            _id("event_id", "Key of the event."),
            _id("user_id", "The user who did it."),
            Column(
                "event_type",
                "enum",
                True,
                "Type of the event; `app_heartbeat` is technical (it does not make a user active).",
                allowed_values=(
                    "session_start",
                    "page_view",
                    "product_view",
                    "add_to_cart",
                    "checkout",
                    "referral_invite",
                    "app_heartbeat",
                ),
            ),
            Column("occurred_at", "timestamp", True, "Event time."),
        ),
        key="event_id",
        time_column="occurred_at",
    ),
    "transactions": SourceContract(
        name="transactions",
        description=(
            "One row per payment-system transaction: an order, or a refund of an order. A refund "
            "is a `transaction_type = refund` row carrying its order's `order_id` and a positive "
            "amount."
        ),
        columns=(
            _id("transaction_id", "Key of the transaction."),
            _id(
                "order_id",
                "The order; a refund repeats its order's `order_id`.",
                required=False,
                default_column="transaction_id",
            ),
            _id("user_id", "The paying user."),
            Column(
                "transaction_type",
                "enum",
                False,
                "Order or refund of an order.",
                allowed_values=("order", "refund"),
                default="order",
            ),
            Column(
                "status",
                "enum",
                False,
                "Whether the transaction went through.",
                allowed_values=("completed", "cancelled"),
                default="completed",
            ),
            Column("amount", "decimal", True, "Amount in currency units, >= 0 (refunds too)."),
            Column(
                "currency",
                "string",
                False,
                f"ISO 4217 code of the amount: the mart's one currency (`{CURRENCY_ENV}`, default "
                f"`{DEFAULT_CURRENCY}`) or empty (= that currency); no conversion.",
                is_currency=True,
            ),
            Column("occurred_at", "timestamp", True, "Transaction time."),
        ),
        key="transaction_id",
        time_column="occurred_at",
        unique_among=(UniqueAmong("order_id", "transaction_type", "order"),),
    ),
}

SOURCES: tuple[str, ...] = tuple(CONTRACTS)


def contract_markdown() -> str:
    """The whole landing contract as a README section (Markdown, starting at a level-2 heading)."""
    formats = ", ".join(f"`{suffix}`" for suffix in FILE_FORMATS)
    rules = "\n".join(f"{i}. `{rule}`: {meaning}." for i, (rule, meaning) in enumerate(RULES, start=1))
    sections = [
        "## Landing contract",
        "",
        "One folder per source and UTC day: `<landing>/<source>/<YYYY-MM-DD>/<files>`. A (source, day) "
        "is a **partition**, loaded as a whole.",
        "",
        f"- **Files**: {formats}. CSV: UTF-8, comma-separated, a header row, an empty field is null, "
        "LF or CRLF line endings. JSON lines: one UTF-8 JSON object per line, numbers and strings "
        "both accepted. Parquet: as written (text columns as strings, timestamps as timestamps or ISO "
        "strings, amounts as numbers or strings).",
        "- **Not read**: other files, names starting with `.` or `_`, sub-folders of a day folder, "
        "broken symbolic links, and folders under `<source>/` that are not a real `YYYY-MM-DD` date "
        "(`2025-02-30`). The load report (`ignored_paths`) lists each with the reason, and the "
        "non-blocking check `raw_<source>__landing_folder` warns while it is there: nothing is skipped "
        "without a word.",
        "- **Days not over yet**: a run loads the days up to the last complete UTC day, or up to the "
        "as-of date when one is set. A day folder dated later (the day in progress, or a date in the "
        "future by mistake) is left for a later run: the load report lists it (`later_partitions`), "
        "`raw_<source>__landing_folder` warns (not about the folder of the day in progress: that one "
        "is expected), `lifecycle run` builds up to the latest complete landed day and says which "
        "folders it left, and `lifecycle status` lists them apart. It never stops a run.",
        "- **Columns** are matched by name (case-sensitive). Optional columns may be left out of a "
        "file. A column the contract does not know is recorded (load report, "
        "`raw.ingested_files.extra_columns`), not loaded, and the non-blocking check "
        "`raw_<source>__unknown_columns` warns while a loaded file has one. But a file that has an "
        "unknown column **and** lacks an optional column with a default (`order_id`, "
        "`transaction_type`, `status`) is refused: the unknown column is most likely the missing one "
        "renamed (`state` for `status`), and every row would take the default (a cancelled order "
        "would count as revenue). The error names both and the likely rename; rename the column back, "
        "or add the missing one (empty values take the default).",
        f"- **Ids**: 1 to {ID_MAX_LENGTH} characters from `A-Z a-z 0-9 _ . : -`.",
        "- **Timestamps**: ISO 8601 (a date alone is midnight; fractions of a second are kept to the "
        "microsecond). Without an offset a timestamp means UTC; with one (`Z`, `+02:00`) it is "
        "converted to UTC. Loaded as UTC timestamps without time zone. The time column must fall on "
        "the day folder's UTC day.",
        f"- **Amounts**: decimal numbers >= 0, stored as DECIMAL({DECIMAL_PRECISION},{DECIMAL_SCALE}) "
        "(more decimals are accepted and rounded half away from zero to the cent).",
        "- **Empty days**: a CSV with only its header, a Parquet file without rows and an empty JSON "
        "lines file are valid deliveries of zero rows. The day loads as an empty partition (a "
        "re-delivered empty day replaces the rows it had), the load report lists it "
        "(`empty_partitions`) and the non-blocking check `raw_<source>__empty_days` warns while it "
        "stays empty: a whole day without a row is more often a broken export than a quiet day.",
        f"- **One currency**: the mart sums amounts and converts nothing, so every transaction is in "
        f"one currency, `{CURRENCY_ENV}` (default `{DEFAULT_CURRENCY}`, the demo's and CDNOW's); an "
        "empty `currency` means that one, and a row in another is quarantined (`unexpected_currency`). "
        "A change of the setting applies to the days loaded from then on (days already loaded are "
        "not read again unless reloaded).",
        "",
        *[f"{CONTRACTS[source].to_markdown()}\n" for source in SOURCES],
        "### What the loader does with a delivery",
        "",
        "- **Idempotent per partition**: a partition's fingerprint is the sorted (path, size, SHA-256) "
        "of its data files, kept in `raw.ingested_files`. An unchanged partition is skipped; a new or "
        "changed one (a re-delivered or late file) replaces exactly that partition's rows, in one "
        "transaction. A day folder that disappears leaves its loaded rows in place (the load report "
        "lists it). `raw.<source>` holds the contract's columns and `_source_file`, `_partition_date`, "
        "`_row_number` and `_loaded_at`.",
        "- **Row problems** quarantine the row, in `raw.quarantine` (source, day, file, 1-based data "
        "row number, rule, detail, the original row as JSON, and `line_number`: the line of the file "
        "the row starts on, where the CSV header is line 1 and blank lines count, so a quoted value "
        "that spans lines puts the rows after it on later lines; for JSON lines the line; null for "
        "Parquet); the file's other rows load. Details show control characters escaped (`\\x00`). One "
        "rule per row, the first that fails in this order:",
        "",
        rules,
        "",
        "- **File problems** fail the whole partition and keep its previously loaded rows: a file that "
        "cannot be read (corrupt, truncated, a JSON line that is not an object or holds a raw control "
        "character), text that is not UTF-8 (the error names the line and, for CSV, the column), CR-only "
        "line endings (classic Mac), a file ending in NUL bytes (not completely written), a CSV "
        "without a header, a required column missing from the file (for JSON lines: from every line), "
        "an unknown column where an optional column with a default is missing (see **Columns**), or a "
        "Parquet column whose type cannot hold the contract's (numbers for an id). Error messages show "
        "control characters escaped. Fix: re-deliver the file; the next run loads the day. Other days "
        "and sources load.",
        "- **Across sources** (dbt tests at error severity on the staging models, not the loader: the "
        "sources load independently and a loaded day is not read again, so a user delivered a day "
        "late would leave a quarantined transaction behind for good): when `users` has rows, every "
        "`user_id` of `events` and `transactions` must be a known user "
        "(`assert_events_have_known_users`, `assert_transactions_have_known_users`) and no "
        "transaction may come before its user's `signup_at` (`assert_transactions_follow_signup`; "
        "events may: browsing before sign-up is joined to the user afterwards). A failure blocks "
        "publication until the missing users arrive or the rows are corrected; a transaction-only "
        "landing folder (no `users` rows at all, like CDNOW) skips them.",
        "",
    ]
    return "\n".join(sections)
