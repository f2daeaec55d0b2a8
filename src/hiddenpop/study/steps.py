"""The analyses a study can run, each a thin adapter around its method family's public API.

A step never re-implements an estimator: it builds the family's input contract from the study file, calls the
family, and reshapes the family's :class:`~hiddenpop.results.Estimates` into the run's common vocabulary
(``quantity`` = a hidden group, combination or ratio name of the study file). When a family is not installed in
this build, the step reports ``unavailable`` and the report says so; it never pretends.

The one computation done here is the casework summary (totals and the victims-per-suspect ratio among cases),
which is descriptive and belongs to no estimator family.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from hiddenpop.data.io import read_table
from hiddenpop.errors import DataError, locate
from hiddenpop.results import Estimates
from hiddenpop.study.runner import RunContext, StepResult
from hiddenpop.study.schema import Study

TITLES = {
    "nsum": "Design-based network scale-up",
    "nsum_bayes": "Bayesian network scale-up",
    "casework": "Casework counts",
    "report_log": "Capture-recapture on the report log",
    "smallarea": "Area estimates",
    "cases": "Case-file typologies",
}


def pipeline(study: Study) -> list[tuple[str, Callable[[RunContext], StepResult]]]:
    """The enabled steps in run order (design-based first: later steps may use its results)."""
    order = [("nsum", nsum_step), ("nsum_bayes", nsum_bayes_step), ("casework", casework_step),
             ("report_log", report_log_step), ("smallarea", smallarea_step), ("cases", cases_step)]
    return [(name, function) for name, function in order if study.enabled(name)]


def _family(module: str, *names: str) -> tuple[Any, ...] | None:
    """The named public functions of a family, or ``None`` when the family has not shipped them."""
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        return None
    found = tuple(getattr(loaded, name, None) for name in names)
    return None if any(item is None for item in found) else found


def _unavailable(name: str, what: str) -> StepResult:
    return StepResult(name=name, title=TITLES[name], status="unavailable",
                      message=f"{what} is not available in this build of hiddenpop; the step was not run")


# --------------------------------------------------------------------------------------------- casework
def casework_step(context: RunContext) -> StepResult:
    """Casework totals and the victims-per-suspect ratio among cases, with an exact interval.

    With V victims brought to safety and S suspects arrested (independent Poisson counts), V given V + S is
    Binomial(V + S, p) with p = lambda_V / (lambda_V + lambda_S), so the ratio R = p / (1 - p) gets the exact
    (Clopper-Pearson) interval of p transformed. This describes the cases the authorities reached; it equals the
    population ratio only if victims and traffickers are detected at the same rate, which casework rarely
    guarantees (see docs/report.md).
    """
    study = context.study
    settings = study.analyses["casework"]
    path = settings["file"]
    frame = read_table(path)
    for role in ("victims", "suspects"):
        column = settings[role]
        if column not in frame.columns:
            raise DataError(f"{locate(path.name, column=column)}column not found; columns are "
                            f"{', '.join(map(str, frame.columns))}; fix [analyses.casework] key {role!r}")
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values < 0) | (values != np.floor(values))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise DataError(f"{locate(path.name, row, column)}expected a non-negative whole count; fix the value")
    victims = int(frame[settings["victims"]].sum())
    suspects = int(frame[settings["suspects"]].sum())
    level = study.level
    alpha = 1 - level
    total = victims + suspects
    ratio_name = settings.get("ratio") or next(iter(study.ratios), "victims_per_suspect")
    rows = [
        {"quantity": "casework_victims", "method": "count", "estimate": float(victims), "unit": "people",
         "label": "Victims brought to safety (casework)", "triangulate": True, "comparable": False,
         "note": "observed cases: a floor for the surveyed areas, not a population estimate"},
        {"quantity": "casework_suspects", "method": "count", "estimate": float(suspects), "unit": "people",
         "label": "Suspects arrested (casework)", "triangulate": True, "comparable": False,
         "note": "observed cases: a floor for the surveyed areas, not a population estimate"},
    ]
    warnings = []
    if suspects > 0 and victims > 0:
        lower_p = stats.beta.ppf(alpha / 2, victims, suspects + 1)
        upper_p = stats.beta.ppf(1 - alpha / 2, victims + 1, suspects)
        rows.append({"quantity": ratio_name, "method": "casework ratio (exact)", "estimate": victims / suspects,
                     "lower": lower_p / (1 - lower_p), "upper": upper_p / (1 - upper_p), "level": level,
                     "unit": "ratio", "comparable": True,
                     "note": "victims per suspect among cases; assumes equal detection of victims and suspects"})
    else:
        warnings.append("casework has no victims or no suspects; the casework ratio is not defined")
    estimates = Estimates.from_rows(rows, settings={"file": path.name, "victims": settings["victims"],
                                                    "suspects": settings["suspects"]},
                                    warnings=warnings, notes=[f"{len(frame)} casework rows, {total} cases"])
    by_area_columns = [c for c in (settings.get("area"), settings["victims"], settings["suspects"]) if c]
    by_area = frame[by_area_columns].copy()
    return StepResult(
        name="casework", title=TITLES["casework"], status="warnings" if warnings else "ok",
        estimates=estimates, tables={"casework_by_area": by_area},
        counts={"casework_by_area": ([settings["victims"], settings["suspects"]], {})},
    )


# --------------------------------------------------------------------------------------------- network scale-up
def nsum_step(context: RunContext) -> StepResult:
    return _unavailable("nsum", "design-based network scale-up (hiddenpop.nsum.estimate)")


def nsum_bayes_step(context: RunContext) -> StepResult:
    return _unavailable("nsum_bayes", "Bayesian network scale-up (hiddenpop.nsum.bayes)")


def report_log_step(context: RunContext) -> StepResult:
    return _unavailable("report_log", "report-log capture-recapture (hiddenpop.capture.events/rolling)")


def smallarea_step(context: RunContext) -> StepResult:
    return _unavailable("smallarea", "small-area estimation (hiddenpop.smallarea)")


def cases_step(context: RunContext) -> StepResult:
    return _unavailable("cases", "case-file summaries (hiddenpop.cases)")
