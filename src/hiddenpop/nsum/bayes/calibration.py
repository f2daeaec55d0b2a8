"""Under-reporting (transmission) calibration from external counts, and sensitivity to the assumed rate.

Why: the transmission rate tau_k (the share of a respondent's ties to group k that the respondent reports) is not
identified by ARD: the data inform only the effective size w_k = tau_k N_k (see :mod:`.transmission`). Study 2
met respondents who "seized up" and answered zero, and bridged the gap with casework: victims brought to safety
and suspects arrested in the areas the survey covered.

Method (:func:`tau_prior_from_counts`). In the overlap areas (population P), let

* R = the survey's scale-up estimate of the group there *as reported*, R = P * sum_i y_ik / sum_i d_i over the
  respondents living in those areas, with standard error s_R (:func:`reported_size_in_areas`); it estimates
  tau_k T, where T is the true number of group members in those areas;
* c = the external count (rescued victims, arrested suspects) in the same areas and period, and
  ``completeness`` = the share of the true members that casework is assumed to have found (1 = casework found
  everyone, the assumption that turns the count into the truth; values below 1 say casework saw only part).

Then T = c / completeness and tau = R / T. Treating c as Poisson and R as approximately normal, the delta method
gives  mean m = R completeness / c  and  var v = m^2 (s_R^2 / R^2 + 1 / c).  The informative prior is the Beta
with that mean and variance: a = m (m(1-m)/v - 1), b = (1-m)(m(1-m)/v - 1), which needs v < m(1 - m) and m < 1.
If m >= 1 the survey reports more than casework found: casework is incomplete (lower ``completeness``) or the
areas do not match; a ConfigError says so rather than clipping.

Assumptions: the overlap areas' respondents report ties as the national sample does; casework counts refer to
the same population definition and period; the degree used for R is the same as in the model.
When it fails: tiny counts (c < ~10) give a wide prior (honestly); counts from areas chosen *because* casework
was active overstate prevalence there, which is why the prior is on tau (a reporting rate), not on N.

:func:`tau_sensitivity` is the companion table: estimates of every hidden group across a grid of assumed tau,
computed draw by draw from one fit (N_k = w_k / tau).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.distributions import beta_quantile
from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.results import Estimates


@dataclass(frozen=True)
class TauPrior:
    """A Beta(a, b) prior on a transmission rate, with how it was obtained."""

    a: float
    b: float
    mean: float
    sd: float
    reported: float
    reported_se: float
    external_count: float
    completeness: float

    @property
    def pair(self) -> tuple[float, float]:
        return (self.a, self.b)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        return tuple(float(v) for v in beta_quantile(np.array([(1 - level) / 2, (1 + level) / 2]), self.a, self.b))

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval()
        return {"a": self.a, "b": self.b, "mean": self.mean, "sd": self.sd, "lower": low, "upper": high,
                "reported": self.reported, "reported_se": self.reported_se,
                "external_count": self.external_count, "completeness": self.completeness}


def reported_size_in_areas(
    hidden_counts: Sequence[float], degrees: Sequence[float], area_population: float
) -> tuple[float, float]:
    """Scale-up estimate R = P * sum y / sum d for respondents in the overlap areas, and its linearised SE.

    SE: the ratio estimator's variance, P^2 * sum (y_i - r d_i)^2 / ((n - 1) n dbar^2) with r = sum y / sum d.
    """
    y = np.asarray(hidden_counts, dtype=float)
    d = np.asarray(degrees, dtype=float)
    if y.shape != d.shape or y.ndim != 1 or len(y) < 2:
        raise ConfigError("hidden_counts and degrees must be equal-length vectors with at least 2 respondents")
    if not np.all(np.isfinite(y)) or not np.all(np.isfinite(d)) or d.sum() <= 0:
        raise ConfigError("hidden_counts and degrees must be finite, with a positive total degree")
    if not area_population > 0:
        raise ConfigError("area_population must be positive")
    ratio = y.sum() / d.sum()
    n = len(y)
    residual = y - ratio * d
    variance = np.sum(residual**2) / ((n - 1) * n * d.mean() ** 2)
    return float(area_population * ratio), float(area_population * math.sqrt(variance))


def tau_prior_from_counts(
    reported: float, reported_se: float, external_count: float, *, completeness: float = 1.0
) -> TauPrior:
    """Beta prior on tau from the survey's reported size and an external count in the same areas (see module)."""
    if not (reported > 0 and math.isfinite(reported)):
        raise ConfigError(f"reported size must be positive, got {reported!r}; no respondent in the overlap areas "
                          "reported the group, so the data cannot calibrate tau there")
    if not (reported_se >= 0 and math.isfinite(reported_se)):
        raise ConfigError(f"reported_se must be non-negative, got {reported_se!r}")
    if not (external_count > 0 and math.isfinite(external_count)):
        raise ConfigError(f"external_count must be positive, got {external_count!r}")
    if not (0 < completeness <= 1):
        raise ConfigError(f"completeness must lie in (0, 1], got {completeness!r}")
    truth = external_count / completeness
    mean = reported / truth
    if mean >= 1:
        raise ConfigError(
            f"the survey's reported size ({reported:.4g}) is not below the external count scaled by completeness "
            f"({truth:.4g}): tau would be >= 1. Casework is likely incomplete (lower completeness) or the areas "
            "or periods do not match"
        )
    variance = mean**2 * ((reported_se / reported) ** 2 + 1.0 / external_count)
    if variance >= mean * (1 - mean):
        raise ConfigError(
            f"the calibration is too uncertain for a Beta prior (sd {math.sqrt(variance):.3g} for mean "
            f"{mean:.3g}); use the default uniform prior and the sensitivity table instead"
        )
    factor = mean * (1 - mean) / variance - 1
    return TauPrior(a=float(mean * factor), b=float((1 - mean) * factor), mean=float(mean),
                    sd=float(math.sqrt(variance)), reported=float(reported), reported_se=float(reported_se),
                    external_count=float(external_count), completeness=float(completeness))


def effective_size_draws(estimates: Estimates) -> dict[str, np.ndarray]:
    """Draws of the reported ("effective") size tau_k N_k of every hidden group from a fitted model."""
    draws = estimates.extras.get("draws")
    if draws is None:
        raise ModelError("these estimates carry no posterior draws; pass the result of a Bayesian model's fit()")
    hidden = estimates.settings.get("hidden_groups", [])
    source = draws.samples.get("effective_size", draws.samples.get("size"))
    return {g: source[..., j].reshape(-1) for j, g in enumerate(hidden)}


def tau_sensitivity(
    estimates: Estimates,
    taus: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    *,
    sums: Mapping[str, Sequence[str]] | None = None,
    ratios: Mapping[str, tuple[str, str]] | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Size estimates across a grid of assumed transmission rates, from one fit.

    For each assumed tau (the same for every hidden group), N_k = w_k / tau draw by draw, where w_k is the
    effective size (the size itself for models without transmission). Sums scale the same way; ratios between
    hidden groups do not change under a common tau and are repeated for reference. Columns: quantity, tau,
    estimate (median), lower, upper, mean.
    """
    if not taus or any(not (0 < t <= 1) for t in taus):
        raise ConfigError(f"every assumed tau must lie in (0, 1], got {list(taus)}")
    base = effective_size_draws(estimates)
    for name, members in (sums or {}).items():
        missing = [m for m in members if m not in base]
        if missing:
            raise ConfigError(f"sum {name!r} names groups that are not hidden groups of this fit: {missing}")
        base[name] = sum(base[m] for m in members)
    rows = []
    q = [(1 - level) / 2, 0.5, (1 + level) / 2]
    for tau in taus:
        scaled = {k: v / tau for k, v in base.items()}
        for name, values in scaled.items():
            low, mid, high = np.quantile(values, q)
            rows.append({"quantity": name, "tau": float(tau), "estimate": float(mid), "lower": float(low),
                         "upper": float(high), "mean": float(values.mean())})
        for name, (num, den) in (ratios or {}).items():
            if num not in scaled or den not in scaled:
                raise ConfigError(f"ratio {name!r} refers to unknown quantities {num!r}/{den!r}")
            values = scaled[num] / scaled[den]
            low, mid, high = np.quantile(values, q)
            rows.append({"quantity": name, "tau": float(tau), "estimate": float(mid), "lower": float(low),
                         "upper": float(high), "mean": float(values.mean())})
    return pd.DataFrame(rows)
