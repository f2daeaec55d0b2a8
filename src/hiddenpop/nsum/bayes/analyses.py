"""The Bayesian scale-up analysis as every interface runs it: a spec of options in, one result out.

:func:`bayes_analysis` fits the model the spec names (:data:`hiddenpop.nsum.bayes.MODELS`) with its priors and
sampler settings and adds the sensitivity of the sizes to the assumed transmission rate
(``tables["tau_sensitivity"]``, :func:`~hiddenpop.nsum.bayes.calibration.tau_sensitivity`) when the fit passes
its convergence gates. The command line and the study file both call it.

Parallel chains need one JAX CPU device per chain, which can only be arranged before JAX starts:
:func:`prepare_chains` does that and is called by both interfaces before anything imports JAX.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hiddenpop.errors import ConfigError
from hiddenpop.nsum.adjust import Adjustments, Beta, Fixed, parse_distribution
from hiddenpop.nsum.bayes import MODELS, Priors
from hiddenpop.nsum.bayes import recall as recall_curve
from hiddenpop.nsum.bayes.calibration import effective_size_draws, tau_sensitivity
from hiddenpop.nsum.bayes.common import BayesData, coerce_data
from hiddenpop.nsum.bayes.crossval import (
    RESIDUAL_DRAWS,
    count_model,
    kfold_compare,
    quantile_residuals,
    residual_table,
)
from hiddenpop.nsum.bayes.maltiel import MaltielModel
from hiddenpop.nsum.bayes.weighted import SurveyDesign, ard_design, fit_weighted
from hiddenpop.nsum.covariates import COVARIATE_MODELS, parse_x_columns
from hiddenpop.nsum.specs import BayesSpec
from hiddenpop.results import Estimates
from hiddenpop.specs import to_dict

__all__ = ["TAU_MODELS", "bayes_analysis", "prepare_chains"]

#: The models with a transmission rate, the only ones a prior on it applies to.
TAU_MODELS = ("transmission", "combined")


def prepare_chains(spec: BayesSpec) -> None:
    """One JAX CPU device per chain, so chains run in parallel on the cores there are. The split depends on the
    chain count only, not on the machine, so runs stay reproducible across machines. Effective only before JAX
    starts in this process; afterwards the chains run vectorised on one device (the same numbers per layout)."""
    import numpyro  # loads JAX, so only when a Bayesian analysis runs

    numpyro.set_host_device_count(max(1, spec.chains))


def check_spec(spec: BayesSpec) -> None:
    """Refuse option combinations the models cannot honour, before any data is read or JAX starts."""
    if spec.tau_prior is not None:
        if len(spec.tau_prior) != 2:
            raise ConfigError("tau_prior takes two numbers a, b (Beta(a, b)), e.g. 2,8")
        if spec.model not in TAU_MODELS:
            raise ConfigError(f"tau_prior applies to the {' and '.join(TAU_MODELS)} models only; the {spec.model} "
                              "model has no transmission rate")
        if parse_distribution(spec.transmission_rate) != Fixed(1.0):
            raise ConfigError("tau_prior and transmission_rate both declare the transmission rate; keep "
                              "transmission_rate = 'beta(a, b)' only")
    if spec.model in COVARIATE_MODELS:
        if spec.likelihood != "poisson":
            raise ConfigError(f"the {spec.model} model has a Poisson likelihood only; drop likelihood = "
                              f"{spec.likelihood!r}")
        if spec.scaling == "weighted" and spec.model != "correlated":
            raise ConfigError("weighted scaling weights the known groups by their correlation with each hidden "
                              "group; it needs the correlated model")
        parse_x_columns(spec.x_columns)
    else:
        named = [name for name in ("x_columns", "z_global", "z_subpop") if getattr(spec, name)]
        if named or spec.scaling != "all":
            option = named[0] if named else "scaling"
            raise ConfigError(f"{option} applies to the {' and '.join(COVARIATE_MODELS)} models only; choose one "
                              f"of them or drop {option}")
    recall_curve.check(spec.recall, spec.model)
    if spec.tau_grid and any(t <= 0 for t in spec.tau_grid):
        raise ConfigError("every assumed transmission rate in tau_grid must lie in (0, 1]")
    if spec.kfold == 1:
        raise ConfigError("kfold must be 0 (off) or at least 2 folds")
    if spec.kfold:
        if len(set(spec.kfold_models)) < 2:
            raise ConfigError("K-fold cross-validation compares models: name at least two in kfold_models")
        if "basic" in spec.kfold_models:
            raise ConfigError("the basic model fixes each degree at the respondent's own estimate, so it cannot "
                              "predict a new respondent; leave it out of kfold_models")
        if spec.likelihood != "poisson" and any(m != "overdispersed" for m in spec.kfold_models):
            raise ConfigError("K-fold cross-validation needs likelihood = 'poisson' (the binomial likelihood's "
                              "support depends on the held-out answers)")
    visibility(spec)


def visibility(spec: BayesSpec, adjustments: Adjustments | None = None) -> Adjustments:
    """The spec's visibility model (``adjustments`` instead when given), with the deprecated tau_prior as a Beta."""
    if adjustments is not None:
        return adjustments
    transmission = spec.transmission_rate if spec.tau_prior is None else Beta(*spec.tau_prior)
    return Adjustments(degree_ratio=spec.degree_ratio, transmission_rate=transmission, frame_ratio=spec.frame_ratio)


def _tau_priors(spec: BayesSpec, adjust: Adjustments, hidden: Sequence[str],
                model: str | None = None) -> tuple[float, float] | dict[str, tuple[float, float]] | None:
    """The Beta prior of the hidden groups' own transmission rates, from the declared visibility model: one pair
    when one declaration covers every group, else a pair per group (others keep the uniform default). ``model``
    defaults to the spec's."""
    model = spec.model if model is None else model
    if model not in TAU_MODELS:
        return None
    declared = [d for d in adjust.declared if d.factor == "transmission_rate"]
    for entry in declared:
        if not isinstance(entry.distribution, Beta):
            raise ConfigError(f"the {model} model draws each group's transmission rate from a Beta prior; "
                              "declare it as beta(a, b), or choose a model without one (e.g. barrier) to divide "
                              "by a constant rate")
    if not declared:
        return None
    if len(declared) == 1 and declared[0].groups is None:
        return (declared[0].distribution.a, declared[0].distribution.b)
    priors = {}
    for group in dict.fromkeys([*hidden, *(g for d in declared for g in d.groups or ())]):
        entry = adjust.applying(group).get("transmission_rate")
        if entry is not None:
            priors[group] = (entry.distribution.a, entry.distribution.b)
    return priors


def _model(name: str, spec: BayesSpec, adjust: Adjustments, hidden: Sequence[str]) -> MaltielModel:
    """The model ``name`` with the spec's likelihood and the priors the visibility model implies."""
    tau = _tau_priors(spec, adjust, hidden, name)
    priors = (Priors() if tau is None else Priors(tau=tau)).validate()
    options: dict[str, Any] = {} if name == "overdispersed" else {"likelihood": spec.likelihood}
    if name in COVARIATE_MODELS:
        options.update(scaling=spec.scaling, x=parse_x_columns(spec.x_columns), z_global=spec.z_global,
                       z_subpop=spec.z_subpop)
    if spec.recall != "none" and name not in recall_curve.MODELS_WITHOUT_RECALL:
        options["recall"] = spec.recall
    return MODELS[name](priors=priors, **options)


def _residuals(result: Estimates, model: MaltielModel, data: BayesData, spec: BayesSpec, covariate: Any) -> None:
    """Quantile residuals of the fitted model summarised by group (and covariate level), or a note saying why
    the model has none."""
    if not isinstance(model, MaltielModel) or "draws" not in result.extras:
        return
    try:
        counts = count_model(model, data, result.extras["draws"].samples, max_draws=RESIDUAL_DRAWS)
    except ConfigError as error:
        result.notes.append(f"no quantile residuals: {error}")
        return
    residuals = quantile_residuals(counts, data.counts, spec.seed)
    name = spec.residuals_by if covariate is not None else None
    result.tables["residuals"] = residual_table(residuals, data.groups, covariate, name)


def bayes_analysis(
    data: Any,
    spec: BayesSpec,
    *,
    known_sizes: Mapping[str, float] | None = None,
    population: float | None = None,
    hidden: Sequence[str] | None = None,
    sums: Mapping[str, Sequence[str]] | None = None,
    ratios: Mapping[str, tuple[str, str]] | None = None,
    topcode: int | None = None,
    quiet: bool = True,
    adjustments: Adjustments | None = None,
    psu: Any = None,
    strata: Any = None,
    covariate: Any = None,
    design: SurveyDesign | None = None,
    covariates: Any = None,
) -> Estimates:
    """Fit ``spec.model`` to ``data`` (an ARD, :class:`BayesData` or a counts table with ``known_sizes`` and
    ``population``) and add the transmission-rate sensitivity table when the fit passes its gates.

    The survey design (``design``, else the one an ARD was read with) makes the fit a survey-weighted
    pseudo-posterior, with the design adjustment of its draws when ``spec.design_adjust``
    (:mod:`hiddenpop.nsum.bayes.weighted`); ``spec.unweighted`` ignores the design.

    The visibility model (``adjustments``, else the spec's factors) enters as priors: a model with its own
    transmission rate takes each group's declared Beta as its tau prior (drawn per group inside the model); every
    other declared factor divides the posterior size draws, one draw per posterior draw. ``covariates`` (a table
    with one row per respondent, in the order of the counts) holds the columns the spec's ``x_columns``,
    ``z_global`` and ``z_subpop`` name (correlated and uncorrelated models).

    Model checks: randomized quantile residuals of the fitted model per group (``tables["residuals"]``), by level
    of ``covariate`` (one value per respondent, the survey column ``spec.residuals_by``) when given. With
    ``spec.kfold`` >= 2 the models ``spec.kfold_models`` are compared by K-fold cross-validation with folds of
    whole PSUs (``psu`` and ``strata``, one label per respondent; an ARD's own by default):
    ``tables["kfold"]`` (elpd per model, its standard error, the difference to the best), ``tables["kfold_pairs"]``
    (every pair's difference) and ``tables["kfold_folds"]`` (:func:`hiddenpop.nsum.bayes.crossval.kfold_compare`)."""
    check_spec(spec)
    adjust = visibility(spec, adjustments)
    hidden_names = list(hidden or getattr(data, "hidden", None) or [])
    model = _model(spec.model, spec, adjust, hidden_names)
    if psu is None and strata is None:
        psu, strata = getattr(data, "psu", None), getattr(data, "strata", None)
    options = dict(known_sizes=known_sizes, population=population, hidden=hidden, chains=spec.chains,
                   warmup=spec.warmup, draws=spec.draws, seed=spec.seed, target_accept=spec.target_accept,
                   sums=sums, ratios=ratios, quiet=quiet, visibility=adjust,
                   **({} if topcode is None else {"topcode": topcode}))
    if spec.model in COVARIATE_MODELS:
        options["covariates"] = covariates
    design = None if spec.unweighted else (design if design is not None else ard_design(data))
    if design is None:
        result = model.fit(data, **options)
    else:
        result = fit_weighted(model, data, design, adjust=spec.design_adjust, **options)
    bayes_data = coerce_data(data, known_sizes, population, hidden, None)
    if spec.recall != "none":
        result.warnings.extend(recall_curve.extrapolation_warnings(effective_size_draws(result),
                                                                   bayes_data.known_sizes[bayes_data.known_index]))
    _residuals(result, model, bayes_data, spec, covariate)
    if spec.kfold:
        models = {name: _model(name, spec, adjust, hidden_names) for name in dict.fromkeys(spec.kfold_models)}
        comparison = kfold_compare(models, bayes_data, folds=spec.kfold, seed=spec.seed, psu=psu, strata=strata,
                                   chains=spec.chains, warmup=spec.warmup, draws=spec.draws,
                                   target_accept=spec.target_accept, quiet=quiet)
        result.tables["kfold"] = comparison.table
        result.tables["kfold_folds"] = comparison.folds
        result.tables["kfold_pairs"] = comparison.pairs
        result.notes += comparison.notes
        result.warnings += comparison.warnings
    if spec.tau_grid:
        if result.diagnostics.get("passed", True) and "idata" in result.extras:
            result.tables["tau_sensitivity"] = tau_sensitivity(result, list(spec.tau_grid), sums=sums or None,
                                                               ratios=ratios or None, level=spec.level)
        else:
            result.notes.append("no transmission-rate sensitivity table: the fit failed its convergence gates")
    result.settings = {**to_dict(spec), **result.settings, "visibility": adjust.assumptions(spec.level)}
    return result
