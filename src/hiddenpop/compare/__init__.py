"""Cross-country comparison of referral counts: counts per country and region (a report sent to several
countries counted once in each), rates with exact Poisson intervals, rate ratios with exact conditional
intervals, the probability of ranking first, and the sensitivity to each reporting agency; small cells
suppressed. Loaded lazily (keeps the CLI start fast)."""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "compare_files": "hiddenpop.compare.analyses",
    "compare_referrals": "hiddenpop.compare.analyses",
    "garwood_interval": "hiddenpop.compare.rates",
    "rate_ratio_interval": "hiddenpop.compare.rates",
    "rank_simulation": "hiddenpop.compare.rates",
    "read_bases": "hiddenpop.compare.referrals",
    "read_referrals": "hiddenpop.compare.referrals",
    "lookup": "hiddenpop.compare.regions",
})
