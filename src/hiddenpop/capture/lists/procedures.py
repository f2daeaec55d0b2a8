"""The model-selection procedures of multiple systems estimation and their default p-value thresholds.

Kept in a module of its own (no SciPy) so that the options of ``capture mse`` can be declared without loading the
estimation code.
"""

from __future__ import annotations

__all__ = ["DEFAULT_THRESHOLD", "PROCEDURES"]

#: aic: Silverman (2014), the UK 2013 procedure; stepwise: Chan, Silverman & Vincent (2021); bic: minimum BIC over
#: hierarchical models (Silverman, Chan & Vincent 2024).
PROCEDURES = ("aic", "stepwise", "bic")
DEFAULT_THRESHOLD = {"aic": 0.05, "stepwise": 0.02, "bic": None}
