"""Convergence gates and posterior predictive checks for the Bayesian NSUM models.

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

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

RHAT_MAX = 1.01
EBFMI_MIN = 0.3
ROOTOGRAM_MAX = 10


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
    energy: np.ndarray,
    num_steps: np.ndarray,
    max_tree_depth: int,
    min_ess: float | None = None,
    rhat_max: float = RHAT_MAX,
    ebfmi_min: float = EBFMI_MIN,
) -> tuple[dict[str, Any], list[str]]:
    """Compute the gates over every array in ``posterior`` (each shaped (chains, draws, ...)).

    Returns the diagnostics dict and the list of warnings (empty when every gate passes).
    """
    import arviz as az

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
        flat = np.moveaxis(flat[:, :, varying], 2, 0)  # (params, chains, draws)
        dataset = {"x": np.moveaxis(flat, 0, 2)}
        rhat = np.atleast_1d(az.rhat(az.convert_to_dataset(dataset), method="rank")["x"].values)
        bulk = np.atleast_1d(az.ess(az.convert_to_dataset(dataset), method="bulk")["x"].values)
        tail = np.atleast_1d(az.ess(az.convert_to_dataset(dataset), method="tail")["x"].values)
        if np.nanmax(rhat) > worst_rhat:
            worst_rhat, worst_rhat_name = float(np.nanmax(rhat)), name
        if np.nanmin(bulk) < worst_bulk:
            worst_bulk, worst_bulk_name = float(np.nanmin(bulk)), name
        if np.nanmin(tail) < worst_tail:
            worst_tail, worst_tail_name = float(np.nanmin(tail)), name
    n_divergent = int(np.sum(diverging))
    bfmi = ebfmi(energy)
    saturated = int(np.sum(num_steps >= 2**max_tree_depth - 1))
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
        "max_tree_depth_hits": saturated,
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


def predictive_checks(
    counts: np.ndarray,
    groups: tuple[str, ...],
    simulate: Callable[[np.random.Generator], np.ndarray],
    *,
    replicates: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Posterior predictive checks per group.

    ``simulate(rng)`` returns replicated count matrices shaped (replicates, n, K), one per posterior draw.
    Returns two tidy tables:

    * ``ppc``: per group and statistic (share of zeros, mean count, maximum count), the observed value, the
      predictive median and 95% interval, and the posterior predictive p-value P(T_rep >= T_obs);
    * ``rootogram``: per group and count (0..9, then ">=10"), the observed number of respondents and the expected
      number under the posterior predictive, with their square roots (a hanging rootogram plots
      sqrt(expected) and hangs sqrt(observed) from it).
    """
    rng = np.random.default_rng(seed)
    replicated = simulate(rng)
    rows, roots = [], []
    statistics = {
        "share_zero": lambda x, axis: np.mean(x == 0, axis=axis),
        "mean": lambda x, axis: np.mean(x, axis=axis),
        "max": lambda x, axis: np.max(x, axis=axis),
    }
    for k, group in enumerate(groups):
        observed = counts[:, k]
        simulated = replicated[:, :, k]
        for stat, fn in statistics.items():
            t_obs = float(fn(observed, 0))
            t_rep = fn(simulated, 1)
            lower, median, upper = np.quantile(t_rep, [0.025, 0.5, 0.975])
            rows.append({
                "group": group, "statistic": stat, "observed": t_obs, "predicted": float(median),
                "lower": float(lower), "upper": float(upper), "ppp": float(np.mean(t_rep >= t_obs)),
                "outside_interval": bool(t_obs < lower or t_obs > upper),
            })
        for value in range(ROOTOGRAM_MAX + 1):
            if value < ROOTOGRAM_MAX:
                obs = int(np.sum(observed == value))
                exp = float(np.mean(np.sum(simulated == value, axis=1)))
                label = str(value)
            else:
                obs = int(np.sum(observed >= value))
                exp = float(np.mean(np.sum(simulated >= value, axis=1)))
                label = f">={value}"
            roots.append({"group": group, "count": label, "observed": obs, "expected": exp,
                          "sqrt_observed": float(np.sqrt(obs)), "sqrt_expected": float(np.sqrt(exp))})
    return pd.DataFrame(rows), pd.DataFrame(roots)


def ppc_warnings(ppc: pd.DataFrame) -> list[str]:
    """One warning per group whose share of zeros or mean falls outside its 95% predictive interval."""
    flagged = ppc[(ppc["statistic"].isin(["share_zero", "mean"])) & ppc["outside_interval"]]
    return [
        f"posterior predictive check: observed {row.statistic} of {row.group!r} ({row.observed:.3g}) lies "
        f"outside the 95% predictive interval [{row.lower:.3g}, {row.upper:.3g}]; the model misfits this group"
        for row in flagged.itertuples()
    ]
