"""Bayesian network scale-up models (NumPyro NUTS on JAX, CPU by default).

    from hiddenpop.nsum.bayes import CombinedModel, Priors
    from hiddenpop.nsum.bayes.calibration import tau_prior_from_counts, tau_sensitivity

    tau = tau_prior_from_counts(reported=410.0, reported_se=60.0, external_count=900)
    fit = CombinedModel(Priors(tau=tau.pair)).fit(ard, chains=4, warmup=1000, draws=1000, seed=1,
                                                  sums={"victims": ["child_nonlive", "child_livestream"],
                                                        "traffickers": ["adult_nonlive", "adult_livestream"]},
                                                  ratios={"victims_per_trafficker": ("victims", "traffickers")})
    fit.table              # posterior median, 2.5/97.5% quantiles, mean, sd, rhat, ess_bulk, ess_tail
    fit.diagnostics        # gates: passed, max_rhat, min_ess_bulk/tail, divergences, ebfmi
    fit.tables["ppc"]      # posterior predictive checks per group; fit.tables["rootogram"]
    fit.extras["idata"]    # ArviZ InferenceData

Parallel chains: call ``numpyro.set_host_device_count(4)`` *before anything imports JAX* (first lines of your
script) to run four chains on four CPU devices; otherwise the chains run vectorised on one device (same numbers
for a given device layout, usually a little slower). ``common.enable_compilation_cache()`` keeps compiled
samplers on disk between sessions.

Models: :class:`BasicModel` (fixed degrees), :class:`DegreeModel` (random log-normal degrees),
:class:`BarrierModel`, :class:`TransmissionModel`, :class:`CombinedModel` (Maltiel et al. 2015) and
:class:`OverdispersedModel` (Zheng, Salganik & Gelman 2006), :class:`CorrelatedModel` and
:class:`UncorrelatedModel` (Laga, Bao & Niu 2023, with optional covariates). See ``docs/methods/nsum-bayes.md``.
"""

from hiddenpop.nsum.bayes.barrier import BarrierModel
from hiddenpop.nsum.bayes.basic import BasicModel
from hiddenpop.nsum.bayes.combined import CombinedModel
from hiddenpop.nsum.bayes.common import BayesData, Priors, prepare_data
from hiddenpop.nsum.bayes.correlated import CorrelatedModel, UncorrelatedModel
from hiddenpop.nsum.bayes.degree import DegreeModel
from hiddenpop.nsum.bayes.overdispersed import OverdispersedModel
from hiddenpop.nsum.bayes.transmission import TransmissionModel

MODELS = {
    "basic": BasicModel,
    "degree": DegreeModel,
    "barrier": BarrierModel,
    "transmission": TransmissionModel,
    "combined": CombinedModel,
    "overdispersed": OverdispersedModel,
    "correlated": CorrelatedModel,
    "uncorrelated": UncorrelatedModel,
}

__all__ = [
    "MODELS",
    "BarrierModel",
    "BasicModel",
    "BayesData",
    "CombinedModel",
    "CorrelatedModel",
    "DegreeModel",
    "OverdispersedModel",
    "Priors",
    "TransmissionModel",
    "UncorrelatedModel",
    "prepare_data",
]
