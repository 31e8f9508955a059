"""The console logger of `lifecycle run`: Dagster's lines, without stack traces.

A failed step or check is an expected outcome of a run (bad data stops the publication); its
stack trace helps whoever debugs the code, not whoever reads the run's output. This logger prints
each failure as one line ending with its innermost error message; the whole trace stays in the
Dagster event log (the UI) and in the validation report. Runs launched from the UI or the daemon
keep Dagster's own console logger.
"""

from __future__ import annotations

import logging
import sys

import dagster as dg

# The attribute of a Dagster log record that holds its metadata (``dagster._core.log_manager``).
_METADATA_ATTR = "dagster_meta"


def innermost_error(error) -> str:
    """``ClassName: first line of the message`` of the innermost error of a Dagster error chain."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    lines = (error.message or "").strip().splitlines()
    first = lines[0] if lines else ""
    qualified, found, rest = first.partition(": ")
    if found and qualified.split(".")[-1] == error.cls_name:  # "package.module.Class: text"
        first = rest
    return f"{error.cls_name}: {first}".strip()


class BriefFormatter(logging.Formatter):
    """A record of an event that carries an error (a failed step, a failed run) loses the error's
    stack trace and keeps its innermost message on the same line."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        metadata = getattr(record, _METADATA_ATTR, None)
        event = metadata.get("dagster_event") if isinstance(metadata, dict) else None
        error = getattr(getattr(event, "event_specific_data", None), "error", None)
        if error is None:
            return text
        head = text.split("\n\n", 1)[0]
        return f"{head} ({innermost_error(error)}; stack trace in the Dagster event log)"


@dg.logger(
    {
        "log_level": dg.Field(str, is_required=False, default_value="INFO"),
        "name": dg.Field(str, is_required=False, default_value="dagster"),
    },
    description="Dagster's console lines without stack traces (the traces stay in the event log).",
)
def brief_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.Logger(config["name"], level=config["log_level"].upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(BriefFormatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    logger.addHandler(handler)
    return logger


LOGGERS = {"console": dg.colored_console_logger, "brief_console": brief_console_logger}
