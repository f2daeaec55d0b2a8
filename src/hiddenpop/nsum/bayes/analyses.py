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
from hiddenpop.nsum.bayes.common import coerce_data
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
    recall_curve.check(spec.recall, spec.model)
    if spec.tau_grid and any(t <= 0 for t in spec.tau_grid):
        raise ConfigError("every assumed transmission rate in tau_grid must lie in (0, 1]")
    visibility(spec)


def visibility(spec: BayesSpec, adjustments: Adjustments | None = None) -> Adjustments:
    """The spec's visibility model (``adjustments`` instead when given), with the deprecated tau_prior as a Beta."""
    if adjustments is not None:
        return adjustments
    transmission = spec.transmission_rate if spec.tau_prior is None else Beta(*spec.tau_prior)
    return Adjustments(degree_ratio=spec.degree_ratio, transmission_rate=transmission, frame_ratio=spec.frame_ratio)


def _tau_priors(spec: BayesSpec, adjust: Adjustments,
                hidden: Sequence[str]) -> tuple[float, float] | dict[str, tuple[float, float]] | None:
    """The Beta prior of the hidden groups' own transmission rates, from the declared visibility model: one pair
    when one declaration covers every group, else a pair per group (others keep the uniform default)."""
    if spec.model not in TAU_MODELS:
        return None
    declared = [d for d in adjust.declared if d.factor == "transmission_rate"]
    for entry in declared:
        if not isinstance(entry.distribution, Beta):
            raise ConfigError(f"the {spec.model} model draws each group's transmission rate from a Beta prior; "
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
) -> Estimates:
    """Fit ``spec.model`` to ``data`` (an ARD, :class:`BayesData` or a counts table with ``known_sizes`` and
    ``population``) and add the transmission-rate sensitivity table when the fit passes its gates.

    The visibility model (``adjustments``, else the spec's factors) enters as priors: a model with its own
    transmission rate takes each group's declared Beta as its tau prior (drawn per group inside the model); every
    other declared factor divides the posterior size draws, one draw per posterior draw."""
    check_spec(spec)
    adjust = visibility(spec, adjustments)
    tau = _tau_priors(spec, adjust, list(hidden or getattr(data, "hidden", None) or []))
    priors = (Priors() if tau is None else Priors(tau=tau)).validate()
    model_class = MODELS[spec.model]
    options = {} if spec.model == "overdispersed" else {"likelihood": spec.likelihood}
    if spec.recall != "none":
        options["recall"] = spec.recall
    model = model_class(priors=priors, **options)
    result = model.fit(data, known_sizes=known_sizes, population=population, hidden=hidden, chains=spec.chains,
                       warmup=spec.warmup, draws=spec.draws, seed=spec.seed, target_accept=spec.target_accept,
                       sums=sums, ratios=ratios, quiet=quiet, visibility=adjust,
                       **({} if topcode is None else {"topcode": topcode}))
    if spec.recall != "none":
        known = coerce_data(data, known_sizes, population, hidden, None)
        result.warnings.extend(recall_curve.extrapolation_warnings(effective_size_draws(result),
                                                                   known.known_sizes[known.known_index]))
    if spec.tau_grid:
        if result.diagnostics.get("passed", True) and "idata" in result.extras:
            result.tables["tau_sensitivity"] = tau_sensitivity(result, list(spec.tau_grid), sums=sums or None,
                                                               ratios=ratios or None, level=spec.level)
        else:
            result.notes.append("no transmission-rate sensitivity table: the fit failed its convergence gates")
    result.settings = {**to_dict(spec), **result.settings, "visibility": adjust.assumptions(spec.level)}
    return result
