"""The few distribution functions the estimators need, from SciPy's special functions.

``scipy.stats`` evaluates these same special functions (Cephes/Boost through ``scipy.special``) but costs about
half a second to import, more than a closed-model fit takes. Every command that needs only a normal quantile,
an exact binomial interval or a chi-square tail uses this module instead; the results are the same numbers
(``tests/test_distributions.py`` compares each function with ``scipy.stats`` over its range).
"""

from __future__ import annotations

import math

import numpy as np

from hiddenpop import special

__all__ = [
    "beta_quantile",
    "beta_sf",
    "chi2_sf",
    "lognormal_quantile",
    "lognormal_sf",
    "normal_cdf",
    "normal_quantile",
    "normal_sf",
    "poisson_logpmf",
    "t_quantile",
    "two_sided_z",
]


def normal_cdf(x: float | np.ndarray) -> float | np.ndarray:
    """P(Z <= x) for a standard normal Z."""
    return special.ndtr(x)


def normal_sf(x: float | np.ndarray) -> float | np.ndarray:
    """P(Z > x), accurate in the upper tail (no cancellation in 1 - cdf)."""
    return special.ndtr(-np.asarray(x, dtype=float)) if np.ndim(x) else float(special.ndtr(-x))


def normal_quantile(q: float | np.ndarray) -> float | np.ndarray:
    """The x with P(Z <= x) = q."""
    return special.ndtri(q)


def two_sided_z(level: float) -> float:
    """The normal quantile of a two-sided interval at confidence ``level`` (1.96 at 0.95)."""
    return float(special.ndtri(0.5 + level / 2.0))


def t_quantile(q: float, df: float) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom."""
    return float(special.stdtrit(df, q))


def chi2_sf(x: float, df: float) -> float:
    """P(X > x) for X chi-square with ``df`` degrees of freedom (``nan`` for df <= 0)."""
    if not df > 0:
        return math.nan
    return float(special.chdtrc(df, x)) if x > 0 else 1.0


def beta_quantile(q: float | np.ndarray, a: float, b: float) -> float | np.ndarray:
    """The q-quantile of Beta(a, b)."""
    return special.betaincinv(a, b, q)


def beta_sf(x: float, a: float, b: float) -> float:
    """P(X > x) for X ~ Beta(a, b)."""
    return float(special.betaincc(a, b, min(max(x, 0.0), 1.0)))


def lognormal_quantile(q: float | np.ndarray, median: float, sdlog: float) -> float | np.ndarray:
    """The q-quantile of a log-normal with the given median and log-scale standard deviation."""
    return median * np.exp(sdlog * special.ndtri(q))


def lognormal_sf(x: float, median: float, sdlog: float) -> float:
    """P(X > x) for the log-normal of :func:`lognormal_quantile`."""
    if x <= 0:
        return 1.0
    return float(special.ndtr(-(math.log(x) - math.log(median)) / sdlog))


def poisson_logpmf(k: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """log P(X = k) for X ~ Poisson(mu), elementwise; ``-inf`` where k > 0 and mu = 0, 0 where both are 0."""
    k = np.asarray(k, dtype=float)
    mu = np.asarray(mu, dtype=float)
    return special.xlogy(k, mu) - mu - special.gammaln(k + 1.0)
