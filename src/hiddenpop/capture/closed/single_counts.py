"""Zero-truncated count regressions for one source: geometric, negative binomial and one-inflated variants.

Each unit seen has a count y_i >= 1. A base count distribution f with mean mu_i = exp(x_i'beta) describes how often
a unit of the population is seen, zeros included:

* Poisson: f(0) = exp(-mu);
* geometric: f(y) = mu^y / (1 + mu)^(y + 1), f(0) = 1 / (1 + mu) (the negative binomial with dispersion 1);
* negative binomial with dispersion alpha (variance mu + alpha mu^2): f(0) = (1 + alpha mu)^(-1/alpha); alpha -> 0
  gives the Poisson.

Three ways to turn f into the distribution of the observed counts, with p0 = f(0), p1 = f(1), weight omega:

* **ZT** (zero-truncated): f(y) / (1 - p0). Size N = sum_i 1 / (1 - p0_i).
* **OIZT** (one-inflated zero-truncated, Godwin & Boehning 2017): omega [y = 1] + (1 - omega) f(y) / (1 - p0).
  The ones are inflated among the units seen, as when a unit seen once avoids being seen again; the chance of never
  being seen stays p0, so N = sum_i 1 / (1 - p0_i).
* **ZTOI** (zero-truncated one-inflated): the untruncated omega [y = 1] + (1 - omega) f(y), truncated at zero. The
  extra ones are units of the population that are always seen exactly once; the chance of never being seen is
  (1 - omega) p0, so N = sum_i 1 / (1 - (1 - omega) p0_i).

Without covariates both one-inflated likelihoods split into a factor for "one or more than one", which omega fits
exactly, and the zero-one-truncated likelihood of the counts >= 2 (Boehning & van der Heijden 2019): the count
parameter is the same in both orders, the sizes are not (OIZT >= ZTOI). With covariates and one omega for all
units the identity is approximate.

Fitting is Newton-Raphson with step halving on (beta, log alpha, logit omega). First derivatives of each unit's
log-likelihood with respect to its own parameters (x_i'beta and the shared ones) are taken by the complex step,
exact to rounding; second derivatives by central differences of those. The variance of N is the sampling term
sum_i P0_i / (1 - P0_i)^2 (P0_i the unit's chance of never being seen) plus g' I^-1 g for the estimated
parameters (delta method, I the observed information, g = dN/dtheta), as for the zero-truncated Poisson.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hiddenpop.special import gammaln, loggamma

__all__ = ["FAMILIES", "KINDS", "CountFit", "fit_count_model"]

FAMILIES = ("poisson", "geometric", "negbin")
KINDS = ("zt", "oizt", "ztoi")

#: Beyond these the shared parameter is at the edge of its range: omega at 0 (no one-inflation), alpha at 0
#: (no overdispersion: the Poisson), alpha without bound (the size is not identified). An omega or alpha below
#: 1e-6 changes the probabilities by less than the likelihood can resolve, and the fit creeps towards 0 slowly.
_LOGIT_OMEGA_FLOOR = math.log(1e-6)
_LOG_ALPHA_FLOOR = math.log(1e-6)
_LOG_ALPHA_CEILING = math.log(1e6)
_COMPLEX_STEP = 1e-30


@dataclass
class CountFit:
    """A fitted single-source count model and its Horvitz-Thompson size."""

    family: str
    kind: str
    estimate: float
    se: float
    beta: np.ndarray
    alpha: float | None
    omega: float | None
    loglik: float
    parameters: int
    converged: bool
    warning: str | None = None


def _base(y: np.ndarray, eta, log_alpha, family: str):
    """log f(y), log p0 and log p1 of the base distribution (complex-safe for the complex step)."""
    if family == "poisson":
        mu = np.exp(eta)
        return y * eta - mu - gammaln(y + 1.0), -mu, eta - mu
    if family == "geometric":
        log1p_mu = np.log1p(np.exp(eta))
        return y * eta - (y + 1.0) * log1p_mu, -log1p_mu, eta - 2.0 * log1p_mu
    alpha = np.exp(log_alpha)
    log1p_am = np.log1p(alpha * np.exp(eta))
    log_f = _log_rising(y, alpha, log_alpha) - gammaln(y + 1.0) - log1p_am / alpha + y * (eta - log1p_am)
    return log_f, -log1p_am / alpha, eta - (1.0 / alpha + 1.0) * log1p_am


def _log_rising(y: np.ndarray, alpha, log_alpha):
    """log Gamma(y + 1/alpha) - log Gamma(1/alpha) + y log alpha = sum_{j < y} log(1 + j alpha): summed term by
    term (stable as alpha -> 0, where the two log-gammas cancel) unless the counts are very large."""
    top = int(y.max())
    if top > 5000:
        return loggamma(y + 1.0 / alpha) - loggamma(1.0 / alpha) + y * log_alpha
    steps = np.log1p(np.multiply.outer(alpha, np.arange(top)))
    cumulative = np.concatenate([np.zeros((y.size, 1), dtype=steps.dtype), np.cumsum(steps, axis=1)], axis=1)
    return cumulative[np.arange(y.size), y.astype(int)]


def _log1mexp(log_p):
    """log(1 - exp(log_p)) for log_p < 0, accurate when exp(log_p) is near 0 or 1."""
    return np.log(-np.expm1(log_p))


def _omega_terms(logit_omega):
    """log omega and log(1 - omega) from the logit."""
    return -np.log1p(np.exp(-logit_omega)), -np.log1p(np.exp(logit_omega))


class _Model:
    """One unit's log-likelihood and never-seen probability as functions of its local parameters
    u = (x_i'beta, then log alpha for the negative binomial, then logit omega for the one-inflated kinds)."""

    def __init__(self, y: np.ndarray, family: str, kind: str):
        self.y, self.family, self.kind = y, family, kind
        self.one = y == 1
        self.extras = (["log_alpha"] if family == "negbin" else []) + (["logit_omega"] if kind != "zt" else [])

    def _split(self, local):
        eta = local[:, 0]
        position = 1
        log_alpha = logit_omega = None
        if self.family == "negbin":
            log_alpha, position = local[:, position], position + 1
        if self.kind != "zt":
            logit_omega = local[:, position]
        return eta, log_alpha, logit_omega

    def loglik(self, local):
        eta, log_alpha, logit_omega = self._split(local)
        log_f, log_p0, log_p1 = _base(self.y, eta, log_alpha, self.family)
        if self.kind == "zt":
            return log_f - _log1mexp(log_p0)
        log_omega, log_1m_omega = _omega_terms(logit_omega)
        if self.kind == "oizt":
            truncated = log_f - _log1mexp(log_p0)
            ones = np.logaddexp(log_omega, log_1m_omega + log_p1 - _log1mexp(log_p0)) if np.isrealobj(local) \
                else np.log(np.exp(log_omega) + np.exp(log_1m_omega + log_p1 - _log1mexp(log_p0)))
            return np.where(self.one, ones, log_1m_omega + truncated)
        ones = np.logaddexp(log_omega, log_1m_omega + log_p1) if np.isrealobj(local) \
            else np.log(np.exp(log_omega) + np.exp(log_1m_omega + log_p1))
        return np.where(self.one, ones, log_1m_omega + log_f) - _log1mexp(log_1m_omega + log_p0)

    def log_p_unseen(self, local):
        """log of the chance that the unit is never seen."""
        eta, log_alpha, logit_omega = self._split(local)
        _, log_p0, _ = _base(self.y, eta, log_alpha, self.family)
        if self.kind == "ztoi":
            return _omega_terms(logit_omega)[1] + log_p0
        return log_p0

    def inverse_seen(self, local):
        """1 / (1 - P0): the unit's Horvitz-Thompson weight."""
        return 1.0 / -np.expm1(self.log_p_unseen(local))


def _complex_gradient(function, local: np.ndarray) -> np.ndarray:
    """d function_i / d local_ij for every unit i by the complex step (exact to rounding)."""
    gradient = np.empty(local.shape)
    for j in range(local.shape[1]):
        shifted = local.astype(complex)
        shifted[:, j] += 1j * _COMPLEX_STEP
        gradient[:, j] = np.imag(function(shifted)) / _COMPLEX_STEP
    return gradient


def _local_hessian(function, local: np.ndarray) -> np.ndarray:
    """Second derivatives per unit: central differences of the complex-step gradient."""
    m = local.shape[1]
    hessian = np.empty((local.shape[0], m, m))
    for j in range(m):
        step = 1e-5 * max(1.0, float(np.max(np.abs(local[:, j]))))
        up, down = local.copy(), local.copy()
        up[:, j] += step
        down[:, j] -= step
        hessian[:, :, j] = (_complex_gradient(function, up) - _complex_gradient(function, down)) / (2 * step)
    return 0.5 * (hessian + hessian.transpose(0, 2, 1))


def _to_local(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    k = x.shape[1]
    return np.column_stack([x @ theta[:k], np.tile(theta[k:], (x.shape[0], 1))])


def _chain_gradient(local_gradient: np.ndarray, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Derivatives with respect to (beta, shared) from those per distinct unit, each counted ``weight`` times."""
    local_gradient = local_gradient * weight[:, None]
    return np.concatenate([x.T @ local_gradient[:, 0], local_gradient[:, 1:].sum(axis=0)])


def _chain_hessian(local_hessian: np.ndarray, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    local_hessian = local_hessian * weight[:, None, None]
    k, m = x.shape[1], local_hessian.shape[1]
    out = np.empty((k + m - 1, k + m - 1))
    out[:k, :k] = x.T @ (x * local_hessian[:, 0, 0][:, None])
    cross = x.T @ local_hessian[:, 0, 1:]
    out[:k, k:], out[k:, :k] = cross, cross.T
    out[k:, k:] = local_hessian[:, 1:, 1:].sum(axis=0)
    return out


def _newton(model: _Model, x: np.ndarray, weight: np.ndarray, theta: np.ndarray,
            max_iter: int) -> tuple[np.ndarray, bool, str | None]:
    """Maximise the log-likelihood; returns (theta, converged, the shared parameter that left its range)."""
    def total(value):
        result = float(weight @ model.loglik(_to_local(value, x)))
        return result if math.isfinite(result) else -math.inf

    k = x.shape[1]
    current = total(theta)
    for _ in range(max_iter):
        local = _to_local(theta, x)
        gradient = _chain_gradient(_complex_gradient(model.loglik, local), x, weight)
        information = -_chain_hessian(_local_hessian(model.loglik, local), x, weight)
        ridge = 0.0
        while True:  # Newton's step, damped towards gradient ascent where the information is not positive
            try:
                factor = np.linalg.cholesky(information + ridge * np.eye(theta.size))
                step = np.linalg.solve(factor.T, np.linalg.solve(factor, gradient))
                break
            except np.linalg.LinAlgError:
                ridge = max(2 * ridge, 1e-6 * max(1.0, float(np.max(np.abs(np.diag(information))))))
        scale = 1.0
        while scale > 1e-12:
            candidate = theta + scale * step
            value = total(candidate)
            if value >= current - 1e-12 * max(1.0, abs(current)):
                break
            scale /= 2
        else:
            return theta, False, None
        theta, current = candidate, value
        for position, name in enumerate(model.extras, start=k):
            if name == "logit_omega" and theta[position] < _LOGIT_OMEGA_FLOOR:
                return theta, False, "omega"
            if name == "log_alpha" and theta[position] < _LOG_ALPHA_FLOOR:
                return theta, False, "alpha_zero"
            if name == "log_alpha" and theta[position] > _LOG_ALPHA_CEILING:
                return theta, False, "alpha_infinite"
        if np.max(np.abs(scale * step)) < 1e-9:
            return theta, True, None
    return theta, False, None


def _start(y: np.ndarray, x: np.ndarray, family: str, kind: str, weight: np.ndarray) -> np.ndarray:
    beta = np.zeros(x.shape[1])
    beta[0] = math.log(max(float(np.average(y, weights=weight)) - 1.0, 0.1))
    extras = ([0.0] if family == "negbin" else []) + ([math.log(0.2 / 0.8)] if kind != "zt" else [])
    return np.concatenate([beta, extras])


def fit_count_model(counts: np.ndarray, design: np.ndarray | None = None, *, family: str, kind: str = "zt",
                    max_iter: int = 300, multiplicity: np.ndarray | None = None) -> CountFit:
    """Fit one zero-truncated (optionally one-inflated) count regression and its Horvitz-Thompson size.

    A shared parameter at the edge of its range is reported, not hidden: omega at 0 gives the zero-truncated fit
    of the same family, alpha at 0 the zero-truncated Poisson; an alpha without bound, or a fit that does not
    converge, gives NaN with the reason in ``warning``. ``multiplicity`` (default one each) is how many units each
    row stands for, so a frequency table (count c seen by f_c units) is fitted without expanding it."""
    if family not in FAMILIES or kind not in KINDS:
        raise ValueError(f"unknown count model {family!r}, {kind!r}")
    y = np.asarray(counts, dtype=float)
    x = np.ones((y.size, 1)) if design is None else np.asarray(design, dtype=float)
    times = np.ones(y.size) if multiplicity is None else np.asarray(multiplicity, dtype=float)
    present = times > 0
    y, x, times = y[present], x[present], times[present]
    parameters = x.shape[1] + (family == "negbin") + (kind != "zt")
    nothing = CountFit(family, kind, math.nan, math.nan, np.full(x.shape[1], math.nan), None, None, math.nan,
                       parameters, False)
    if not np.any(y >= (3 if kind != "zt" else 2)):
        nothing.warning = ("needs units seen three times or more" if kind != "zt"
                           else "needs units seen more than once")
        return nothing
    # units with the same count and covariates share one likelihood term, counted as often as they occur
    distinct, inverse = np.unique(np.column_stack([y, x]), axis=0, return_inverse=True)
    weight = np.bincount(inverse.ravel(), weights=times, minlength=distinct.shape[0])
    model = _Model(distinct[:, 0], family, kind)
    theta, converged, edge = _newton(model, distinct[:, 1:], weight, _start(y, x, family, kind, times), max_iter)
    if edge == "omega":
        # omega -> 0: no one-inflation; the constrained maximum is the zero-truncated fit of the same family
        base = fit_count_model(y, x, family=family, kind="zt", max_iter=max_iter, multiplicity=times)
        base.kind, base.omega = kind, 0.0
        base.warning = "; ".join(filter(None, ["no one-inflation (omega at 0): the zero-truncated fit", base.warning]))
        return base
    if edge == "alpha_zero":
        base = fit_count_model(y, x, family="poisson", kind=kind, max_iter=max_iter, multiplicity=times)
        base.family, base.alpha = family, 0.0
        base.warning = "; ".join(filter(None, ["no overdispersion (dispersion at 0): the Poisson fit", base.warning]))
        return base
    if edge == "alpha_infinite":
        nothing.warning = "the dispersion grows without bound: the data do not identify the size under this model"
        return nothing
    if not converged:
        nothing.warning = "the fit did not converge (check for covariate levels whose units are all seen once)"
        return nothing
    x = distinct[:, 1:]
    local = _to_local(theta, x)
    information = -_chain_hessian(_local_hessian(model.loglik, local), x, weight)
    inverse_seen = model.inverse_seen(local)
    p_unseen = np.exp(model.log_p_unseen(local))
    gradient = _chain_gradient(_complex_gradient(model.inverse_seen, local), x, weight)
    try:
        estimation = float(gradient @ np.linalg.solve(information, gradient))
    except np.linalg.LinAlgError:
        estimation = math.nan
    variance = float(weight @ (p_unseen * inverse_seen**2)) + estimation
    k = x.shape[1]
    alpha = omega = None
    position = k
    if family == "negbin":
        alpha, position = math.exp(theta[position]), position + 1
    if kind != "zt":
        omega = 1.0 / (1.0 + math.exp(-theta[position]))
    return CountFit(family, kind, float(weight @ inverse_seen), math.sqrt(variance) if variance >= 0 else math.nan,
                    theta[:k].copy(), alpha, omega, float(weight @ model.loglik(local)), int(theta.size), True)

