"""The run report: one self-contained HTML file that works offline.

:func:`render_report` fills a Jinja2 template (``templates/report.html.j2``) with the run's published tables
(already through small-cell suppression), its figures (Plotly divs, plus matplotlib PNGs as data URIs), the
manifest's reproducibility facts, and plain-language methods text. plotly.js is inlined exactly once; nothing is
fetched from the network. Raw identifiers and free text never reach the report, because it is built only from
published tables.

Sections (stable element ids, used by the browser test): ``headline``, ``triangulation``, ``diagnostics``,
``rolling``, ``areas``, ``cleaning``, ``cases``, ``methods``, ``reproducibility``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from hiddenpop.study.context import RunContext
    from hiddenpop.study.tables import Published

TEMPLATES = Path(__file__).parent / "templates"
STATUS_TEXT = {
    "ok": "ran",
    "warnings": "ran with warnings",
    "failed_gates": "FAILED its diagnostic gates: not used for headlines",
    "error": "FAILED: no estimates",
    "unavailable": "not available in this build",
    "skipped": "skipped",
}


def format_number(value: Any, kind: str = "auto") -> str:
    """People counts with thousands separators, ratios and rates with 3 significant digits; blanks for NA."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        number = float(value)
        if kind == "count" or (kind == "auto" and abs(number) >= 1000):
            return f"{number:,.0f}"
        if kind == "level":
            return f"{number:.0%}"
        if number == int(number) and abs(number) < 1000:
            return f"{int(number)}"
        return f"{number:,.3g}"
    return str(value)


def _records(frame: pd.DataFrame | None, limit: int | None = None) -> dict[str, Any]:
    if frame is None:
        return {"columns": [], "rows": [], "more": 0}
    shown = frame if limit is None else frame.head(limit)
    rows = []
    suppressed = shown["suppressed"].to_numpy() if "suppressed" in shown.columns else None
    for index, record in enumerate(shown.to_dict(orient="records")):
        cells = []
        for column, value in record.items():
            blank = value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
            if blank and suppressed is not None and bool(suppressed[index]):
                cells.append({"text": "suppressed", "cls": "suppressed"})
            else:
                kind = "level" if column == "level" else "auto"
                cells.append({"text": format_number(value, kind), "cls": "num" if isinstance(value, (int, float))
                              and not isinstance(value, bool) else ""})
        rows.append(cells)
    return {"columns": list(shown.columns), "rows": rows, "more": max(0, len(frame) - len(shown))}


def render_report(context: RunContext, published: Published, manifest: dict[str, Any],
                  figures: dict[str, Any]) -> str:
    """The report as one HTML string."""
    import plotly.offline
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    study = context.study
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters["num"] = format_number
    tables = published.tables
    headline = tables["headline"]
    cards = []
    for combination in study.combine.values():
        people = headline[headline["quantity"] == combination.name]
        rate = headline[(headline["quantity"] != combination.name)
                        & headline["quantity"].str.startswith(f"{combination.name}_per_")]
        cards.append({"label": combination.label, "people": people.iloc[0].to_dict() if len(people) else None,
                      "rate": rate.iloc[0].to_dict() if len(rate) else None})
    for ratio in study.ratios.values():
        row = headline[headline["quantity"] == ratio.name]
        cards.append({"label": ratio.label, "people": row.iloc[0].to_dict() if len(row) else None, "rate": None})

    results = context.results
    failed = [r for r in results.values() if r.status in ("failed_gates", "error")]
    diagnostics_tables = {name: _records(tables[name]) for name in (
        "nsum_consistency", "nsum_degrees", "nsum_bayes_convergence", "nsum_bayes_diagnostics", "nsum_bayes_ppc",
        "nsum_bayes_sensitivity")
        if name in tables}
    auxiliary = {name: _records(tables[name], limit=40) for name in tables if name not in diagnostics_tables
                 and name not in ("headline", "triangulation", "analyses", "warnings", "assumptions", "break_even")
                 and not name.startswith("estimates_")}
    template = environment.get_template("report.html.j2")
    return template.render(
        study=study,
        manifest=manifest,
        cards=cards,
        headline=_records(headline),
        assumptions=_records(tables.get("assumptions")),
        break_even=list(tables["break_even"]["sentence"]) if "break_even" in tables else [],
        triangulation=_records(tables["triangulation"]),
        analyses=[{"name": r.name, "title": r.title, "status": r.status, "status_text": STATUS_TEXT[r.status],
                   "message": r.message, "warnings": r.warnings, "notes": r.notes} for r in results.values()],
        results=results,
        failed=failed,
        diagnostics_tables=diagnostics_tables,
        tables=auxiliary,
        estimates={name: _records(tables[f"estimates_{name}"]) for name in results
                   if f"estimates_{name}" in tables},
        figures=figures,
        run_warnings=published.warnings,
        suppressed_cells=published.suppressed_cells,
        plotly_js=plotly.offline.get_plotlyjs(),
    )
