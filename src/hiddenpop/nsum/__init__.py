"""Network scale-up (NSUM): degrees, design-based estimators, generalized adjustments and diagnostics.

    from hiddenpop.data import read_ard
    from hiddenpop import nsum

    ard = read_ard("survey.csv", known="known.csv", population=10e6, hidden=["clients"],
                   weights="w", strata="region", psu="cluster", topcode=30)
    result = nsum.estimate(ard, method=["mle", "pimle"], bootstrap=1000, seed=1)
    check = nsum.consistency(ard)

The Bayesian models live in :mod:`hiddenpop.nsum.bayes`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Light modules load eagerly; the estimators load on first use, so ``hiddenpop --help`` and the other families' commands do not pay for
# scipy.stats (or JAX) at start-up.
from hiddenpop.nsum.adjust import Adjustments as Adjustments
from hiddenpop.nsum.degrees import Degree as Degree
from hiddenpop.nsum.degrees import degree as degree
from hiddenpop.nsum.degrees import degree_summary as degree_summary

_EXPORTS = {
    "consistency": "hiddenpop.nsum.diagnostics",
    "METHODS": "hiddenpop.nsum.estimators",
    "Prevalence": "hiddenpop.nsum.estimators",
    "estimate": "hiddenpop.nsum.estimators",
}

__all__ = sorted([*_EXPORTS, "Adjustments", "Degree", "bayes", "degree", "degree_summary"])


def __getattr__(name: str) -> Any:
    if name == "bayes":
        return importlib.import_module("hiddenpop.nsum.bayes")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hiddenpop.nsum' has no attribute {name!r}")
