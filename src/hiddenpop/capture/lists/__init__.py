"""Multiple systems estimation from overlapping lists: log-linear models with model selection (stepwise, AIC,
BIC), existence checks and bootstrap intervals, and the sample-coverage estimators. Imports only the core and
closed rooms of :mod:`hiddenpop.capture`."""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "PROCEDURES": "hiddenpop.capture.lists.procedures",
    "mse": "hiddenpop.capture.lists.models",
    "select_model": "hiddenpop.capture.lists.selection",
    "check_extended_mle": "hiddenpop.capture.lists.existence",
    "graph_averaging": "hiddenpop.capture.lists.graphs",
    "decomposable_graphs": "hiddenpop.capture.lists.graphs",
    "sample_coverage": "hiddenpop.capture.lists.coverage",
    "coverage_mth": "hiddenpop.capture.lists.coverage",
    "compare_classes": "hiddenpop.capture.lists.compare",
    "stratified": "hiddenpop.capture.lists.strata",
})
