"""Coded case-file summaries (victim, customer, trafficker, offending-process typologies) with small-cell
suppression. Loaded lazily (keeps the CLI start fast)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "read_codebook": "hiddenpop.cases.summary",
    "summarize_cases": "hiddenpop.cases.summary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hiddenpop.cases' has no attribute {name!r}")
