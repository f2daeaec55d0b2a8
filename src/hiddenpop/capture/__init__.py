"""Capture-recapture and multiple systems estimation, in four rooms that import only downwards:

* :mod:`~hiddenpop.capture.core` -- :class:`Histories` (the input contract, one canonical pattern order), the
  Poisson log-linear engine :func:`fit_poisson` and the interval helpers;
* :mod:`~hiddenpop.capture.closed` -- the Rcapture closed family (:func:`closedp` compares every model,
  :func:`fit_closed` / :func:`fit_custom` fit one), profile-likelihood intervals (:func:`profile_ci`), closed
  forms (:func:`chapman`, :func:`lincoln_petersen`, :func:`chao1987`, :func:`closedp_bc`), descriptive statistics;
* :mod:`~hiddenpop.capture.lists` -- multiple systems estimation (:func:`mse`, :func:`select_model`,
  :func:`check_extended_mle`) and sample coverage (:func:`sample_coverage`, :func:`coverage_mth`);
* :mod:`~hiddenpop.capture.events` -- report logs (:func:`read_events`, :class:`CleaningRules`), capture
  occasions and rolling windows, open-population models (:func:`open_population`) and the robust design
  (:func:`robust_design`).

:mod:`~hiddenpop.capture.analyses` holds the analyses as every interface runs them (options declared once).
Names load on first use, so ``import hiddenpop.capture`` stays fast.
"""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

_CORE = "hiddenpop.capture.core"
_CLOSED = "hiddenpop.capture.closed"
_LISTS = "hiddenpop.capture.lists"
_EVENTS = "hiddenpop.capture.events"

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Histories": f"{_CORE}.histories",
    "all_patterns": f"{_CORE}.histories",
    "fit_poisson": f"{_CORE}.loglinear",
    "closed_design": f"{_CORE}.loglinear",
    "interaction_design": f"{_CORE}.loglinear",
    "log_transformed_ci": f"{_CORE}.intervals",
    "closedp": f"{_CLOSED}.models",
    "fit_closed": f"{_CLOSED}.models",
    "fit_custom": f"{_CLOSED}.models",
    "STANDARD_MODELS": f"{_CLOSED}.models",
    "profile_ci": f"{_CLOSED}.profile",
    "profile_ci_design": f"{_CLOSED}.profile",
    "chapman": f"{_CLOSED}.forms",
    "lincoln_petersen": f"{_CLOSED}.forms",
    "chao1987": f"{_CLOSED}.forms",
    "chao_bias_corrected": f"{_CLOSED}.forms",
    "closedp_bc": f"{_CLOSED}.forms",
    "two_occasion": f"{_CLOSED}.forms",
    "descriptive": f"{_CLOSED}.descriptive_stats",
    "goodness_of_fit": f"{_CLOSED}.descriptive_stats",
    "first_capture_fit": f"{_CLOSED}.descriptive_stats",
    "fit_mt_family": f"{_CLOSED}.sufficient",
    "mse": f"{_LISTS}.models",
    "select_model": f"{_LISTS}.selection",
    "check_extended_mle": f"{_LISTS}.existence",
    "graph_averaging": f"{_LISTS}.graphs",
    "sample_coverage": f"{_LISTS}.coverage",
    "coverage_mth": f"{_LISTS}.coverage",
    "read_events": f"{_EVENTS}.reader",
    "CleaningRules": f"{_EVENTS}.cleaning",
    "plan_windows": f"{_EVENTS}.occasions",
    "window_pattern_counts": f"{_EVENTS}.occasions",
    "rolling_series": f"{_EVENTS}.rolling",
    "report_series": f"{_EVENTS}.rolling",
    "open_population": f"{_EVENTS}.open",
    "robust_design": f"{_EVENTS}.robust",
})
