"""The options of the review analyses, each declared once as a spec (see :mod:`hiddenpop.specs`).

``hiddenpop review size|sample|estimate`` are built from these classes. Nothing heavy loads here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hiddenpop.design.specs import Precision, confidence_option, expected_unknown_option
from hiddenpop.specs import opt, seed_option

__all__ = ["TOTAL_DISTRIBUTIONS", "ReviewEstimateSpec", "ReviewSampleSpec", "ReviewSizeSpec"]

#: Distribution of an external total's uncertainty.
TOTAL_DISTRIBUTIONS = ("lognormal", "normal")


@dataclass(frozen=True, kw_only=True)
class ReviewSizeSpec(Precision):
    """Units to review for a share within a margin."""

    margin: float = opt(0.05, "target half-width of the share", min=0, max=1, inclusive=False)
    expected_unknown: float = expected_unknown_option()


@dataclass(frozen=True, kw_only=True)
class ReviewSampleSpec:
    """A seeded simple random sample of distinct units to review."""

    n: int | None = opt(None, "units to sample (or --margin)", min=1)
    margin: float | None = opt(None, "or: the sample size for this margin, with the finite population correction",
                               min=0, max=1, inclusive=False)
    confidence: float = confidence_option()
    expected_unknown: float = expected_unknown_option()
    seed: int = seed_option()


@dataclass(frozen=True, kw_only=True)
class ReviewEstimateSpec:
    """A share from reviewed units, and optionally the number of positive units in a known total."""

    level: float = opt(0.95, "confidence level", min=0, max=1, inclusive=False)
    total: float | None = opt(None, "a total (e.g. identifiers from capture-recapture) to multiply by the share",
                              min=0, inclusive=False)
    total_se: float | None = opt(None, "its standard error", min=0)
    total_lower: float | None = opt(None, "or its interval: lower limit", min=0)
    total_upper: float | None = opt(None, "upper limit", min=0)
    total_level: float = opt(0.95, "level of the total's interval", min=0, max=1, inclusive=False)
    total_dist: Literal[TOTAL_DISTRIBUTIONS] = opt("lognormal", "distribution of the total: lognormal or normal")
    draws: int = opt(100_000, "Monte Carlo draws", min=100, max=10_000_000)
    seed: int = seed_option()
