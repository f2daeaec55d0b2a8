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
from hiddenpop.nsum.covariates import COVARIATE_MODELS, SCALINGS, check_x_entry
from hiddenpop.specs import REQUIRED, opt, seed_option

__all__ = ["BAYES_MODELS", "LIKELIHOODS", "METHODS", "RECALL_CURVES", "BayesSpec", "ConsistencySpec", "GameOfContactsOptions", "GameOfContactsSpec",
           "KnownGroupRatioSpec", "NsumSpec", "SurveyBayesSpec", "SurveyConsistencySpec", "SurveyKnownGroupRatioSpec",
           "SurveyNsumSpec", "SurveyOptions", "VisibilityOptions"]

#: The design-based estimators, by name, with the label their table rows carry.
METHODS = {"mle": "Killworth MLE (ratio of sums)", "pimle": "PIMLE (mean of ratios)", "mos": "mean of sums"}
METHOD_NAMES = tuple(METHODS)
#: The recall corrections (:mod:`hiddenpop.nsum.recall`, :mod:`hiddenpop.nsum.bayes.recall`), by name, with the
#: words a report uses for them.
RECALL_CURVES = {"none": "no recall correction",
                 "loglinear": "log-linear recall curve, log(reported / true share) = a + b log(true share)"}
RECALL_NAMES = tuple(RECALL_CURVES)
#: The Bayesian models (classes in :data:`hiddenpop.nsum.bayes.MODELS`) and their likelihoods.
BAYES_MODELS = ("basic", "degree", "barrier", "transmission", "combined", "overdispersed", *COVARIATE_MODELS)
LIKELIHOODS = ("poisson", "binomial")
#: Upper limits checked before any work: beyond them a run would take days or exhaust memory.
MAX_REPLICATES = 100_000
MAX_CHAINS = 16
MAX_ITERATIONS = 100_000
MAX_FOLDS = 50


def _missing_option() -> Any:
    return opt("zero", "missing answers: zero (count as 0) or drop (drop the respondent)")


def _weights_option() -> Any:
    return opt(None, "survey weight column (> 0)")


def _strata_option() -> Any:
    return opt(None, "stratum column")


def _psu_option() -> Any:
    return opt(None, "primary sampling unit (cluster) column")
def _recall_option(how: str) -> Any:
    return opt("none", "recall correction: none, or loglinear (a log-log curve of reported over true share against "
                       f"true share, fitted on the known groups and applied to every group at its own size; {how})")


@dataclass(frozen=True, kw_only=True)
class SurveyOptions:
    """How a survey of aggregated relational data is read (the study file's ``[survey]`` table)."""

    id: str | None = opt(None, "respondent id column (must be unique)", aliases=("--id-column",))
    weights: str | None = _weights_option()
    strata: str | None = _strata_option()
    psu: str | None = _psu_option()
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
                                                   "2015), overdispersed (Zheng et al. 2006), correlated or "
                                                   "uncorrelated (Laga et al. 2023)")
    likelihood: Literal[LIKELIHOODS] = opt("poisson", "poisson (fast, sufficient statistics) or binomial (the NSUM "
                                                      "package's, continuous degree; slow at survey scale)")
    chains: int = opt(4, "MCMC chains", min=1, max=MAX_CHAINS)
    warmup: int = opt(1000, "warm-up iterations per chain", min=1, max=MAX_ITERATIONS)
    draws: int = opt(1000, "kept draws per chain", min=1, max=MAX_ITERATIONS)
    seed: int = seed_option()
    level: float = opt(0.95, "credible-interval level of the tau sensitivity table", min=0, max=1,
                       inclusive=False)
    target_accept: float = opt(0.8, "NUTS target acceptance rate", min=0, max=1, inclusive=False)
    recall: Literal[RECALL_NAMES] = _recall_option("its slope sampled with the model; not for the basic, "
                                                   "overdispersed, correlated and uncorrelated models")
    tau_prior: tuple[float, ...] | None = opt(None, "deprecated spelling of --transmission-rate 'beta(a, b)': "
                                                    "two numbers a b", min=0, inclusive=False)
    scaling: Literal[SCALINGS] = opt("all", "correlated/uncorrelated models: how the known groups fix the scale, "
                                            "all (pooled) or weighted (by each hidden group's posterior correlation "
                                            "with them)")
    x_columns: tuple[str, ...] = opt((), "correlated/uncorrelated models: GROUP=COLUMN, the survey column holding "
                                         "each respondent's covariate about that group (one entry per group)",
                                     parse=check_x_entry)
    z_global: tuple[str, ...] = opt((), "correlated/uncorrelated models: survey columns of respondent covariates "
                                        "with one effect on every group")
    z_subpop: tuple[str, ...] = opt((), "correlated/uncorrelated models: survey columns of respondent covariates "
                                        "with an effect per group")
    tau_grid: tuple[float, ...] = opt((0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
                                      "assumed transmission rates of the sensitivity table (empty: none)", min=0,
                                      max=1)
    kfold: int = opt(0, "K-fold cross-validation of kfold_models with folds of whole PSUs (the survey's psu "
                        "column, else respondents): 0 is off, K >= 2 refits each model K times", min=0,
                     max=MAX_FOLDS)
    kfold_models: tuple[Literal[BAYES_MODELS], ...] = opt(
        ("degree", "barrier", "combined"), "the models K-fold cross-validation compares (random degrees and "
                                           "the poisson likelihood, or overdispersed)")
    residuals_by: str | None = opt(None, "survey column (e.g. region or age) the quantile residuals are "
                                         "summarised by, per group")
    unweighted: bool = opt(False, "ignore the survey design (weights, strata, PSUs) and fit the ordinary posterior; "
                                  "otherwise a survey with a design gets the survey-weighted pseudo-posterior")
    design_adjust: bool = opt(True, "rescale the weighted pseudo-posterior's draws of the global parameters to the "
                                    "design-based sandwich covariance (Williams & Savitsky 2021); false: the "
                                    "pseudo-posterior as drawn, whose intervals ignore the design")


@dataclass(frozen=True, kw_only=True)
class SurveyNsumSpec(SurveyOptions, NsumSpec):
    """``hiddenpop nsum estimate``: how the survey is read and the estimate's options."""


@dataclass(frozen=True, kw_only=True)
class SurveyConsistencySpec(SurveyOptions, ConsistencySpec):
    """``hiddenpop nsum consistency``: how the survey is read and the check's options."""


@dataclass(frozen=True, kw_only=True)
class SurveyBayesSpec(BayesSpec):
    """``hiddenpop nsum bayes``: the model's options, the survey's design columns (the weighted pseudo-posterior and
    the folds of K-fold cross-validation, which keep PSUs whole) and the missing-answer policy."""

    weights: str | None = _weights_option()
    strata: str | None = _strata_option()
    psu: str | None = _psu_option()
    missing: Literal[MISSING_POLICIES] = _missing_option()


#: How the game of contacts weights respondents, and how its bootstrap resamples them.
WEIGHTINGS = ("rds-ii", "column", "equal")
RESAMPLING = ("tree", "respondent")


@dataclass(frozen=True, kw_only=True)
class GameOfContactsOptions:
    """How a game-of-contacts survey of the hidden population is read and resampled (``hiddenpop nsum visibility``
    and a study file's ``[visibility.NAME]`` with ``game_of_contacts = FILE``)."""

    aware: str = opt(REQUIRED, "column: the respondent's alters who know the respondent is in the hidden group")
    alters: str = opt(REQUIRED, "column: every alter the respondent reported in the game (aware or not)")
    degree: str | None = opt(None, "column: the respondent's network size (RDS-II weights 1/degree; the hidden "
                                   "group's mean degree for delta)")
    weighting: Literal[WEIGHTINGS] = opt("rds-ii", "rds-ii (weights 1/degree, for an RDS sample), column (the "
                                                   "--weights column) or equal")
    weights: str | None = opt(None, "column: respondent weights, used with --weighting column")
    coupon: str | None = opt(None, "column: the respondent's own (received) coupon, to rebuild recruitment trees")
    issued: tuple[str, ...] = opt((), "columns: the coupons the respondent handed on (repeat the flag: --issued a "
                                      "--issued b)")
    resample: Literal[RESAMPLING] = opt("tree", "tree (resample recruitment trees; needs --coupon and --issued) or "
                                                "respondent (independent respondents)")
    bootstrap: int = opt(1000, "bootstrap replicates", min=2, max=MAX_REPLICATES)
    seed: int = seed_option("random seed for the bootstrap")
    level: float = opt(0.95, "interval level", min=0, max=1, inclusive=False)
    frame_degree: float | None = opt(None, "the frame population's mean degree from the general survey (same "
                                           "network-size question as --degree); gives the degree ratio delta",
                                     min=0, inclusive=False)
    frame_degree_se: float = opt(0.0, "standard error of --frame-degree (its uncertainty enters delta's)", min=0)


@dataclass(frozen=True, kw_only=True)
class GameOfContactsSpec(GameOfContactsOptions):
    """``hiddenpop nsum visibility``: tau and delta from a game-of-contacts survey of the hidden population."""

    name: str = opt("game_of_contacts", "prefix of the printed [visibility.NAME] tables")


@dataclass(frozen=True, kw_only=True)
class KnownGroupRatioSpec:
    """``hiddenpop nsum degree-ratio``: the hidden group's degree ratio predicted from similar known groups."""

    reference: tuple[str, ...] = opt(REQUIRED, "known groups whose members' networks resemble the hidden group's "
                                               "(at least 3; repeat the flag)")
    level: float = opt(0.95, "interval level", min=0, max=1, inclusive=False)
    name: str = opt("known_group_delta", "NAME of the printed [visibility.NAME] table")


@dataclass(frozen=True, kw_only=True)
class SurveyKnownGroupRatioSpec(SurveyOptions, KnownGroupRatioSpec):
    """``hiddenpop nsum degree-ratio``: how the survey is read and the reference groups."""
