"""Convergence gates for any NUTS fit of the project (network scale-up, multiple systems estimation, ...).

Gates (Vehtari, Gelman, Simpson, Carpenter & Buerkner 2021, "Rank-normalization, folding, and localization: an
improved R-hat"; Betancourt 2017, "A conceptual introduction to Hamiltonian Monte Carlo"):

* **R-hat** (rank-normalised split R-hat) of every sampled parameter, latent degrees included, must be <= 1.01.
  Larger values mean the chains disagree: the posterior summaries are not trustworthy.
* **Bulk ESS and tail ESS** of every parameter must be >= ``min_ess`` (default 100 per chain, i.e. 400 for four
  chains). Low bulk ESS makes medians and means noisy; low tail ESS makes the 2.5%/97.5% limits noisy.
* **Divergent transitions** must be zero. A divergence means the sampler met curvature it could not follow;
  the draws may miss part of the posterior (typically a funnel or a hard boundary).
* **E-BFMI** (energy Bayesian fraction of missing information) of every chain must be >= 0.3; below that the
  momentum resampling explores the energy distribution poorly (heavy tails, poorly scaled hierarchies).
* **Tree-depth saturation** is reported (not gated): many transitions at the maximum depth mean slow but not
  necessarily wrong sampling.

A fit that fails any gate is still returned, with ``diagnostics["passed"] = False`` and a warning per failure,
so reports mark it rather than hide it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from hiddenpop import special

RHAT_MAX = 1.01
EBFMI_MIN = 0.3
#: parameters per thread below which R-hat and ESS are computed in one thread
PARALLEL_BLOCK = 256


# ------------------------------------------------------------------ R-hat and ESS, vectorised over parameters
# Vehtari, Gelman, Simpson, Carpenter & Buerkner (2021): rank-normalised split R-hat, bulk ESS (of the
# rank-normalised split chains) and tail ESS (the smaller ESS of the 5% and 95% quantile indicators), with Geyer's
# initial monotone sequence for the autocorrelation sum. Same definitions and conventions as ArviZ (a test checks
# equality), computed for thousands of parameters at once: ArviZ loops over parameters, which took 20 s for the
# 3,600 latent degrees of a Study 2-sized fit.
def _split(values: np.ndarray) -> np.ndarray:
    """(P, chains, draws) -> (P, 2 chains, draws // 2): first and last halves (a middle draw is dropped)."""
    half = values.shape[2] // 2
    return np.concatenate([values[:, :, :half], values[:, :, values.shape[2] - half:]], axis=1)


def _sorted(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort order and sorted values of each row. The values come from a second sort rather than a gather through
    the order (``take_along_axis`` over 3,600 x 4,000 draws cost twice a sort); equal values are interchangeable,
    so the two agree."""
    return np.argsort(flat, axis=1), np.sort(flat, axis=1)


def _scatter_ranked(ordered: np.ndarray, order: np.ndarray, score: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """score(average rank) of every element of ``flat`` (rows sorted as ``ordered`` by ``order``), at its place in
    ``flat``; ties share their average rank.

    score(1..S) is computed once for all rows and scattered through the sort order; then only the elements in runs
    of tied values (a chain that stays put repeats a draw, and folding around an even sample's median ties its two
    middle draws) get score((s + e) / 2 + 1), found from the positions of equal neighbours: work in proportion to
    the ties, not to the draws."""
    size = ordered.shape[1]
    table = score(np.arange(1.0, size + 1.0))
    out = np.empty(ordered.shape)
    np.put_along_axis(out, order, np.broadcast_to(table, ordered.shape), axis=1)
    equal = np.flatnonzero(ordered[:, 1:] == ordered[:, :-1])  # in (rows, size - 1)
    if equal.size == 0:
        return out
    # as flat positions in (rows, size): the left member of each equal pair (consecutive across a row end never)
    left = equal + equal // (size - 1)
    starts = np.ones(left.size, dtype=bool)
    starts[1:] = left[1:] != left[:-1] + 1
    run = np.cumsum(starts) - 1
    first = left[starts]
    length = np.diff(np.append(np.flatnonzero(starts), left.size)) + 1  # elements per run
    run_score = score(first % size + (length - 1) / 2.0 + 1.0)
    members = np.concatenate([left, left + 1])
    values = np.concatenate([run_score[run], run_score[run]])
    row = members // size
    out[row, order.ravel()[members]] = values
    return out


def average_ranks(flat: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis of a 2-d array, ties sharing their average rank (as
    ``scipy.stats.rankdata(method="average")``, which a test checks), from one unstable sort per row: about three
    times faster than scipy on 3,600 x 4,000 draws."""
    flat = np.asarray(flat)
    order, ordered = _sorted(flat)
    return _scatter_ranked(ordered, order, lambda rank: rank)


def _z_scale(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalise each parameter over all its draws (average ranks, Blom's offset 3/8). Returns the z-scores
    (shape of ``values``) and each parameter's draws sorted (P, all draws). The inverse normal CDF is evaluated
    once per rank (and per run of ties), not once per draw."""

    flat = values.reshape(values.shape[0], -1)
    size = flat.shape[1]
    order, ordered = _sorted(flat)
    scores = _scatter_ranked(ordered, order, lambda rank: special.ndtri((rank - 0.375) / (size + 0.25)))
    return scores.reshape(values.shape), ordered


def _split_rhat(values: np.ndarray) -> np.ndarray:
    draws = values.shape[2]
    chain_mean = values.mean(axis=2)
    between = draws * chain_mean.var(axis=1, ddof=1)
    within = values.var(axis=2, ddof=1).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + draws - 1) / draws)


#: autocovariance lags computed directly before falling back to FFTs: Geyer's sequence of a well-mixing chain
#: stops within a few lags, and 16 direct lags cost a fifth of the FFTs over 3,600 latent degrees
HEAD_LAGS = 16
#: parameters rank-normalised, folded and autocorrelated together: the temporaries of a block of 32 parameters x
#: 4,000 draws (1 MB each) stay in cache and in memory the allocator reuses, where whole blocks of thousands of
#: latent degrees made every temporary a fresh mapping whose page faults cost as much CPU as the arithmetic
BLOCK = 32
#: parameters (of those with varying finite draws, in order) whose FFT fallback runs as one batch. NumPy's FFT of a
#: row can differ in the last bit with the batch it is computed in, so batches are fixed by this count alone,
#: never by ``BLOCK`` or by the cores: results do not depend on how the parameters are fed
FFT_BATCH = 256


class _Ess:
    """ESS of each parameter of (P, chains, draws) arrays fed in consecutive pieces by :meth:`add` (Geyer's
    initial monotone sequence); :meth:`finish` returns them all.

    The autocovariances are computed directly for the first ``HEAD_LAGS`` lags; only parameters whose sequence has
    not stopped by then get the full FFT, in batches of ``FFT_BATCH`` consecutive parameters. Both give the same
    ESS (the sequence never reads past its stopping pair)."""

    def __init__(self, n_chain: int, n_draw: int) -> None:
        self.n_chain, self.n_draw = n_chain, n_draw
        self.parts: list[np.ndarray] = []
        self.fed = 0  # parameters fed so far
        self.worked = 0  # of which with varying finite draws
        self.pending: list[tuple[int, int, np.ndarray, np.ndarray]] = []  # (batch, index, centred, values)

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        n_param, n_chain, n_draw = values.shape
        out = np.full(n_param, np.nan)
        constant = np.ptp(values.reshape(n_param, -1), axis=1) < np.finfo(float).resolution
        out[constant] = n_chain * n_draw
        work = np.flatnonzero(~constant & np.all(np.isfinite(values.reshape(n_param, -1)), axis=1))
        if work.size and n_draw >= 2:
            # contiguous either way: the means below would sum a strided view in another order
            block = np.ascontiguousarray(values) if work.size == n_param else values[work]
            centred = block - block.mean(axis=2, keepdims=True)
            lags = min(HEAD_LAGS, n_draw)
            head = np.empty((len(work), n_chain, lags))
            for lag in range(lags):
                head[:, :, lag] = np.einsum("pcn,pcn->pc", centred[:, :, : n_draw - lag], centred[:, :, lag:]) / n_draw
            tau, done = _geyer_tau(head, block, n_draw)
            out[work] = self._from_tau(tau)
            batch = (self.worked + np.arange(work.size)) // FFT_BATCH
            for i in np.flatnonzero(~done):
                self.pending.append((int(batch[i]), self.fed + int(work[i]), centred[i].copy(), block[i].copy()))
        self.worked += work.size
        self.fed += n_param
        self.parts.append(out)

    def _from_tau(self, tau: np.ndarray) -> np.ndarray:
        total = self.n_chain * self.n_draw
        return total / np.maximum(tau, 1.0 / np.log10(total))

    def finish(self) -> np.ndarray:
        out = np.concatenate(self.parts) if self.parts else np.full(0, np.nan)
        batches: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        for batch, index, centred, values in self.pending:
            batches.setdefault(batch, []).append((index, centred, values))
        for rows in batches.values():
            index = np.array([row[0] for row in rows])
            centred = np.stack([row[1] for row in rows])
            block = np.stack([row[2] for row in rows])
            out[index] = self._from_tau(_geyer_tau(_autocovariance_fft(centred, self.n_draw), block, self.n_draw)[0])
        return out


def _ess(values: np.ndarray) -> np.ndarray:
    """ESS of each parameter of a (P, chains, draws) array (see :class:`_Ess`)."""
    values = np.asarray(values, dtype=float)
    ess = _Ess(values.shape[1], values.shape[2])
    ess.add(values)
    return ess.finish()


def _autocovariance_fft(centred: np.ndarray, n_draw: int) -> np.ndarray:
    # heavy: scipy.fft imports scipy.special's array-API layer (about 0.2 s); only chains that the first lags do not settle need it
    from scipy.fft import next_fast_len

    length = next_fast_len(2 * n_draw)
    spectrum = np.fft.rfft(centred, n=length, axis=2)
    return np.fft.irfft(spectrum * np.conjugate(spectrum), n=length, axis=2)[:, :, :n_draw] / n_draw


def _geyer_tau(acov: np.ndarray, block: np.ndarray, n_draw: int) -> tuple[np.ndarray, np.ndarray]:
    """Integrated autocorrelation time from autocovariances of the first ``acov.shape[2]`` lags, and whether those
    lags sufficed (the sequence stopped, or they are all the lags the recursion may reach)."""
    n_param, n_chain, n_lags = acov.shape
    mean_var = acov[:, :, 0].mean(axis=1) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + block.mean(axis=2).var(axis=1, ddof=1)
    rho = 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]  # (P, lags)
    rho[:, 0] = 1.0
    # pairs (rho[2k], rho[2k+1]); the sequence stops at the first pair k >= 1 whose sum is <= 0, among the pairs
    # k = 1 .. last that the recursion may reach (lags up to draws - 3)
    last = (n_draw - 5) // 2 + 1
    complete = 2 * (last + 1) <= n_lags
    if not complete:
        last = n_lags // 2 - 1
    if last < 0:
        return np.full(n_param, np.nan), np.zeros(n_param, dtype=bool)
    pairs = rho[:, : 2 * (last + 1)].reshape(n_param, last + 1, 2)
    sums = pairs.sum(axis=2)
    stop = sums[:, 1:] <= 0
    stopped = stop.any(axis=1)
    first = (np.where(stopped, stop.argmax(axis=1) + 1, last) if last > 0
             else np.zeros(n_param, dtype=int))  # k*
    monotone = np.minimum.accumulate(sums, axis=1)
    keep = np.arange(last + 1)[None, :] < first[:, None]
    even = pairs[np.arange(n_param), first, 0]
    tail_term = np.where((even > 0) | (sums[np.arange(n_param), first] >= 0), even, 0.0)
    tau = -1.0 + 2.0 * np.sum(np.where(keep, monotone, 0.0), axis=1) + tail_term
    return tau, stopped | complete


def rhat_ess_many(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat, bulk ESS and tail ESS of each parameter of a (P, chains, draws) array.

    Thousands of parameters (latent degrees) are split into one block per CPU core and computed in threads:
    the sorts, FFTs and array arithmetic release the GIL. Each parameter's values do not depend on the split,
    except that an ESS left to the FFT fallback may differ in the last bit: the ``FFT_BATCH`` batches are counted
    within each thread's block."""

    values = np.asarray(values, dtype=float)
    workers = min(os.cpu_count() or 1, values.shape[0] // PARALLEL_BLOCK)
    if workers < 2:
        return _rhat_ess_block(values)
    blocks = np.array_split(values, workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(_rhat_ess_block, blocks))
    return tuple(np.concatenate([part[i] for part in parts]) for i in range(3))


def _rhat_ess_block(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_param, n_chain, n_draw = values.shape
    if n_draw < 4:
        empty = np.full(n_param, np.nan)
        return empty, empty.copy(), empty.copy()
    finite = np.all(np.isfinite(values), axis=(1, 2))
    if not finite.all():  # as ArviZ: no diagnostic for a parameter with a non-finite draw
        results = tuple(np.full(n_param, np.nan) for _ in range(3))
        if finite.any():
            for target, part in zip(results, _rhat_ess_block(values[finite]), strict=True):
                target[finite] = part
        return results
    rhat = np.empty(n_param)
    half_chains, half_draws = 2 * n_chain, n_draw // 2
    bulk, low, high = (_Ess(half_chains, half_draws) for _ in range(3))
    for start in range(0, n_param, BLOCK):
        part = values[start:start + BLOCK]
        split = _split(part)
        z_split, ordered = _z_scale(split)
        median = np.median(ordered, axis=1)  # quantiles of rows already sorted cost one pass
        rhat[start:start + BLOCK] = np.maximum(
            _split_rhat(z_split), _split_rhat(_z_scale(np.abs(split - median[:, None, None]))[0]))
        bulk.add(z_split)
        # with an even number of draws the split keeps every draw, so its sorted rows serve the tail quantiles too
        pool = ordered if n_draw % 2 == 0 else part.reshape(len(part), -1)
        for tail, cut in zip((low, high), np.quantile(pool, (0.05, 0.95), axis=1), strict=True):
            tail.add(_split((part <= cut[:, None, None]).astype(float)))
    if n_chain < 2:  # R-hat compares chains (ArviZ's convention: undefined for one chain)
        rhat = np.full(n_param, np.nan)
    return rhat, bulk.finish(), np.minimum(low.finish(), high.finish())


def ebfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain: sum of squared energy differences over the sum of squared deviations from the mean."""
    energy = np.asarray(energy, dtype=float)
    numerator = np.sum(np.diff(energy, axis=1) ** 2, axis=1)
    denominator = np.sum((energy - energy.mean(axis=1, keepdims=True)) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def convergence(
    posterior: dict[str, np.ndarray],
    *,
    diverging: np.ndarray,
    energy: np.ndarray | None,
    num_steps: np.ndarray,
    max_tree_depth: int | None,
    min_ess: float | None = None,
    rhat_max: float = RHAT_MAX,
    ebfmi_min: float = EBFMI_MIN,
) -> tuple[dict[str, Any], list[str]]:
    """Compute the gates over every array in ``posterior`` (each shaped (chains, draws, ...)).

    Returns the diagnostics dict and the list of warnings (empty when every gate passes).
    """
    chains = int(diverging.shape[0])
    min_ess = 100.0 * chains if min_ess is None else float(min_ess)
    worst_rhat, worst_rhat_name = 0.0, None
    worst_bulk, worst_bulk_name = np.inf, None
    worst_tail, worst_tail_name = np.inf, None
    for name, values in posterior.items():
        values = np.asarray(values, dtype=float)
        flat = values.reshape(values.shape[0], values.shape[1], -1)
        varying = np.ptp(flat, axis=(0, 1)) > 0
        if not varying.any():
            continue
        if not varying.all():  # a copy only then: the blocks read a view of the latent degrees' draws
            flat = flat[:, :, varying]
        flat = np.moveaxis(flat, 2, 0)  # (params, chains, draws)
        rhat, bulk, tail = rhat_ess_many(flat)
        if np.nanmax(rhat) > worst_rhat:
            worst_rhat, worst_rhat_name = float(np.nanmax(rhat)), name
        if np.nanmin(bulk) < worst_bulk:
            worst_bulk, worst_bulk_name = float(np.nanmin(bulk)), name
        if np.nanmin(tail) < worst_tail:
            worst_tail, worst_tail_name = float(np.nanmin(tail)), name
    n_divergent = int(np.sum(diverging))
    # E-BFMI describes Hamiltonian transitions only: a Gibbs sampler has no energy (None)
    bfmi = np.array([]) if energy is None else ebfmi(energy)
    # trees exist only for NUTS: a Gibbs sampler has no depth to reach (None)
    saturated = 0 if max_tree_depth is None else int(np.sum(num_steps >= 2**max_tree_depth - 1))
    transitions = int(diverging.size)
    diagnostics: dict[str, Any] = {
        "max_rhat": worst_rhat,
        "max_rhat_parameter": worst_rhat_name,
        "min_ess_bulk": worst_bulk,
        "min_ess_bulk_parameter": worst_bulk_name,
        "min_ess_tail": worst_tail,
        "min_ess_tail_parameter": worst_tail_name,
        "divergences": n_divergent,
        "transitions": transitions,
        "ebfmi": [float(v) for v in bfmi],
        **({} if max_tree_depth is None else {"max_tree_depth_hits": saturated}),
        "thresholds": {"rhat_max": rhat_max, "min_ess": min_ess, "ebfmi_min": ebfmi_min, "divergences": 0},
    }
    warnings: list[str] = []
    if worst_rhat > rhat_max:
        warnings.append(
            f"convergence gate failed: R-hat {worst_rhat:.3f} > {rhat_max} (parameter {worst_rhat_name!r}); "
            "chains disagree, do not use these estimates; run longer chains or check the model"
        )
    if worst_bulk < min_ess:
        warnings.append(
            f"convergence gate failed: bulk ESS {worst_bulk:.0f} < {min_ess:.0f} (parameter {worst_bulk_name!r}); "
            "run more draws"
        )
    if worst_tail < min_ess:
        warnings.append(
            f"convergence gate failed: tail ESS {worst_tail:.0f} < {min_ess:.0f} (parameter {worst_tail_name!r}); "
            "interval limits are noisy, run more draws"
        )
    if n_divergent > 0:
        warnings.append(
            f"convergence gate failed: {n_divergent} divergent transitions of {transitions}; the sampler may "
            "have missed part of the posterior (raise target_accept or reparameterise)"
        )
    low = [i for i, v in enumerate(bfmi) if not np.isfinite(v) or v < ebfmi_min]
    if low:
        warnings.append(
            f"convergence gate failed: E-BFMI below {ebfmi_min} in chain(s) {low}; the energy distribution is "
            "poorly explored"
        )
    if saturated > 0.1 * transitions:
        warnings.append(
            f"{saturated} of {transitions} transitions hit the maximum tree depth {max_tree_depth}; sampling "
            "is inefficient (not an error by itself)"
        )
    diagnostics["passed"] = not any(w.startswith("convergence gate failed") for w in warnings)
    return diagnostics, warnings
