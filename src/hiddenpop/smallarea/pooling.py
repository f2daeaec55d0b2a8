"""Partial pooling: a hierarchical Bayesian area-level model (Fay-Herriot on the log scale, optional BYM2).

Model, for every area ``a`` (surveyed or not) with standardised covariates ``x_a``::

    theta_a = mu + x_a' beta + sigma * ( sqrt(1 - rho) * v_a + sqrt(rho) * u_a )      (log prevalence)
    log(yhat_a) ~ Normal(theta_a, s_a)       for surveyed areas, s_a = se_a / yhat_a (delta method)
    beta_j ~ Normal(0, tau),  v_a ~ Normal(0, 1),  u ~ scaled ICAR(neighbours)           (BYM2, Riebler 2016)
    mu ~ Normal(mean log yhat, 2),  sigma ~ HalfNormal(1),  rho ~ Beta(1, 1),  tau ~ HalfNormal(0.5)

``yhat_a`` is the direct estimate with standard error ``se_a`` (the sampling error is treated as known, as in
Fay & Herriot 1979, so noisy direct estimates are shrunk towards the regression-plus-neighbours prediction in
proportion to their noise). By default ``s_a^2`` is replaced by a smoothed version (the average over areas, see
:func:`smooth_sampling_variances`): SEs computed from the area's own respondents are correlated with its
sampling error, and taking them as known biases the area-effect variance. ``u`` is the intrinsic CAR field, scaled so its generalised-inverse marginal variances
have geometric mean one, which makes ``rho`` the share of the area-effect variance that is spatially structured.
Without neighbours the area effect is ``sigma * v_a`` (iid).

Inference. Given ``(sigma, rho, tau)`` the model is jointly Gaussian in ``(mu, beta, v, u, log yhat)``, so the
area effects and coefficients are integrated out exactly: the NumPyro model samples only the three
hyper-parameters with NUTS, using the marginal likelihood ``log yhat_obs ~ N(m, K_oo + S)``. For each posterior
draw of the hyper-parameters, one joint draw of every ``theta_a`` and ``beta`` comes from the exact Gaussian
conditional (Matheron's rule: a prior draw corrected by the data), so the estimates for all 1,600 areas and their
sums are full posterior draws, not plug-ins, at the cost of a 150 x 150 Cholesky per draw.

Estimates are the posterior mean of ``exp(theta_a)``; intervals are equal-tailed posterior quantiles.

Assumptions and failure modes: log prevalence is linear in the covariates plus area effects that are normal
(and spatially smooth for the structured part); direct estimates are unbiased on the log scale with the given
standard errors (a zero direct estimate cannot be logged: those areas are left out of the likelihood and
reported); unsurveyed areas resemble surveyed ones given covariates (selection on covariates only). Without
``target_se`` the direct estimates are taken as exact and the unstructured effect absorbs their noise
(intervals for unsurveyed areas are then for a new direct estimate, wider than for the true rate).

References: Fay, R. E. & Herriot, R. A. (1979) JASA 74; Besag, York & Mollie (1991); Riebler, Sorbye, Simpson &
Rue (2016) Stat. Methods Med. Res. 25 (BYM2); Wilson et al. (2020) "Efficiently sampling functions from
Gaussian process posteriors" (Matheron's rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import minimize
from scipy.sparse.csgraph import connected_components
from scipy.stats import genpareto, multivariate_t
from threadpoolctl import threadpool_limits

from hiddenpop.errors import ConfigError
from hiddenpop.results import Estimates
from hiddenpop.smallarea.areas import AreaTable
from hiddenpop.smallarea.specs import ENGINES, SAMPLING_VARIANCES
from hiddenpop.smallarea.targets import grouped_folds, log_targets

INTERCEPT_SD = 2.0


def single_thread_blas():
    """Limit BLAS/LAPACK to one thread for small dense algebra (150 x 150 Cholesky factors).

    Multi-threaded OpenBLAS on small matrices spends its time waking threads; on a shared, busy machine a
    150 x 150 Cholesky measured 50 ms with two threads and 1 ms with one (JAX's CPU LAPACK calls are affected
    the same way).
    """

    return threadpool_limits(limits=1)


@dataclass
class SpatialBasis:
    """Scaled ICAR covariance ``C`` (generalised inverse of the neighbourhood precision) and a draw sampler."""

    covariance: np.ndarray  # n x n, scaled
    inverse: np.ndarray  # (Q + eps I)^-1, unscaled and uncentred
    scale: float
    incidence: object  # sparse edges x n, Q = D'D
    components: np.ndarray  # connected-component label of each area

    def draw(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` exact draws (size x n) from N(0, C).

        With ``A = Q + eps I = D'D + eps I``, ``A^-1 (D' z + sqrt(eps) z')`` has covariance ``A^-1``; centring each
        component removes the constant direction, leaving ``Q^+`` (then divided by the BYM2 scale).
        """
        n = self.covariance.shape[0]
        rhs = self.incidence.T @ rng.normal(size=(self.incidence.shape[0], size))
        rhs = rhs + np.sqrt(_EPS) * rng.normal(size=(n, size))
        return _centre(self.inverse @ rhs, self.components).T / np.sqrt(self.scale)


_EPS = 1e-7


def _centre(values: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Subtract each connected component's mean along axis 0 (the ICAR sum-to-zero constraint)."""
    counts = np.bincount(components)
    if counts.size == 1:
        return values - values.mean(axis=0, keepdims=True)

    indicator = sparse.csr_matrix((np.ones(components.size), (components, np.arange(components.size))))
    means = (indicator @ values) / counts.reshape((-1,) + (1,) * (values.ndim - 1))
    return values - means[components]


def icar_basis(n: int, neighbours: np.ndarray) -> SpatialBasis:
    """The BYM2-scaled generalised inverse ``C`` of the ICAR precision ``Q = D - W`` (sum-to-zero per component).

    ``C = P (Q + eps I)^-1 P`` with ``P`` centring each connected component, computed with one dense inverse (no
    eigen-decomposition). The scale is the geometric mean of the marginal variances over areas that have
    neighbours (Riebler et al. 2016; Sorbye & Rue 2014), so one unit of ``sigma^2`` means the same in the spatial
    and the iid parts. Isolated areas get no spatial variance.
    """

    i, j = neighbours[:, 0], neighbours[:, 1]
    m = len(neighbours)
    incidence = sparse.csr_matrix(
        (np.concatenate([np.ones(m), -np.ones(m)]), (np.tile(np.arange(m), 2), np.concatenate([i, j]))), shape=(m, n)
    )
    precision = (incidence.T @ incidence).tocsc()
    _, components = connected_components(precision, directed=False)
    inverse = np.linalg.inv((precision + _EPS * sparse.identity(n)).toarray())
    covariance = _centre(_centre(inverse, components).T, components)
    covariance = (covariance + covariance.T) / 2
    connected = np.bincount(neighbours.ravel(), minlength=n) > 0
    variances = np.diag(covariance)
    scale = float(np.exp(np.mean(np.log(variances[connected])))) if connected.any() else 1.0
    return SpatialBasis(covariance=covariance / scale, inverse=inverse, scale=scale, incidence=incidence,
                        components=components)


@dataclass
class PooledFit:
    """Posterior draws of the pooled model (draws x areas), hyper-parameter draws and fit metadata."""

    theta: np.ndarray
    beta: np.ndarray
    hyper: dict[str, np.ndarray]
    observed: np.ndarray
    diagnostics: dict
    mcmc: object


def _hyper_names(spatial: bool) -> list[str]:
    return ["sigma", "tau", "rho"] if spatial else ["sigma", "tau"]


def _constrain(phi: np.ndarray) -> dict[str, np.ndarray]:
    """Unconstrained (log sigma, log tau[, logit rho]) -> hyper-parameters (works on batches, last axis)."""
    values = {"sigma": np.exp(phi[..., 0]), "tau": np.exp(phi[..., 1])}
    if phi.shape[-1] == 3:
        values["rho"] = 1.0 / (1.0 + np.exp(-phi[..., 2]))
    return values


def _log_posterior(phi: np.ndarray, y_c: np.ndarray, gram_oo: np.ndarray, c_oo: np.ndarray | None,
                   s2: np.ndarray) -> np.ndarray:
    """Log marginal posterior of the hyper-parameters (unconstrained scale, Jacobian included), batched.

    ``y_c`` is the centred data ``log yhat_obs - m``; priors as in the module docstring.
    """
    phi = np.atleast_2d(phi)
    h = _constrain(phi)
    n = y_c.size
    eye = np.eye(n)
    area = (1.0 - h["rho"])[:, None, None] * eye + h["rho"][:, None, None] * c_oo if c_oo is not None else eye
    cov = (INTERCEPT_SD**2 + (h["tau"] ** 2)[:, None, None] * gram_oo + (h["sigma"] ** 2)[:, None, None] * area
           + np.diag(s2) + 1e-8 * eye)
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, np.broadcast_to(y_c[:, None], (phi.shape[0], n, 1)))[..., 0]
    loglik = -0.5 * np.sum(z**2, axis=1) - np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
    logprior = -0.5 * h["sigma"] ** 2 + phi[:, 0] - 0.5 * (h["tau"] / 0.5) ** 2 + phi[:, 1]
    if c_oo is not None:
        logprior = logprior + np.log(h["rho"]) + np.log1p(-h["rho"])  # Beta(1, 1) prior, logit Jacobian
    return loglik + logprior


def _hyper_importance(y_c, gram_oo, c_oo, s2, draws: int, rng: np.random.Generator) -> tuple[dict, dict]:
    """Hyper-parameter draws by importance sampling from a Student-t around the posterior mode.

    The mode and curvature come from the exact log marginal posterior; ``2 * draws`` proposals from a
    multivariate t (4 df, covariance 1.5^2 times the inverse Hessian) are weighted by posterior / proposal and
    resampled to ``draws``. The effective sample size and the Pareto-k of the weights are reported (k > 0.7
    means the proposal misses part of the posterior).
    """

    dim = 3 if c_oo is not None else 2

    def target(phi):
        return _log_posterior(np.asarray(phi), y_c, gram_oo, c_oo, s2)

    start = np.array([np.log(0.3), np.log(0.1), 0.0][:dim])
    opt = minimize(lambda p: -float(target(p)[0]), start, method="Nelder-Mead",
                   options={"xatol": 1e-5, "fatol": 1e-7, "maxiter": 2000})
    mode = opt.x
    step = 1e-3
    hessian = np.zeros((dim, dim))
    f0 = float(target(mode)[0])
    for i in range(dim):
        for j in range(i, dim):
            ei, ej = np.eye(dim)[i] * step, np.eye(dim)[j] * step
            points = np.array([mode + ei + ej, mode + ei - ej, mode - ei + ej, mode - ei - ej])
            if i == j:
                points = np.array([mode + 2 * ei, mode, mode, mode - 2 * ei])
            f = target(points)
            value = (f[0] - f[1] - f[2] + f[3]) / (4 * step**2)
            hessian[i, j] = hessian[j, i] = value
    del f0
    covariance = np.linalg.inv(-hessian)
    if not np.all(np.linalg.eigvalsh(covariance) > 0):
        covariance = np.diag(np.maximum(np.abs(np.diag(covariance)), 0.05))
    proposal = multivariate_t(loc=mode, shape=1.5**2 * covariance, df=4, seed=rng)
    n_proposals = 2 * draws
    phi = np.atleast_2d(proposal.rvs(size=n_proposals)).reshape(n_proposals, dim)
    log_target = np.concatenate([target(chunk) for chunk in np.array_split(phi, max(1, n_proposals // 250))])
    log_weight = log_target - proposal.logpdf(phi)
    top = log_weight.max()
    # log marginal likelihood up to constants shared by every spatial structure (for comparing structures)
    log_evidence = float(top + np.log(np.mean(np.exp(log_weight - top))))
    log_weight -= top
    weight = np.exp(log_weight)
    weight /= weight.sum()
    ess = float(1.0 / np.sum(weight**2))
    pareto_k = _pareto_k(log_weight)
    index = rng.choice(n_proposals, size=draws, replace=True, p=weight)
    samples = _constrain(phi[index])
    summary = {}
    for name, values in _constrain(phi).items():
        mean = float(np.sum(weight * values))
        summary[name] = {"mean": mean, "sd": float(np.sqrt(np.sum(weight * (values - mean) ** 2)))}
    info = {"engine": "importance", "ess": ess, "pareto_k": pareto_k, "proposals": n_proposals,
            "log_evidence": log_evidence,
            "mode": {k: float(v[0]) for k, v in _constrain(mode[None]).items()},
            "hyperparameters": summary}
    return samples, info


def _pareto_k(log_weight: np.ndarray) -> float:
    """Pareto-k shape of the largest 20% of importance weights (Vehtari et al. 2024 PSIS diagnostic)."""

    weights = np.sort(np.exp(log_weight - log_weight.max()))
    tail = max(5, int(min(0.2 * weights.size, 3 * np.sqrt(weights.size))))
    cutoff = weights[-tail - 1]
    exceed = weights[-tail:] - cutoff
    if np.all(exceed <= 0):
        return 0.0
    shape, _, _ = genpareto.fit(exceed, floc=0.0)
    return float(shape)


def _hyper_nuts(y_c, gram_oo, c_oo, s2, draws: int, warmup: int, chains: int, seed: int) -> tuple[dict, dict]:
    """Hyper-parameter draws by NUTS (NumPyro) on the same marginal likelihood (slow to compile on busy CPUs)."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.diagnostics import summary as numpyro_summary
    from numpyro.infer import MCMC, NUTS

    def model(y, gram, c_block, noise):
        sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
        tau = numpyro.sample("tau", dist.HalfNormal(0.5))
        eye = jnp.eye(y.shape[0])
        if c_block is not None:
            rho = numpyro.sample("rho", dist.Beta(1.0, 1.0))
            area = sigma**2 * ((1.0 - rho) * eye + rho * c_block)
        else:
            area = sigma**2 * eye
        cov = INTERCEPT_SD**2 + tau**2 * gram + area + jnp.diag(noise) + 1e-8 * eye
        numpyro.sample("y", dist.MultivariateNormal(jnp.zeros(y.shape[0]), covariance_matrix=cov), obs=y)

    with jax.enable_x64(True):
        per_chain = max(1, int(np.ceil(draws / chains)))
        mcmc = MCMC(NUTS(model, target_accept_prob=0.9), num_warmup=warmup, num_samples=per_chain,
                    num_chains=chains, chain_method="sequential", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(seed), jnp.asarray(y_c), jnp.asarray(gram_oo),
                 None if c_oo is None else jnp.asarray(c_oo), jnp.asarray(s2))
        samples = {k: np.asarray(v, dtype=float)[:draws] for k, v in mcmc.get_samples().items()}
        grouped = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    stats = numpyro_summary(grouped)
    summary = {name: {"mean": float(v["mean"]), "sd": float(v["std"]), "rhat": float(v["r_hat"]),
                      "ess_bulk": float(v["n_eff"])} for name, v in stats.items()}
    return samples, {"engine": "nuts", "divergences": divergences, "hyperparameters": summary, "mcmc": mcmc}


def _fit_pooled(
    y_log: np.ndarray,
    s_log: np.ndarray | None,
    observed: np.ndarray,
    x: np.ndarray,
    basis: SpatialBasis | None,
    *,
    engine: str,
    warmup: int,
    draws: int,
    chains: int,
    seed: int,
) -> PooledFit:
    """Fit on the areas in ``observed`` (bool mask) and draw ``theta`` for every area."""
    obs = np.flatnonzero(observed)
    y_o = y_log[obs]
    m = float(y_o.mean())
    n_obs = obs.size
    gram_oo = x[obs] @ x[obs].T
    c_oo = basis.covariance[np.ix_(obs, obs)] if basis is not None else None
    s2 = (s_log[obs] ** 2) if s_log is not None else np.zeros(n_obs)
    rng = np.random.default_rng(seed)
    if engine == "nuts":
        samples, info = _hyper_nuts(y_o - m, gram_oo, c_oo, s2, draws, warmup, chains, seed)
    else:
        samples, info = _hyper_importance(y_o - m, gram_oo, c_oo, s2, draws, rng)
    mcmc = info.pop("mcmc", None)

    # --- Matheron draws of theta (all areas) and beta, one per hyper-parameter draw
    n, p = x.shape
    total = samples["sigma"].size
    sigma, tau = samples["sigma"], samples["tau"]
    rho = samples.get("rho", np.zeros(total))
    z_mu = rng.normal(size=total) * INTERCEPT_SD
    z_beta = rng.normal(size=(total, p)) * tau[:, None]
    z_iid = rng.normal(size=(total, n))
    prior = m + z_mu[:, None] + z_beta @ x.T + (sigma * np.sqrt(1.0 - rho))[:, None] * z_iid
    if basis is not None:
        prior += (sigma * np.sqrt(rho))[:, None] * basis.draw(total, rng)
    noise_draw = rng.normal(size=(total, n_obs)) * np.sqrt(s2)
    gram_ao = x @ x[obs].T
    # alpha_d = (K_oo(h_d) + S)^-1 (y - prior_d,obs - e_d), batched over draws
    alpha = np.empty((total, n_obs))
    eye_o = np.eye(n_obs)
    c_block = c_oo if c_oo is not None else eye_o
    for chunk in np.array_split(np.arange(total), max(1, total // 200)):
        area = (1.0 - rho[chunk])[:, None, None] * eye_o + rho[chunk][:, None, None] * c_block
        k_oo = (INTERCEPT_SD**2 + (tau[chunk] ** 2)[:, None, None] * gram_oo
                + (sigma[chunk] ** 2)[:, None, None] * area + np.diag(s2) + 1e-8 * eye_o)
        residual = y_o - prior[chunk][:, obs] - noise_draw[chunk]
        alpha[chunk] = np.linalg.solve(k_oo, residual[..., None])[..., 0]
    # theta_d = prior_d + K_ao(h_d) alpha_d, with K_ao = 4 + tau^2 X X_o' + sigma^2 ((1 - rho) I_ao + rho C_ao)
    spatial_part = (basis.covariance[:, obs] @ alpha.T).T if basis is not None else 0.0
    iid_part = np.zeros((total, n))
    iid_part[:, obs] = alpha
    theta = (prior + INTERCEPT_SD**2 * alpha.sum(axis=1, keepdims=True)
             + (tau**2)[:, None] * (alpha @ gram_ao.T)
             + (sigma**2)[:, None] * ((1.0 - rho)[:, None] * iid_part + rho[:, None] * spatial_part))
    beta = z_beta + (tau**2)[:, None] * (alpha @ x[obs])
    return PooledFit(
        theta=theta,
        beta=beta,
        hyper=samples,
        observed=observed,
        diagnostics={**info, "draws": total},
        mcmc=mcmc,
    )


def smooth_sampling_variances(y_log: np.ndarray, s_log: np.ndarray, usable: np.ndarray, x: np.ndarray,
                              how: str = "pooled") -> tuple[np.ndarray, dict]:
    """Smoothed log-scale sampling variances of the direct estimates (a generalised variance function, GVF).

    Why. A standard error computed from the same respondents as the estimate is correlated with it: for a ratio
    of counts the bootstrap ``se_a^2`` grows with the observed count, so ``s_a^2 = (se_a / yhat_a)^2`` is large
    exactly where ``yhat_a`` fell below its mean (on the synthetic country corr(log yhat - log p, s_a) is about
    -0.5 while ``(log yhat - log p) / s_a`` has SD 1, so the SEs are right on average but wrong area by area).
    Treated as known in the Fay-Herriot likelihood, such variances weight areas by the sign of their own sampling
    error and distort the estimate of the area-effect variance ``sigma^2``, which sets every unsurveyed interval.
    The standard remedy is to replace ``s_a^2`` by a smooth model of it that carries no information on the
    area's own sampling error (Wolter 2007, ch. 7; Rao & Molina 2015, sec. 6.4.1; You & Chapman 2006).

    ``how="pooled"`` (default): ``stilde_a^2 = mean_b s_b^2`` -- the GVF for equal-size samples (Study 2 has 24
    households in every surveyed area), keeping the average sampling variance (which the data support).
    ``how="gvf"``: ``log s_a^2 = g0 + g1 log pbar_a``, ``pbar_a`` the leave-one-out least-squares prediction of
    ``log yhat_a`` from the covariates (so it holds none of area a's own error), rescaled so that
    ``mean(stilde^2) = mean(s^2)``; it lets the relative variance fall with the prevalence, as it does for counts.
    ``how="direct"``: no smoothing.

    Fails when sampling variances differ between areas for design reasons (very unequal sample sizes or
    clustering): ``pooled`` then mis-weights areas; use ``direct`` (or pass SEs already smoothed by a GVF on the
    sample sizes).
    """
    if how not in SAMPLING_VARIANCES:
        raise ConfigError(f"sampling_variance={how!r}; use one of {list(SAMPLING_VARIANCES)}")
    obs = np.flatnonzero(usable)
    info = {"method": how, "corr_direct_vs_se": float(np.corrcoef(y_log[obs], s_log[obs])[0, 1]),
            "rms_sampling_sd": float(np.sqrt(np.mean(s_log[obs] ** 2))), "gvf_slope": 0.0}
    if how == "direct":
        return s_log, info
    fitted = np.ones(s_log.size)
    if how == "gvf":
        design = np.column_stack([np.ones(obs.size), x[obs]])
        coef, *_ = np.linalg.lstsq(design, y_log[obs], rcond=None)
        log_pbar = np.column_stack([np.ones(x.shape[0]), x]) @ coef
        hat = np.einsum("ij,ji->i", design, np.linalg.pinv(design))
        log_pbar[obs] = (log_pbar[obs] - hat * y_log[obs]) / (1.0 - hat)  # leave-one-out predictions
        slope, _ = np.polyfit(log_pbar[obs], np.log(s_log[obs] ** 2), 1)
        fitted = np.exp(slope * (log_pbar - log_pbar[obs].mean()))
        info["gvf_slope"] = float(slope)
    fitted *= np.mean(s_log[obs] ** 2) / np.mean(fitted[obs])
    return np.where(usable, np.sqrt(fitted), np.nan), info


class PooledModel:
    """Hierarchical Bayesian small-area model (see the module docstring for the formula).

    Parameters
    ----------
    spatial:
        ``"auto"`` (BYM2 when the area table has neighbours, iid otherwise), ``"bym2"`` or ``"iid"``.
    level:
        Interval level.
    engine:
        How the hyper-parameters are sampled: ``"importance"`` (default; Student-t importance sampling around
        the posterior mode of the exact marginal posterior, a second or two) or ``"nuts"`` (NumPyro NUTS on the
        same marginal likelihood; the JIT compilation takes from several seconds to a minute on a busy CPU).
    warmup, draws, chains:
        Number of posterior draws (each gives one joint draw of all areas); NUTS warm-up and chains.
    seed:
        Seed for NUTS and the Gaussian draws.
    sampling_variance:
        How the direct estimates' standard errors enter the likelihood (see :func:`smooth_sampling_variances`):
        ``"pooled"`` (default; equal relative sampling variance, the average of the given ones), ``"gvf"``
        (relative variance modelled on the synthetic prevalence) or ``"direct"`` (as given).
    """

    def __init__(self, spatial: str = "auto", level: float = 0.9, engine: str = "importance", warmup: int = 500,
                 draws: int = 1000, chains: int = 2, seed: int = 0, sampling_variance: str = "pooled") -> None:
        if sampling_variance not in SAMPLING_VARIANCES:
            raise ConfigError(f"sampling_variance={sampling_variance!r}; use one of {list(SAMPLING_VARIANCES)}")
        self.sampling_variance = sampling_variance
        if spatial not in ("auto", "bym2", "iid"):
            raise ConfigError(f"spatial={spatial!r}; use auto, bym2 or iid")
        if engine not in ENGINES:
            raise ConfigError(f"engine={engine!r}; use one of {list(ENGINES)}")
        if draws < 100:
            raise ConfigError("use at least 100 posterior draws")
        self.engine = engine
        if not 0.5 < level < 1:
            raise ConfigError(f"level must be between 0.5 and 1 (got {level})")
        self.spatial = spatial
        self.level = level
        self.warmup = warmup
        self.draws = draws
        self.chains = chains
        self.seed = seed
        self._basis_cache: tuple[AreaTable, SpatialBasis] | None = None  # (areas, its basis), reused across CV folds

    def _basis(self, areas: AreaTable) -> SpatialBasis | None:
        if self.spatial == "iid" or (self.spatial == "auto" and areas.neighbours is None):
            return None
        if areas.neighbours is None or len(areas.neighbours) == 0:
            raise ConfigError("spatial='bym2' needs neighbours: give --adjacency or --geometry")
        if self._basis_cache is None or self._basis_cache[0] is not areas:
            self._basis_cache = (areas, icar_basis(areas.n, areas.neighbours))
        return self._basis_cache[1]

    def _targets(self, areas: AreaTable):
        """Log targets, log-scale sampling SDs (GVF-smoothed unless ``sampling_variance="direct"``), mask, notes."""
        y_log, s_log, usable, notes = log_targets(areas)
        self.gvf = None
        if s_log is not None:
            s_log, self.gvf = smooth_sampling_variances(y_log, s_log, usable, areas.x(), self.sampling_variance)
            if self.sampling_variance != "direct":
                notes = [
                    *notes,
                    f"sampling variances smoothed ({self.sampling_variance}): the direct SEs were correlated "
                    f"{self.gvf['corr_direct_vs_se']:+.2f} with the log direct estimates, which would weight areas "
                    "by their own sampling error",
                ]
        return y_log, s_log, usable, notes

    def fit_draws(self, areas: AreaTable, train: np.ndarray | None = None) -> tuple[PooledFit, list[str]]:
        """Posterior draws using only the areas in ``train`` (bool mask; default all surveyed) in the likelihood."""
        y_log, s_log, usable, notes = self._targets(areas)
        observed = usable if train is None else usable & train
        basis = self._basis(areas)
        with single_thread_blas():
            fit = _fit_pooled(y_log, s_log, observed, areas.x(), basis, engine=self.engine, warmup=self.warmup,
                              draws=self.draws, chains=self.chains, seed=self.seed)
        return fit, notes

    def fit(self, areas: AreaTable) -> Estimates:
        """Fit on every surveyed area and return estimates for all areas (see :func:`pooled_estimates`)."""
        basis = self._basis(areas)
        name = "pooled (BYM2)" if basis is not None else "pooled (iid)"
        fit, notes = self.fit_draws(areas)
        alpha = 1.0 - self.level
        rate = np.exp(fit.theta)
        surveyed = areas.surveyed
        table = pd.DataFrame(
            {
                "quantity": "prevalence",
                "method": name,
                "area": areas.ids,
                "estimate": rate.mean(axis=0),
                "se": rate.std(axis=0, ddof=1),
                "lower": np.quantile(rate, alpha / 2, axis=0),
                "upper": np.quantile(rate, 1 - alpha / 2, axis=0),
                "level": self.level,
                "median": np.median(rate, axis=0),
                "surveyed": surveyed,
                "in_likelihood": fit.observed,
                "direct": areas.y(),
            }
        )
        if areas.target_se is not None:
            table["direct_se"] = areas.y_se()
        warnings = list(areas.warnings)
        warnings.extend(_sampling_warnings(fit.diagnostics))
        if areas.target_se is None:
            warnings.append(
                "no target standard errors (--target-se): direct estimates are treated as exact, so surveyed areas "
                "keep their direct values and unsurveyed intervals include sampling noise (conservative)"
            )
        coefficients = pd.DataFrame(
            {
                "covariate": areas.covariates,
                "stream": [areas.stream_of()[c] for c in areas.covariates],
                "estimate": fit.beta.mean(axis=0),
                "lower": np.quantile(fit.beta, alpha / 2, axis=0),
                "upper": np.quantile(fit.beta, 1 - alpha / 2, axis=0),
            }
        )
        importance = stream_contributions(fit.beta, areas)
        result = Estimates(
            table=table,
            settings={"spatial": name, "level": self.level, "engine": self.engine, "warmup": self.warmup,
                      "sampling_variance": self.sampling_variance if areas.target_se is not None else None,
                      "draws": self.draws,
                      "chains": self.chains, "target_se": areas.target_se is not None,
                      "covariates": len(areas.covariates)},
            seed=self.seed,
            warnings=warnings,
            notes=list(areas.notes) + notes + [
                f"hyper-parameters (sigma, tau, rho) sampled by {self.engine} on the exact marginal posterior; area "
                "effects and coefficients drawn from their Gaussian conditionals (one joint draw per draw)"
            ],
            diagnostics={**fit.diagnostics, "gvf": self.gvf},
            tables={"coefficients": coefficients, "importance": importance},
            extras={"draws": rate, "fit": fit},
        )
        return result


def _sampling_warnings(diagnostics: dict) -> list[str]:
    warnings = []
    if diagnostics["engine"] == "nuts":
        hyper = diagnostics["hyperparameters"]
        bad_rhat = [k for k, v in hyper.items() if not v["rhat"] < 1.01]
        if bad_rhat:
            warnings.append(f"R-hat above 1.01 for {', '.join(bad_rhat)}: run longer (more draws) before using these")
        low_ess = [k for k, v in hyper.items() if v["ess_bulk"] < 200]
        if low_ess:
            warnings.append(f"effective sample size below 200 for {', '.join(low_ess)}")
        if diagnostics["divergences"]:
            warnings.append(f"{diagnostics['divergences']} divergent NUTS transitions; intervals may be off")
    else:
        if diagnostics["pareto_k"] > 0.7:
            warnings.append(f"importance-sampling Pareto k = {diagnostics['pareto_k']:.2f} (> 0.7): the proposal "
                            "misses part of the posterior; refit with engine='nuts'")
        if diagnostics["ess"] < 200:
            warnings.append(f"importance-sampling effective sample size {diagnostics['ess']:.0f} (< 200); "
                            "increase draws or use engine='nuts'")
    return warnings


def stream_contributions(beta: np.ndarray, areas: AreaTable) -> pd.DataFrame:
    """Per stream: posterior mean (and 90% interval) of the across-area SD of the stream's linear contribution.

    ``sd_a( sum_{j in stream} x_aj beta_j )`` on the log-prevalence scale: how much the stream moves prevalence
    between areas according to the pooled model (with correlated streams, credit is shared between them).
    """
    x = areas.x()
    rows = []
    for stream, columns in areas.streams.items():
        index = [areas.covariates.index(c) for c in columns]
        contribution = beta[:, index] @ x[:, index].T
        spread = contribution.std(axis=1)
        rows.append({"stream": stream, "importance": float(spread.mean()),
                     "lower": float(np.quantile(spread, 0.05)), "upper": float(np.quantile(spread, 0.95)),
                     "columns": ", ".join(columns)})
    table = pd.DataFrame(rows).sort_values("importance", ascending=False).reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table


def pooled_estimates(areas: AreaTable, *, spatial: str = "auto", level: float = 0.9, engine: str = "importance",
                     warmup: int = 500, draws: int = 1000, chains: int = 2, seed: int = 0,
                     sampling_variance: str = "pooled") -> Estimates:
    """Fit :class:`PooledModel` and return estimates for every area (``quantity="prevalence"``, column ``area``).

    ``Estimates.extras["draws"]`` holds the posterior draws of the rates (draws x areas) for sums and
    benchmarking; ``tables["coefficients"]`` the standardised coefficients; ``tables["importance"]`` the
    per-stream spread of the linear predictor.
    """
    return PooledModel(spatial=spatial, level=level, engine=engine, warmup=warmup, draws=draws, chains=chains,
                       seed=seed, sampling_variance=sampling_variance).fit(areas)


def cross_validate_pooled(areas: AreaTable, model: PooledModel, *, folds: int = 5,
                          seed: int = 0) -> tuple[pd.DataFrame, str]:
    """Grouped cross-validation of the pooled model on the surveyed areas (same folds as the ML learners).

    Each fold's areas are left out of the likelihood; their held-out direct estimates are compared with the
    posterior predictive of a new direct estimate (``theta_a`` plus sampling noise ``s_a``). Returns one table
    row (``method, n, folds, rmse_log, rmse, coverage, mean_width, level``) and the grouping used.
    """

    y_log, s_log, usable, _ = model._targets(areas)
    index = np.flatnonzero(usable)
    groups = areas.groups()
    splits = grouped_folds(None if groups is None else groups[index], index.size, folds, seed)
    rng = np.random.default_rng(seed)
    alpha = 1.0 - model.level
    predicted_log = np.empty(index.size)
    predicted_rate = np.empty(index.size)
    hits = np.empty(index.size, dtype=bool)
    widths = np.empty(index.size)
    name = "pooled"
    for _, test in splits:
        train = np.ones(areas.n, dtype=bool)
        train[index[test]] = False
        fit, _ = model.fit_draws(areas, train=train)
        theta = fit.theta[:, index[test]]
        noise = 0.0 if s_log is None else rng.normal(size=theta.shape) * s_log[index[test]]
        new = theta + noise
        lower = np.quantile(new, alpha / 2, axis=0)
        upper = np.quantile(new, 1 - alpha / 2, axis=0)
        observed = y_log[index[test]]
        predicted_log[test] = theta.mean(axis=0)
        predicted_rate[test] = np.exp(theta).mean(axis=0)
        hits[test] = (lower <= observed) & (observed <= upper)
        widths[test] = np.exp(upper) - np.exp(lower)
        name = "pooled (BYM2)" if model._basis(areas) is not None else "pooled (iid)"
    y = y_log[index]
    row = {
        "method": name,
        "n": int(index.size),
        "folds": len(splits),
        "rmse_log": float(np.sqrt(np.mean((predicted_log - y) ** 2))),
        "rmse": float(np.sqrt(np.mean((predicted_rate - np.exp(y)) ** 2))),
        "coverage": float(hits.mean()),
        "mean_width": float(widths.mean()),
        "level": model.level,
        "params": f"engine={model.engine}, draws={model.draws}",
    }
    return pd.DataFrame([row]), (areas.region or "random folds")
