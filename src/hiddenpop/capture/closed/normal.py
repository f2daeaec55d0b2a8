"""Logistic-normal heterogeneity for Mh and Mth (Coull & Agresti 1999), in Rivest's (2011) log-linear form.

Unit i is caught on occasion j with logit p_ij = beta_j + sigma z_i, z_i ~ N(0, 1). Written as a log-linear model
for the expected count of history w with k captures,

    log mu_w = offset_w + gamma + x_w' beta + phi_sigma(k),
    phi_sigma(k) = log( E[ exp(k sigma Z) C(sigma Z) ] / E[ C(sigma Z) ] ),

where C(a) is the probability that a unit with heterogeneity value a is never caught, computed from the same
log-linear predictor (C(a) = e^gamma / (e^gamma + sum_w exp(offset_w + gamma + x_w' beta + k_w a))). The two
expectations are 20-point Gauss-Hermite sums, as Rcapture does. The parameters (gamma, beta, sigma) minimise the
Poisson deviance (BFGS, started from the Darroch model's log-linear coefficients and sigma = 0.2); N = n + e^gamma.

Unlike the other heterogeneity forms (Chao, Poisson, Darroch, Gamma), this is not a log-linear model: phi depends
on sigma and on the other parameters, so there is no profile-likelihood interval here; the interval is Chao's
log-transformed one. Standard errors come from the inverse observed information (half the Hessian of the
deviance); Rcapture 1.4 inverts the Hessian of the deviance itself, which understates the variance by a factor of
two, and ``rcapture=True`` reproduces that printed value.

Assumptions: a closed population; heterogeneity normal on the logit scale, the same for every occasion. Failure
modes: sigma estimated at or near zero (no heterogeneity: the model reduces to M0/Mt and sigma is on its boundary);
very sparse data with many occasions make N unstable.

References: Coull, B. A. & Agresti, A. (1999) Biometrics 55:294-301; Rivest, L.-P. (2011) Journal of Statistical
Software (the Rcapture paper; its "Normal" heterogeneity); Dorazio, R. M. & Royle, J. A. (2003) Biometrics
59:351-364.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hiddenpop.capture.core.loglinear import fit_poisson
from hiddenpop.errors import ModelError
from hiddenpop.special import gammaln

__all__ = ["NormalFit", "fit_logistic_normal"]

_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(20)
_SCALED_NODES = math.sqrt(2.0) * _NODES  # E[g(Z)] = sum_i w_i g(sqrt(2) x_i) / sqrt(pi) for Z ~ N(0, 1)


@dataclass
class NormalFit:
    """Result of :func:`fit_logistic_normal`."""

    coef: np.ndarray  # gamma, beta..., sigma
    names: list[str]
    vcov: np.ndarray
    fitted: np.ndarray
    deviance: float
    df: float
    loglik: float
    parameters: int
    converged: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def intercept(self) -> float:
        return float(self.coef[0])

    @property
    def sigma(self) -> float:
        return float(self.coef[-1])


def _fitted(theta: np.ndarray, design: np.ndarray, k: np.ndarray, offset: np.ndarray) -> np.ndarray:
    gamma, beta, sigma = theta[0], theta[1:-1], theta[-1]
    linear = offset + gamma + design @ beta
    with np.errstate(over="ignore", under="ignore"):
        # log of sum_w exp(linear_w + k_w a) for every node a = sigma z_i, and from it log C(a)
        shifted = linear[:, None] + np.outer(k, sigma * _SCALED_NODES)
        top = shifted.max(axis=0)
        log_caught = top + np.log(np.exp(shifted - top).sum(axis=0))
        log_never = gamma - np.logaddexp(gamma, log_caught)
        levels = np.arange(1, int(k.max()) + 1)
        weighted = np.log(_WEIGHTS)[None, :] + log_never[None, :] + np.outer(levels, sigma * _SCALED_NODES)
        top_w = weighted.max(axis=1, keepdims=True)
        numerator = top_w[:, 0] + np.log(np.exp(weighted - top_w).sum(axis=1))
        denominator_terms = np.log(_WEIGHTS) + log_never
        denominator = denominator_terms.max() + np.log(np.exp(denominator_terms - denominator_terms.max()).sum())
        phi = numerator - denominator
        return np.exp(linear + phi[k.astype(int) - 1])


def _deviance(y: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu)
    value = 2.0 * float(terms.sum())
    return value if math.isfinite(value) else math.inf


def _numerical_hessian(function, point: np.ndarray) -> np.ndarray:
    """Central second differences with a step scaled to each parameter."""
    size = point.size
    steps = 1e-4 * np.maximum(np.abs(point), 1.0)
    hessian = np.empty((size, size))
    for i in range(size):
        for j in range(i, size):
            shifts = []
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                moved = point.copy()
                moved[i] += si * steps[i]
                moved[j] += sj * steps[j]
                shifts.append(function(moved))
            value = (shifts[0] - shifts[1] - shifts[2] + shifts[3]) / (4.0 * steps[i] * steps[j])
            hessian[i, j] = hessian[j, i] = value
    return hessian


def fit_logistic_normal(y: np.ndarray, design: np.ndarray, k: np.ndarray, offset: np.ndarray | None = None,
                        names: list[str] | None = None) -> NormalFit:
    """Fit log mu = offset + gamma + design @ beta + phi_sigma(k) to the counts ``y`` of the observable cells.

    ``design`` excludes the intercept (Mh: the column k; Mth: one 0/1 column per occasion); ``k`` is each cell's
    number of captures (>= 1); ``offset`` is 0 for histories and log C(t, k) for capture-count classes.
    """
    y = np.asarray(y, dtype=float)
    design = np.asarray(design, dtype=float).reshape(len(y), -1)
    k = np.asarray(k, dtype=float)
    offset = np.zeros(len(y)) if offset is None else np.asarray(offset, dtype=float)
    parameters = design.shape[1] + 2
    if parameters > len(y):
        raise ModelError(f"the logistic-normal model has {parameters} parameters but only {len(y)} cells to fit")
    darroch = fit_poisson(np.column_stack([design, k**2 / 2.0]), y, offset=offset)
    start = np.append(darroch.coef[: design.shape[1] + 1], 0.2)
    if not np.all(np.isfinite(start)):
        raise ModelError("the Darroch model used for starting values could not be fitted; the data are too sparse")

    def objective(theta: np.ndarray) -> float:
        return _deviance(y, _fitted(theta, design, k, offset))

    from scipy.optimize import minimize  # heavy: about 0.1 s to import, and only this model needs it

    result = minimize(objective, start, method="BFGS", options={"gtol": 1e-6, "maxiter": 2000})
    theta = result.x
    # BFGS on a finite-difference gradient often stops with "precision loss" at the optimum; what matters is that
    # the gradient there is negligible on the deviance scale
    converged = bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-3
    if theta[-1] < 0:  # sigma enters only through sigma * z with z symmetric: report the positive root
        theta = theta.copy()
        theta[-1] = -theta[-1]
    mu = _fitted(theta, design, k, offset)
    deviance = _deviance(y, mu)
    hessian = _numerical_hessian(objective, theta)
    try:
        vcov = 2.0 * np.linalg.inv(hessian)  # the deviance is -2 log L + constant
    except np.linalg.LinAlgError:
        vcov = np.full((parameters, parameters), np.nan)
    loglik = float(np.sum(y * np.log(mu) - mu - gammaln(y + 1.0)))
    warnings = []
    if not converged:
        warnings.append(f"the optimiser did not converge ({result.message}); the estimate may be off")
    if theta[-1] < 1e-3:
        warnings.append("sigma is estimated at zero: the data show no heterogeneity, and the model reduces to "
                        "the one without it (sigma is on the boundary, so its standard error is not valid)")
    labels = ["(Intercept)", *(names or [f"x{j + 1}" for j in range(design.shape[1])]), "sigma"]
    return NormalFit(coef=theta, names=labels, vcov=vcov, fitted=mu, deviance=deviance,
                     df=float(len(y) - parameters), loglik=loglik, parameters=parameters,
                     converged=converged, warnings=warnings)
