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
lists). Beyond that (18,154 graphs for six lists, 1.8 million for eight) the graphs are searched by Madigan & York's
MC^3, a Metropolis chain over decomposable graphs: from graph G, pick one of the t(t-1)/2 list pairs uniformly and
toggle its edge; a non-decomposable result is rejected, otherwise the move is accepted with probability
min(1, p(Y | G') / p(Y | G)), where p(Y | G) = sum over the N0 grid of the joint above (a uniform prior over
graphs; the proposal is symmetric). The marginal likelihoods are exact, so the chains serve to *find* the graphs
that carry the posterior: N is averaged over every graph visited with its exact weight (renormalised over the
visited set), which omits only graphs never reached. Several chains start from different graphs (no edge, every
edge, random); the posterior mean of N from each chain's own visited set is reported, and a warning is given when
they disagree by more than 1% or when the last tenth of a chain still found new graphs carrying weight.
Assumptions: a closed population; dependence between lists is captured by the graph (no individual
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

from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.parallel import on_one_blas_thread
from hiddenpop.results import Estimates
from hiddenpop.special import gammaln

__all__ = ["GRAPH_SEARCHES", "MAX_EXHAUSTIVE_LISTS", "DecomposableGraph", "decomposable_graphs", "graph_averaging"]

MAX_EXHAUSTIVE_LISTS = 5
#: How the graphs are found: ``auto`` (every graph up to :data:`MAX_EXHAUSTIVE_LISTS` lists, MC^3 beyond).
GRAPH_SEARCHES = ("auto", "exhaustive", "mcmc")
#: Lists beyond which even the MC^3 search is refused (the table has 2^t cells and the moves t(t-1)/2 pairs).
MAX_SEARCH_LISTS = 15
#: Agreement asked of the chains' posterior means of N, relative.
CHAIN_AGREEMENT = 0.01
#: Posterior weight of the complete graph from which a graph average is flagged as prior-driven.
COMPLETE_GRAPH_WARNING = 0.05


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
def decomposable_graphs(lists: int, *, limit: int = MAX_EXHAUSTIVE_LISTS) -> tuple[DecomposableGraph, ...]:
    """Every decomposable graph on ``lists`` vertices (3 lists: 8; 4: 61; 5: 822; 6: 18,154 with ``limit=6``)."""
    if not 2 <= lists <= limit:
        raise ConfigError(f"graph averaging enumerates every decomposable graph for 2 to {limit} "
                          f"lists; got {lists} lists (search them with search='mcmc')")
    pairs = list(combinations(range(lists), 2))
    graphs = []
    for mask in range(1 << len(pairs)):
        graph = _graph(lists, tuple(pair for k, pair in enumerate(pairs) if mask >> k & 1))
        if graph is not None:
            graphs.append(graph)
    return tuple(graphs)


def _graph(lists: int, edges: tuple[tuple[int, int], ...]) -> DecomposableGraph | None:
    """The decomposable graph with these edges, or None when they do not make one."""
    adjacency: list[set[int]] = [set() for _ in range(lists)]
    for a, b in edges:
        adjacency[a].add(b)
        adjacency[b].add(a)
    cliques = _is_chordal_cliques(lists, adjacency)
    if cliques is None:
        return None
    return DecomposableGraph(edges, tuple(cliques), tuple(_junction_separators(cliques)))


def _log_marginal_terms(patterns: np.ndarray, counts: np.ndarray, subset: tuple[int, ...], delta: float,
                        missing: np.ndarray) -> np.ndarray:
    """f_subset for every N0 in ``missing``: sum over the marginal's cells of log Gamma(y + a) - log Gamma(a)."""
    lists = patterns.shape[1]
    prior = delta * 2.0 ** (lists - len(subset))
    codes = patterns[:, list(subset)] @ (1 << np.arange(len(subset)))
    marginal = np.bincount(codes, weights=counts, minlength=1 << len(subset))
    rest = gammaln(marginal[1:] + prior).sum() - (len(marginal) - 1) * gammaln(prior)
    return rest + gammaln(marginal[0] + missing + prior) - gammaln(prior)


@on_one_blas_thread  # products of one long vector at a time: BLAS threads would only spin
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
    search: str = "auto",
    steps: int = 10_000,
    chains: int = 4,
    seed: int = 1,
) -> Estimates:
    """Posterior of the population size averaged over decomposable graphs (Madigan & York 1997).

    ``patterns`` (cells x lists, 0/1) and ``counts`` are the observed list histories (the all-absent history must
    not be among them); ``missing`` the grid of unseen counts N0 (default 0 .. 10 n); ``log_prior(N)`` the log
    prior of the total (default -log N). ``search``: every graph (``exhaustive``, up to
    :data:`MAX_EXHAUSTIVE_LISTS` lists), the MC^3 chains (``mcmc``: ``chains`` chains of ``steps`` moves, seeded)
    or the first where it is possible (``auto``). Returns one row per summary of N (posterior mean with the
    equal-tailed ``level`` interval, median, mode), ``tables["posterior"]`` (N and its posterior probability) and
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
    if search not in GRAPH_SEARCHES:
        raise ConfigError(f"search must be one of {', '.join(GRAPH_SEARCHES)}, not {search!r}")
    lists = patterns.shape[1]
    if search == "auto":
        search = "exhaustive" if lists <= MAX_EXHAUSTIVE_LISTS else "mcmc"
    if search == "mcmc" and not 2 <= lists <= MAX_SEARCH_LISTS:
        raise ConfigError(f"the graph search handles 2 to {MAX_SEARCH_LISTS} lists; got {lists}")
    names = list(names) if names is not None else [chr(ord("A") + j) for j in range(lists)]
    observed = float(counts.sum())
    grid = np.arange(0, int(10 * observed) + 1) if missing is None else np.asarray(missing, dtype=float)
    if grid.ndim != 1 or grid.size < 2 or (grid < 0).any() or np.any(np.diff(grid) <= 0):
        raise ConfigError("the grid of unseen counts must be increasing whole numbers >= 0")
    total = observed + grid
    all_cells = delta * 2.0**lists
    normaliser = gammaln(all_cells) - gammaln(total + all_cells)
    common = gammaln(total + 1) - gammaln(counts + 1).sum() - gammaln(grid + 1)
    common = common + (-np.log(total) if log_prior is None else np.asarray(log_prior(total), dtype=float))

    @functools.cache
    def terms(subset: tuple[int, ...]) -> np.ndarray:
        return _log_marginal_terms(patterns, counts, subset, delta, grid)

    def log_weights(graph: DecomposableGraph) -> np.ndarray:
        components = len(graph.cliques) - len(graph.separators)
        return (sum(terms(c) for c in graph.cliques) - sum((terms(s) for s in graph.separators), 0.0)
                + components * normaliser + common)

    if search == "exhaustive":
        graphs = decomposable_graphs(lists)
        # graphs x grid (822 x 21,971 for the UK lists: 144 MB) in one array, filled and exponentiated in place:
        # every fresh array of that size costs page faults (0.1-1 s of CPU here, far more than the arithmetic)
        weights = np.empty((len(graphs), grid.size))
        for row, graph in zip(weights, graphs, strict=True):
            row[:] = log_weights(graph)
        if not np.isfinite(weights).any():
            raise ModelError("the posterior is zero everywhere on the grid; check the counts and the prior")
        weights -= weights.max()
        np.exp(weights, out=weights)
        weights /= weights.sum()
        graph_weight = weights.sum(axis=1)
        means = weights @ total / np.maximum(graph_weight, np.finfo(float).tiny)
        search_diagnostics: dict = {}
        posterior = weights.sum(axis=0)
        warnings = []
    else:
        graphs, log_evidence, means, search_diagnostics, warnings = _search(
            lists, log_weights, total, steps=steps, chains=chains, seed=seed)
        graph_weight = np.exp(log_evidence - log_evidence.max())
        graph_weight /= graph_weight.sum()
        posterior = np.zeros(grid.size)
        for graph, share, evidence in zip(graphs, graph_weight, log_evidence, strict=True):
            if share > 1e-12:
                posterior += share * np.exp(log_weights(graph) - evidence)
        posterior /= posterior.sum()
    result = _summaries(graphs, names, graph_weight, means, posterior, total, level, top, delta, observed, grid)
    result.warnings[:0] = warnings
    result.settings["search"] = search
    if search == "mcmc":
        result.settings.update(steps=steps, chains=chains, seed=seed)
        result.seed = seed
    result.diagnostics.update(search_diagnostics)
    return result


def _search(lists: int, log_weights: Callable[[DecomposableGraph], np.ndarray], total: np.ndarray, *, steps: int,
            chains: int, seed: int):
    """MC^3 chains over decomposable graphs (see the module docstring). Returns the graphs visited, each one's log
    evidence log p(Y | G) (up to a shared constant) and posterior mean of N, diagnostics and warnings."""
    if steps < 1 or chains < 1:
        raise ConfigError("the graph search needs at least one chain of one step")
    pairs = list(combinations(range(lists), 2))
    rng = np.random.default_rng(seed)
    # a graph is the bit mask of its edges over ``pairs``
    found: dict[int, DecomposableGraph | None] = {}
    evidence: dict[int, float] = {}
    mean: dict[int, float] = {}
    first_step: dict[int, int] = {}

    def visit(edges: int, step: int) -> float | None:
        graph = found.get(edges, False)
        if graph is False:
            graph = found[edges] = _graph(lists, tuple(pair for k, pair in enumerate(pairs) if edges >> k & 1))
        if graph is None:
            return None
        if edges not in evidence:
            values = log_weights(graph)
            peak = float(values.max())
            if not np.isfinite(peak):
                evidence[edges], mean[edges] = -np.inf, np.nan
            else:
                share = np.exp(values - peak)
                evidence[edges] = peak + float(np.log(share.sum()))
                mean[edges] = float((share * total).sum() / share.sum())
            first_step[edges] = step
        first_step[edges] = min(first_step[edges], step)
        return evidence[edges]

    index = {pair: k for k, pair in enumerate(pairs)}
    starts = [0, (1 << len(pairs)) - 1]
    while len(starts) < chains:  # random decomposable starting graphs: a random forest of edges is chordal
        order = rng.permutation(lists)
        starts.append(sum(1 << index[tuple(sorted((int(order[k]), int(order[rng.integers(0, k)]))))]
                          for k in range(1, lists) if rng.random() < 0.5))
    visited_by_chain = []
    accepted = 0
    for chain in range(chains):
        current = starts[chain]
        current_value = visit(current, 0)
        seen = {current}
        moves = rng.integers(0, len(pairs), size=steps)
        uniforms = rng.random(steps)
        for step in range(steps):
            proposal = current ^ (1 << int(moves[step]))
            value = visit(proposal, step + 1)
            if value is None:
                continue
            seen.add(proposal)
            if value >= current_value or uniforms[step] < np.exp(value - current_value):
                current, current_value = proposal, value
                accepted += 1
        visited_by_chain.append(seen)
    keys = [edges for edges in evidence if np.isfinite(evidence[edges])]
    if not keys:
        raise ModelError("the posterior is zero everywhere on the grid; check the counts and the prior")
    log_evidence = np.array([evidence[k] for k in keys])
    weight = np.exp(log_evidence - log_evidence.max())
    weight /= weight.sum()
    chain_means = []
    for seen in visited_by_chain:
        inside = np.array([k in seen for k in keys])
        chain_means.append(float(weight[inside] @ np.array([mean[k] for k in keys])[inside] / weight[inside].sum()))
    late = float(weight[np.array([first_step[k] > 0.9 * steps for k in keys])].sum())
    spread = (max(chain_means) - min(chain_means)) / float(np.mean(chain_means))
    warnings = []
    if spread > CHAIN_AGREEMENT:
        warnings.append(f"the graph-search chains disagree: their posterior means of N differ by {spread:.1%}; run "
                        "longer chains")
    if late > CHAIN_AGREEMENT:
        warnings.append(f"graphs first found in the last tenth of the search carry {late:.1%} of the posterior; run "
                        "longer chains")
    diagnostics = {"graphs_visited": len(keys), "acceptance": accepted / (steps * chains),
                   "chain_means": chain_means, "chain_spread": spread, "late_weight": late}
    return ([found[k] for k in keys], log_evidence, np.array([mean[k] for k in keys]), diagnostics, warnings)


def _quantile(total: np.ndarray, cdf: np.ndarray, probability: float) -> float:
    return float(total[min(np.searchsorted(cdf, probability - 1e-12), len(total) - 1)])


def _summaries(graphs, names, graph_weight, means, posterior, total, level, top, delta, observed,
               grid) -> Estimates:
    cdf = np.cumsum(posterior)
    tail = (1 - level) / 2
    mean = float(posterior @ total)
    sd = float(np.sqrt(posterior @ (total - mean) ** 2))
    lower, upper = _quantile(total, cdf, tail), _quantile(total, cdf, 1 - tail)
    base = {"quantity": "abundance", "se": sd, "lower": lower, "upper": upper, "level": level}
    rows = [base | {"method": "graph averaging (posterior mean)", "estimate": mean},
            base | {"method": "graph averaging (posterior median)", "estimate": _quantile(total, cdf, 0.5)},
            base | {"method": "graph averaging (posterior mode)", "estimate": float(total[np.argmax(posterior)])}]
    order = np.argsort(-graph_weight, kind="stable")[:top]
    table = pd.DataFrame({
        "graph": [graphs[k].label(names) for k in order],
        "posterior": graph_weight[order],
        "estimate": [float(means[k]) for k in order],
    })
    warnings = []
    lists = len(names)
    complete = float(sum(w for graph, w in zip(graphs, graph_weight, strict=True)
                         if any(len(clique) == lists for clique in graph.cliques)))
    if complete >= COMPLETE_GRAPH_WARNING:
        warnings.append(
            f"the complete graph (every list depending on every other) carries {complete:.0%} of the posterior; "
            "under it the unseen count is set by the prior alone (with delta < 1 its mass piles at the observed "
            "count), so this average says little about N: the lists' dependence is stronger than any graph short "
            "of the complete one can express (often heterogeneity; see the latent-class model)")
    if posterior[-1] > 1e-6 * posterior.max() or cdf[-1] - cdf[-2] > 1e-4:
        warnings.append("the posterior of N has mass at the end of the grid of unseen counts; extend the grid")
    return Estimates.from_rows(
        rows,
        settings={"delta": delta, "level": level, "missing_min": float(grid[0]), "missing_max": float(grid[-1])},
        warnings=warnings,
        diagnostics={"observed": observed, "graphs": len(graphs), "posterior_sd": sd},
        tables={"posterior": pd.DataFrame({"N": total, "probability": posterior}), "graphs": table},
    )
