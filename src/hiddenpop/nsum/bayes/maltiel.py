"""One engine for the Maltiel, Raftery, McCormick & Baraff (2015) family of NSUM models.

The five public models (basic, degree, barrier, transmission, combined) are switches of one NumPyro model:

* degrees: fixed (basic) or random, log d_i ~ Normal(mu, sigma), mu ~ U(3, 8), sigma ~ U(0.25, 2);
* barrier effects: the probability that a tie of respondent i falls in group k varies across respondents with
  mean p_k and dispersion rho_k in (0, 1) (prior U(0, 1)); it is integrated out analytically;
* transmission error: for hidden groups only a share tau_k ~ Beta(a_k, b_k) of the ties is reported, so the
  reported probability has mean tau_k N_k / N.
* recall curve (``recall="loglinear"``): every group's reported probability p_k is bent to
  p_k exp(b (log p_k - c)), b ~ U(-0.9, 0.9) (:mod:`hiddenpop.nsum.bayes.recall`).

Two likelihoods (argument ``likelihood``):

* ``"poisson"`` (default; the small-probability limit): y_ik ~ Poisson(d_i p_ik), with log d_i sampled directly
  (centred; the data pin each log d_i much more tightly than the prior). With barriers the rate multiplier is
  Gamma(p_k r_k, r_k) and the marginal is negative binomial (gamma-Poisson). Both log-likelihoods are evaluated
  exactly from sufficient statistics (row totals, column totals, count tails; see ``_negative_binomial_total``),
  so no log-gamma of a parameter is needed: 10-40x cheaper than the binomial forms at survey scale.
* ``"binomial"`` (the spec and the NSUM package): y_ik ~ Binomial(d_i, p_ik) with d_i continuous, the binomial
  coefficient evaluated with log-gamma functions (a continuous relaxation, as in the package), support
  d_i >= max_k y_ik. To give NUTS an unconstrained space d_i = max_k y_ik + exp(v_i) with the Jacobian included.
  With barriers the probability is Beta(p_k r_k, (1 - p_k) r_k), r_k = 1/rho_k - 1, and the marginal is
  beta-binomial.

Sampling: NUTS on all parameters, except for unweighted centred Poisson barrier fits of at least
``SPLIT_MIN_RESPONDENTS`` respondents. There a Gibbs sampler (:func:`hiddenpop.mcmc.gibbs.sample_gibbs`) redraws
each log degree from its exact full conditional (``degree_update`` in :func:`build_model`) and then every global
parameter block from its own (``sweep``); no NUTS. With a recall curve (which couples the groups) the global
parameters keep NUTS between the degree moves (:class:`hiddenpop.mcmc.nuts.Conditional`).

Transmission is parameterised so NUTS sees a well-conditioned space. The data identify the effective size
w_k = tau_k N_k; with p(N_k) proportional to 1/N_k on (L_k, U_k) and tau_k ~ Beta(a_k, b_k), the change of
variables (N_k, tau_k) -> (w_k, tau_k) gives p(w_k, tau_k) proportional to Beta(tau_k; a_k, b_k) / w_k on
w_k/U_k < tau_k < min(1, w_k/L_k). We sample log w_k (flat, below log U_k) and tau_k by a logistic map onto that
interval (with its Jacobian), then N_k = w_k / tau_k. The sampler therefore never walks the ridge
tau_k N_k = constant.

Combined model and the reported probability: Maltiel et al. write y_ik ~ Binomial(d_i, tau_k q_ik) with
q_ik ~ Beta(mean m_k, dispersion rho_k). tau_k q_ik is not Beta-distributed, and its exact marginal needs a
Gauss hypergeometric function. We place the Beta (or, for ``poisson``, the Gamma) directly on the reported
probability, with mean tau_k m_k and dispersion rho_k. Since rho_k is a free parameter per group, the family of
mean/over-dispersion pairs is the same; only the interpretation of rho_k for hidden groups changes (it is the
dispersion of the reported probability). Under ``poisson`` the scaling is exact: tau times a Gamma variable is
Gamma with the same shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from hiddenpop.errors import ConfigError
from hiddenpop.mcmc.gibbs import sample_gibbs
from hiddenpop.mcmc.nuts import Conditional, Density, Draws, quantity_row, sample_nuts, uniform_interval
from hiddenpop.nsum.adjust import Adjustments
from hiddenpop.nsum.bayes import recall as recall_curve
from hiddenpop.nsum.bayes.common import BayesData, Priors, coerce_data
from hiddenpop.nsum.bayes.diagnostics import convergence, ppc_warnings, predictive_checks, simulate_in_blocks
from hiddenpop.results import Estimates, LazyExtras

LIKELIHOODS = ("binomial", "poisson")
PARAMETERISATIONS = ("auto", "centred", "noncentred")
#: median reports per respondent from which ``parameterisation="auto"`` samples log degrees centred, without and
#: with barrier effects (over-dispersion makes each report less informative about the degree). Measured on
#: 100-respondent simulations with about 25 reports each: sigma's R-hat averaged 1.0005 centred vs 1.0072
#: non-centred without barriers, and 1.0029 centred vs 1.0020 non-centred with them (1.0105 vs 1.0045 at 15 reports).
CENTRED_MIN_REPORTS = 5.0
CENTRED_MIN_REPORTS_BARRIER = 30.0
#: Newton steps towards the mode of each log degree's full conditional, and the factor widening the Laplace
#: approximation used as the independence proposal (see ``degree_update`` in :func:`build_model`)
NEWTON_STEPS = 3
PROPOSAL_INFLATION = 1.1
#: Newton steps towards the mode of each group's (rho_k, size) conditional in the Gibbs sweep of the globals, and
#: the independence steps that redraw each tau_k from its restricted Beta prior (``sweep`` in :func:`build_model`)
COLUMN_NEWTON_STEPS = 1
TAU_TRIES = 8
#: weight and width (a multiple of the Laplace scale) of the wide component of the groups' proposal mixture
DEFENSIVE_WEIGHT = 0.05
DEFENSIVE_SCALE = 8.0
#: over-relaxation alpha of the Gibbs sampler's Laplace proposals for the log degrees and for the groups'
#: parameters (see ``degree_update``). Measured on Study 2's size (4 x 1,000 draws after 200): alpha -0.5 for
#: both raised the smallest rho bulk ESS from 1,266 (alpha 0) to 2,715; -0.75 for both raised the rho to 3,245
#: but a log degree fell to 598 (R-hat 1.013): a few degrees' conditionals are far from normal
OVERRELAXATION_DEGREES = -0.5
OVERRELAXATION = -0.8
#: respondents from which a centred Poisson barrier fit uses the split sampler (NUTS on the global parameters, log
#: degrees drawn from their conditional; :meth:`MaltielModel.split_sampler`). Measured, 4 chains x 1,000 draws, min
#: bulk ESS per CPU-second split vs joint: 18.0 vs 30.5 at 150 respondents x 7 groups (sigma's R-hat 1.0245 split),
#: 34.2 vs 26.6 at 1,000 x 7, 31-32 vs 23-26 at Study 2's 3,600 x 19 (docs/performance.md)
SPLIT_MIN_RESPONDENTS = 1000
#: the per-respondent (latent) parameters; every other parameter is global
LATENT_PARAMETERS = ("log_degree_raw",)


def _weighted(weights: Any, values: Any, rows: bool = False) -> Any:
    """``values`` times the respondents' survey weights (per row of a respondents x groups array with ``rows``), or
    ``values`` themselves in an unweighted fit (no multiplication by ones: the plain fit's arithmetic)."""
    if weights is None:
        return values
    return weights[:, None] * values if rows else weights * values


def build_model(
    known_index: np.ndarray,
    hidden_index: np.ndarray,
    n_respondents: int,
    *,
    random_degree: bool,
    barrier: bool,
    transmission: bool,
    likelihood: str,
    centred: bool = True,
    recall: bool = False,
) -> Density:
    """The log posterior (on the unconstrained scale) for the requested switches; data is a dict of arrays."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax
    import jax.numpy as jnp
    from jax.nn import log_sigmoid, sigmoid
    from jax.scipy.special import gammaln
    from jax.scipy.stats import beta as beta_dist
    from jax.scipy.stats import norm

    known_index = np.asarray(known_index)
    hidden_index = np.asarray(hidden_index)
    n_groups = len(known_index) + len(hidden_index)
    n_hidden = len(hidden_index)
    shapes: dict[str, tuple[int, ...]] = {}
    if random_degree:
        shapes.update({"mu": (), "sigma": (), "log_degree_raw": (n_respondents,)})
    if n_hidden:
        if transmission:
            shapes.update({"log_effective_size_raw": (n_hidden,), "tau_raw": (n_hidden,)})
        else:
            shapes["log_size_raw"] = (n_hidden,)
    if barrier:
        shapes["rho"] = (n_groups,)
    if recall:
        shapes.update(recall_curve.shapes())

    def unpack(z: dict[str, Any], data: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        out: dict[str, Any] = {}
        logp = 0.0
        if random_degree:
            mu, lj = uniform_interval(z["mu"], data["mu_lo"], data["mu_hi"])
            logp += lj
            sigma, lj = uniform_interval(z["sigma"], data["sigma_lo"], data["sigma_hi"])
            logp += lj
            raw = z["log_degree_raw"]
            # survey weights enter only a weighted fit's arrays: an unweighted fit keeps the exact arithmetic (and
            # so the draws) of the plain likelihood
            weights = data.get("weights")
            if likelihood == "poisson" and centred:
                # centred: raw_i = log d_i ~ N(mu, sigma), best when each respondent reports many contacts
                log_d = raw
                degree = jnp.exp(raw)
                logp += jnp.sum(_weighted(weights, norm.logpdf(raw, mu, sigma)))
            elif likelihood == "poisson":
                # non-centred: log d_i = mu + sigma raw_i, raw_i ~ N(0, 1), best when the data say little about
                # each respondent (otherwise a funnel between sigma and the log degrees slows mixing)
                log_d = mu + sigma * raw
                degree = jnp.exp(log_d)
                # the weighted density of log d_i, N(log d_i; mu, sigma)^w_i, in raw_i: Jacobian sigma, unweighted
                logp += (jnp.sum(norm.logpdf(raw)) if weights is None
                         else jnp.sum(weights * norm.logpdf(raw) + (1.0 - weights) * jnp.log(sigma)))
            else:
                # d_i = max_k y_ik + exp(raw_i): binomial support, Jacobian exp(raw_i)
                degree = data["ymax"] + jnp.exp(raw)
                log_d = jnp.log(degree)
                logp += jnp.sum(_weighted(weights, norm.logpdf(log_d, mu, sigma)) - log_d + raw)
            out.update(mu=mu, sigma=sigma, degree=degree)
        else:
            degree = data["fixed_degree"]
            log_d = jnp.log(degree)
        prob = data["known_prob"]
        if n_hidden:
            if transmission:
                log_hi, log_lo = data["log_size_hi"], data["log_size_lo"]
                # log w_k = log U_k - exp(raw): flat on (-inf, log U_k); p(w, tau) = Beta(tau) / w
                log_w = log_hi - jnp.exp(z["log_effective_size_raw"])
                logp += jnp.sum(z["log_effective_size_raw"])
                lower = jnp.exp(log_w - log_hi)
                upper = jnp.minimum(1.0, jnp.exp(log_w - log_lo))
                raw = z["tau_raw"]
                tau = lower + (upper - lower) * sigmoid(raw)
                logp += jnp.sum(
                    beta_dist.logpdf(tau, data["tau_a"], data["tau_b"])
                    + jnp.log(upper - lower) + log_sigmoid(raw) + log_sigmoid(-raw)
                )
                size = jnp.exp(log_w) / tau
                out.update(tau=tau, size=size, effective_size=jnp.exp(log_w))
                reported_hidden = jnp.exp(log_w) / data["population"]
            else:
                # p(N_k) proportional to 1/N_k on [L_k, U_k]: log N_k uniform
                log_size, lj = uniform_interval(z["log_size_raw"], data["log_size_lo"], data["log_size_hi"])
                logp += jnp.sum(lj)
                size = jnp.exp(log_size)
                out.update(size=size)
                reported_hidden = size / data["population"]
            prob = jnp.zeros(n_groups).at[known_index].set(data["known_prob"]).at[hidden_index].set(reported_hidden)
        if recall:
            prob, out["recall_slope"], lj = recall_curve.apply(z, data, prob)
            logp += lj
        out["prob"] = prob
        d = degree[:, None]
        y = data["y"]
        if barrier:
            rho, lj = uniform_interval(z["rho"], data["rho_lo"], data["rho_hi"])
            logp += jnp.sum(lj)
            out["rho"] = rho
            if likelihood == "poisson":
                return out, logp + _negative_binomial_total(y, log_d, degree, prob, rho / (1.0 - rho), data)
            else:
                # beta-binomial, log B(y + a, d - y + b) - log B(a, b) regrouped as the binomial kernel plus three
                # log-gamma shifts that vanish as r -> inf (see log_gamma_shift)
                r = 1.0 / rho - 1.0
                a = prob * r
                b = (1.0 - prob) * r
                loglik = _weighted(data.get("weights"), (
                    gammaln(d + 1.0) - gammaln(y + 1.0) - gammaln(d - y + 1.0)
                    + y * jnp.log(prob) + (d - y) * jnp.log1p(-prob)
                    + log_gamma_shift(a, y) + log_gamma_shift(b, d - y) - log_gamma_shift(r, d)
                ), rows=True)
        elif likelihood == "poisson":
            # sum_ik w_i [y_ik log(d_i p_k) - d_i p_k - log y_ik!] through the (weighted) row and column totals:
            # O(n + K)
            loglik = (
                jnp.dot(data["row_totals"], log_d) + jnp.dot(data["col_totals"], jnp.log(prob))
                - jnp.sum(_weighted(data.get("weights"), degree)) * jnp.sum(prob) - data["log_y_factorial"]
            )
        else:
            loglik = _weighted(data.get("weights"), (
                gammaln(d + 1.0) - gammaln(y + 1.0) - gammaln(d - y + 1.0)
                + y * jnp.log(prob) + (d - y) * jnp.log1p(-prob)
            ), rows=True)
        return out, logp + jnp.sum(loglik)

    def _negative_binomial_total(y, log_d, degree, prob, inv_r, data):
        """sum_ik w_i log NB(y_ik; shape a_k, rate r_k / d_i) (the gamma-Poisson marginal, a_k = p_k r_k,
        inv_r = 1 / r_k = rho_k / (1 - rho_k); w_i the respondent's weight, 1 unless the fit is survey-weighted),
        computed as

        -sum_ik w_i (a_k + y_ik) log(1 + d_i / r_k) + sum_i w_i Y_i log d_i + sum_k Y_k log p_k
        + sum_k sum_j T_kj log(1 + j / a_k) - sum_ik w_i log y_ik!,

        where Y_k = sum_i w_i y_ik and T_kj = sum_i w_i [y_ik > j] (the weighted count tails), so log Gamma(y + a) - log Gamma(a) = sum_{j < y} log(a + j) costs one log
        per (group, count level) instead of two log-gamma functions per cell. Exact (no approximation), and every
        term stays small as rho_k -> 0 (r_k -> inf, the Poisson limit, where the first term tends to
        sum_i d_i p_k and the fourth to 0). The algebraically equal form n sum_k a_k log r_k -
        sum_ik (a_k + y_ik) log(r_k + d_i) + ... subtracts terms of size n a_k log r_k: at rho_k = 1e-15
        (r_k = 1e15) its log density was off by 26 and its gradient in logit(rho_k) had the wrong sign, and a
        chain that wandered there in warm-up froze (every later transition at the maximum tree depth)."""
        a = prob / inv_r
        offsets = jnp.arange(data["tail"].shape[-1], dtype=a.dtype)
        return (
            -(cell_log_sum()(a, inv_r, degree, y) if "weights" not in data
              else weighted_cell_log_sum()(a, inv_r, degree, y, data["weights"]))
            + jnp.dot(data["row_totals"], log_d)
            + jnp.dot(data["col_totals"], jnp.log(prob))
            + jnp.sum(data["tail"] * jnp.log1p(offsets[None, :] / a[:, None]))
            - data["log_y_factorial"]
        )

    def log_density(z: dict[str, Any], data: dict[str, Any]) -> Any:
        return unpack(z, data)[1]

    def constrain(z: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        out = unpack(z, data)[0]
        out.pop("prob", None)
        return out

    def degree_update(key: Any, z: dict[str, Any], data: dict[str, Any], relax: float = 0.0) -> Any:
        """New log degrees from their full conditional given the global parameters (independent across
        respondents): an independence Metropolis-Hastings move per respondent whose proposal is the Laplace
        approximation of the conditional (mode by Newton steps from a start that depends on the globals and
        the data only, never on the current log degree, so the proposal is a valid independence proposal).

        With ``relax`` = alpha in (-1, 1) the proposal is over-relaxed around that approximation (Adler 1981):
        x' = m + alpha (x - m) + sqrt(1 - alpha^2) s e, e ~ N(0, 1), a kernel reversible with respect to N(m, s^2),
        so the Metropolis-Hastings ratio is the same as the independence sampler's; a negative alpha makes
        successive draws anti-correlated where the approximation is good."""
        out, _ = unpack(z, data)
        mu, sigma, prob, rho = out["mu"], out["sigma"], out["prob"], out["rho"]
        inv_r = (rho / (1.0 - rho))[:, None]
        # groups x respondents: the sums over the 19 groups then run across contiguous respondents (vectorised)
        shape = (prob[:, None] / inv_r) + data["y"].T
        precision = 1.0 / sigma**2
        row_totals = data["row_totals"]

        def log_target(x):
            """log p(x | rest) up to a constant for a stack of points x (..., n): one pass over the cells."""
            cells = jnp.sum(shape * jnp.log1p(inv_r * jnp.exp(x)[..., None, :]), axis=-2)
            return -0.5 * precision * (x - mu) ** 2 + row_totals * x - cells

        def slope_curvature(x):
            t = inv_r * jnp.exp(x)[None, :]
            v = 1.0 / (1.0 + t)
            u = shape * t * v
            return -precision * (x - mu) + row_totals - jnp.sum(u, axis=0), precision + jnp.sum(u * v, axis=0)

        # start: the Poisson-limit estimate log(Y_i / sum_k p_k), shrunk into the prior's bulk
        x = jnp.clip(jnp.log(jnp.maximum(row_totals, 0.5) / jnp.sum(prob)), mu - 3.0 * sigma, mu + 3.0 * sigma)
        for _ in range(NEWTON_STEPS):
            slope, curvature = slope_curvature(x)
            x = x + jnp.clip(slope / curvature, -1.0, 1.0)
        # the curvature of the last step's start (one pass fewer than re-evaluating it at the final point)
        scale = PROPOSAL_INFLATION / jnp.sqrt(curvature)
        current = z["log_degree_raw"]
        key_normal, key_uniform = jax.random.split(key)
        proposal = (x + relax * (current - x)
                    + np.sqrt(1.0 - relax**2) * scale * jax.random.normal(key_normal, current.shape, dtype=current.dtype))

        def log_proposal(v):
            return -0.5 * ((v - x) / scale) ** 2

        target = log_target(jnp.stack([proposal, current]))
        log_ratio = (target[0] - target[1]) + (log_proposal(current) - log_proposal(proposal))
        accept = jnp.log(jax.random.uniform(key_uniform, current.shape, dtype=current.dtype)) < log_ratio
        return jnp.where(accept, proposal, current)

    def column_terms(rho_raw: Any, hidden_raw: Any, tau_raw: Any, data: dict[str, Any]) -> tuple[Any, Any, Any]:
        """Per group k: the gamma shape a_k, s_k = 1 / r_k and every term of the log density that involves group
        k's own parameters (rho_k, and a hidden group's size or effective size) except the cell sum
        -sum_i (a_k + y_ik) log(1 + d_i s_k) and the count tails sum_j T_kj log(1 + j / a_k) (see
        ``_negative_binomial_total``): their priors and Jacobians and Y_k log p_k. Group k's terms depend on
        group k's parameters only."""
        rho, rest = uniform_interval(rho_raw, data["rho_lo"], data["rho_hi"])
        prob = data["known_prob"]
        if n_hidden:
            log_hi, log_lo = data["log_size_hi"], data["log_size_lo"]
            if transmission:
                log_w = log_hi - jnp.exp(hidden_raw)
                lower = jnp.exp(log_w - log_hi)
                upper = jnp.minimum(1.0, jnp.exp(log_w - log_lo))
                tau = lower + (upper - lower) * sigmoid(tau_raw)
                # the Beta density without its constant (no log-gamma functions to differentiate and compile)
                own = (hidden_raw + (data["tau_a"] - 1.0) * jnp.log(tau) + (data["tau_b"] - 1.0) * jnp.log1p(-tau)
                       + jnp.log(upper - lower))
                reported = jnp.exp(log_w) / data["population"]
            else:
                log_size, own = uniform_interval(hidden_raw, log_lo, log_hi)
                reported = jnp.exp(log_size) / data["population"]
            prob = jnp.zeros(n_groups).at[known_index].set(prob).at[hidden_index].set(reported)
            rest = rest.at[hidden_index].add(own)
        inv_r = rho / (1.0 - rho)
        return prob / inv_r, inv_r, rest + data["col_totals"] * jnp.log(prob)

    def sweep(key: Any, z: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """New values of every global parameter given the log degrees, each block from its exact full
        conditional (the blocks are updated in turn, a Gibbs scan):

        * mu given sigma: Normal(mean of the log degrees, sigma^2 / n), proposed unrestricted and kept only
          inside the prior's interval (an independence Metropolis-Hastings step whose proposal is the
          unrestricted conditional, so it accepts exactly when the draw is inside);
        * sigma given mu: sigma^2 ~ InvGamma((n - 1) / 2, S / 2), S = sum_i (x_i - mu)^2 (a flat prior on sigma
          gives density sigma^-n exp(-S / (2 sigma^2)) in sigma), i.e. S / chi-square(n - 1), kept only inside
          the prior's interval;
        * each group's (rho_k) or hidden group's (rho_k, size parameter), with tau_k held: given the degrees
          the groups' conditionals factorise, so one Metropolis-Hastings move per group, all groups at once, from
          a Laplace approximation (``COLUMN_NEWTON_STEPS`` Newton steps from a start computed from the degrees
          and the data only, never from the group's current value; see ``column_terms``), over-relaxed by
          ``OVERRELAXATION`` and mixed with a wide component (``DEFENSIVE_WEIGHT``, ``DEFENSIVE_SCALE``);
        * a hidden group's tau given its effective size w: tau ~ Beta(a, b) restricted to
          (w / U, min(1, w / L)), by ``TAU_TRIES`` Metropolis-Hastings steps proposing tau uniformly on that
          interval."""
        if "weights" in data:
            raise ConfigError("the Gibbs sweep serves unweighted fits only")
        x = z["log_degree_raw"]
        degree = jnp.exp(x)
        n = x.shape[0]
        keys = jax.random.split(key, 7)
        out = dict(z)
        # ---- mu and sigma
        mu_lo, mu_hi, sigma_lo, sigma_hi = data["mu_lo"], data["mu_hi"], data["sigma_lo"], data["sigma_hi"]
        sigma, _ = uniform_interval(z["sigma"], sigma_lo, sigma_hi)

        def kept_inside(proposed, low, high, current_raw):
            """An independence step whose proposal is the unrestricted conditional: the draw is accepted exactly
            when it falls inside the prior's interval (low, high), and returned on the sampler's logistic scale."""
            inside = (proposed > low) & (proposed < high)
            share = jnp.clip((proposed - low) / (high - low), 1e-300, 1.0)
            return jnp.where(inside, jnp.log(share) - jnp.log1p(-share), current_raw)

        mu_new = jnp.mean(x) + sigma / jnp.sqrt(n) * jax.random.normal(keys[5], (), dtype=x.dtype)
        out["mu"] = kept_inside(mu_new, mu_lo, mu_hi, z["mu"])
        mu, _ = uniform_interval(out["mu"], mu_lo, mu_hi)
        squares = jnp.sum((x - mu) ** 2)
        # Gamma((n - 1) / 2, 1) as half a chi-square with n - 1 degrees of freedom: a sum of squared normals
        # (exact, and it compiles to one reduction instead of a rejection sampler)
        chi_square = jnp.sum(jax.random.normal(keys[0], (n - 1,), dtype=x.dtype) ** 2)
        out["sigma"] = kept_inside(jnp.sqrt(squares / chi_square), sigma_lo, sigma_hi, z["sigma"])
        # ---- every group's own parameters: theta_k = (rho_k raw, size raw; the latter only for hidden groups)
        hidden_name = "log_effective_size_raw" if transmission else "log_size_raw"
        tau_raw = z["tau_raw"] if transmission and n_hidden else None
        has_size = np.zeros(n_groups, dtype=bool)
        has_size[hidden_index] = True
        y_t = data["y"].T  # groups x respondents: sums over respondents run along contiguous memory
        offsets = jnp.arange(data["tail"].shape[-1], dtype=x.dtype)

        def log_target(rho_raw, size_raw):
            """log p(theta_k | rest) up to a constant, per group, for a stack of points (..., groups)."""
            a, s, rest = jax.vmap(lambda r, h: column_terms(r, h, tau_raw, data))(rho_raw, size_raw)
            cells = jnp.sum((a[..., None] + y_t) * jnp.log1p(s[..., None] * degree), axis=-1)
            tails = jnp.sum(data["tail"] * jnp.log1p(offsets / a[..., None]), axis=-1)
            return rest - cells + tails

        def slope_precision(rho_raw, size_raw):
            """Gradient and minus the Hessian of the log conditional of each group's (rho, size) (separable across
            groups, so the Hessian is block diagonal): one pass over the cells gives the derivatives of the
            cell sum C_k(a, s) = sum_i (a + y_ik) log(1 + d_i s) in (a, s) (C_aa = 0); a second-order expansion of
            C_k around the point, composed with the small per-group maps, then has the exact first and second
            derivatives there, taken by automatic differentiation. The count tails' term t_k(a) =
            sum_j T_kj log(1 + j / a) enters the same way, through t' = -sum_j T_kj j / (a (a + j)) and
            t'' = sum_j T_kj j (2 a + j) / (a (a + j))^2."""
            a0, s0, _ = column_terms(rho_raw, size_raw[hidden_index] if n_hidden else None, tau_raw, data)
            t = s0[:, None] * degree[None, :]
            dv = degree[None, :] / (1.0 + t)
            c_a = jnp.sum(jnp.log1p(t), axis=1)
            first = jnp.sum(dv, axis=1)
            first_y = jnp.sum(y_t * dv, axis=1)
            dv2 = dv * dv
            c_s = a0 * first + first_y
            c_as = first
            c_ss = -(a0 * jnp.sum(dv2, axis=1) + jnp.sum(y_t * dv2, axis=1))
            shifted = a0[:, None] * (a0[:, None] + offsets)
            t_a = -jnp.sum(data["tail"] * offsets / shifted, axis=1)
            t_aa = jnp.sum(data["tail"] * offsets * (2.0 * a0[:, None] + offsets) / (shifted * shifted), axis=1)

            def surrogate(theta):
                rho_raw, size_raw = theta
                a, s, rest = column_terms(rho_raw, size_raw[hidden_index] if n_hidden else None, tau_raw, data)
                da, ds = a - a0, s - s0
                return jnp.sum(rest - (c_a * da + c_s * ds + c_as * da * ds + 0.5 * c_ss * ds * ds)
                               + t_a * da + 0.5 * t_aa * da * da)

            ones, zeros = jnp.ones(n_groups), jnp.zeros(n_groups)
            gradient = jax.grad(surrogate)
            slope, along_rho = jax.jvp(gradient, ((rho_raw, size_raw),), ((ones, zeros),))
            _, along_size = jax.jvp(gradient, ((rho_raw, size_raw),), ((zeros, jnp.where(has_size, 1.0, 0.0)),))
            p_rr = -along_rho[0]
            p_rs = jnp.where(has_size, -along_rho[1], 0.0)
            p_ss = jnp.where(has_size, -along_size[1], 1.0)
            # a usable (positive definite) precision; the Metropolis-Hastings ratio keeps the move exact anyway
            p_rr = jnp.maximum(p_rr, 1e-6)
            p_ss = jnp.maximum(p_ss, 1e-6)
            p_rs = jnp.clip(p_rs, -0.99 * jnp.sqrt(p_rr * p_ss), 0.99 * jnp.sqrt(p_rr * p_ss))
            return (slope[0], jnp.where(has_size, slope[1], 0.0)), (p_rr, p_rs, p_ss)

        # start: moments of the counts given the degrees. p_k is known, or Y_k / sum_i d_i for a hidden group;
        # the gamma-Poisson variance d p (1 + d s) gives s_k = sum_i [(y_ik - d_i p_k)^2 - d_i p_k] / sum_i d_i^2 p_k
        prob_start = jnp.zeros(n_groups).at[known_index].set(data["known_prob"])
        if n_hidden:
            prob_start = prob_start.at[hidden_index].set(
                jnp.maximum(data["col_totals"][hidden_index], 0.5) / jnp.sum(degree))
        mean = prob_start[:, None] * degree[None, :]
        s_start = jnp.clip(jnp.sum((y_t - mean) ** 2 - mean, axis=1) / jnp.sum(mean * degree, axis=1), 1e-4, 1e2)
        rho_share = jnp.clip((s_start / (1.0 + s_start) - data["rho_lo"]) / (data["rho_hi"] - data["rho_lo"]),
                             1e-6, 1.0 - 1e-6)
        rho_raw = jnp.log(rho_share) - jnp.log1p(-rho_share)
        size_raw = jnp.zeros(n_groups)
        if n_hidden:
            log_reported = jnp.log(prob_start[hidden_index] * data["population"])
            if transmission:
                start = jnp.log(jnp.maximum(data["log_size_hi"] - log_reported, 1e-3))
            else:
                share = jnp.clip((log_reported - data["log_size_lo"]) / (data["log_size_hi"] - data["log_size_lo"]),
                                 1e-3, 1.0 - 1e-3)
                start = jnp.log(share) - jnp.log1p(-share)
            size_raw = size_raw.at[hidden_index].set(start)
        for _ in range(COLUMN_NEWTON_STEPS):
            (g_r, g_s), (p_rr, p_rs, p_ss) = slope_precision(rho_raw, size_raw)
            det = p_rr * p_ss - p_rs * p_rs
            rho_raw = rho_raw + jnp.clip((p_ss * g_r - p_rs * g_s) / det, -1.0, 1.0)
            size_raw = size_raw + jnp.where(has_size, jnp.clip((p_rr * g_s - p_rs * g_r) / det, -1.0, 1.0), 0.0)
        # proposal: N(mode, PROPOSAL_INFLATION^2 P^-1), P the precision at the last step's start, mixed with
        # weight DEFENSIVE_WEIGHT with the same normal DEFENSIVE_SCALE times wider (a defensive mixture: an
        # independence sampler whose proposal is much lighter-tailed than the target can stick for long at a
        # point far in the tail, such as the starting values; the wide component bounds the target-to-proposal
        # ratio there). Per group the 2 x 2 covariance's Cholesky factor in closed form (a known group's size
        # coordinate is unused)
        det = p_rr * p_ss - p_rs * p_rs
        var_r, cov_rs, var_s = p_ss / det, -p_rs / det, p_rr / det
        l_rr = jnp.sqrt(var_r)
        l_sr = cov_rs / l_rr
        l_ss = jnp.sqrt(jnp.maximum(var_s - l_sr * l_sr, 0.0))
        current_rho = z["rho"]
        current_size = jnp.zeros(n_groups)
        if n_hidden:
            current_size = current_size.at[hidden_index].set(z[hidden_name])
        # over-relaxed around the mode as the degrees' move: each component is reversible with respect to its
        # normal, and the ratio below uses the mixture's transition densities both ways
        wide = jax.random.uniform(keys[6], (n_groups,), dtype=x.dtype) < DEFENSIVE_WEIGHT
        e_r, e_s = (np.sqrt(1.0 - OVERRELAXATION**2) * PROPOSAL_INFLATION * jnp.where(wide, DEFENSIVE_SCALE, 1.0)
                    * jax.random.normal(keys[2], (2, n_groups), dtype=x.dtype))
        new_rho = rho_raw + OVERRELAXATION * (current_rho - rho_raw) + l_rr * e_r
        new_size = jnp.where(has_size, size_raw + OVERRELAXATION * (current_size - size_raw) + l_sr * e_r
                             + l_ss * e_s, 0.0)
        dimension = jnp.where(has_size, 2.0, 1.0)

        def log_transition(r, s, from_r, from_s):
            """log q(r, s | from_r, from_s) up to a constant shared by every pair of points."""
            dr = r - rho_raw - OVERRELAXATION * (from_r - rho_raw)
            ds = jnp.where(has_size, s - size_raw - OVERRELAXATION * (from_s - size_raw), 0.0)
            quadratic = (-0.5 * (p_rr * dr * dr + 2.0 * p_rs * dr * ds + p_ss * ds * ds)
                         / (PROPOSAL_INFLATION**2 * (1.0 - OVERRELAXATION**2)))
            return jnp.logaddexp(np.log1p(-DEFENSIVE_WEIGHT) + quadratic,
                                 np.log(DEFENSIVE_WEIGHT) + quadratic / DEFENSIVE_SCALE**2
                                 - dimension * np.log(DEFENSIVE_SCALE))

        target = log_target(jnp.stack([new_rho, current_rho]),
                            jnp.stack([new_size, current_size])[:, hidden_index] if n_hidden
                            else jnp.zeros((2, 0)))
        log_ratio = (target[0] - target[1]) + (log_transition(current_rho, current_size, new_rho, new_size)
                                               - log_transition(new_rho, new_size, current_rho, current_size))
        accept = jnp.log(jax.random.uniform(keys[3], (n_groups,), dtype=x.dtype)) < log_ratio
        out["rho"] = jnp.where(accept, new_rho, current_rho)
        if n_hidden:
            out[hidden_name] = jnp.where(accept[hidden_index], new_size[hidden_index], z[hidden_name])
        if transmission and n_hidden:
            # ---- tau_k given w_k: the restricted Beta, mapped back to the sampler's logistic coordinate
            log_w = data["log_size_hi"] - jnp.exp(out[hidden_name])
            lower = jnp.exp(log_w - data["log_size_hi"])
            upper = jnp.minimum(1.0, jnp.exp(log_w - data["log_size_lo"]))
            tau_a, tau_b = data["tau_a"], data["tau_b"]

            def log_beta(share):
                tau = lower + (upper - lower) * share
                return (tau_a - 1.0) * jnp.log(tau) + (tau_b - 1.0) * jnp.log1p(-tau)

            share = sigmoid(z["tau_raw"])
            raw = z["tau_raw"]
            shares = jax.random.uniform(keys[4], (TAU_TRIES, n_hidden), dtype=x.dtype, minval=1e-12,
                                        maxval=1.0 - 1e-12)
            thresholds = jnp.log(jax.random.uniform(keys[1], (TAU_TRIES, n_hidden), dtype=x.dtype))
            for proposed, threshold in zip(shares, thresholds, strict=True):
                # each try is one Metropolis-Hastings step proposing tau uniformly on its interval: the ratio
                # is that of the Beta density
                accept = threshold < log_beta(proposed) - log_beta(share)
                share = jnp.where(accept, proposed, share)
                raw = jnp.where(accept, jnp.log(proposed) - jnp.log1p(-proposed), raw)
            out["tau_raw"] = raw
        del out["log_degree_raw"]
        return out

    conditional = None
    if random_degree and barrier and centred and likelihood == "poisson":
        conditional = Conditional("log_degree_raw", degree_update,
                                  gibbs_update=functools.partial(degree_update, relax=OVERRELAXATION_DEGREES))
    # the Gibbs sweep of the globals: exact only for this likelihood without a recall curve (the curve couples
    # every group's probability through one slope)
    gibbs = conditional is not None and not recall
    return Density(shapes=shapes, log_density=log_density, constrain=constrain, conditional=conditional,
                   sweep=sweep if gibbs else None)


@functools.cache
def weighted_cell_log_sum() -> Callable[..., Any]:
    """f(a, s, d, y, w) = sum_ik w_i (a_k + y_ik) log(1 + d_i s_k), s_k = 1 / r_k, w_i the respondent weights
    (ones unless survey-weighted): the only per-cell term of the gamma-Poisson model, with its gradient written
    out (``jax.custom_vjp``).

    Why: XLA on CPU evaluates a logarithm about five times faster inside a single-output reduction (vectorised)
    than in an elementwise loop that stores its result. Differentiated automatically, the logarithm is stored
    once and read by two reductions (the value, and the gradient in a_k), so every step paid the slow path. Here
    the value is one reduction and the gradient recomputes the logarithms in a second one (transposed, so XLA
    does not merge the two), plus one division per cell: a_k: sum_i w_i log(1 + d_i s_k); s_k: sum_i q_ik d_i;
    d_i: sum_k q_ik s_k, with q_ik = w_i (a_k + y_ik) / (1 + d_i s_k). Unlike the logarithm, w is worth storing: as
    one array read by two matrix-vector products the value and gradient cost 0.53-0.70 ms instead of
    0.80-0.96 ms (two fused reductions that each recomputed the division), one core, 3,600 x 19. log1p, not log(r_k + d_i) - log(r_k): see
    ``_negative_binomial_total``. ``y`` and ``w`` are data (no gradient)."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def total(a, s, d, y, w):
        return jnp.sum(w[:, None] * (a + y) * jnp.log1p(d[:, None] * s))

    def forward(a, s, d, y, w):
        return total(a, s, d, y, w), (a, s, d, y, w)

    def backward(saved, g):
        a, s, d, y, w = saved
        log_sum = jnp.sum(w[None, :] * jnp.log1p(s[:, None] * d[None, :]), axis=1)
        q = w[:, None] * (a + y) / (1.0 + d[:, None] * s)  # stored once, read by two matrix-vector products
        return g * log_sum, g * (d @ q), g * (q @ s), None, None

    total.defvjp(forward, backward)
    return total


@functools.cache
def cell_log_sum() -> Callable[..., Any]:
    """:func:`weighted_cell_log_sum` with every weight one, f(a, s, d, y) = sum_ik (a_k + y_ik) log(1 + d_i s_k):
    the unweighted fit's arithmetic, unchanged by the weighted form (same draws at the same seed)."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def total(a, s, d, y):
        return jnp.sum((a + y) * jnp.log1p(d[:, None] * s))

    def forward(a, s, d, y):
        return total(a, s, d, y), (a, s, d, y)

    def backward(saved, g):
        a, s, d, y = saved
        log_sum = jnp.sum(jnp.log1p(s[:, None] * d[None, :]), axis=1)
        w = (a + y) / (1.0 + d[:, None] * s)  # stored once, read by two matrix-vector products
        return g * log_sum, g * (d @ w), g * (w @ s), None

    total.defvjp(forward, backward)
    return total


def log_gamma_shift(x: Any, h: Any, switch: float = 30.0) -> Any:
    """log Gamma(x + h) - log Gamma(x) - h log x, for x > 0 and h >= 0, accurate also when x is huge.

    Evaluated directly for x <= ``switch``; above it from Stirling's series, as
    (x + h - 1/2) log(1 + h/x) - h + c(x + h) - c(x), with c(z) = 1/(12 z) - 1/(360 z^3) + 1/(1260 z^5)
    - 1/(1680 z^7) (the next term is below 1e-16 for z > 30). Measured error (against the finite product, on a
    grid of x from 1e-3 to 1e30): at most 1.4e-15 (1 + h + |value| + x log x), the last term only below the
    switch. The direct difference of two log-gamma values of size x log x loses x log x * 1e-16 to rounding: in
    the beta-binomial at rho = 1e-15 (x = 1e15) the log density was off by 2.6 and its gradient in logit(rho) had
    the wrong sign. This form goes to 0 as x -> inf, the binomial limit."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax.numpy as jnp
    from jax.scipy.special import gammaln

    large = x > switch
    # each branch sees only arguments where it is finite, so the unused one cannot put NaN in the gradient
    small_x = jnp.where(large, switch, x)
    big_x = jnp.where(large, x, 2.0 * switch)

    def tail(z):
        inverse_square = 1.0 / (z * z)
        return (1.0 / z) * (1 / 12 - inverse_square * (1 / 360 - inverse_square * (1 / 1260 - inverse_square / 1680)))

    direct = gammaln(small_x + h) - gammaln(small_x) - h * jnp.log(small_x)
    series = (big_x + h - 0.5) * jnp.log1p(h / big_x) - h + tail(big_x + h) - tail(big_x)
    return jnp.where(large, series, direct)


def count_tails(counts: np.ndarray, width: int | None = None, weights: np.ndarray | None = None) -> np.ndarray:
    """T[k, j] = number of respondents with y_ik > j (their total weight with ``weights``), for
    j = 0 .. width - 1 (default: the largest count)."""
    counts = np.asarray(counts)
    largest = int(counts.max()) if counts.size else 0
    width = max(1, largest if width is None else int(width))
    if width < largest:
        raise ConfigError(f"tail width {width} is below the largest count {largest}")
    levels = np.arange(width)
    # histogram per group, then reverse cumulative sums: #{y > j} = #{y >= j + 1}
    tails = np.zeros((counts.shape[1], width))
    for k in range(counts.shape[1]):
        histogram = np.bincount(counts[:, k].astype(np.int64), weights=weights, minlength=width + 1)
        tails[k] = histogram[::-1].cumsum()[::-1][levels + 1]
    return tails


def stack_arrays(arrays: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Stack the model arrays of several data sets of the same shape (a leading replicate axis) for a batched
    fit, padding the count tails to a common width (extra levels hold zero respondents and add nothing)."""
    width = max(a["tail"].shape[-1] for a in arrays)
    padded = [{**a, "tail": np.pad(a["tail"], ((0, 0), (0, width - a["tail"].shape[-1])))} for a in arrays]
    return {k: np.stack([np.asarray(a[k]) for a in padded]) for k in padded[0]}


def model_arrays(data: BayesData, priors: Priors, *, fixed_degree: np.ndarray | None = None,
                 width: int | None = None, weights: np.ndarray | None = None) -> dict[str, Any]:
    """The arrays the model reads: counts, their row and column totals and count tails (sufficient statistics
    for the Poisson likelihoods), known probabilities, prior bounds.

    ``weights`` (one per respondent, default ones) multiply each respondent's log-likelihood terms and the log
    density of its latent degree: the totals, tails and log-factorial sum are then weighted sums (a survey-weighted
    pseudo-likelihood, :mod:`hiddenpop.nsum.bayes.weighted`). With ones every array equals the unweighted one."""

    hidden = data.hidden_groups
    counts = data.counts
    w = np.ones(len(counts)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(counts),):
        raise ConfigError(f"weights must be {len(counts)} numbers, one per respondent, got shape {w.shape}")
    bounds = np.array([priors.bounds_for(g, data) for g in hidden]).reshape(-1, 2)
    taus = np.array([priors.tau_for(g) for g in hidden]).reshape(-1, 2)
    arrays = {
        "y": counts,
        "ymax": counts.max(axis=1),
        "row_totals": w * counts.sum(axis=1),
        "col_totals": (w[:, None] * counts).sum(axis=0),
        "tail": count_tails(counts, width, None if weights is None else w),
        "log_y_factorial": np.float64((w[:, None] * gammaln(counts + 1.0)).sum()),
        "known_prob": data.known_sizes[data.known_index] / data.population,
        "population": np.float64(data.population),
        "log_size_lo": np.log(bounds[:, 0]),
        "log_size_hi": np.log(bounds[:, 1]),
        "tau_a": taus[:, 0],
        "tau_b": taus[:, 1],
        "mu_lo": np.float64(priors.mu[0]),
        "mu_hi": np.float64(priors.mu[1]),
        "sigma_lo": np.float64(priors.sigma[0]),
        "sigma_hi": np.float64(priors.sigma[1]),
        "rho_lo": np.float64(max(priors.rho[0], 0.0)),
        "rho_hi": np.float64(priors.rho[1]),
    }
    if weights is not None:
        arrays["weights"] = w
    if fixed_degree is not None:
        arrays["fixed_degree"] = np.asarray(fixed_degree, dtype=float)
    return arrays


class MaltielModel:
    """Base class: a configured model; ``fit(...)`` returns :class:`~hiddenpop.results.Estimates`.

    Subclasses set the switches. See the module docstring for the likelihoods and parameterisation.
    """

    name = "maltiel"
    method_label = "Bayesian NSUM"
    random_degree = True
    barrier = False
    transmission = False
    recall = False

    def __init__(self, priors: Priors | None = None, *, likelihood: str = "poisson",
                 parameterisation: str = "auto", recall: str = "none") -> None:
        if likelihood not in LIKELIHOODS:
            raise ConfigError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if parameterisation not in PARAMETERISATIONS:
            raise ConfigError(f"parameterisation must be one of {PARAMETERISATIONS}, got {parameterisation!r}")
        self.priors = (priors or Priors()).validate()
        self.likelihood = likelihood
        self.parameterisation = parameterisation
        self.recall = recall_curve.check(recall, self.name)

    def centred(self, data: BayesData) -> bool:
        """Whether the Poisson models sample log d_i directly (centred) or as mu + sigma z_i (non-centred).

        ``auto`` picks centred when the median respondent reports at least ``CENTRED_MIN_REPORTS`` contacts in
        total (``CENTRED_MIN_REPORTS_BARRIER`` with barrier effects): then the data pin each log degree (posterior
        sd about 1/sqrt(reports)) more tightly than the prior and the centred form mixes best; with fewer reports
        the non-centred form avoids the funnel between sigma and the log degrees. The binomial likelihood always
        uses its own shifted parameterisation."""
        if self.parameterisation != "auto":
            return self.parameterisation == "centred"
        threshold = CENTRED_MIN_REPORTS_BARRIER if self.barrier else CENTRED_MIN_REPORTS
        return float(np.median(data.counts.sum(axis=1))) >= threshold

    def split_sampler(self, data: BayesData, weights: np.ndarray | None = None) -> bool:
        """Whether each log degree is redrawn from its full conditional (the model must offer that update:
        centred Poisson with barriers) while the global parameters are moved by the Gibbs sweep (when the density
        offers one: no recall curve) or else by NUTS.

        Used for unweighted fits of at least ``SPLIT_MIN_RESPONDENTS`` respondents: there it needs half the
        leapfrog steps of the joint sampler at the same ESS; on small surveys sigma mixed worse than under the
        joint sampler."""
        return weights is None and data.n_respondents >= SPLIT_MIN_RESPONDENTS

    # -------------------------------------------------------------- pieces subclasses may change
    def fixed_degree(self, data: BayesData) -> tuple[np.ndarray | None, list[str]]:
        return None, []

    def numpyro_model(self, data: BayesData):
        return build_model(
            data.known_index, data.hidden_index, data.n_respondents, random_degree=self.random_degree, barrier=self.barrier,
            transmission=self.transmission, likelihood=self.likelihood, centred=self.centred(data),
            recall=self.recall,
        )

    def initial_values(self, data: BayesData) -> dict[str, np.ndarray]:
        """Unconstrained starting values near the Killworth estimates (as the NSUM package starts)."""
        values: dict[str, np.ndarray] = {}
        killworth_degree = np.maximum(data.killworth_degrees(), 1.0)
        priors = self.priors
        if self.random_degree:
            logd = np.log(killworth_degree)
            mu = float(np.clip(logd.mean(), priors.mu[0] + 0.05, priors.mu[1] - 0.05))
            sigma = float(np.clip(logd.std(), priors.sigma[0] + 0.05, priors.sigma[1] - 0.05))
            values["mu"] = logit((mu - priors.mu[0]) / (priors.mu[1] - priors.mu[0]))
            values["sigma"] = logit((sigma - priors.sigma[0]) / (priors.sigma[1] - priors.sigma[0]))
            if self.likelihood == "poisson" and self.centred(data):
                values["log_degree_raw"] = logd
            elif self.likelihood == "poisson":
                values["log_degree_raw"] = (logd - mu) / sigma
            else:
                values["log_degree_raw"] = np.log(np.maximum(killworth_degree - data.counts.max(axis=1), 0.5))
        if len(data.hidden_index):
            sizes = data.killworth_sizes()[data.hidden_index]
            bounds = np.array([priors.bounds_for(g, data) for g in data.hidden_groups])
            sizes = np.clip(sizes, bounds[:, 0] * 1.01, bounds[:, 1] * 0.99)
            if self.transmission:
                values["log_effective_size_raw"] = np.log(np.log(bounds[:, 1]) - np.log(sizes * 0.5))
                values["tau_raw"] = np.zeros(len(sizes))
            else:
                frac = (np.log(sizes) - np.log(bounds[:, 0])) / (np.log(bounds[:, 1]) - np.log(bounds[:, 0]))
                values["log_size_raw"] = logit(frac)
        if self.barrier:
            values["rho"] = np.full(len(data.groups), logit((0.1 - priors.rho[0]) / (priors.rho[1] - priors.rho[0])))
        if self.recall:
            values.update(recall_curve.initial_values())
        return values

    # -------------------------------------------------------------- fitting
    def fit(
        self,
        data: Any,
        known_sizes: Mapping[str, float] | None = None,
        population: float | None = None,
        *,
        hidden: Sequence[str] | None = None,
        groups: Sequence[str] | None = None,
        chains: int = 4,
        warmup: int = 1000,
        draws: int = 1000,
        seed: int = 0,
        target_accept: float = 0.8,
        max_tree_depth: int = 10,
        warmup_max_tree_depth: int | None = None,
        sums: Mapping[str, Sequence[str]] | None = None,
        ratios: Mapping[str, tuple[str, str]] | None = None,
        ppc_draws: int = 200,
        min_ess: float | None = None,
        quiet: bool = True,
        topcode: int | None = None,
        visibility: Adjustments | None = None,
        weights: np.ndarray | None = None,
        post_process: Callable[[BayesData, Draws, np.ndarray | None], dict[str, Any]] | None = None,
        keep_globals: bool = False,
    ) -> Estimates:
        """Fit by NUTS and return :class:`Estimates` (estimate = posterior median, lower/upper = 2.5/97.5%).

        ``data`` is :class:`BayesData`, an ``ARD`` object, or a counts matrix/DataFrame with ``known_sizes``
        (group -> N_k) and ``population`` (N). ``sums`` adds posterior sums of hidden groups (name -> groups);
        ``ratios`` adds posterior ratios (name -> (numerator, denominator)), where each side is a hidden group
        or a sum, e.g. ``{"victims_per_trafficker": ("victims", "traffickers")}``. ``topcode`` is the value the
        known-group answers were top-coded at (an ARD carries its own); the predictive checks top-code their
        replicates the same way. ``visibility`` divides the posterior sizes by draws of its factors, one draw per
        posterior draw shared by the groups a factor covers (a model with its own transmission rate takes that
        factor from its tau prior instead; see :mod:`hiddenpop.nsum.adjust`).

        ``weights`` (one per respondent) multiply each respondent's log-likelihood terms (a pseudo-likelihood);
        ``post_process(data, draws, fixed_degree)`` may then replace draws before the summary and returns
        ``notes``, ``warnings``, ``tables`` and ``settings`` to add; ``keep_globals`` keeps the global parameters'
        unconstrained draws for it. :func:`hiddenpop.nsum.bayes.weighted.fit_weighted` uses the three.
        """
        data = coerce_data(data, known_sizes, population, hidden, groups)
        if topcode is not None:
            data = replace(data, topcode=topcode)
        fixed, notes = self.fixed_degree(data)
        arrays = model_arrays(data, self.priors, fixed_degree=fixed, weights=weights)
        density = self.numpyro_model(data)
        if self.recall:
            arrays.update(recall_curve.arrays(data.known_sizes[data.known_index], data.population))
        keep = tuple(n for n in density.shapes if n not in LATENT_PARAMETERS) if keep_globals else ()
        split = self.split_sampler(data, weights)
        if split and density.sweep is not None:
            draws_obj = sample_gibbs(
                density, arrays, chains=chains, warmup=warmup, draws=draws, seed=seed,
                init_values=self.initial_values(data), quiet=quiet, description=f"{self.name} model", keep=keep,
            )
        else:
            draws_obj = sample_nuts(
                density, arrays, chains=chains, warmup=warmup, draws=draws, seed=seed,
                target_accept=target_accept, max_tree_depth=max_tree_depth,
                warmup_max_tree_depth=warmup_max_tree_depth, init_values=self.initial_values(data), quiet=quiet,
                description=f"{self.name} model", conditional=density.conditional if split else None, keep=keep,
            )
        extra = {} if post_process is None else post_process(data, draws_obj, fixed)
        result = self.summarise(data, draws_obj, fixed_degree=fixed, notes=notes + extra.get("notes", []),
                                sums=sums, ratios=ratios, ppc_draws=ppc_draws, min_ess=min_ess, seed=seed,
                                visibility=visibility)
        result.warnings += extra.get("warnings", [])
        result.tables.update(extra.get("tables", {}))
        result.settings.update(extra.get("settings", {}))
        return result

    def settings(self) -> dict[str, Any]:
        return {
            "model": self.name, "likelihood": self.likelihood, "recall": "loglinear" if self.recall else "none",
            "priors": {
                "mu_uniform": list(self.priors.mu), "sigma_uniform": list(self.priors.sigma),
                "rho_uniform": list(self.priors.rho),
                "tau_beta": (dict(self.priors.tau) if isinstance(self.priors.tau, Mapping) else list(self.priors.tau)),
                "size": "p(N_k) proportional to 1/N_k on bounds",
            },
        }

    def add_sizes(self, data: BayesData, draws: Draws) -> None:
        """Hook for models whose hidden sizes are derived after sampling (the overdispersed model)."""

    def parameter_rows(self, data: BayesData, samples: dict[str, np.ndarray], method: str) -> list[dict[str, Any]]:
        """Rows for the model's parameters (tau, rho, mu, sigma, implied mean degree)."""
        rows = []
        if "tau" in samples:
            for j, group in enumerate(data.hidden_groups):
                rows.append(quantity_row(f"tau[{group}]", method, samples["tau"][..., j], parameter="tau"))
        if "rho" in samples:
            for k, group in enumerate(data.groups):
                rows.append(quantity_row(f"rho[{group}]", method, samples["rho"][..., k], parameter="rho"))
        if "recall_slope" in samples:
            rows.append(quantity_row("recall_slope", method, samples["recall_slope"], parameter="recall_slope"))
        if "mu" in samples:
            rows.append(quantity_row("mu", method, samples["mu"], parameter="mu"))
            rows.append(quantity_row("sigma", method, samples["sigma"], parameter="sigma"))
            mean_degree = np.exp(samples["mu"] + samples["sigma"] ** 2 / 2)
            rows.append(quantity_row("mean_degree", method, mean_degree, parameter="mean_degree"))
        return rows

    def parameter_draws(self, data: BayesData, draws: Draws) -> dict[str, np.ndarray]:
        """The posterior arrays (chains, draws, ...) kept in InferenceData and gated."""
        keep = {}
        for name in ("mu", "sigma", "size", "tau", "rho", "recall_slope", "degree"):
            if name in draws.samples:
                keep[name] = draws.samples[name]
        return keep

    def adjusted_sizes(self, sizes: np.ndarray, hidden: Sequence[str], visibility: Adjustments | None, seed: int,
                       notes: list[str]) -> dict[str, np.ndarray]:
        """Posterior size draws of each hidden group divided by the visibility factors the model does not hold.

        The survey informs only delta tau phi N; a factor outside the model is independent of the data a priori,
        so dividing each posterior draw by a draw of the factor samples the posterior under it as a prior. The
        size prior p(N) ~ 1/N is scale-free, so the division leaves it unchanged (up to its bounds)."""
        by_group = {group: sizes[..., j] for j, group in enumerate(hidden)}
        if visibility is None or not hidden:
            return by_group
        chains, per_chain = sizes.shape[:2]
        held = {"transmission_rate": 1.0} if self.transmission else None
        multipliers = visibility.multipliers(hidden, chains * per_chain, seed, fixed=held)
        if all(np.all(values == 1.0) for values in multipliers.values()):
            return by_group
        notes.append("sizes divided by the declared visibility factors, one draw of each factor per posterior "
                     "draw, shared by the groups it covers")
        return {group: by_group[group] * multipliers[group].reshape(chains, per_chain) for group in hidden}

    def summarise(
        self,
        data: BayesData,
        draws: Draws,
        *,
        fixed_degree: np.ndarray | None,
        notes: list[str],
        sums: Mapping[str, Sequence[str]] | None,
        ratios: Mapping[str, tuple[str, str]] | None,
        ppc_draws: int,
        min_ess: float | None,
        seed: int,
        visibility: Adjustments | None = None,
    ) -> Estimates:
        self.add_sizes(data, draws)
        samples = draws.samples
        hidden = data.hidden_groups
        method = f"{self.method_label} ({self.name}, {self.likelihood})"
        rows = []
        size_by_group = self.adjusted_sizes(samples["size"], hidden, visibility, seed, notes)
        for group in hidden:
            rows.append(quantity_row(group, method, size_by_group[group], parameter="size"))
        rows += derived_rows(size_by_group, method, sums, ratios)
        rows += self.parameter_rows(data, samples, method)
        posterior = self.parameter_draws(data, draws)
        diagnostics, warnings = convergence(
            posterior, diverging=draws.diverging, energy=draws.energy, num_steps=draws.num_steps,
            max_tree_depth=draws.settings.get("max_tree_depth"), min_ess=min_ess,
        )
        tables: dict[str, pd.DataFrame] = {}
        if ppc_draws > 0:
            caps = None if data.topcode is None else np.where(data.known, float(data.topcode), np.inf)
            ppc, rootogram = predictive_checks(
                data.counts, data.groups, self.predictive_simulator(data, draws, fixed_degree, ppc_draws),
                replicates=ppc_draws, seed=seed, caps=caps,
            )
            tables["ppc"] = ppc
            tables["rootogram"] = rootogram
            warnings += ppc_warnings(ppc)
        degree = samples.get("degree")
        if degree is not None:
            # one partition of each respondent's draws for all three (three calls took 1 s at Study 2's size)
            lower, median, upper = np.quantile(degree.reshape(-1, degree.shape[-1]), [0.025, 0.5, 0.975], axis=0)
            tables["degrees"] = pd.DataFrame({
                "respondent": np.arange(1, data.n_respondents + 1), "estimate": median, "lower": lower,
                "upper": upper,
            })
        if self.transmission:
            notes.append(
                "transmission rates are identified only through their prior: the data inform the effective "
                "size tau_k * N_k, so each size's posterior is the effective size divided by the tau prior"
            )
        table = pd.DataFrame(rows)
        table["passed_gates"] = diagnostics["passed"]
        return Estimates(
            table=table,
            settings={**self.settings(), **draws.settings, "population": data.population,
                      "known_groups": list(data.known_groups), "hidden_groups": list(hidden)},
            seed=draws.settings["seed"],
            warnings=warnings,
            diagnostics=diagnostics,
            notes=notes,
            tables=tables,
            # InferenceData (arviz import + a 3,600-respondent posterior: seconds) is built on first read
            extras=LazyExtras({"draws": draws}).lazy("idata", lambda: to_inference_data(posterior, draws, data)),
        )

    def predictive_simulator(self, data: BayesData, draws: Draws, fixed_degree: np.ndarray | None, count: int):
        samples = draws.samples
        shape = (data.n_respondents, len(data.groups))

        def simulate(rng: np.random.Generator) -> np.ndarray:
            total = draws.diverging.size
            pick = rng.choice(total, size=min(count, total), replace=False)
            if fixed_degree is None:
                degree = samples["degree"].reshape(total, -1)[pick]
            else:
                degree = np.broadcast_to(fixed_degree, (len(pick), data.n_respondents))
            prob = np.empty((len(pick), len(data.groups)))
            prob[:, data.known_index] = data.known_sizes[data.known_index] / data.population
            if len(data.hidden_index):
                size = samples["size"].reshape(total, -1)[pick]
                tau = samples["tau"].reshape(total, -1)[pick] if "tau" in samples else 1.0
                prob[:, data.hidden_index] = tau * size / data.population
            if "recall_slope" in samples:
                centre = np.mean(np.log(data.known_sizes[data.known_index] / data.population))
                prob *= recall_curve.multiplier(prob, samples["recall_slope"].reshape(total)[pick], centre)
            prob = prob[:, None, :]
            d = degree[:, :, None]
            r = 1.0 / samples["rho"].reshape(total, -1)[pick][:, None, :] - 1.0 if "rho" in samples else None
            binomial = self.likelihood == "binomial"

            def block(generator: np.random.Generator, rows: np.ndarray) -> np.ndarray:
                # each respondent's probability per group (Beta or Gamma around p with barriers), then the count
                p, size = prob[rows], (len(rows), *shape)
                if r is None:
                    q = np.broadcast_to(p, size)
                elif binomial:
                    q = generator.beta(p * r[rows], (1 - p) * r[rows], size=size)
                else:
                    # the draws of gamma(shape, scale), which is scale * standard_gamma(shape): the one-parameter
                    # call broadcasts in half the time
                    q = generator.standard_gamma(p * r[rows], size=size)
                    q *= 1.0 / r[rows]
                if binomial:
                    return generator.binomial(np.round(d[rows]).astype(np.int64), q)
                return generator.poisson(d[rows] * q)

            return simulate_in_blocks(rng, len(pick), block)

        return simulate


def derived_rows(
    size_by_group: dict[str, np.ndarray],
    method: str,
    sums: Mapping[str, Sequence[str]] | None,
    ratios: Mapping[str, tuple[str, str]] | None,
) -> list[dict[str, Any]]:
    """Posterior sums of hidden groups and ratios between groups or sums, evaluated draw by draw."""
    available = dict(size_by_group)
    rows = []
    for name, members in (sums or {}).items():
        missing = [m for m in members if m not in available]
        if missing:
            raise ConfigError(f"sum {name!r} names groups without a posterior size: {missing}")
        values = sum(available[m] for m in members)
        available[name] = values
        rows.append(quantity_row(name, method, values, parameter="sum", members="+".join(members)))
    for name, (numerator, denominator) in (ratios or {}).items():
        for side in (numerator, denominator):
            if side not in available:
                raise ConfigError(f"ratio {name!r} refers to {side!r}, which is neither a hidden group nor a sum")
        values = available[numerator] / available[denominator]
        rows.append(quantity_row(name, method, values, parameter="ratio", members=f"{numerator}/{denominator}"))
    return rows


def to_inference_data(posterior: dict[str, np.ndarray], draws: Draws, data: BayesData):
    """ArviZ InferenceData with named dimensions (respondent, group, hidden_group)."""
    # ArviZ is loaded only when this runs: importing it costs start-up time
    import arviz as az

    dims, coords = {}, {
        "respondent": np.arange(1, data.n_respondents + 1),
        "group": list(data.groups),
        "hidden_group": list(data.hidden_groups),
    }
    for name, values in posterior.items():
        if values.ndim == 3:
            width = values.shape[2]
            if name == "degree":
                dims[name] = ["respondent"]
            elif width == len(data.groups) and name in ("rho", "omega", "bias_sd"):
                dims[name] = ["group"]
            elif width == len(data.hidden_groups) and name in ("size", "tau", "effective_size"):
                # by name: another model's parameter (a covariate effect) may happen to have this width too
                dims[name] = ["hidden_group"]
    return az.from_dict(
        posterior=posterior,
        sample_stats={name: values for name, values in
                      (("diverging", draws.diverging), ("energy", draws.energy), ("n_steps", draws.num_steps))
                      if values is not None},
        observed_data={"counts": data.counts},
        coords={**coords, "count_group": list(data.groups)},
        dims={**dims, "counts": ["respondent", "count_group"]},
    )


def logit(p: Any) -> Any:
    """log(p / (1 - p)), with p clipped to [1e-6, 1 - 1e-6] so that 0 and 1 give finite starting values."""
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def check_positive_int(value: int, name: str) -> int:
    if not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


__all__ = [
    "LIKELIHOODS", "MaltielModel", "build_model", "count_tails", "derived_rows", "model_arrays", "stack_arrays",
    "to_inference_data",
]

