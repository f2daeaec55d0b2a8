"""Markov chain Monte Carlo shared by the Bayesian models of every family: NUTS on a JAX density
(:mod:`hiddenpop.mcmc.nuts`) and the convergence gates every fit must pass (:mod:`hiddenpop.mcmc.diagnostics`)."""
