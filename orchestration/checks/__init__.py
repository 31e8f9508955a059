"""Blocking asset checks: Great Expectations suites (expectations/) and mart reconciliation.

A failed blocking check stops every downstream asset, so nothing that failed reaches the
published mart. Each check names the table, the rule and the failing count; its metadata
``failures`` holds one record per failed rule (table, rule, failing count, a sample of the failing
values and rows), which the UI shows as ``failing_rows`` (markdown) and the validation report
(orchestration/report.py) as tables.
"""

from orchestration.checks.expectations import mart_staging__expectations, warehouse_suite_checks
from orchestration.checks.quarantine import (
    empty_days_checks,
    landing_folder_checks,
    quarantine_checks,
    unknown_columns_checks,
)
from orchestration.checks.reconciliation import mart_staging__reconciliation

asset_checks = [
    *quarantine_checks,
    *warehouse_suite_checks,
    mart_staging__expectations,
    mart_staging__reconciliation,
    *empty_days_checks,
    *unknown_columns_checks,
    *landing_folder_checks,
]
