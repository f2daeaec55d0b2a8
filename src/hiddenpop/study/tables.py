"""From analysis results to the published tables of a run: headline, triangulation, diagnostics, suppression.

Every analysis step reports its estimates in a common shape (rows with ``quantity`` naming a hidden group,
a combination, a ratio or a prevalence, plus ``method``, ``estimate``, ``se``, ``lower``, ``upper``, ``level``).
This module picks the headline for each combination from the analysis the study file names (falling back to the
design-based estimate, with a warning, when that analysis is unavailable or failed its gates), lines up every
analysis's estimate of the same quantity for the triangulation panel, and applies small-cell suppression to
every table that counts people or cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from hiddenpop.privacy import suppress_small_cells

if TYPE_CHECKING:
    from hiddenpop.study.context import RunContext

HEADLINE_COLUMNS = ["quantity", "label", "analysis", "method", "estimate", "se", "lower", "upper", "level",
                    "unit", "note"]
TRIANGULATION_COLUMNS = ["quantity", "label", "analysis", "method", "estimate", "lower", "upper", "level", "unit",
                         "status", "comparable", "note"]


@dataclass
class Published:
    tables: dict[str, pd.DataFrame]
    suppressed_cells: int
    warnings: list[dict[str, str]] = field(default_factory=list)


def prevalence_name(combination: str, per: int, base: str) -> str:
    return f"{combination}_per_{per}_{base}"


def assemble_tables(context: RunContext) -> Published:
    study = context.study
    results = context.results
    tables: dict[str, pd.DataFrame] = {}
    run_warnings: list[dict[str, str]] = []

    headline_rows = []
    for combination in study.combine.values():
        row, note = _pick(context, combination.name, combination.headline)
        if note:
            run_warnings.append({"analysis": "headline", "warning": note})
        if row is None:
            headline_rows.append({"quantity": combination.name, "label": combination.label, "note": note or
                                  "no analysis produced this quantity"})
            continue
        headline_rows.append({**_core(row), "quantity": combination.name, "label": combination.label,
                              "unit": "people", "note": note})
        # Prevalence: the base is a fixed census count, so the interval scales with the estimate.
        scale = combination.per / study.populations[combination.base]
        headline_rows.append({
            **_core(row),
            "quantity": prevalence_name(combination.name, combination.per, combination.base),
            "label": f"{combination.label} per {combination.per:,} {combination.base}",
            "estimate": row["estimate"] * scale,
            "se": row["se"] * scale,
            "lower": row["lower"] * scale,
            "upper": row["upper"] * scale,
            "unit": f"per {combination.per:,} {combination.base}",
            "note": note,
        })
    for ratio in study.ratios.values():
        row, note = _pick(context, ratio.name, "nsum")
        if row is None:
            headline_rows.append({"quantity": ratio.name, "label": ratio.label, "note": note or
                                  "no analysis produced this ratio"})
            continue
        headline_rows.append({**_core(row), "quantity": ratio.name, "label": ratio.label, "unit": "ratio",
                              "note": "numerator and denominator from the same survey replicates"})
    tables["headline"] = _frame(headline_rows, HEADLINE_COLUMNS)

    tables["triangulation"] = _triangulation(context)

    status_rows = []
    for name, result in results.items():
        status_rows.append({"analysis": name, "title": result.title, "status": result.status,
                            "warnings": len(result.warnings), "message": result.message})
        for warning in result.warnings:
            run_warnings.append({"analysis": name, "warning": warning})
        if result.estimates is not None and len(result.estimates.table):
            tables[f"estimates_{name}"] = result.estimates.table
    tables["analyses"] = pd.DataFrame(status_rows, columns=["analysis", "title", "status", "warnings", "message"])
    tables["warnings"] = pd.DataFrame(run_warnings, columns=["analysis", "warning"])

    suppressed = 0
    for result in results.values():
        suppressed += result.suppressed_elsewhere
        for name, table in result.tables.items():
            if name in result.counts:
                count_columns, dependent = result.counts[name]
                # totals of these counts are published (headline, triangulation): suppression must hold against them
                table, cells = suppress_small_cells(table, count_columns, study.suppression_threshold,
                                                    dependent_columns=dependent, complementary=True)
                suppressed += cells
            tables[name] = table
    return Published(tables=tables, suppressed_cells=suppressed, warnings=run_warnings)


def _core(row: pd.Series) -> dict:
    return {key: row.get(key) for key in ("analysis", "method", "estimate", "se", "lower", "upper", "level")}


def _pick(context: RunContext, quantity: str, preferred: str) -> tuple[pd.Series | None, str]:
    """The row for ``quantity`` from ``preferred``; else from the design-based analysis, saying why."""
    order = [preferred] + [name for name in ("nsum", "nsum_bayes") if name != preferred]
    reasons = []
    for name in order:
        result = context.result(name)
        if result is None:
            reasons.append(f"{name} not run")
            continue
        if not result.usable:
            reasons.append(f"{name} {result.status.replace('_', ' ')}")
            continue
        rows = result.estimates.table
        rows = rows[rows["quantity"] == quantity]
        if rows.empty:
            reasons.append(f"{name} has no estimate of {quantity}")
            continue
        row = rows.iloc[0].copy()
        row["analysis"] = name
        note = "" if name == preferred else (f"headline for {quantity} taken from {name} because "
                                             + "; ".join(reasons))
        return row, note
    return None, f"no usable estimate of {quantity}: " + "; ".join(reasons)


def _triangulation(context: RunContext) -> pd.DataFrame:
    """Every analysis's estimate of each combination and ratio (and the capture-recapture series) side by side."""
    study = context.study
    wanted = {c.name: c.label for c in study.combine.values()}
    wanted.update({r.name: r.label for r in study.ratios.values()})
    rows = []
    for name, result in context.results.items():
        if result.estimates is None:
            continue
        table = result.estimates.table
        for quantity, label in wanted.items():
            for _, row in table[table["quantity"] == quantity].iterrows():
                rows.append({
                    **_core(row), "analysis": name, "quantity": quantity, "label": label,
                    "unit": row.get("unit", "ratio" if quantity in study.ratios else "people"),
                    "status": result.status, "comparable": bool(row.get("comparable", True)),
                    "note": row.get("note", ""),
                })
        extra = table[table["triangulate"].eq(True)] if "triangulate" in table.columns else table.iloc[0:0]
        for _, row in extra.iterrows():
            if row["quantity"] in wanted:
                continue
            rows.append({**_core(row), "analysis": name, "quantity": row["quantity"],
                         "label": row.get("label", row["quantity"]), "unit": row.get("unit", ""),
                         "status": result.status, "comparable": False, "note": row.get("note", "")})
    return _frame(rows, TRIANGULATION_COLUMNS)


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("estimate", "se", "lower", "upper", "level"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("note", "label", "unit", "method", "analysis"):
        if column in frame:
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), "").astype(str)
    return frame
