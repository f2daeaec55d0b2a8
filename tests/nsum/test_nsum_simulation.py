"""Simulation with known truth: bootstrap interval coverage when the model holds, bias when it does not.

The harness is vectorised: surveys come from ``simulate_ard_arrays`` (same stream as ``simulate_ard``), the
replicate totals from the library's ``rescaled_bootstrap``; ``test_harness_matches_estimate`` pins the harness to
``nsum.estimate`` so the coverage numbers are the library's.
"""

from __future__ import annotations

import numpy as np
import pytest

from hiddenpop import nsum
from hiddenpop.design.replicate import rescaled_bootstrap
from hiddenpop.simulate.ard import simulate_ard, simulate_ard_arrays

KNOWN = {"k1": 2e4, "k2": 5e4, "k3": 1e5, "k4": 3e4}
HIDDEN = {"h1": 5e3, "h2": 2e4}
POPULATION = 1e6
DESIGN = {"n_respondents": 1200, "n_strata": 15, "n_psu": 150, "psu_sd": 0.3, "stratum_degree_sd": 0.15}
DATASETS = 400
REPLICATES = 400
BIAS_DESIGN = {"n_respondents": 600, "n_strata": 10, "n_psu": 60, "psu_sd": 0.3}


def _mle_with_bootstrap(x, replicates, seed):
    """Killworth MLE and its percentile interval for every hidden group of one simulated survey."""
    k = len(KNOWN)
    degree = POPULATION * x.counts[:, :k].sum(axis=1) / sum(KNOWN.values())
    hidden = x.counts[:, k:]
    point = POPULATION * (x.weights @ hidden) / (x.weights @ degree)
    if replicates == 0:
        return point, None, None
    factors = rescaled_bootstrap(len(degree), strata=x.stratum, psu=x.psu, replicates=replicates, seed=seed)
    totals = factors.replicate_totals(np.column_stack([hidden, degree]), x.weights)
    reps = POPULATION * totals[:, :-1] / totals[:, [-1]]
    lower, upper = np.quantile(reps, [0.025, 0.975], axis=0)
    return point, lower, upper


def test_harness_matches_estimate():
    for seed in (1, 2):
        x = simulate_ard_arrays(KNOWN, HIDDEN, POPULATION, **DESIGN, seed=seed)
        point, lower, upper = _mle_with_bootstrap(x, 200, seed)
        result = nsum.estimate(simulate_ard(KNOWN, HIDDEN, POPULATION, **DESIGN, seed=seed).ard,
                               bootstrap=200, seed=seed)
        for j, group in enumerate(HIDDEN):
            row = result.get(group, "mle")
            assert row["estimate"] == pytest.approx(point[j], rel=1e-12)
            assert row["lower"] == pytest.approx(lower[j], rel=1e-12)
            assert row["upper"] == pytest.approx(upper[j], rel=1e-12)


def test_bootstrap_coverage_when_model_holds():
    truth = np.array(list(HIDDEN.values()))
    covered = np.zeros((DATASETS, len(HIDDEN)), dtype=bool)
    estimates = np.zeros((DATASETS, len(HIDDEN)))
    for r in range(DATASETS):
        x = simulate_ard_arrays(KNOWN, HIDDEN, POPULATION, **DESIGN, seed=10_000 + r)
        point, lower, upper = _mle_with_bootstrap(x, REPLICATES, seed=r)
        covered[r] = (lower <= truth) & (truth <= upper)
        estimates[r] = point
    coverage = covered.mean()
    print(f"\nMLE 95% rescaled-bootstrap coverage over {DATASETS} surveys: {coverage:.3f} "
          f"(by group {covered.mean(axis=0).round(3).tolist()}); relative bias {(estimates.mean(0) / truth - 1).round(4)}")
    assert 0.92 <= coverage <= 0.98
    assert np.all(covered.mean(axis=0) >= 0.90)
    # the estimator is consistent under random mixing: relative bias within 3 Monte Carlo SEs of 0
    mc_se = estimates.std(axis=0) / np.sqrt(DATASETS) / truth
    assert np.all(np.abs(estimates.mean(axis=0) / truth - 1) < 3 * mc_se)


def _relative_bias(**model):
    truth = np.array(list(HIDDEN.values()))
    estimates = np.array(
        [_mle_with_bootstrap(simulate_ard_arrays(KNOWN, HIDDEN, POPULATION, **BIAS_DESIGN, **model, seed=20_000 + r),
                             0, 0)[0]
         for r in range(200)]
    )
    return estimates.mean(axis=0) / truth - 1, estimates.std(axis=0) / truth


def test_bias_under_barrier_and_transmission():
    """Direction of the bias: transmission error scales estimates down by tau; Beta barrier effects are
    mean-preserving (no bias for the MLE) but make estimates noisier."""
    bias_mixing, spread_mixing = _relative_bias()
    bias_barrier, spread_barrier = _relative_bias(barrier_rho=0.2)
    tau = 0.6
    bias_transmission, _ = _relative_bias(transmission=tau)
    bias_both, _ = _relative_bias(barrier_rho=0.2, transmission=tau)
    print(f"\nrelative bias of the MLE (200 surveys): random mixing {bias_mixing.round(3)}, "
          f"barrier rho=0.2 {bias_barrier.round(3)} (spread x{(spread_barrier / spread_mixing).round(2)}), "
          f"transmission tau={tau} {bias_transmission.round(3)}, both {bias_both.round(3)}")
    assert np.all(np.abs(bias_mixing) < 0.02)
    assert np.all(np.abs(bias_barrier) < 0.05)
    assert np.all(spread_barrier > 1.2 * spread_mixing)
    assert np.all(bias_transmission < 0) and np.allclose(bias_transmission, tau - 1, atol=0.03)
    assert np.all(bias_both < 0) and np.allclose(bias_both, tau - 1, atol=0.06)
