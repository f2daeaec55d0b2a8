"""Interval helpers shared by every capture-recapture estimator.

* **Wald interval**: N -/+ z se. Symmetric, so it can fall below the number of units seen.
* **Log-transformed interval** (Chao 1987 eq. 12): with f0 = N - n the estimated number unseen,
  C = exp(z sqrt(log(1 + se^2 / f0^2))) and CI = [n + f0 / C, n + f0 C]. Never below n and skewed to the right,
  like the sampling distribution of N.

Reference: Chao (1987) Biometrics 43:783-791.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from hiddenpop.errors import ConfigError

__all__ = ["check_level", "log_transformed_ci", "normal_quantile", "wald_ci"]


def check_level(level: float) -> None:
    """Raise :class:`ConfigError` unless ``0 < level < 1``."""
    if not 0 < level < 1:
        raise ConfigError(f"confidence level must be between 0 and 1 (e.g. 0.95), got {level}")


def normal_quantile(level: float) -> float:
    """The two-sided standard-normal quantile z for a ``level`` interval (1.959964 for 0.95)."""
    check_level(level)
    return NormalDist().inv_cdf(0.5 + level / 2)


def wald_ci(abundance: float, stderr: float, level: float = 0.95) -> tuple[float, float]:
    """N -/+ z se."""
    z = normal_quantile(level)
    return abundance - z * stderr, abundance + z * stderr


def log_transformed_ci(observed: float, abundance: float, stderr: float, level: float = 0.95) -> tuple[float, float]:
    """Chao (1987) log-transformed interval for N given the number seen ``observed``; NaNs when N <= n."""
    z = normal_quantile(level)
    unseen = abundance - observed
    if not (unseen > 0 and math.isfinite(stderr) and stderr >= 0):
        return (math.nan, math.nan)
    c = math.exp(z * math.sqrt(math.log(1.0 + stderr**2 / unseen**2)))
    return observed + unseen / c, observed + unseen * c
