"""Bootstrap intervals that repeat the model selection: BCa with a delete-one jackknife acceleration over distinct
histories, and batched refits of the BIC procedure's best models.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from hiddenpop import special
from hiddenpop.capture.core.loglinear import fit_poisson_batch
from hiddenpop.capture.core.terms import term_indicator
from hiddenpop.capture.lists.data import ListData
from hiddenpop.capture.lists.existence import EXISTS, check_extended_mle, split_terms
from hiddenpop.capture.lists.selection import select_model
from hiddenpop.capture.lists.space import design_matrix
from hiddenpop.distributions import normal_cdf, normal_quantile
from hiddenpop.errors import ModelError
from hiddenpop.parallel import map_processes

# Fewest samples per block handed to a worker process (a block of stepwise selections takes about 0.1 s).
MIN_BLOCK = 16

__all__ = ['bca_interval', 'bic_batch_abundance', 'jackknife_acceleration', 'selection_estimates']


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
    z0 = normal_quantile(share)
    tails = np.array([(1 - level) / 2, (1 + level) / 2])
    z_alpha = normal_quantile(tails)
    shifted = z0 + z_alpha
    adjusted = normal_cdf(z0 + shifted / (1 - acceleration * shifted))
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


def bic_batch_abundance(data: ListData, models, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
            _finite, neg_inf, _kept = split_terms(data, terms, samples[b])
            groups.setdefault(neg_inf, []).append(int(b))
        for neg_inf, members in groups.items():
            finite = tuple(t for t in terms if t not in neg_inf)
            kept = np.ones(len(data.patterns), dtype=bool)
            for term in neg_inf:
                kept &= ~term_indicator(data.patterns, term)
            design = design_matrix(data.patterns, finite)[kept]
            y = samples[np.ix_(members, np.flatnonzero(kept))]
            beta, mu, converged = fit_poisson_batch(design, y)
            loglik = np.sum(special.xlogy(y, mu) - mu - special.gammaln(y + 1), axis=1)
            params = 1 + data.lists + len(terms)
            values = observed[members] + np.exp(beta[:, 0])
            abundance[m, members] = np.where(converged, values, np.nan)
            bic[m, members] = np.where(converged, -2 * loglik + params * np.log(observed[members]), np.inf)
    return abundance, bic


def selection_estimates(
    data: ListData, samples: np.ndarray, select: str, threshold, max_order, top_models, workers: int = 1
) -> np.ndarray:
    """Re-run the whole selection on each sample; returns the selected model's abundance per sample.

    ``aic`` and ``stepwise`` treat every sample on its own, so with ``workers > 1`` the samples are split into
    contiguous blocks run by forked worker processes (:func:`hiddenpop.parallel.map_processes`); the values
    do not depend on the number of workers. ``bic`` refits its models on all samples in batches, in-process.
    """
    if select == "bic":
        abundance, bic = bic_batch_abundance(data, top_models, samples)
        best = np.argmin(bic, axis=0)
        values = abundance[best, np.arange(samples.shape[0])]
        values[~np.isfinite(bic.min(axis=0))] = np.nan
        return values
    rows = samples.shape[0]
    if workers <= 1 or rows < 2:
        return _selected_abundance(data, select, threshold, samples)
    blocks = min(4 * workers, -(-rows // MIN_BLOCK))
    parts = np.array_split(samples, max(blocks, 1))
    values = map_processes(partial(_selected_abundance, data, select, threshold), parts, workers=workers)
    return np.concatenate(values)


def _selected_abundance(data: ListData, select: str, threshold, samples: np.ndarray) -> np.ndarray:
    out = np.full(samples.shape[0], np.nan)
    for b, counts in enumerate(samples):
        try:
            out[b] = select_model(data, select, p_threshold=threshold, counts=counts).fit.abundance
        except ModelError:
            out[b] = np.nan
    return out


# ---------------------------------------------------------------------------------------------- public API
