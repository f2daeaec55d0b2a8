"""Survey design: sample size and margin of error, stratified multistage PPS selection, weights.

Public functions are loaded lazily so that ``hiddenpop --help`` does not pay for SciPy.
"""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "sample_size": "hiddenpop.design.precision",
    "margin_of_error": "hiddenpop.design.precision",
    "select_pps": "hiddenpop.design.selection",
    "systematic_pps": "hiddenpop.design.selection",
    "pps_inclusion_probabilities": "hiddenpop.design.selection",
    "compute_weights": "hiddenpop.design.weights",
    "rake": "hiddenpop.design.weights",
    "read_margins": "hiddenpop.design.weights",
})
