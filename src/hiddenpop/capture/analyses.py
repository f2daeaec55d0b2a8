"""The capture-recapture analyses as every interface runs them: options declared once, one result.

Each analysis is a spec (its options, with defaults, help and bounds; declared in :mod:`hiddenpop.capture.specs`)
and a function ``analysis(data, spec) -> Estimates``. The command line and the study file build the spec from their own
syntax and call the same function, so they get the same numbers, tables and warnings.

* :func:`closed_analysis` -- the closed family in one comparison table (Rcapture's ``closedp``), with the
  descriptive statistics f_k, u_j, v_j, n_j as ``tables["descriptive"]``.
* :func:`interval_analysis` -- the profile-likelihood interval for one model, beside the Wald and
  log-transformed intervals.
* :func:`mse_analysis` -- multiple systems estimation with a named selection procedure (:func:`mse`).
* :func:`coverage_analysis` -- the sample-coverage estimators, for overlapping lists or capture occasions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hiddenpop.capture.closed.descriptive_stats import descriptive
from hiddenpop.capture.closed.models import closedp
from hiddenpop.capture.closed.profile import profile_ci
from hiddenpop.capture.core.histories import Histories, parse_occasions
from hiddenpop.capture.lists.coverage import coverage_mth, sample_coverage
from hiddenpop.capture.lists.models import mse
from hiddenpop.capture.specs import ClosedSpec, CoverageSpec, HistoriesOptions, IntervalSpec, MSESpec
from hiddenpop.results import Estimates
from hiddenpop.specs import to_dict

__all__ = ["closed_analysis", "coverage_analysis", "interval_analysis", "mse_analysis", "read_histories"]

def read_histories(path: str | Path, options: HistoriesOptions) -> Histories:
    """Read a capture file with the reading options of a spec."""
    source = Path(path).name
    occasions = None if options.occasions is None else parse_occasions(options.occasions, source)
    return Histories.from_file(path, count_column=options.count_column, occasions=occasions)


def closed_analysis(histories: Histories, spec: ClosedSpec) -> Estimates:
    """Every closed model that suits the histories, compared in one table; see :func:`closedp`."""
    result = closedp(histories, rcapture=spec.rcapture, normal=spec.normal, t0=spec.t0)
    result.tables["descriptive"] = descriptive(histories)
    result.settings = {**to_dict(spec), **result.settings}
    return result


def interval_analysis(histories: Histories, spec: IntervalSpec) -> Estimates:
    """Profile-likelihood interval for ``spec.model`` with the Wald and log-transformed intervals as rows."""
    result = profile_ci(histories, spec.model, spec.level, t0=spec.t0).to_estimates()
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
