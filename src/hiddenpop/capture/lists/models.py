"""Multiple systems estimation (MSE) for overlapping lists: log-linear models chosen by three procedures.

A case appears on some of t lists; ``Y_ω`` counts cases with list history ω (2^t − 1 observable cells,
zeros included). A hierarchical Poisson log-linear model ``log μ_ω = γ + Σ_j β_j ω_j + Σ_{S ∈ terms} λ_S Π_{j∈S} ω_j``
is fitted to the observable cells and the unseen cell is extrapolated: ``N̂ = n + exp(γ̂)``, with the
multinomial-adjusted standard error ``se = sqrt(exp(γ̂) + exp(2γ̂) Var(γ̂))`` (Sanathanan 1972; as Rcapture).

Sparse data (lists that share nobody) are handled on the extended-MLE face (Fienberg & Rinaldo 2012; Chan,
Silverman & Vincent 2021): an interaction whose margin is zero is fixed at −∞, the cells containing it are
structural zeros, and the parameter is still counted in AIC/BIC. Existence and identifiability of the
extended MLE are checked by linear programming and a rank computation (:func:`check_extended_mle`).

Model selection (:func:`select_model`, :func:`mse`):

* ``aic`` — Silverman (2014) / Bales, Hesketh & Silverman (2015): from main effects, repeatedly add the two-list
  interaction with the lowest AIC; stop when the AIC does not improve or the new term's Wald p-value exceeds
  the threshold (0.05 in the UK study).
* ``stepwise`` — Chan, Silverman & Vincent (2021): add the two-list effect with the smallest one-sided Poisson
  p-value of its overlap count under the current model, among effects that keep the extended MLE existent and
  identifiable; stop when no p-value is below the threshold (default 0.02).
* ``bic`` — Silverman, Chan & Vincent (2024): minimum BIC over all hierarchical models up to a maximum order.

Bootstrap intervals repeat the whole selection in every replicate (multinomial resampling of the observed
cases) and use BCa with a delete-one jackknife acceleration over distinct histories.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from hiddenpop.capture.core.histories import all_patterns
from hiddenpop.capture.core.loglinear import fit_poisson
from hiddenpop.capture.lists.coverage import PatternCounts, pattern_counts
from hiddenpop.capture.lists.procedures import DEFAULT_THRESHOLD, PROCEDURES
from hiddenpop.errors import ConfigError, DataError, ModelError, locate
from hiddenpop.results import Estimates

Term = tuple[int, ...]
# Default maximum interaction order for the BIC search, by number of lists (Silverman, Chan & Vincent 2024).
DEFAULT_MAX_ORDER = {2: 1, 3: 2, 4: 3, 5: 3, 6: 2}
# Models refitted in every bootstrap replicate of the BIC procedure (the best ones on the original data).
DEFAULT_TOP_MODELS = {2: None, 3: None, 4: 20, 5: 100, 6: 100}
MAX_ENUMERATED_MODELS = 40_000
EXISTS, NO_MLE, NOT_IDENTIFIABLE, BOTH_FAIL = 0, 1, 2, 3


# ---------------------------------------------------------------------------------------------- cells and terms
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
    patterns = _canonical_patterns(t)
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


def term_name(term: Term, names: Sequence[str]) -> str:
    """``(0, 2)`` -> ``"A:C"`` with list names."""
    return ":".join(names[j] for j in term)


def parse_term(text: str, names: Sequence[str]) -> Term:
    """``"A:C"`` -> ``(0, 2)``; raises ConfigError for unknown list names."""
    parts = [p.strip() for p in text.split(":")]
    missing = [p for p in parts if p not in names]
    if missing or len(parts) < 2 or len(set(parts)) != len(parts):
        raise ConfigError(f"interaction {text!r} must name two or more distinct lists among {list(names)}")
    return tuple(sorted(names.index(p) for p in parts))


def _term_indicator(patterns: np.ndarray, term: Term) -> np.ndarray:
    if patterns.shape[0] == 2 ** patterns.shape[1] - 1:  # the canonical full table: cached
        return _canonical_indicator(patterns.shape[1], term)
    return np.all(patterns[:, list(term)] == 1, axis=1)


@functools.lru_cache(maxsize=4096)
def _canonical_indicator(lists: int, term: Term) -> np.ndarray:
    indicator = np.all(_canonical_patterns(lists)[:, list(term)] == 1, axis=1)
    indicator.setflags(write=False)
    return indicator


@functools.lru_cache(maxsize=16)
def _canonical_patterns(lists: int) -> np.ndarray:
    """All 2^t − 1 observable histories in the one canonical order of :func:`all_patterns` (read-only, cached)."""
    patterns = all_patterns(lists).astype(np.int64)
    patterns.setflags(write=False)
    return patterns


def design_matrix(patterns: np.ndarray, terms: Sequence[Term]) -> np.ndarray:
    """Columns: intercept, one main effect per list, one product column per interaction term."""
    columns = [np.ones(len(patterns)), *patterns.T.astype(np.float64)]
    columns += [_term_indicator(patterns, term).astype(np.float64) for term in terms]
    return np.column_stack(columns)


def _canonical(terms: Iterable[Term]) -> tuple[Term, ...]:
    return tuple(sorted({tuple(sorted(t)) for t in terms}, key=lambda t: (len(t), t)))


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
    return [_canonical(m) for m in models]


# ---------------------------------------------------------------------------------------------- fitting
@dataclass
class LoglinearFit:
    """One fitted hierarchical log-linear model on the extended-MLE face."""

    terms: tuple[Term, ...]
    neg_inf_terms: tuple[Term, ...]
    status: int
    abundance: float = float("nan")
    stderr: float = float("nan")
    dark: float = float("nan")
    intercept: float = float("nan")
    intercept_var: float = float("nan")
    coefficients: np.ndarray = field(default_factory=lambda: np.empty(0))
    vcov: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    fitted: np.ndarray = field(default_factory=lambda: np.empty(0))
    loglik: float = float("nan")
    deviance: float = float("nan")
    df: int = 0
    aic: float = float("nan")
    bic: float = float("nan")
    parameters: int = 0
    converged: bool = False

    @property
    def ok(self) -> bool:
        return self.status == EXISTS and self.converged and np.isfinite(self.abundance)

    def wald_pvalue(self, term: Term) -> float:
        """Two-sided Wald p-value of an interaction (1 when the term sits at −∞: no finite evidence)."""
        if term in self.neg_inf_terms:
            return 1.0
        finite = [t for t in self.terms if t not in self.neg_inf_terms]
        index = 1 + int(self.coefficients.size - 1 - len(finite)) + finite.index(term)
        z = self.coefficients[index] / math.sqrt(self.vcov[index, index])
        return float(2 * stats.norm.sf(abs(z)))


def _newton_poisson(design: np.ndarray, counts: np.ndarray, tol: float = 1e-11, max_iter: int = 100):
    """Poisson log-linear MLE for a batch of count vectors sharing one design (private solver).

    ``counts`` is (B, K). Starts like R's glm (μ = y + 0.1) with one IRLS step, then damped Newton steps.
    Returns (coefficients (B, p), fitted (B, K), converged (B,)).
    """
    counts = np.atleast_2d(counts)
    batch = counts.shape[0]
    p = design.shape[1]
    mu = counts + 0.1
    eta = np.log(mu)
    working = eta + (counts - mu) / mu
    gram = np.einsum("kp,bk,kq->bpq", design, mu, design)
    rhs = np.einsum("kp,bk->bp", design, mu * working)
    beta = np.linalg.solve(gram + 1e-12 * np.eye(p), rhs[..., None])[..., 0]
    converged = np.zeros(batch, dtype=bool)
    for _ in range(max_iter):
        eta = beta @ design.T
        mu = np.exp(np.minimum(eta, 700))
        gradient = (counts - mu) @ design
        hessian = np.einsum("kp,bk,kq->bpq", design, mu, design)
        try:
            step = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hessian[0], gradient[0], rcond=None)[0][None, :]
        change = np.abs(step @ design.T).max(axis=1)
        scale = np.minimum(1.0, 5.0 / np.maximum(change, 1e-300))
        beta = beta + step * scale[:, None]
        converged = change < tol
        if converged.all():
            break
    eta = beta @ design.T
    mu = np.exp(np.minimum(eta, 700))
    return beta, mu, converged


def _structure(data: ListData, terms: Sequence[Term], counts: np.ndarray | None = None):
    """Split ``terms`` into finite and −∞ (zero margin) and find the cells kept on the extended-MLE face."""
    counts = data.counts if counts is None else counts
    neg_inf = tuple(t for t in terms if counts @ _term_indicator(data.patterns, t) == 0)
    kept = np.ones(len(data.patterns), dtype=bool)
    for term in neg_inf:
        kept &= ~_term_indicator(data.patterns, term)
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
    key = (data.lists, _canonical(terms), np.flatnonzero(counts > 0).tobytes())
    cached = _EXISTENCE_CACHE.get(key)
    if cached is not None:
        return cached
    finite, _neg_inf, kept = _structure(data, terms, counts)
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
    result = optimize.linprog(
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
    result = optimize.linprog(
        objective,
        A_ub=np.hstack([-np.eye(cells), np.ones((cells, 1))]),  # s - x_i <= 0
        b_ub=np.zeros(cells),
        A_eq=np.hstack([design.T, np.zeros((params, 1))]),
        b_eq=design.T @ y,
        bounds=[(0, None)] * (cells + 1),
        method="highs",
    )
    return result.status == 0 and -result.fun > 1e-7 * max(1.0, y.sum() / cells)


def fit_model(
    data: Any,
    terms: Sequence[Term] | Sequence[str] = (),
    *,
    counts: np.ndarray | None = None,
    check: bool = True,
) -> LoglinearFit:
    """Fit main effects plus ``terms`` (tuples of list indices or names like ``"A:B"``) on the extended-MLE face.

    AIC = −2 log L + 2p and BIC = −2 log L + p log n, with log L the Poisson log-likelihood over the fitted
    cells (incl. the log y! term, as R's glm), p the number of parameters of the hierarchical model
    (intercept, main effects and every interaction, those at −∞ included) and n the number of cases seen.
    Deviance is the Poisson deviance over the fitted cells; df = fitted cells − finite parameters.
    """
    data = list_data(data)
    terms = _canonical(parse_term(t, data.names) if isinstance(t, str) else tuple(t) for t in terms)
    counts = data.counts if counts is None else np.asarray(counts, dtype=np.float64)
    finite, neg_inf, kept = _structure(data, terms, counts)
    status = check_extended_mle(data, terms, counts) if check else EXISTS
    fit = LoglinearFit(terms=terms, neg_inf_terms=neg_inf, status=status)
    if status != EXISTS:
        return fit
    design = design_matrix(data.patterns, finite)[kept]
    y = counts[kept]
    engine = fit_poisson(design[:, 1:], y, n_observed=round(counts.sum()))
    if engine.aliased:
        fit.status = NOT_IDENTIFIABLE
        return fit
    observed = float(counts.sum())
    dark = math.exp(engine.intercept)
    fitted = np.zeros(len(data.patterns))
    fitted[kept] = engine.fitted
    fit.coefficients, fit.vcov, fit.fitted = engine.coef, engine.vcov, fitted
    fit.intercept, fit.intercept_var, fit.dark = engine.intercept, float(engine.vcov[0, 0]), dark
    fit.abundance = observed + dark
    fit.stderr = engine.stderr
    fit.loglik, fit.deviance, fit.df = engine.loglik, engine.deviance, int(engine.df)
    fit.parameters = 1 + data.lists + len(terms)
    fit.aic = -2 * engine.loglik + 2 * fit.parameters
    fit.bic = -2 * engine.loglik + fit.parameters * math.log(observed)
    fit.converged = engine.converged
    return fit


# ---------------------------------------------------------------------------------------------- procedures
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
            path.append(
                {
                    "step": len(chosen) + 1,
                    "added": None,
                    "aic": None,
                    "p_value": None,
                    "decision": "stop: no candidate has an existent, identifiable MLE",
                }
            )
            break
        best = min(trial, key=lambda pair: (trial[pair].aic, remaining.index(pair)))
        best_fit = trial[best]
        if best_fit.aic >= current.aic:
            path.append(
                {
                    "step": len(chosen) + 1,
                    "added": best,
                    "aic": best_fit.aic,
                    "p_value": None,
                    "decision": "stop: AIC does not improve",
                }
            )
            break
        p_value = best_fit.wald_pvalue(best)
        if p_value > threshold:
            path.append(
                {
                    "step": len(chosen) + 1,
                    "added": best,
                    "aic": best_fit.aic,
                    "p_value": p_value,
                    "decision": "stop: Wald p-value above threshold",
                }
            )
            break
        chosen.append(best)
        remaining.remove(best)
        current = best_fit
        path.append(
            {"step": len(chosen), "added": best, "aic": best_fit.aic, "p_value": p_value, "decision": "added"}
        )
    return Selection("aic", threshold, current, chosen, path)


def _poisson_overlap_pvalue(observed: float, expected: float) -> float:
    """One-sided Poisson p-value min(P(X ≤ n*), P(X ≥ n*)) for X ~ Poisson(expected)."""
    return float(min(stats.poisson.cdf(observed, expected), stats.poisson.sf(observed - 1, expected)))


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
        p_values = []
        for pair in remaining:
            indicator = _term_indicator(data.patterns, pair)
            p_value = _poisson_overlap_pvalue(counts @ indicator, current.fitted @ indicator)
            if check_extended_mle(data, [*chosen, pair], counts) != EXISTS:
                p_value = 1.0
            p_values.append(p_value)
        best_index = int(np.argmin(p_values))
        best_p = p_values[best_index]
        best = remaining[best_index]
        if best_p >= threshold:
            path.append(
                {
                    "step": len(chosen) + 1,
                    "added": None,
                    "p_value": best_p,
                    "aic": None,
                    "decision": "stop: no eligible effect below threshold",
                }
            )
            break
        chosen.append(best)
        remaining.remove(best)
        current = fit_model(data, chosen, counts=counts, check=False)
        if not current.ok:
            raise ModelError(f"the model with {chosen} failed to converge")
        path.append(
            {"step": len(chosen), "added": best, "p_value": best_p, "aic": current.aic, "decision": "added"}
        )
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
                "model": _model_label(terms, data.names),
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


def _model_label(terms: Sequence[Term], names: Sequence[str]) -> str:
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
    select, threshold, max_order = _settings(data, select, p_threshold, max_order)
    if select == "aic":
        return _select_aic(data, counts, threshold)
    if select == "stepwise":
        return _select_stepwise(data, counts, threshold)
    return _select_bic(data, counts, max_order)


def _settings(data: ListData, select: str, p_threshold: float | None, max_order: int | None):
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
def bca_interval(
    replicates: np.ndarray, estimate: float, acceleration: float, level: float
) -> tuple[float, float, float]:
    """BCa interval (Efron 1987; DiCiccio & Efron 1996) from bootstrap replicates.

    z₀ = Φ⁻¹(share of replicates below the estimate); endpoint for tail α is the
    Φ(z₀ + (z₀ + z_α)/(1 − a(z₀ + z_α))) quantile of the replicates (R quantile type 8).
    Returns (lower, upper, z0). The share is kept within [1/(2B), 1 − 1/(2B)] so z₀ stays finite.
    """
    replicates = np.asarray(replicates, dtype=np.float64)
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size < 2:
        return float("nan"), float("nan"), float("nan")
    share = np.mean(replicates < estimate)
    share = min(max(share, 0.5 / replicates.size), 1 - 0.5 / replicates.size)
    z0 = stats.norm.ppf(share)
    tails = np.array([(1 - level) / 2, (1 + level) / 2])
    z_alpha = stats.norm.ppf(tails)
    shifted = z0 + z_alpha
    adjusted = stats.norm.cdf(z0 + shifted / (1 - acceleration * shifted))
    lower, upper = np.quantile(replicates, adjusted, method="median_unbiased")
    return float(lower), float(upper), float(z0)


def jackknife_acceleration(jackknife: np.ndarray, counts: np.ndarray) -> float:
    """BCa acceleration from delete-one estimates per distinct history, each weighted by its count."""
    weights = np.asarray(counts, dtype=np.float64)
    use = weights > 0
    values, weights = jackknife[use], weights[use]
    mean = np.sum(weights * values) / weights.sum()
    deviation = mean - values
    denominator = np.sum(weights * deviation**2)
    if not np.isfinite(denominator) or denominator <= 0:
        return 0.0
    return float(np.sum(weights * deviation**3) / (6 * denominator**1.5))


def _bic_batch_abundance(data: ListData, models, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit each model to every sample (rows of ``samples``), batched; returns (abundance, bic), (M, B)."""
    batch = samples.shape[0]
    abundance = np.full((len(models), batch), np.nan)
    bic = np.full((len(models), batch), np.inf)
    supports = np.unique(samples > 0, axis=0, return_inverse=True)
    support_rows, support_of = supports[0], supports[1].ravel()
    observed = samples.sum(axis=1)
    for m, terms in enumerate(models):
        eligible = np.zeros(batch, dtype=bool)
        for s, row in enumerate(support_rows):
            code = check_extended_mle(data, terms, row.astype(np.float64))
            eligible[support_of == s] = code == EXISTS
        # group eligible samples by their set of −∞ terms (depends on the support only)
        groups: dict[tuple, list[int]] = {}
        for b in np.flatnonzero(eligible):
            _finite, neg_inf, _kept = _structure(data, terms, samples[b])
            groups.setdefault(neg_inf, []).append(int(b))
        for neg_inf, members in groups.items():
            finite = tuple(t for t in terms if t not in neg_inf)
            kept = np.ones(len(data.patterns), dtype=bool)
            for term in neg_inf:
                kept &= ~_term_indicator(data.patterns, term)
            design = design_matrix(data.patterns, finite)[kept]
            y = samples[np.ix_(members, np.flatnonzero(kept))]
            beta, mu, converged = _newton_poisson(design, y)
            loglik = np.sum(special.xlogy(y, mu) - mu - special.gammaln(y + 1), axis=1)
            params = 1 + data.lists + len(terms)
            values = observed[members] + np.exp(beta[:, 0])
            abundance[m, members] = np.where(converged, values, np.nan)
            bic[m, members] = np.where(converged, -2 * loglik + params * np.log(observed[members]), np.inf)
    return abundance, bic


def _selection_estimates(
    data: ListData, samples: np.ndarray, select: str, threshold, max_order, top_models
) -> np.ndarray:
    """Re-run the whole selection on each sample; returns the selected model's abundance per sample."""
    if select == "bic":
        abundance, bic = _bic_batch_abundance(data, top_models, samples)
        best = np.argmin(bic, axis=0)
        values = abundance[best, np.arange(samples.shape[0])]
        values[~np.isfinite(bic.min(axis=0))] = np.nan
        return values
    out = np.full(samples.shape[0], np.nan)
    for b, counts in enumerate(samples):
        try:
            out[b] = select_model(data, select, p_threshold=threshold, counts=counts).fit.abundance
        except ModelError:
            out[b] = np.nan
    return out


# ---------------------------------------------------------------------------------------------- public API
def mse(
    data: Any,
    select: str = "stepwise",
    *,
    p_threshold: float | None = None,
    max_order: int | None = None,
    bootstrap: int = 0,
    seed: int | None = 1,
    level: float = 0.95,
    top_models: int | None = None,
    count_column: str | None = None,
    profile: bool = True,
) -> Estimates:
    """Multiple systems estimate of the total population with a chosen selection procedure.

    Parameters
    ----------
    data:
        Path, DataFrame or :class:`ListData`: one 0/1 column per list plus an optional count column.
    select:
        ``"aic"`` (Silverman 2014; threshold default 0.05), ``"stepwise"`` (Chan, Silverman & Vincent 2021;
        default 0.02) or ``"bic"`` (Silverman, Chan & Vincent 2024; ``max_order`` default 2 for 3 or 6 lists,
        3 for 4-5 lists).
    bootstrap:
        Number of multinomial bootstrap replicates. Each replicate repeats the whole selection; the interval
        is BCa with a delete-one jackknife acceleration (over distinct histories, weighted by their counts).
        For ``bic`` each replicate chooses among the ``top_models`` best models on the original data
        (default: all for ≤ 3 lists, 20 for 4, 100 for 5-6), as in the published procedure.
        With ``bootstrap = 0`` the interval is the profile-likelihood interval of the selected model
        (conditional on the selection) when available, else a log-normal interval for the unseen count.
    Returns
    -------
    Estimates with one ``population`` row (procedure and threshold in the columns), the selection path in
    ``tables["path"]``, the candidate ranking for ``bic`` in ``tables["models"]`` and a
    ``main effects only`` comparison row.

    Assumptions: closed population over the period the lists cover; cases matched without error across lists;
    heterogeneity and list dependence representable by the log-linear interactions that were allowed
    (no highest-order interaction, which is never identifiable). Fails when lists barely overlap (estimates
    then rest on few overlapping cases and swing with the model), and when the selected model is one of many
    with similar fit but very different extrapolation; compare procedures and read the bootstrap interval.
    """
    data = list_data(data, count_column=count_column)
    if bootstrap < 0 or int(bootstrap) != bootstrap:
        raise ConfigError(f"bootstrap must be a whole number ≥ 0, got {bootstrap}")
    if not 0 < level < 1:
        raise ConfigError(f"level must lie strictly between 0 and 1, got {level}")
    select, threshold, max_order = _settings(data, select, p_threshold, max_order)
    notes: list[str] = []
    warnings: list[str] = []
    if select != "bic" and max_order is not None:
        notes.append(
            f"max_order={max_order} applies only to the bic procedure; {select} adds two-list effects"
        )
    selection = select_model(data, select, p_threshold=threshold, max_order=max_order)
    fit = selection.fit
    names = data.names
    selected = [term_name(t, names) for t in selection.order_added]
    main = fit_model(data, (), check=False)
    conditional = _conditional_interval(data, fit, level, profile)
    main_conditional = _conditional_interval(data, main, level, profile)
    warnings.extend(f"selected model: {w}" for w in conditional["warnings"])

    lower, upper, interval = conditional["lower"], conditional["upper"], conditional["interval"]
    diagnostics: dict[str, Any] = {}
    if bootstrap > 0:
        models = None
        if select == "bic":
            assert selection.candidates is not None
            limit = top_models if top_models is not None else DEFAULT_TOP_MODELS.get(data.lists)
            ranked = list(selection.candidates["terms"])
            models = ranked if limit is None else ranked[:limit]
            diagnostics["bootstrap_models"] = len(models)
        rng = np.random.default_rng(seed)
        samples = rng.multinomial(int(data.observed), data.counts / data.observed, size=bootstrap).astype(
            float
        )
        replicates = _selection_estimates(data, samples, select, threshold, max_order, models)
        jack_samples = []
        rows = np.flatnonzero(data.counts > 0)
        for k in rows:
            counts = data.counts.copy()
            counts[k] -= 1
            jack_samples.append(counts)
        jackknife = np.full(len(data.counts), np.nan)
        jackknife[rows] = _selection_estimates(
            data, np.array(jack_samples), select, threshold, max_order, models
        )
        failed = int((~np.isfinite(replicates)).sum())
        if failed:
            notes.append(
                f"{failed} of {bootstrap} bootstrap replicates had no selectable model and were left out"
            )
        if np.any(~np.isfinite(jackknife[rows])):
            acceleration = 0.0
            warnings.append(
                "some jackknife fits failed; BCa acceleration set to 0 (bias-corrected percentile)"
            )
        else:
            acceleration = jackknife_acceleration(np.nan_to_num(jackknife), data.counts)
        lower, upper, z0 = bca_interval(replicates, fit.abundance, acceleration, level)
        interval = "BCa bootstrap (selection repeated in every replicate)"
        share = float(np.mean(replicates[np.isfinite(replicates)] < fit.abundance))
        if share in (0.0, 1.0):
            warnings.append(
                "every bootstrap estimate fell on one side of the estimate; the BCa interval is unreliable"
            )
        diagnostics.update(
            {
                "bootstrap_replicates": bootstrap,
                "bootstrap_failed": failed,
                "bca_acceleration": acceleration,
                "bca_bias_correction": z0,
                "bootstrap_median": float(np.nanmedian(replicates)),
            }
        )
        tables_boot = pd.DataFrame({"replicate": np.arange(bootstrap), "abundance": replicates})
    else:
        tables_boot = None
        notes.append(
            f"interval: {interval}; it ignores model-selection uncertainty — use bootstrap for BCa intervals "
            "that repeat the selection"
        )

    if fit.neg_inf_terms:
        notes.append(
            "interactions fixed at −∞ (lists that share nobody; their cells are structural zeros): "
            + ", ".join(term_name(t, names) for t in fit.neg_inf_terms)
        )
    if fit.abundance > 1e6 * data.observed:
        warnings.append("estimate exceeds 10^6 times the number observed: the model extrapolates wildly")
    threshold_text = "none" if threshold is None else f"{threshold:g}"
    row = {
        "quantity": "population",
        "method": f"MSE {select} (threshold {threshold_text})"
        if select != "bic"
        else f"MSE bic (max order {max_order})",
        "estimate": fit.abundance,
        "se": fit.stderr,
        "lower": lower,
        "upper": upper,
        "level": level,
        "procedure": select,
        "threshold": threshold,
        "max_order": max_order if select == "bic" else None,
        "selected": ", ".join(selected) if selected else "main effects",
        "observed": data.observed,
        "deviance": fit.deviance,
        "df": fit.df,
        "aic": fit.aic,
        "bic": fit.bic,
        "interval": interval,
        "multinomial_estimate": conditional["multinomial"],
        "conditional_lower": conditional["lower"],
        "conditional_upper": conditional["upper"],
        "conditional_interval": conditional["interval"],
    }
    main_row = {
        "quantity": "population",
        "method": "MSE main effects only",
        "estimate": main.abundance,
        "se": main.stderr,
        "lower": main_conditional["lower"],
        "upper": main_conditional["upper"],
        "level": level,
        "procedure": "main effects",
        "threshold": None,
        "selected": "main effects",
        "observed": data.observed,
        "deviance": main.deviance,
        "df": main.df,
        "aic": main.aic,
        "bic": main.bic,
        "interval": main_conditional["interval"],
        "multinomial_estimate": main_conditional["multinomial"],
        "conditional_lower": main_conditional["lower"],
        "conditional_upper": main_conditional["upper"],
        "conditional_interval": main_conditional["interval"],
    }
    tables = {"path": _path_table(selection.path, names)}
    if selection.candidates is not None:
        tables["models"] = selection.candidates.drop(columns=["terms"]).head(200)
    if tables_boot is not None:
        tables["bootstrap"] = tables_boot
    diagnostics.update(
        {
            "lists": list(names),
            "observed": data.observed,
            "selected": selected,
            "neg_inf_terms": [term_name(t, names) for t in fit.neg_inf_terms],
            "parameters": fit.parameters,
            "dark_figure": fit.dark,
        }
    )
    return Estimates.from_rows(
        [row, main_row],
        settings={
            "select": select,
            "p_threshold": threshold,
            "max_order": max_order,
            "bootstrap": bootstrap,
            "level": level,
            "top_models": top_models,
        },
        seed=seed if bootstrap > 0 else None,
        warnings=warnings,
        notes=notes,
        diagnostics=diagnostics,
        tables=tables,
    )


def _path_table(path: list[dict[str, Any]], names: Sequence[str]) -> pd.DataFrame:
    rows = []
    for step in path:
        entry = dict(step)
        added = entry.get("added")
        entry["added"] = term_name(added, names) if isinstance(added, tuple) else added
        rows.append(entry)
    return pd.DataFrame(rows)


def _conditional_interval(data: ListData, fit: LoglinearFit, level: float, profile: bool) -> dict[str, Any]:
    """Interval for one model taken as fixed: profile likelihood (multinomial, Cormack's correction, via
    :func:`hiddenpop.capture.closed.profile.profile_ci_design` on the extended-MLE face), else log-normal for the
    unseen count. Returns lower, upper, interval label, the multinomial estimate and warnings."""
    out: dict[str, Any] = {"multinomial": float("nan"), "warnings": []}
    if profile and fit.ok:
        from hiddenpop.capture.closed.profile import profile_ci_design

        finite, _neg_inf, kept = _structure(data, fit.terms)
        design = design_matrix(data.patterns, finite)[kept][:, 1:]
        try:
            result = profile_ci_design(design, data.counts[kept], level, observed=round(data.observed))
        except ModelError as exc:
            out["warnings"].append(f"no profile interval ({exc}); log-normal interval used")
        else:
            out.update(
                lower=result.lower,
                upper=result.upper,
                multinomial=result.multinomial_abundance,
                interval="profile likelihood (model taken as fixed)",
            )
            out["warnings"].extend(result.warnings)
            return out
    z = stats.norm.ppf(0.5 + level / 2)
    sd = math.sqrt(fit.intercept_var) if np.isfinite(fit.intercept_var) else float("nan")
    out.update(
        lower=data.observed + math.exp(fit.intercept - z * sd),
        upper=data.observed + math.exp(fit.intercept + z * sd),
        interval="log-normal unseen count (model taken as fixed)",
    )
    return out
