"""Overlapping lists as the models see them: every observable list history with its count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hiddenpop.capture.core.terms import canonical_patterns
from hiddenpop.capture.lists.coverage import PatternCounts, pattern_counts
from hiddenpop.errors import DataError, locate

__all__ = ['ListData', 'list_data']


@dataclass(frozen=True)
class ListData:
    """All 2^t − 1 observable histories (zeros included) with counts; the unit the models work on."""

    patterns: np.ndarray  # (K, t) 0/1
    counts: np.ndarray  # (K,)
    names: tuple[str, ...]
    source: str | None = None

    @property
    def lists(self) -> int:
        return self.patterns.shape[1]

    @property
    def observed(self) -> float:
        return float(self.counts.sum())

    def with_counts(self, counts: np.ndarray) -> ListData:
        return ListData(self.patterns, np.asarray(counts, dtype=np.float64), self.names, self.source)


def list_data(data: Any, *, count_column: str | None = None) -> ListData:
    """Read/validate list data and expand to all 2^t − 1 observable cells (missing histories count 0)."""
    if isinstance(data, ListData):
        return data
    table: PatternCounts = pattern_counts(data, count_column=count_column)
    t = table.occasions
    if t > 12:
        raise DataError(
            f"{locate(table.source)}{t} lists: multiple systems estimation enumerates 2^{t} − 1 histories; "
            "merge lists (as the UK and Netherlands analyses did) to at most 12"
        )
    if t < 2:
        raise DataError(f"{locate(table.source)}need at least 2 lists, found {t}")
    patterns = canonical_patterns(t)
    codes = patterns @ (1 << np.arange(t, dtype=np.int64))
    position = {int(c): k for k, c in enumerate(codes)}
    counts = np.zeros(len(patterns))
    for pattern, count in zip(table.patterns, table.counts, strict=True):
        counts[position[int(pattern @ (1 << np.arange(t)))]] += count
    on_list = counts @ patterns
    if np.any(on_list == 0):
        empty = [table.names[j] for j in np.flatnonzero(on_list == 0)]
        raise DataError(
            f"{locate(table.source)}list(s) {empty} contain nobody; remove them before estimating"
        )
    return ListData(patterns, counts, table.names, table.source)
