"""Markov chain Monte Carlo shared by the Bayesian models of every family: NUTS on a JAX density
(:mod:`hiddenpop.mcmc.nuts`), a Gibbs sampler for densities whose every block has an exact conditional move
(:mod:`hiddenpop.mcmc.gibbs`) and the convergence gates every fit must pass (:mod:`hiddenpop.mcmc.diagnostics`)."""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "host_devices": "hiddenpop.mcmc.nuts",
    "enable_compilation_cache": "hiddenpop.mcmc.nuts",
})
