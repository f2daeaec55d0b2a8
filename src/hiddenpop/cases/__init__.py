"""Coded case-file summaries (victim, customer, trafficker, offending-process typologies) with small-cell
suppression. Loaded lazily (keeps the CLI start fast)."""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "read_codebook": "hiddenpop.cases.summary",
    "summarize_cases": "hiddenpop.cases.summary",
})
