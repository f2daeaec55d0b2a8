"""The options of the network scale-up analyses, each declared once as a spec (see :mod:`hiddenpop.specs`).

The command line (``hiddenpop nsum estimate|consistency|bayes``), the study file (``[survey]``,
``[analyses.nsum]``, ``[analyses.nsum_bayes]``) and the docs' option tables are built from these classes;
:mod:`hiddenpop.nsum.analyses` and :mod:`hiddenpop.nsum.bayes.analyses` run them. Nothing heavy loads here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from hiddenpop.data.ard import MISSING_POLICIES
from hiddenpop.nsum.adjust import DISTRIBUTION_HELP, Adjustments, parse_distribution
from hiddenpop.specs import opt, seed_option

__all__ = ["BAYES_MODELS", "LIKELIHOODS", "METHODS", "RECALL_CURVES", "BayesSpec", "ConsistencySpec", "NsumSpec",
           "SurveyBayesSpec", "SurveyConsistencySpec", "SurveyNsumSpec", "SurveyOptions",
           "VisibilityOptions"]

#: The design-based estimators, by name, with the label their table rows carry.
METHODS = {"mle": "Killworth MLE (ratio of sums)", "pimle": "PIMLE (mean of ratios)", "mos": "mean of sums"}
METHOD_NAMES = tuple(METHODS)
#: The recall corrections (:mod:`hiddenpop.nsum.recall`, :mod:`hiddenpop.nsum.bayes.recall`), by name, with the
#: words a report uses for them.
RECALL_CURVES = {"none": "no recall correction",
                 "loglinear": "log-linear recall curve, log(reported / true share) = a + b log(true share)"}
RECALL_NAMES = tuple(RECALL_CURVES)
#: The Bayesian models (classes in :data:`hiddenpop.nsum.bayes.MODELS`) and their likelihoods.
BAYES_MODELS = ("basic", "degree", "barrier", "transmission", "combined", "overdispersed")
LIKELIHOODS = ("poisson", "binomial")
#: Upper limits checked before any work: beyond them a run would take days or exhaust memory.
MAX_REPLICATES = 100_000
MAX_CHAINS = 16
MAX_ITERATIONS = 100_000


def _missing_option() -> Any:
    return opt("zero", "missing answers: zero (count as 0) or drop (drop the respondent)")


def _recall_option(how: str) -> Any:
    return opt("none", "recall correction: none, or loglinear (a log-log curve of reported over true share against "
                       f"true share, fitted on the known groups and applied to every group at its own size; {how})")


@dataclass(frozen=True, kw_only=True)
class SurveyOptions:
    """How a survey of aggregated relational data is read (the study file's ``[survey]`` table)."""

    id: str | None = opt(None, "respondent id column (must be unique)", aliases=("--id-column",))
    weights: str | None = opt(None, "survey weight column (> 0)")
    strata: str | None = opt(None, "stratum column")
    psu: str | None = opt(None, "primary sampling unit (cluster) column")
    missing: Literal[MISSING_POLICIES] = _missing_option()
    topcode: int | None = opt(None, "top-code known-group answers at this value (the field uses 30)", min=1)


@dataclass(frozen=True, kw_only=True)
class ConsistencySpec:
    """Options of the leave-one-out consistency check of the known groups."""

    flag_ratio: float = opt(2.0, "flag known groups whose held-out estimate is off by more than this factor",
                            min=1, inclusive=False)
    unweighted: bool = opt(False, "ignore the survey weights in the estimator")


def _factor(symbol: str, what: str, **kwargs: Any) -> Any:
    return opt("1", f"generalized NSUM {what} {symbol}: {DISTRIBUTION_HELP} (divides the estimate; a "
                    "distribution is drawn once per replicate or posterior draw)", parse=parse_distribution, **kwargs)


@dataclass(frozen=True, kw_only=True)
class VisibilityOptions:
    """The generalized NSUM factors of every hidden group (a study file declares them in [visibility.NAME])."""

    degree_ratio: str = _factor("delta", "degree ratio", aliases=("--deg-ratio",))
    transmission_rate: str = _factor("tau", "transmission rate, the visibility of group membership,",
                                     aliases=("--tx-rate",))
    frame_ratio: str = _factor("phi", "frame ratio")

    def adjustments(self) -> Adjustments:
        return Adjustments(degree_ratio=self.degree_ratio, transmission_rate=self.transmission_rate,
                           frame_ratio=self.frame_ratio)


@dataclass(frozen=True, kw_only=True)
class _ScaleUpOptions(VisibilityOptions):

    method: tuple[Literal[METHOD_NAMES], ...] = opt(
        ("mle",), "estimators: mle (Killworth), pimle, mos; on the command line several give one row each (a study "
                "file names one)")
    bootstrap: int = opt(1000, "rescaled-bootstrap replicates (0: Killworth Wald interval only)", min=0,
                         max=MAX_REPLICATES)
    seed: int = seed_option("random seed for the bootstrap")
    level: float = opt(0.95, "interval level", min=0, max=1, inclusive=False)
    recall: Literal[RECALL_NAMES] = _recall_option("refitted on every bootstrap replicate")


@dataclass(frozen=True, kw_only=True)
class NsumSpec(ConsistencySpec, _ScaleUpOptions):
    """Options of the design-based scale-up estimate, with its consistency check of the known groups."""


@dataclass(frozen=True, kw_only=True)
class BayesSpec(VisibilityOptions):
    """Options of the Bayesian scale-up models (NumPyro NUTS)."""

    model: Literal[BAYES_MODELS] = opt("combined", "basic, degree, barrier, transmission, combined (Maltiel et al. "
                                                   "2015) or overdispersed (Zheng et al. 2006)")
    likelihood: Literal[LIKELIHOODS] = opt("poisson", "poisson (fast, sufficient statistics) or binomial (the NSUM "
                                                      "package's, continuous degree; slow at survey scale)")
    chains: int = opt(4, "MCMC chains", min=1, max=MAX_CHAINS)
    warmup: int = opt(1000, "warm-up iterations per chain", min=1, max=MAX_ITERATIONS)
    draws: int = opt(1000, "kept draws per chain", min=1, max=MAX_ITERATIONS)
    seed: int = seed_option()
    level: float = opt(0.95, "credible-interval level of the tau sensitivity table", min=0, max=1,
                       inclusive=False)
    target_accept: float = opt(0.8, "NUTS target acceptance rate", min=0, max=1, inclusive=False)
    recall: Literal[RECALL_NAMES] = _recall_option("its slope sampled with the model; not for the basic and "
                                                   "overdispersed models")
    tau_prior: tuple[float, ...] | None = opt(None, "deprecated spelling of --transmission-rate 'beta(a, b)': "
                                                    "two numbers a b", min=0, inclusive=False)
    tau_grid: tuple[float, ...] = opt((0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
                                      "assumed transmission rates of the sensitivity table (empty: none)", min=0,
                                      max=1)


@dataclass(frozen=True, kw_only=True)
class SurveyNsumSpec(SurveyOptions, NsumSpec):
    """``hiddenpop nsum estimate``: how the survey is read and the estimate's options."""


@dataclass(frozen=True, kw_only=True)
class SurveyConsistencySpec(SurveyOptions, ConsistencySpec):
    """``hiddenpop nsum consistency``: how the survey is read and the check's options."""


@dataclass(frozen=True, kw_only=True)
class SurveyBayesSpec(BayesSpec):
    """``hiddenpop nsum bayes``: the model's options and the missing-answer policy (the models use no design)."""

    missing: Literal[MISSING_POLICIES] = _missing_option()
