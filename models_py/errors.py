"""The one exception the models raise when the data cannot support an honest fit.

A :class:`CannotFitError` is not an input error: the input passed every rule, there is just too
little in it (too few repeat customers, too few labelled snapshots, a single class), or the fit
does not converge to usable estimates. Callers publish without the model's scores and say why;
an input that breaks a rule still raises a plain ``ValueError``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CannotFitError"]


class CannotFitError(ValueError):
    """The model cannot be fitted honestly on this data.

    Parameters
    ----------
    message : str
        The reason with the numbers, e.g. "Gamma-Gamma needs at least 30 repeat customers, found 12".
    facts : dict, optional
        The same numbers as JSON-able values (for check metadata and the fit record).
    """

    def __init__(self, message: str, facts: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.facts: dict[str, Any] = dict(facts or {})
