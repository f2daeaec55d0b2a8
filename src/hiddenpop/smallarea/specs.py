"""The options of the small-area analyses, each declared once as a spec (see :mod:`hiddenpop.specs`).

``hiddenpop smallarea pool|extrapolate`` and the study file's ``[analyses.smallarea]`` table are built from these
classes; :mod:`hiddenpop.smallarea.analyses` runs them. Nothing heavy loads here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hiddenpop.data.ard import MISSING_POLICIES
from hiddenpop.specs import opt, seed_option

__all__ = [
    "BENCHMARKS",
    "ENGINES",
    "IMPUTE_POLICIES",
    "LEARNERS",
    "METHODS",
    "SAMPLING_VARIANCES",
    "SPATIAL",
    "DirectSpec",
    "ExtrapolateSpec",
    "PoolSpec",
    "SmallAreaSpec",
]

#: How the pooled model's hyper-parameters are sampled.
ENGINES = ("importance", "nuts")
#: The pooled model's spatial term: BYM2 when the areas have neighbours (auto), BYM2, or independent areas.
SPATIAL = ("auto", "bym2", "iid")
#: How the direct estimates' standard errors enter the pooled model's likelihood.
SAMPLING_VARIANCES = ("pooled", "gvf", "direct")
#: The learners of the extrapolation ("best": the lower grouped-CV error).
LEARNERS = ("lightgbm", "ridge")
#: Calibration of the area estimates to the national estimate.
BENCHMARKS = ("none", "scale", "logit")
#: Missing-covariate policies of the area table.
IMPUTE_POLICIES = ("median", "region-median", "error")
#: The two area methods a study can run.
METHODS = ("pool", "extrapolate")


@dataclass(frozen=True, kw_only=True)
class _AreaOptions:
    level: float = opt(0.9, "interval level of the area estimates", min=0.5, max=1, inclusive=False)
    seed: int = seed_option("random seed (posterior draws, folds, learners)")
    folds: int = opt(5, "grouped cross-validation folds", min=2, max=100)
    impute: Literal[IMPUTE_POLICIES] = opt("median", "missing covariates: median, region-median (the area's "
                                                     "region), or error")
    benchmark: Literal[BENCHMARKS] = opt("none", "calibrate the area estimates to the national estimate: none, "
                                                 "scale (ratio) or logit (shift)")


@dataclass(frozen=True, kw_only=True)
class _PoolOptions:
    spatial: Literal[SPATIAL] = opt("auto", "spatial term: auto (BYM2 when areas have neighbours), bym2 or iid")
    engine: Literal[ENGINES] = opt("importance", "hyper-parameter sampler: importance (seconds) or nuts (NumPyro "
                                                 "NUTS; slower, for a check when importance sampling warns)")
    draws: int = opt(1000, "posterior draws", min=100, max=100_000)
    warmup: int = opt(500, "nuts only: warm-up iterations per chain", min=1, max=100_000)
    chains: int = opt(2, "nuts only: chains", min=1, max=16)
    sampling_variance: Literal[SAMPLING_VARIANCES] = opt(
        "pooled", "smooth the target SEs: pooled (equal relative variance), gvf, or direct (as given)")
    cv: bool = opt(True, "grouped cross-validation of the pooled model")


@dataclass(frozen=True, kw_only=True)
class _ExtrapolateOptions:
    model: Literal[("best", *LEARNERS)] = opt("best", "learner for the area estimates: best (lower grouped-CV "
                                                      "error), lightgbm or ridge")
    repeats: int = opt(10, "permutations per stream and fold for the stream importance", min=1, max=1000)
    compare_pooled: bool = opt(True, "add the pooled model to the cross-validation table")


@dataclass(frozen=True, kw_only=True)
class PoolSpec(_PoolOptions, _AreaOptions):
    """Options of the partially pooled (hierarchical Bayesian) area model."""


@dataclass(frozen=True, kw_only=True)
class ExtrapolateSpec(_ExtrapolateOptions, _AreaOptions):
    """Options of the machine-learning extrapolation."""


@dataclass(frozen=True, kw_only=True)
class SmallAreaSpec(_ExtrapolateOptions, _PoolOptions, _AreaOptions):
    """A study's area estimates: which methods, and the options of each (the map shows the extrapolation when it
    runs, else the pooled model)."""

    methods: tuple[Literal[METHODS], ...] = opt(METHODS, "which area methods run: pool and/or extrapolate")


@dataclass(frozen=True, kw_only=True)
class DirectSpec:
    """Options of the direct (roster-based scale-up) estimates of the surveyed areas."""

    missing: Literal[MISSING_POLICIES] = opt("zero", "missing answers: zero (count as 0) or drop (drop the "
                                                     "respondent)")
    replicates: int = opt(1000, "bootstrap replicates", min=100, max=100_000)
    min_respondents: int = opt(10, "flag areas with fewer respondents as sparse", min=1)
    min_roster_members: int = opt(10, "flag areas whose rosters count fewer known-group members", min=1)
    max_relative_se: float = opt(0.5, "flag areas whose relative standard error exceeds this", min=0,
                                 inclusive=False)
    level: float = opt(0.9, "interval level of the area estimates", min=0.5, max=1, inclusive=False)
    seed: int = seed_option()
