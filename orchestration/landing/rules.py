"""The contract's row rules as SQL over one file (first failing rule wins) and the uniqueness rules
within a day folder and across loaded days. No Dagster here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa

from orchestration.landing.contract import (
    CURRENCY_ENV,
    ID_CHARACTERS,
    ID_MAX_LENGTH,
    TIMESTAMP_PATTERN,
    SourceContract,
)
from orchestration.landing.readers import (
    MALFORMED_COLUMN,
    MALFORMED_VALUES_COLUMN,
    RECORD_COLUMN,
    ROW_COLUMN,
    ReadFile,
    is_text_type,
)
from orchestration.landing.tables import DECIMAL_TYPE, RAW_SCHEMA, RAW_TYPES, ident, lit
from orchestration.landing.text import has_control_bytes, visible

# ID_PATTERN as a length test and an unbounded class: RE2 compiles {1,64} into 64 states, per query.
ID_CHARS_SQL = f"[{ID_CHARACTERS}]+"
# CONTROL_CHARACTERS as an RE2 class, written with escapes (the SQL text holds no control character).
CONTROL_SQL = r"[\x00-\x08\x0a-\x1f]"
_SHOWN_VALUE_CHARS = 80
#: The temporary macro of :func:`visible_macro_sql`.
VISIBLE_MACRO = "_ingest_visible"


# ---------------------------------------------------------------------------------------------
# SQL


def visible_macro_sql() -> str:
    """``create temp macro _ingest_visible(s)``: ``s`` with every control character (U+0000 to
    U+001F, U+007F) escaped as :func:`orchestration.landing.text.visible` escapes it."""
    expr = "s"
    for code in [*range(32), 127]:
        expr = f"replace({expr}, chr({code}), {lit(visible(chr(code)))})"
    return f"create or replace temp macro {VISIBLE_MACRO}(s) as {expr}"


def shown_value_sql(text_sql: str) -> str:
    """SQL for a value quoted for a detail sentence, cut at _SHOWN_VALUE_CHARS characters, its
    control characters escaped (needs the macro of :func:`visible_macro_sql`)."""
    n = _SHOWN_VALUE_CHARS
    return (
        f"('''' || {VISIBLE_MACRO}(case when length({text_sql}) > {n} then left({text_sql}, {n}) "
        f"else {text_sql} end) || (case when length({text_sql}) > {n} then '...' else '' end) || '''')"
    )


class FileSql:
    """SQL expressions over one registered file (alias ``f``): raw text, parsed and final values.

    ``r<i>``: the value as delivered (text with '' as null, or the Parquet type); ``v<i>``: parsed
    (``try_cast``; NULL when it does not parse); final: typed with the contract's default.
    """

    def __init__(self, contract: SourceContract, rf: ReadFile, view: str, currency: str) -> None:
        self.contract, self.rf, self.view, self.currency = contract, rf, view, currency
        types = {f.name: f.type for f in rf.table.schema}
        self.present = {name for name in contract.column_names if name in types}
        # Text columns whose bytes hold a control character somewhere: only they need the SQL check.
        self.with_controls = {
            name
            for name in self.present
            if is_text_type(types[name]) and has_control_bytes(rf.table.column(name))
        }
        self.malformed = MALFORMED_COLUMN in types
        self.raws, self.parses, self.text, self.is_text = [], [], {}, {}
        for i, col in enumerate(contract.columns):
            type_ = types.get(col.name)
            if type_ is None or pa.types.is_null(type_):
                raw, is_text = "cast(null as varchar)", True
            elif is_text_type(type_):
                raw, is_text = f"nullif(cast(f.{ident(col.name)} as varchar), '')", True
            else:
                raw, is_text = f"f.{ident(col.name)}", False
            if col.logical_type == "timestamp":  # TIMESTAMPTZ becomes UTC: the session time zone is UTC
                parsed = (
                    f"cast(try_cast(r{i} as timestamptz) as timestamp)"
                    if is_text
                    else f"cast(r{i} as timestamp)"
                )
            elif col.logical_type == "decimal":
                parsed = f"try_cast(r{i} as {DECIMAL_TYPE})"
            else:
                parsed = f"r{i}"
            self.raws.append(f"{raw} as r{i}")
            self.parses.append(f"{parsed} as v{i}")
            self.text[col.name] = f"cast(r{i} as varchar)"
            self.is_text[col.name] = is_text
        self.finals = []
        for i, col in enumerate(contract.columns):
            if col.default_column is not None:
                expr = f"coalesce(v{i}, v{contract.column_names.index(col.default_column)})"
            elif col.default is not None:
                expr = f"coalesce(v{i}, {lit(col.default)})"
            else:
                expr = f"v{i}"
            self.finals.append(f"cast({expr} as {RAW_TYPES[col.logical_type]}) as {ident(col.name)}")

    def _parsed(self) -> str:
        helpers = f"f.{MALFORMED_COLUMN}, f.{MALFORMED_VALUES_COLUMN}, " if self.malformed else ""
        return (
            f"(select *, {', '.join(self.parses)} "
            f"from (select f.{ROW_COLUMN}, {helpers}{', '.join(self.raws)} from {self.view} as f))"
        )

    def typed_select(self) -> str:
        """Every row of the file with its final values (no checks: join away the quarantined rows)."""
        return (
            f"select {self.rf.index} as _file_index, {ROW_COLUMN} as _row_number, "
            f"{', '.join(self.finals)} from {self._parsed()}"
        )

    def checked_select(self, day: dt.date, columns: list[str]) -> str:
        """Every row: file index, row number, ``_check`` (0 = passes, else the number of the first
        failing row check) and the final values of ``columns``."""
        checks = self._checks(day)
        failing = " ".join(f"when {cond} then {k}" for k, (_, cond, _) in enumerate(checks, start=1))
        check = f"case {failing} else 0 end" if checks else "0"
        finals = [self.finals[self.contract.column_names.index(name)] for name in columns]
        return (
            f"select {self.rf.index} as _file_index, {ROW_COLUMN} as _row_number, {check} as _check, "
            f"{', '.join(finals)} from {self._parsed()}"
        )

    def failing_select(self, day: dt.date) -> str:
        """The rows failing a row check: file index, row number, rule and detail (first failure wins)."""
        checks = self._checks(day)
        failing = " ".join(f"when {cond} then {k}" for k, (_, cond, _) in enumerate(checks, start=1))
        rules = " ".join(f"when {k} then {lit(rule)}" for k, (rule, _, _) in enumerate(checks, start=1))
        details = " ".join(f"when {k} then {detail}" for k, (_, _, detail) in enumerate(checks, start=1))
        return f"""
            select {self.rf.index}, {ROW_COLUMN}, case _check {rules} end, case _check {details} end
            from (select *, case {failing} else 0 end as _check from {self._parsed()})
            where _check > 0
        """

    def _checks(self, day: dt.date) -> list[tuple[str, str, str]]:
        """(rule, SQL condition, SQL detail) of every row check, in the contract's order."""
        checks = []
        for check in self.contract.row_checks():
            if check.kind == "malformed_row":
                if self.malformed:
                    checks.append((check.rule, f"{MALFORMED_COLUMN} is not null", self._malformed_detail()))
                continue
            col = self.contract.column(check.column)
            if check.kind == "duplicate_key" or (col.name not in self.present and not col.required):
                continue  # duplicates come later; an absent optional column takes its (valid) default
            i = self.contract.column_names.index(col.name)
            said = f"{lit(col.name + ' ')} || {shown_value_sql(self.text[col.name])} || "
            if check.kind == "control_character":
                if col.name not in self.with_controls:
                    continue  # not a single control byte in the column: nothing to check
                cond = f"regexp_matches(r{i}, {lit(CONTROL_SQL)})"
                detail = said + lit(
                    " holds a control character (U+0000 to U+001F other than tab; shown escaped)"
                )
            elif check.kind == "null":
                cond = f"r{i} is null"
                detail = lit(f"required column {col.name} is empty (no value)")
            elif check.kind == "malformed_id":
                bad_id = f"length(v{i}) > {ID_MAX_LENGTH} or not regexp_full_match(v{i}, {lit(ID_CHARS_SQL)})"
                cond = f"v{i} is not null and ({bad_id})"
                detail = said + lit(" is not a valid id (1 to 64 characters from A-Z a-z 0-9 _ . : -)")
            elif check.kind == "unparseable_timestamp":
                iso = (
                    f"not regexp_full_match(r{i}, {lit(TIMESTAMP_PATTERN)}) or "
                    if self.is_text[col.name]
                    else ""
                )
                cond = f"r{i} is not null and ({iso}v{i} is null or not isfinite(v{i}))"
                detail = said + lit(" is not an ISO 8601 timestamp")
            elif check.kind == "timestamp_outside_partition":
                cond = f"cast(v{i} as date) <> date '{day.isoformat()}'"
                detail = f"{said}' is ' || strftime(v{i}, '%Y-%m-%d %H:%M:%S') || " + lit(
                    f" UTC, outside the day folder {day.isoformat()}"
                )
            elif check.kind == "unparseable_amount":
                cond = f"r{i} is not null and v{i} is null"
                detail = said + lit(f" is not a decimal number that fits {DECIMAL_TYPE}")
            elif check.kind == "negative_amount":
                cond = f"v{i} < 0"
                detail = said + lit(
                    " is negative; amounts are >= 0 (a refund is a transaction_type = refund row with a "
                    "positive amount)"
                )
            elif check.kind == "unknown":
                cond = f"v{i} is not null and v{i} not in ({', '.join(lit(v) for v in col.allowed_values)})"
                detail = said + lit(" is not one of " + ", ".join(col.allowed_values))
            elif check.kind == "unexpected_currency":
                cond = f"v{i} is not null and v{i} <> {lit(self.currency)}"
                detail = said + lit(
                    f" is not the mart's currency {self.currency} ({CURRENCY_ENV}); the mart holds one "
                    "currency and converts nothing"
                )
            else:  # pragma: no cover - the contract and this class list the same kinds
                raise AssertionError(f"unhandled check kind {check.kind}")
            checks.append((check.rule, cond, detail))
        return checks

    def _malformed_detail(self) -> str:
        return (
            f"'the row has ' || {MALFORMED_VALUES_COLUMN} || "
            + lit(
                f" values where the header has {self.rf.header_columns} columns (a stray delimiter, a "
                "missing value or an unbalanced quote?): "
            )
            + f" || {shown_value_sql(MALFORMED_COLUMN)}"
        )

    def record(self) -> str:
        """SQL for the original row as JSON text (the line itself for JSON lines; the original text
        of a malformed CSV row as a JSON string)."""
        if RECORD_COLUMN in self.rf.table.column_names:
            return f"f.{RECORD_COLUMN}"
        if not self.rf.columns:
            return "'{}'"
        fields = ", ".join(f"{ident(name)} := f.{ident(name)}" for name in self.rf.columns)
        as_json = f"cast(to_json(struct_pack({fields})) as varchar)"
        if self.malformed:
            return f"coalesce(cast(to_json(f.{MALFORMED_COLUMN}) as varchar), {as_json})"
        return as_json


def not_quarantined(alias: str) -> str:
    return (
        f"not exists (select 1 from _ingest_bad as b "
        f"where b._file_index = {alias}._file_index and b._row_number = {alias}._row_number)"
    )


@dataclass(frozen=True)
class Unique:
    """A uniqueness rule: ``column`` unique in ``raw.<source>`` (among rows matching ``condition``)."""

    column: str
    condition: str  # SQL on the row's columns, '' for every row
    among: str  # words for the detail sentence

    def where(self, alias: str) -> str:
        return f" and {alias}.{self.condition}" if self.condition else ""


def uniques(contract: SourceContract) -> list[Unique]:
    uniques = [Unique(contract.key, "", "")]
    for rule in contract.unique_among:
        condition = f"{ident(rule.where_column)} = {lit(rule.where_value)}"
        uniques.append(
            Unique(rule.column, condition, f" among rows with {rule.where_column} = '{rule.where_value}'")
        )
    return uniques


def key_columns(contract: SourceContract) -> list[str]:
    """The columns the duplicate checks need (kept in the ``_ingest_keys`` scratch table)."""
    names = [contract.key]
    for rule in contract.unique_among:
        names += [rule.column, rule.where_column]
    return [name for name in contract.column_names if name in names]


def screen_sql(contract: SourceContract) -> str:
    """One pass over ``_ingest_keys``: rows failing a row check, then per uniqueness rule the
    surplus rows (0: no value repeats, the ordered check is skipped) and the value range."""
    counts = ["count(*) filter (where _check > 0)"]
    for u in uniques(contract):
        col, where = ident(u.column), "_check = 0" + u.where("k")
        counts += [
            f"count(*) filter (where {where}) - count(distinct k.{col}) filter (where {where})",
            f"min(k.{col}) filter (where {where})",
            f"max(k.{col}) filter (where {where})",
        ]
    return f"select {', '.join(counts)} from _ingest_keys as k"


def loaded_elsewhere_sql(contract: SourceContract, day: dt.date, ranges: list[tuple[str, str] | None]) -> str:
    """Per uniqueness rule: how many of the partition's values are loaded under another day.

    An upper bound (rows quarantined meanwhile still count): where it is 0, the exact statement
    (:func:`across_sql`) is skipped, which is the common case. Each count is a semi-join of the
    partition's values against the column of ``raw.<source>``, bounded by the constant range of
    the partition's values so that DuckDB skips the row groups whose min/max lie outside it: with
    ids that grow with time (sequences, ULIDs, UUIDv7, the demo's) it reads a few row groups; with
    random ids it reads the whole column, about 25 ns per loaded row on 2 cores.
    """
    counts = []
    for u, bounds in zip(uniques(contract), ranges, strict=True):
        if bounds is None:  # no valid value in the partition
            counts.append("0")
            continue
        col = ident(u.column)
        counts.append(
            f"(select count(*) from _ingest_keys as k semi join {RAW_SCHEMA}.{contract.name} as r "
            f"on r.{col} = k.{col} and r._partition_date <> date '{day.isoformat()}'{u.where('r')} "
            f"and r.{col} between {lit(bounds[0])} and {lit(bounds[1])} "
            f"where k._check = 0{u.where('k')})"
        )
    return f"select {', '.join(counts)}"


def _valid_keys(u: Unique) -> str:
    return f"select * from _ingest_keys as k where k._check = 0{u.where('k')} and {not_quarantined('k')}"


def within_sql(u: Unique, paths: list[str]) -> str:
    """Quarantine values repeated within the partition; the first by file, then row, is kept."""
    col = ident(u.column)
    path = "case first_file " + " ".join(f"when {i} then {lit(p)}" for i, p in enumerate(paths)) + " end"
    return f"""
        insert into _ingest_bad
        with valid as ({_valid_keys(u)}),
        repeated as (select {col} from valid group by all having count(*) > 1),
        ranked as (
            select v._file_index, v._row_number, v.{col},
                row_number() over w as occurrence,
                first_value(v._file_index) over w as first_file,
                first_value(v._row_number) over w as first_row
            from valid as v
            where v.{col} in (select {col} from repeated)
            window w as (partition by v.{col} order by v._file_index, v._row_number
                         rows between unbounded preceding and current row)
        )
        select _file_index, _row_number, 'duplicate_key',
            {lit(u.column + " ")} || {shown_value_sql(col)}
            || {lit(" appears earlier" + u.among + " in this day folder (")}
            || {path} || ' row ' || first_row || '); the first occurrence is kept'
        from ranked
        where occurrence > 1
    """


def across_sql(contract: SourceContract, u: Unique, day: dt.date, low: str, high: str) -> str:
    """Quarantine values already loaded under another day (the loaded rows keep their place).

    Bounded by the partition's value range like :func:`loaded_elsewhere_sql`.
    """
    col = ident(u.column)
    return f"""
        insert into _ingest_bad
        select s._file_index, s._row_number, 'duplicate_key',
            {lit(u.column + " ")} || {shown_value_sql("s." + col)}
            || {lit(" is already loaded" + u.among + " from ")} || r._source_file || ' row ' || r._row_number
            || ' (day ' || strftime(r._partition_date, '%Y-%m-%d')
            || '); a value loaded under another day keeps its place'
        from ({_valid_keys(u)}) as s
        join {RAW_SCHEMA}.{contract.name} as r
            on r.{col} = s.{col} and r._partition_date <> date '{day.isoformat()}'{u.where("r")}
            and r.{col} between {lit(low)} and {lit(high)}
        qualify row_number() over (
            partition by s._file_index, s._row_number
            order by r._partition_date, r._source_file, r._row_number
        ) = 1
    """
