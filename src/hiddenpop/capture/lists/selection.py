"""The three model-selection procedures of multiple systems estimation: aic (Silverman 2014), stepwise (Chan,
Silverman & Vincent 2021) and bic over hierarchical models (Silverman, Chan & Vincent 2024).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop import special
from hiddenpop.capture.core.terms import Term, term_indicator, term_name
from hiddenpop.capture.lists.data import ListData, list_data
from hiddenpop.capture.lists.existence import EXISTS, check_extended_mle
from hiddenpop.capture.lists.fitting import LoglinearFit, fit_model
from hiddenpop.capture.lists.procedures import DEFAULT_THRESHOLD, PROCEDURES
from hiddenpop.capture.lists.space import hierarchical_models
from hiddenpop.errors import ConfigError, ModelError

# Default maximum interaction order for the BIC search, by number of lists (Silverman, Chan & Vincent 2024).
DEFAULT_MAX_ORDER = {2: 1, 3: 2, 4: 3, 5: 3, 6: 2}
MAX_ENUMERATED_MODELS = 40_000

__all__ = ['DEFAULT_MAX_ORDER', 'MAX_ENUMERATED_MODELS', 'Selection', 'model_label', 'resolve_settings', 'select_model']


@dataclass
class Selection:
    """A selected model and how it was reached."""

    procedure: str
    threshold: float | None
    fit: LoglinearFit
    order_added: list[Term]
    path: list[dict[str, Any]]
    candidates: pd.DataFrame | None = None


def _all_pairs(t: int) -> list[Term]:
    return list(combinations(range(t), 2))


def _select_aic(data: ListData, counts: np.ndarray, threshold: float) -> Selection:
    current = fit_model(data, (), counts=counts)
    if not current.ok:
        raise ModelError("the main-effects model cannot be fitted to these data")
    chosen: list[Term] = []
    path = [
        {"step": 0, "added": None, "aic": current.aic, "p_value": None, "decision": "start: main effects"}
    ]
    remaining = _all_pairs(data.lists)
    while remaining:
        trial = {}
        for pair in remaining:
            fit = fit_model(data, [*chosen, pair], counts=counts)
            if fit.ok:
                trial[pair] = fit
        if not trial:
            path.append(_step(len(chosen) + 1, None, "stop: no candidate has an existent, identifiable MLE",
                              aic=None, p_value=None))
            break
        best = min(trial, key=lambda pair: (trial[pair].aic, remaining.index(pair)))
        best_fit = trial[best]
        if best_fit.aic >= current.aic:
            path.append(_step(len(chosen) + 1, best, "stop: AIC does not improve", aic=best_fit.aic, p_value=None))
            break
        p_value = best_fit.wald_pvalue(best)
        if p_value > threshold:
            path.append(_step(len(chosen) + 1, best, "stop: Wald p-value above threshold", aic=best_fit.aic,
                              p_value=p_value))
            break
        chosen.append(best)
        remaining.remove(best)
        current = best_fit
        path.append(_step(len(chosen), best, "added", aic=best_fit.aic, p_value=p_value))
    return Selection("aic", threshold, current, chosen, path)


def _step(step: int, added: Any, decision: str, **numbers: float | None) -> dict[str, Any]:
    """One row of a selection path: the step, the effect it added (None when it stopped), its criteria, why."""
    return {"step": step, "added": added, **numbers, "decision": decision}


def _overlap_pvalues(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """One-sided Poisson p-values min(P(X ≤ n*), P(X ≥ n*)) for X ~ Poisson(expected), elementwise.

    The same arithmetic as ``scipy.stats.poisson``: P(X ≤ n) = pdtr(⌊n⌋, μ) and P(X ≥ n) = pdtrc(⌊n⌋ − 1, μ),
    which is 1 for n < 1 (below the support); both are clipped to [0, 1]. The smaller of the two is taken
    as Python's ``min`` does (the first unless the second is strictly smaller), so a NaN stays where it was.
    """
    observed = np.floor(np.asarray(observed, dtype=np.float64))
    expected = np.asarray(expected, dtype=np.float64)
    lower = np.clip(special.pdtr(observed, expected), 0, 1)
    upper = np.clip(special.pdtrc(observed - 1, expected), 0, 1)
    if not (observed >= 1).all():  # below the support (pdtr/pdtrc give NaN there), unless μ itself is invalid
        usable = expected >= 0
        lower = np.where((observed < 0) & usable, 0.0, lower)
        upper = np.where((observed < 1) & usable, 1.0, upper)
    return np.where(upper < lower, upper, lower)


def _best_eligible(
    data: ListData, chosen: list[Term], remaining: list[Term], counts: np.ndarray, p_values: np.ndarray
) -> tuple[int, float]:
    """The candidate with the smallest p-value among those whose extended MLE exists (a candidate without one
    counts as p = 1), first in ``remaining`` order on ties; returns (index, its p-value).

    Candidates are checked for existence in increasing p-value order and the search stops at the first one
    that exists: every candidate before it counts as 1 and every one after it has a p-value at least as large,
    so it is the minimum. NaN p-values (which ``argmin`` would pick) take the exhaustive route.
    """
    if np.isnan(p_values).any():
        marked = [
            1.0 if check_extended_mle(data, [*chosen, pair], counts) != EXISTS else float(p)
            for pair, p in zip(remaining, p_values, strict=True)
        ]
        index = int(np.argmin(marked))
        return index, marked[index]
    for index in np.argsort(p_values, kind="stable"):
        if check_extended_mle(data, [*chosen, remaining[index]], counts) == EXISTS:
            if p_values[index] < 1.0:
                return int(index), float(p_values[index])
            break
    # no candidate with p < 1 exists: every value is 1, and argmin takes the first
    return 0, 1.0


def _select_stepwise(data: ListData, counts: np.ndarray, threshold: float) -> Selection:
    current = fit_model(data, (), counts=counts, check=False)
    if not current.ok:
        raise ModelError("the main-effects model cannot be fitted to these data")
    chosen: list[Term] = []
    path = [
        {"step": 0, "added": None, "p_value": None, "aic": current.aic, "decision": "start: main effects"}
    ]
    if threshold <= 0:
        return Selection("stepwise", threshold, current, chosen, path)
    remaining = _all_pairs(data.lists)
    while remaining:
        indicators = [term_indicator(data.patterns, pair) for pair in remaining]
        p_values = _overlap_pvalues(
            [counts @ indicator for indicator in indicators],
            [current.fitted @ indicator for indicator in indicators],
        )
        best_index, best_p = _best_eligible(data, chosen, remaining, counts, p_values)
        best = remaining[best_index]
        if best_p >= threshold:
            path.append(_step(len(chosen) + 1, None, "stop: no eligible effect below threshold", p_value=best_p,
                              aic=None))
            break
        chosen.append(best)
        remaining.remove(best)
        current = fit_model(data, chosen, counts=counts, check=False)
        if not current.ok:
            raise ModelError(f"the model with {chosen} failed to converge")
        path.append(_step(len(chosen), best, "added", p_value=best_p, aic=current.aic))
    return Selection("stepwise", threshold, current, chosen, path)


def _bic_models(data: ListData, max_order: int) -> list[tuple[Term, ...]]:
    return hierarchical_models(data.lists, max_order, limit=MAX_ENUMERATED_MODELS)


def _select_bic(data: ListData, counts: np.ndarray, max_order: int, models=None) -> Selection:
    models = _bic_models(data, max_order) if models is None else models
    rows = []
    best: LoglinearFit | None = None
    for terms in models:
        fit = fit_model(data, terms, counts=counts)
        if not fit.ok:
            continue
        rows.append(
            {
                "model": model_label(terms, data.names),
                "terms": terms,
                "abundance": fit.abundance,
                "bic": fit.bic,
                "aic": fit.aic,
                "order": max((len(t) for t in terms), default=1),
            }
        )
        if best is None or fit.bic < best.bic:
            best = fit
    if best is None:
        raise ModelError("no hierarchical model has an existent, identifiable MLE on these data")
    table = pd.DataFrame(rows).sort_values("bic", kind="stable").reset_index(drop=True)
    path = [
        {
            "step": 0,
            "added": None,
            "decision": f"minimum BIC over {len(rows)} eligible of {len(models)} models",
        }
    ]
    return Selection("bic", None, best, list(best.terms), path, candidates=table)


def model_label(terms: Sequence[Term], names: Sequence[str]) -> str:
    return "main effects" if not terms else " + ".join(term_name(t, names) for t in terms)


def select_model(
    data: Any,
    select: str = "stepwise",
    *,
    p_threshold: float | None = None,
    max_order: int | None = None,
    counts: np.ndarray | None = None,
) -> Selection:
    """Run one selection procedure (``"aic"``, ``"stepwise"`` or ``"bic"``) and return the chosen fit."""
    data = list_data(data)
    counts = data.counts if counts is None else np.asarray(counts, dtype=np.float64)
    select, threshold, max_order = resolve_settings(data, select, p_threshold, max_order)
    if select == "aic":
        return _select_aic(data, counts, threshold)
    if select == "stepwise":
        return _select_stepwise(data, counts, threshold)
    return _select_bic(data, counts, max_order)


def resolve_settings(data: ListData, select: str, p_threshold: float | None, max_order: int | None):
    if select not in PROCEDURES:
        raise ConfigError(f"unknown selection procedure {select!r}; choose one of {', '.join(PROCEDURES)}")
    threshold = DEFAULT_THRESHOLD[select] if p_threshold is None else float(p_threshold)
    if threshold is not None and not 0 <= threshold <= 1:
        raise ConfigError(f"p-value threshold must lie in [0, 1], got {p_threshold}")
    if select == "bic":
        if max_order is None:
            max_order = DEFAULT_MAX_ORDER.get(data.lists, 2)
        if not 1 <= max_order <= data.lists - 1:
            raise ConfigError(
                f"max order must be between 1 and {data.lists - 1} for {data.lists} lists, got {max_order}"
            )
    return select, threshold, max_order


# ---------------------------------------------------------------------------------------------- bootstrap
