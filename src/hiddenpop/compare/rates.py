"""Exact intervals for Poisson counts and rate ratios, and the ranking of rates by simulation.

* :func:`garwood_interval` -- the exact (Garwood 1936) interval of a Poisson mean from one count ``x``:
  ``[chi2_{alpha/2}(2x) / 2, chi2_{1-alpha/2}(2x + 2) / 2]`` (lower bound 0 when ``x = 0``). It is the inversion of
  the two one-sided Poisson tests, so it covers the mean with probability at least ``level`` for every mean (the
  same chi-square form Ulm 1990 gives for a standardized mortality ratio).
* :func:`rate_ratio_interval` -- the exact conditional interval of a ratio of two Poisson rates. With counts
  ``x1 ~ Poisson(lambda1 b1)`` and ``x2 ~ Poisson(lambda2 b2)``, ``x1`` given ``n = x1 + x2`` is
  ``Binomial(n, p)`` with ``p = lambda1 b1 / (lambda1 b1 + lambda2 b2)``; the Clopper-Pearson interval of ``p``
  mapped through ``RR = p / (1 - p) * b2 / b1`` is an exact interval of ``RR = lambda1 / lambda2`` (the classical
  conditional method; Breslow and Day 1987). The two-sided p-value is the exact binomial test of
  ``p = b1 / (b1 + b2)``.
* :func:`rank_simulation` -- draws every rate from its Gamma posterior (``Gamma(x + a0, b)`` for a
  ``Gamma(a0, 0)`` prior; ``a0 = 0.5`` is Jeffreys' prior) and ranks the draws: the distribution of each country's
  rank and the ratio of the focus country's rate to the largest other rate.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["RankDraws", "garwood_interval", "rank_simulation", "rate_ratio_interval", "rate_ratio_p_value"]

#: Draws ranked at a time (bounds the memory of the simulation: chunk x countries values).
CHUNK = 10_000


def garwood_interval(count: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval of a Poisson mean from one observed ``count``."""
    if count < 0:
        raise ValueError("a Poisson count is 0 or more")
    alpha = 1.0 - level
    lower = 0.0 if count == 0 else float(stats.chi2.ppf(alpha / 2, 2 * count)) / 2
    upper = float(stats.chi2.ppf(1 - alpha / 2, 2 * count + 2)) / 2
    return lower, upper


def rate_ratio_interval(x1: int, base1: float, x2: int, base2: float,
                        level: float = 0.95) -> tuple[float, float, float]:
    """(estimate, lower, upper) of the rate ratio ``(x1 / base1) / (x2 / base2)``, exact conditional on
    ``x1 + x2``. The estimate is infinite when ``x2 = 0`` (NaN when both are 0); the upper bound is infinite
    when ``x2 = 0`` and the lower bound 0 when ``x1 = 0``."""
    alpha = 1.0 - level
    n = x1 + x2
    scale = base2 / base1
    if n == 0:
        return math.nan, 0.0, math.inf
    estimate = math.inf if x2 == 0 else (x1 / x2) * scale
    p_lower = 0.0 if x1 == 0 else float(stats.beta.ppf(alpha / 2, x1, n - x1 + 1))
    p_upper = 1.0 if x2 == 0 else float(stats.beta.ppf(1 - alpha / 2, x1 + 1, n - x1))
    lower = p_lower / (1 - p_lower) * scale
    upper = math.inf if p_upper >= 1.0 else p_upper / (1 - p_upper) * scale
    return estimate, lower, upper


def rate_ratio_p_value(x1: int, base1: float, x2: int, base2: float) -> float:
    """Exact two-sided p-value of equal rates (the binomial test of ``x1`` out of ``x1 + x2`` with
    ``p = base1 / (base1 + base2)``); 1 when both counts are 0."""
    n = x1 + x2
    if n == 0:
        return 1.0
    return float(stats.binomtest(int(x1), int(n), base1 / (base1 + base2)).pvalue)


class RankDraws:
    """What :func:`rank_simulation` found: ``histogram[i, r]`` draws in which country ``i`` ranked ``r + 1``
    (largest rate first), and, with a focus country, its rate divided by the largest other rate in each draw."""

    def __init__(self, histogram: np.ndarray, focus_ratio: np.ndarray | None, draws: int) -> None:
        self.histogram = histogram
        self.focus_ratio = focus_ratio
        self.draws = draws

    def probabilities(self) -> np.ndarray:
        """``probabilities()[i, r]``: the probability that country ``i`` ranks ``r + 1``."""
        return self.histogram / self.draws

    def p_first(self) -> np.ndarray:
        return self.histogram[:, 0] / self.draws

    def rank_quantile(self, q: float) -> np.ndarray:
        """The smallest rank (1-based) whose cumulative probability reaches ``q``, per country."""
        cumulative = np.cumsum(self.histogram, axis=1) / self.draws
        return np.argmax(cumulative >= q - 1e-12, axis=1) + 1

    def mean_rank(self) -> np.ndarray:
        ranks = np.arange(1, self.histogram.shape[1] + 1)
        return self.histogram @ ranks / self.draws


def rank_simulation(counts: np.ndarray, exposures: np.ndarray, *, draws: int, prior_shape: float,
                    rng: np.random.Generator, focus: int | None = None) -> RankDraws:
    """Rank the rates ``lambda_i ~ Gamma(counts_i + prior_shape, rate = exposures_i)`` over ``draws`` draws.

    Draws are made ``CHUNK`` at a time from ``rng`` in a fixed order, so the same seed gives the same numbers.
    Ties have probability zero (continuous draws); the ranking is by decreasing rate.
    """
    counts = np.asarray(counts, dtype=float)
    exposures = np.asarray(exposures, dtype=float)
    n = counts.size
    shape = counts + prior_shape
    histogram = np.zeros((n, n), dtype=np.int64)
    ratio = np.empty(draws) if focus is not None else None
    offsets = np.arange(n) * n
    done = 0
    while done < draws:
        size = min(CHUNK, draws - done)
        rates = rng.gamma(shape, size=(size, n)) / exposures
        order = np.argsort(-rates, axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.broadcast_to(np.arange(n), order.shape), axis=1)
        histogram += np.bincount((ranks + offsets).ravel(), minlength=n * n).reshape(n, n)
        if ratio is not None:
            others = np.delete(rates, focus, axis=1).max(axis=1)
            ratio[done:done + size] = rates[:, focus] / others
        done += size
    return RankDraws(histogram, ratio, draws)
