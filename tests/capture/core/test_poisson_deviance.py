"""The Poisson deviance with a precomputed mask of positive counts equals the plain formula, bit for bit."""

from __future__ import annotations

import numpy as np

from hiddenpop.capture.core.loglinear import poisson_deviance


def _plain(y: np.ndarray, mu: np.ndarray) -> float:
    pos = y > 0
    return float(2.0 * np.sum(y[pos] * np.log(y[pos] / mu[pos])) - 2.0 * np.sum(y - mu))


def test_masked_deviance_equals_the_plain_formula():
    rng = np.random.default_rng(11)
    for cells in (1, 3, 31, 63, 1000):
        y = np.floor(rng.exponential(20.0, cells))
        y[rng.uniform(size=cells) < 0.3] = 0.0
        for _ in range(20):
            mu = np.exp(rng.normal(np.log1p(y), 0.7))
            expected = _plain(y, mu)
            assert poisson_deviance(y, mu) == expected
            assert poisson_deviance(y, mu, y > 0) == expected
            assert np.isfinite(expected)
    zeros = np.zeros(4)
    assert poisson_deviance(zeros, np.full(4, 0.5), zeros > 0) == 4.0  # only the 2 mu terms
