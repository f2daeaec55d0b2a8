"""Correlated and uncorrelated scale-up models with covariates (Laga, Bao & Niu 2023, JASA).

Laga et al.'s model, for respondent i and group k::

    y_ik ~ Poisson(lambda_ik b_ik)
    log lambda_ik = rho_k + sigma_delta delta_i [+ alpha_k x_ik] [+ z_subpop,i . beta_subpop[., k]]
                    [+ z_global,i . beta_global]
    b_ik = exp(mu_k + tau_k e_ik),  tau_k = sqrt(log(1 + tau_N,k^2)),  mu_k = -tau_k^2 / 2
           (so E b_ik = 1 and SD b_ik = tau_N,k)
    correlated:   e_i ~ N(0, Omega)
    uncorrelated: e_ik ~ N(0, 1) independently

The counts see the respondent effects only through their sum u_ik = sigma_delta delta_i + tau_k e_ik, whose
covariance Sigma = sigma_delta^2 11' + D Omega D (D = diag tau) has K (K + 1) / 2 entries. The uncorrelated model
(K + 1 parameters) is identified for K >= 3 and is fitted in that form. The correlated model's (sigma_delta, tau,
Omega) has one parameter more than Sigma, so it is fitted in its identified form::

    log E[y_ik | u_i] = rho_k + u_ik - (Sigma_kk - sigma_delta^2) / 2 [+ covariate terms],
    u_i ~ N(0, Sigma),  Sigma = S R S,  S_k ~ half-Cauchy(0, 2.5),  R ~ LKJ(2)

and sigma_delta, tau_N and Omega are reported by a convention (:func:`decompose`): the degree part of u_i is its
mean over all K groups, the bias part the deviation from it. The mean correction keeps what E b = 1 does in Laga et
al.'s model: a respondent's expected count about group k averages, over respondents, to exp(rho_k + sigma_delta^2 / 2)
for every k (the mean degree times the group's prevalence, up to the scaling), so rho_k keeps its meaning, and the
sizes depend on Sigma and rho only, not on the convention. The all-groups mean is used (rather than
the known groups') so that the split does not change when a group is declared known or hidden, and it is never
degenerate (with one known group the known-group mean would leave that group no bias).

Priors otherwise as the R package networkscaleup's Stan programs: delta_i ~ N(0, 1); sigma_delta, tau_N,k ~
half-Cauchy(0, 2.5) (uncorrelated model); rho_k ~ N(mu_rho, sigma_rho) with flat priors on mu_rho and
sigma_rho > 0 without covariates, and mu_rho ~ N(0, 10), sigma_rho ~ half-Cauchy(0, 2.5) with covariates;
alpha_k, beta ~ N(0, 10).

b_ik is respondent i's reporting bias about group k (barrier effects, transmission error, recall); its correlation
across groups Omega says which groups are misreported together, relative to the respondent's average over groups.
rho_k and the log degrees are identified only up to a common shift, fixed after sampling, draw by draw ("scaling"):

* ``all``: C = log(mean_{j known} exp(rho_j) / p_j), p_j = N_j / N; size_k = N exp(rho_k - C) and
  degree_i = exp(log degree_i + C) (log degree_i = sigma_delta delta_i, or the mean of u_i over groups).
* ``weighted``: group k gets its own constant C_k = log(mean_j w_kj exp(rho_j) / p_j) over the known groups j != k,
  with w_kj = max(posterior-mean Omega_kj, 0) rescaled to average 1: known groups whose reports move with group k
  lend it their scale. When no known group is positively correlated with k the weights are undefined (the R package
  returns NaN); here group k then falls back to equal weights (the ``all`` constant) and the fit says so in its notes.
  Degrees use the ``all`` constant.

Covariates are standardised (mean 0, sd 1 over the respondents) before fitting, as the package's vignette does with
``scale()``, so alpha_k and beta are effects per standard deviation and rho_k stays the log prevalence at average
covariates, which the scaling reads.

Reference: Laga, Bao & Niu (2023), "A correlated network scale-up model: finding the connection between subpopulations",
JASA; R package networkscaleup (``correlatedStan``, ``scaling``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from hiddenpop.errors import ConfigError, DataError
from hiddenpop.mcmc.nuts import Density, Draws, quantity_row, sample_nuts
from hiddenpop.nsum.adjust import Adjustments
from hiddenpop.nsum.bayes.common import BayesData, Priors, coerce_data
from hiddenpop.nsum.bayes.diagnostics import simulate_in_blocks
from hiddenpop.nsum.bayes.maltiel import CENTRED_MIN_REPORTS, MaltielModel
from hiddenpop.nsum.covariates import SCALINGS, parse_x_columns
from hiddenpop.results import Estimates

#: scale of the half-Cauchy priors and sd of the normal priors of the package's Stan programs
HALF_CAUCHY_SCALE = 2.5
NORMAL_SD = 10.0
LKJ_ETA = 2.0

__all__ = ["SCALINGS", "CorrelatedModel", "Covariates", "UncorrelatedModel", "build_covariates", "build_laga",
           "corr_cholesky", "lkj_cholesky_log_density", "scaling_constants"]


# ------------------------------------------------------------------------------------------------ LKJ pieces
def corr_cholesky(y: Any, dim: int) -> tuple[Any, Any]:
    """Unconstrained y (dim (dim - 1) / 2 values) -> Cholesky factor L of a correlation matrix, and log |dL/dy|.

    Stan's map: canonical partial correlations z = tanh(y) fill the rows of L below the diagonal in row-major order,
    L_ij = z_ij sqrt(1 - sum_{m<j} L_im^2), L_ii = sqrt(1 - sum_{m<i} L_im^2), so every row has unit length. The
    remaining length of a row shrinks by (1 - z^2) at each entry, so it is carried as a product (no cancellation in
    1 - sum of squares). The Jacobian is triangular: prod (1 - z^2) from tanh times prod sqrt(remaining) before
    each entry.
    """
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax.numpy as jnp
    from jax.nn import softplus

    z = jnp.tanh(y)
    # log(1 - tanh(y)^2) = 2 (log 2 - |y| - softplus(-2 |y|)), finite for any y
    log_one_minus_z2 = 2.0 * (jnp.log(2.0) - jnp.abs(y) - softplus(-2.0 * jnp.abs(y)))
    log_jacobian = jnp.sum(log_one_minus_z2)
    rows = [jnp.zeros(dim).at[0].set(1.0)]
    index = 0
    for i in range(1, dim):
        log_remaining = 0.0
        entries = []
        for _ in range(i):
            entries.append(z[index] * jnp.exp(0.5 * log_remaining))
            log_jacobian = log_jacobian + 0.5 * log_remaining
            log_remaining = log_remaining + log_one_minus_z2[index]
            index += 1
        entries.append(jnp.exp(0.5 * log_remaining))
        rows.append(jnp.concatenate([jnp.stack(entries), jnp.zeros(dim - i - 1)]))
    return jnp.stack(rows), log_jacobian


def lkj_cholesky_log_density(chol: Any, eta: float) -> Any:
    """log LKJ-Cholesky(eta) density of L up to its normalising constant: sum_{i=2..K} (K - i + 2 eta - 2) log L_ii
    (1-based i; the density of L with respect to its strictly lower-triangular entries)."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax.numpy as jnp

    dim = chol.shape[-1]
    exponents = dim - np.arange(2, dim + 1) + 2.0 * eta - 2.0
    return jnp.sum(exponents * jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)[..., 1:]), axis=-1)


# ------------------------------------------------------------------------------------------------ covariates
@dataclass(frozen=True)
class Covariates:
    """Standardised covariates aligned with the respondents: ``x`` (n x K, zero for groups without one),
    ``x_groups`` (the groups that have one), ``z_global`` (n x p_g) and ``z_subpop`` (n x p_s) with their names."""

    x: np.ndarray
    x_groups: tuple[str, ...]
    z_global: np.ndarray
    z_global_names: tuple[str, ...]
    z_subpop: np.ndarray
    z_subpop_names: tuple[str, ...]

    @property
    def any(self) -> bool:
        return bool(self.x_groups or self.z_global_names or self.z_subpop_names)


def _standardise(values: np.ndarray, name: str) -> np.ndarray:
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    if not sd > 0:
        raise DataError(f"covariate column {name!r} takes one value for every respondent; it cannot be standardised "
                        "and carries no information: leave it out")
    return (values - values.mean()) / sd


def build_covariates(data: BayesData, frame: pd.DataFrame | None, x: Mapping[str, str],
                     z_global: Sequence[str], z_subpop: Sequence[str]) -> Covariates:
    """The standardised covariate arrays for ``data`` from ``frame`` (one row per respondent, same order)."""
    n, groups = data.n_respondents, data.groups
    if (x or z_global or z_subpop) and frame is None:
        raise ConfigError("covariates were named (x_columns / z_global / z_subpop) but no covariate table was given")
    if frame is not None and len(frame) != n:
        raise ConfigError(f"the covariate table has {len(frame)} rows for {n} respondents; they must align")
    unknown = [g for g in x if g not in groups]
    if unknown:
        raise ConfigError(f"x_columns names {unknown[0]!r}, which is not a group of this model (groups: "
                          f"{', '.join(groups)})")
    overlap = set(z_global) & set(z_subpop)
    if overlap:
        raise ConfigError(f"column {sorted(overlap)[0]!r} is in both z_global and z_subpop; use it in one")
    x_matrix = np.zeros((n, len(groups)))
    x_groups = tuple(g for g in groups if g in x)
    for group in x_groups:
        x_matrix[:, groups.index(group)] = _standardise(frame[x[group]].to_numpy(float), x[group])

    def block(names: Sequence[str]) -> np.ndarray:
        if not names:
            return np.zeros((n, 0))
        return np.column_stack([_standardise(frame[c].to_numpy(float), c) for c in names])

    return Covariates(x_matrix, x_groups, block(z_global), tuple(z_global), block(z_subpop), tuple(z_subpop))


# ------------------------------------------------------------------------------------------------ density
def decompose(cov: Any, xp: Any = np) -> dict[str, Any]:
    """The convention that splits the identified covariance Sigma of a respondent's log rates into a degree part and
    bias parts: the degree part is the respondent's average log-rate effect over all K groups, d_i = mean_k u_ik, and
    the bias part is the deviation e_ik = u_ik - d_i. With P = I - 11'/K: sigma_delta^2 = 1'Sigma 1 / K^2, the
    log-scale bias covariance B = P Sigma P, tau_k^2 = B_kk, tau_N,k = sqrt(exp(tau_k^2) - 1) and
    Omega = B / sqrt(diag B diag B'). Every output is a function of Sigma, so it converges with it. ``cov`` has shape
    (..., K, K); ``xp`` is numpy or jax.numpy."""
    dim = cov.shape[-1]
    projector = np.eye(dim) - np.full((dim, dim), 1.0 / dim)
    bias_cov = projector @ cov @ projector
    tau2 = xp.diagonal(bias_cov, axis1=-2, axis2=-1)
    scale = xp.sqrt(tau2)
    return {"sigma_delta": xp.sqrt(xp.mean(cov, axis=(-2, -1))), "bias_sd": xp.sqrt(xp.expm1(tau2)),
            "corr": bias_cov / (scale[..., :, None] * scale[..., None, :])}


def degree_weights(n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(w, Q): the weights of the degree part d_i = w'u_i (1/K each) and an orthonormal basis Q ((K - 1) x K) of the
    vectors orthogonal to them."""
    weights = np.full(n_groups, 1.0 / n_groups)
    _, vectors = np.linalg.eigh(np.eye(n_groups) - np.full((n_groups, n_groups), 1.0 / n_groups))
    return weights, vectors[:, 1:].T


def build_laga(n_respondents: int, n_groups: int, *, correlated: bool, x_index: Sequence[int], n_global: int,
               n_subpop: int, centred: bool = True) -> Density:
    """The log posterior on the unconstrained scale; positive scales on the log scale with their Jacobians.

    Correlated (K > 1): the respondent effects u_i ~ N(0, Sigma), Sigma = S R S, L_R through :func:`corr_cholesky`.
    With ``centred`` (each respondent's reports pin their degree) the degree part d_i = w'u_i ~ N(0, w'Sigma w) is
    sampled directly and the rest non-centred: u_i = Sigma w d_i / (w'Sigma w) + Q' L_C z_i, z_i ~ N(0, I_{K-1}),
    L_C the Cholesky factor of Q (Sigma - Sigma w w'Sigma / w'Sigma w) Q' (the conditional covariance of u_i given
    d_i, which is zero along w); otherwise u_i = S L_R z_i with z_ik ~ N(0, 1).
    Uncorrelated: eps is non-centred (one count informs each value); the log degree sigma_delta delta_i is sampled
    directly (``centred``, when each respondent's reports pin it) or as delta_i (otherwise)."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax.numpy as jnp
    from jax.scipy.stats import norm

    x_index = np.asarray(x_index, dtype=int)
    covariate_priors = bool(len(x_index) or n_global or n_subpop)
    identified = correlated and n_groups > 1
    shapes: dict[str, tuple[int, ...]] = {"rho": (n_groups,), "mu_rho": (), "log_sigma_rho": ()}
    if identified:
        shapes.update({"log_scale": (n_groups,), "corr_raw": (n_groups * (n_groups - 1) // 2,)})
        if centred:
            shapes.update({"degree_part": (n_respondents,), "z": (n_respondents, n_groups - 1)})
        else:
            shapes["u"] = (n_respondents, n_groups)
        weights, complement = degree_weights(n_groups)
    else:
        shapes.update({"delta": (n_respondents,), "log_sigma_delta": (), "log_bias_sd": (n_groups,),
                       "eps": (n_respondents, n_groups)})
    if len(x_index):
        shapes["alpha"] = (len(x_index),)
    if n_global:
        shapes["beta_global"] = (n_global,)
    if n_subpop:
        shapes["beta_subpop"] = (n_subpop, n_groups)

    def log_half_cauchy(log_value: Any) -> Any:
        # half-Cauchy(0, s) density of exp(u) times the Jacobian exp(u)
        value = jnp.exp(log_value)
        scale = HALF_CAUCHY_SCALE
        return jnp.log(2.0 / (np.pi * scale)) - jnp.log1p((value / scale) ** 2) + log_value

    def respondent_effects(z: dict[str, Any], out: dict[str, Any]) -> tuple[Any, Any]:
        """(log rate effects u (n x K) with the mean correction, log prior of their parameters)."""
        if identified:
            scale = jnp.exp(z["log_scale"])
            chol, log_jacobian = corr_cholesky(z["corr_raw"], n_groups)
            logp = jnp.sum(log_half_cauchy(z["log_scale"])) + lkj_cholesky_log_density(chol, LKJ_ETA) + log_jacobian
            chol_cov = scale[:, None] * chol  # Sigma = (S L)(S L)'
            cov = chol_cov @ chol_cov.T
            if centred:
                # degree part d_i = w'u_i ~ N(0, w'Sigma w) sampled directly; the rest given d_i non-centred
                sigma_w = cov @ weights
                degree_var = weights @ sigma_w
                loading = sigma_w / degree_var
                rest = complement @ (cov - jnp.outer(sigma_w, sigma_w) / degree_var) @ complement.T
                u = z["degree_part"][:, None] * loading[None, :] + z["z"] @ (complement.T @ jnp.linalg.cholesky(rest)).T
                logp += jnp.sum(norm.logpdf(z["degree_part"], 0.0, jnp.sqrt(degree_var))) + jnp.sum(norm.logpdf(z["z"]))
            else:
                u = z["u"] @ chol_cov.T
                logp += jnp.sum(norm.logpdf(z["u"]))
            out.update(decompose(cov, jnp))
            out["cov"] = cov
            out["log_degree_raw"] = jnp.mean(u, axis=1)
            # E exp(u_ik - (Sigma_kk - sigma_delta^2) / 2) = exp(sigma_delta^2 / 2) for every k: rho_k keeps the
            # meaning it has in the uncorrelated form (log mean rate minus the degree's log-normal term)
            correction = 0.5 * (jnp.diagonal(cov) - out["sigma_delta"] ** 2)
            return u - correction[None, :], logp
        sigma_delta = jnp.exp(z["log_sigma_delta"])
        bias_sd = jnp.exp(z["log_bias_sd"])
        logp = log_half_cauchy(z["log_sigma_delta"]) + jnp.sum(log_half_cauchy(z["log_bias_sd"]))
        logp += jnp.sum(norm.logpdf(z["eps"]))
        if centred:
            # log degree_i = sigma_delta delta_i ~ N(0, sigma_delta), sampled directly
            log_degree = z["delta"]
            logp += jnp.sum(norm.logpdf(log_degree, 0.0, sigma_delta))
        else:
            log_degree = sigma_delta * z["delta"]
            logp += jnp.sum(norm.logpdf(z["delta"]))
        out.update({"sigma_delta": sigma_delta, "bias_sd": bias_sd, "log_degree_raw": log_degree})
        tau2 = jnp.log1p(bias_sd**2)
        bias = -0.5 * tau2[None, :] + jnp.sqrt(tau2)[None, :] * z["eps"]
        return log_degree[:, None] + bias, logp

    def unpack(z: dict[str, Any], data: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        sigma_rho = jnp.exp(z["log_sigma_rho"])
        out: dict[str, Any] = {"rho": z["rho"], "mu_rho": z["mu_rho"], "sigma_rho": sigma_rho}
        effects, logp = respondent_effects(z, out)
        if covariate_priors:
            logp += norm.logpdf(z["mu_rho"], 0.0, NORMAL_SD) + log_half_cauchy(z["log_sigma_rho"])
        else:
            logp += z["log_sigma_rho"]  # flat on sigma_rho > 0: Jacobian only; flat on mu_rho
        logp += jnp.sum(norm.logpdf(z["rho"], z["mu_rho"], sigma_rho))
        log_mean = z["rho"][None, :] + effects
        if "alpha" in shapes:
            logp += jnp.sum(norm.logpdf(z["alpha"], 0.0, NORMAL_SD))
            alpha = jnp.zeros(n_groups).at[x_index].set(z["alpha"])
            log_mean = log_mean + alpha[None, :] * data["x"]
            out["alpha"] = z["alpha"]
        if n_global:
            logp += jnp.sum(norm.logpdf(z["beta_global"], 0.0, NORMAL_SD))
            log_mean = log_mean + (data["z_global"] @ z["beta_global"])[:, None]
            out["beta_global"] = z["beta_global"]
        if n_subpop:
            logp += jnp.sum(norm.logpdf(z["beta_subpop"], 0.0, NORMAL_SD))
            log_mean = log_mean + data["z_subpop"] @ z["beta_subpop"]
            out["beta_subpop"] = z["beta_subpop"]
        y = data["y"]
        loglik = jnp.sum(y * log_mean - jnp.exp(log_mean)) - data["log_y_factorial"]
        return out, logp + loglik

    return Density(shapes=shapes, log_density=lambda z, d: unpack(z, d)[1], constrain=lambda z, d: unpack(z, d)[0])


def laga_arrays(data: BayesData, covariates: Covariates) -> dict[str, np.ndarray]:
    """The arrays the density reads (each with the same shape for data sets of the same size, so they stack)."""
    return {"y": data.counts, "log_y_factorial": np.float64(gammaln(data.counts + 1.0).sum()),
            "x": covariates.x, "z_global": covariates.z_global, "z_subpop": covariates.z_subpop}


# ------------------------------------------------------------------------------------------------ scaling
def scaling_constants(rho: np.ndarray, known_index: np.ndarray, known_prob: np.ndarray, scaling: str,
                      corr_mean: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Per-draw scaling constants: (C for degrees, shape draws; C_k per group, shape draws x K; groups that fell
    back to equal weights). ``rho`` has shape (..., K); ``corr_mean`` is the posterior-mean correlation matrix."""
    ratios = np.exp(rho[..., known_index]) / known_prob
    common = np.log(ratios.mean(axis=-1))
    per_group = np.repeat(common[..., None], rho.shape[-1], axis=-1)
    fallback: list[int] = []
    if scaling == "all":
        return common, per_group, fallback
    if corr_mean is None:
        raise ConfigError("weighted scaling needs the correlated model's correlation matrix")
    for k in range(rho.shape[-1]):
        others = np.array([j for j in range(len(known_index)) if known_index[j] != k])
        if not len(others):
            fallback.append(k)
            continue
        weights = np.maximum(corr_mean[k, known_index[others]], 0.0)
        if not weights.sum() > 0:
            fallback.append(k)
            weights = np.ones(len(others))
        weights = weights * len(others) / weights.sum()
        per_group[..., k] = np.log(np.mean(ratios[..., others] * weights, axis=-1))
    return common, per_group, fallback


# ------------------------------------------------------------------------------------------------ the models
class CorrelatedModel(MaltielModel):
    """Laga, Bao & Niu (2023) correlated scale-up model with optional covariates; see the module docstring.

    ``x`` maps a group (count column) to the covariate column of the table passed to :meth:`fit` as
    ``covariates``; ``z_global`` and ``z_subpop`` name respondent covariates with one common effect or one effect
    per group. ``scaling`` is ``"all"`` or ``"weighted"``.
    """

    name = "correlated"
    method_label = "Bayesian NSUM"
    correlated = True

    def __init__(self, priors: Priors | None = None, *, likelihood: str = "poisson", scaling: str = "all",
                 x: Mapping[str, str] | Sequence[str] | None = None, z_global: Sequence[str] = (),
                 z_subpop: Sequence[str] = ()) -> None:
        if likelihood != "poisson":
            raise ConfigError(f"the {self.name} model has a Poisson likelihood only (got likelihood={likelihood!r})")
        if scaling not in SCALINGS:
            raise ConfigError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
        if scaling == "weighted" and not self.correlated:
            raise ConfigError("weighted scaling weights known groups by their correlation with each hidden group; "
                              "it needs the correlated model")
        self.priors = (priors or Priors()).validate()
        self.likelihood = "poisson"
        self.scaling = scaling
        self.x = dict(x) if isinstance(x, Mapping) else parse_x_columns(x or ())
        self.z_global = tuple(z_global)
        self.z_subpop = tuple(z_subpop)
        self._covariates: Covariates | None = None
        self._scaling_notes: list[str] = []

    # ---------------------------------------------------------------- pieces
    def covariates_for(self, data: BayesData, frame: pd.DataFrame | None) -> Covariates:
        return build_covariates(data, frame, self.x, self.z_global, self.z_subpop)

    def density(self, data: BayesData, covariates: Covariates) -> Density:
        return build_laga(data.n_respondents, len(data.groups), correlated=self.correlated,
                          x_index=[data.groups.index(g) for g in covariates.x_groups],
                          n_global=len(covariates.z_global_names), n_subpop=len(covariates.z_subpop_names),
                          centred=self.centred(data))

    def centred(self, data: BayesData) -> bool:
        """Sample the log degrees (correlated: the degree part of u_i) directly when the median respondent reports at
        least ``CENTRED_MIN_REPORTS`` contacts (the data then pin each one more tightly than its prior), else
        non-centred (see :func:`build_laga`)."""
        return float(np.median(data.counts.sum(axis=1))) >= CENTRED_MIN_REPORTS

    def initial_values(self, data: BayesData, covariates: Covariates | None = None) -> dict[str, np.ndarray]:
        """Start at the Killworth degrees and sizes: log d_i = m + s delta_i, rho_k = log p_k + m."""
        log_degree = np.log(np.maximum(data.killworth_degrees(), 0.5))
        centre, spread = log_degree.mean(), max(log_degree.std(), 0.1)
        log_prob = np.log(np.maximum(data.killworth_sizes(), 1.0) / data.population)
        rho = log_prob + centre
        values = {"rho": rho, "mu_rho": rho.mean(), "log_sigma_rho": np.log(max(rho.std(), 0.1))}
        n_groups = len(data.groups)
        if self.correlated and n_groups > 1:
            # Sigma starts at spread^2 11' + tau^2 I with bias sd 0.5 and u_i at the Killworth degree in every group
            scale = np.sqrt(spread**2 + np.log1p(0.25))
            values.update({"log_scale": np.full(n_groups, np.log(scale)),
                           "corr_raw": np.zeros(n_groups * (n_groups - 1) // 2)})
            if self.centred(data):
                values.update({"degree_part": log_degree - centre, "z": np.zeros((data.n_respondents, n_groups - 1))})
            else:
                values["u"] = np.repeat((log_degree - centre)[:, None], n_groups, axis=1) / scale
        else:
            values.update({"delta": log_degree - centre if self.centred(data) else (log_degree - centre) / spread,
                           "log_sigma_delta": np.log(spread), "log_bias_sd": np.full(n_groups, np.log(0.5)),
                           "eps": np.zeros((data.n_respondents, n_groups))})
        return {k: np.asarray(v, dtype=float) for k, v in values.items()}

    def settings(self) -> dict[str, Any]:
        covariate = bool(self.x or self.z_global or self.z_subpop)
        return {
            "model": self.name, "likelihood": "poisson", "scaling": self.scaling,
            "x_columns": dict(self.x), "z_global": list(self.z_global), "z_subpop": list(self.z_subpop),
            "covariates": "standardised (mean 0, sd 1); effects per sd" if covariate else None,
            "priors": {
                **({"u_i": "Normal(0, Sigma), Sigma = S R S", "S (log-rate sds)": "half-Cauchy(0, 2.5)",
                    "R": "LKJ(2)"} if self.correlated else
                   {"delta": "Normal(0, 1)", "sigma_delta, bias_sd (tau_N)": "half-Cauchy(0, 2.5)"}),
                "rho": "Normal(mu_rho, sigma_rho)",
                "mu_rho, sigma_rho": "Normal(0, 10), half-Cauchy(0, 2.5)" if covariate else "flat",
                **({"alpha, beta": "Normal(0, 10)"} if covariate else {}),
            },
        }

    # ---------------------------------------------------------------- fitting
    def fit(self, data: Any, known_sizes: Mapping[str, float] | None = None, population: float | None = None, *,
            hidden: Sequence[str] | None = None, groups: Sequence[str] | None = None,
            covariates: pd.DataFrame | None = None, chains: int = 4, warmup: int = 1000, draws: int = 1000,
            seed: int = 0, target_accept: float = 0.8, max_tree_depth: int = 10,
            warmup_max_tree_depth: int | None = None, sums: Mapping[str, Sequence[str]] | None = None,
            ratios: Mapping[str, tuple[str, str]] | None = None, ppc_draws: int = 200, min_ess: float | None = None,
            quiet: bool = True, topcode: int | None = None, visibility: Adjustments | None = None) -> Estimates:
        """Fit by NUTS; ``covariates`` is a table with one row per respondent (in the order of the counts) holding
        the columns named by ``x``, ``z_global`` and ``z_subpop``. Other arguments as
        :meth:`MaltielModel.fit <hiddenpop.nsum.bayes.maltiel.MaltielModel.fit>`."""
        data = coerce_data(data, known_sizes, population, hidden, groups)
        if topcode is not None:
            data = replace(data, topcode=topcode)
        design = self.covariates_for(data, covariates)
        draws_obj = sample_nuts(
            self.density(data, design), laga_arrays(data, design), chains=chains, warmup=warmup, draws=draws,
            seed=seed, target_accept=target_accept, max_tree_depth=max_tree_depth,
            warmup_max_tree_depth=warmup_max_tree_depth, init_values=self.initial_values(data, design),
            quiet=quiet, description=f"{self.name} model",
        )
        self._covariates = design
        notes: list[str] = []
        self.add_sizes(data, draws_obj)
        notes += self._scaling_notes
        result = self.summarise(data, draws_obj, fixed_degree=None, notes=notes, sums=sums, ratios=ratios,
                                ppc_draws=ppc_draws, min_ess=min_ess, seed=seed, visibility=visibility)
        result.tables.update(self.extra_tables(data, draws_obj.samples, design))
        return result

    def add_sizes(self, data: BayesData, draws: Draws, covariates: Covariates | None = None) -> None:
        """Scale rho and the log degrees draw by draw (module docstring): sizes of the hidden groups, degrees."""
        samples = draws.samples
        if "size" in samples:
            return
        known_prob = data.known_sizes[data.known_index] / data.population
        corr_mean = None
        if self.scaling == "weighted":
            corr_mean = samples["corr"].reshape(-1, len(data.groups), len(data.groups)).mean(axis=0)
        common, per_group, fallback = scaling_constants(samples["rho"], data.known_index, known_prob, self.scaling,
                                                        corr_mean)
        samples["size_all"] = data.population * np.exp(samples["rho"] - per_group)
        samples["size"] = samples["size_all"][..., data.hidden_index]
        samples["degree"] = np.exp(samples["log_degree_raw"] + common[..., None])
        self._scaling_notes = []
        hidden_fallback = [data.groups[k] for k in fallback if not data.known[k]]
        if hidden_fallback:
            self._scaling_notes.append(
                f"weighted scaling: no known group has a positive posterior-mean correlation with "
                f"{', '.join(hidden_fallback)}, so equal weights (the 'all' scaling) were used for it")

    def parameter_rows(self, data: BayesData, samples: dict[str, np.ndarray], method: str) -> list[dict[str, Any]]:
        rows = [quantity_row("sigma_delta", method, samples["sigma_delta"], parameter="sigma_delta")]
        rows += [quantity_row(f"bias_sd[{g}]", method, samples["bias_sd"][..., k], parameter="bias_sd")
                 for k, g in enumerate(data.groups)]
        if "corr" in samples:
            for (a, b) in _pairs(len(data.groups)):
                rows.append(quantity_row(f"corr[{data.groups[a]},{data.groups[b]}]", method,
                                         samples["corr"][..., a, b], parameter="correlation"))
        if "cov" in samples:
            for a in range(len(data.groups)):
                for b in range(a, len(data.groups)):
                    rows.append(quantity_row(f"cov[{data.groups[a]},{data.groups[b]}]", method,
                                             samples["cov"][..., a, b], parameter="covariance"))
        rows += self._effect_rows(data, samples, method)
        mean_degree = samples["degree"].mean(axis=-1)
        rows.append(quantity_row("mean_degree", method, mean_degree, parameter="mean_degree"))
        return rows

    def _effect_rows(self, data: BayesData, samples: dict[str, np.ndarray], method: str) -> list[dict[str, Any]]:
        design = self._covariates
        rows = []
        if design is None:
            return rows
        for j, group in enumerate(design.x_groups):
            rows.append(quantity_row(f"alpha[{group}]", method, samples["alpha"][..., j], parameter="alpha"))
        for j, name in enumerate(design.z_global_names):
            rows.append(quantity_row(f"beta_global[{name}]", method, samples["beta_global"][..., j],
                                     parameter="beta_global"))
        for j, name in enumerate(design.z_subpop_names):
            for k, group in enumerate(data.groups):
                rows.append(quantity_row(f"beta_subpop[{name},{group}]", method, samples["beta_subpop"][..., j, k],
                                         parameter="beta_subpop"))
        return rows

    def parameter_draws(self, data: BayesData, draws: Draws) -> dict[str, np.ndarray]:
        """Sizes, degrees, sigma_delta, bias sds, correlations, Sigma (correlated) and covariate effects are gated (in
        the correlated model sigma_delta, the bias sds and the correlations are functions of Sigma by the convention
        of :func:`decompose`). rho, mu_rho and the unscaled degrees share the shift the scaling removes, so they are
        not gated."""
        samples = draws.samples
        keep = {name: samples[name] for name in ("size", "degree", "sigma_delta", "bias_sd", "alpha", "beta_global",
                                                 "beta_subpop") if name in samples}
        if "corr" in samples:
            pairs = _pairs(len(data.groups))
            keep["corr"] = np.stack([samples["corr"][..., a, b] for a, b in pairs], axis=-1)
        if "cov" in samples:
            dim = len(data.groups)
            keep["cov"] = np.stack([samples["cov"][..., a, b] for a in range(dim) for b in range(a, dim)], axis=-1)
        return keep

    def extra_tables(self, data: BayesData, samples: dict[str, np.ndarray],
                     design: Covariates) -> dict[str, pd.DataFrame]:
        """``correlation``: posterior median and 95% interval of every Omega_kj (both triangles and the unit
        diagonal, one row per cell); ``covariate_effects``: one row per effect."""
        tables: dict[str, pd.DataFrame] = {}
        if "corr" in samples:
            flat = samples["corr"].reshape(-1, len(data.groups), len(data.groups))
            lower, median, upper = np.quantile(flat, [0.025, 0.5, 0.975], axis=0)
            rows = [{"group": a, "with_group": b, "estimate": float(median[i, j]), "lower": float(lower[i, j]),
                     "upper": float(upper[i, j]), "mean": float(flat[:, i, j].mean())}
                    for i, a in enumerate(data.groups) for j, b in enumerate(data.groups)]
            tables["correlation"] = pd.DataFrame(rows)
        effects = self._effect_rows(data, samples, "effect")
        if effects:
            tables["covariate_effects"] = pd.DataFrame(effects)[
                ["quantity", "parameter", "estimate", "lower", "upper", "mean", "sd", "rhat", "ess_bulk"]]
        return tables

    def predictive_simulator(self, data: BayesData, draws: Draws, fixed_degree: Any, count: int):
        """Replicated surveys from posterior draws with a fresh bias vector e_i ~ N(0, Omega) per respondent (the
        draws' own eps would reproduce each count almost exactly and make the check uninformative)."""
        samples = draws.samples
        design = self._covariates
        n_groups = len(data.groups)

        def simulate(rng: np.random.Generator) -> np.ndarray:
            total = draws.diverging.size
            pick = rng.choice(total, size=min(count, total), replace=False)

            def take(name: str) -> np.ndarray:
                return samples[name].reshape(total, *samples[name].shape[2:])[pick]

            identified = "cov" in samples
            log_rate = take("rho")[:, None, :]
            if not identified:
                log_rate = log_rate + take("log_degree_raw")[:, :, None]
            if design is not None and design.x_groups:
                alpha = np.zeros((len(pick), n_groups))
                alpha[:, [data.groups.index(g) for g in design.x_groups]] = take("alpha")
                log_rate = log_rate + alpha[:, None, :] * design.x[None]
            if design is not None and design.z_global_names:
                log_rate = log_rate + (take("beta_global") @ design.z_global.T)[:, :, None]
            if design is not None and design.z_subpop_names:
                log_rate = log_rate + np.einsum("ip,spk->sik", design.z_subpop, take("beta_subpop"))
            if identified:
                # fresh u_i ~ N(0, Sigma) with the density's mean correction
                cov = take("cov")
                chol = np.linalg.cholesky(cov)
                shift = (-0.5 * (np.diagonal(cov, axis1=-2, axis2=-1) - take("sigma_delta")[:, None] ** 2))[:, None, :]
            else:
                tau2 = np.log1p(take("bias_sd") ** 2)[:, None, :]
                chol, shift = np.sqrt(tau2), -0.5 * tau2

            def block(generator: np.random.Generator, rows: np.ndarray) -> np.ndarray:
                eps = generator.standard_normal((len(rows), data.n_respondents, n_groups))
                if identified:
                    effect = np.einsum("sik,sjk->sij", eps, chol[rows])
                else:
                    effect = chol[rows] * eps
                mean = np.exp(log_rate[rows] + shift[rows] + effect)
                return generator.poisson(mean)

            return simulate_in_blocks(rng, len(pick), block)

        return simulate


class UncorrelatedModel(CorrelatedModel):
    """The same model with independent biases e_ik = eps_ik (Laga et al.'s uncorrelated model)."""

    name = "uncorrelated"
    correlated = False


def _pairs(dim: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(dim) for b in range(a + 1, dim)]
