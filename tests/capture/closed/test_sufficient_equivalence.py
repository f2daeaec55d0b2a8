"""The sufficient-statistics fits equal the enumerated 2^t-cell fits where both run, at any t."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hiddenpop.capture.closed.models import STANDARD_MODELS, fit_closed
from hiddenpop.capture.closed.sufficient import fit_mt_family, poisson_binomial
from hiddenpop.capture.core.histories import Histories
from refdata import CAPTURE_DATA


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
    from hiddenpop.capture.core.histories import all_patterns

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


def _brute_force_score_information(theta, totals, freq, h, f0):
    """Score and information of the Mt/Mth Poisson likelihood by summing over all 2^t cells."""
    from hiddenpop.capture.core.histories import all_patterns

    t = len(totals)
    patterns = all_patterns(t).astype(float)
    if f0 is not None:
        patterns = np.vstack([np.zeros((1, t)), patterns])
    k = patterns.sum(axis=1).astype(int)
    x = np.column_stack([np.ones(len(patterns)), patterns, h[k]])
    mu = np.exp(x @ theta)
    observed = np.concatenate([[np.sum(freq) + (f0 or 0.0)], totals, (np.concatenate([[f0 or 0.0], freq])) @ h])
    return observed - x.T @ mu, x.T @ (x * mu[:, None])


@pytest.mark.parametrize("heterogeneity", ["none", "chao", "poisson2"])
def test_score_information_equal_brute_force_with_ties(heterogeneity):
    """The O(t^2) sums (backward messages, partial fractions, exact tied and near-tied pairs) equal the 2^t sums."""
    from hiddenpop.capture.closed.sufficient import _MtFamily
    from hiddenpop.capture.core.loglinear import heterogeneity_columns

    rng = np.random.default_rng(9)
    t = 11
    beta = rng.normal(-1.5, 0.8, size=t)
    beta[5] = beta[7] = beta[9]  # exact ties (equal n_j)
    beta[2] = beta[3] + 1e-9  # a near tie: a divided difference would lose ~7 digits here
    beta[0] = beta[3] + 3e-8  # three near-tied occasions: one pair is not neighbouring in p order
    if heterogeneity == "none":
        h = np.zeros((t + 1, 0))
    else:
        name = "Chao" if heterogeneity == "chao" else "Poisson"
        h, _ = heterogeneity_columns(np.arange(t + 1), name, t, 2.0 if name == "Poisson" else None)
        h = h[:, : 3]
    eta = rng.uniform(0.05, 0.4, size=h.shape[1]) * (0.01 if heterogeneity == "poisson2" else 1.0)
    theta = np.concatenate([[2.0], beta, eta])
    totals = rng.integers(5, 40, size=t).astype(float)
    freq = rng.integers(0, 30, size=t).astype(float)
    for f0 in (None, 17.0):
        model = _MtFamily(totals, freq, h, f0)
        score, info = model.score_information(theta)
        exact_score, exact_info = _brute_force_score_information(theta, totals, freq, h, f0)
        assert np.allclose(info, exact_info, rtol=1e-10, atol=0)
        assert np.allclose(score, exact_score, rtol=1e-9, atol=1e-9 * np.abs(exact_info).max())
        assert np.allclose(model.expected_groups(theta).sum(), exact_info[0, 0], rtol=1e-12)


def test_mth_family_identical_to_enumeration_at_13_occasions():
    """Above the old 12-occasion limit of the bias pass; the sufficient engine is what users get here."""
    data = simulate_mth(900, 13, 3.0, seed=13)
    for model in ("Mt", "Mth Chao (LB)", "Mth Poisson2", "Mth Darroch", "Mth Gamma3.5"):
        fast = fit_closed(data, model)
        full = fit_closed(data, model, engine="enumerate")
        assert fast.engine == "sufficient" and full.engine == "enumerate"
        assert fast.dropped_eta == full.dropped_eta and fast.fixed_eta == full.fixed_eta, model
        assert fast.converged == full.converged, model
        for column in ("abundance", "stderr", "deviance", "aic", "bic"):
            assert getattr(fast, column) == pytest.approx(getattr(full, column), rel=1e-8, abs=1e-8), (model, column)
        # the asymptotic bias (enumerated for the final model up to t = 16) agrees and is reported
        assert math.isfinite(fast.bias) and fast.bias == pytest.approx(full.bias, rel=1e-6, abs=1e-9), model
