"""Shared machinery of the Bayesian network scale-up models.

* :class:`BayesData` - the validated arrays every model reads (counts, which groups are known, their sizes, N).
* :class:`Priors` - the prior settings, with the published defaults of Maltiel et al. (2015).
* :func:`sample_nuts` - NUTS on JAX for one data set (chains vectorised, spread over host devices when
  ``numpyro.set_host_device_count`` ran before JAX started) or for many data sets of the same shape in one
  compiled call (used by the simulation studies). It reports progress with a Rich bar on stderr.
* :func:`summarise` - posterior draws -> the tidy ``Estimates`` table (median, 2.5/97.5% quantiles, mean, sd,
  R-hat, bulk and tail ESS).

JAX and NumPyro are imported inside functions so that importing :mod:`hiddenpop.nsum.bayes` (and the CLI) stays
fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.data.io import missing_column
from hiddenpop.errors import ConfigError, DataError, locate


# ---------------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class BayesData:
    """Aggregated relational data ready for a Bayesian model.

    ``counts`` is the n x K matrix y_ik ("how many people in group k do you know"); ``known`` marks the groups
    whose sizes are known; ``known_sizes`` holds N_k for those (NaN for hidden groups); ``population`` is N.
    """

    counts: np.ndarray
    groups: tuple[str, ...]
    known: np.ndarray
    known_sizes: np.ndarray
    population: float
    source: str | None = None
    #: the value known-group answers were top-coded at (the survey's ``topcode``), or None
    topcode: int | None = None

    @property
    def n_respondents(self) -> int:
        return int(self.counts.shape[0])

    @property
    def hidden_groups(self) -> tuple[str, ...]:
        return tuple(g for g, k in zip(self.groups, self.known, strict=True) if not k)

    @property
    def known_groups(self) -> tuple[str, ...]:
        return tuple(g for g, k in zip(self.groups, self.known, strict=True) if k)

    @property
    def known_index(self) -> np.ndarray:
        return np.flatnonzero(self.known)

    @property
    def hidden_index(self) -> np.ndarray:
        return np.flatnonzero(~self.known)

    def killworth_degrees(self) -> np.ndarray:
        """Known-population degree d_i = N * sum_{k known} y_ik / sum_{k known} N_k (Killworth et al. 1998)."""
        known = self.known_index
        return self.population * self.counts[:, known].sum(axis=1) / self.known_sizes[known].sum()

    def killworth_sizes(self) -> np.ndarray:
        """Killworth MLE N * sum_i y_ik / sum_i d_i for every group (used for starting values and bounds)."""
        degree_total = self.killworth_degrees().sum()
        return self.population * self.counts.sum(axis=0) / max(degree_total, 1e-12)


def prepare_data(
    counts: Any,
    known_sizes: Mapping[str, float],
    population: float,
    *,
    groups: Sequence[str] | None = None,
    hidden: Sequence[str] | None = None,
    source: str | None = None,
) -> BayesData:
    """Validate ARD counts and known sizes and return :class:`BayesData`.

    ``counts`` is a DataFrame (its columns are the groups) or an n x K array with ``groups`` naming the columns.
    Groups with a known size are known; ``hidden`` selects the groups to estimate (default: every group without
    a known size). Columns that are neither known nor listed in ``hidden`` are left out and named in the error
    if they were requested. Missing, negative, non-integer or infinite counts raise :class:`DataError` naming
    the row and column: the Bayesian models have no missing-data policy, so nothing is dropped silently.
    """
    if isinstance(counts, pd.DataFrame):
        frame = counts
        if groups is not None:
            missing = [g for g in groups if g not in frame.columns]
            if missing:
                raise missing_column(source, missing[0], frame.columns)
            frame = frame[list(groups)]
    else:
        array = np.asarray(counts)
        if array.ndim != 2:
            raise DataError(f"{locate(source)}counts must be a respondents x groups matrix, got shape {array.shape}")
        if groups is None:
            groups = [f"group{k + 1}" for k in range(array.shape[1])]
        if len(groups) != array.shape[1]:
            raise ConfigError(f"{len(groups)} group names for {array.shape[1]} count columns")
        frame = pd.DataFrame(array, columns=list(groups))
    known_sizes = {str(k): v for k, v in dict(known_sizes).items()}
    unknown_known = [g for g in known_sizes if g not in frame.columns]
    if unknown_known:
        raise missing_column(source, unknown_known[0], frame.columns, role="a group with a known size",
                             fix="make the known-size table's group names match the survey header")
    if hidden is None:
        hidden = [g for g in frame.columns if g not in known_sizes]
    hidden = list(hidden)
    overlap = [g for g in hidden if g in known_sizes]
    if overlap:
        raise ConfigError(f"groups {overlap} are listed as hidden but also have a known size; choose one")
    absent = [g for g in hidden if g not in frame.columns]
    if absent:
        raise missing_column(source, absent[0], frame.columns, role="hidden group")
    if not known_sizes:
        raise ConfigError("at least one known group is needed to fix the scale of degrees and sizes")
    if not math.isfinite(float(population)) or float(population) <= 0:
        raise ConfigError(f"population must be a positive number, got {population!r}")
    population = float(population)
    order = [g for g in frame.columns if g in known_sizes or g in hidden]
    values = np.empty((len(frame), len(order)), dtype=float)
    for j, group in enumerate(order):
        column = pd.to_numeric(frame[group], errors="coerce")
        raw_missing = frame[group].isna().to_numpy()
        bad_text = column.isna().to_numpy() & ~raw_missing
        col = column.to_numpy(dtype=float)
        for mask, why in (
            (raw_missing, "is missing; the Bayesian models need complete rows: impute or drop the respondent "
             "explicitly before fitting"),
            (bad_text, "is not a number; fix the cell"),
        ):
            if mask.any():
                row = int(np.flatnonzero(mask)[0]) + 1
                raise DataError(f"{locate(source, row, group)}count {why} ({int(mask.sum())} such cells)")
        with np.errstate(invalid="ignore"):
            invalid = ~np.isfinite(col) | (col < 0) | (np.abs(col - np.round(col)) > 1e-9)
        if invalid.any():
            row = int(np.flatnonzero(invalid)[0]) + 1
            raise DataError(
                f"{locate(source, row, group)}count must be a non-negative whole number "
                f"({int(invalid.sum())} invalid cells in this column)"
            )
        values[:, j] = np.round(col)
    if values.shape[0] < 2:
        raise DataError(f"{locate(source)}need at least 2 respondents, found {values.shape[0]}")
    known = np.array([g in known_sizes for g in order])
    sizes = np.full(len(order), np.nan)
    for j, group in enumerate(order):
        if group in known_sizes:
            size = float(known_sizes[group])
            if not math.isfinite(size) or size <= 0 or size >= population:
                raise ConfigError(
                    f"known size of {group!r} must lie strictly between 0 and the population {population:g}, "
                    f"got {size!r}"
                )
            sizes[j] = size
    return BayesData(
        counts=values,
        groups=tuple(order),
        known=known,
        known_sizes=sizes,
        population=population,
        source=source,
    )


def from_ard(ard: Any, *, hidden: Sequence[str] | None = None) -> BayesData:
    """Build :class:`BayesData` from a :class:`hiddenpop.data.ard.ARD` (duck-typed: ``counts``/``frame``,
    ``known_sizes`` mapping, ``population``)."""
    counts = None
    for name in ("counts", "ard", "frame", "data"):
        value = getattr(ard, name, None)
        if isinstance(value, pd.DataFrame):
            counts = value
            break
    if counts is None:
        raise ConfigError("this ARD object exposes no counts table (expected .counts or .frame as a DataFrame)")
    known_sizes = getattr(ard, "known_sizes", None)
    if known_sizes is None:
        raise ConfigError("this ARD object has no known sizes")
    if isinstance(known_sizes, pd.Series):
        known_sizes = known_sizes.to_dict()
    elif isinstance(known_sizes, pd.DataFrame):
        known_sizes = dict(zip(known_sizes.iloc[:, 0], known_sizes.iloc[:, 1], strict=True))
    population = getattr(ard, "population", None)
    if population is None:
        raise ConfigError("this ARD object has no population; pass population= to the model")
    groups_hidden = list(hidden) if hidden is not None else list(getattr(ard, "hidden", []) or []) or None
    cols = [c for c in counts.columns if c in known_sizes or (groups_hidden is None or c in groups_hidden)]
    if groups_hidden is None:
        numeric = [c for c in cols if c in known_sizes or pd.api.types.is_numeric_dtype(counts[c])]
        cols = numeric
    data = prepare_data(
        counts[cols], known_sizes, float(population), hidden=groups_hidden, source=getattr(ard, "source", None)
    )
    return replace(data, topcode=getattr(ard, "topcode", None))


def coerce_data(data: Any, known_sizes: Mapping[str, float] | None, population: float | None,
                hidden: Sequence[str] | None, groups: Sequence[str] | None) -> BayesData:
    """Accept :class:`BayesData`, an ``ARD`` object, or plain counts + ``known_sizes`` + ``population``."""
    if isinstance(data, BayesData):
        return data
    if known_sizes is None or population is None:
        if hasattr(data, "known_sizes"):
            return from_ard(data, hidden=hidden)
        raise ConfigError("pass known_sizes= and population= with a counts matrix")
    return prepare_data(data, known_sizes, population, groups=groups, hidden=hidden)


# ---------------------------------------------------------------------------------------------------- priors
@dataclass(frozen=True)
class Priors:
    """Prior settings (defaults: Maltiel et al. 2015 and Study 2).

    * ``mu``, ``sigma``: bounds of the uniform priors on the log-normal degree distribution's location and scale,
      log d_i ~ Normal(mu, sigma), mu ~ U(3, 8), sigma ~ U(0.25, 2).
    * ``rho``: bounds of the uniform prior on the barrier dispersion rho_k (0, 1).
    * ``tau``: Beta(a, b) prior on the transmission rate of hidden groups; one pair for all hidden groups or a
      mapping group -> (a, b). Default (1, 1), uniform.
    * ``size_bounds``: bounds (lower, upper) of the prior p(N_k) proportional to 1/N_k (uniform on log N_k) of
      hidden groups, one pair or a mapping. Default lower = max(1, largest single report of the group),
      upper = population (the support the NSUM package uses).
    """

    mu: tuple[float, float] = (3.0, 8.0)
    sigma: tuple[float, float] = (0.25, 2.0)
    rho: tuple[float, float] = (0.0, 1.0)
    tau: tuple[float, float] | Mapping[str, tuple[float, float]] = (1.0, 1.0)
    size_bounds: tuple[float, float] | Mapping[str, tuple[float, float]] | None = None

    def validate(self) -> Priors:
        for name in ("mu", "sigma", "rho"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ConfigError(f"prior bounds for {name} must be finite with lower < upper, got {(low, high)}")
        if self.sigma[0] < 0:
            raise ConfigError("sigma prior bounds must be non-negative")
        if self.rho[0] < 0 or self.rho[1] > 1:
            raise ConfigError("rho prior bounds must lie in [0, 1]")
        return self

    def tau_for(self, group: str) -> tuple[float, float]:
        value = self.tau.get(group, (1.0, 1.0)) if isinstance(self.tau, Mapping) else self.tau
        a, b = (float(v) for v in value)
        if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
            raise ConfigError(f"tau prior for {group!r} must be Beta(a, b) with a, b > 0, got {value!r}")
        return a, b

    def bounds_for(self, group: str, data: BayesData) -> tuple[float, float]:
        column = data.groups.index(group)
        default_low = max(1.0, float(data.counts[:, column].max()))
        value = None
        if isinstance(self.size_bounds, Mapping):
            value = self.size_bounds.get(group)
        elif self.size_bounds is not None:
            value = self.size_bounds
        low, high = (default_low, data.population) if value is None else (float(value[0]), float(value[1]))
        if not (0 < low < high <= data.population):
            raise ConfigError(
                f"size prior bounds for {group!r} must satisfy 0 < lower < upper <= population, got {(low, high)}"
            )
        return low, high

    def with_tau(self, tau: tuple[float, float] | Mapping[str, tuple[float, float]]) -> Priors:
        return replace(self, tau=tau)


# ---------------------------------------------------------------------------------------------------- sampling
