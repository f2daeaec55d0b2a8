"""The run report: one self-contained HTML file that works offline, printed to ``report.pdf`` and summarised in
``summary.docx`` (:mod:`hiddenpop.study.report.exports`).

:func:`render_report` fills a Jinja2 template (``templates/report.html.j2``) with the run's published tables
(already through small-cell suppression), its figures (:mod:`.figures`), the words of :mod:`.content` and the
manifest's reproducibility facts. plotly.js is inlined exactly once; nothing is fetched from the network. Raw
identifiers and free text never reach the report, because it is built only from published tables.

The first screen (``#summary``) answers how many, how sure and compared with what: the headline in words and
figures, the map, the methods side by side and the three caveats that matter most. Then the assumptions,
triangulation, areas, report log, casework, countries compared and methods; diagnostics, convergence, audits and
full tables sit in a collapsed technical appendix (``#appendix``), long tables as their top rows with the whole
table in ``tables/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hiddenpop.formatting import format_value
from hiddenpop.study.report.content import (
    TOP_ROWS,
    area_rates,
    caveats,
    compare_sentences,
    headline_items,
    level_text,
    methods_paragraph,
    national_sentence,
    records,
)

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
#: Diagnostic tables shown in the appendix, in this order, with their titles.
DIAGNOSTIC_TABLES = {
    "nsum_consistency": "Known-group consistency",
    "nsum_recall": "Recall curve of the known groups",
    "nsum_degrees": "Network sizes",
    "nsum_bayes_convergence": "Bayesian model: convergence",
    "nsum_bayes_diagnostics": "Bayesian model: diagnostics",
    "nsum_bayes_ppc": "Bayesian model: posterior predictive checks",
    "nsum_bayes_sensitivity": "Bayesian model: prior sensitivity",
    "nsum_bayes_kfold": "Bayesian models compared: K-fold cross-validation by PSU",
    "nsum_bayes_residuals": "Bayesian model: quantile residuals",
    "nsum_bayes_correlation": "Bayesian model: correlation of reporting biases",
    "nsum_bayes_covariates": "Bayesian model: covariate effects",
}
#: Tables the main sections show themselves (everything else is listed in the appendix).
SHOWN_TABLES = {"headline", "triangulation", "analyses", "warnings", "assumptions", "break_even", "area_estimates",
                "stream_importance", "area_national_consistency", "rolling_series", "cleaning_audit",
                "headline_sensitivity", "nsum_visibility_sensitivity", "compare_countries", "compare_ratios",
                "compare_regions", "compare_ranks", "compare_agencies", "compare_leave_one_out"}
TRIANGULATION_COLUMNS = ["label", "analysis", "method", "estimate", "lower", "upper", "unit", "status", "note"]
AREA_COLUMNS = ["area", "name", "surveyed", "estimate", "lower", "upper", "method"]
COUNTRY_COLUMNS = ["country", "name", "region", "count", "estimate", "lower", "upper", "unit", "observed_rank",
                   "p_first", "rank_lower", "rank_upper"]
RATIO_COLUMNS = ["quantity", "name", "method", "estimate", "lower", "upper", "p_value", "largest_other"]
LEAVE_ONE_OUT_COLUMNS = ["left_out", "agency_referrals", "focus_count", "focus_rank", "p_first", "largest_other_name",
                         "largest_other_count", "estimate", "lower", "upper", "focus_count_agency_alone",
                         "focus_rank_agency_alone"]


def render_report(context: RunContext, published: Published, manifest: dict[str, Any],
                  figures: dict[str, Any]) -> str:
    """The report as one HTML string."""
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.offline
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    study = context.study
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters["num"] = format_value
    tables = published.tables
    items = headline_items(context, tables["headline"])
    results = context.results
    titles = {name: result.title for name, result in results.items()}
    triangulation = tables["triangulation"].assign(analysis=lambda f: f["analysis"].map(titles).fillna(f["analysis"]))
    areas, area_unit = area_rates(context, tables)
    area_table = None
    if areas is not None:
        ordered = areas.sort_values("estimate", ascending=False, kind="stable")
        area_table = records(ordered.assign(unit="rate"), limit=TOP_ROWS, columns=AREA_COLUMNS, interval=True)
    diagnostics = {name: {"title": title, **records(tables[name], limit=40)}
                   for name, title in DIAGNOSTIC_TABLES.items() if name in tables}
    others = {name: records(tables[name], limit=TOP_ROWS) for name in sorted(tables)
              if name not in SHOWN_TABLES and name not in DIAGNOSTIC_TABLES and not name.startswith("estimates_")}
    level = level_text(study.level)
    template = environment.get_template("report.html.j2")
    return template.render(
        study=study,
        manifest=manifest,
        level=level,
        items=items,
        caveats=caveats(context, tables),
        methods_paragraph=methods_paragraph(study),
        headline=records(tables["headline"], columns=["label", "estimate", "lower", "upper", "level", "unit",
                                                      "analysis", "method", "basis", "note"], interval=True),
        assumptions=records(tables.get("assumptions")),
        break_even=list(tables["break_even"]["sentence"]) if "break_even" in tables else [],
        triangulation=records(triangulation, columns=TRIANGULATION_COLUMNS, interval=True),
        analyses=[{"name": r.name, "title": r.title, "status": r.status, "status_text": STATUS_TEXT[r.status],
                   "message": r.message, "warnings": r.warnings, "notes": r.notes} for r in results.values()],
        results=results,
        failed=[r for r in results.values() if r.status in ("failed_gates", "error")],
        areas=area_table,
        area_unit=area_unit,
        area_level=level_text(areas["level"].iloc[0]) if areas is not None and "level" in areas else "",
        national=national_sentence(tables),
        importance=records(tables.get("stream_importance"), columns=["stream", "importance", "importance_sd",
                                                                     "columns"]),
        area_national=records(tables.get("area_national_consistency")),
        rolling=records(tables.get("rolling_series"), limit=TOP_ROWS, interval=True),
        cleaning=records(tables.get("cleaning_audit")),
        compare={"sentences": compare_sentences(tables),
                 "countries": records(tables.get("compare_countries"), columns=COUNTRY_COLUMNS, interval=True),
                 "ratios": records(tables.get("compare_ratios"), columns=RATIO_COLUMNS, interval=True),
                 "leave_one_out": records(tables.get("compare_leave_one_out"), columns=LEAVE_ONE_OUT_COLUMNS,
                                          interval=True),
                 "regions": records(tables.get("compare_regions")),
                 "agencies": records(tables.get("compare_agencies")),
                 "ranks": records(tables.get("compare_ranks"), limit=40)},
        diagnostics=diagnostics,
        others=others,
        estimates={name: records(tables[f"estimates_{name}"], limit=40, interval=True) for name in results
                   if f"estimates_{name}" in tables},
        figures=figures,
        run_warnings=published.warnings,
        suppressed_cells=published.suppressed_cells,
        top_rows=TOP_ROWS,
        plotly_js=plotly.offline.get_plotlyjs(),
    )
