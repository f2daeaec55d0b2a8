"""Sample review: sample size for a proportion, sampling by unit, shares with an "unknown" category (bounds and
missing at random), combination with a capture-recapture total. Loaded lazily (keeps the CLI start fast)."""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "estimate_share": "hiddenpop.review.proportion",
    "combine_with_total": "hiddenpop.review.proportion",
    "wilson_interval": "hiddenpop.review.proportion",
    "clopper_pearson_interval": "hiddenpop.review.proportion",
    "imbens_manski_interval": "hiddenpop.review.proportion",
    "sample_units": "hiddenpop.review.sampling",
})
