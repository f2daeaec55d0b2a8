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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from hiddenpop.capture.core.histories import MAX_COUNT
from hiddenpop.data.io import missing_column, read_table
from hiddenpop.errors import ConfigError, DataError, locate
from hiddenpop.results import Estimates
from hiddenpop.study.context import RunContext, StepResult
from hiddenpop.study.schema import MAX_REPLICATE_BYTES, Study

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
    return [(name, function if study.enabled(name) else _disabled(name)) for name, function in order
            if name in study.analyses]


def _disabled(name: str) -> Callable[[RunContext], StepResult]:
    def step(context: RunContext) -> StepResult:
        return StepResult(name=name, title=TITLES[name], status="skipped",
                          message="disabled in the study file (enabled = false)")

    return step


def _family(module: str, *names: str) -> tuple[Any, ...] | None:
    """The named public functions of a family, or ``None`` when the family has not shipped them."""
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        return None
    found = tuple(getattr(loaded, name, None) for name in names)
    return None if any(item is None for item in found) else found


def _check_memory(values: int, where: str, what: str) -> None:
    """Refuse, before any work, settings whose replicates or draws alone would need more than the study's memory
    limit (8 bytes a value)."""
    needed = 8 * values
    if needed > MAX_REPLICATE_BYTES:
        raise ConfigError(f"{where}: the {what} would need about {needed / 2**30:,.1f} GB (limit "
                          f"{MAX_REPLICATE_BYTES / 2**30:,.0f} GB); lower them")


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
            raise missing_column(path.name, column, frame.columns, fix=f"fix [analyses.casework] key {role!r}")
        values = pd.to_numeric(frame[column], errors="coerce")
        finite = np.isfinite(values.to_numpy(dtype=float))  # 'inf', 'nan' spelled out, or beyond floats
        bad = ~finite | (values < 0) | (values != np.floor(values)) | (values > MAX_COUNT)
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
def survey_ard(context: RunContext) -> Any:
    """The study's survey as the ARD contract (read and validated once per run, then shared by the steps).

    Known groups are those of the known-population degrees (only they are top-coded); the summation degrees'
    columns are passed as degree columns, so answers about children are never top-coded.
    """
    if "ard" in context.shared:
        return context.shared["ard"]
    from hiddenpop.data.ard import read_ard

    study = context.study
    survey = study.survey
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
        weights=survey.get("weights"),
        strata=survey.get("strata"),
        psu=survey.get("psu"),
        id_column=survey.get("id"),
        missing=survey.get("missing", "zero"),
        degree_columns=list(dict.fromkeys(summation)) or None,
        topcode=survey.get("topcode"),
    )
    context.shared["ard"] = ard
    return ard


def study_degrees(context: RunContext, ard: Any) -> dict[str, Any]:
    """One :class:`hiddenpop.nsum.Degree` per [degrees.NAME] of the study."""
    from hiddenpop.nsum import degree

    study = context.study
    return {name: degree(ard, spec.method, columns=list(spec.groups), population=study.populations[spec.base])
            for name, spec in study.degrees.items()}


def nsum_step(context: RunContext) -> StepResult:
    """Design-based scale-up of every hidden group, their sums and ratios (``hiddenpop.nsum.estimate``), with
    the rescaled bootstrap over the survey design, plus leave-one-out consistency of the known groups."""
    if _family("hiddenpop.nsum", "estimate", "consistency", "degree") is None:
        return _unavailable("nsum", "design-based network scale-up (hiddenpop.nsum.estimate)")
    from hiddenpop import nsum

    study = context.study
    settings = study.analyses["nsum"]
    ard = survey_ard(context)
    _check_memory(len(ard.counts) * settings.get("bootstrap", 1000), "[analyses.nsum] key 'bootstrap'",
                  "bootstrap replicates")
    degrees = study_degrees(context, ard)
    columns = {name: group.column for name, group in study.hidden.items()}
    result = nsum.estimate(
        ard,
        method=settings.get("method", "mle"),
        hidden=list(columns.values()),
        degree={group.column: degrees[group.degree] for group in study.hidden.values()},
        sums={c.name: [columns[g] for g in c.groups] for c in study.combine.values()},
        ratios={r.name: (_column_or_name(r.numerator, columns), _column_or_name(r.denominator, columns))
                for r in study.ratios.values()},
        bootstrap=settings.get("bootstrap", 1000),
        seed=study.seed,
        level=study.level,
    )
    _rename_quantities(result, {column: name for name, column in columns.items()})
    tables: dict[str, pd.DataFrame] = {}
    counts: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
    warnings = list(result.warnings)
    for name, spec in study.degrees.items():
        if spec.method != "known_population" or len(spec.groups) < 2:
            continue
        check = nsum.consistency(ard, known=list(spec.groups), population=study.populations[spec.base])
        table = check.table.rename(columns={"quantity": "group"})
        table.insert(0, "degree", name)
        tables["nsum_consistency"] = pd.concat([tables.get("nsum_consistency"), table], ignore_index=True) \
            if "nsum_consistency" in tables else table
        warnings.extend(check.warnings)
    summaries = []
    histogram = []
    for name, values in degrees.items():
        summary = nsum.degree_summary(values, ard.design_weights if ard.weighted else None)
        summaries.append({"degree": name, **{k: v for k, v in summary.items() if not isinstance(v, (list, dict))}})
        histogram.append(_histogram(name, values.values))
    tables["nsum_degrees"] = pd.DataFrame(summaries)
    tables["nsum_degree_histogram"] = pd.concat(histogram, ignore_index=True)
    counts["nsum_degree_histogram"] = (["respondents"], {})
    result.warnings = list(dict.fromkeys(warnings))
    return StepResult(name="nsum", title=TITLES["nsum"], status="warnings" if result.warnings else "ok",
                      estimates=result, tables=tables, counts=counts)


def _column_or_name(name: str, columns: dict[str, str]) -> str:
    return columns.get(name, name)


def _rename_quantities(result: Estimates, mapping: dict[str, str]) -> None:
    """Survey column names -> the study's hidden-group names (they differ when [hidden.X] sets ``column``)."""
    result.table["quantity"] = result.table["quantity"].map(lambda q: mapping.get(q, q))


def _histogram(name: str, values: np.ndarray, bins: int = 30) -> pd.DataFrame:
    """Respondents per degree bin (equal-width bins up to the 99th percentile, the rest in the last bin)."""
    top = float(np.quantile(values, 0.99)) if values.size else 1.0
    edges = np.linspace(0.0, max(top, 1.0), bins + 1)
    counts, _ = np.histogram(np.minimum(values, edges[-1]), bins=edges)
    return pd.DataFrame({"degree": name, "bin_left": edges[:-1], "bin_right": edges[1:], "respondents": counts})


def _parallel_chains(chains: int) -> None:
    """One JAX CPU device per chain (as the CLI does), so chains run in parallel on the cores there are. The split
    depends on the chain count only, not on the machine, so runs stay reproducible across machines. Effective
    only if JAX has not started in this process yet; otherwise the chains run vectorised on one device."""
    import numpyro

    numpyro.set_host_device_count(max(1, chains))


def nsum_bayes_step(context: RunContext) -> StepResult:
    """The Bayesian scale-up model named in the study (``hiddenpop.nsum.bayes.MODELS``), fitted on the known groups
    of one degree and the hidden groups it scales, with posterior sums (e.g. traffickers), the family's
    convergence gates and posterior predictive checks, and the sensitivity of the sizes to the assumed
    transmission rate (``calibration.tau_sensitivity``). A fit that fails its gates gets status
    ``failed_gates``: the report shows it, marked, and never uses it for a headline."""
    study = context.study
    settings = study.analyses["nsum_bayes"]
    model_name = settings.get("model", "combined")
    family = _family("hiddenpop.nsum.bayes", "MODELS", "Priors")
    if family is None or model_name not in family[0]:
        return _unavailable("nsum_bayes", f"the Bayesian {model_name} model (hiddenpop.nsum.bayes)")
    models, priors_class = family
    model_class = models[model_name]
    _parallel_chains(int(settings.get("chains", 4)))
    ard = survey_ard(context)
    degree_spec = study.degrees[settings["degree"]]
    if degree_spec.method != "known_population":
        return StepResult(name="nsum_bayes", title=TITLES["nsum_bayes"], status="skipped",
                          message=f"the Bayesian models scale with known groups; degree {degree_spec.name!r} is "
                          "a summation degree")
    groups = list(settings["hidden"])
    columns = {g: study.hidden[g].column for g in groups}
    kwargs: dict[str, Any] = {}
    if "tau_prior" in settings:
        kwargs["priors"] = priors_class(tau=tuple(float(v) for v in settings["tau_prior"]))
    if model_name != "overdispersed":
        kwargs["likelihood"] = settings.get("likelihood", "poisson")
    model = model_class(**kwargs)
    sums = {c.name: [columns[g] for g in c.groups] for c in study.combine.values()
            if all(g in columns for g in c.groups)}
    ratios = {r.name: (_column_or_name(r.numerator, columns), _column_or_name(r.denominator, columns))
              for r in study.ratios.values()
              if all(side in sums or side in columns for side in (r.numerator, r.denominator))}
    population = study.populations[degree_spec.base]
    known = {g: float(ard.known_sizes[g]) for g in degree_spec.groups}
    counts = ard.counts[list(degree_spec.groups) + list(columns.values())]
    _check_memory(settings.get("chains", 4) * settings.get("draws", 1000) * (len(counts) + 4 * counts.shape[1]),
                  "[analyses.nsum_bayes] keys 'chains' and 'draws'", "posterior draws")
    result = model.fit(
        counts, known_sizes=known, population=population, hidden=list(columns.values()),
        chains=settings.get("chains", 4), warmup=settings.get("warmup", 1000), draws=settings.get("draws", 1000),
        seed=study.seed, sums=sums, ratios=ratios, target_accept=float(settings.get("target_accept", 0.8)),
    )
    _rename_quantities(result, {column: name for name, column in columns.items()})
    passed = bool(result.diagnostics.get("passed", True))
    tables: dict[str, pd.DataFrame] = {}
    if "ppc" in result.tables:
        tables["nsum_bayes_ppc"] = result.tables["ppc"]
    gate_columns = [c for c in ("quantity", "estimate", "lower", "upper", "rhat", "ess_bulk", "ess_tail",
                                "passed_gates") if c in result.table.columns]
    tables["nsum_bayes_diagnostics"] = result.table[gate_columns]
    sensitivity = _family("hiddenpop.nsum.bayes.calibration", "tau_sensitivity")
    if sensitivity is not None and passed and "idata" in result.extras:
        table = sensitivity[0](result, sums=sums, level=study.level)
        table["quantity"] = table["quantity"].map(lambda q: {c: n for n, c in columns.items()}.get(q, q))
        tables["nsum_bayes_sensitivity"] = table
    scalar = {k: v for k, v in result.diagnostics.items() if isinstance(v, (int, float, bool, str))}
    tables["nsum_bayes_convergence"] = pd.DataFrame({"diagnostic": list(scalar),
                                                     "value": [str(v) for v in scalar.values()]})
    status = "failed_gates" if not passed else ("warnings" if result.warnings else "ok")
    message = "" if passed else "the fit failed its convergence gates (see warnings); not used for headlines"
    return StepResult(name="nsum_bayes", title=TITLES["nsum_bayes"], status=status, estimates=result,
                      message=message, tables=tables)


def report_log_step(context: RunContext) -> StepResult:
    """Report log -> pseudonymised, cleaned events with their audit -> capture histories per rolling window ->
    one closed-population estimate per window, in one call of ``hiddenpop.capture.events.rolling.report_series``.
    Identifiers are pseudonymised inside the reader with the study's key and never leave it; only counts reach
    the run folder."""
    family = _family("hiddenpop.capture.events.rolling", "report_series")
    rules_family = _family("hiddenpop.capture.events.cleaning", "CleaningRules")
    if family is None or rules_family is None:
        return _unavailable("report_log", "report-log capture-recapture (hiddenpop.capture.events.rolling)")
    (report_series,) = family
    (cleaning_rules,) = rules_family
    from hiddenpop.privacy import load_key

    study = context.study
    settings = study.analyses["report_log"]
    rules = cleaning_rules(
        country_column=settings.get("country_column"),
        country=settings.get("country"),
        exclude=[(str(column), str(value)) for column, value in settings.get("exclude", {}).items()],
        dedupe=settings.get("dedupe", "day"),
    )
    result = report_series([str(f) for f in settings["files"]], identifier=settings["id"], time=settings["time"],
                           key=load_key(study.key_file), rules=rules, occasion=settings.get("occasion", "7D"),
                           occasions=settings.get("occasions", 4), step=settings.get("step", "28D"),
                           estimator=settings.get("estimator", "Mth Chao (LB)"), base=settings.get("base"),
                           level=study.level, seed=study.seed)
    result.provenance = {}  # the run's manifest records inputs and the key fingerprint once, for every step
    series = result.tables["series"]
    tables = {"rolling_series": series, "cleaning_audit": result.tables["audit"]}
    counts_spec = {"rolling_series": (["observed"], {"observed": ["estimate", "se", "lower", "upper",
                                                                  "per_10000"]})}
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


def direct_area_rates(context: RunContext, combination: str) -> pd.DataFrame:
    """Direct prevalence of one combination in each surveyed area: the design-based estimator
    (``hiddenpop.nsum.estimate``) on that area's respondents, divided by the combination's population base.

    Within an area every respondent is its own resampling unit (Study 2 interviewed one barangay per area, so an
    area has one PSU and no between-PSU variance can be estimated inside it); 200 replicates per area.
    """
    from dataclasses import replace

    from hiddenpop import nsum

    study = context.study
    spec = study.combine[combination]
    ard = survey_ard(context)
    survey = read_table(study.survey["file"])
    area_column = study.survey["area"]
    if area_column not in survey.columns:
        raise DataError(f"{locate(Path(study.survey['file']).name, column=area_column)}column not found; fix "
                        "[survey] key 'area'")
    area_of = survey[area_column].astype(str).to_numpy()[np.asarray(ard.rows, dtype=int) - 1]
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
    """Area estimates for every area (``hiddenpop.smallarea``): direct rates where surveyed (above), then the
    partially pooled model and/or the machine-learning extrapolation on the area covariates, the per-stream
    importance, and the consistency of the implied national rate with the national interval."""
    study = context.study
    settings = study.analyses["smallarea"]
    methods = settings.get("methods", ["pool", "extrapolate"])
    area_family = _family("hiddenpop.smallarea.areas", "AreaTable")
    pool_family = _family("hiddenpop.smallarea.pooling", "pooled_estimates")
    ml_family = _family("hiddenpop.smallarea.extrapolate", "extrapolate")
    bench_family = _family("hiddenpop.smallarea.national", "national_consistency")
    available = {"pool": pool_family, "extrapolate": ml_family}
    runnable = [m for m in methods if available[m] is not None]
    if area_family is None or not runnable or _family("hiddenpop.nsum", "estimate") is None:
        return _unavailable("smallarea", "small-area estimation (hiddenpop.smallarea)")
    if "area" not in study.survey:
        return StepResult(name="smallarea", title=TITLES["smallarea"], status="skipped",
                          message="the survey has no area column ([survey] key 'area'), so no direct estimates")
    (area_table,) = area_family
    combination = settings.get("target") or next(iter(study.combine))
    level = float(settings.get("level", 0.9))
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
    areas = area_table.from_frame(merged, id=id_column, target="direct", target_se="direct_se",
                                  population=settings.get("population"),
                                  region=settings.get("region"), streams=settings.get("streams"),
                                  source=path.name)
    results = {method: available[method][0](areas, level=level, seed=study.seed) for method in runnable}
    chosen = "extrapolate" if "extrapolate" in results else runnable[0]
    combined = results[runnable[0]]
    for method in runnable[1:]:
        combined = combined.combine(results[method])
    all_rows = pd.concat([r.table.assign(approach=m) for m, r in results.items()], ignore_index=True)
    shown = results[chosen].table.copy()
    for column in ("longitude", "latitude"):
        if column in frame.columns:
            shown[column] = frame.set_index(id_column).loc[shown["area"].astype(str), column].to_numpy()
    tables = {"area_estimates": shown, "area_estimates_all": all_rows, "area_direct": direct}
    importance = results[chosen].tables.get("importance")
    if importance is not None:
        tables["stream_importance"] = importance
    warnings = list(combined.warnings)
    if bench_family is not None and context.result("nsum") is not None and context.result("nsum").usable:
        (national_consistency,) = bench_family
        national = context.result("nsum").estimates.get(combination)
        base = study.populations[study.combine[combination].base]
        population = areas.populations()
        check = national_consistency(shown["estimate"].to_numpy(), population,
                                     (national["estimate"] / base, national["lower"] / base,
                                      national["upper"] / base), level=level)
        tables["area_national_consistency"] = pd.DataFrame([check])
        if check.get("within_national_interval") is False:
            warnings.append(f"area estimates imply a national rate of {check['implied_rate']:.3g}, outside the "
                            "national interval")
    combined.warnings = list(dict.fromkeys(warnings))
    combined.table = combined.table.iloc[0:0]  # per-area rows are published in area_estimates, not as estimates
    return StepResult(name="smallarea", title=TITLES["smallarea"], status="warnings" if warnings else "ok",
                      estimates=combined, tables=tables,
                      message=f"target: {combination} per person of its base; map shows the {chosen} estimates")


def cases_step(context: RunContext) -> StepResult:
    """Coded case-file typologies (``hiddenpop.cases.summary.summarize_cases``); the family suppresses small
    cells itself (with complementary suppression) at the study's threshold."""
    family = _family("hiddenpop.cases.summary", "summarize_cases", "read_codebook")
    if family is None:
        return _unavailable("cases", "case-file summaries (hiddenpop.cases)")
    summarize_cases, read_codebook = family
    study = context.study
    settings = study.analyses["cases"]
    cases_path, codebook_path = settings["file"], settings["codebook"]
    codebook = read_codebook(read_table(codebook_path, as_text=True), source=codebook_path.name)
    result = summarize_cases(read_table(cases_path, as_text=True), codebook, threshold=study.suppression_threshold,
                             level=study.level, by=settings.get("by"), free_text="drop",
                             source=cases_path.name, codebook_source=codebook_path.name)
    tables = {"cases_typologies": result.table}
    if len(result.tables.get("crosstabs", [])):
        tables["cases_crosstabs"] = result.tables["crosstabs"]
    return StepResult(name="cases", title=TITLES["cases"], status="warnings" if result.warnings else "ok",
                      estimates=Estimates(table=result.table.iloc[0:0], settings=result.settings,
                                          warnings=result.warnings, notes=result.notes,
                                          diagnostics=result.diagnostics),
                      tables=tables, suppressed_elsewhere=int(result.diagnostics.get("cells_suppressed", 0)))
