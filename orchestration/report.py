"""The validation report of one run: one self-contained HTML file per run.

``collect_run_report`` reads a finished run from the Dagster instance (its event log: every asset
check evaluation, dbt tests included, the checks that were planned but never ran, the steps that
failed or did not run, the as-of date); ``render_report`` turns that plain data into HTML (a pure
function: no Dagster, no files); ``write_run_report`` writes ``<data dir>/reports/<run id>.html``,
replaces ``<data dir>/reports/latest.html`` atomically and tags the run with the path
(``lifecycle/validation_report``), so the Dagster UI shows where the report of a run is.

The HTML loads nothing: no scripts, fonts, images or remote styles (the CSS is inline and a
Content-Security-Policy forbids every fetch), and every value is escaped. It opens from a mail
attachment or a file share on a machine without network.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg

REPORT_TAG = "lifecycle/validation_report"
REPORTS_DIR_NAME = "reports"
LATEST_NAME = "latest.html"
# Metadata that says nothing to a reader of the report (dbt invocation details, timings), or that the
# report shows otherwise (`failing_rows` is the UI's markdown view of `failures`).
_HIDDEN_METADATA = {"Execution Duration", "invocation_id", "unique_id", "status", "failing_rows"}
_AS_OF_LOG = re.compile(r"\bas_of_date=(\d{4}-\d{2}-\d{2})\b")
_STATUS_ORDER = {"failed": 0, "not run": 1, "passed": 2}


@dataclass(frozen=True)
class CheckReport:
    """One asset check of the run. ``status`` is ``passed``, ``failed`` or ``not run`` (planned, but
    its step did not run). ``failures`` are the failed rules with their failing rows (the check's
    ``failures`` metadata); ``counts`` its other plain metadata values."""

    asset: str
    name: str
    status: str
    severity: str | None = None
    blocking: bool | None = None
    description: str | None = None
    result: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    is_dbt_test: bool = False


@dataclass(frozen=True)
class StepReport:
    """A step that failed or did not run (``status`` ``failed`` or ``not run``), and why; ``trace``
    is the failure's whole error with its stack trace (what `lifecycle run` leaves out of its output)."""

    key: str
    status: str
    message: str | None = None
    trace: str | None = None


@dataclass(frozen=True)
class RunReport:
    """Everything the report shows, as plain values."""

    run_id: str
    job_name: str
    status: str
    as_of_date: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    checks: list[CheckReport] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(check.status == status for check in self.checks)

    @property
    def blocking_failures(self) -> list[CheckReport]:
        return [check for check in self.checks if check.status == "failed" and check.blocking]


# ------------------------------------------------------------------------------------- rendering
_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em;
  color: #1d2327; max-width: 1400px; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ccd0d4; padding-bottom: .2em; }
h3 { margin: 0 0 .4em 0; }
table { border-collapse: collapse; margin: .5em 0 1em 0; }
th, td { border: 1px solid #dcdcde; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { white-space: pre-wrap; margin: .3em 0; font-size: 13px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 3px; font-weight: 600;
  font-size: 12px; }
.passed, .SUCCESS { background: #d7f0dd; color: #14532d; }
.failed, .FAILURE, .CANCELED { background: #fbd5d5; color: #7f1d1d; }
.not-run, .warn { background: #fef3c7; color: #78350f; }
.card { border: 1px solid #dcdcde; border-left: 5px solid #b91c1c; padding: .8em 1em;
  margin: 1em 0; }
.card.warn-card { border-left-color: #d97706; }
.null { color: #8c8f94; font-style: italic; }
.muted { color: #50575e; }
.sample { overflow-x: auto; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _value(value: Any) -> str:
    """One cell: null in grey, numbers as they are, JSON for lists and dicts, all escaped."""
    if value is None:
        return '<span class="null">null</span>'
    if isinstance(value, (dict, list)):
        return _e(json.dumps(value, ensure_ascii=False, default=str))
    if isinstance(value, float):
        return _e(f"{value:.6g}")
    if isinstance(value, int) and not isinstance(value, bool):
        return _e(f"{value:,}")
    return _e(value)


def _trace(trace: str | None) -> str:
    if not trace:
        return ""
    return f"<details><summary>stack trace</summary><pre>{_e(trace)}</pre></details>"


def _slug(check: CheckReport) -> str:
    return "check-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{check.asset}--{check.name}")


def _badge(status: str) -> str:
    css = status.replace(" ", "-")
    return f'<span class="badge {_e(css)}">{_e(status.upper())}</span>'


def _yes_no(flag: bool | None) -> str:
    return "" if flag is None else ("yes" if flag else "no")


def _counts(counts: Mapping[str, Any]) -> str:
    return "<br>".join(f"{_e(key)}: {_value(value)}" for key, value in counts.items())


def _rows_table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(column for row in rows for column in row))
    head = "".join(f"<th>{_e(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_value(row.get(column))}</td>" for column in columns) + "</tr>"
        for row in rows
    )
    return f'<div class="sample"><table><tr>{head}</tr>{body}</table></div>'


def _failure(failure: Mapping[str, Any]) -> str:
    parts = [f"<h4>{_e(failure.get('table'))}: {_e(failure.get('rule'))}</h4>"]
    facts = []
    if failure.get("failing_count") is not None:
        checked = failure.get("rows_checked")
        of = f" of {_value(checked)}" if checked is not None else ""
        facts.append(f"<b>{_value(failure['failing_count'])}</b>{of} failing")
    if failure.get("expectation"):
        column = f" on {_e(failure['column'])}" if failure.get("column") else ""
        facts.append(f"{_e(failure['expectation'])}{column}")
    if failure.get("detail"):
        facts.append(_e(failure["detail"]))
    if facts:
        parts.append("<p>" + " · ".join(facts) + "</p>")
    values = failure.get("sample_values") or []
    if values and not failure.get("sample_rows"):
        parts.append("<p>Failing values: " + ", ".join(_value(value) for value in values) + "</p>")
    rows = failure.get("sample_rows") or []
    if rows:
        parts.append(f'<p class="muted">First {len(rows)} failing rows:</p>' + _rows_table(rows))
    return "\n".join(parts)


def _check_card(check: CheckReport) -> str:
    card = "card" if check.severity != "WARN" else "card warn-card"
    facts = [
        f"severity {_e(check.severity or 'unknown')}",
        "blocking" if check.blocking else "non-blocking (warns only)",
        "dbt test" if check.is_dbt_test else "asset check",
    ]
    parts = [
        f'<section class="{card}" id="{_e(_slug(check))}">',
        f"<h3>{_badge(check.status)} {_e(check.asset)} :: {_e(check.name)}</h3>",
        f'<p class="muted">{" · ".join(facts)}</p>',
    ]
    if check.description:
        parts.append(f"<p>{_e(check.description)}</p>")
    if check.result:
        parts.append(f"<pre>{_e(check.result)}</pre>")
    if check.counts:
        parts.append(f"<p>{_counts(check.counts)}</p>")
    parts += [_failure(failure) for failure in check.failures]
    parts.append("</section>")
    return "\n".join(parts)


def _checks_table(checks: list[CheckReport]) -> str:
    rows = []
    for check in checks:
        name = _e(check.name)
        if check.status != "passed":
            name = f'<a href="#{_e(_slug(check))}">{name}</a>'
        result = (check.result or "").strip()
        if len(result) > 300:
            result = result[:299] + "\u2026"
        rows.append(
            "<tr>"
            f"<td>{_badge(check.status)}</td><td>{_e(check.asset)}</td><td>{name}</td>"
            f"<td>{'dbt test' if check.is_dbt_test else 'check'}</td><td>{_e(check.severity)}</td>"
            f"<td>{_yes_no(check.blocking)}</td><td>{_e(check.description)}</td>"
            f"<td><pre>{_e(result)}</pre></td><td>{_counts(check.counts)}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>status</th><th>asset</th><th>check</th><th>kind</th><th>severity</th>"
        "<th>blocking</th><th>what it checks</th><th>result</th><th>counts</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def sorted_checks(checks: list[CheckReport]) -> list[CheckReport]:
    """Failed first, then not run, then passed; the project's checks before dbt tests."""
    return sorted(checks, key=lambda c: (_STATUS_ORDER.get(c.status, 9), c.is_dbt_test, c.asset, c.name))


def render_report(report: RunReport) -> str:
    """The report as one self-contained HTML document (a pure function of ``report``)."""
    checks = sorted_checks(report.checks)
    failed = [check for check in checks if check.status == "failed"]
    not_run = [check for check in checks if check.status == "not run"]
    blocking = report.blocking_failures
    own = [check for check in checks if not check.is_dbt_test]
    dbt_tests = [check for check in checks if check.is_dbt_test]
    facts = [
        ("run id", report.run_id),
        ("job", report.job_name),
        ("status", report.status),
        ("as-of date", report.as_of_date or "unknown"),
        ("started (UTC)", report.started_at),
        ("finished (UTC)", report.ended_at),
        (
            "checks",
            f"{report.count('passed'):,} passed, {len(failed):,} failed "
            f"({len(blocking):,} blocking), {len(not_run):,} not run; "
            f"{len(own):,} asset checks and {len(dbt_tests):,} dbt tests",
        ),
    ]
    if not failed:
        verdict = "Every check that ran passed."
    elif not blocking:
        verdict = f"{len(failed)} non-blocking check(s) failed (warnings): they did not stop the run."
    else:
        verdict = (
            f"{len(failed)} check(s) failed, {len(blocking)} of them blocking: nothing downstream of a "
            "failed blocking check was built or published."
        )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Validation report {_e(report.status)} {_e(report.run_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Validation report</h1>",
        f'<p><span class="badge {_e(report.status)}">{_e(report.status)}</span> {_e(verdict)}</p>',
        "<table>"
        + "".join(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>" for key, value in facts)
        + "</table>",
    ]
    if report.steps:
        parts.append("<h2>Steps that failed or did not run</h2>")
        parts.append(
            "<table><tr><th>step</th><th>status</th><th>why</th></tr>"
            + "".join(
                f"<tr><td>{_e(step.key)}</td><td>{_badge(step.status)}</td>"
                f"<td><pre>{_e(step.message)}</pre>{_trace(step.trace)}</td></tr>"
                for step in report.steps
            )
            + "</table>"
        )
    parts.append("<h2>Failed checks</h2>")
    parts += [_check_card(check) for check in failed] or ["<p>None.</p>"]
    if not_run:
        parts.append("<h2>Checks that did not run</h2>")
        parts.append(
            '<p class="muted">Planned in this run, but their step did not run (an upstream step or '
            "blocking check failed).</p>"
        )
        parts.append(_checks_table(not_run))
    parts.append("<h2>All checks</h2>")
    parts.append(_checks_table(checks))
    parts.append(
        f'<p class="muted">Generated by lifecycle-mart (orchestration/report.py) from the Dagster event '
        f"log of run {_e(report.run_id)}.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------ collecting
def _plain(value: Any) -> Any:
    """A Dagster metadata value as a plain Python value."""
    for attribute in ("data", "value", "text", "md_str", "path"):
        if hasattr(value, attribute):
            return getattr(value, attribute)
    return value


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _root_error(error: Any) -> str:
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return f"{error.cls_name}: {error.message.strip()[:2000]}" if error is not None else "unknown error"


def _check_report(evaluation: Any, info: tuple[str | None, bool | None] | None) -> CheckReport:
    metadata = {key: _plain(value) for key, value in (evaluation.metadata or {}).items()}
    is_dbt_test = any(key.startswith("dagster_dbt/") for key in metadata) or str(
        metadata.get("unique_id", "")
    ).startswith("test.")
    failures = metadata.pop("failures", None)
    counts = {
        key.removeprefix("dagster_dbt/"): value
        for key, value in metadata.items()
        if key not in _HIDDEN_METADATA
        and (isinstance(value, (int, float)) or (isinstance(value, str) and len(value) <= 200))
    }
    blocking = evaluation.blocking if evaluation.blocking is not None else (info[1] if info else None)
    return CheckReport(
        asset=evaluation.asset_key.to_user_string(),
        name=evaluation.check_name,
        status="passed" if evaluation.passed else "failed",
        severity=evaluation.severity.value if evaluation.severity is not None else None,
        blocking=blocking,
        description=info[0] if info else None,
        result=evaluation.description,
        counts=counts,
        failures=failures if isinstance(failures, list) else [],
        is_dbt_test=is_dbt_test,
    )


def check_info_from_repository(repository: Any) -> dict[tuple[str, str], tuple[str | None, bool]]:
    """(asset, check name) -> (what the check verifies, blocking), from a RepositoryDefinition."""
    graph = repository.asset_graph
    info = {}
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        info[(key.asset_key.to_user_string(), key.name)] = (spec.description, bool(spec.blocking))
    return info


def collect_run_report(
    instance: dg.DagsterInstance,
    run_id: str,
    *,
    check_info: Mapping[tuple[str, str], tuple[str | None, bool]] | None = None,
    as_of_date: str | None = None,
) -> RunReport:
    """The report data of a run recorded in ``instance``, from its event log.

    ``check_info`` adds what each check verifies (see ``check_info_from_repository``). The as-of date
    comes from the run (an ``as_of_date`` in materialization metadata, else the dbt step's
    ``as_of_date=`` log line), else ``as_of_date``.
    """
    from dagster import DagsterEventType

    record = instance.get_run_record_by_id(run_id)
    if record is None:
        raise ValueError(f"no run {run_id} in the Dagster instance at {instance.root_directory}")
    run = record.dagster_run
    info = dict(check_info or {})
    evaluations: dict[tuple[str, str], Any] = {}
    planned: dict[tuple[str, str], None] = {}
    started: set[str] = set()
    failed_steps: dict[str, str] = {}
    traces: dict[str, str] = {}
    not_executed: dict[str, str] = {}
    found_as_of: str | None = None
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            message = entry.user_message or ""
            if entry.step_key and "Not executing" in message:
                not_executed.setdefault(entry.step_key, message)
            if found_as_of is None and (match := _AS_OF_LOG.search(message)):
                found_as_of = match.group(1)
            continue
        kind = event.event_type
        if kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            evaluations[(data.asset_key.to_user_string(), data.check_name)] = data
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            data = event.event_specific_data
            planned[(data.asset_key.to_user_string(), data.check_name)] = None
        elif kind == DagsterEventType.STEP_START:
            started.add(event.step_key)
        elif kind == DagsterEventType.STEP_FAILURE:
            failure = event.step_failure_data
            if failure.user_failure_data and failure.user_failure_data.description:
                failed_steps[event.step_key] = failure.user_failure_data.description
            else:
                failed_steps[event.step_key] = _root_error(failure.error)
            if failure.error is not None:
                traces[event.step_key] = failure.error.to_string()
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            metadata = event.event_specific_data.materialization.metadata or {}
            if "as_of_date" in metadata:
                found_as_of = str(_plain(metadata["as_of_date"]))

    checks = [_check_report(evaluation, info.get(key)) for key, evaluation in evaluations.items()]
    for key in planned:
        if key not in evaluations:
            description, blocking = info.get(key, (None, None))
            checks.append(
                CheckReport(
                    asset=key[0], name=key[1], status="not run", blocking=blocking, description=description
                )
            )

    steps = [StepReport(key, "failed", message, traces.get(key)) for key, message in failed_steps.items()]
    plan_steps: list[str] = []
    if run.execution_plan_snapshot_id:
        snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        plan_steps = [step.key for step in snapshot.steps]
    to_run = set(run.step_keys_to_execute) if run.step_keys_to_execute else None
    for key in plan_steps:
        if key not in started and (to_run is None or key in to_run):
            steps.append(StepReport(key, "not run", not_executed.get(key)))
    return RunReport(
        run_id=run.run_id,
        job_name=run.job_name,
        status=run.status.value,
        as_of_date=found_as_of or as_of_date,
        started_at=_iso(record.start_time),
        ended_at=_iso(record.end_time),
        checks=checks,
        steps=steps,
    )


# --------------------------------------------------------------------------------------- writing
def reports_dir(data_dir: str | Path) -> Path:
    """Where the reports of a deployment go: ``<data dir>/reports``."""
    return Path(data_dir) / REPORTS_DIR_NAME


def _write_atomically(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file in the same folder and one rename: a reader sees the
    old file or the new one, never half of it."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    # Mode 0666 minus the umask, as for any file written here (mkstemp would make it private).
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_report(report: RunReport, directory: Path) -> Path:
    """Write ``<directory>/<run id>.html`` and replace ``<directory>/latest.html``; return the first."""
    directory.mkdir(parents=True, exist_ok=True)
    text = render_report(report)
    path = directory / (re.sub(r"[^A-Za-z0-9_.-]", "_", report.run_id) + ".html")
    _write_atomically(path, text)
    _write_atomically(directory / LATEST_NAME, text)
    return path


def write_run_report(
    instance: dg.DagsterInstance,
    run_id: str,
    directory: Path,
    *,
    check_info: Mapping[tuple[str, str], tuple[str | None, bool]] | None = None,
    as_of_date: str | None = None,
) -> Path:
    """Collect, write and link the report of a finished run: the run gets the tag
    ``lifecycle/validation_report`` = the report's path. Returns the path."""
    report = collect_run_report(instance, run_id, check_info=check_info, as_of_date=as_of_date)
    path = write_report(report, directory).resolve()
    instance.add_run_tags(run_id, {REPORT_TAG: str(path)})
    return path
