"""Check results with their failures: what the UI shows (``failing_rows``) and the validation
report reads (``failures``)."""

from typing import Any

import dagster as dg

from expectations.runner import ROW_SAMPLE_SIZE

#: Failing rows kept per failed rule in check metadata (as for the Great Expectations suites).
SAMPLE_ROWS = ROW_SAMPLE_SIZE
# The markdown view of the failures in the UI: at most this many rules, each with its first rows.
_MARKDOWN_RULES = 10
_MARKDOWN_ROWS = 5


def md_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")[:80]


def failures_markdown(failures: list[dict]) -> str:
    """The failed rules and their first failing rows as markdown (the UI's view of ``failures``)."""
    parts = []
    for failure in failures[:_MARKDOWN_RULES]:
        parts.append(
            f"**{md_cell(failure.get('table'))}**: {md_cell(failure.get('rule'))} ({failure.get('detail')})"
        )
        rows = failure.get("sample_rows") or []
        if rows:
            columns = list(dict.fromkeys(column for row in rows for column in row))
            parts.append("| " + " | ".join(md_cell(column) for column in columns) + " |")
            parts.append("|" + "---|" * len(columns))
            for row in rows[:_MARKDOWN_ROWS]:
                parts.append("| " + " | ".join(md_cell(row.get(column)) for column in columns) + " |")
        parts.append("")
    if len(failures) > _MARKDOWN_RULES:
        parts.append(f"... and {len(failures) - _MARKDOWN_RULES} more failed rules (metadata `failures`).")
    return "\n".join(parts).strip()


def failure_metadata(failures: list[dict]) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "failing_count": sum(failure.get("failing_count") or 0 for failure in failures),
        "failures": dg.MetadataValue.json(failures),
    }
    if failures:
        metadata["failing_rows"] = dg.MetadataValue.md(failures_markdown(failures))
    return metadata


def suite_check_result(results: list, tables: list[str]) -> dg.AssetCheckResult:
    """One check result for the suites ``results`` run on ``tables`` (same order)."""
    passed = all(result.success for result in results)
    failures = [
        record
        for result, table in zip(results, tables, strict=True)
        for record in result.failure_records(table)
    ]
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="\n".join(result.describe() for result in results),
        metadata={
            "tables": ", ".join(tables),
            "failed_rules": sum(len(result.failures) for result in results),
            "rows_validated": sum(result.row_count for result in results),
            **failure_metadata(failures),
            # The samples are in `failures`; the outcomes of every rule without them.
            "results": dg.MetadataValue.json([result.to_dict(rows=False) for result in results]),
        },
    )


def error_result(passed: bool, description: str, **metadata: Any) -> dg.AssetCheckResult:
    """An ERROR-severity check result (the model-health checks of the Python model assets)."""
    return dg.AssetCheckResult(
        passed=passed, severity=dg.AssetCheckSeverity.ERROR, description=description, metadata=metadata
    )
