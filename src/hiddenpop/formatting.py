"""One way to write numbers for people: CLI tables, ``Estimates.summary()``, notebooks, the report and its exports.

Every output path calls :func:`format_value` and :func:`format_interval`, so the same number reads the same
everywhere. The rules, by kind of number:

- ``count``: people, identifiers, cases: a whole number with thousands separators (``466,885``);
- ``ratio`` (also rates, prevalences, factors): 3 significant digits, never in exponent notation for numbers
  people read (``3.62``, ``0.00634``, ``12,300``);
- ``diagnostic``: R-hat, p-values, deviances and other checks: 3 decimals (``1.008``);
- ``percent``: a share as a percentage (``95%``, ``99.5%``);
- ``auto``: whole numbers and numbers of 1,000 or more as counts, anything else as a ratio.

Intervals are always ``lower to upper`` in the kind of their estimate. Column names shown to people come from
:func:`column_label`. This module imports nothing heavy: the CLI loads it on every command.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["COUNT_UNITS", "column_label", "display_table", "fit_columns", "format_interval", "format_value",
           "is_missing", "kind_for", "significant"]

#: Units whose numbers are whole things (the ``unit`` column of headline and triangulation tables).
COUNT_UNITS = frozenset({"people", "identifiers", "cases", "reports", "respondents", "areas", "rows", "referrals"})
#: Columns that hold an estimate or one of its bounds: their kind follows the row's unit.
ESTIMATE_COLUMNS = frozenset({"estimate", "lower", "upper", "se", "mean", "median", "sd", "observed",
                              "lower_observed", "upper_observed", "direct", "direct_se", "national_rate",
                              "national_lower", "national_upper", "area_rate"})
DIAGNOSTIC_COLUMNS = frozenset({"r_hat", "rhat", "max_rhat", "p_value", "pvalue", "deviance", "aic", "bic",
                                "loglik", "log_likelihood", "importance", "slope", "correlation", "bfmi",
                                "relative_error", "chi2", "statistic_value"})
PERCENT_COLUMNS = frozenset({"level", "coverage", "share", "accept_rate", "p_first", "p_rank"})
COUNT_COLUMNS = frozenset({"respondents", "rows_in", "rows_out", "removed", "n", "count", "divergences",
                           "draws", "chains", "bytes", "ess_bulk", "ess_tail", "min_ess", "df", "cells",
                           "victims", "suspects", "cases", "suppressed_cells", "focus_count",
                           "largest_other_count", "agency_referrals", "focus_count_agency_alone"})

#: Words for the identifiers that tables use as column names. Anything not listed is shown with its underscores
#: turned into spaces.
COLUMN_LABELS = {
    "se": "standard error",
    "lower": "lower",
    "upper": "upper",
    "level": "interval level",
    "r_hat": "R-hat",
    "rhat": "R-hat",
    "max_rhat": "largest R-hat",
    "ess_bulk": "effective draws (bulk)",
    "ess_tail": "effective draws (tail)",
    "min_ess": "fewest effective draws",
    "p_value": "p-value",
    "aic": "AIC",
    "bic": "BIC",
    "df": "degrees of freedom",
    "bfmi": "BFMI",
    "n": "number",
    "known_size": "known size",
    "zero_degree": "respondents knowing no one",
    "ratio_to_known": "estimate / known size",
    "outside_interval": "outside its interval",
    "at_boundary": "at a boundary",
    "rows_in": "rows in",
    "rows_out": "rows out",
    "applies_to": "applies to",
    "label_factor": "factor",
    "direct_se": "direct standard error",
    "lower_observed": "lower (observed)",
    "upper_observed": "upper (observed)",
    "window_start": "window start",
    "window_end": "window end",
    "p_first": "probability of ranking first",
    "p_first_mc_se": "simulation error of that probability",
    "p_rank": "probability of this rank",
}


def is_missing(value: Any) -> bool:
    """None, NaN and pandas' NA (checked without importing pandas)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def _number(value: Any) -> float | None:
    """A real number as float, or None for text, booleans and anything else."""
    if type(value).__name__ in ("bool", "bool_"):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    kind = getattr(getattr(value, "dtype", None), "kind", None)  # NumPy scalars
    if kind in ("i", "u", "f") and getattr(value, "ndim", 1) == 0:
        return float(value)
    return None


def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, with thousands separators and no exponent between 1e-6 and
    1e15 (``0.00634``, ``3.62``, ``12,300``)."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return "infinite" if value > 0 else "minus infinite"
    if not 1e-6 <= abs(value) < 1e15:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    rounded = round(value, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > math.floor(math.log10(abs(value))):
        decimals = max(0, decimals - 1)  # 9.996 rounds up to 10.0: one decimal fewer keeps 3 digits
    if decimals == 0:
        rounded_int = round(rounded, digits - 1 - math.floor(math.log10(abs(rounded))))
        return f"{rounded_int:,.0f}"
    return f"{rounded:,.{decimals}f}"


def format_value(value: Any, kind: str = "auto") -> str:
    """``value`` as people read it (see the module docstring for the kinds); blank for a missing value."""
    if is_missing(value):
        return ""
    if type(value).__name__ in ("bool", "bool_"):
        return "yes" if value else "no"
    number = _number(value)
    if number is None:
        return str(value)
    if not math.isfinite(number):
        return significant(number)
    if kind == "count":
        return f"{number:,.0f}"
    if kind in ("ratio", "rate"):
        return significant(number)
    if kind == "diagnostic":
        if 0 < abs(number) < 0.001:
            return "<0.001" if number > 0 else ">-0.001"
        return f"{number:,.3f}"
    if kind == "percent":
        share = number * 100
        return f"{share:.0f}%" if share == round(share) else f"{significant(share)}%"
    if kind != "auto":
        raise ValueError(f"unknown number kind {kind!r}; use count, ratio, diagnostic, percent or auto")
    if number == int(number) or abs(number) >= 1000:
        return f"{number:,.0f}"
    return significant(number)


def format_interval(lower: Any, upper: Any, kind: str = "auto") -> str:
    """``lower to upper`` in one kind (blank when both are missing; a missing side reads "?")."""
    if is_missing(lower) and is_missing(upper):
        return ""
    return f"{format_value(lower, kind) or '?'} to {format_value(upper, kind) or '?'}"


def kind_for(column: str, unit: Any = None) -> str:
    """The kind of the numbers in ``column``; estimate-like columns follow the row's ``unit`` (counts for
    people, identifiers and cases, ratios for rates and everything else)."""
    name = str(column).lower()
    if name in ESTIMATE_COLUMNS or name.startswith(("estimate_", "lower_", "upper_")):
        if isinstance(unit, str):
            return "count" if unit in COUNT_UNITS else "ratio"
        return "auto"
    if name in PERCENT_COLUMNS:
        return "percent"
    if name in DIAGNOSTIC_COLUMNS or name.startswith(("r_hat", "rhat", "p_value")):
        return "diagnostic"
    if name in COUNT_COLUMNS or name.startswith(("ess", "n_", "rows_")):
        return "count"
    return "auto"


def column_label(name: str) -> str:
    """Words for a column identifier (``ratio_to_known`` -> ``estimate / known size``)."""
    return COLUMN_LABELS.get(str(name), str(name).replace("_", " "))


#: Columns a narrow table keeps longest, most important first; any other column is left out before them.
PRIMARY_COLUMNS = ("quantity", "label", "group", "area", "estimate", "interval", "method", "unit")


def display_table(frame: Any, *, interval: bool = True) -> tuple[list[str], list[list[str]]]:
    """A table as people read it: column identifiers and rows of text, every number through
    :func:`format_value` by its column's kind (estimate-like columns by the row's ``unit``) and, with
    ``interval``, ``lower`` and ``upper`` written as one ``interval`` column after the estimate. ``frame`` is a
    pandas DataFrame (read through ``columns`` and ``itertuples``, so this module needs no pandas import)."""
    columns = [str(c) for c in frame.columns]
    merged = interval and "lower" in columns and "upper" in columns
    if merged and "interval" in columns:  # a column saying how the interval was made keeps its own place
        columns = ["interval_method" if c == "interval" else c for c in columns]
    names = list(columns)
    if merged:
        names = [c for c in names if c not in ("lower", "upper")]
        names.insert(names.index("estimate") + 1 if "estimate" in names else len(names), "interval")
    position = {c: i for i, c in enumerate(columns)}
    rows = []
    for record in frame.itertuples(index=False, name=None):
        unit = record[position["unit"]] if "unit" in position else None
        cells = []
        for name in names:
            if name == "interval" and merged:
                cells.append(format_interval(record[position["lower"]], record[position["upper"]],
                                             kind_for("lower", unit)))
            else:
                cells.append(format_value(record[position[name]], kind_for(name, unit)))
        rows.append(cells)
    return names, rows


def fit_columns(names: list[str], rows: list[list[str]], width: int) -> list[str]:
    """The columns to keep so the table fits ``width`` characters (3 characters of rule and padding per column):
    columns outside :data:`PRIMARY_COLUMNS` are left out from the right, then primary ones, least important
    first, never the first column."""
    def needed(kept: list[str]) -> int:
        return 1 + sum(3 + max([len(column_label(n))] + [len(r[names.index(n)]) for r in rows]) for n in kept)

    kept = list(names)
    order = [n for n in reversed(names) if n not in PRIMARY_COLUMNS] + \
        [n for n in reversed(PRIMARY_COLUMNS) if n in names[1:]]
    for name in order:
        if needed(kept) <= width:
            break
        kept.remove(name)
    return kept
