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

from hiddenpop.nsum.adjust import FACTORS, Adjustments
from hiddenpop.nsum.analyses import SENSITIVITY_FACTORS
from hiddenpop.nsum.estimators import break_even
from hiddenpop.privacy import suppress_small_cells

if TYPE_CHECKING:
    from hiddenpop.study.context import RunContext

HEADLINE_COLUMNS = ["quantity", "label", "analysis", "method", "estimate", "se", "lower", "upper", "level",
                    "unit", "basis", "note"]
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
    source: dict[str, str] = {}  # the analysis each headline quantity came from
    for combination in study.combine.values():
        row, note = _pick(context, combination.name, combination.headline)
        if note:
            run_warnings.append({"analysis": "headline", "warning": note})
        if row is None:
            headline_rows.append({"quantity": combination.name, "label": combination.label, "note": note or
                                  "no analysis produced this quantity"})
            continue
        source[combination.name] = row["analysis"]
        basis = "" if note else (f"from {row['analysis']}, as the study file names it"
                                 + (f": {combination.why}" if combination.why else ""))
        headline_rows.append({**_core(row), "quantity": combination.name, "label": combination.label,
                              "unit": "people", "basis": basis, "note": note})
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
        row, note = _ratio_row(context, ratio, source)
        if row is None:
            headline_rows.append({"quantity": ratio.name, "label": ratio.label, "note": note})
            run_warnings.append({"analysis": "headline", "warning": f"{ratio.label}: {note}"})
            continue
        headline_rows.append({**_core(row), "quantity": ratio.name, "label": ratio.label, "unit": "ratio",
                              "basis": note})
    tables["headline"] = _frame(headline_rows, HEADLINE_COLUMNS)
    tables["assumptions"] = _assumptions(context)
    sensitivity, break_even_rows = _sensitivity(context, tables["headline"], source)
    if sensitivity is not None:
        tables["headline_sensitivity"] = sensitivity
        tables["break_even"] = break_even_rows

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


def _ratio_row(context: RunContext, ratio, source: dict[str, str]) -> tuple[pd.Series | None, str]:
    """The ratio from the analysis both its headline sides came from, computed draw by draw there; none when the
    sides came from different analyses (a ratio of two analyses' draws would mix unrelated uncertainty)."""
    sides = [side for side in (ratio.numerator, ratio.denominator) if side in context.study.combine]
    origins = {source.get(side) for side in sides}
    if None in origins:
        return None, "not shown: its numerator or denominator has no headline estimate"
    if len(origins) > 1:
        return None, ("not shown: its numerator and denominator headlines came from different analyses ("
                      + ", ".join(f"{side} from {source[side]}" for side in sides) + ")")
    analysis = origins.pop() if origins else ratio.headline
    result = context.result(analysis)
    rows = result.estimates.table if result is not None and result.usable else None
    rows = None if rows is None else rows[rows["quantity"] == ratio.name]
    if rows is None or rows.empty:
        return None, f"not shown: {analysis} has no estimate of this ratio"
    row = rows.iloc[0].copy()
    row["analysis"] = analysis
    return row, (f"from {row['analysis']}: the headline numerator and denominator divided draw by draw (each "
                 "declared visibility factor they share cancels)")


def _assumptions(context: RunContext) -> pd.DataFrame:
    """Everything that moves a headline number, one row each: the declared visibility factors, the degree
    method of each hidden group, and how the survey's answers were read."""
    study = context.study
    rows = []
    model = context.shared.get("visibility") or Adjustments(declared=study.visibility)  # calibrated when run
    for entry in model.assumptions(study.level):
        rows.append({"assumption": entry["label"], "value": entry["distribution"],
                     "range": f"mean {entry['mean']:.3g}, {entry['level']:.0%} range {entry['lower']:.3g} to "
                              f"{entry['upper']:.3g}",
                     "applies_to": entry["groups"], "source": entry["source"]})
    for factor, label in FACTORS.items():
        if not any(d.factor == factor for d in model.declared):
            rows.append({"assumption": label, "value": "1", "range": "not declared: taken as exactly 1",
                         "applies_to": "every hidden group", "source": "no [visibility] table declares it"})
    for name, degree in study.degrees.items():
        groups = [g.name for g in study.hidden.values() if g.degree == name]
        if groups:
            rows.append({"assumption": f"degree '{name}'", "value": degree.method.replace("_", " "),
                         "range": f"{len(degree.groups)} groups, scaled to {degree.base}",
                         "applies_to": ", ".join(groups), "source": "[degrees." + name + "]"})
    survey = study.specs["survey"]
    rows.append({"assumption": "top-coding of known-group answers",
                 "value": "none" if survey.topcode is None else f"at {survey.topcode}", "range": "",
                 "applies_to": "known groups", "source": "[survey] topcode"})
    rows.append({"assumption": "missing answers", "value": survey.missing, "range": "",
                 "applies_to": "every group", "source": "[survey] missing"})
    return pd.DataFrame(rows, columns=["assumption", "value", "range", "applies_to", "source"])


def _sensitivity(context: RunContext, headline: pd.DataFrame,
                 source: dict[str, str]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The headline quantities across each factor's plausible range (from the design-based analysis's own
    replicates), and when each would fall below the lower end of its interval."""
    result = context.result("nsum")
    if result is None or not result.usable or "nsum_visibility_sensitivity" not in result.tables:
        return None, None
    study = context.study
    wanted = {c.name: c.label for c in study.combine.values()} | {r.name: r.label for r in study.ratios.values()}
    table = result.tables["nsum_visibility_sensitivity"]
    table = table[table["quantity"].isin(wanted)].copy()
    table.insert(1, "label", table["quantity"].map(wanted))
    table["label_factor"] = table["factor"].map(FACTORS)
    rows = []
    for combination in study.combine.values():
        shown = headline[headline["quantity"] == combination.name]
        if shown.empty or source.get(combination.name) != "nsum" or not shown["lower"].notna().all():
            continue
        threshold = float(shown["lower"].iloc[0])
        for factor in SENSITIVITY_FACTORS:
            found = break_even(result.estimates, combination.name, factor, threshold)
            if found is None:
                continue
            rows.append({**found, "label": combination.label, "sentence": _break_even_sentence(
                combination.label, factor, threshold, found)})
    return table.reset_index(drop=True), pd.DataFrame(rows, columns=["quantity", "label", "factor", "threshold",
                                                                     "value", "probability_beyond", "sentence"])


def _break_even_sentence(label: str, factor: str, threshold: float, found: dict) -> str:
    words = FACTORS[factor]
    bound = f"{threshold:,.0f} (the lower end of its interval)"
    if factor == "transmission_rate" and found["value"] > 1:
        return f"No {words} in (0, 1] takes {label.lower()} below {bound}."
    odds = ("" if found["probability_beyond"] is None else
            f"; the declared distribution gives that a {found['probability_beyond']:.0%} chance")
    return f"{label} would fall below {bound} only if the {words} exceeded {found['value']:.3g}{odds}."


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
    for column in ("note", "basis", "label", "unit", "method", "analysis"):
        if column in frame:
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), "").astype(str)
    return frame
