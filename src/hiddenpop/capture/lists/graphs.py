"""Bayesian model averaging over decomposable graphical models (Madigan & York 1997).

Each of t lists is a vertex; a decomposable (chordal) graph G says which lists may depend on each other. Under G
the 2^t list-history probabilities follow a hyper-Dirichlet distribution: every cell of the full table carries
prior weight ``delta`` (A = delta 2^t in all), so the marginal table over a clique C carries delta 2^(t - |C|)
per cell. With the unseen count N0 and the total N = n + N0, the joint probability of the completed table is

    log p(Y, N0 | G) = sum_C f_C - sum_S f_S + (|C| - |S|) (log Gamma(A) - log Gamma(N + A))
                       + log N! - sum_{observed cells} log y! - log N0! + log prior(N)

where C runs over the maximal cliques of G, S over the (non-empty) separators of a junction tree, and
f_C = sum over the cells c of the clique's marginal table of [log Gamma(y_c + a_C) - log Gamma(a_C)] with the
unseen count added to the marginal's all-absent cell. The marginal likelihood is exact (closed form), so the
posterior over (G, N0) is computed on a grid of N0 values without sampling. The default prior on N is
p(N) proportional to 1/N.

Graphs: every decomposable graph is enumerated for up to :data:`MAX_EXHAUSTIVE_LISTS` lists (822 graphs for five
lists). Assumptions: a closed population; dependence between lists is captured by the graph (no individual
heterogeneity beyond it); the grid of N0 must cover the posterior (a warning says when the mass touches its end).
Failure modes: very sparse tables make the answer depend on ``delta``; report the sensitivity.

Reference: Madigan, D. & York, J. C. (1997) Bayesian methods for estimation of the size of a closed population.
Biometrika 84(1):19-31. The R package dga (Johndrow, Lum & Ball) implements the same model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import gammaln

from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.results import Estimates

__all__ = ["MAX_EXHAUSTIVE_LISTS", "DecomposableGraph", "decomposable_graphs", "graph_averaging"]

MAX_EXHAUSTIVE_LISTS = 5


@dataclass(frozen=True)
class DecomposableGraph:
    """A chordal graph on the lists, with its maximal cliques and the non-empty separators of a junction tree."""

    edges: tuple[tuple[int, int], ...]
    cliques: tuple[tuple[int, ...], ...]
    separators: tuple[tuple[int, ...], ...]

    def label(self, names: Sequence[str]) -> str:
        """Cliques joined by ``+``, lists within a clique by ``:`` (e.g. ``A:B + C``)."""
        return " + ".join(":".join(names[j] for j in clique) for clique in self.cliques)


def _is_chordal_cliques(vertices: int, adjacency: list[set[int]]) -> list[tuple[int, ...]] | None:
    """Maximal cliques of a chordal graph by maximum cardinality search, or None when the graph is not chordal."""
    weight = [0] * vertices
    numbered: list[int] = []
    remaining = set(range(vertices))
    while remaining:
        vertex = max(sorted(remaining), key=lambda v: weight[v])
        numbered.append(vertex)
        remaining.discard(vertex)
        for other in adjacency[vertex] & remaining:
            weight[other] += 1
    position = {v: i for i, v in enumerate(numbered)}
    candidates = []
    for vertex in numbered:
        earlier = {u for u in adjacency[vertex] if position[u] < position[vertex]}
        # chordal iff the earlier neighbours of every vertex form a clique (a perfect elimination order reversed)
        for a, b in combinations(sorted(earlier), 2):
            if b not in adjacency[a]:
                return None
        candidates.append(frozenset(earlier | {vertex}))
    maximal = [c for c in candidates if not any(c < other for other in candidates)]
    return sorted({tuple(sorted(c)) for c in maximal}, key=lambda c: (min(c), c))


def _junction_separators(cliques: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Separators of a junction tree: a maximum-weight spanning tree of the cliques by intersection size (Prim).
    Empty intersections (between connected components) are not separators and are left out."""
    if len(cliques) < 2:
        return []
    sets = [set(c) for c in cliques]
    in_tree = {0}
    separators = []
    while len(in_tree) < len(sets):
        best = max(((len(sets[i] & sets[j]), i, j) for i in in_tree for j in range(len(sets)) if j not in in_tree),
                   key=lambda item: (item[0], -item[1], -item[2]))
        size, i, j = best
        in_tree.add(j)
        if size:
            separators.append(tuple(sorted(sets[i] & sets[j])))
    return sorted(separators, key=lambda s: (len(s), s))


@functools.lru_cache(maxsize=8)
def decomposable_graphs(lists: int) -> tuple[DecomposableGraph, ...]:
    """Every decomposable graph on ``lists`` vertices (3 lists: 8; 4: 61; 5: 822)."""
    if not 2 <= lists <= MAX_EXHAUSTIVE_LISTS:
        raise ConfigError(f"graph averaging enumerates every decomposable graph for 2 to {MAX_EXHAUSTIVE_LISTS} "
                          f"lists; got {lists} lists (merge lists, or use a log-linear or latent-class model)")
    pairs = list(combinations(range(lists), 2))
    graphs = []
    for mask in range(1 << len(pairs)):
        edges = tuple(pair for k, pair in enumerate(pairs) if mask >> k & 1)
        adjacency: list[set[int]] = [set() for _ in range(lists)]
        for a, b in edges:
            adjacency[a].add(b)
            adjacency[b].add(a)
        cliques = _is_chordal_cliques(lists, adjacency)
        if cliques is not None:
            graphs.append(DecomposableGraph(edges, tuple(cliques), tuple(_junction_separators(cliques))))
    return tuple(graphs)


def _log_marginal_terms(patterns: np.ndarray, counts: np.ndarray, subset: tuple[int, ...], delta: float,
                        missing: np.ndarray) -> np.ndarray:
    """f_subset for every N0 in ``missing``: sum over the marginal's cells of log Gamma(y + a) - log Gamma(a)."""
    lists = patterns.shape[1]
    prior = delta * 2.0 ** (lists - len(subset))
    codes = patterns[:, list(subset)] @ (1 << np.arange(len(subset)))
    marginal = np.bincount(codes, weights=counts, minlength=1 << len(subset))
    rest = gammaln(marginal[1:] + prior).sum() - (len(marginal) - 1) * gammaln(prior)
    return rest + gammaln(marginal[0] + missing + prior) - gammaln(prior)


def graph_averaging(
    patterns: np.ndarray,
    counts: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    delta: float = 0.5,
    missing: Sequence[int] | np.ndarray | None = None,
    log_prior: Callable[[np.ndarray], np.ndarray] | None = None,
    level: float = 0.95,
    top: int = 10,
) -> Estimates:
    """Posterior of the population size averaged over every decomposable graph (Madigan & York 1997).

    ``patterns`` (cells x lists, 0/1) and ``counts`` are the observed list histories (the all-absent history must
    not be among them); ``missing`` the grid of unseen counts N0 (default 0 .. 10 n); ``log_prior(N)`` the log
    prior of the total (default -log N). Returns one row per summary of N (posterior mean with the equal-tailed
    ``level`` interval, median, mode), ``tables["posterior"]`` (N and its posterior probability) and
    ``tables["graphs"]`` (the ``top`` graphs by posterior probability, with their own posterior mean of N).
    """
    patterns = np.asarray(patterns, dtype=np.int64)
    counts = np.asarray(counts, dtype=float)
    if patterns.ndim != 2 or len(patterns) != len(counts):
        raise ConfigError("need one count per list history")
    if (patterns.sum(axis=1) == 0).any():
        raise ConfigError("the all-absent history is what is estimated; leave it out of the data")
    if not delta > 0:
        raise ConfigError(f"delta (the hyper-Dirichlet prior count per cell) must be positive; got {delta}")
    lists = patterns.shape[1]
    names = list(names) if names is not None else [chr(ord("A") + j) for j in range(lists)]
    observed = float(counts.sum())
    grid = np.arange(0, int(10 * observed) + 1) if missing is None else np.asarray(missing, dtype=float)
    if grid.ndim != 1 or grid.size < 2 or (grid < 0).any() or np.any(np.diff(grid) <= 0):
        raise ConfigError("the grid of unseen counts must be increasing whole numbers >= 0")
    total = observed + grid
    graphs = decomposable_graphs(lists)
    subsets = {s for g in graphs for s in (*g.cliques, *g.separators)}
    terms = {s: _log_marginal_terms(patterns, counts, s, delta, grid) for s in subsets}
    all_cells = delta * 2.0**lists
    normaliser = gammaln(all_cells) - gammaln(total + all_cells)
    common = gammaln(total + 1) - gammaln(counts + 1).sum() - gammaln(grid + 1)
    common = common + (-np.log(total) if log_prior is None else np.asarray(log_prior(total), dtype=float))
    log_weights = np.empty((len(graphs), grid.size))
    for k, graph in enumerate(graphs):
        components = len(graph.cliques) - len(graph.separators)
        log_weights[k] = (sum(terms[c] for c in graph.cliques) - sum((terms[s] for s in graph.separators), 0.0)
                          + components * normaliser + common)
    if not np.isfinite(log_weights).any():
        raise ModelError("the posterior is zero everywhere on the grid; check the counts and the prior")
    weights = np.exp(log_weights - log_weights.max())
    weights /= weights.sum()
    posterior = weights.sum(axis=0)
    return _summaries(graphs, names, weights, posterior, total, level, top, delta, observed, grid)


def _quantile(total: np.ndarray, cdf: np.ndarray, probability: float) -> float:
    return float(total[min(np.searchsorted(cdf, probability - 1e-12), len(total) - 1)])


def _summaries(graphs, names, weights, posterior, total, level, top, delta, observed, grid) -> Estimates:
    cdf = np.cumsum(posterior)
    tail = (1 - level) / 2
    mean = float(posterior @ total)
    sd = float(np.sqrt(posterior @ (total - mean) ** 2))
    lower, upper = _quantile(total, cdf, tail), _quantile(total, cdf, 1 - tail)
    base = {"quantity": "abundance", "se": sd, "lower": lower, "upper": upper, "level": level}
    rows = [base | {"method": "graph averaging (posterior mean)", "estimate": mean},
            base | {"method": "graph averaging (posterior median)", "estimate": _quantile(total, cdf, 0.5)},
            base | {"method": "graph averaging (posterior mode)", "estimate": float(total[np.argmax(posterior)])}]
    graph_weight = weights.sum(axis=1)
    order = np.argsort(-graph_weight, kind="stable")[:top]
    table = pd.DataFrame({
        "graph": [graphs[k].label(names) for k in order],
        "posterior": graph_weight[order],
        "estimate": [float(weights[k] @ total / weights[k].sum()) for k in order],
    })
    warnings = []
    if posterior[-1] > 1e-6 * posterior.max() or cdf[-1] - cdf[-2] > 1e-4:
        warnings.append("the posterior of N has mass at the end of the grid of unseen counts; extend the grid")
    return Estimates.from_rows(
        rows,
        settings={"delta": delta, "level": level, "missing_min": float(grid[0]), "missing_max": float(grid[-1])},
        warnings=warnings,
        diagnostics={"observed": observed, "graphs": len(graphs), "posterior_sd": sd},
        tables={"posterior": pd.DataFrame({"N": total, "probability": posterior}), "graphs": table},
    )
