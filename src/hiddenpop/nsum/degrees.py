"""Respondent degrees (personal network sizes) for network scale-up.

Three definitions, each with its own scale-up base (the population the degree is measured against):

* **Known population** (Killworth et al. 1998): d_i = N_base * sum_{k in K} y_ik / sum_{k in K} N_k. It is the
  maximum-likelihood estimate of d_i when y_ik ~ Poisson(d_i N_k / N_base) (approximately so under the
  binomial model). Assumes random mixing and perfect recall for the known groups; fails when known groups are
  recalled with error (large groups under-, small groups over-reported), when the respondent's network is not
  a random draw from the population (barrier effects) or when the known sizes are wrong. Zero when a respondent
  reports nobody in any known group.
* **Summation**: d_i = sum_{k in C} y_ik over listed columns C that together make up a population N_base (e.g.
  the four child age bands, whose union is all children). Assumes the listed groups partition the base
  population and are recalled completely; no known sizes needed. When C are known groups whose sizes sum to
  N_base it equals the known-population degree.
* **Mean of sums** (Habecker, Dombrowski & Khan 2015; as written in Laga et al. 2021):
  d_i = (N_base / L) * sum_{k in K} y_ik / N_k, the average of the L per-group scale-ups. It weights small
  groups more heavily, so it is more sensitive to their recall errors.

Reference: Killworth, McCarty, Bernard, Shelley & Johnsen (1998), Evaluation Review 22:289-308; Laga, Bao &
Niu (2021), "Thirty years of the network scale-up method", JASA 116:1548-1559.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hiddenpop.data.ard import ARD
from hiddenpop.errors import ConfigError

DEGREE_METHODS = ("known_population", "summation", "mean_of_sums")


@dataclass
class Degree:
    """Degrees of the respondents of one ARD, with the scale-up base they refer to."""

    values: np.ndarray
    method: str
    columns: list[str]
    population: float
    total_known_size: float | None = None

    @property
    def zero(self) -> np.ndarray:
        return self.values <= 0

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "columns": list(self.columns),
            "population_base": self.population,
            "total_known_size": self.total_known_size,
        }


def degree(
    ard: ARD,
    method: str = "known_population",
    *,
    columns: Sequence[str] | None = None,
    population: float | None = None,
) -> Degree:
    """Degrees of every respondent in ``ard``.

    Parameters
    ----------
    method:
        ``"known_population"`` (default), ``"summation"`` or ``"mean_of_sums"`` (see the module docstring).
    columns:
        Groups used. Known-population and mean-of-sums default to every known group; summation defaults to
        ``ard.degree_columns``.
    population:
        The scale-up base N_base; defaults to ``ard.population``.
    """
    if method not in DEGREE_METHODS:
        raise ConfigError(f"degree method {method!r} is not one of {list(DEGREE_METHODS)}")
    base = float(ard.population if population is None else population)
    if not np.isfinite(base) or base <= 0:
        raise ConfigError("the degree's population base must be a positive number")
    if method == "summation":
        cols = list(columns) if columns is not None else list(ard.degree_columns or [])
        if not cols:
            raise ConfigError("the summation degree needs columns (e.g. --degree-columns a,b,c)")
        for c in cols:
            if c not in ard.counts.columns:
                raise ConfigError(f"degree column {c!r} is not in the survey's counts; available: {ard.groups}")
        values = ard.counts[cols].to_numpy(dtype=float).sum(axis=1)
        return Degree(values=values, method=method, columns=cols, population=base)
    cols = list(columns) if columns is not None else ard.known
    unknown = [c for c in cols if c not in ard.known_sizes.index]
    if unknown:
        raise ConfigError(f"degree columns {unknown} have no known size; known groups are {ard.known}")
    if not cols:
        raise ConfigError("the known-population degree needs at least one known group")
    sizes = ard.known_sizes.loc[cols].to_numpy(dtype=float)
    y = ard.counts[cols].to_numpy(dtype=float)
    if method == "known_population":
        total = float(sizes.sum())
        values = base * y.sum(axis=1) / total
        return Degree(values=values, method=method, columns=cols, population=base, total_known_size=total)
    values = base * (y / sizes).mean(axis=1)
    return Degree(values=values, method=method, columns=cols, population=base, total_known_size=float(sizes.sum()))


def degree_label(deg: Degree) -> str:
    """The name a degree goes by in the diagnostics: method[columns]@base."""
    return f"{deg.method}[{','.join(deg.columns)}]@{deg.population:g}"


def degree_summary(deg: Degree, weights: np.ndarray | None = None) -> dict[str, Any]:
    """Distribution of degrees: min, quartiles (linear interpolation, R type 7), mean, max, sum, zero count;
    plus the weighted mean when ``weights`` are given."""
    d = np.asarray(deg.values, dtype=float)
    q1, median, q3 = np.quantile(d, [0.25, 0.5, 0.75])
    summary: dict[str, Any] = {
        **deg.describe(),
        "respondents": int(d.size),
        "min": float(d.min()),
        "q1": float(q1),
        "median": float(median),
        "mean": float(d.mean()),
        "q3": float(q3),
        "max": float(d.max()),
        "sum": float(d.sum()),
        "zero_degree_respondents": int((d <= 0).sum()),
    }
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        summary["weighted_mean"] = float(np.sum(w * d) / np.sum(w))
    return summary
