"""Latent-class multiple systems estimation (Manrique-Vallier 2016, the model of the R package LCMCR).

The population is a mixture of K classes; within a class the lists catch people independently, with class
probabilities lambda_kj of being on list j. Class weights come from a truncated stick-breaking (Dirichlet process)
prior: pi_k = V_k prod_{l<k} (1 - V_l), V_k ~ Beta(1, alpha), V_K = 1, alpha ~ Gamma(a, b); lambda_kj ~ U(0, 1).
The probability of list history x is

    p_x = sum_k pi_k prod_j lambda_kj^x_j (1 - lambda_kj)^(1 - x_j),

so heterogeneity between people (some easy to catch on every list, some hard on all) appears as positive
dependence between lists without naming which lists depend on which.

With the prior p(N) proportional to 1/N, N sums out in closed form: the parameters' posterior is

    p(theta | n) proportional to p(theta) prod_{x != 0} p_x^{n_x} / (1 - p_0)^n      (n people seen),

the multinomial of the observed histories conditional on being seen, and given theta the unseen count is
negative binomial: N - n ~ NegBin(n, 1 - p_0). Here the parameters are sampled with NUTS (classes marginalised,
no label sampling) on the 2^J history counts, and each posterior draw of p_0 gives one draw of N. Label switching
cannot affect N, p_0 or alpha, which are invariant to the order of the classes; convergence is judged on them.

Assumptions: a closed population; lists independent within each class; classes exhaust the heterogeneity that
matters (K large enough that the last classes are empty: a warning says when the smallest class weight is not
negligible). Failure modes: with few lists (3) the model is weakly identified and the interval is wide and
prior-sensitive; a concentration prior piled at zero gives funnels that NUTS reports as divergent transitions; the
posterior has local maxima with a small third class catching mostly on one list, with N far from the rest; a chain
that warms up in one, or enters one, can sit there for hundreds of draws (R-hat of N fails; a warning and
``tables["chains"]`` say which chain). ``start_at_mode`` starts the chains at the highest maximum with a dense mass
matrix (:func:`sampler_settings`), which fixed this on the UK five lists (docs/methods/mse-bayes.md).

Reference: Manrique-Vallier, D. (2016) Bayesian population size estimation using Dirichlet process mixtures.
Biometrics 72(4):1246-1254.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.capture.lists.data import list_data
from hiddenpop.capture.lists.procedures import CONCENTRATION_PRIOR, LATENT_CHAINS, LATENT_CLASSES
from hiddenpop.errors import ConfigError
from hiddenpop.mcmc.diagnostics import convergence
from hiddenpop.mcmc.nuts import Density, Draws, quantity_row, sample_nuts
from hiddenpop.results import Estimates

#: How much of log alpha the sampled stick variables carry (0: non-centred, 1: centred; any value gives the same
#: posterior). Non-centred, the data pin log e_k - log alpha for an occupied class: a narrow ridge (correlation
#: 0.88-0.98 with log alpha on the UK five lists) that costs NUTS trees of 125-474 leapfrog steps per draw. 0.7
#: took the UK fits to 63-113 steps with R-hat of N <= 1.006 (three seeds), but in the two-class simulation of
#: tests/capture/lists/test_latent.py only 43 of 50 fits were free of divergences (0.5: 47, 0.3 and 0: 50), so the
#: default stays non-centred.
STICK_SHIFT = 0.0

#: NUTS's target acceptance rate for latent-class fits started at random points with a diagonal mass matrix.
TARGET_ACCEPT = 0.95

#: The target acceptance rate when the chains start at the mode with a dense mass matrix (``start_at_mode``): 0.95
#: left divergent transitions in the small-class configurations (9 in one chain on the UK five lists at seed 6);
#: 0.99 took them to none at about twice the leapfrog steps (60-130 a draw, fewer than the diagonal matrix's 100-450).
MODE_TARGET_ACCEPT = 0.99

#: Independent L-BFGS runs, from random points, whose best optimum is the chains' common starting point.
MODE_STARTS = 4

#: A class counts as occupied in a draw when its weight exceeds this (about 10 people of the UK five lists' 2,744).
OCCUPIED = 0.003

__all__ = ["MODE_STARTS", "MODE_TARGET_ACCEPT", "OCCUPIED", "STICK_SHIFT", "TARGET_ACCEPT", "chain_configurations",
           "fit_latent_class", "latent_class", "latent_class_density", "population_draws", "posterior_mode",
           "sampler_settings"]


def latent_class_density(classes: int, lists: int, concentration: tuple[float, float] = CONCENTRATION_PRIOR,
                         shift: float = STICK_SHIFT) -> Density:
    """The LCMCR posterior of (lambda, V, alpha) with N summed out, on the unconstrained scale.

    The sticks are non-centred by default: V_k = 1 - exp(-e_k / alpha) with e_k ~ Exponential(1), the same prior
    as Beta(1, alpha), without the funnel between alpha and the sticks of empty classes that makes NUTS diverge.
    They are sampled as stick_k = log e_k - c log alpha with c = ``shift`` (default :data:`STICK_SHIFT`, 0):
    partial non-centring (Papaspiliopoulos, Roberts & Skold 2007), a linear change of coordinates with unit
    Jacobian, so every c gives the same posterior of (lambda, V, alpha).

    Data: ``patterns`` (cells x lists, the observable histories), ``counts`` (one per cell) and ``observed``
    (their sum). Reported: ``p0`` (probability of being on no list), ``alpha`` and ``weights`` (pi)."""
    shift = float(shift)
    if classes < 1 or lists < 2:
        raise ConfigError(f"need at least one latent class and two lists; got {classes} and {lists}")
    a, b = (float(v) for v in concentration)
    if not (a > 0 and b > 0):
        raise ConfigError(f"the concentration prior Gamma(a, b) needs a > 0 and b > 0; got {concentration}")

    def parts(z: dict[str, Any]) -> tuple[Any, ...]:
        """log(1 - lambda) (classes x lists) and log pi (classes)."""
        # JAX is loaded only when this runs: importing it costs start-up time
        import jax.numpy as jnp
        from jax.nn import softplus

        log_not = -softplus(z["lam"])
        # -log(1 - V_k) ~ Exponential(alpha), written as e_k / alpha with e_k ~ Exponential(1) and
        # stick_k = log e_k - shift log alpha
        log_not_v = -jnp.exp(z["stick"] - (1.0 - shift) * z["log_alpha"])
        log_v = jnp.log(-jnp.expm1(log_not_v))
        before = jnp.concatenate([jnp.zeros(1), jnp.cumsum(log_not_v)])
        log_pi = jnp.concatenate([log_v, jnp.zeros(1)]) + before
        return log_not, log_pi

    def log_density(z: dict[str, Any], data: dict[str, Any]) -> Any:
        # JAX is loaded only when this runs: importing it costs start-up time
        import jax.numpy as jnp
        from jax.scipy.special import logsumexp

        log_not, log_pi = parts(z)
        alpha = jnp.exp(z["log_alpha"])
        # log P(class k, on no list) and log P(class k, history x) = that + x . logit(lambda_k), since
        # log lambda - log(1 - lambda) is the unconstrained lambda itself: one product, cells x classes
        unseen = log_pi + log_not.sum(axis=1)
        log_p = logsumexp(unseen[None, :] + data["patterns"] @ z["lam"].T, axis=1)
        log_p0 = logsumexp(unseen)
        log_seen = jnp.where(log_p0 < -0.693, jnp.log1p(-jnp.exp(log_p0)), jnp.log(-jnp.expm1(log_p0)))
        likelihood = data["counts"] @ log_p - data["observed"] * log_seen
        # priors with the Jacobians of the logistic and log transforms: U(0, 1) lambdas (log lambda +
        # log(1 - lambda) = logit + 2 log(1 - lambda)), Exponential(1) e_k (so V_k ~ Beta(1, alpha) given alpha;
        # the shift by a multiple of log alpha is a linear map of unit Jacobian), Gamma(a, b) alpha
        lam_prior = jnp.sum(z["lam"] + 2.0 * log_not)
        log_e = z["stick"] + shift * z["log_alpha"]
        stick_prior = jnp.sum(log_e - jnp.exp(log_e))
        alpha_prior = a * z["log_alpha"] - b * alpha
        return likelihood + lam_prior + stick_prior + alpha_prior

    def constrain(z: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        # JAX is loaded only when this runs: importing it costs start-up time
        import jax.numpy as jnp
        from jax.scipy.special import logsumexp

        log_not, log_pi = parts(z)
        return {"p0": jnp.exp(logsumexp(log_pi + log_not.sum(axis=1))), "alpha": jnp.exp(z["log_alpha"]),
                "weights": jnp.exp(log_pi)}

    shapes = {"lam": (classes, lists), "stick": (classes - 1,), "log_alpha": ()}
    return Density(shapes=shapes, log_density=log_density, constrain=constrain)


def posterior_mode(density: Density, arrays: dict[str, Any], *, seed: int, starts: int = MODE_STARTS,
                   radius: float = 2.0) -> dict[str, np.ndarray]:
    """The highest of the local maxima of the density (unconstrained scale) that L-BFGS reaches from ``starts``
    points drawn uniformly in (-radius, radius): the chains' starting point (:func:`sampler_settings`).

    The posterior has local maxima with a small third class (on the UK five lists 4-45 units below the highest,
    which has two classes); a chain that starts and adapts its mass matrix in one of them can stay there for the
    whole run. Starting every chain at the highest maximum lets warmup adapt to the bulk of the posterior; the
    chains still visit the other configurations afterwards."""
    # JAX and SciPy's optimiser are loaded only when this runs: importing them costs start-up time
    import jax
    import jax.numpy as jnp
    from scipy.optimize import minimize

    names = list(density.shapes)
    sizes = [int(np.prod(density.shapes[name], dtype=int)) for name in names]

    def unflatten(x: Any) -> dict[str, Any]:
        out, at = {}, 0
        for name, size in zip(names, sizes, strict=True):
            out[name] = x[at:at + size].reshape(density.shapes[name])
            at += size
        return out

    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        objective = jax.jit(jax.value_and_grad(lambda x, data: -density.log_density(unflatten(x), data)))
        data = {key: jnp.asarray(value) for key, value in arrays.items()}

        def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, gradient = objective(jnp.asarray(x), data)
            return float(value), np.asarray(gradient, dtype=np.float64)

        best = None
        for _ in range(max(1, int(starts))):
            found = minimize(value_and_gradient, rng.uniform(-radius, radius, sum(sizes)), jac=True,
                             method="L-BFGS-B")
            if np.isfinite(found.fun) and (best is None or found.fun < best.fun):
                best = found
    if best is None:
        raise ConfigError("the latent-class posterior has no finite mode from any starting point; check the lists")
    return {name: np.asarray(value) for name, value in unflatten(best.x).items()}


def sampler_settings(density: Density, arrays: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """The NUTS options of a latent-class fit with ``start_at_mode``: chains started at :func:`posterior_mode`
    (jittered by +-0.1) and a dense mass matrix. The dense matrix follows the ridge between log alpha and the
    sticks of the occupied classes (trees of 30-120 leapfrog steps instead of 100-450); started at the mode,
    warmup adapts it to the two-class bulk instead of a small-class configuration."""
    return {"init_values": posterior_mode(density, arrays, seed=seed), "dense_mass": True}


def population_draws(draws: Draws, observed: float, seed: int) -> np.ndarray:
    """One draw of N per posterior draw: n + NegBin(n, 1 - p0), shaped (chains, draws)."""
    p0 = np.clip(np.asarray(draws.samples["p0"], dtype=float), 0.0, 1.0 - 1e-15)
    rng = np.random.default_rng(seed)
    return observed + rng.negative_binomial(observed, 1.0 - p0)


def chain_configurations(weights: np.ndarray, total: np.ndarray) -> pd.DataFrame:
    """Per chain: the median of N and the share of draws with more than two occupied classes (weight above
    :data:`OCCUPIED`). Both are invariant to the order of the classes. When chains disagree on N, a different share
    says why: the posterior has several class configurations (a small third class catching mostly on one list)
    that NUTS moves between rarely, and one chain spent a long stretch in one of them."""
    occupied = (np.asarray(weights) > OCCUPIED).sum(axis=-1)
    return pd.DataFrame({"chain": np.arange(1, occupied.shape[0] + 1),
                         "median_N": np.median(np.asarray(total, dtype=float), axis=1),
                         "more_than_two_classes": (occupied > 2).mean(axis=1)})


def model_arrays(data: Any, count_column: str | None = None) -> tuple[dict[str, np.ndarray], Any]:
    """The arrays the density reads (every observable history, zeros included) and the validated list data."""
    table = list_data(data, count_column=count_column)
    arrays = {"patterns": table.patterns.astype(np.float64), "counts": table.counts.astype(np.float64),
              "observed": np.float64(table.observed)}
    return arrays, table


def latent_class(
    data: Any,
    *,
    count_column: str | None = None,
    classes: int = LATENT_CLASSES,
    concentration: tuple[float, float] = CONCENTRATION_PRIOR,
    chains: int = LATENT_CHAINS,
    warmup: int = 1000,
    draws: int = 1000,
    seed: int = 0,
    target_accept: float = TARGET_ACCEPT,
    level: float = 0.95,
    quiet: bool = True,
    start_at_mode: bool = False,
) -> Estimates:
    """Posterior of the population size under the latent-class model (module docstring), by NUTS.

    Rows: the posterior median of N with the equal-tailed ``level`` interval, and the posterior mean; both carry
    R-hat and ESS. ``diagnostics["convergence"]`` holds the gates (R-hat <= 1.01, ESS, divergences, E-BFMI) over
    N, p0 and alpha; a failed gate is a warning. ``tables["classes"]``: the posterior mean weight of each class
    (the smallest should be near zero, or ``classes`` is too small).

    ``start_at_mode`` starts every chain at the posterior mode with a dense mass matrix and target acceptance
    :data:`MODE_TARGET_ACCEPT` (``target_accept`` is then ignored; :func:`sampler_settings`). On the UK five lists it
    passes the gates at every seed tried where random starts fail at some; it is not yet the default: the two-class
    simulation of docs/methods/mse-bayes.md passes its floors with it only with trees deeper than the test allows."""
    result, _ = fit_latent_class(data, count_column=count_column, classes=classes, concentration=concentration,
                                 chains=chains, warmup=warmup, draws=draws, seed=seed, target_accept=target_accept,
                                 level=level, quiet=quiet, start_at_mode=start_at_mode)
    return result


def fit_latent_class(data: Any, *, count_column: str | None = None, classes: int = LATENT_CLASSES,
                     concentration: tuple[float, float] = CONCENTRATION_PRIOR, chains: int = LATENT_CHAINS,
                     warmup: int = 1000,
                     draws: int = 1000, seed: int = 0, target_accept: float = TARGET_ACCEPT, level: float = 0.95,
                     quiet: bool = True, start_at_mode: bool = False) -> tuple[Estimates, np.ndarray]:
    """:func:`latent_class` and its draws of N, shaped (chains, draws) (strata add them up)."""
    if not 0 < level < 1:
        raise ConfigError(f"level must be between 0 and 1; got {level}")
    arrays, table = model_arrays(data, count_column)
    density = latent_class_density(int(classes), table.lists, concentration)
    start = sampler_settings(density, arrays, seed=seed) if start_at_mode else {}
    fit = sample_nuts(density, arrays, chains=chains, warmup=warmup, draws=draws, seed=seed, quiet=quiet,
                      target_accept=MODE_TARGET_ACCEPT if start_at_mode else target_accept,
                      description="latent-class MSE", **start)
    total = population_draws(fit, table.observed, seed)
    result = summarise_fit(fit, table, total, classes=int(classes), concentration=concentration, seed=seed,
                           level=level)
    return result, total


def summarise_fit(fit: Draws, table: Any, total: np.ndarray, *, classes: int, concentration: tuple[float, float],
                  seed: int, level: float) -> Estimates:
    """The Estimates of one latent-class fit whose draws of N are ``total``."""
    posterior = {"N": total, "p0": fit.samples["p0"], "alpha": fit.samples["alpha"]}
    checks, warnings = convergence(posterior, diverging=fit.diverging, energy=fit.energy,
                                   num_steps=fit.num_steps, max_tree_depth=fit.settings["max_tree_depth"])
    flat = total.reshape(-1)
    tail = (1 - level) / 2
    lower, upper = np.quantile(flat, [tail, 1 - tail])
    median_row = quantity_row("abundance", "latent class (posterior median)", total)
    mean_row = dict(median_row, method="latent class (posterior mean)", estimate=float(flat.mean()))
    rows = [dict(row, lower=float(lower), upper=float(upper), level=level) for row in (median_row, mean_row)]
    weights = np.asarray(fit.samples["weights"]).reshape(-1, classes).mean(axis=0)
    chains = chain_configurations(fit.samples["weights"], total)
    shares = chains["more_than_two_classes"]
    if median_row["rhat"] > checks["thresholds"]["rhat_max"] and shares.max() - shares.min() > 0.1:
        warnings.append(
            f"the chains spent {shares.min():.0%}-{shares.max():.0%} of their draws with more than two occupied "
            f"classes (medians of N {chains['median_N'].min():,.0f}-{chains['median_N'].max():,.0f}): the "
            "posterior has class configurations NUTS moves between rarely; refit with the chains started at the "
            "posterior mode (latent_start_at_mode) or with more draws (tables['chains'])")
    if weights.min() > 0.01:
        warnings.append(f"the smallest of the {classes} latent classes still has weight {weights.min():.3f}: "
                        "the truncation may be too small; refit with more classes")
    return Estimates.from_rows(
        rows,
        settings={"model": "latent class (LCMCR)", "classes": classes, "concentration_prior": list(concentration),
                  "level": level, **fit.settings},
        seed=seed,
        warnings=warnings,
        diagnostics={"observed": table.observed, "lists": table.lists, "convergence": checks,
                     "seconds": fit.seconds},
        tables={"classes": pd.DataFrame({"class": np.arange(1, classes + 1), "weight": weights}), "chains": chains},
    )
