"""The shared Poisson log-linear engine for closed capture-recapture and multiple systems estimation.

Model (Fienberg 1972; Cormack 1989; Rivest & Baillargeon 2007): the 2^t - 1 observable history counts Y_w are
independent Poisson with

    log mu_w = offset_w + gamma + x_w' beta,

fitted to every observable cell (zeros included). The never-caught cell w = 0 has design row 0, so
mu_0 = exp(gamma) and

    N_hat = n + exp(gamma_hat),
    se(N_hat) = sqrt( exp(gamma_hat) + exp(2 gamma_hat) Var(gamma_hat) )        (multinomial-adjusted,
                                                                                Sanathanan 1972; Rcapture)

Quantities reported, with the conventions of R's ``glm`` and Rcapture (so numbers match them):

* deviance = 2 sum_w [ Y log(Y/mu) - (Y - mu) ] over the observable cells; df = cells - rank;
* AIC = -2 sum_w log dpois(Y_w; mu_w) + 2 p   (includes the log Y! term, as ``glm``);
* BIC = AIC + (log n - 2) p with n the number of units seen (Rcapture's definition);
* asymptotic bias of N_hat (Rcapture ``$bias``): with X~ the design incl. intercept and V its covariance,
  xi_w = -1/2 (X~ V X~')_ww, psi = -2 X~' diag(mu) xi, psi_1 <- psi_1 - 1, bias = 1/2 exp(gamma) (-V psi)_1.

The fit is Newton-Raphson on the Poisson log-likelihood (= IRLS; the canonical link makes observed and
expected information equal) with step halving whenever the deviance would increase, started from ``glm``'s
starting values (mu = Y + 0.1). Columns that are linear combinations of earlier columns are *aliased* exactly
as R does (coefficient NaN, rank reduced): a design that is not of full rank never silently changes the
meaning of the remaining coefficients.

Public API
----------
* :func:`fit_poisson` - fit any design (without the intercept column, which is always added first).
* :class:`PoissonFit` - coefficients, covariance, deviance, df, AIC, BIC, abundance, stderr, bias.
* :func:`heterogeneity_columns` - the Mh/Mth heterogeneity functions of k (Chao, Poisson, Darroch, Gamma).
* :func:`closed_design` - design over :func:`~hiddenpop.capture.core.histories.all_patterns` for a named model.
* :func:`interaction_design` - main effects plus chosen interactions such as ``"A:B"`` or ``"A:B:C"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hiddenpop.capture.core.terms import parse_terms
from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.special import gammaln

#: Relative tolerance used to decide that a column is a linear combination of earlier ones (as R's 1e-7).
ALIAS_TOLERANCE = 1e-7


def exp_or_inf(value: float) -> float:
    """exp that returns inf instead of raising OverflowError (degenerate fits can push the intercept far out)."""
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


@dataclass
class PoissonFit:
    """Result of :func:`fit_poisson`.

    ``coef`` has one entry per column (intercept first), NaN for aliased columns; ``vcov`` is the inverse
    Fisher information over the non-aliased columns (NaN rows/columns for aliased ones).
    """

    names: list[str]
    coef: np.ndarray
    vcov: np.ndarray
    fitted: np.ndarray
    deviance: float
    df: float
    loglik: float
    rank: int
    converged: bool
    iterations: int
    n_observed: int
    aliased: list[str] = field(default_factory=list)
    design: np.ndarray | None = None  # full design incl. intercept (observable cells), for bias and CIs

    @property
    def intercept(self) -> float:
        return float(self.coef[0])

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.rank

    @property
    def bic(self) -> float:
        return self.aic + (math.log(self.n_observed) - 2.0) * self.rank

    @property
    def unobserved(self) -> float:
        """mu_0 = exp(gamma), the expected number never caught (infinite, not an error, beyond exp's range)."""
        return exp_or_inf(self.intercept)

    @property
    def abundance(self) -> float:
        return self.n_observed + self.unobserved

    @property
    def stderr(self) -> float:
        unseen = self.unobserved
        var = unseen + unseen * unseen * float(self.vcov[0, 0])
        return math.sqrt(var) if var > 0 else math.nan

    @property
    def bias(self) -> float:
        """Rcapture's asymptotic bias of N_hat (needs the design)."""
        if self.design is None:
            return math.nan
        keep = ~np.isnan(self.coef)
        x = self.design[:, keep]
        v = self.vcov[np.ix_(keep, keep)]
        xi = -0.5 * ((x @ v) * x).sum(axis=1)
        psi = -2.0 * x.T @ (self.fitted * xi)
        psi[0] -= 1.0
        return float(0.5 * self.unobserved * (-(v @ psi))[0])

    def coefficients(self) -> dict[str, float]:
        return dict(zip(self.names, self.coef.tolist(), strict=True))

    def standard_errors(self) -> dict[str, float]:
        return dict(zip(self.names, np.sqrt(np.diag(self.vcov)).tolist(), strict=True))


# Masks of :func:`_non_aliased` for small designs, keyed by the design's bytes: model selection and bootstrap
# refit the same few designs thousands of times. Emptied when its keys would pass _ALIAS_CACHE_BUDGET bytes.
_ALIAS_CACHE: dict[tuple[tuple[int, ...], bytes], np.ndarray] = {}
_ALIAS_CACHE_BYTES = 1 << 16  # larger designs are not remembered
_ALIAS_CACHE_BUDGET = 1 << 23
_alias_cache_used = 0


def non_aliased(x: np.ndarray) -> np.ndarray:
    """Boolean mask of the columns of ``x`` a fit keeps: a column is aliased (False) when it is, within
    :data:`ALIAS_TOLERANCE`, a linear combination of the kept columns before it (R's rule: earlier columns take
    precedence). An all-zero column is always aliased."""
    return _non_aliased(x)


def alias_directions(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The null space of ``x`` as one row per aliased column ``j`` (``keep[j]`` False): the vector with 1 at ``j``
    and, at the kept columns, minus the coefficients that rebuild column ``j`` from them, so ``x @ row = 0``.

    Moving the coefficients along any of these rows leaves ``x @ beta`` unchanged: a function of the
    coefficients is identified by data seen through ``x`` only if it does not change along them.
    """
    keep = np.asarray(keep, dtype=bool)
    kept = np.flatnonzero(keep)
    rows = []
    for j in np.flatnonzero(~keep):
        row = np.zeros(x.shape[1])
        row[j] = 1.0
        if kept.size and np.any(x[:, j]):
            row[kept] = -np.linalg.lstsq(x[:, kept], x[:, j], rcond=None)[0]
        rows.append(row)
    return np.array(rows).reshape(len(rows), x.shape[1])


def _non_aliased(x: np.ndarray) -> np.ndarray:
    """Boolean mask of columns kept when earlier columns take precedence (R's pivoting rule)."""
    global _alias_cache_used
    if x.nbytes > _ALIAS_CACHE_BYTES:
        return _non_aliased_columns(x)
    key = (x.shape, np.ascontiguousarray(x, dtype=np.float64).tobytes())
    keep = _ALIAS_CACHE.get(key)
    if keep is None:
        keep = _non_aliased_columns(x)
        if _alias_cache_used + len(key[1]) > _ALIAS_CACHE_BUDGET:
            _ALIAS_CACHE.clear()
            _alias_cache_used = 0
        _ALIAS_CACHE[key] = keep
        _alias_cache_used += len(key[1])
    return keep.copy()


def _non_aliased_columns(x: np.ndarray) -> np.ndarray:
    """Gram-Schmidt over the columns in order: a column is kept when its residual is not negligible."""
    keep = np.zeros(x.shape[1], dtype=bool)
    scale = np.linalg.norm(x, axis=0)
    basis = np.zeros((x.shape[0], 0))
    for j in range(x.shape[1]):
        col = x[:, j]
        if scale[j] == 0:
            continue
        resid = col - basis @ (basis.T @ col) if basis.shape[1] else col
        resid = resid - basis @ (basis.T @ resid) if basis.shape[1] else resid
        if np.linalg.norm(resid) > ALIAS_TOLERANCE * scale[j]:
            keep[j] = True
            basis = np.column_stack([basis, resid / np.linalg.norm(resid)])
    return keep


def newton_step(information: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The Newton step ``I^-1 s``; the least-squares solution when ``I`` is singular (aliased or boundary terms)."""
    try:
        return np.linalg.solve(information, score)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(information, score, rcond=None)[0]


def poisson_deviance(y: np.ndarray, mu: np.ndarray, positive: np.ndarray | None = None) -> float:
    """2 sum [Y log(Y/mu) - (Y - mu)] with the Y = 0 terms equal to 2 mu.

    ``positive`` (the mask ``y > 0``) may be passed by callers that evaluate many ``mu`` for the same ``y``.
    """
    pos = y > 0 if positive is None else positive
    y_pos = y[pos]
    out = 2.0 * (y_pos * np.log(y_pos / mu[pos])).sum() - 2.0 * (y - mu).sum()
    return float(out)


def fit_poisson(
    design: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray | None = None,
    names: list[str] | None = None,
    n_observed: int | None = None,
    start: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-12,
    algorithm: str = "newton",
) -> PoissonFit:
    """Fit log mu = offset + gamma + design @ beta by Newton-Raphson with step halving.

    Parameters
    ----------
    design:
        (cells, p) matrix *without* the intercept column (it is added as the first column).
    y:
        observed counts per cell (non-negative; zeros are informative).
    offset:
        known part of log mu (e.g. log C(t, k) when cells are grouped by capture count).
    names:
        column names for ``design`` (default ``x1..xp``).
    n_observed:
        n, the number of units seen (default ``y.sum()``); used for N_hat and BIC.
    start:
        starting coefficients (full length incl. intercept; NaN entries replaced) - used for warm starts.

    algorithm:
        ``"newton"`` (default): Newton-Raphson to full convergence; the covariance is the inverse information
        at the MLE. ``"glm"``: R's ``glm.fit`` path exactly (IRLS from mu = Y + 0.1, stop when the relative
        deviance change < 1e-8, at most 25 iterations, covariance from the weights of the *last IRLS step*,
        i.e. the previous iterate). Rcapture's printed standard errors come from that covariance, so they
        differ from the exact ones in about the 5th significant digit; use ``"glm"`` to reproduce them.

    Returns a :class:`PoissonFit`. Convergence: relative deviance change below ``tol`` (as ``glm`` with a
    stricter epsilon) after a full Newton step; ``converged`` is False after ``max_iter`` iterations.
    """
    y = np.asarray(y, dtype=float)
    cells = len(y)
    design = np.asarray(design, dtype=float).reshape(cells, -1)
    x_full = np.column_stack([np.ones(cells), design])
    p_full = x_full.shape[1]
    names = ["(Intercept)"] + (list(names) if names is not None else [f"x{j + 1}" for j in range(design.shape[1])])
    if len(names) != p_full:
        raise ConfigError("need one name per design column")
    offset = np.zeros(cells) if offset is None else np.asarray(offset, dtype=float)
    keep = _non_aliased(x_full)
    if not keep[0]:
        raise ModelError("the design has no usable intercept")
    x = x_full[:, keep]
    p = x.shape[1]
    if p > cells:
        raise ModelError(f"the model has {p} parameters but only {cells} cells to fit them")

    if start is not None:
        beta = np.where(np.isnan(start[keep]), 0.0, start[keep]).astype(float)
    else:  # glm's start: one weighted least-squares step from mu = y + 0.1
        mu0 = y + 0.1
        z = np.log(mu0) - offset + (y - mu0) / mu0
        w = np.sqrt(mu0)
        beta = np.linalg.lstsq(x * w[:, None], z * w, rcond=None)[0]

    positive = y > 0

    def evaluate(b: np.ndarray) -> tuple[np.ndarray, float]:  # runs inside _newton_loop's np.errstate
        eta = offset + x @ b
        mu = np.exp(np.minimum(eta, 700.0))
        return mu, poisson_deviance(y, mu, positive)

    if algorithm == "glm":
        return _fit_glm_path(x_full, keep, y, offset, names, n_observed, max_iter=25 if max_iter == 100 else max_iter)
    if algorithm != "newton":
        raise ConfigError(f"unknown fitting algorithm {algorithm!r}; use 'newton' or 'glm'")

    # a trial step can underflow a fitted count to 0 (infinite deviance): the step halving rejects it quietly
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _newton_loop(x, x_full, keep, y, offset, names, n_observed, beta, evaluate, max_iter, tol)


def _newton_loop(x, x_full, keep, y, offset, names, n_observed, beta, evaluate, max_iter, tol) -> PoissonFit:
    mu, dev = evaluate(beta)
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007
        score = x.T @ (y - mu)
        info = x.T @ (x * mu[:, None])
        step = newton_step(info, score)
        factor = 1.0
        for _ in range(60):
            new_beta = beta + factor * step
            new_mu, new_dev = evaluate(new_beta)
            if np.isfinite(new_dev) and new_dev <= dev + 1e-12 * (abs(dev) + 1):
                break
            factor /= 2.0
        else:
            break
        change = abs(new_dev - dev) / (abs(new_dev) + 0.1)
        beta, mu, dev = new_beta, new_mu, new_dev
        if change < tol:
            # converged when the last full step was negligible; a deviance that no longer moves while a
            # step stays large means a parameter is running off to infinity (boundary): stop, not converged
            converged = factor == 1.0 and np.max(np.abs(step)) < 1e-4 * (1 + np.max(np.abs(beta)))
            break
        if change < tol * 1e-3 and factor < 1.0:
            break

    info = x.T @ (x * mu[:, None])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(info)
    return _assemble(x_full, keep, names, y, mu, beta, cov, dev, converged, iterations, n_observed)


def _assemble(x_full, keep, names, y, mu, beta, cov, deviance, converged, iterations, n_observed) -> PoissonFit:
    """A :class:`PoissonFit` from the non-aliased coefficients ``beta`` and their covariance ``cov`` (aliased
    columns get NaN), with the Poisson log-likelihood including the log y! term, as R's glm reports it."""
    p_full = x_full.shape[1]
    coef = np.full(p_full, np.nan)
    coef[keep] = beta
    vcov = np.full((p_full, p_full), np.nan)
    vcov[np.ix_(keep, keep)] = cov
    loglik = float(np.sum(y * np.log(np.where(mu > 0, mu, 1.0)) - mu - gammaln(y + 1.0)))
    rank = int(np.count_nonzero(keep))
    return PoissonFit(
        names=names,
        coef=coef,
        vcov=vcov,
        fitted=mu,
        deviance=deviance,
        df=float(len(y) - rank),
        loglik=loglik,
        rank=rank,
        converged=converged,
        iterations=iterations,
        n_observed=int(np.rint(y.sum())) if n_observed is None else int(n_observed),
        aliased=[n for n, k in zip(names, keep, strict=True) if not k],
        design=x_full,
    )


def _fit_glm_path(
    x_full: np.ndarray,
    keep: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray,
    names: list[str],
    n_observed: int | None,
    max_iter: int = 25,
    epsilon: float = 1e-8,
) -> PoissonFit:
    """IRLS exactly as R's ``glm.fit`` for the Poisson family (see :func:`fit_poisson`)."""
    x = x_full[:, keep]
    mu = y + 0.1
    eta = np.log(mu)
    dev_old = poisson_deviance(y, mu)
    converged = False
    cov = np.eye(x.shape[1])
    beta = np.zeros(x.shape[1])
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007
        z = eta - offset + (y - mu) / mu
        xtw = x.T * mu
        info = xtw @ x
        beta = np.linalg.solve(info, xtw @ z)
        cov = np.linalg.inv(info)
        eta = offset + x @ beta
        mu = np.exp(eta)
        dev = poisson_deviance(y, mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            converged = True
            break
        dev_old = dev
    return _assemble(x_full, keep, names, y, mu, beta, cov, dev, converged, iterations, n_observed)


# ---------------------------------------------------------------------------------------------- designs
HETEROGENEITY = ("Chao", "Poisson", "Darroch", "Gamma")


def heterogeneity_columns(k: np.ndarray, kind: str, occasions: float, theta: float | None = None) -> tuple[np.ndarray, list[str]]:
    """Heterogeneity columns as functions of the capture count k (Rcapture's parametrisations).

    * ``"Chao"`` (lower bound, Rivest & Baillargeon 2007): eta_j = max(k - j + 1, 0), j = 3..t;
    * ``"Poisson"`` (theta = a, default 2): a^k - 1;
    * ``"Darroch"``: k^2 / 2;
    * ``"Gamma"`` (theta, default 3.5): -log(theta + k) + log(theta).
    """
    k = np.asarray(k, dtype=float)
    if kind == "Chao":
        if not math.isfinite(occasions):
            top = int(k.max()) if k.size else 2
        else:
            top = int(occasions)
        js = np.arange(3, top + 1)
        cols = np.maximum(k[:, None] - js[None, :] + 1.0, 0.0)
        return cols, [f"eta{j}" for j in js]
    if kind == "Poisson":
        a = 2.0 if theta is None else float(theta)
        return (np.power(a, k) - 1.0)[:, None], ["tau"]
    if kind == "Darroch":
        return (k**2 / 2.0)[:, None], ["tau"]
    if kind == "Gamma":
        th = 3.5 if theta is None else float(theta)
        if th <= 0:
            raise ConfigError("the Gamma heterogeneity parameter theta must be > 0")
        return (-np.log(th + k) + math.log(th))[:, None], ["tau"]
    raise ConfigError(f"unknown heterogeneity {kind!r}; use one of {', '.join(HETEROGENEITY)}")


def behaviour_columns(patterns: np.ndarray, with_first: bool = False) -> tuple[np.ndarray, list[str]]:
    """Mb / Mbh columns: occasions before the first capture, k - 1 (and 1[not caught on occasion 1] for Mbh)."""
    first = patterns.argmax(axis=1).astype(float)
    k = patterns.sum(axis=1).astype(float)
    cols = [first, k - 1.0]
    names = ["b_before", "b_after"]
    if with_first:
        cols.insert(0, (patterns[:, 0] == 0).astype(float))
        names.insert(0, "first_missed")
    return np.column_stack(cols), names


def closed_design(
    patterns: np.ndarray, model: str, heterogeneity: str | None = None, theta: float | None = None
) -> tuple[np.ndarray, list[str]]:
    """Design (without intercept) for ``model`` in {"M0", "Mt", "Mh", "Mth", "Mb", "Mbh"} over ``patterns``.

    ``heterogeneity`` (for Mh/Mth) is one of :data:`HETEROGENEITY`. Mh with Chao keeps the k column; Mt uses
    one column per occasion (omega_1..omega_t), Rcapture's parametrisation.
    """
    patterns = np.asarray(patterns)
    t = patterns.shape[1]
    k = patterns.sum(axis=1).astype(float)
    labels = [f"c{j + 1}" for j in range(t)]
    if model == "M0":
        return k[:, None], ["k"]
    if model == "Mt":
        return patterns.astype(float), labels
    if model in ("Mh", "Mth"):
        if heterogeneity is None:
            raise ConfigError(f"{model} needs a heterogeneity form: one of {', '.join(HETEROGENEITY)}")
        base, names = (k[:, None], ["k"]) if model == "Mh" else (patterns.astype(float), labels)
        h, hn = heterogeneity_columns(k, heterogeneity, t, theta)
        return np.column_stack([base, h]), names + hn
    if model == "Mb":
        return behaviour_columns(patterns)
    if model == "Mbh":
        return behaviour_columns(patterns, with_first=True)
    raise ConfigError(f"unknown closed model {model!r}")


def interaction_design(
    patterns: np.ndarray,
    terms: list[str] | str,
    labels: list[str] | tuple[str, ...],
    heterogeneity: str | None = None,
    theta: float | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Main effects of every list plus the chosen interactions (products of 0/1 columns), optionally with a
    heterogeneity column set of k (Rcapture ``mX = ~ . + c1:c2`` with ``h = ...``)."""
    patterns = np.asarray(patterns, dtype=float)
    t = patterns.shape[1]
    cols = [patterns[:, j] for j in range(t)]
    names = [str(label) for label in labels]
    for key in parse_terms(terms, labels):
        cols.append(np.prod(patterns[:, list(key)], axis=1))
        names.append(":".join(str(labels[j]) for j in key))
    x = np.column_stack(cols)
    if heterogeneity is not None:
        h, hn = heterogeneity_columns(patterns.sum(axis=1), heterogeneity, t, theta)
        x = np.column_stack([x, h])
        names = names + hn
    return x, names


def fit_poisson_batch(design: np.ndarray, counts: np.ndarray, tol: float = 1e-11, max_iter: int = 100):
    """Poisson log-linear MLE for a batch of count vectors sharing one design (bootstrap replicates).

    ``counts`` is (B, K). Starts like R's glm (μ = y + 0.1) with one IRLS step, then damped Newton steps.
    Returns (coefficients (B, p), fitted (B, K), converged (B,)).
    """
    counts = np.atleast_2d(counts)
    batch = counts.shape[0]
    p = design.shape[1]
    mu = counts + 0.1
    eta = np.log(mu)
    working = eta + (counts - mu) / mu
    gram = np.einsum("kp,bk,kq->bpq", design, mu, design)
    rhs = np.einsum("kp,bk->bp", design, mu * working)
    beta = np.linalg.solve(gram + 1e-12 * np.eye(p), rhs[..., None])[..., 0]
    converged = np.zeros(batch, dtype=bool)
    for _ in range(max_iter):
        eta = beta @ design.T
        mu = np.exp(np.minimum(eta, 700))
        gradient = (counts - mu) @ design
        hessian = np.einsum("kp,bk,kq->bpq", design, mu, design)
        try:
            step = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hessian[0], gradient[0], rcond=None)[0][None, :]
        change = np.abs(step @ design.T).max(axis=1)
        scale = np.minimum(1.0, 5.0 / np.maximum(change, 1e-300))
        beta = beta + step * scale[:, None]
        converged = change < tol
        if converged.all():
            break
    eta = beta @ design.T
    mu = np.exp(np.minimum(eta, 700))
    return beta, mu, converged
