"""The ground floor of capture-recapture: capture histories in one canonical order, the Poisson log-linear engine
every model fits with, and the interval helpers. Imports no other room of :mod:`hiddenpop.capture`."""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "MAX_ENUMERATED_OCCASIONS": "hiddenpop.capture.core.histories",
    "Histories": "hiddenpop.capture.core.histories",
    "all_patterns": "hiddenpop.capture.core.histories",
    "parse_occasions": "hiddenpop.capture.core.histories",
    "closed_design": "hiddenpop.capture.core.loglinear",
    "fit_poisson": "hiddenpop.capture.core.loglinear",
    "interaction_design": "hiddenpop.capture.core.loglinear",
    "log_transformed_ci": "hiddenpop.capture.core.intervals",
    "wald_ci": "hiddenpop.capture.core.intervals",
})
