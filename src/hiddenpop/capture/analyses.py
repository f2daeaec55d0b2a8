"""The closed-population analyses as every interface runs them: options declared once, one result.

Each analysis is a spec (its options, with defaults, help and bounds; see :mod:`hiddenpop.specs`) and a function
``analysis(histories, spec) -> Estimates``. The command line and the study file build the spec from their own
syntax and call the same function, so they get the same numbers, tables and warnings.

* :func:`closed_analysis` -- the closed family in one comparison table (Rcapture's ``closedp``), with the
  descriptive statistics f_k, u_j, v_j, n_j as ``tables["descriptive"]``.
* :func:`interval_analysis` -- the profile-likelihood interval for one model, beside the Wald and
  log-transformed intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hiddenpop.capture.closed import closedp
from hiddenpop.capture.descriptive import descriptive
from hiddenpop.capture.histories import Histories, parse_occasions
from hiddenpop.capture.profile import profile_ci
from hiddenpop.results import Estimates
from hiddenpop.specs import REQUIRED, opt, to_dict

__all__ = ["ClosedSpec", "HistoriesOptions", "IntervalSpec", "closed_analysis", "interval_analysis",
           "read_histories"]


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
    level: float = opt(0.95, "confidence level", min=0, max=1, inclusive=False)


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
