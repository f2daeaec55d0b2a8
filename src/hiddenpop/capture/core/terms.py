"""Interaction terms of log-linear models for capture histories and lists.

A term is a tuple of 0-based list (occasion) indices, ``(0, 2)`` for ``A:C``. :func:`parse_terms` reads them
from names or 1-based positions, :func:`term_indicator` gives the 0/1 column of a term over a set of histories
(cached for the full canonical table of :func:`canonical_patterns`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import numpy as np

from hiddenpop.capture.core.histories import all_patterns
from hiddenpop.errors import ConfigError

Term = tuple[int, ...]

__all__ = ['Term', 'canonical_patterns', 'canonical_terms', 'parse_term', 'parse_terms', 'term_indicator', 'term_name']


def term_name(term: Term, names: Sequence[str]) -> str:
    """``(0, 2)`` -> ``"A:C"`` with list names."""
    return ":".join(names[j] for j in term)


def parse_terms(terms: list[str] | str, labels: list[str] | tuple[str, ...]) -> list[tuple[int, ...]]:
    """Parse interaction terms such as ``"A:B"`` or ``["A:B", "B:C:D"]`` into tuples of occasion indices.

    Labels may be list names or 1-based positions (``"1:2"``). Raises ConfigError for unknown names,
    repeated lists within a term, or main effects (they are always included).
    """
    if isinstance(terms, str):
        terms = [s for s in terms.replace(",", " ").split() if s]
    index = {str(name): j for j, name in enumerate(labels)}
    parsed: list[tuple[int, ...]] = []
    for term in terms:
        parts = [s.strip() for s in str(term).split(":")]
        idx = []
        for part in parts:
            if part in index:
                idx.append(index[part])
            elif part.isdigit() and 1 <= int(part) <= len(labels):
                idx.append(int(part) - 1)
            else:
                raise ConfigError(f"interaction term {term!r}: unknown list/occasion {part!r}; known: {list(labels)}")
        if len(set(idx)) != len(idx) or len(idx) < 2:
            raise ConfigError(f"interaction term {term!r} must join two or more different lists, e.g. 'A:B'")
        key = tuple(sorted(idx))
        if key not in parsed:
            parsed.append(key)
    return parsed


def parse_term(text: str, labels: Sequence[str]) -> Term:
    """One interaction term, ``"A:C"`` -> ``(0, 2)`` (see :func:`parse_terms`)."""
    return parse_terms([text], labels)[0]


def term_indicator(patterns: np.ndarray, term: Term) -> np.ndarray:
    if patterns.shape[0] == 2 ** patterns.shape[1] - 1:  # the canonical full table: cached
        return _canonical_indicator(patterns.shape[1], term)
    return np.all(patterns[:, list(term)] == 1, axis=1)


@functools.lru_cache(maxsize=4096)
def _canonical_indicator(lists: int, term: Term) -> np.ndarray:
    indicator = np.all(canonical_patterns(lists)[:, list(term)] == 1, axis=1)
    indicator.setflags(write=False)
    return indicator


@functools.lru_cache(maxsize=16)
def canonical_patterns(lists: int) -> np.ndarray:
    """All 2^t − 1 observable histories in the one canonical order of :func:`all_patterns` (read-only, cached)."""
    patterns = all_patterns(lists).astype(np.int64)
    patterns.setflags(write=False)
    return patterns


def canonical_terms(terms: Iterable[Term]) -> tuple[Term, ...]:
    """Terms with their lists sorted, without repeats, in order of size then of lists."""
    return tuple(sorted({tuple(sorted(t)) for t in terms}, key=lambda t: (len(t), t)))
