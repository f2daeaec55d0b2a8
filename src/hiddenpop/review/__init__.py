"""Sample review: sample size for a proportion, sampling by unit, shares with an "unknown" category (bounds and
missing at random), combination with a capture-recapture total. Loaded lazily (keeps the CLI start fast)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "estimate_share": "hiddenpop.review.proportion",
    "combine_with_total": "hiddenpop.review.proportion",
    "wilson_interval": "hiddenpop.review.proportion",
    "clopper_pearson_interval": "hiddenpop.review.proportion",
    "imbens_manski_interval": "hiddenpop.review.proportion",
    "sample_units": "hiddenpop.review.sampling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hiddenpop.review' has no attribute {name!r}")
