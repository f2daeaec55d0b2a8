"""The options of the capture-recapture analyses, each declared once as a spec (see :mod:`hiddenpop.specs`).

The command line, the study file and the docs are built from these classes; :mod:`hiddenpop.capture.analyses`
runs them. This module loads no SciPy, so declaring the commands costs nothing at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hiddenpop.capture.lists.procedures import PROCEDURES
from hiddenpop.specs import REQUIRED, opt, seed_option

__all__ = ["COVERAGE_KINDS", "ClosedSpec", "CoverageSpec", "HistoriesOptions", "IntervalSpec", "ListsOptions",
           "MSESpec"]

COVERAGE_KINDS = ("lists", "occasions")
LEVEL_HELP = "confidence level of the intervals"


@dataclass(frozen=True, kw_only=True)
class HistoriesOptions:
    """How a capture-history file is read."""

    count_column: str | None = opt(None, "name of the count column (default: freq/count/n... if present)")
    occasions: str | None = opt(None, "number of occasions t for capture-count (nbcap, freq) data: a whole "
                                      "number >= 2, or 'inf' for continuous time")
    t0: int | None = opt(None, "fit M0 and Mh models on the capture-count classes 1..t0 only (Rcapture's "
                               "closedp.0 t0); N still counts every unit seen", min=2)


@dataclass(frozen=True, kw_only=True)
class ClosedSpec(HistoriesOptions):
    """Options of the closed-model comparison."""

    rcapture: bool = opt(False, "reproduce Rcapture 1.4-4's printed numbers (R glm path, its Mbh standard error)")
    normal: bool = opt(False, "also fit logistic-normal heterogeneity (Mh Normal, Mth Normal; Coull & Agresti "
                              "1999): slower, intervals log-transformed only")


@dataclass(frozen=True, kw_only=True)
class IntervalSpec(HistoriesOptions):
    """Options of the profile-likelihood interval."""

    model: str = opt(REQUIRED, "closed model name, e.g. 'Mth Chao (LB)', 'M0', 'Mh Gamma2'")
    level: float = opt(0.95, LEVEL_HELP, min=0, max=1, inclusive=False)


@dataclass(frozen=True, kw_only=True)
class ListsOptions:
    """How a file of overlapping lists is read."""

    count_column: str | None = opt(None, "name of the count column (default: freq/count/n... if present)")


@dataclass(frozen=True, kw_only=True)
class MSESpec(ListsOptions):
    """Options of multiple systems estimation."""

    select: Literal[PROCEDURES] = opt(
        REQUIRED, "aic: Silverman's UK procedure; stepwise: Chan, Silverman & Vincent (2021); bic: minimum BIC "
                  "over hierarchical models (Silverman, Chan & Vincent 2024)")
    p_threshold: float | None = opt(None, "p-value threshold (default 0.05 for aic, 0.02 for stepwise)",
                                    min=0, max=1)
    max_order: int | None = opt(None, "bic only: highest interaction order searched (default 2 or 3)", min=1)
    bootstrap: int = opt(0, "bootstrap replicates for a BCa interval (0 = profile interval)", min=0)
    seed: int = seed_option("random seed for the bootstrap")
    level: float = opt(0.95, LEVEL_HELP, min=0, max=1, inclusive=False)
    top_models: int | None = opt(None, "bic bootstrap: models (best on the data) refitted per replicate", min=1)


@dataclass(frozen=True, kw_only=True)
class CoverageSpec(ListsOptions):
    """Options of the sample-coverage estimators."""

    kind: Literal[COVERAGE_KINDS] = opt(
        "lists", "lists: CARE1 estimators for overlapping lists (Chao et al. 2001); occasions: the M_th occasion "
                 "version (Chao, Lee & Jeng 1992)")
    bootstrap: int = opt(200, "parametric bootstrap replicates for the standard errors", min=0)
    seed: int = seed_option("random seed for the bootstrap")
    level: float = opt(0.95, LEVEL_HELP, min=0, max=1, inclusive=False)
