"""A check shared by the tests that compare two samplers of the same posterior."""

import numpy as np

from hiddenpop.mcmc.nuts import rhat_ess


def assert_same_posterior(first, second, parameters) -> None:
    """Both samplers converged on each (name, index) of ``parameters`` (R-hat < 1.02, ESS > 100) and agree on
    the log scale: means within 4 Monte Carlo standard errors, spreads within 15%."""
    for name, index in parameters:
        a, b = first.samples[name], second.samples[name]
        if index is not None:
            a, b = a[..., index], b[..., index]
        a, b = np.log(a), np.log(b)
        (rhat_a, ess_a, _), (rhat_b, ess_b, _) = rhat_ess(a), rhat_ess(b)
        assert max(rhat_a, rhat_b) < 1.02 and min(ess_a, ess_b) > 100, (name, index, rhat_a, rhat_b, ess_a, ess_b)
        se = np.sqrt(a.var() / ess_a + b.var() / ess_b)
        assert abs(a.mean() - b.mean()) < 4 * se, (name, index, a.mean(), b.mean(), se)
        assert 0.85 < a.std() / b.std() < 1.15, (name, index, a.std(), b.std())
