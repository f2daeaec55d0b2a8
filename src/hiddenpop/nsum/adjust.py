"""The visibility model: generalized network scale-up factors, each a constant or a distribution.

The basic scale-up estimator N_basic = N * sum_i w_i y_iH / sum_i w_i d_i is consistent for N_H only when three
factors equal one (Feehan & Salganik 2016). The generalized estimate is

    N_H = N_basic / (delta * tau * phi)

* ``degree_ratio`` delta = (mean degree of hidden-group members) / (mean degree of the frame population): hidden
  groups with smaller networks are less visible, delta < 1, and the basic estimator underestimates.
* ``transmission_rate`` tau = share of a respondent's ties to hidden members in which the respondent knows
  the member belongs to the group (visibility, in (0, 1]); tau < 1 biases the basic estimate down.
* ``frame_ratio`` phi = the frame's mean degree over the mean degree on which the scale-up base is defined;
  phi = 1 when the frame is the whole population.

The survey identifies only N_basic (the product delta tau phi N_H); the factors come from outside it (enriched
ARD from the hidden population, game-of-contacts data, casework calibration). Each factor is declared once as

* a constant (``0.85``): intervals are conditional on it;
* ``beta(a, b)``: a Beta distribution (mean a / (a + b)), the natural form for a rate such as tau;
* ``lognormal(median, sdlog)``: for a positive ratio (delta, phi) that may exceed one.

A declaration applies to the hidden groups it names (default: every group) and is *one* random quantity: the
design-based bootstrap draws it once per replicate and every group it covers uses that same draw, so sums carry
its full effect and a ratio of two groups that share it is free of it (it cancels draw by draw). Point estimates
use each factor's mean. The Bayesian models take a declared Beta transmission rate as their tau prior and divide
their posterior draws by draws of the other factors (:mod:`hiddenpop.nsum.bayes.analyses`).

Reference: Feehan & Salganik (2016), "Generalizing the network scale-up method", Sociological Methodology
46:153-186.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hiddenpop import distributions
from hiddenpop.errors import ConfigError

__all__ = ["FACTORS", "Adjustments", "Beta", "Declared", "Fixed", "LogNormal", "as_adjustments",
           "parse_distribution"]

#: The three factors, in the order they multiply, with the words a report uses for them.
FACTORS = {
    "degree_ratio": "degree ratio (delta)",
    "transmission_rate": "transmission rate (tau)",
    "frame_ratio": "frame ratio (phi)",
}
#: The grammar of a factor written as text (command line, study file).
DISTRIBUTION_HELP = "a number, beta(a, b) or lognormal(median, sdlog)"


@dataclass(frozen=True)
class Fixed:
    """A factor known exactly (intervals are conditional on it)."""

    value: float

    @property
    def mean(self) -> float:
        return self.value

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value)

    def quantiles(self, probabilities: Sequence[float]) -> np.ndarray:
        return np.full(len(probabilities), self.value)

    def probability_above(self, threshold: float) -> float:
        return float(self.value > threshold)

    @property
    def text(self) -> str:
        return f"{self.value:g}"


class _Continuous:
    """A factor drawn from a continuous distribution: its quantiles and upper tail."""

    def quantiles(self, probabilities: Sequence[float]) -> np.ndarray:
        raise NotImplementedError

    def probability_above(self, threshold: float) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class Beta(_Continuous):
    """Beta(a, b) on (0, 1)."""

    a: float
    b: float

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    @property
    def sd(self) -> float:
        total = self.a + self.b
        return math.sqrt(self.a * self.b / (total * total * (total + 1.0)))

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.beta(self.a, self.b, size)

    def quantiles(self, probabilities: Sequence[float]) -> np.ndarray:
        return np.asarray(distributions.beta_quantile(np.asarray(probabilities, dtype=float), self.a, self.b))

    def probability_above(self, threshold: float) -> float:
        return distributions.beta_sf(threshold, self.a, self.b)

    @property
    def text(self) -> str:
        return f"beta({self.a:g}, {self.b:g})"


@dataclass(frozen=True)
class LogNormal(_Continuous):
    """log X ~ Normal(log median, sdlog)."""

    median: float
    sdlog: float

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sdlog**2 / 2.0)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.median * np.exp(self.sdlog * rng.standard_normal(size))

    def quantiles(self, probabilities: Sequence[float]) -> np.ndarray:
        return np.asarray(distributions.lognormal_quantile(np.asarray(probabilities, dtype=float), self.median,
                                                           self.sdlog))

    def probability_above(self, threshold: float) -> float:
        return distributions.lognormal_sf(threshold, self.median, self.sdlog)

    @property
    def text(self) -> str:
        return f"lognormal({self.median:g}, {self.sdlog:g})"


Distribution = Fixed | Beta | LogNormal
_CALL = re.compile(r"^\s*(beta|lognormal)\s*\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\s*$", re.IGNORECASE)


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what} must be a number") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{what} must be a positive finite number")
    return value


def parse_distribution(value: Any) -> Distribution:
    """A factor from its text form (``0.85``, ``beta(17, 3)``, ``lognormal(0.8, 0.2)``) or a number.

    Messages say what is wrong without repeating the value.
    """
    if isinstance(value, (Fixed, Beta, LogNormal)):
        return value
    if isinstance(value, bool):
        raise ConfigError(f"expected {DISTRIBUTION_HELP}; got true/false")
    if isinstance(value, (int, float)):
        return Fixed(_positive(str(value), "the factor"))
    if not isinstance(value, str):
        raise ConfigError(f"expected {DISTRIBUTION_HELP}")
    match = _CALL.match(value)
    if match is None:
        try:
            float(value)
        except ValueError:
            raise ConfigError(f"expected {DISTRIBUTION_HELP}, e.g. beta(17, 3)") from None
        return Fixed(_positive(value, "the factor"))
    name = match.group(1).lower()
    if name == "beta":
        return Beta(_positive(match.group(2), "beta's a"), _positive(match.group(3), "beta's b"))
    return LogNormal(_positive(match.group(2), "lognormal's median"), _positive(match.group(3), "lognormal's sdlog"))


def check_factor(factor: str, distribution: Distribution) -> Distribution:
    """Refuse a distribution the factor cannot take: a transmission rate lies in (0, 1]."""
    if factor not in FACTORS:
        raise ConfigError(f"unknown factor {factor!r}; use one of {', '.join(FACTORS)}")
    if factor == "transmission_rate":
        if isinstance(distribution, LogNormal):
            raise ConfigError("a transmission rate lies in (0, 1]: give a number or beta(a, b), not a lognormal")
        if isinstance(distribution, Fixed) and distribution.value > 1:
            raise ConfigError("a transmission rate lies in (0, 1]: give a number at most 1")
    return distribution


@dataclass(frozen=True)
class Declared:
    """One declared factor: a distribution for the hidden groups it names (``None``: every group).

    It is one random quantity: every group it covers shares each draw.
    """

    factor: str
    distribution: Distribution
    groups: tuple[str, ...] | None = None
    source: str = "user-supplied"
    name: str = ""

    def covers(self, group: str) -> bool:
        return self.groups is None or group in self.groups


class Adjustments:
    """The visibility model of an analysis: declared factors, each a constant or a distribution.

    ``Adjustments(transmission_rate=0.85)`` or ``Adjustments(transmission_rate=Beta(17, 3))`` applies one factor to
    every group; a mapping group -> value declares one factor per group (independent draws); ``declared=[...]``
    takes :class:`Declared` entries as they stand. A factor left undeclared for a group is 1.
    """

    def __init__(self, degree_ratio: Any = 1.0, transmission_rate: Any = 1.0, frame_ratio: Any = 1.0, *,
                 declared: Sequence[Declared] = (), source: str = "user-supplied") -> None:
        entries = list(declared)
        for factor, value in (("degree_ratio", degree_ratio), ("transmission_rate", transmission_rate),
                              ("frame_ratio", frame_ratio)):
            if isinstance(value, Mapping):
                for group, item in value.items():
                    entries.append(Declared(factor, _parse(factor, item), (str(group),), source, f"{factor}:{group}"))
            else:
                distribution = _parse(factor, value)
                if distribution != Fixed(1.0):
                    entries.append(Declared(factor, distribution, None, source, factor))
        for entry in entries:
            check_factor(entry.factor, entry.distribution)
        for i, first in enumerate(entries):
            for second in entries[i + 1:]:
                if first.factor != second.factor:
                    continue
                shared = (set(first.groups or ()) & set(second.groups or ())
                          if first.groups is not None and second.groups is not None else
                          "every group" if first.groups is None and second.groups is None else set())
                if shared:
                    raise ConfigError(f"the {FACTORS[first.factor]} is declared twice for the same group(s); "
                                      "declare each factor once per group")
        self.declared: tuple[Declared, ...] = tuple(entries)

    def applying(self, group: str) -> dict[str, Declared]:
        """The declaration of each factor that applies to ``group`` (one naming the group wins over a default)."""
        chosen: dict[str, Declared] = {}
        for entry in self.declared:
            if not entry.covers(group):
                continue
            current = chosen.get(entry.factor)
            if current is None or (current.groups is None and entry.groups is not None):
                chosen[entry.factor] = entry
        return chosen

    def for_group(self, group: str) -> dict[str, float]:
        """Each factor's mean for ``group`` (the values the point estimate uses)."""
        applying = self.applying(group)
        return {factor: applying[factor].distribution.mean if factor in applying else 1.0 for factor in FACTORS}

    def factor(self, group: str) -> float:
        """The multiplier 1 / (delta * tau * phi) of the point estimate of ``group``, each factor at its mean."""
        return 1.0 / math.prod(self.for_group(group).values())

    def is_identity(self, groups: Sequence[str]) -> bool:
        return all(abs(self.factor(g) - 1.0) < 1e-15 for g in groups)

    def is_random(self, groups: Sequence[str]) -> bool:
        """Whether any factor of these groups is a distribution (its uncertainty then needs replicates)."""
        return any(not isinstance(d.distribution, Fixed) for g in groups for d in self.applying(g).values())

    def draws(self, groups: Sequence[str], size: int, seed: int | None,
              fixed: Mapping[str, float] | None = None) -> dict[str, dict[str, np.ndarray]]:
        """``size`` draws of each factor for each group: ``{group: {factor: array}}``.

        Each declaration is drawn once (in declaration order, from one generator seeded by ``seed``) and the groups
        it covers share the draw. ``fixed`` holds factors at given values instead (the sensitivity table).
        """
        rng = np.random.default_rng([_FACTOR_STREAM, 0 if seed is None else int(seed)])
        drawn = {id(entry): entry.distribution.draw(rng, size) for entry in self.declared}
        out: dict[str, dict[str, np.ndarray]] = {}
        for group in groups:
            applying = self.applying(group)
            values = {}
            for factor in FACTORS:
                if fixed is not None and factor in fixed:
                    values[factor] = np.full(size, float(fixed[factor]))
                elif factor in applying:
                    values[factor] = drawn[id(applying[factor])]
                else:
                    values[factor] = np.ones(size)
            out[group] = values
        return out

    def multipliers(self, groups: Sequence[str], size: int, seed: int | None,
                    fixed: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
        """``size`` draws of 1 / (delta * tau * phi) per group (see :meth:`draws`)."""
        return {group: 1.0 / (values["degree_ratio"] * values["transmission_rate"] * values["frame_ratio"])
                for group, values in self.draws(groups, size, seed, fixed).items()}

    def describe(self, groups: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each group's factors in their text form (``beta(17, 3)``, ``1``)."""
        out = {}
        for group in groups:
            applying = self.applying(group)
            out[group] = {factor: applying[factor].distribution.text if factor in applying else "1"
                          for factor in FACTORS}
        return out

    def assumptions(self, level: float = 0.95) -> list[dict[str, Any]]:
        """One row per declared factor: its distribution, mean, central range at ``level``, groups and source."""
        rows = []
        for entry in self.declared:
            low, high = entry.distribution.quantiles([(1 - level) / 2, (1 + level) / 2])
            rows.append({"name": entry.name or entry.factor, "factor": entry.factor, "label": FACTORS[entry.factor],
                         "distribution": entry.distribution.text, "mean": entry.distribution.mean,
                         "lower": float(low), "upper": float(high), "level": level,
                         "groups": "every hidden group" if entry.groups is None else ", ".join(entry.groups),
                         "source": entry.source})
        return rows


_FACTOR_STREAM = 0x76697362  # keeps factor draws apart from the bootstrap's stream of the same seed


def _parse(factor: str, value: Any) -> Distribution:
    try:
        return parse_distribution(value)
    except ConfigError as error:
        raise ConfigError(f"{factor}: {error}") from None


def as_adjustments(value: Adjustments | Mapping[str, Any] | None) -> Adjustments:
    if value is None:
        return Adjustments()
    if isinstance(value, Adjustments):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - set(FACTORS)
        if unknown:
            raise ConfigError(f"unknown adjustment(s) {sorted(unknown)}; use {sorted(FACTORS)}")
        return Adjustments(**value)
    raise ConfigError("adjustments must be an Adjustments object or a mapping")
