"""Coded case-file summaries: victim, customer, trafficker and offending-process typologies.

Input: one row per case (e.g. 92 law-enforcement case files in Study 1) and a codebook saying what each
column is. The codebook has one row per column with

``column``
    the case-file column name;
``role``
    ``victim``, ``customer``, ``trafficker``, ``offending_process`` or ``case`` (case-level facts such as the
    source of the file);
``type``
    ``categorical`` (one value per case), ``multi_select`` (several values in one cell, separated by
    ``separator``, default ``;``), ``numeric``, ``free_text`` (never summarised or echoed: dropped with a note,
    or refused) or ``id`` (the case id: checked for duplicates, never output);
``levels`` (optional)
    the allowed codes, separated by ``;`` (also fixes the order of the output);
``missing`` (optional)
    codes that mean "not recorded", separated by ``;`` (empty cells are always missing);
``label`` (optional)
    a readable name.

Estimators (``n`` = cases with a recorded value):

* counts and shares ``x / n`` of each code with Wilson score intervals (Wilson 1927; Brown, Cai and DasGupta
  2001). For multi-select questions each option is a yes/no indicator, so shares do not add up to 1;
* means with Student-t intervals ``mean +/- t_{n-1, 1-alpha/2} s / sqrt(n)``, plus the median and the total
  (e.g. victims across all cases);
* cross-tabulations of two coded columns (for example trafficker relationship by victim sex) with shares
  within each category of the second column.

Assumptions and failure modes: the cases are treated as a simple random sample of a larger population of
cases; when they are a census (all files of an agency) the intervals describe a hypothetical superpopulation
and when they are a convenience sample (as with Study 1's NBI-AHTRAD files) they do not generalise at all. Shares
are over recorded values: if "not recorded" is related to the answer the shares are biased (the number missing
is always reported so a reader can judge). The t interval assumes the mean is approximately normal (poor for
very skewed counts with few cases).

Privacy: cells with counts in ``1 .. threshold-1`` are suppressed (``hiddenpop.privacy.suppress_small_cells``)
together with the shares and intervals derived from them, and a second cell is suppressed where a single
suppressed cell could be recovered by subtraction from the reported total (complementary suppression).
Free-text columns and case ids never reach the output, and error messages give file, row and column but never
the offending value.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenpop.cases.specs import FREE_TEXT_POLICIES, CasesSpec
from hiddenpop.data.io import read_table
from hiddenpop.distributions import t_quantile
from hiddenpop.errors import ConfigError, DataError, PrivacyError, locate
from hiddenpop.privacy import DEFAULT_SUPPRESSION_THRESHOLD, suppress_small_cells
from hiddenpop.results import Estimates
from hiddenpop.review.proportion import wilson_interval
from hiddenpop.specs import to_dict

ROLES = ("victim", "customer", "trafficker", "offending_process", "case")
TYPES = ("categorical", "multi_select", "numeric", "free_text", "id")
SUMMARY_COLUMNS = ["role", "variable", "label", "category", "count", "n_valid", "n_missing"]


@dataclass
class CodebookEntry:
    column: str
    role: str
    type: str
    label: str
    levels: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    separator: str = ";"
    row: int = 0


def _normalise(value: str) -> str:
    return str(value).strip().lower().replace("-", "_").replace(" ", "_")


def _split(value: object, separator: str = ";") -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return []
    return [item.strip() for item in str(value).split(separator) if item.strip()]


def read_codebook(codebook: pd.DataFrame, *, source: str | None = None) -> list[CodebookEntry]:
    """Validate a codebook table (see module docstring) and return its entries."""
    for column in ("column", "role", "type"):
        if column not in codebook.columns:
            raise DataError(
                f"{locate(source)}codebook needs columns column, role, type (optional: label, levels, missing, "
                f"separator); missing {column!r}"
            )
    entries: list[CodebookEntry] = []
    seen: set[str] = set()
    for i, record in enumerate(codebook.to_dict(orient="records"), start=1):
        name = record.get("column")
        if name is None or pd.isna(name) or not str(name).strip():
            raise DataError(f"{locate(source, i, 'column')}column name is missing")
        name = str(name).strip()
        if name in seen:
            raise DataError(
                f"{locate(source, i, 'column')}column {name!r} is described twice in the codebook"
            )
        seen.add(name)
        role = _normalise(record.get("role", ""))
        if role not in ROLES:
            raise DataError(f"{locate(source, i, 'role')}role must be one of {list(ROLES)}")
        kind = _normalise(record.get("type", ""))
        if kind not in TYPES:
            raise DataError(f"{locate(source, i, 'type')}type must be one of {list(TYPES)}")
        separator = record.get("separator")
        separator = ";" if separator is None or pd.isna(separator) or not str(separator) else str(separator)
        label = record.get("label")
        label = name if label is None or pd.isna(label) or not str(label).strip() else str(label).strip()
        levels = _split(record.get("levels"))
        if len(set(levels)) != len(levels):
            raise DataError(f"{locate(source, i, 'levels')}a level is listed twice")
        if levels and kind in ("numeric", "free_text", "id"):
            raise DataError(
                f"{locate(source, i, 'levels')}levels only apply to categorical and multi_select columns"
            )
        if not levels and kind in ("categorical", "multi_select"):
            # categories found in the data would be published as labels: an e-mail address, a phone number
            raise DataError(
                f"{locate(source, i, 'levels')}{kind} column {name!r} has no levels; list its categories in the "
                "codebook (values outside them are refused, so nothing unexpected is published)"
            )
        entries.append(
            CodebookEntry(
                column=name,
                role=role,
                type=kind,
                label=label,
                levels=levels,
                missing=_split(record.get("missing")),
                separator=separator,
                row=i,
            )
        )
    return entries


def _is_missing(value: object, entry: CodebookEntry) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return True
    text = str(value).strip()
    return not text or text in entry.missing


def _categorical_values(series: pd.Series, entry: CodebookEntry, source: str | None) -> list[str | None]:
    out: list[str | None] = []
    for i, value in enumerate(series.tolist(), start=1):
        if _is_missing(value, entry):
            out.append(None)
            continue
        text = str(value).strip()
        if isinstance(value, float) and value == int(value):
            text = str(int(value))
        if entry.levels and text not in entry.levels:
            raise DataError(
                f"{locate(source, i, entry.column)}value is not one of the codebook levels {entry.levels}; recode it "
                "or add the level (or a missing code) to the codebook"
            )
        out.append(text)
    return out


def _multi_values(series: pd.Series, entry: CodebookEntry, source: str | None) -> list[list[str] | None]:
    out: list[list[str] | None] = []
    for i, value in enumerate(series.tolist(), start=1):
        if _is_missing(value, entry):
            out.append(None)
            continue
        items = _split(value, entry.separator)
        items = [item for item in items if item not in entry.missing]
        if not items:
            out.append(None)
            continue
        if entry.levels:
            if any(item not in entry.levels for item in items):
                raise DataError(
                    f"{locate(source, i, entry.column)}a selected option is not one of the codebook levels "
                    f"{entry.levels}; recode it or add the level to the codebook"
                )
        out.append(list(dict.fromkeys(items)))
    return out


def _numeric_values(series: pd.Series, entry: CodebookEntry, source: str | None) -> np.ndarray:
    out = np.full(len(series), np.nan)
    for i, value in enumerate(series.tolist(), start=1):
        if _is_missing(value, entry):
            continue
        try:
            number = float(str(value).strip())
        except ValueError:
            raise DataError(
                f"{locate(source, i, entry.column)}value is not a number; fix it or declare its code in the "
                "codebook's missing column"
            ) from None
        if not math.isfinite(number):
            raise DataError(f"{locate(source, i, entry.column)}value is not a finite number")
        out[i - 1] = number
    return out


def _complementary(published: pd.DataFrame, group: list[str], count: str, dependents: list[str]) -> int:
    """Suppress a second cell in every group where exactly one cell is suppressed (returns cells added)."""
    added = 0
    keys = group[0] if len(group) == 1 else group
    for _, index in published.groupby(keys, sort=False, dropna=False).groups.items():
        rows = published.loc[index]
        hidden = rows[count].isna() & rows["suppressed"]
        if int(hidden.sum()) != 1:
            continue
        visible = rows[~rows["suppressed"] & rows[count].notna()]
        visible = visible[pd.to_numeric(visible[count], errors="coerce") > 0]
        if visible.empty:
            continue
        target = pd.to_numeric(visible[count], errors="coerce").idxmin()
        for column in [count, *dependents]:
            published[column] = published[column].astype("object")
            published.loc[target, column] = pd.NA
        published.loc[target, "suppressed"] = True
        added += 1
    return added


#: The column types summarised as shares of their levels: how a column is read, whether a case's value counts
#: for a level, and the method named in the table.
_SHARE_TYPES = {
    "categorical": (_categorical_values, operator.eq, "share (Wilson)"),
    "multi_select": (_multi_values, operator.contains, "share selecting (Wilson)"),
}


def summarize_cases(
    cases: pd.DataFrame,
    codebook: list[CodebookEntry],
    *,
    threshold: int = DEFAULT_SUPPRESSION_THRESHOLD,
    level: float = 0.95,
    by: str | None = None,
    crosstabs: list[tuple[str, str]] | None = None,
    free_text: str = "drop",
    source: str | None = None,
    codebook_source: str | None = None,
) -> Estimates:
    """Counts, shares (Wilson), means (t) and cross-tabs of coded case files, small cells suppressed.

    ``by`` cross-tabulates every categorical and multi-select column against one categorical column;
    ``crosstabs`` lists explicit ``(row_variable, column_variable)`` pairs. ``free_text="drop"`` drops
    free-text columns with a note, ``"refuse"`` raises :class:`PrivacyError`. Returns ``Estimates`` whose
    table holds one row per (variable, category) with ``role``, ``count``, ``n_valid`` and ``n_missing`` and
    the auxiliary tables ``crosstabs`` and ``suppression``. Every count in every table is suppressed when
    in ``1 .. threshold-1``.
    """
    if threshold < 1:
        raise ConfigError(f"suppression threshold must be at least 1 (got {threshold})")
    if free_text not in FREE_TEXT_POLICIES:
        raise ConfigError(f"free_text must be one of {', '.join(FREE_TEXT_POLICIES)} (got {free_text!r})")
    if not (0 < level < 1):
        raise ConfigError(f"level must be between 0 and 1 (got {level!r})")
    if len(cases) == 0:
        raise DataError(f"{locate(source)}the case file has no rows")
    entries = {e.column: e for e in codebook}
    for entry in codebook:
        if entry.column not in cases.columns:
            raise DataError(
                f"{locate(codebook_source, entry.row, 'column')}codebook names column {entry.column!r}, which is "
                "not in the case file; fix the name or remove the row"
            )
    notes: list[str] = []
    warnings: list[str] = []
    undocumented = [c for c in cases.columns if c not in entries]
    if undocumented:
        notes.append(
            f"{len(undocumented)} case-file column(s) not in the codebook were ignored (not summarised, not output): "
            f"{undocumented}"
        )
    text_columns = [e.column for e in codebook if e.type == "free_text"]
    if text_columns:
        if free_text == "refuse":
            raise PrivacyError(
                f"{locate(source)}free-text column(s) {text_columns} are in the codebook; free text is never "
                "summarised or output: remove them from the case file or use --free-text drop"
            )
        notes.append(f"{len(text_columns)} free-text column(s) dropped unread: {text_columns}")
    for entry in codebook:
        if entry.type == "id":
            ids = cases[entry.column]
            duplicated = ids.duplicated(keep="first") & ids.notna()
            if duplicated.any():
                row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 1
                raise DataError(
                    f"{locate(source, row, entry.column)}case id appears more than once; one row per case"
                )
            missing = ids.isna()
            if missing.any():
                row = int(np.flatnonzero(missing.to_numpy())[0]) + 1
                raise DataError(f"{locate(source, row, entry.column)}case id is missing")

    n_cases = len(cases)
    categorical: dict[str, list[str | None]] = {}
    multi: dict[str, list[list[str] | None]] = {}
    rows: list[dict] = []
    z_level = level
    for entry in codebook:
        base = {"role": entry.role, "variable": entry.column, "label": entry.label, "level": z_level}
        if entry.type in _SHARE_TYPES:
            read, has, method = _SHARE_TYPES[entry.type]
            values = read(cases[entry.column], entry, source)
            (categorical if entry.type == "categorical" else multi)[entry.column] = values
            present = [v for v in values if v is not None]
            n_valid = len(present)
            for category in entry.levels:
                count = sum(1 for v in present if has(v, category))
                rows.append(_share_row(base, category, count, n_valid, n_cases, level, method))
        elif entry.type == "numeric":
            values = _numeric_values(cases[entry.column], entry, source)
            present = values[~np.isnan(values)]
            n_valid = len(present)
            row = {
                **base,
                "quantity": entry.column,
                "method": "mean (t interval)",
                "category": "",
                "count": n_valid,
                "n_valid": n_valid,
                "n_missing": n_cases - n_valid,
            }
            if n_valid:
                mean = float(present.mean())
                sd = float(present.std(ddof=1)) if n_valid > 1 else math.nan
                se = sd / math.sqrt(n_valid) if n_valid > 1 else math.nan
                t = t_quantile(0.5 + level / 2.0, n_valid - 1) if n_valid > 1 else math.nan
                row.update(
                    {
                        "estimate": mean,
                        "se": se,
                        "lower": mean - t * se,
                        "upper": mean + t * se,
                        "sd": sd,
                        "median": float(np.median(present)),
                        "total": float(present.sum()),
                    }
                )
            rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("sd", "median", "total"):
        if column not in table.columns:
            table[column] = np.nan
    dependents = ["estimate", "se", "lower", "upper", "sd", "median", "total"]
    published, n_primary = suppress_small_cells(
        table, ["count"], threshold, dependent_columns={"count": dependents}
    )
    # n_valid below the threshold (numeric rows, tiny variables) identifies too: suppress those rows' statistics
    small_valid = pd.to_numeric(published["n_valid"], errors="coerce").between(1, threshold - 1)
    if small_valid.any():
        for column in ["n_valid", "n_missing", *dependents]:
            published[column] = published[column].astype("object")
            published.loc[small_valid, column] = pd.NA
        published.loc[small_valid, "suppressed"] = True
    is_share = published["method"].str.startswith("share (")
    n_secondary = 0
    if is_share.any():
        shares = published[is_share].copy()
        n_secondary = _complementary(shares, ["variable"], "count", dependents)
        published.loc[is_share] = shares
    cross_tables = []
    pairs = list(crosstabs or [])
    if by is not None:
        if by not in categorical:
            raise ConfigError(f"--by {by!r} must be a categorical column of the codebook")
        pairs.extend((column, by) for column in [*categorical, *multi] if column != by)
    for row_var, col_var in pairs:
        for name in (row_var, col_var):
            if name not in categorical and name not in multi:
                raise ConfigError(
                    f"cross-tab variable {name!r} must be a categorical or multi_select codebook column"
                )
        if col_var not in categorical:
            raise ConfigError(
                f"cross-tab column variable {col_var!r} must be categorical (one value per case)"
            )
        cross_tables.append(_crosstab(row_var, col_var, categorical, multi, entries, level))
    cross = pd.concat(cross_tables, ignore_index=True) if cross_tables else pd.DataFrame()
    n_cross = 0
    n_cross_secondary = 0
    if len(cross):
        cross, n_cross_primary = suppress_small_cells(
            cross,
            ["count", "column_total"],
            threshold,
            dependent_columns={
                "count": ["share", "lower", "upper"],
                "column_total": ["count", "share", "lower", "upper"],
            },
        )
        n_cross = n_cross_primary
        for _ in range(20):  # alternate column- and row-wise complementary suppression until stable
            added = _complementary(
                cross,
                ["row_variable", "column_variable", "column_category"],
                "count",
                ["share", "lower", "upper"],
            )
            added += _complementary(
                cross,
                ["row_variable", "column_variable", "row_category"],
                "count",
                ["share", "lower", "upper"],
            )
            n_cross_secondary += added
            if not added:
                break
    suppression = pd.DataFrame(
        [
            {
                "table": "summary",
                "primary_cells": n_primary,
                "complementary_cells": n_secondary,
                "rows_with_small_n": int(small_valid.sum()),
                "threshold": threshold,
            },
            {
                "table": "crosstabs",
                "primary_cells": n_cross,
                "complementary_cells": n_cross_secondary,
                "rows_with_small_n": 0,
                "threshold": threshold,
            },
        ]
    )
    total_hidden = n_primary + n_secondary + int(small_valid.sum()) + n_cross + n_cross_secondary
    if total_hidden:
        notes.append(
            f"{total_hidden} cell(s) suppressed (counts below {threshold} and complementary cells); their counts, "
            "shares and intervals are blank"
        )
    multi_present = [e.column for e in codebook if e.type == "multi_select"]
    if multi_present:
        notes.append(
            "multi-select shares are per option (a case can select several), so they need not sum to 1"
        )
    return Estimates(
        table=published,
        settings={
            "threshold": threshold,
            "level": level,
            "by": by,
            "crosstabs": [list(p) for p in pairs],
            "free_text": free_text,
        },
        warnings=warnings,
        notes=notes,
        diagnostics={
            "cases": n_cases,
            "variables_summarised": int(published["variable"].nunique()) if len(published) else 0,
            "cells_suppressed": total_hidden,
        },
        tables={"crosstabs": cross, "suppression": suppression},
    )


def _share_row(
    base: dict, category: str, count: int, n_valid: int, n_cases: int, level: float, method: str
) -> dict:
    share = count / n_valid if n_valid else math.nan
    lower, upper = wilson_interval(count, n_valid, level) if n_valid else (math.nan, math.nan)
    return {
        **base,
        "quantity": base["variable"],
        "method": method,
        "category": category,
        "estimate": share,
        "se": math.sqrt(share * (1 - share) / n_valid) if n_valid else math.nan,
        "lower": lower,
        "upper": upper,
        "count": count,
        "n_valid": n_valid,
        "n_missing": n_cases - n_valid,
    }


def _crosstab(row_var, col_var, categorical, multi, entries, level) -> pd.DataFrame:
    col_values = categorical[col_var]
    row_values = categorical.get(row_var)
    row_multi = multi.get(row_var)
    col_levels = entries[col_var].levels
    if row_values is not None:
        row_levels = entries[row_var].levels
    else:
        row_levels = entries[row_var].levels
    records = []
    for col_category in col_levels:
        in_column = [i for i, v in enumerate(col_values) if v == col_category]
        if row_values is not None:
            valid = [i for i in in_column if row_values[i] is not None]
        else:
            valid = [i for i in in_column if row_multi[i] is not None]
        for row_category in row_levels:
            if row_values is not None:
                count = sum(1 for i in valid if row_values[i] == row_category)
            else:
                count = sum(1 for i in valid if row_category in row_multi[i])
            n_valid = len(valid)
            lower, upper = wilson_interval(count, n_valid, level) if n_valid else (math.nan, math.nan)
            records.append(
                {
                    "row_role": entries[row_var].role,
                    "row_variable": row_var,
                    "row_category": row_category,
                    "column_role": entries[col_var].role,
                    "column_variable": col_var,
                    "column_category": col_category,
                    "count": count,
                    "column_total": n_valid,
                    "share": count / n_valid if n_valid else math.nan,
                    "lower": lower,
                    "upper": upper,
                    "level": level,
                }
            )
    return pd.DataFrame(records)


def summarize_files(cases: str | Path, codebook: str | Path, spec: CasesSpec) -> Estimates:
    """Read a coded case file and its codebook (both as text: only empty cells and the codebook's missing codes
    are missing) and summarise them with ``spec``; the command line and a study both call this."""

    cases, codebook = Path(cases), Path(codebook)
    pairs = []
    for item in spec.crosstab:
        parts = item.split(":")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise ConfigError("--crosstab expects ROW:COLUMN, two column names separated by a colon")
        pairs.append((parts[0].strip(), parts[1].strip()))
    entries = read_codebook(read_table(codebook, as_text=True), source=codebook.name)
    result = summarize_cases(read_table(cases, as_text=True), entries, threshold=spec.threshold, level=spec.level,
                             by=spec.by, crosstabs=pairs, free_text=spec.free_text, source=cases.name,
                             codebook_source=codebook.name)
    result.settings = {**to_dict(spec), **result.settings}
    return result
