"""Existence and identifiability of the extended maximum-likelihood estimate (Fienberg & Rinaldo 2012; Chan,
Silverman & Vincent 2021), in the codes of MultipleSystemsEstimation's ``check_extended_MLE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hiddenpop.capture.core.terms import Term, canonical_terms, parse_term, term_indicator
from hiddenpop.capture.lists.data import ListData, list_data
from hiddenpop.capture.lists.space import design_matrix

EXISTS, NO_MLE, NOT_IDENTIFIABLE, BOTH_FAIL = 0, 1, 2, 3

__all__ = ['BOTH_FAIL', 'EXISTS', 'NOT_IDENTIFIABLE', 'NO_MLE', 'check_extended_mle', 'split_terms']


def split_terms(data: ListData, terms: Sequence[Term], counts: np.ndarray | None = None):
    """Split ``terms`` into finite and −∞ (zero margin) and find the cells kept on the extended-MLE face."""
    counts = data.counts if counts is None else counts
    neg_inf = tuple(t for t in terms if counts @ term_indicator(data.patterns, t) == 0)
    kept = np.ones(len(data.patterns), dtype=bool)
    for term in neg_inf:
        kept &= ~term_indicator(data.patterns, term)
    finite = tuple(t for t in terms if t not in neg_inf)
    return finite, neg_inf, kept


_EXISTENCE_CACHE: dict[tuple, int] = {}


def check_extended_mle(
    data: Any, terms: Sequence[Term] | Sequence[str], counts: np.ndarray | None = None
) -> int:
    """Existence and identifiability of the extended MLE (Fienberg & Rinaldo 2012; Chan, Silverman & Vincent 2021).

    Terms with a zero margin are fixed at −∞ and their cells removed. On the remaining cells with design A
    and observed margins A'y, the MLE exists iff some strictly positive table has the same margins
    (maximise s subject to A'x = A'y, x_i ≥ s, x ≥ 0: no MLE when the optimum is s = 0). Identifiable iff
    A has full column rank.

    Computation: by Farkas' lemma the MLE fails to exist iff some direction d has Ad = 0 on the cells with
    y > 0 and Ad ≥ 0, Ad ≠ 0 on the zero cells. When A has full rank this is decided on the null space of the
    positive-cell rows (empty: the MLE exists; one dimension: a sign check; more: a small linear programme),
    which gives the same answer as the LP above without solving it for every model; a rank-deficient A uses
    the LP above.

    Returns 0 (both hold), 1 (no MLE), 2 (not identifiable) or 3 (both fail), the codes of
    MultipleSystemsEstimation's ``check_extended_MLE``.
    """
    data = list_data(data)
    terms = [parse_term(t, data.names) if isinstance(t, str) else tuple(t) for t in terms]
    counts = data.counts if counts is None else np.asarray(counts, dtype=np.float64)
    key = (data.lists, canonical_terms(terms), np.flatnonzero(counts > 0).tobytes())
    cached = _EXISTENCE_CACHE.get(key)
    if cached is not None:
        return cached
    finite, _neg_inf, kept = split_terms(data, terms, counts)
    design = design_matrix(data.patterns, finite)[kept]
    y = counts[kept]
    full_rank = np.linalg.matrix_rank(design) == design.shape[1]
    if np.all(y > 0):
        exists = True
    elif full_rank:
        exists = _exists_full_rank(design, y > 0)
    else:
        exists = _exists_lp(design, y)
    code = (EXISTS if exists else NO_MLE) + (0 if full_rank else NOT_IDENTIFIABLE)
    if len(_EXISTENCE_CACHE) > 200_000:
        _EXISTENCE_CACHE.clear()
    _EXISTENCE_CACHE[key] = code
    return code


def _exists_full_rank(design: np.ndarray, positive: np.ndarray, tol: float = 1e-9) -> bool:
    """No d ≠ 0 with A_pos d = 0 and A_zero d ≥ 0 (A of full column rank)."""
    rows = design[positive]
    if rows.shape[0] == 0:
        return False
    _, singular, vt = np.linalg.svd(rows, full_matrices=True)
    rank = int(np.sum(singular > tol * max(1.0, singular.max(initial=0.0))))
    null = vt[rank:].T  # (p, r)
    if null.shape[1] == 0:
        return True
    directions = design[~positive] @ null  # (zeros, r); injective because A has full rank
    if null.shape[1] == 1:
        v = directions[:, 0]
        scale = np.abs(v).max()
        return not (np.all(v >= -tol * scale) or np.all(v <= tol * scale))
    # maximise sum(Z N u) subject to Z N u >= 0, sum(Z N u) <= 1: positive optimum = a recession direction
    total = directions.sum(axis=0)
    from scipy.optimize import linprog  # heavy: about 0.1 s to import; most designs are settled before the LP

    result = linprog(
        -total,
        A_ub=np.vstack([-directions, total[None, :]]),
        b_ub=np.append(np.zeros(directions.shape[0]), 1.0),
        bounds=[(None, None)] * null.shape[1],
        method="highs",
    )
    return not (result.status == 0 and -result.fun > 1e-7)


def _exists_lp(design: np.ndarray, y: np.ndarray) -> bool:
    """The Fienberg-Rinaldo LP: is there a strictly positive x with A'x = A'y?"""
    cells, params = design.shape
    objective = np.zeros(cells + 1)
    objective[-1] = -1.0  # maximise s
    from scipy.optimize import linprog  # heavy: about 0.1 s to import; most designs are settled before the LP

    result = linprog(
        objective,
        A_ub=np.hstack([-np.eye(cells), np.ones((cells, 1))]),  # s - x_i <= 0
        b_ub=np.zeros(cells),
        A_eq=np.hstack([design.T, np.zeros((params, 1))]),
        b_eq=design.T @ y,
        bounds=[(0, None)] * (cells + 1),
        method="highs",
    )
    return result.status == 0 and -result.fun > 1e-7 * max(1.0, y.sum() / cells)
