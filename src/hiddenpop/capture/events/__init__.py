"""Report logs to population sizes: reading and pseudonymising the log (DuckDB), the cleaning pipeline with its
audit, capture occasions and rolling windows, open-population models and the robust design. Imports the lower
capture rooms only."""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "read_events": "hiddenpop.capture.events.reader",
    "CleaningRules": "hiddenpop.capture.events.cleaning",
    "plan_windows": "hiddenpop.capture.events.occasions",
    "window_pattern_counts": "hiddenpop.capture.events.occasions",
    "rolling_series": "hiddenpop.capture.events.rolling",
    "report_series": "hiddenpop.capture.events.rolling",
    "plot_series_png": "hiddenpop.capture.events.rolling",
    "plot_series_html": "hiddenpop.capture.events.rolling",
    "open_population": "hiddenpop.capture.events.open",
    "robust_design": "hiddenpop.capture.events.robust",
})
