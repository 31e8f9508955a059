"""Validate a table, read into pandas, against its Great Expectations suite.

The caller reads the table into a DataFrame (``duckdb ... .df()``) and calls
``validate_dataframe(df, "<table>")``; GE's SQL datasource is never used on DuckDB, where
every expectation errors even on good data (GE issues #10738, #11579). GE runs in an
ephemeral, in-memory context with no Data Docs site, no stores on disk, no progress bars
and no analytics, so a validation leaves nothing behind and needs no network.

``great_expectations`` takes about 3 s to import, so it is imported inside the functions
that need it; importing this module (and listing or loading suites) stays cheap.
"""

from __future__ import annotations

import copy
import json
import math
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SUITES_DIR: Path = Path(__file__).resolve().parent / "suites"

#: Failing values kept per expectation (distinct, in row order).
SAMPLE_SIZE = 5
#: Failing rows kept per expectation (whole rows, in row order), for reports and check metadata.
ROW_SAMPLE_SIZE = 20
#: A longer text cell in a failing-row sample is cut to this many characters.
MAX_CELL_CHARS = 200
# GE lists this many failing values (and rows); unique-type expectations repeat each duplicate,
# so ask for more than SAMPLE_SIZE to still find several distinct ones.
_PARTIAL_UNEXPECTED_COUNT = ROW_SAMPLE_SIZE
_SUITE_NAME = re.compile(r"[A-Za-z0-9_]+")
_FINGERPRINT_LOCK = threading.Lock()
_TYPE_EXPECTATIONS = {"expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"}


class SuiteError(ValueError):
    """A suite file is missing or invalid. The message names the file and what to fix."""


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation, reduced to JSON-able values.

    ``error`` is set when the expectation could not be evaluated (a column it needs is
    missing, or GE raised inside it); such an outcome is always a failure, and the message
    is also in ``observed_value``. ``failing_rows`` holds up to ROW_SAMPLE_SIZE whole rows that
    break a row-level rule (the rule's columns first), as JSON-able dicts; table-level rules
    (row count, column set) have none.
    """

    expectation_type: str
    column: str | None
    rule: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    unexpected_sample: list
    observed_value: object | None
    error: str | None = None
    failing_rows: list[dict] = field(default_factory=list)

    def detail(self) -> str:
        """What was found, in a few words: counts and sample, observed value or error."""
        if self.error is not None:
            return f"could not be checked: {self.error}"
        if self.unexpected_count is not None:
            text = f"{self.unexpected_count:,} of {self.element_count or 0:,} rows"
            # A sample of nulls (expect_column_values_to_not_be_null) says nothing new.
            if any(value is not None for value in self.unexpected_sample):
                text += f", e.g. {self.unexpected_sample!r}"
            return text
        observed = self.observed_value
        if isinstance(observed, dict) and observed.get("missing"):
            return "missing column(s): " + ", ".join(map(str, observed["missing"]))
        return f"observed {observed!r}"


@dataclass(frozen=True)
class SuiteResult:
    """The outcomes of one suite on one DataFrame, in suite order."""

    suite_name: str
    success: bool
    row_count: int
    outcomes: list[ExpectationOutcome]

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.success]

    def describe(self) -> str:
        """One line per failed expectation, or one line saying that all passed."""
        failures = self.failures
        if not failures:
            return f"{self.suite_name}: passed {len(self.outcomes)} expectations on {self.row_count:,} rows"
        lines = []
        for outcome in failures:
            on = f" on {outcome.column}" if outcome.column else ""
            lines.append(
                f"{self.suite_name}: FAILED {outcome.rule} "
                f"({outcome.expectation_type}{on}): {outcome.detail()}"
            )
        return "\n".join(lines)

    def failure_records(self, table: str | None = None) -> list[dict]:
        """One JSON-able record per failed expectation: the table, the rule, its failing count and
        samples of the failing values and rows (what check metadata and the validation report show).
        """
        return [
            {
                "table": table or self.suite_name,
                "rule": outcome.rule,
                "expectation": outcome.expectation_type,
                "column": outcome.column,
                "failing_count": outcome.unexpected_count,
                "rows_checked": self.row_count if outcome.element_count is None else outcome.element_count,
                "detail": outcome.detail(),
                "sample_values": outcome.unexpected_sample,
                "sample_rows": outcome.failing_rows,
            }
            for outcome in self.failures
        ]

    def to_dict(self, *, rows: bool = True) -> dict:
        """A JSON-able summary, for Dagster metadata and reports; ``rows=False`` leaves out the
        failing-row samples (``failure_records`` has them)."""
        outcomes = [asdict(outcome) for outcome in self.outcomes]
        if not rows:
            for outcome in outcomes:
                del outcome["failing_rows"]
        return {
            "suite_name": self.suite_name,
            "success": self.success,
            "row_count": self.row_count,
            "expectation_count": len(self.outcomes),
            "failure_count": len(self.failures),
            "outcomes": outcomes,
        }


def list_suites() -> list[str]:
    """Names of the suites in ``SUITES_DIR`` (one per gated table), sorted."""
    return sorted(path.stem for path in SUITES_DIR.glob("*.json"))


def load_suite_dict(name: str) -> dict:
    """Read and check the suite file ``SUITES_DIR/<name>.json``.

    Raises
    ------
    SuiteError
        If the file is missing, is not JSON, or is not a suite whose every expectation
        has a ``type``, ``kwargs`` and a ``meta.rule`` sentence. The message names the file.
    """
    if not isinstance(name, str) or not _SUITE_NAME.fullmatch(name):
        raise SuiteError(f"invalid suite name {name!r}: use the table name, e.g. 'dim_users'")
    path = SUITES_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(list_suites()) or "none"
        raise SuiteError(
            f"no expectation suite {name!r}: {path} does not exist (suites: {known}); "
            f"add {name}.json there or fix the name"
        )
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{path} could not be read as JSON: {exc}") from exc
    problems = _suite_problems(suite, name)
    if problems:
        raise SuiteError(f"{path} is not a valid expectation suite: " + "; ".join(problems))
    return suite


def validate_dataframe(df: pd.DataFrame, suite_name: str, *, empty_because: str | None = None) -> SuiteResult:
    """Validate ``df`` against the suite ``suite_name`` and return every outcome.

    An expectation that needs a column ``df`` lacks fails with an error naming the column
    (GE is not asked to evaluate it); one that raises inside GE fails with GE's message.

    ``empty_because`` (a model that was not fitted, and why) validates the table as one that must
    hold no rows: only the suite's column-set rules apply (the table keeps its columns), plus the
    rule that it is empty (see :func:`empty_table_suite`).

    Raises
    ------
    SuiteError
        If the suite file is missing or invalid, or GE rejects one of its expectations.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate_dataframe needs a pandas DataFrame, got {type(df).__name__}")
    suite = load_suite_dict(suite_name)
    if empty_because is not None:
        suite = empty_table_suite(suite, empty_because)
    present = set(df.columns)
    outcomes: list[ExpectationOutcome | None] = [None] * len(suite["expectations"])
    to_run: list[tuple[int, dict]] = []
    for index, spec in enumerate(suite["expectations"]):
        missing = [c for c in _referenced_columns(spec["kwargs"]) if c not in present]
        if missing:
            message = "column(s) missing from the table: " + ", ".join(missing)
            outcomes[index] = _failed_outcome(spec, message)
        else:
            to_run.append((index, spec))
    if to_run:
        results = _run_great_expectations(df, suite_name, to_run)
        dtypes = {column: str(dtype) for column, dtype in df.dtypes.items()}
        for (index, spec), result in zip(to_run, results, strict=True):
            outcomes[index] = _outcome(spec, result, dtypes)
    done = [outcome for outcome in outcomes if outcome is not None]
    return SuiteResult(
        suite_name=suite_name,
        success=all(outcome.success for outcome in done),
        row_count=len(df),
        outcomes=done,
    )


def empty_table_suite(suite: dict, reason: str) -> dict:
    """The variant of ``suite`` for a table that must be empty (its model was not fitted, for
    ``reason``): the suite's ``expect_table_columns_to_match_set`` rules and a row count of 0. The
    row-level rules would pass on no rows anyway; the table-level ones that need scores (at least
    one row, one model version) do not apply to a model that produced none."""
    columns = [spec for spec in suite["expectations"] if spec["type"] == "expect_table_columns_to_match_set"]
    empty = {
        "type": "expect_table_row_count_to_equal",
        "kwargs": {"value": 0},
        "meta": {"rule": f"{suite['name']} holds no rows while its model is not fitted ({reason})"},
        "severity": "critical",
    }
    return {**suite, "expectations": [*copy.deepcopy(columns), empty]}


#: Expectations that hold row by row: on batches of a table's rows they add up to the whole table.
ROW_LEVEL_EXPECTATIONS = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_match_regex",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_table_columns_to_match_set",
    }
)
#: Key expectations: on batches the caller counts the duplicated rows of the whole table.
UNIQUE_EXPECTATIONS = {
    "expect_column_values_to_be_unique": "column",
    "expect_compound_columns_to_be_unique": "column_list",
}
_ROW_COUNT = "expect_table_row_count_to_be_between"


def validates_in_batches(suite_name: str) -> bool:
    """Whether every expectation of the suite can be validated batch by batch (see
    :func:`validate_batches`); a suite with another table-level rule needs the whole table."""
    suite = load_suite_dict(suite_name)
    allowed = ROW_LEVEL_EXPECTATIONS | set(UNIQUE_EXPECTATIONS) | {_ROW_COUNT}
    for spec in suite["expectations"]:
        if spec["type"] not in allowed:
            return False
        if spec["type"] in UNIQUE_EXPECTATIONS:
            try:
                row_condition_sql(spec["kwargs"].get("row_condition"))
            except ValueError:
                return False
    return True


_SQL_OPERATORS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def row_condition_sql(condition: Any) -> tuple[str, list]:
    """A structured GE ``row_condition`` as a SQL predicate with ``?`` parameters (``("true", [])``
    without one). Comparisons of a column with a value, and ``and``/``or`` groups of them; anything
    else raises ValueError."""
    if condition is None:
        return "true", []
    if not isinstance(condition, dict):
        raise ValueError(f"row_condition {condition!r} is not a structured condition")
    if condition.get("type") == "comparison":
        column = (condition.get("column") or {}).get("name")
        operator = _SQL_OPERATORS.get(condition.get("operator"))
        if not isinstance(column, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column) or not operator:
            raise ValueError(f"row_condition {condition!r} is not a column compared with a value")
        return f"{column} {operator} ?", [condition.get("parameter")]
    if condition.get("type") in ("and", "or") and condition.get("conditions"):
        parts = [row_condition_sql(part) for part in condition["conditions"]]
        joined = f" {condition['type']} ".join(f"({sql})" for sql, _ in parts)
        return joined, [param for _, params in parts for param in params]
    raise ValueError(f"row_condition {condition!r} is not supported in SQL")


def validate_batches(
    batches: Iterable[pd.DataFrame],
    suite_name: str,
    duplicates: Callable[[list[str], tuple[str, list]], tuple[int, list]],
) -> SuiteResult:
    """Validate a table too large for one DataFrame, batch by batch, as one result.

    Row-level outcomes are added up over the batches (counts, then the first samples). The row count
    rule is checked on the total. A unique-type rule is checked on the whole table by
    ``duplicates(key_columns, (predicate, params))``, which returns the number of rows (of those
    matching the rule's ``row_condition``, see :func:`row_condition_sql`) whose key occurs more than
    once and a few such keys (the caller counts them in its engine, e.g. with SQL): keys duplicated
    across two batches are found too. Only suites for which :func:`validates_in_batches` is true.
    """
    if not validates_in_batches(suite_name):
        raise ValueError(f"suite {suite_name} has table-level expectations: validate the whole table")
    results = [validate_dataframe(batch, suite_name) for batch in batches]
    suite = load_suite_dict(suite_name)
    if not results:
        raise ValueError(f"validate_batches({suite_name!r}) got no batch: pass at least an empty DataFrame")
    total_rows = sum(result.row_count for result in results)
    outcomes = []
    for index, spec in enumerate(suite["expectations"]):
        parts = [result.outcomes[index] for result in results]
        if spec["type"] in UNIQUE_EXPECTATIONS:
            outcomes.append(_unique_outcome(spec, parts, total_rows, duplicates))
        elif spec["type"] == _ROW_COUNT:
            outcomes.append(_row_count_outcome(spec, parts, total_rows))
        else:
            outcomes.append(_summed_outcome(parts))
    return SuiteResult(
        suite_name=suite_name,
        success=all(outcome.success for outcome in outcomes),
        row_count=total_rows,
        outcomes=outcomes,
    )


def _summed_outcome(parts: list[ExpectationOutcome]) -> ExpectationOutcome:
    failed = [part for part in parts if not part.success]
    first = (failed or parts)[0]
    if any(part.error for part in parts):
        return next(part for part in parts if part.error)
    elements = [part.element_count for part in parts if part.element_count is not None]
    unexpected = [part.unexpected_count for part in parts if part.unexpected_count is not None]
    element_count = sum(elements) if elements else None
    unexpected_count = sum(unexpected) if unexpected else None
    return replace(
        first,
        success=not failed,
        element_count=element_count,
        unexpected_count=unexpected_count,
        unexpected_percent=(
            100.0 * unexpected_count / element_count
            if element_count and unexpected_count is not None
            else None
        ),
        unexpected_sample=_sample([value for part in failed for value in part.unexpected_sample]),
        failing_rows=[row for part in failed for row in part.failing_rows][:ROW_SAMPLE_SIZE],
    )


def _unique_outcome(
    spec: dict,
    parts: list[ExpectationOutcome],
    total_rows: int,
    duplicates: Callable[[list[str], tuple[str, list]], tuple[int, list]],
) -> ExpectationOutcome:
    if any(part.error for part in parts):
        return next(part for part in parts if part.error)
    value = spec["kwargs"][UNIQUE_EXPECTATIONS[spec["type"]]]
    columns = [value] if isinstance(value, str) else list(value)
    count, sample = duplicates(columns, row_condition_sql(spec["kwargs"].get("row_condition")))
    failed = [part for part in parts if not part.success]
    return replace(
        parts[0],
        success=count == 0,
        element_count=total_rows,
        unexpected_count=count,
        unexpected_percent=100.0 * count / total_rows if total_rows else 0.0,
        unexpected_sample=_sample(sample),
        failing_rows=[row for part in failed for row in part.failing_rows][:ROW_SAMPLE_SIZE],
    )


def _row_count_outcome(spec: dict, parts: list[ExpectationOutcome], total_rows: int) -> ExpectationOutcome:
    low, high = spec["kwargs"].get("min_value"), spec["kwargs"].get("max_value")
    success = (low is None or total_rows >= low) and (high is None or total_rows <= high)
    return replace(parts[0], success=success, observed_value=total_rows, error=None)


def _suite_problems(suite: Any, name: str) -> list[str]:
    if not isinstance(suite, dict):
        return ["the top level must be an object"]
    problems = []
    if suite.get("name") != name:
        problems.append(f"'name' is {suite.get('name')!r}, expected {name!r} (the file name)")
    expectations = suite.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        return [*problems, "'expectations' must be a non-empty list"]
    for index, spec in enumerate(expectations):
        where = f"expectation #{index}"
        if not isinstance(spec, dict):
            problems.append(f"{where} must be an object")
            continue
        if not isinstance(spec.get("type"), str) or not spec["type"].startswith("expect_"):
            problems.append(f"{where} needs a 'type' such as 'expect_column_values_to_be_unique'")
        if not isinstance(spec.get("kwargs"), dict):
            problems.append(f"{where} needs 'kwargs' (an object)")
        meta = spec.get("meta")
        rule = meta.get("rule") if isinstance(meta, dict) else None
        if not isinstance(rule, str) or not rule.strip():
            problems.append(f"{where} needs 'meta.rule', a sentence a person reads on failure")
    return problems


def _referenced_columns(kwargs: dict) -> list[str]:
    """Columns an expectation reads, including those of its row_condition, in order."""
    columns = [kwargs[key] for key in ("column", "column_A", "column_B") if key in kwargs]
    columns += list(kwargs.get("column_list") or [])
    columns += _condition_columns(kwargs.get("row_condition"))
    return list(dict.fromkeys(columns))


def _condition_columns(condition: Any) -> list[str]:
    if not isinstance(condition, dict):
        # None, or a legacy string condition (GE reports its own errors for those).
        return []
    columns = []
    column = condition.get("column")
    if isinstance(column, dict) and isinstance(column.get("name"), str):
        columns.append(column["name"])
    for part in condition.get("conditions") or []:
        columns += _condition_columns(part)
    return columns


def _column_label(kwargs: dict) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs and "column_B" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    if kwargs.get("column_list"):
        return ", ".join(map(str, kwargs["column_list"]))
    return None


def _run_great_expectations(df: pd.DataFrame, suite_name: str, to_run: list[tuple[int, dict]]):
    """Validate ``df`` with GE; return one result (or None) per entry of ``to_run``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    path = SUITES_DIR / f"{suite_name}.json"
    configs = []
    for index, spec in to_run:
        try:
            # Each gets an id so that results (which GE returns in its own order) map back.
            config = ExpectationConfiguration(
                type=spec["type"],
                kwargs=copy.deepcopy(spec["kwargs"]),
                meta=copy.deepcopy(spec["meta"]),
                id=str(uuid.uuid4()),
            )
            config.to_domain_obj()
        except Exception as exc:
            raise SuiteError(
                f"{path}: expectation #{index} ({spec['type']}) is not valid for "
                f"great_expectations {gx.__version__}: {exc}"
            ) from exc
        configs.append(config)
    gx_suite = gx.ExpectationSuite(name=suite_name, expectations=configs)
    if len(gx_suite.expectations) != len(configs):
        # ExpectationSuite() logs and drops configurations it cannot build.
        raise SuiteError(f"{path}: great_expectations dropped some expectations of this suite")

    project_config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=project_config)
    with _without_batch_fingerprint():
        batch = (
            context.data_sources.add_pandas(name=suite_name)
            .add_dataframe_asset(name=suite_name)
            .add_batch_definition_whole_dataframe(name="whole_table")
            .get_batch(batch_parameters={"dataframe": df})
        )
        # BASIC: counts and the first failing values; include_unexpected_rows adds the first
        # failing rows (a DataFrame cut to partial_unexpected_count), for row-level expectations.
        validation = batch.validate(
            gx_suite,
            result_format={
                "result_format": "BASIC",
                "partial_unexpected_count": _PARTIAL_UNEXPECTED_COUNT,
                "include_unexpected_rows": True,
            },
        )
    by_id = {result.expectation_config.id: result for result in validation.results}
    return [by_id.get(config.id) for config in configs]


@contextmanager
def _without_batch_fingerprint():
    """Skip GE's batch fingerprint while validating.

    GE 1.x hashes the whole DataFrame (``pandas.util.hash_pandas_object``) every time it
    builds a pandas batch under 1 GB, and ``Batch.validate`` builds it a second time: about
    2 s of a 3 s validation of 1M rows of pandas 3 strings, for a marker this runner never
    reads. Lowering GE's threshold to 0 while we validate turns the hash off; if a GE
    release moves the setting, validation still works, only slower.
    """
    from great_expectations.execution_engine import pandas_execution_engine as engine

    if not hasattr(engine, "HASH_THRESHOLD"):
        yield
        return
    with _FINGERPRINT_LOCK:
        saved = engine.HASH_THRESHOLD
        engine.HASH_THRESHOLD = 0
        try:
            yield
        finally:
            engine.HASH_THRESHOLD = saved


def _failed_outcome(spec: dict, error: str) -> ExpectationOutcome:
    return ExpectationOutcome(
        expectation_type=spec["type"],
        column=_column_label(spec["kwargs"]),
        rule=spec["meta"]["rule"],
        success=False,
        element_count=None,
        unexpected_count=None,
        unexpected_percent=None,
        unexpected_sample=[],
        observed_value=error,
        error=error,
    )


def _outcome(spec: dict, result: Any, dtypes: dict[Any, str]) -> ExpectationOutcome:
    if result is None:
        return _failed_outcome(spec, "great_expectations returned no result for it")
    error = _exception_message(result.exception_info)
    if error is not None:
        return _failed_outcome(spec, f"great_expectations raised: {error}")
    found = dict(result.result or {})
    observed = jsonable(found.get("observed_value"))
    mismatched = (found.get("details") or {}).get("mismatched")
    if isinstance(mismatched, dict):
        # expect_table_columns_to_match_set: keep which expected columns are missing.
        observed = {"columns": observed, "missing": sorted(map(str, mismatched.get("missing") or []))}
    elif spec["type"] in _TYPE_EXPECTATIONS and spec["kwargs"].get("column") in dtypes:
        # GE reports the dtype's scalar type ("Timestamp" for datetime64[us, UTC]); the dtype
        # itself says what is wrong.
        observed = dtypes[spec["kwargs"]["column"]]
    percent = found.get("unexpected_percent")
    return ExpectationOutcome(
        expectation_type=spec["type"],
        column=_column_label(spec["kwargs"]),
        rule=spec["meta"]["rule"],
        success=result.success is True,
        element_count=_int_or_none(found.get("element_count")),
        unexpected_count=_int_or_none(found.get("unexpected_count")),
        unexpected_percent=None if percent is None else float(percent),
        unexpected_sample=_sample(found.get("partial_unexpected_list") or []),
        observed_value=observed,
        failing_rows=[] if result.success else _rows_sample(found.get("unexpected_rows"), spec),
    )


def _exception_message(info: Any) -> str | None:
    """GE's exception text, or None. GE nests it per metric when a metric raised."""
    if not isinstance(info, dict) or not info:
        return None
    if "raised_exception" in info:
        if not info.get("raised_exception"):
            return None
        return str(info.get("exception_message") or "unknown error")
    messages = [
        str(entry.get("exception_message") or "unknown error")
        for entry in info.values()
        if isinstance(entry, dict) and entry.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) or None


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _sample(values: list) -> list:
    """Up to SAMPLE_SIZE distinct failing values, JSON-able, in row order."""
    sample: dict[str, Any] = {}
    for value in values:
        converted = jsonable(value)
        sample.setdefault(json.dumps(converted, sort_keys=True), converted)
        if len(sample) == SAMPLE_SIZE:
            break
    return list(sample.values())


def _rows_sample(rows: Any, spec: dict) -> list[dict]:
    """Up to ROW_SAMPLE_SIZE failing rows as JSON-able dicts, the rule's columns first."""
    import pandas as pd

    if not isinstance(rows, pd.DataFrame) or rows.empty:
        return []
    first = [column for column in _referenced_columns(spec["kwargs"]) if column in rows.columns]
    columns = first + [column for column in rows.columns if column not in first]
    return [
        {str(column): _cell(record[column]) for column in columns}
        for record in rows.head(ROW_SAMPLE_SIZE).to_dict(orient="records")
    ]


def _cell(value: Any) -> Any:
    converted = jsonable(value)
    if isinstance(converted, str) and len(converted) > MAX_CELL_CHARS:
        return converted[: MAX_CELL_CHARS - 1] + "\u2026"
    return converted


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: timestamps and dates become ISO strings, NaN/NaT None, NumPy
    scalars Python ones, anything else (a ``Decimal``) its text. Check metadata uses it too."""
    import numpy as np
    import pandas as pd

    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Index, pd.Series)):
        return [jsonable(item) for item in value]
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.timedelta64):
        return str(pd.Timedelta(value))
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
