"""hiddenpop.distributions against scipy.stats (the reference), over the ranges the estimators use, and its
closed-form cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hiddenpop import distributions as d

Q = np.array([1e-12, 1e-6, 0.001, 0.025, 0.05, 0.3, 0.5, 0.7, 0.95, 0.975, 0.999, 1 - 1e-9])


def test_normal_functions_match_scipy_stats():
    x = np.linspace(-38, 38, 301)
    assert np.allclose(d.normal_cdf(x), stats.norm.cdf(x), rtol=1e-13, atol=0)
    assert np.allclose(d.normal_sf(x), stats.norm.sf(x), rtol=1e-13, atol=0)
    assert d.normal_sf(3.0) == pytest.approx(stats.norm.sf(3.0), rel=1e-14)
    assert np.allclose(d.normal_quantile(Q), stats.norm.ppf(Q), rtol=1e-13)
    assert d.two_sided_z(0.95) == pytest.approx(1.959963984540054, rel=1e-15)
    assert d.two_sided_z(0.9) == pytest.approx(stats.norm.ppf(0.95), rel=1e-15)


@pytest.mark.parametrize("df", [1, 2, 5, 29.5, 1000])
def test_t_and_chi_square_match_scipy_stats(df):
    for q in Q[1:-1]:
        assert d.t_quantile(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-10)
    for x in [0.0, 1e-8, 0.5, 3.84, 40.0, 400.0]:
        assert d.chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-10, abs=1e-300)
    assert math.isnan(d.chi2_sf(2.0, 0))


def test_t_quantile_closed_forms():
    # df = 1 is the Cauchy distribution: quantile tan(pi (q - 1/2)); df = 2: (2q - 1) / sqrt(2 q (1 - q))
    for q in [0.6, 0.9, 0.975]:
        assert d.t_quantile(q, 1) == pytest.approx(math.tan(math.pi * (q - 0.5)), rel=1e-12)
        assert d.t_quantile(q, 2) == pytest.approx((2 * q - 1) / math.sqrt(2 * q * (1 - q)), rel=1e-12)


@pytest.mark.parametrize(("a", "b"), [(0.5, 0.5), (1, 19), (3, 40.5), (250, 7), (1e-3, 2)])
def test_beta_matches_scipy_stats(a, b):
    assert np.allclose(d.beta_quantile(Q, a, b), stats.beta.ppf(Q, a, b), rtol=1e-9, atol=1e-300)
    for x in [-0.1, 0.0, 0.01, 0.5, 0.99, 1.0]:
        assert d.beta_sf(x, a, b) == pytest.approx(stats.beta.sf(x, a, b), rel=1e-10, abs=1e-300)


def test_beta_quantile_closed_form():
    # Beta(1, b): F(x) = 1 - (1 - x)^b, so the quantile is 1 - (1 - q)^(1/b)
    for q in [0.025, 0.5, 0.975]:
        assert d.beta_quantile(q, 1, 4) == pytest.approx(1 - (1 - q) ** 0.25, rel=1e-12)


def test_lognormal_matches_scipy_stats():
    frozen = stats.lognorm(s=0.4, scale=0.7)
    assert np.allclose(d.lognormal_quantile(Q, 0.7, 0.4), frozen.ppf(Q), rtol=1e-12)
    for x in [-1.0, 0.0, 0.1, 0.7, 3.0]:
        assert d.lognormal_sf(x, 0.7, 0.4) == pytest.approx(frozen.sf(x), rel=1e-12)
    assert d.lognormal_quantile(0.5, 0.7, 0.4) == pytest.approx(0.7, rel=1e-15)  # the median


def test_poisson_logpmf_matches_scipy_stats():
    k = np.array([0, 0, 1, 5, 30, 1000, 3])
    mu = np.array([0.0, 2.5, 1e-9, 4.2, 30.0, 990.0, 0.0])
    assert np.allclose(d.poisson_logpmf(k, mu), stats.poisson.logpmf(k, mu), rtol=1e-12, atol=1e-12)
    assert d.poisson_logpmf(np.array([3]), np.array([0.0]))[0] == -np.inf
