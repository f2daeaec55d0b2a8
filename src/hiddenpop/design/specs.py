"""The options of the survey-design analyses, each declared once as a spec (see :mod:`hiddenpop.specs`).

``hiddenpop design sample-size|select|weights`` are built from these classes; the review specs reuse
:class:`Precision`. Nothing heavy loads here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hiddenpop.specs import REQUIRED, opt, seed_option

__all__ = ["ORDERS", "Precision", "SampleSizeSpec", "SelectSpec", "WeightsSpec", "confidence_option",
           "expected_unknown_option"]

#: Order of the frame in systematic PPS selection.
ORDERS = ("random", "frame")


def confidence_option() -> object:
    return opt(0.95, "confidence level", min=0, max=1, inclusive=False)


def expected_unknown_option() -> object:
    return opt(0.0, "share of units expected to end unknown; inflates the units to draw", min=0, max=1)


@dataclass(frozen=True, kw_only=True)
class Precision:
    """How precise a proportion must be: confidence, anticipated proportion, population (for the FPC)."""

    confidence: float = confidence_option()
    proportion: float = opt(0.5, "anticipated proportion (0.5 = worst case)", min=0, max=1, inclusive=False)
    population: float | None = opt(None, "population size N (finite population correction)", min=0,
                                   inclusive=False)


@dataclass(frozen=True, kw_only=True)
class SampleSizeSpec(Precision):
    """Sample size for a proportion given a margin, or the margin a sample size gives."""

    margin: float | None = opt(None, "target half-width, e.g. 0.05 (solve for the sample size)", min=0, max=1,
                               inclusive=False)
    n: int | None = opt(None, "completed interviews: report the margin instead", min=1)
    design_effect: float = opt(1.0, "design effect (1 = simple random sampling)", min=0, inclusive=False,
                               aliases=("--deff",))
    response_rate: float = opt(1.0, "expected response rate; inflates the units to draw (with --margin)", min=0,
                               max=1)


@dataclass(frozen=True, kw_only=True)
class SelectSpec:
    """Stratified multistage PPS selection with a reserve list."""

    psus: int | None = opt(None, "total PSUs, allocated proportionally to stratum size (or --allocation)", min=1)
    take: int = opt(REQUIRED, "interviews per selected area (final stage)", min=1)
    ssus_per_psu: int = opt(1, "secondary units drawn per selected PSU", min=1)
    reserves: int = opt(1, "reserve areas per selected area", min=0)
    order: Literal[ORDERS] = opt("random", "random (randomised systematic) or frame (implicit stratification)")
    seed: int = seed_option()


@dataclass(frozen=True, kw_only=True)
class WeightsSpec:
    """Base weights, non-response adjustment within cells, raking to known margins."""

    max_iter: int = opt(200, "raking cycles at most", min=1)
    tolerance: float = opt(1e-8, "raking: largest relative margin error allowed", min=0, inclusive=False)
    max_factor: float = opt(3.0, "warn when a non-response factor exceeds this", min=1)
