"""The sufficient-statistics fits equal the enumerated 2^t-cell fits where both run, at any t."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import CAPTURE_DATA
from hiddenpop.capture.closed import STANDARD_MODELS, fit_closed
from hiddenpop.capture.histories import Histories
from hiddenpop.capture.sufficient import fit_mt_family, poisson_binomial


def simulate_mth(units: int, occasions: int, mean_captures: float, seed: int) -> Histories:
    rng = np.random.default_rng(seed)
    unit = rng.beta(2.0, 6.0, size=units)
    time_effect = rng.uniform(0.6, 1.4, size=occasions)
    p = unit[:, None] * time_effect[None, :]
    p = np.clip(p * mean_captures / p.sum(axis=1).mean(), 0.0, 0.95)
    caught = rng.random((units, occasions)) < p
    return Histories.from_patterns(caught[caught.any(axis=1)].astype(np.uint8))


@pytest.fixture(scope="module")
def datasets():
    return {
        "hare": Histories.from_file(CAPTURE_DATA / "rcapture_hare.csv"),
        "sim8": simulate_mth(600, 8, 2.0, seed=11),
    }


@pytest.mark.parametrize("name", ["hare", "sim8"])
def test_every_model_identical_to_enumeration(datasets, name):
    data = datasets[name]
    for model in STANDARD_MODELS:
        fast = fit_closed(data, model)
        full = fit_closed(data, model, engine="enumerate")
        assert fast.engine in ("grouped", "sufficient") and full.engine == "enumerate"
        assert fast.dropped_eta == full.dropped_eta, model
        for column in ("abundance", "stderr", "deviance", "aic", "bic"):
            assert getattr(fast, column) == pytest.approx(getattr(full, column), rel=1e-8, abs=1e-8), (model, column)
        assert fast.df == full.df
        if math.isfinite(full.bias):
            assert fast.bias == pytest.approx(full.bias, rel=1e-6, abs=1e-9), model


def test_poisson_binomial_matches_brute_force():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.9, size=7)
    from hiddenpop.capture.histories import all_patterns

    patterns = np.vstack([np.zeros((1, 7), dtype=np.uint8), all_patterns(7)])
    probs = np.prod(np.where(patterns == 1, p, 1 - p), axis=1)
    expected = np.bincount(patterns.sum(axis=1), weights=probs, minlength=8)
    assert np.allclose(poisson_binomial(p), expected, rtol=1e-12, atol=1e-15)


def test_mt_at_52_occasions_solves_darroch_equation():
    """Closed-form check at t = 52: the Mt MLE solves prod_j (1 - n_j/N) = 1 - n/N (Darroch 1958)."""
    data = simulate_mth(1500, 52, 4.0, seed=52)
    fit = fit_closed(data, "Mt")
    assert fit.engine == "sufficient" and fit.converged
    n_j = data.occasion_totals()
    big_n = fit.abundance
    assert np.prod(1 - n_j / big_n) == pytest.approx(1 - data.observed / big_n, rel=1e-8)
    # the cell count 2^52 - 1 enters df exactly as for the enumerated model
    assert fit.df == float(2**52 - 1) - 53


def test_mth_family_at_large_t_converges():
    data = simulate_mth(2000, 52, 4.0, seed=7)
    for model in ("Mth Chao (LB)", "Mth Darroch", "Mth Gamma3.5"):
        fit = fit_closed(data, model)
        assert fit.converged and data.observed < fit.abundance < 3 * data.observed, model
    chao = fit_closed(data, "Mth Chao (LB)")
    largest = int(np.flatnonzero(data.frequencies())[-1]) + 1
    assert chao.fixed_eta[0] == f"eta{largest + 1}" and chao.fixed_eta[-1] == "eta52"


def test_direct_sufficient_api_matches_profile_cell():
    data = Histories.from_file(CAPTURE_DATA / "rcapture_hare.csv")
    plain = fit_mt_family(data.occasion_totals(), data.frequencies())
    assert data.observed + math.exp(plain.coef[0]) == pytest.approx(fit_closed(data, "Mt").abundance, rel=1e-10)
    # putting the fitted mu_0 in the never-caught cell leaves the MLE unchanged (its residual is zero)
    with_cell = fit_mt_family(data.occasion_totals(), data.frequencies(), unobserved=math.exp(plain.coef[0]))
    assert with_cell.coef[0] == pytest.approx(plain.coef[0], rel=1e-8)


def test_fast_pair_sums_equal_exact_sweep_with_ties():
    from hiddenpop.capture.sufficient import _pair_sums, _pair_sums_sweep, _prefix_suffix

    rng = np.random.default_rng(9)
    t = 40
    p = rng.uniform(0.02, 0.6, size=t)
    p[5] = p[17] = p[30]  # exact ties
    p[8] = p[9] * (1 + 1e-9)  # a near tie
    prefix, suffix = _prefix_suffix(p)
    loo = np.array([np.convolve(prefix[j][: j + 1], suffix[j + 1][: t - j])[:t] for j in range(t)])
    w = np.exp(rng.normal(0, 3, size=t + 1))
    padded = np.concatenate([w, np.zeros(t + 3)])
    k = np.arange(t + 1)
    index = k[:, None] + k[None, :]
    fast = _pair_sums(p, prefix, suffix, loo, padded, index)
    exact = _pair_sums_sweep(p, prefix, padded, index)
    assert np.allclose(fast, exact, rtol=1e-9, atol=0)
