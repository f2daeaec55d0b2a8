"""The options of the capture-recapture analyses, each declared once as a spec (see :mod:`hiddenpop.specs`).

The command line, the study file and the docs are built from these classes; :mod:`hiddenpop.capture.analyses`
runs them. This module loads no SciPy, so declaring the commands costs nothing at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hiddenpop.capture.closed.single import SINGLE_MODELS
from hiddenpop.capture.events.cleaning import DEDUPE_UNITS, IDENTIFIER_KINDS
from hiddenpop.capture.events.occasions import DEFAULT_ESTIMATOR, INTERVALS, MAX_OCCASIONS, OPEN_CAPTURE
from hiddenpop.capture.lists.procedures import HEADLINES, LATENT_CLASSES, MODEL_CLASSES, PROCEDURES
from hiddenpop.specs import REQUIRED, opt, seed_option

__all__ = ["COVERAGE_KINDS", "INTERVALS", "ClosedSpec", "CoverageSpec", "EventsSpec", "HistoriesOptions",
           "HistoriesSpec", "IntervalSpec", "ListsOptions", "LogOptions", "MSESpec", "OpenSpec", "RobustSpec",
           "SingleSpec"]

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
    stratum: str | None = opt(None, "column naming each row's stratum: every stratum estimated alone with the "
                                    "headline class, then added up (stratified bootstrap or joint posterior draws)")
    compare: bool = opt(False, "fit every model class side by side: independence, stepwise, aic, bic, latent "
                               "class, graph averaging")
    classes: tuple[Literal[MODEL_CLASSES], ...] = opt(MODEL_CLASSES, "with --compare: the model classes fitted")
    headline: Literal[HEADLINES] = opt("selected", "with --compare: the class to report, stated before seeing "
                                                   "results (selected: the --select procedure)")
    latent_classes: int = opt(LATENT_CLASSES, "latent class: truncation K of the Dirichlet-process mixture", min=2)
    draws: int = opt(1000, "latent class: warmup and sampling iterations per chain (4 chains)", min=100)
    latent_start_at_mode: bool = opt(False, "latent class: start every chain at the posterior mode and adapt a "
                                            "dense mass matrix (when a chain sticks in a small-class "
                                            "configuration and R-hat of N fails; slower)")
    delta: float | None = opt(None, "graph averaging: hyper-Dirichlet prior count per cell (default 2^-lists, as "
                                    "dga recommends; 0.5 lets sparse tables favour the saturated graph)",
                              min=0, inclusive=False)


@dataclass(frozen=True, kw_only=True)
class CoverageSpec(ListsOptions):
    """Options of the sample-coverage estimators."""

    kind: Literal[COVERAGE_KINDS] = opt(
        "lists", "lists: CARE1 estimators for overlapping lists (Chao et al. 2001); occasions: the M_th occasion "
                 "version (Chao, Lee & Jeng 1992)")
    bootstrap: int = opt(200, "parametric bootstrap replicates for the standard errors", min=0)
    seed: int = seed_option("random seed for the bootstrap")
    level: float = opt(0.95, LEVEL_HELP, min=0, max=1, inclusive=False)


@dataclass(frozen=True, kw_only=True)
class LogOptions:
    """How a report log is read and cleaned (identifiers are pseudonymised as they are read)."""

    id_kind: Literal[IDENTIFIER_KINDS] = opt("text", "what the identifier column holds: ip (spellings "
                                                     "canonicalised, invalid addresses counted and dropped) or text")
    country_column: str | None = opt(None, "country column")
    country: str | None = opt(None, "keep only this country code, e.g. PH")
    exclude: tuple[str, ...] = opt((), "drop rows with COLUMN=VALUE, e.g. category=viral")
    dedupe: Literal[DEDUPE_UNITS] = opt("day", "one record per identifier per day, per week, or none")
    start: str | None = opt(None, "first day kept (YYYY-MM-DD, local time)")
    end: str | None = opt(None, "last day kept (YYYY-MM-DD, local time)")
    timezone: str = opt("UTC", "time zone of calendar days, e.g. Asia/Manila")
    input_timezone: str = opt("UTC", "time zone of timestamps written without an offset")
    exclude_ipv6: bool = opt(False, "drop IPv6 identifiers (an IPv4 study)")


@dataclass(frozen=True, kw_only=True)
class _Occasions:
    occasion: str = opt("7D", "length of one capture occasion, e.g. 7D, 28D, 4W")
    occasions: int = opt(4, "capture occasions per window, e.g. 4 (or 13)", min=2, max=MAX_OCCASIONS)


@dataclass(frozen=True, kw_only=True)
class HistoriesSpec(_Occasions, LogOptions):
    """Options of the capture-history counts per window of a report log."""

    step: str | None = opt(None, "step between windows, e.g. 28D (default: back-to-back windows)")
    periods: int | None = opt(None, "robust design: windows of this many primary periods, each of --occasions "
                                    "occasions of --occasion days (--occasion 1D --occasions 7 --periods 6: six "
                                    "weeks of days); lists the histories seen, one 0/1 column per occasion, for "
                                    "`capture robust`", min=2)


@dataclass(frozen=True, kw_only=True)
class EventsSpec(_Occasions, LogOptions):
    """Options of the rolling-window estimates of a report log."""

    step: str | None = opt("1D", "step between windows, e.g. 1D or 28D; 'none' for back-to-back windows")
    estimator: str = opt(DEFAULT_ESTIMATOR, "closed model estimating each window (e.g. 'Mth Chao (LB)', 'M0'), "
                                            "'coverage', or a single-source estimator on the days each identifier "
                                            "was seen in the window (" + ", ".join(SINGLE_MODELS) + ")")
    base: float | None = opt(None, "identifier space for a rate per 10,000 (e.g. 5485000 IPv4 addresses)", min=0,
                             inclusive=False)
    interval: Literal[INTERVALS] = opt("log", "interval: log (Chao 1987) or wald")
    level: float = opt(0.95, LEVEL_HELP, min=0, max=1, inclusive=False)
    bootstrap: int = opt(200, "bootstrap replicates (coverage estimator)", min=0, max=100_000)
    seed: int = seed_option("random seed for the bootstrap")


@dataclass(frozen=True, kw_only=True)
class OpenSpec:
    """Options of Cormack's open-population log-linear model."""

    count_column: str | None = opt(None, "count column (default: freq/count/n... if present)")
    capture: Literal[OPEN_CAPTURE] = opt("up", "capture probabilities: up (unconstrained) or ep (equal)")
    exclude_history: tuple[str, ...] = opt((), "history to treat as missing, e.g. 100000 (Cormack 1989)")
    allow_negative: bool = opt(False, "do not fix negative gammas at the boundary")
    drop_unidentified: bool = opt(False, "when the included histories leave parameters unidentified, drop them and "
                                         "report the quantities that depend on them as not identifiable (with the "
                                         "reason) instead of refusing")
    level: float = opt(0.95, LEVEL_HELP, min=0, max=1, inclusive=False)
    window: str | None = opt(None, "for `capture histories` output with several windows: the window_start to use")


@dataclass(frozen=True, kw_only=True)
class RobustSpec:
    """Options of the robust design (primary periods of closed secondary occasions)."""

    periods: str = opt(REQUIRED, "secondary occasions in each primary period, in time order, e.g. 5,5,5 (the file's "
                                 "0/1 columns hold period 1's occasions first)")
    model: str = opt("Mt", "closed model within the primary periods: M0, Mt, or Mh / Mth with Chao (LB), Poisson2, "
                           "Darroch or Gamma3.5 (e.g. 'Mth Chao (LB)'); one for all, or one per period separated by "
                           "commas")
    count_column: str | None = opt(None, "count column (default: freq/count/n... if present)")
    allow_negative: bool = opt(False, "do not fix negative gammas and Chao etas at 0")
    level: float = opt(0.95, LEVEL_HELP, min=0, max=1, inclusive=False)
    window: str | None = opt(None, "for `capture histories --periods` output with several windows: the window_start "
                                   "to use")


@dataclass(frozen=True, kw_only=True)
class SingleSpec:
    """Options of the single-source estimators (times each unit was seen)."""

    count_column: str = opt(REQUIRED, "column with the number of times each unit was seen (>= 1)")
    covariate: tuple[str, ...] = opt((), "covariate of the count regressions, on the log of the mean count (text "
                                         "columns become categories)")
    model: tuple[Literal[SINGLE_MODELS], ...] = opt(
        SINGLE_MODELS, "estimators (default all): zero-truncated regressions ztpoisson, ztgeom, ztnegbin; "
                       "one-inflated oiztpoisson, oiztgeom (ones inflated after truncation) and ztoipoisson, ztoigeom "
                       "(before); zelterman; chao (lower bound)")
    level: float = opt(0.95, LEVEL_HELP, min=0, max=1, inclusive=False)
