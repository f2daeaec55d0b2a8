"""Simulation with known truth (fixed seeds, vectorised): Chapman on two lists, Chao's lower bound under M_th."""

from __future__ import annotations

import numpy as np

from hiddenpop.capture.closed.forms import chapman, lincoln_petersen, log_transformed_ci
from hiddenpop.capture.closed.models import fit_closed
from hiddenpop.capture.core.histories import Histories


def test_chapman_nearly_unbiased_and_covers_on_two_lists():
    rng = np.random.default_rng(20261121)
    population, reps = 400, 20000
    p1, p2 = 0.25, 0.3
    n1 = rng.binomial(population, p1, size=reps)
    # independent lists: the overlap is hypergeometric given n1
    m = rng.binomial(n1, p2)
    n2 = m + rng.binomial(population - n1, p2)
    estimates = np.array([chapman(a, b, c).abundance for a, b, c in zip(n1, n2, m, strict=True)])
    relative_bias = estimates.mean() / population - 1
    se_mean = estimates.std(ddof=1) / np.sqrt(reps) / population
    assert abs(relative_bias) < max(0.005, 3 * se_mean)  # nearly unbiased (n1 + n2 >= N not needed here)
    lp = np.array([lincoln_petersen(a, b, c).abundance for a, b, c in zip(n1[:2000], n2[:2000], m[:2000], strict=True)])
    assert lp.mean() > estimates[:2000].mean()  # Lincoln-Petersen is biased upwards
    covered = 0
    for a, b, c in zip(n1[:4000], n2[:4000], m[:4000], strict=True):
        form = chapman(a, b, c)
        covered += form.lower <= population <= form.upper
    coverage = covered / 4000
    assert 0.93 <= coverage <= 0.97


def _simulate_heterogeneous(rng, population, occasions):
    catchability = rng.beta(1.5, 6.0, size=population)
    time_effect = np.linspace(0.7, 1.3, occasions)
    p = np.clip(catchability[:, None] * time_effect[None, :], 0, 0.95)
    caught = rng.random((population, occasions)) < p
    return caught[caught.any(axis=1)].astype(np.uint8)


def test_mth_chao_lower_bound_covers_or_sits_below_truth():
    """Under M_th with strong heterogeneity, Chao's estimator is a lower bound: its interval covers the truth
    or lies below it; it should rarely lie above. M_t, ignoring heterogeneity, underestimates badly."""
    rng = np.random.default_rng(4)
    population, occasions, reps = 500, 6, 40
    above = covered = 0
    chao_estimates, mt_estimates = [], []
    for _ in range(reps):
        data = Histories.from_patterns(_simulate_heterogeneous(rng, population, occasions))
        fit = fit_closed(data, "Mth Chao (LB)")
        lower, upper = log_transformed_ci(data.observed, fit.abundance, fit.stderr)
        above += lower > population
        covered += lower <= population <= upper
        chao_estimates.append(fit.abundance)
        mt_estimates.append(fit_closed(data, "Mt").abundance)
    assert above <= 0.1 * reps
    assert covered + (reps - above - covered) == reps - above
    assert np.mean(chao_estimates) <= population * 1.02  # a lower bound on average
    assert np.mean(mt_estimates) < np.mean(chao_estimates) < population * 1.02
