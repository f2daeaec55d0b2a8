"""The model space of multiple systems estimation: design matrices and every hierarchical model up to an order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from itertools import combinations

import numpy as np

from hiddenpop.capture.core.terms import Term, canonical_patterns, canonical_terms, term_indicator
from hiddenpop.errors import ConfigError

__all__ = ['design_matrix', 'hierarchical_models', 'is_hierarchical']


def design_matrix(patterns: np.ndarray, terms: Sequence[Term]) -> np.ndarray:
    """Columns: intercept, one main effect per list, one product column per interaction term."""
    if patterns is canonical_patterns(patterns.shape[1]):  # the table every ListData uses: built once per model
        return _canonical_design(patterns.shape[1], tuple(terms)).copy()
    return _build_design(patterns, terms)


def _build_design(patterns: np.ndarray, terms: Sequence[Term]) -> np.ndarray:
    columns = [np.ones(len(patterns)), *patterns.T.astype(np.float64)]
    columns += [term_indicator(patterns, term).astype(np.float64) for term in terms]
    return np.column_stack(columns)


@functools.lru_cache(maxsize=4096)
def _canonical_design(lists: int, terms: tuple[Term, ...]) -> np.ndarray:
    design = _build_design(canonical_patterns(lists), terms)
    design.setflags(write=False)
    return design


def is_hierarchical(terms: Sequence[Term]) -> bool:
    present = set(terms)
    return all(
        len(term) == 2 or all(sub in present for sub in combinations(term, len(term) - 1)) for term in terms
    )


def hierarchical_models(lists: int, max_order: int, limit: int | None = None) -> list[tuple[Term, ...]]:
    """Every hierarchical model (all main effects plus a downward-closed set of interactions up to
    ``max_order``). Counts: 3 lists/order 2: 8; 4/3: 113; 5/2: 1,024; 5/3: 6,212; 6/2: 32,768.

    With ``limit``, raises ConfigError as soon as the count would exceed it (nothing large is built)."""

    def too_many(count: int) -> ConfigError:
        return ConfigError(
            f"more than {limit:,} hierarchical models for {lists} lists up to order {max_order} "
            f"(at least {count:,}): too many to enumerate; lower --max-order, merge lists, or use --select stepwise"
        )

    pairs = lists * (lists - 1) // 2
    if limit is not None and max_order >= 2 and pairs >= 62:
        raise too_many(2**62)
    if limit is not None and max_order >= 2 and 2**pairs > limit:
        raise too_many(2**pairs)
    models: list[tuple[Term, ...]] = [()]
    for order in range(2, max_order + 1):
        grown: list[tuple[Term, ...]] = []
        for model in models:
            present = set(model)
            candidates = [
                c
                for c in combinations(range(lists), order)
                if order == 2 or all(s in present for s in combinations(c, order - 1))
            ]
            if limit is not None and len(grown) + (1 << len(candidates)) > limit:
                raise too_many(len(grown) + (1 << len(candidates)))
            for mask in range(1 << len(candidates)):
                grown.append(model + tuple(c for i, c in enumerate(candidates) if mask >> i & 1))
        models = grown
    return [canonical_terms(m) for m in models]
