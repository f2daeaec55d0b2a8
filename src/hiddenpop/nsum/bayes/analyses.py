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
    if spec.tau_grid and any(t <= 0 for t in spec.tau_grid):
        raise ConfigError("every assumed transmission rate in tau_grid must lie in (0, 1]")


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
) -> Estimates:
    """Fit ``spec.model`` to ``data`` (an ARD, :class:`BayesData` or a counts table with ``known_sizes`` and
    ``population``) and add the transmission-rate sensitivity table when the fit passes its gates."""
    from hiddenpop.nsum.bayes import MODELS, Priors
    from hiddenpop.nsum.bayes.calibration import tau_sensitivity

    check_spec(spec)
    priors = (Priors() if spec.tau_prior is None else Priors(tau=tuple(spec.tau_prior))).validate()
    model_class = MODELS[spec.model]
    options = {} if spec.model == "overdispersed" else {"likelihood": spec.likelihood}
    model = model_class(priors=priors, **options)
    result = model.fit(data, known_sizes=known_sizes, population=population, hidden=hidden, chains=spec.chains,
                       warmup=spec.warmup, draws=spec.draws, seed=spec.seed, target_accept=spec.target_accept,
                       sums=sums, ratios=ratios, quiet=quiet, **({} if topcode is None else {"topcode": topcode}))
    if spec.tau_grid:
        if result.diagnostics.get("passed", True) and "idata" in result.extras:
            result.tables["tau_sensitivity"] = tau_sensitivity(result, list(spec.tau_grid), sums=sums or None,
                                                               ratios=ratios or None, level=spec.level)
        else:
            result.notes.append("no transmission-rate sensitivity table: the fit failed its convergence gates")
    result.settings = {**to_dict(spec), **result.settings}
    return result
