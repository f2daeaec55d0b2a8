"""Generalized network scale-up adjustment factors (Feehan & Salganik 2016).

The basic scale-up estimator N_basic = N * sum_i w_i y_iH / sum_i w_i d_i is consistent for N_H only when
three factors equal one. With user-supplied values the generalized estimate is

    N_H = N_basic / (delta * tau * phi)

* ``degree_ratio`` delta = (mean degree of hidden-group members) / (mean degree of the frame population): hidden
  groups with smaller networks are less visible, delta < 1, and the basic estimator underestimates.
* ``transmission_rate`` tau = share of a respondent's ties to hidden members in which the respondent knows
  the member belongs to the group ("true positive rate", visibility); tau < 1 biases the basic estimate down.
* ``frame_ratio`` phi = how the frame population that answered the survey (e.g. adults in households) differs
  from the whole population in the degree used for scaling: the ratio of the frame's mean degree to the
  mean degree on which the scale-up base is defined. phi = 1 when the frame is the whole population.

The factors come from outside the survey (enriched ARD from the hidden population, game-of-contacts data,
casework calibration); their uncertainty is not propagated (they are treated as known constants), so intervals
are conditional on them. Reference: Feehan & Salganik (2016), "Generalizing the network scale-up method",
Sociological Methodology 46:153-186.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hiddenpop.errors import ConfigError

Factor = float | Mapping[str, float]


def _value(factor: Factor, group: str, name: str) -> float:
    value = factor.get(group, 1.0) if isinstance(factor, Mapping) else factor
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"{name} for {group!r} must be a positive finite number")
    return value


@dataclass
class Adjustments:
    """Generalized NSUM factors, one number for all hidden groups or a mapping group -> value (default 1)."""

    degree_ratio: Factor = 1.0
    transmission_rate: Factor = 1.0
    frame_ratio: Factor = 1.0
    source: str = field(default="user-supplied")

    def for_group(self, group: str) -> dict[str, float]:
        return {
            "degree_ratio": _value(self.degree_ratio, group, "degree_ratio"),
            "transmission_rate": _value(self.transmission_rate, group, "transmission_rate"),
            "frame_ratio": _value(self.frame_ratio, group, "frame_ratio"),
        }

    def factor(self, group: str) -> float:
        """The multiplier 1 / (delta * tau * phi) applied to the basic estimate of ``group``."""
        values = self.for_group(group)
        return 1.0 / (values["degree_ratio"] * values["transmission_rate"] * values["frame_ratio"])

    def is_identity(self, groups: list[str]) -> bool:
        return all(abs(self.factor(g) - 1.0) < 1e-15 for g in groups)

    def describe(self, groups: list[str]) -> dict[str, Any]:
        return {g: self.for_group(g) for g in groups}


def as_adjustments(value: Adjustments | Mapping[str, Factor] | None) -> Adjustments:
    if value is None:
        return Adjustments()
    if isinstance(value, Adjustments):
        return value
    if isinstance(value, Mapping):
        allowed = {"degree_ratio", "transmission_rate", "frame_ratio"}
        unknown = set(value) - allowed
        if unknown:
            raise ConfigError(f"unknown adjustment(s) {sorted(unknown)}; use {sorted(allowed)}")
        return Adjustments(**value)
    raise ConfigError("adjustments must be an Adjustments object or a mapping")
