"""What one study run shares between its steps, its tables and its report: the result of each analysis
(:class:`StepResult`) and the run's state (:class:`RunContext`). Kept apart from the runner so that the steps,
the table assembly and the report can use these types without importing the runner that calls them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hiddenpop.results import Estimates
from hiddenpop.study.schema import Study

__all__ = ["RunContext", "StepResult"]


@dataclass
class StepResult:
    """What one analysis produced.

    ``status`` is one of ``ok``, ``warnings`` (ran, with warnings), ``failed_gates`` (ran, but its diagnostics
    failed: the report marks it and it never feeds a headline), ``error`` (the model could not be fitted or the
    family failed), ``unavailable`` (its method family is not installed in this build) or ``skipped``
    (missing what it needs).
    """

    name: str
    title: str
    status: str
    estimates: Estimates | None = None
    message: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # name -> plotly Figure or matplotlib Figure
    # Published tables holding counts of people or cases: table name -> (count columns, dependent columns);
    # cells below the study's suppression threshold are hidden before anything is written.
    counts: dict[str, tuple[list[str], dict[str, list[str]]]] = field(default_factory=dict)
    suppressed_elsewhere: int = 0  # cells the method family suppressed itself (at the study's threshold)
    seconds: float = 0.0

    @property
    def usable(self) -> bool:
        return self.status in ("ok", "warnings") and self.estimates is not None

    @property
    def warnings(self) -> list[str]:
        return list(self.estimates.warnings) if self.estimates is not None else []

    @property
    def notes(self) -> list[str]:
        return list(self.estimates.notes) if self.estimates is not None else []


@dataclass
class RunContext:
    """Shared state of one run: the study, its results so far, and a progress callback."""

    study: Study
    results: dict[str, StepResult] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)  # inputs built once and reused (e.g. the ARD)
    report_progress: Callable[[str], None] = lambda message: None

    def result(self, name: str) -> StepResult | None:
        return self.results.get(name)
