"""Closed models at any number of occasions, from sufficient statistics (no 2^t enumeration).

The Mt / Mth family
-------------------
For the log-linear models with time effects and a heterogeneity function of the capture count k,

    log mu_w = gamma + sum_j beta_j w_j + h(k(w))' eta,              w in {0,1}^t,

the Poisson log-likelihood over the 2^t - 1 observable cells (plus, for profile intervals, the never-caught
cell w = 0 with count f_0) is

    l = (n + f_0) gamma + sum_j n_j beta_j + sum_k f_k h(k)' eta - sum_w mu_w - sum_w log Y_w!.

The data enter only through the occasion totals n_j and the capture-count frequencies f_k (sufficient
statistics), and the expected total factorises by k:

    sum_w mu_w = sum_{k=0}^t exp(gamma + h(k)' eta) e_k(x),        x_j = exp(beta_j),

where e_k is the elementary symmetric polynomial of degree k. Writing x~_j = s x_j with a tilt s > 0,
p_j = x~_j / (1 + x~_j) and P_k = P(K = k) for K ~ Poisson-binomial(p), e_k(x) = s^-k prod_j(1 + x~_j) P_k, so
with w_k = exp(gamma + h(k)' eta - k log s + sum_j log(1 + x~_j)) all quantities are positive sums (no
cancellation): the expected group totals are m_k = w_k P_k, and with Q^(j) the Poisson-binomial without
occasion j and R^(jl) without j and l,

    E[n_j]                   = p_j sum_k w_k Q^(j)_{k-1},
    I(beta_j, beta_l), j!=l  = p_j p_l sum_k w_k R^(jl)_{k-2},      I(beta_j, beta_j) = E[n_j],
    I(beta_j, eta)           = p_j sum_k w_k h(k) Q^(j)_{k-1},
    I(gamma, .), I(eta, eta) = sums of m_k, m_k h(k), m_k h(k) h(k)'.

Q^(j) = F_j * B_{j+1} (pmfs over the occasions before and after j). Every sum above is a linear functional
of Q^(j), computed without forming Q^(j): with the backward messages
G_j(a) = sum_b B_j[b] c(a+b+1) w_{a+b+1} / w_a, which obey G_j(a) = q_j G_{j+1}(a) + p_j (w_{a+1}/w_a) G_{j+1}(a+1),
sum_k c(k) w_k Q^(j)_{k-1} = w_0 sum_a F~_j[a] G_{j+1}(a), where F~_j[a] = F_j[a] w_a / w_0 (so F~_t = m / w_0).
Carrying the weights inside the prefix pmfs keeps the far tail of the Poisson-binomial (which underflows at
large t) multiplied by the possibly huge w_k of the 2^k and k^2 heterogeneity forms where it is used. The
pair sums follow in O(t^2) from partial fractions, R^(jl) = (p_l Q^(l) - p_j Q^(j)) / (p_l - p_j); pairs with
(nearly) equal p (e.g. equal n_j) are summed exactly: occasions are processed in p order, so close pairs
are neighbours (read off the messages), members of a tied cluster, or rare cases bridged by carrying the
messages across the occasions between. One Newton step costs O(t^2 q) in t vectorised passes.
Newton-Raphson (equilibrated solves, step halving) on this exact likelihood gives the same MLE, covariance,
deviance and AIC as the enumerated fit (tested to 1e-8); t = 200 takes well under a second per fit. The
tilt s is chosen so that sum_j p_j equals the mean number of captures among the units seen.

When it fails: if the weights w_k span more than double precision across k (the 2^k column at t = 200),
the backward messages overflow and the fit stops, flagged as not converged; such a column is fixed by
capture counts nobody reaches anyway (see the Poisson warning in :mod:`hiddenpop.capture.closed.models`).

The deviance and AIC over all 2^t - 1 cells need, besides the above, only sum over *observed* patterns of
Y log Y and log Y! (see :meth:`hiddenpop.capture.core.histories.Histories.ylogy_sum`).

Models depending on k alone (M0, Mh family) and behavioural models (Mb, Mbh) are grouped fits with offsets
(log C(t, k), or log C(t - a, k - 1) for first capture a), handled in :mod:`hiddenpop.capture.closed.models`.

Reference: the factorisation is the one behind conditional-likelihood and Poisson-binomial computations
(e.g. Chen, Dempster & Liu 1994); Rivest & Baillargeon (2007) for the Mth log-linear parametrisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hiddenpop.capture.core.loglinear import newton_step
from hiddenpop.errors import ModelError
from hiddenpop.parallel import single_thread_blas
from hiddenpop.special import expit, gammaln


@dataclass
class SufficientFit:
    """Coefficients (gamma, beta_1..beta_t, eta...), inverse information, fitted group totals m_k (k=0..t)."""

    names: list[str]
    coef: np.ndarray
    vcov: np.ndarray
    group_expected: np.ndarray
    loglik_kernel: float  # sum y log mu - sum mu (without log Y!), incl. the f_0 cell
    converged: bool
    iterations: int

    @property
    def rank(self) -> int:
        return len(self.coef)


def poisson_binomial(p: np.ndarray) -> np.ndarray:
    """pmf of the number of successes among independent Bernoulli(p_j), by exact convolution (positive sums)."""
    p = np.asarray(p, dtype=float)
    pmf = np.zeros(len(p) + 1)
    pmf[0] = 1.0
    for j, pj in enumerate(p):
        moved = pmf[: j + 1] * pj
        pmf[: j + 1] *= 1.0 - pj
        pmf[1 : j + 2] += moved
    return pmf


class _MtFamily:
    """Objective, score and information of the Mt/Mth likelihood from (n_j, f_k).

    Occasions are processed in increasing order of p_j (ties and near-ties become neighbours), and every
    array indexed by the capture count a carries the weight w_a / w_0: F~_j[a] = F_j[a] w_a / w_0, so its last
    row is m_k / w_0 itself. This keeps the far tail of the Poisson-binomial (which underflows at large t,
    e.g. prod_j p_j ~ 1e-340 at t = 200) multiplied by the possibly astronomically large w_k of heterogeneity
    models (2^k, k^2) where it is used, instead of forming 0 * inf.
    """

    def __init__(self, totals: np.ndarray, freq: np.ndarray, h: np.ndarray, f0: float | None) -> None:
        self.t = len(totals)
        # the never-caught cell enters the likelihood only when a count is put in it (profile likelihood)
        self.mask = np.ones(self.t + 1)
        if f0 is None:
            self.mask[0] = 0.0
            f0 = 0.0
        self.totals = np.asarray(totals, dtype=float)
        self.freq = np.concatenate([[float(f0)], np.asarray(freq, dtype=float)])  # k = 0..t
        self.h = np.asarray(h, dtype=float).reshape(self.t + 1, -1)  # rows k = 0..t
        self.q = self.h.shape[1]
        k = np.arange(self.t + 1)
        seen = self.freq[1:].sum()
        mean_k = float((k[1:] * self.freq[1:]).sum() / seen) if seen > 0 else 1.0
        self.target_mean = min(max(mean_k, 0.5), self.t - 0.5)
        self.k = k
        # value columns c(k) of the first-order sums: 1 and the heterogeneity columns
        self.columns = np.column_stack([np.ones(self.t + 1), self.h])
        self._log_s = 0.0
        self._cache: tuple[bytes, _State] | None = None

    def _tilt(self, beta: np.ndarray) -> float:
        """log s such that sum expit(beta + log s) = target mean (monotone; Newton from the last tilt)."""
        log_s = self._log_s
        for _ in range(60):
            p = expit(beta + log_s)
            g = p.sum() - self.target_mean
            d = (p * (1 - p)).sum()
            if not d > 0:
                break
            step = g / d
            log_s -= np.clip(step, -5, 5)
            if abs(step) < 1e-12:
                break
        if np.isfinite(log_s):
            self._log_s = float(log_s)
        return float(log_s)

    def state(self, theta: np.ndarray) -> _State:
        """Probabilities, weights and the scaled prefix pmfs at ``theta`` (cached for the last theta)."""
        key = theta.tobytes()
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        t = self.t
        gamma, beta, eta = theta[0], theta[1 : t + 1], theta[t + 1 :]
        with np.errstate(all="ignore"):
            log_s = self._tilt(beta)
            z = beta + log_s
            order = np.argsort(z, kind="stable")
            zs = z[order]
            ps, qs = expit(zs), expit(-zs)
            log_w = gamma + self.h @ eta - self.k * log_s + np.logaddexp(0.0, z).sum()
            ratio = np.exp(np.diff(log_w))  # ratio[a - 1] = w_a / w_{a-1}
            step_p = ps[:, None] * ratio[None, :]  # step_p[j, a - 1] = p_j w_a / w_{a-1}
            prefix = np.zeros((t + 1, t + 1))
            prefix[0, 0] = 1.0
            for j in range(t):
                row = prefix[j, : j + 1]
                nxt = prefix[j + 1]
                np.multiply(row, qs[j], out=nxt[: j + 1])
                nxt[1 : j + 2] += step_p[j, : j + 1] * row
            base = math.exp(log_w[0]) if log_w[0] < 709.0 else math.inf
            groups = prefix[t] * base  # m_k, k = 0..t
        state = _State(order, ps, qs, ratio, step_p, prefix, base, groups)
        self._cache = (key, state)
        return state

    def kernel(self, theta: np.ndarray) -> float:
        """sum_w y log mu - sum_w mu (the log-likelihood without the constant log Y! terms)."""
        gamma, beta, eta = theta[0], theta[1 : self.t + 1], theta[self.t + 1 :]
        st = self.state(theta)
        with np.errstate(invalid="ignore", over="ignore"):
            total = float(np.sum(st.groups * self.mask))
        linear = self.freq.sum() * gamma + self.totals @ beta + self.freq @ (self.h @ eta)
        return float(linear - total) if np.isfinite(total) and np.isfinite(linear) else -math.inf

    def expected_groups(self, theta: np.ndarray) -> np.ndarray:
        return self.state(theta).groups * self.mask

    def score_information(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # overflow (e.g. Poisson2's 2^k at large t) yields non-finite values that stop the fit as not converged
        with np.errstate(all="ignore"):
            return self._score_information(theta)

    def _score_information(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, q = self.t, self.q
        st = self.state(theta)
        ps, qs, ratio, step_p, prefix, base = st.ps, st.qs, st.ratio, st.step_p, st.prefix, st.base
        m = st.groups * self.mask
        # Backward messages G_j(a) = sum_b B_j[b] c(a+b+1) w_{a+b+1} / w_a over the suffix pmfs B_j (occasions
        # j..t-1 in sorted order): G_j(a) = q_j G_{j+1}(a) + p_j (w_{a+1}/w_a) G_{j+1}(a+1). Then, with the
        # leave-one-out pmf Q^(j) = F_j * B_{j+1}:
        #   sum_k c(k) w_k Q^(j)_{k-1} = w_0 sum_a F~_j[a] G_{j+1}(a)
        #   A_j = sum_k w_k Q^(j)_{k-2} = w_0 sum_a F~_j[a] (w_{a+1}/w_a) G_{j+1}(a+1, c = 1)
        #   S_{j,j+1} = sum_k w_k (F_j * B_{j+2})_{k-2}  (exact sum for neighbours in p order)
        ncols = self.columns.shape[1]
        history = np.zeros((t + 1, t + 2, ncols))  # history[j] = G_j (rows a; only a <= j are used)
        history[t, :t] = self.columns[1:] * ratio[:, None]
        for j in range(t - 1, -1, -1):
            current, previous = history[j, : j + 1], history[j + 1]
            np.multiply(previous[: j + 1], qs[j], out=current)
            current += step_p[j, : j + 1, None] * previous[1 : j + 2]
        lower = prefix[:t, :t]  # F~_j[a], zero for a > j
        first = np.einsum("ja,jac->jc", lower, history[1:, :t])
        weighted = lower * ratio[None, :]
        second = np.einsum("ja,ja->j", weighted, history[1:, 1 : t + 1, 0])
        neighbours = np.einsum("ja,ja->j", weighted[: t - 1], history[2:, 1 : t + 1, 0])
        ones_history = history[:, :, 0]
        first *= base
        second *= base
        neighbours *= base
        expected_sorted = ps * first[:, 0]
        beta_eta_sorted = ps[:, None] * first[:, 1:]
        pair = _pair_sums(ps, qs, second, neighbours, prefix, ones_history, step_p, ratio, base)
        beta_beta = np.outer(ps, ps) * pair
        beta_beta[np.diag_indices(t)] = expected_sorted
        inverse = np.empty(t, dtype=int)
        inverse[st.order] = np.arange(t)
        expected_nj = expected_sorted[inverse]
        beta_eta = beta_eta_sorted[inverse]
        beta_beta = beta_beta[np.ix_(inverse, inverse)]
        size = 1 + t + q
        info = np.empty((size, size))
        info[0, 0] = m.sum()
        info[0, 1 : t + 1] = info[1 : t + 1, 0] = expected_nj
        info[0, t + 1 :] = info[t + 1 :, 0] = m @ self.h
        info[1 : t + 1, 1 : t + 1] = beta_beta
        info[1 : t + 1, t + 1 :] = beta_eta
        info[t + 1 :, 1 : t + 1] = beta_eta.T
        info[t + 1 :, t + 1 :] = (self.h * m[:, None]).T @ self.h
        score = np.concatenate(
            [[self.freq.sum() - m.sum()], self.totals - expected_nj, self.freq @ self.h - m @ self.h]
        )
        return score, info


@dataclass
class _State:
    order: np.ndarray  # occasions sorted by p
    ps: np.ndarray
    qs: np.ndarray
    ratio: np.ndarray  # w_a / w_{a-1}, a = 1..t
    step_p: np.ndarray  # p_j w_a / w_{a-1}
    prefix: np.ndarray  # F~_j[a] = F_j[a] w_a / w_0, j = 0..t (sorted occasions)
    base: float  # w_0
    groups: np.ndarray  # m_k = w_k P_k, k = 0..t


#: Pairs with |p_l - p_j| below this fraction of max(p_j, p_l) are computed exactly instead of by the divided
#: difference (whose rounding error grows like eps * p / |p_l - p_j|).
CLOSE_PAIR = 1e-5
#: Relative difference below which two probabilities are treated as tied (rounding noise of equal n_j).
TIE = 1e-12


def _pair_sums(ps, qs, second, neighbours, prefix, ones_history, step_p, ratio, base) -> np.ndarray:
    """S_jl = sum_k w_k R^(jl)_{k-2} for all j != l (occasions sorted by p; symmetric, zero diagonal).

    R^(jl) = (p_l Q^(l) - p_j Q^(j)) / (p_l - p_j) (partial fractions of P(z) / ((1-p_j+p_j z)(1-p_l+p_l z))),
    so S_jl = (p_l A_l - p_j A_j) / (p_l - p_j) with A_j = sum_k w_k Q^(j)_{k-2}: O(t^2) in all. That divided
    difference loses accuracy as p_l -> p_j, so (nearly) equal pairs are summed exactly instead: members of a
    tied cluster (equal n_j) share the value of the cluster's first two (neighbouring) members, other close
    neighbours in p order come from the backward messages directly, and the rare remaining close pairs by
    carrying the messages across the occasions between them.
    """
    t = len(ps)
    g = ps * second
    diff_p = ps[None, :] - ps[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        pair = (g[None, :] - g[:, None]) / diff_p
    np.fill_diagonal(pair, 0.0)
    if t < 2:
        return pair
    close = np.abs(diff_p) <= CLOSE_PAIR * np.maximum(ps[None, :], ps[:, None])
    np.fill_diagonal(close, False)
    if not close.any():
        return pair
    cluster = np.concatenate([[0], np.cumsum(np.diff(ps) > TIE * ps[1:])])
    same = cluster[:, None] == cluster[None, :]
    np.fill_diagonal(same, False)
    if same.any():
        _, first_member, size = np.unique(cluster, return_index=True, return_counts=True)
        cluster_value = np.zeros(len(size))
        cluster_value[size > 1] = neighbours[first_member[size > 1]]
        pair = np.where(same, cluster_value[cluster][:, None], pair)
    for j, m in zip(*np.nonzero(np.triu(close & ~same)), strict=True):
        value = neighbours[j] if m == j + 1 else _pair_sum_exact(j, m, qs, prefix, ones_history, step_p, ratio) * base
        pair[j, m] = pair[m, j] = value
    return pair


def _pair_sum_exact(j, m, qs, prefix, ones_history, step_p, ratio) -> float:
    """sum_k w_k (F_j * B(j+1..m-1) * B_{m+1})_{k-2} / w_0 for j < m - 1 (carry G_{m+1} down to j + 1)."""
    g = ones_history[m + 1].copy()
    for i in range(m - 1, j, -1):
        g[: i + 1] = qs[i] * g[: i + 1] + step_p[i, : i + 1] * g[1 : i + 2]
    f = prefix[j, : j + 1]
    return float((f * ratio[: j + 1]) @ g[1 : j + 2])


def fit_mt_family(
    occasion_totals: np.ndarray,
    frequencies: np.ndarray,
    h_columns: np.ndarray | None = None,
    h_names: list[str] | None = None,
    unobserved: float | None = None,
    start: np.ndarray | None = None,
    max_iter: int = 200,
    tol: float = 1e-12,
    covariance: bool = True,
) -> SufficientFit:
    """Fit log mu_w = gamma + beta'w + h(k)'eta from n_j (length t) and f_k (k = 1..t) without enumeration.

    ``h_columns`` is the (t + 1, q) matrix of heterogeneity columns evaluated at k = 0..t (None for Mt).
    ``unobserved`` is the count put in the never-caught cell (profile likelihood); ``None`` (the ordinary fit)
    leaves that cell out of the likelihood, as the 2^t - 1 observable cells are what is fitted.
    ``covariance=False`` skips the information matrix at the optimum (``vcov`` is then all NaN): profile
    likelihoods need only the maximised likelihood.
    """
    totals = np.asarray(occasion_totals, dtype=float)
    t = len(totals)
    freq = np.asarray(frequencies, dtype=float)
    if len(freq) != t:
        raise ModelError(f"need f_k for k = 1..{t}, got {len(freq)} values")
    h = np.zeros((t + 1, 0)) if h_columns is None else np.asarray(h_columns, dtype=float).reshape(t + 1, -1)
    names = ["(Intercept)"] + [f"c{j + 1}" for j in range(t)] + (list(h_names) if h_names else [f"h{i}" for i in range(h.shape[1])])
    model = _MtFamily(totals, freq, h, unobserved)
    # the matrices are small (t + q + 1 square): BLAS threads only add contention, so use one
    with single_thread_blas():
        return _newton(model, totals, freq, h, names, start, max_iter, tol, covariance)


def _newton(model, totals, freq, h, names, start, max_iter, tol, covariance=True) -> SufficientFit:
    t = len(totals)
    if start is None:
        n = freq.sum()
        n_total = 1.5 * n + 1.0
        phat = np.clip(totals / n_total, 1e-3, 1 - 1e-3)
        beta0 = np.log(phat / (1 - phat))
        gamma0 = math.log(n_total) + float(np.log1p(-phat).sum())
        theta = np.concatenate([[gamma0], beta0, np.zeros(h.shape[1])])
    else:
        theta = np.asarray(start, dtype=float).copy()
    value = model.kernel(theta)
    if not np.isfinite(value):
        theta[t + 1 :] = 0.0
        value = model.kernel(theta)
    converged = False
    iterations = 0
    info = np.eye(len(theta))
    for iterations in range(1, max_iter + 1):  # noqa: B007
        score, info = model.score_information(theta)
        if not (np.isfinite(score).all() and np.isfinite(info).all()):
            break
        step = _solve(info, score)
        # step halving; when the full step fails and moves some log expected count by more than MAX_LOG_STEP
        # (far from the MLE, e.g. the 2^k column of Poisson2 at large t), halving restarts from that length
        move = max(float(np.max(np.abs(step[1 : t + 1]), initial=0.0)), float(np.max(np.abs(step[0] + h @ step[t + 1 :]))))
        factor = 1.0
        for _ in range(60):
            candidate = theta + factor * step
            new_value = model.kernel(candidate)
            if np.isfinite(new_value) and new_value >= value - 1e-12 * (abs(value) + 1):
                break
            factor = min(factor, MAX_LOG_STEP / move) / 2.0 if factor == 1.0 and move > 0 else factor / 2.0
        else:
            break
        change = abs(new_value - value) / (abs(new_value) + 0.1)
        theta, value = candidate, new_value
        if change < tol:
            # converged when the last full step was negligible; a deviance that no longer moves while a
            # step stays large means a parameter is running off to infinity (boundary): stop, not converged
            converged = factor == 1.0 and np.max(np.abs(step)) < 1e-4 * (1 + np.max(np.abs(theta)))
            break
        if change < tol * 1e-3 and factor < 1.0:
            break
    if not covariance:
        vcov = np.full((len(theta), len(theta)), np.nan)
    else:
        score, info = model.score_information(theta)
        try:
            vcov = _inverse(info)
        except np.linalg.LinAlgError:
            # a parameter diverging to -inf (a capture count never observed) carries no information; the
            # pseudo-inverse keeps the others usable and the fit is flagged as not converged
            vcov = np.linalg.pinv(info)
            converged = False
    return SufficientFit(
        names=names,
        coef=theta,
        vcov=vcov,
        group_expected=model.expected_groups(theta),
        loglik_kernel=value,
        converged=converged,
        iterations=iterations,
    )


#: Largest change of any log expected count allowed in one Newton step (longer steps are shortened).
MAX_LOG_STEP = 30.0


def _equilibration(info: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.abs(np.diag(info)))
    d[~(d > 0) | ~np.isfinite(d)] = 1.0
    return d


def _solve(info: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Newton step I^-1 s on the symmetrically scaled system D^-1 I D^-1 (columns such as 2^k span many
    orders of magnitude; the scaling makes the step invariant to how a covariate is scaled)."""
    d = _equilibration(info)
    scaled = info / np.outer(d, d)
    return newton_step(scaled, score / d) / d


def _inverse(info: np.ndarray) -> np.ndarray:
    d = _equilibration(info)
    return np.linalg.inv(info / np.outer(d, d)) / np.outer(d, d)


def log_binomial(t: int, k: np.ndarray) -> np.ndarray:
    """log C(t, k) elementwise."""
    k = np.asarray(k, dtype=float)
    return gammaln(t + 1.0) - gammaln(k + 1.0) - gammaln(t - k + 1.0)
