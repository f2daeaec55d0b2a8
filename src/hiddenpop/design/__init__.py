"""Survey design: sample size and margin of error, stratified multistage PPS selection, weights.

Public functions are loaded lazily so that ``hiddenpop --help`` does not pay for SciPy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "sample_size": "hiddenpop.design.sample_size",
    "margin_of_error": "hiddenpop.design.sample_size",
    "select_pps": "hiddenpop.design.selection",
    "systematic_pps": "hiddenpop.design.selection",
    "pps_inclusion_probabilities": "hiddenpop.design.selection",
    "compute_weights": "hiddenpop.design.weights",
    "rake": "hiddenpop.design.weights",
    "read_margins": "hiddenpop.design.weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hiddenpop.design' has no attribute {name!r}")
