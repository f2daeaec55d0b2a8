"""The capture-recapture analyses as every interface runs them: options declared once, one result.

Each analysis is a spec (its options, with defaults, help and bounds; see :mod:`hiddenpop.specs`) and a function
``analysis(histories, spec) -> Estimates``. The command line and the study file build the spec from their own
syntax and call the same function, so they get the same numbers, tables and warnings.

* :func:`closed_analysis` -- the closed family in one comparison table (Rcapture's ``closedp``), with the
  descriptive statistics f_k, u_j, v_j, n_j as ``tables["descriptive"]``.
* :func:`interval_analysis` -- the profile-likelihood interval for one model, beside the Wald and
  log-transformed intervals.
* :func:`mse_analysis` -- multiple systems estimation with a named selection procedure (:func:`mse`).
* :func:`coverage_analysis` -- the sample-coverage estimators, for overlapping lists or capture occasions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hiddenpop.capture.closed.descriptive_stats import descriptive
from hiddenpop.capture.closed.models import closedp
from hiddenpop.capture.closed.profile import profile_ci
from hiddenpop.capture.core.histories import Histories, parse_occasions
from hiddenpop.capture.lists.coverage import coverage_mth, sample_coverage
from hiddenpop.capture.lists.models import PROCEDURES, mse
from hiddenpop.results import Estimates
from hiddenpop.specs import REQUIRED, opt, seed_option, to_dict

__all__ = ["COVERAGE_KINDS", "ClosedSpec", "CoverageSpec", "HistoriesOptions", "IntervalSpec", "ListsOptions",
           "MSESpec", "closed_analysis", "coverage_analysis", "interval_analysis", "mse_analysis", "read_histories"]

COVERAGE_KINDS = ("lists", "occasions")
LEVEL_HELP = "confidence level of the intervals"


@dataclass(frozen=True, kw_only=True)
class HistoriesOptions:
    """How a capture-history file is read."""

    count_column: str | None = opt(None, "name of the count column (default: freq/count/n... if present)")
    occasions: str | None = opt(None, "number of occasions t for capture-count (nbcap, freq) data: a whole "
                                      "number >= 2, or 'inf' for continuous time")


@dataclass(frozen=True, kw_only=True)
class ClosedSpec(HistoriesOptions):
    """Options of the closed-model comparison."""

    rcapture: bool = opt(False, "reproduce Rcapture 1.4-4's printed numbers (R glm path, its Mbh standard error)")


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


def read_histories(path: str | Path, options: HistoriesOptions) -> Histories:
    """Read a capture file with the reading options of a spec."""
    source = Path(path).name
    occasions = None if options.occasions is None else parse_occasions(options.occasions, source)
    return Histories.from_file(path, count_column=options.count_column, occasions=occasions)


def closed_analysis(histories: Histories, spec: ClosedSpec) -> Estimates:
    """Every closed model that suits the histories, compared in one table; see :func:`closedp`."""
    result = closedp(histories, rcapture=spec.rcapture)
    result.tables["descriptive"] = descriptive(histories)
    result.settings = {**to_dict(spec), **result.settings}
    return result


def interval_analysis(histories: Histories, spec: IntervalSpec) -> Estimates:
    """Profile-likelihood interval for ``spec.model`` with the Wald and log-transformed intervals as rows."""
    result = profile_ci(histories, spec.model, spec.level).to_estimates()
    result.settings = {**to_dict(spec), **result.settings}
    result.diagnostics = {"observed": histories.observed, "occasions": histories.occasions}
    return result


def mse_analysis(data: Any, spec: MSESpec) -> Estimates:
    """Multiple systems estimate of ``data`` (a path, a DataFrame or list data) with ``spec``'s procedure."""
    result = mse(data, spec.select, p_threshold=spec.p_threshold, max_order=spec.max_order,
                 bootstrap=spec.bootstrap, seed=spec.seed, level=spec.level, top_models=spec.top_models,
                 count_column=spec.count_column)
    result.settings = {**to_dict(spec), **result.settings}
    return result


def coverage_analysis(data: Any, spec: CoverageSpec) -> Estimates:
    """Sample-coverage estimators of ``data`` for overlapping lists or for capture occasions (``spec.kind``)."""
    estimator = sample_coverage if spec.kind == "lists" else coverage_mth
    result = estimator(data, count_column=spec.count_column, bootstrap=spec.bootstrap, seed=spec.seed,
                       level=spec.level)
    result.settings = {**to_dict(spec), **result.settings}
    return result
