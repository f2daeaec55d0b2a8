"""The analyses a study can run, each a thin adapter around its method family's public API.

A step never re-implements an estimator: it builds the family's input contract from the study file, calls the
family, and reshapes the family's :class:`~hiddenpop.results.Estimates` into the run's common vocabulary
(``quantity`` = a hidden group, combination or ratio name of the study file). The options of each analysis are
its spec (``study.specs``), the same one its command uses, and the family function that runs it is the one the
command calls, so a study and the command line give the same numbers.

The one computation done here is the casework summary (totals and the victims-per-suspect ratio among cases),
which is descriptive and belongs to no estimator family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop import nsum
from hiddenpop.capture.analyses import events_analysis, mse_analysis, read_log
from hiddenpop.capture.core.histories import MAX_COUNT
from hiddenpop.cases.summary import summarize_files
from hiddenpop.compare.analyses import compare_files
from hiddenpop.data.ard import read_ard
from hiddenpop.data.io import missing_column, read_table
from hiddenpop.distributions import beta_quantile
from hiddenpop.errors import ConfigError, DataError, ModelError, locate
from hiddenpop.nsum import degree
from hiddenpop.nsum.adjust import FACTORS, Adjustments, Beta, Declared
from hiddenpop.nsum.analyses import scale_up_analysis
from hiddenpop.nsum.bayes.analyses import bayes_analysis, prepare_chains
from hiddenpop.nsum.bayes.calibration import reported_size_in_areas, tau_prior_from_counts
from hiddenpop.nsum.bayes.crossval import respondent_column
from hiddenpop.nsum.bayes.weighted import ard_design
from hiddenpop.nsum.covariates import survey_covariates
from hiddenpop.nsum.degrees import degree_label
from hiddenpop.nsum.visibility import game_of_contacts_file
from hiddenpop.privacy import load_key
from hiddenpop.results import Estimates
from hiddenpop.smallarea.analyses import extrapolate_analysis, pool_analysis
from hiddenpop.smallarea.areas import AreaTable, read_geometry
from hiddenpop.smallarea.specs import ExtrapolateSpec, PoolSpec
from hiddenpop.specs import project
from hiddenpop.study.context import RunContext, StepResult
from hiddenpop.study.schema import MAX_REPLICATE_BYTES, GameOfContactsSource, Study

TITLES = {
    "nsum": "Design-based network scale-up",
    "nsum_bayes": "Bayesian network scale-up",
    "casework": "Casework counts",
    "report_log": "Capture-recapture on the report log",
    "smallarea": "Area estimates",
    "mse": "Multiple systems estimation on overlapping lists",
    "cases": "Case-file typologies",
    "compare": "Countries compared",
}


def pipeline(study: Study) -> list[tuple[str, Callable[[RunContext], StepResult]]]:
    """The enabled steps in run order (design-based first: later steps may use its results)."""
    order = [("nsum", nsum_step), ("nsum_bayes", nsum_bayes_step), ("casework", casework_step),
             ("report_log", report_log_step), ("smallarea", smallarea_step), ("cases", cases_step),
             ("mse", mse_step), ("compare", compare_step)]
    return [(name, function if study.enabled(name) else _disabled(name)) for name, function in order
            if name in study.analyses]


def _disabled(name: str) -> Callable[[RunContext], StepResult]:
    def step(context: RunContext) -> StepResult:
        return StepResult(name=name, title=TITLES[name], status="skipped",
                          message="disabled in the study file (enabled = false)")

    return step


def _check_memory(values: int, where: str, what: str) -> None:
    """Refuse, before any work, settings whose replicates or draws alone would need more than the study's memory
    limit (8 bytes a value)."""
    needed = 8 * values
    if needed > MAX_REPLICATE_BYTES:
        raise ConfigError(f"{where}: the {what} would need about {needed / 2**30:,.1f} GB (limit "
                          f"{MAX_REPLICATE_BYTES / 2**30:,.0f} GB); lower them")


# --------------------------------------------------------------------------------------------- casework
def casework_frame(study: Study) -> pd.DataFrame:
    """The casework file, its victims and suspects columns checked to hold non-negative whole counts."""
    settings = study.analyses["casework"]
    path = settings["file"]
    frame = read_table(path)
    for role in ("victims", "suspects"):
        column = settings[role]
        if column not in frame.columns:
            raise missing_column(path.name, column, frame.columns, fix=f"fix [analyses.casework] key {role!r}")
        values = pd.to_numeric(frame[column], errors="coerce")
        finite = np.isfinite(values.to_numpy(dtype=float))  # 'inf', 'nan' spelled out, or beyond floats
        bad = ~finite | (values < 0) | (values != np.floor(values)) | (values > MAX_COUNT)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise DataError(f"{locate(path.name, row, column)}expected a non-negative whole count; fix the value")
    return frame


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
    frame = casework_frame(study)
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
        lower_p = beta_quantile(alpha / 2, victims, suspects + 1)
        upper_p = beta_quantile(1 - alpha / 2, victims + 1, suspects)
        rows.append({"quantity": ratio_name, "method": "casework ratio (exact)", "estimate": victims / suspects,
                     "lower": lower_p / (1 - lower_p), "upper": upper_p / (1 - upper_p), "level": level,
                     "unit": "ratio", "comparable": True,
                     "note": "victims per suspect among cases; assumes equal detection of victims and suspects"})
    else:
        warnings.append("casework has no victims or no suspects; the casework ratio is not defined")
    estimates = Estimates.from_rows(rows, settings={"file": Path(settings["file"]).name, "victims": settings["victims"],
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
def survey_ard(context: RunContext) -> Any:
    """The study's survey as the ARD contract (read and validated once per run, then shared by the steps).

    Known groups are those of the known-population degrees (only they are top-coded); the summation degrees'
    columns are passed as degree columns, so answers about children are never top-coded.
    """
    if "ard" in context.shared:
        return context.shared["ard"]

    study = context.study
    survey = study.survey
    options = study.specs["survey"]
    known_groups = [g for d in study.degrees.values() if d.method == "known_population" for g in d.groups]
    summation = [g for d in study.degrees.values() if d.method == "summation" for g in d.groups]
    sizes = read_table(study.known_sizes_file)
    missing_columns = [c for c in ("group", "size") if c not in sizes.columns]
    if missing_columns:
        raise DataError(f"{study.known_sizes_file.name}: missing column(s) {', '.join(missing_columns)}; the known "
                        "sizes table needs columns group,size")
    by_group = dict(zip(sizes["group"].astype(str), sizes["size"], strict=True))
    for group in known_groups:
        if group not in by_group:
            raise DataError(f"{study.known_sizes_file.name}: known group {group!r} (in [degrees]) has no row; add "
                            "a row group,size for it or remove it from the degree's groups")
    ard = read_ard(
        survey["file"],
        known={g: by_group[g] for g in known_groups},
        population=study.populations["total"],
        hidden=[h.column for h in study.hidden.values()],
        weights=options.weights,
        strata=options.strata,
        psu=options.psu,
        id_column=options.id,
        missing=options.missing,
        degree_columns=list(dict.fromkeys(summation)) or None,
        topcode=options.topcode,
    )
    context.shared["ard"] = ard
    context.shared["known_size_rows"] = by_group
    return ard


def study_degrees(context: RunContext, ard: Any) -> dict[str, Any]:
    """One :class:`hiddenpop.nsum.Degree` per [degrees.NAME] of the study."""

    study = context.study
    return {name: degree(ard, spec.method, columns=list(spec.groups), population=study.populations[spec.base])
            for name, spec in study.degrees.items()}


def nsum_step(context: RunContext) -> StepResult:
    """Design-based scale-up of every hidden group, their sums and ratios, with the rescaled bootstrap over the
    survey design, the degree tables and the leave-one-out consistency of each known-population degree
    (:func:`hiddenpop.nsum.analyses.scale_up_analysis`, as ``hiddenpop nsum estimate`` runs it)."""

    study = context.study
    spec = study.specs["nsum"]
    ard = survey_ard(context)
    _check_memory(len(ard.counts) * spec.bootstrap, "[analyses.nsum] key 'bootstrap'", "bootstrap replicates")
    degrees = study_degrees(context, ard)
    columns = {name: group.column for name, group in study.hidden.items()}
    checks = {name: (list(d.groups), float(study.populations[d.base])) for name, d in study.degrees.items()
              if d.method == "known_population" and len(d.groups) >= 2}
    recall_sizes = _summation_sizes(context, [g for d in study.degrees.values() if d.method == "summation"
                                              for g in d.groups]) if spec.recall != "none" else None
    result = scale_up_analysis(
        ard, spec, hidden=list(columns.values()), degrees=degrees, recall_sizes=recall_sizes,
        group_degree={group.column: group.degree for group in study.hidden.values()}, checks=checks,
        sums={c.name: [columns[g] for g in c.groups] for c in study.combine.values()},
        ratios={r.name: (_column_or_name(r.numerator, columns), _column_or_name(r.denominator, columns))
                for r in study.ratios.values()},
        adjustments=study_adjustments(context),
    )
    names = {column: name for name, column in columns.items()}
    _rename_quantities(result, names)
    tables = {"nsum_degrees": result.tables["degrees"], "nsum_degree_histogram": result.tables["degree_histogram"]}
    if "visibility_sensitivity" in result.tables:
        _rename_quantities(result, names, "visibility_sensitivity")
        tables["nsum_visibility_sensitivity"] = result.tables["visibility_sensitivity"]
    if "consistency" in result.tables:
        tables["nsum_consistency"] = result.tables["consistency"]
    if "recall" in result.tables:
        recall = result.tables["recall"]
        labels = {degree_label(d): name for name, d in degrees.items()}
        tables["nsum_recall"] = recall.assign(group=recall["group"].map(lambda g: names.get(g, g)),
                                              degree=recall["degree"].map(lambda d: labels.get(d, d)))
    counts = {"nsum_degree_histogram": (["respondents"], {})}
    return StepResult(name="nsum", title=TITLES["nsum"], status="warnings" if result.warnings else "ok",
                      estimates=result, tables=tables, counts=counts)


def _summation_sizes(context: RunContext, groups: list[str]) -> dict[str, float]:
    """The known-sizes rows of a summation degree's columns (not known groups of the survey, so never top-coded),
    checked: each needs a row with a positive size."""
    study = context.study
    rows = context.shared["known_size_rows"]
    missing = [g for g in dict.fromkeys(groups) if g not in rows]
    if missing:
        raise DataError(f"{study.known_sizes_file.name}: the recall curve of a summation degree is fitted on its "
                        f"columns, and {', '.join(missing)} have no row; add a row group,size for each")
    sizes = {g: pd.to_numeric(pd.Series([rows[g]]), errors="coerce").iloc[0] for g in dict.fromkeys(groups)}
    bad = [g for g, size in sizes.items() if not (np.isfinite(size) and size > 0)]
    if bad:
        raise DataError(f"{study.known_sizes_file.name}: the size of {', '.join(bad)} must be a positive number; "
                        "fix its row")
    return {g: float(size) for g, size in sizes.items()}


def _column_or_name(name: str, columns: dict[str, str]) -> str:
    return columns.get(name, name)


def _rename_quantities(result: Estimates, mapping: dict[str, str], table: str | None = None) -> None:
    """Survey column names -> the study's hidden-group names (they differ when [hidden.X] sets ``column``), in the
    estimates or in one of the result's tables."""
    frame = result.table if table is None else result.tables[table]
    frame["quantity"] = frame["quantity"].map(lambda q: mapping.get(q, q))


def nsum_bayes_step(context: RunContext) -> StepResult:
    """The Bayesian scale-up model named in the study, fitted on the known groups of one degree and the hidden
    groups it scales, with posterior sums (e.g. traffickers), the convergence gates, posterior predictive checks
    and the sensitivity of the sizes to the assumed transmission rate; a survey with weights, strata or PSUs gets
    the survey-weighted pseudo-posterior with its design adjustment (unless ``unweighted``)
    (:func:`hiddenpop.nsum.bayes.analyses.bayes_analysis`, as ``hiddenpop nsum bayes`` runs it). A fit that fails
    its gates gets status ``failed_gates``: the report shows it, marked, and never uses it for a headline."""

    study = context.study
    settings = study.analyses["nsum_bayes"]
    spec = study.specs["nsum_bayes"]
    prepare_chains(spec)
    ard = survey_ard(context)
    degree_spec = study.degrees[settings["degree"]]
    topcode = study.specs["survey"].topcode
    if degree_spec.method == "known_population":
        known = {g: float(ard.known_sizes[g]) for g in degree_spec.groups}
    else:
        # A summation degree's columns together make up its base population, so with their sizes as known groups
        # they scale exactly as the sum does; they are never top-coded, so neither are their replicates.
        rows = context.shared["known_size_rows"]
        missing = [g for g in degree_spec.groups if g not in rows]
        if missing:
            raise DataError(f"{study.known_sizes_file.name}: the Bayesian model scales with degree "
                            f"{degree_spec.name!r}, whose column(s) {', '.join(missing)} have no row; add a row "
                            "group,size for each")
        known = {g: pd.to_numeric(pd.Series([rows[g]]), errors="coerce").iloc[0] for g in degree_spec.groups}
        bad = [g for g, size in known.items() if not (np.isfinite(size) and size > 0)]
        if bad:
            raise DataError(f"{study.known_sizes_file.name}: the size of {', '.join(bad)} must be a positive "
                            "number; fix its row")
        known = {g: float(size) for g, size in known.items()}
        topcode = None
    groups = list(settings["hidden"])
    columns = {g: study.hidden[g].column for g in groups}
    sums = {c.name: [columns[g] for g in c.groups] for c in study.combine.values()
            if all(g in columns for g in c.groups)}
    ratios = {r.name: (_column_or_name(r.numerator, columns), _column_or_name(r.denominator, columns))
              for r in study.ratios.values()
              if all(side in sums or side in columns for side in (r.numerator, r.denominator))}
    population = study.populations[degree_spec.base]
    counts = ard.counts[list(degree_spec.groups) + list(columns.values())]
    _check_memory(spec.chains * spec.draws * (len(counts) + 4 * counts.shape[1]),
                  "[analyses.nsum_bayes] keys 'chains' and 'draws'", "posterior draws")
    covariates = survey_covariates(study.survey["file"], ard.rows, spec.x_columns, spec.z_global, spec.z_subpop)
    covariate = None
    if spec.residuals_by is not None:
        survey_file = Path(study.survey["file"])
        covariate = respondent_column(read_table(survey_file), spec.residuals_by, ard.rows, survey_file.name)
    result = bayes_analysis(counts, spec, known_sizes=known, population=population, hidden=list(columns.values()),
                            sums=sums, ratios=ratios, topcode=topcode, adjustments=study_adjustments(context),
                            psu=ard.psu, strata=ard.strata, covariate=covariate, design=ard_design(ard),
                            covariates=covariates)
    _rename_quantities(result, {column: name for name, column in columns.items()})
    passed = bool(result.diagnostics.get("passed", True))
    tables: dict[str, pd.DataFrame] = {}
    if "ppc" in result.tables:
        tables["nsum_bayes_ppc"] = result.tables["ppc"]
    gate_columns = [c for c in ("quantity", "estimate", "lower", "upper", "rhat", "ess_bulk", "ess_tail",
                                "passed_gates") if c in result.table.columns]
    tables["nsum_bayes_diagnostics"] = result.table[gate_columns]
    if "tau_sensitivity" in result.tables:
        _rename_quantities(result, {c: n for n, c in columns.items()}, "tau_sensitivity")
        tables["nsum_bayes_sensitivity"] = result.tables["tau_sensitivity"]
    study_names = {column: name for name, column in columns.items()}
    if "residuals" in result.tables:
        residuals = result.tables["residuals"]
        tables["nsum_bayes_residuals"] = residuals.assign(group=residuals["group"].map(lambda g: study_names.get(g, g)))
    if "kfold" in result.tables:
        tables["nsum_bayes_kfold"] = result.tables["kfold"]
        tables["nsum_bayes_kfold_folds"] = result.tables["kfold_folds"]
        if "kfold_pairs" in result.tables:
            tables["nsum_bayes_kfold_pairs"] = result.tables["kfold_pairs"]
    if "correlation" in result.tables:
        names = {column: name for name, column in columns.items()}
        correlation = result.tables["correlation"].copy()
        for side in ("group", "with_group"):
            correlation[side] = correlation[side].map(lambda g: names.get(g, g))
        tables["nsum_bayes_correlation"] = correlation
    if "covariate_effects" in result.tables:
        tables["nsum_bayes_covariates"] = result.tables["covariate_effects"]
    scalar = {k: v for k, v in result.diagnostics.items() if isinstance(v, (int, float, bool, str))}
    tables["nsum_bayes_convergence"] = pd.DataFrame({"diagnostic": list(scalar),
                                                     "value": [str(v) for v in scalar.values()]})
    status = "failed_gates" if not passed else ("warnings" if result.warnings else "ok")
    message = "" if passed else "the fit failed its convergence gates (see warnings); not used for headlines"
    return StepResult(name="nsum_bayes", title=TITLES["nsum_bayes"], status=status, estimates=result,
                      message=message, tables=tables)


def report_log_step(context: RunContext) -> StepResult:
    """Report log -> pseudonymised, cleaned events with their audit -> capture histories per rolling window ->
    one closed-population estimate per window (:func:`hiddenpop.capture.analyses.events_analysis`, as
    ``hiddenpop capture events`` runs it). Identifiers are pseudonymised inside the reader with the study's key and
    never leave it; only counts reach the run folder."""

    study = context.study
    settings = study.analyses["report_log"]
    spec = study.specs["report_log"]
    log = read_log([str(f) for f in settings["files"]], spec, identifier=settings["id"], time=settings["time"],
                   key=load_key(study.key_file))
    result = events_analysis(log, spec)
    result.provenance = {}  # the run's manifest records inputs and the key fingerprint once, for every step
    series = result.tables["series"]
    tables = {"rolling_series": series, "cleaning_audit": result.tables["audit"]}
    derived = ["estimate", "se", "lower", "upper", "per_10000",
               *(c for c in ("one_inflation_lower", "one_inflation_upper") if c in series)]
    counts_spec = {"rolling_series": (["observed"], {"observed": derived})}
    estimated = series.dropna(subset=["estimate"])
    if len(estimated):
        latest = estimated.iloc[-1]
        extra = {"quantity": "report_log_identifiers", "method": str(latest["model"]),
                 "estimate": latest["estimate"], "se": latest["se"], "lower": latest["lower"],
                 "upper": latest["upper"], "level": study.level, "unit": "identifiers", "triangulate": True,
                 "comparable": False,
                 "label": f"Identifiers reported, window {latest['window_start']} to {latest['window_end']}",
                 "note": "capture-recapture on report-log identifiers (not people)"}
        result.table = pd.concat([result.table, pd.DataFrame([extra])], ignore_index=True)
    return StepResult(name="report_log", title=TITLES["report_log"],
                      status="warnings" if result.warnings else "ok", estimates=result, tables=tables,
                      counts=counts_spec)


def respondent_areas(context: RunContext, ard: Any) -> np.ndarray:
    """The [survey] area of each respondent of the study's ARD, as text."""
    study = context.study
    survey = read_table(study.survey["file"])
    area_column = study.survey["area"]
    if area_column not in survey.columns:
        raise DataError(f"{locate(Path(study.survey['file']).name, column=area_column)}column not found; fix "
                        "[survey] key 'area'")
    return survey[area_column].astype(str).to_numpy()[np.asarray(ard.rows, dtype=int) - 1]


def study_adjustments(context: RunContext) -> Adjustments:
    """The study's visibility model over the survey's columns, with each game-of-contacts factor estimated and each
    casework calibration done (once a run).

    A calibration compares, in the areas both the survey and the casework file cover, the survey's reported size
    R = P sum y / sum d (P: the areas' population base from ``base_column``) with the casework count c found there,
    and declares tau ~ Beta with the mean R completeness / c and the delta-method variance of
    :func:`hiddenpop.nsum.bayes.calibration.tau_prior_from_counts`."""
    if "visibility" in context.shared:
        return context.shared["visibility"]
    study = context.study
    adjust = study.adjustments()
    if study.visibility_sources:
        adjust = Adjustments(declared=[*adjust.declared,
                                       *(game_of_contacts_factor(study, s) for s in study.visibility_sources)])
    if study.calibrations:
        ard = survey_ard(context)
        area_of = respondent_areas(context, ard)
        degrees = study_degrees(context, ard)
        settings = study.analyses["casework"]
        frame = casework_frame(study)
        path = Path(settings["file"]).name
        declared = list(adjust.declared)
        for calibration in study.calibrations:
            where = f"[visibility.{calibration.name}]"
            if calibration.base_column not in frame.columns:
                raise missing_column(path, calibration.base_column, frame.columns, fix=f"fix {where} key 'base_column'")
            base = pd.to_numeric(frame[calibration.base_column], errors="coerce").to_numpy(dtype=float)
            if not np.all(np.isfinite(base) & (base > 0)):
                row = int(np.flatnonzero(~(np.isfinite(base) & (base > 0)))[0]) + 1
                raise DataError(f"{locate(path, row, calibration.base_column)}expected a positive population; fix "
                                "the value")
            casework_areas = frame[settings["area"]].astype(str).to_numpy()
            overlap = np.isin(casework_areas, area_of)
            if not overlap.any():
                raise DataError(f"{path}: no casework area is a surveyed area; {where} cannot be calibrated (check "
                                "that [analyses.casework] 'area' and [survey] 'area' use the same codes)")
            inside = np.isin(area_of, casework_areas[overlap])
            columns = [study.hidden[g].column for g in calibration.groups]
            y = np.sum([ard.y(column)[inside] for column in columns], axis=0)
            d = degrees[study.hidden[calibration.groups[0]].degree].values[inside]
            count = float(frame[settings[calibration.role]].to_numpy(dtype=float)[overlap].sum())
            try:
                reported, reported_se = reported_size_in_areas(y, d, float(base[overlap].sum()))
                prior = tau_prior_from_counts(reported, reported_se, count, completeness=calibration.completeness)
            except ConfigError as error:
                raise ConfigError(f"{study.path.name}, {where}: {error}") from None
            source = (f"{calibration.source} (calibrated on {int(overlap.sum())} casework areas: reported "
                      f"{reported:,.0f}, {calibration.role} found {count:,.0f}, completeness "
                      f"{calibration.completeness:g})")
            declared.append(Declared("transmission_rate", Beta(prior.a, prior.b), tuple(columns), source,
                                     calibration.name))
        adjust = Adjustments(declared=declared)
    context.shared["visibility"] = adjust
    return adjust


def game_of_contacts_factor(study: Study, source: GameOfContactsSource) -> Declared:
    """One [visibility.NAME] factor estimated from its game-of-contacts file (Beta for tau, lognormal for delta)."""
    where = f"[visibility.{source.name}]"
    result = game_of_contacts_file(source.file, source.options, name=source.name)
    found = [d for d in result.extras["declared"] if d.factor == source.factor]
    if not found:
        reasons = "; ".join(result.warnings) or "no distribution could be fitted"
        raise ModelError(f"{study.path.name}, {where}: the game of contacts gives no {FACTORS[source.factor]} "
                         f"distribution ({reasons}); declare 'distribution' instead")
    columns = None if source.groups is None else tuple(study.hidden[g].column for g in source.groups)
    return Declared(source.factor, found[0].distribution, columns, f"{source.source} ({found[0].source})",
                    source.name)


def direct_area_rates(context: RunContext, combination: str) -> pd.DataFrame:
    """Direct prevalence of one combination in each surveyed area: the design-based estimator
    (``hiddenpop.nsum.estimate``) on that area's respondents, divided by the combination's population base.

    Within an area every respondent is its own resampling unit (Study 2 interviewed one barangay per area, so an
    area has one PSU and no between-PSU variance can be estimated inside it); 200 replicates per area.
    """


    study = context.study
    spec = study.combine[combination]
    ard = survey_ard(context)
    area_of = respondent_areas(context, ard)
    columns = [study.hidden[g].column for g in spec.groups]
    base = study.populations[spec.base]
    rows = []
    for area in sorted(set(area_of)):
        subset = replace(ard.subset(area_of == area), psu=None, strata=None)
        degrees = study_degrees(context, subset)
        result = nsum.estimate(subset, hidden=columns,
                               degree={study.hidden[g].column: degrees[study.hidden[g].degree] for g in spec.groups},
                               sums={combination: columns}, bootstrap=200, seed=study.seed, level=study.level)
        row = result.get(combination)
        rows.append({"area": area, "respondents": subset.n, "direct": row["estimate"] / base,
                     "direct_se": row["se"] / base})
    return pd.DataFrame(rows)


def smallarea_step(context: RunContext) -> StepResult:
    """Area estimates for every area: direct rates where surveyed (above), then the partially pooled model and/or
    the machine-learning extrapolation on the area covariates (:mod:`hiddenpop.smallarea.analyses`, as
    ``hiddenpop smallarea pool|extrapolate`` run them), compared with the national interval of [analyses.nsum]
    and calibrated to it when the study asks."""

    study = context.study
    settings = study.analyses["smallarea"]
    spec = study.specs["smallarea"]
    combination = settings.get("target") or next(iter(study.combine))
    direct = direct_area_rates(context, combination)
    path = settings["file"]
    frame = read_table(path)
    id_column = settings["id"]
    if id_column not in frame.columns:
        raise DataError(f"{locate(path.name, column=id_column)}column not found; fix [analyses.smallarea] key 'id'")
    frame[id_column] = frame[id_column].astype(str)
    unknown = sorted(set(direct["area"]) - set(frame[id_column]))
    if unknown:
        raise DataError(f"{path.name}: {len(unknown)} surveyed area(s) of the survey are not in the area table "
                        f"(first: row of area {unknown[0]!r} missing); add them or fix the [survey] area column")
    merged = frame.merge(direct[["area", "direct", "direct_se"]].rename(columns={"area": id_column}),
                         on=id_column, how="left")
    geometry = read_geometry(settings["geometry"]) if "geometry" in settings else None
    areas = AreaTable.from_frame(merged, id=id_column, target="direct", target_se="direct_se",
                                 population=settings.get("population"), region=settings.get("region"),
                                 name=settings.get("name"), streams=settings.get("streams"), impute=spec.impute,
                                 source=path.name,
                                 geometry=geometry, geometry_key=settings.get("geometry_key"))
    if areas.geometry is not None:
        context.shared["area_geometry"] = (areas.geometry, areas.geometry_key)
    national = None
    nsum = context.result("nsum")
    if nsum is not None and nsum.usable:
        row = nsum.estimates.get(combination)
        base = study.populations[study.combine[combination].base]
        national = (row["estimate"] / base, row["lower"] / base, row["upper"] / base)
    runs = {"pool": (pool_analysis, PoolSpec), "extrapolate": (extrapolate_analysis, ExtrapolateSpec)}
    results = {method: runs[method][0](areas, project(spec, runs[method][1]), national=national)
               for method in spec.methods}
    chosen = "extrapolate" if "extrapolate" in results else spec.methods[0]
    shown = results[chosen].tables["areas"].copy()
    for column in ("longitude", "latitude"):
        if column in frame.columns:
            shown[column] = frame.set_index(id_column).loc[shown["area"].astype(str), column].to_numpy()
    tables = {"area_estimates": shown,
              "area_estimates_all": pd.concat([r.tables["areas"].assign(approach=m) for m, r in results.items()],
                                              ignore_index=True),
              "area_direct": direct}
    if len(results[chosen].tables["importance"]):
        tables["stream_importance"] = results[chosen].tables["importance"]
    if national is not None:
        tables["area_national_consistency"] = pd.DataFrame([{k: v for k, v in
                                                             results[chosen].diagnostics["national"].items()
                                                             if not isinstance(v, dict)}])
    combined = results[spec.methods[0]]
    for method in spec.methods[1:]:
        combined = combined.combine(results[method])
    combined.warnings = list(dict.fromkeys(combined.warnings))  # one method alone is not deduplicated by combine
    combined.table = combined.table.iloc[0:0]  # per-area rows are published in area_estimates, not as estimates
    return StepResult(name="smallarea", title=TITLES["smallarea"],
                      status="warnings" if combined.warnings else "ok", estimates=combined, tables=tables,
                      message=f"target: {combination} per person of its base; map shows the {chosen} estimates")


def cases_step(context: RunContext) -> StepResult:
    """Coded case-file typologies (:func:`hiddenpop.cases.summary.summarize_files`, as ``hiddenpop cases
    summarize`` runs it); the family suppresses small cells itself (with complementary suppression) at the
    study's threshold."""

    settings = context.study.analyses["cases"]
    result = summarize_files(settings["file"], settings["codebook"], context.study.specs["cases"])
    tables = {"cases_typologies": result.table}
    if len(result.tables.get("crosstabs", [])):
        tables["cases_crosstabs"] = result.tables["crosstabs"]
    return StepResult(name="cases", title=TITLES["cases"], status="warnings" if result.warnings else "ok",
                      estimates=Estimates(table=result.table.iloc[0:0], settings=result.settings,
                                          warnings=result.warnings, notes=result.notes,
                                          diagnostics=result.diagnostics),
                      tables=tables, suppressed_elsewhere=int(result.diagnostics.get("cells_suppressed", 0)))


def mse_step(context: RunContext) -> StepResult:
    """Multiple systems estimation on the study's overlapping lists (:func:`hiddenpop.capture.analyses.
    mse_analysis`, as ``hiddenpop capture mse`` runs it): one model class, every class side by side
    (``compare``), or strata added up (``stratum``). With ``quantity`` the estimates join that combination's
    triangulation, the class named by the study's ``headline`` rule first."""
    settings = context.study.analyses["mse"]
    spec = context.study.specs["mse"]
    result = mse_analysis(settings["file"], spec)
    table = result.table
    if spec.stratum is not None:
        shown = table[table["stratum"] == "total"].assign(model_class=spec.select if spec.headline == "selected"
                                                          else spec.headline, headline=True)
    elif spec.compare:
        shown = table.sort_values("headline", ascending=False, kind="stable")
    else:
        shown = table.iloc[:1].assign(model_class=spec.select, headline=True)
    quantity = settings.get("quantity")
    rows = pd.DataFrame({
        "quantity": quantity or "population",
        "label": context.study.combine[quantity].label if quantity else "People on the lists' population",
        "method": [f"{c}: {m}" for c, m in zip(shown["model_class"], shown["method"], strict=True)],
        "estimate": shown["estimate"].to_numpy(float), "lower": shown["lower"].to_numpy(float),
        "upper": shown["upper"].to_numpy(float), "level": spec.level, "unit": "people",
        "comparable": quantity is not None,
        "note": ["the class named beforehand (headline rule)" if h else "another model class on the same lists"
                 for h in shown["headline"]],
    })
    if quantity is None:
        rows["triangulate"] = True
    failed = not np.isfinite(rows["estimate"].iloc[0])
    status = "error" if failed else ("warnings" if result.warnings else "ok")
    estimates = Estimates(table=rows, settings=result.settings, seed=result.seed, warnings=result.warnings,
                          notes=result.notes, diagnostics=result.diagnostics)
    return StepResult(name="mse", title=TITLES["mse"], status=status, estimates=estimates,
                      message="the headline model class could not be estimated" if failed else "",
                      tables={"mse_estimates": table})


def compare_step(context: RunContext) -> StepResult:
    """Referral counts compared between receiving countries: rates with exact intervals, ratios to the focus
    country, the probability of ranking first and leave-one-agency-out (:func:`hiddenpop.compare.analyses.
    compare_files`, as ``hiddenpop compare referrals`` runs it); the family suppresses small cells itself (with
    complementary suppression across its linked tables) at the study's threshold."""

    settings = context.study.analyses["compare"]
    result = compare_files(settings["file"], context.study.specs["compare"], base_file=settings.get("base_file"))
    table = result.table
    tables = {"compare_countries": table[table["kind"] == "country"].reset_index(drop=True),
              "compare_ratios": table[table["kind"] != "country"].reset_index(drop=True),
              "compare_regions": result.tables["regions"], "compare_ranks": result.tables["ranks"]}
    if len(result.tables["agencies"]):
        tables["compare_agencies"] = result.tables["agencies"]
        tables["compare_leave_one_out"] = result.tables["leave_one_out"]
    return StepResult(name="compare", title=TITLES["compare"], status="warnings" if result.warnings else "ok",
                      estimates=Estimates(table=table.iloc[0:0], settings=result.settings, seed=result.seed,
                                          warnings=result.warnings, notes=result.notes,
                                          diagnostics=result.diagnostics),
                      tables=tables, suppressed_elsewhere=int(result.diagnostics.get("cells_suppressed", 0)))
