"""Model choice for the Bayesian network scale-up models: K-fold cross-validation by PSU and randomized quantile
residuals.

Why not PSIS-LOO: approximate leave-one-out reweights the full-data posterior draws by 1 / p(y_i | draws). In an
ARD model each respondent has their own latent degree, which the respondent's own answers pin down, so the
full-data and leave-one-out posteriors differ sharply for that parameter and the importance weights have
infinite variance (Pareto k > 0.7 for most respondents; Ward, Smith, Zhang & Zheng 2025, arXiv:2506.21353).
Exact K-fold cross-validation refits the model without the held-out respondents, so nothing is reweighted.

Folds are made of whole primary sampling units (:func:`assign_folds`): respondents of one cluster share exposure
to the hidden groups, and splitting a cluster across training and test folds would let the training data see the
test respondents' cluster and flatter the models that overfit it.

Held-out predictive density. A held-out respondent's degree is new, so it is integrated out under the fitted
degree distribution, draw by draw::

    p(y_i | draw s) = integral over t of prod_k f(y_ik | e^t, theta_s) Normal(t; mu_s, sigma_s) dt,   t = log d_i
    log p(y_i | training data) = log mean_s p(y_i | draw s)

f is Poisson(d p_k) (degree, transmission), the gamma-Poisson NB with mean d p_k and shape p_k r_k (barrier,
combined; Maltiel et al. 2015) or the NB with mean d p_k and variance omega_k times the mean (overdispersed,
Zheng et al. 2006, whose log d_i = alpha_i + C has mean C and sd sigma_alpha). The integral is taken by adaptive
Gauss-Hermite quadrature (Liu & Pierce 1994): Newton's method finds the mode of the integrand in t and its
curvature, and ``GAUSS_HERMITE_NODES`` nodes are placed around that mode on that scale. Plain Gauss-Hermite on
the prior scale fails here: a respondent who reports 100 contacts pins log d_i to about 0.1, ten times narrower
than sigma, and the fixed nodes would miss the peak.

Randomized quantile residuals (Dunn & Smyth 1996): for a count y with predictive CDF F, u ~ U(F(y - 1), F(y)) and
r = Phi^-1(u) is exactly N(0, 1) when F is the true distribution. Here F is the posterior predictive of cell
(i, k) given respondent i's own fitted degree, averaged over posterior draws; barrier effects that depend on a
respondent characteristic show as residuals that trend with it (:func:`residual_table`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betainc, gammaln, logsumexp, pdtr, psi

from hiddenpop.data.io import missing_column
from hiddenpop.distributions import normal_quantile
from hiddenpop.errors import ConfigError, DataError
from hiddenpop.nsum.bayes import recall as recall_curve
from hiddenpop.nsum.bayes.common import BayesData
from hiddenpop.nsum.bayes.maltiel import MaltielModel
from hiddenpop.nsum.bayes.overdispersed import OverdispersedModel
from hiddenpop.nsum.covariates import COVARIATE_MODELS

__all__ = ["GAUSS_HERMITE_NODES", "CountModel", "KFoldResult", "assign_folds", "count_model", "kfold_compare",
           "log_predictive", "pairwise_table", "quantile_residuals", "residual_table", "respondent_column"]

#: nodes of the adaptive Gauss-Hermite rule over a held-out respondent's log degree. Against adaptive
#: integration (scipy ``quad``) the log density agreed to 1e-8 with 15 nodes on the test cases
#: (tests/test_nsum_crossval.py); each node costs one evaluation of the likelihood.
GAUSS_HERMITE_NODES = 15
#: Newton steps towards the integrand's mode on the model's likelihood, after those on its Poisson approximation
#: (each step moves at most ``NEWTON_MAX_STEP`` in log degree).
NEWTON_STEPS = 12
NEWTON_MAX_STEP = 2.0
#: posterior draws used for held-out densities and residuals (evenly thinned when the fit has more).
MAX_PREDICTIVE_DRAWS = 1000
RESIDUAL_DRAWS = 100
#: array elements per chunk of respondents (keeps memory near 100 MB at survey scale)
CHUNK_ELEMENTS = 4_000_000
#: a numeric covariate with more distinct values than this is cut into quintiles in the residual table
MAX_COVARIATE_LEVELS = 12
#: a text covariate with more levels than this is refused: an identifier or free-text column would publish one level
#: per respondent, while the strata or regions of a national survey stay below it (Study 2: 15 strata)
MAX_TEXT_LEVELS = 30


# --------------------------------------------------------------------------------------------- the count model
@dataclass(frozen=True)
class CountModel:
    """The distribution of one respondent's answers, per posterior draw s (arrays lead with the draw axis).

    log d ~ Normal(mu_s, sigma_s); given d, y_k is Poisson(d p_sk) (``family="poisson"``), gamma-Poisson with
    mean d p_sk and shape ``shape[s, k]`` (``"gamma"``), or NB with mean d p_sk and shape d ``shape[s, k]``
    (``"proportional"``: variance omega_k times the mean, omega_k = 1 + p_sk / shape[s, k]). ``degree`` holds the
    fitted degrees of the respondents the draws come from (used by the residuals)."""

    mu: np.ndarray
    sigma: np.ndarray
    log_prob: np.ndarray
    family: str = "poisson"
    shape: np.ndarray | None = None
    degree: np.ndarray | None = None

    @property
    def draws(self) -> int:
        return int(self.mu.shape[0])


def _flat(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values.reshape(-1, *values.shape[2:])[keep]


def count_model(model: MaltielModel, data: BayesData, samples: Mapping[str, np.ndarray],
                max_draws: int = MAX_PREDICTIVE_DRAWS) -> CountModel:
    """The :class:`CountModel` of a fitted model from its posterior ``samples`` (shape (chains, draws, ...)).

    Supported: the random-degree models with the Poisson likelihood and the overdispersed model. The basic model
    fixes each degree at an estimate from the respondent's own answers, so it has no degree distribution to
    predict a new respondent with; the binomial likelihood needs d_i >= max_k y_ik, a support that depends on
    the held-out answers. Both are refused."""
    if getattr(model, "name", None) in COVARIATE_MODELS:
        raise ConfigError(f"the {model.name} model's held-out density and quantile residuals are not available: each "
                          "respondent's correlated reporting biases would have to be integrated out with the degree; "
                          "compare the Maltiel or overdispersed models")
    if isinstance(model, OverdispersedModel):
        total = int(np.asarray(samples["scale"]).size)
    else:
        if not model.random_degree:
            raise ConfigError(f"the {model.name} model fixes each degree at the respondent's own estimate, so it "
                              "cannot predict a new respondent; compare models with random degrees")
        if model.likelihood != "poisson":
            raise ConfigError("cross-validation and quantile residuals need likelihood = 'poisson' (the binomial "
                              "likelihood's support d_i >= max_k y_ik depends on the held-out answers)")
        total = int(np.asarray(samples["mu"]).size)
    keep = np.unique(np.linspace(0, total - 1, min(total, max_draws)).round().astype(int))
    if isinstance(model, OverdispersedModel):
        prob = _flat(samples["size_all"], keep) / data.population
        omega = _flat(samples["omega"], keep)
        return CountModel(mu=_flat(samples["scale"], keep), sigma=_flat(samples["sigma_alpha"], keep),
                          log_prob=np.log(prob), family="proportional", shape=prob / (omega - 1.0),
                          degree=_flat(samples["degree"], keep))
    draws = len(keep)
    prob = np.empty((draws, len(data.groups)))
    prob[:, data.known_index] = data.known_sizes[data.known_index] / data.population
    if len(data.hidden_index):
        hidden = _flat(samples["size"], keep)
        if "tau" in samples:
            hidden = hidden * _flat(samples["tau"], keep)
        prob[:, data.hidden_index] = hidden / data.population
    if "recall_slope" in samples:  # the recall curve multiplies every group's probability, as in the likelihood
        centre = float(np.mean(np.log(data.known_sizes[data.known_index] / data.population)))
        prob = prob * recall_curve.multiplier(prob, _flat(samples["recall_slope"], keep), centre)
    shape = None
    family = "poisson"
    if model.barrier:
        rho = _flat(samples["rho"], keep)
        shape = prob * (1.0 - rho) / rho  # a_k = p_k r_k, r_k = 1 / rho_k - 1
        family = "gamma"
    return CountModel(mu=_flat(samples["mu"], keep), sigma=_flat(samples["sigma"], keep), log_prob=np.log(prob),
                      family=family, shape=shape, degree=_flat(samples["degree"], keep))


# --------------------------------------------------------------------------------------------- held-out density
def _log_gamma_shift(x: np.ndarray, h: np.ndarray, switch: float = 30.0) -> np.ndarray:
    """log Gamma(x + h) - log Gamma(x) - h log x, accurate for huge x (Stirling's series above ``switch``); the
    NumPy counterpart of :func:`hiddenpop.nsum.bayes.maltiel.log_gamma_shift`."""
    x, h = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(h, dtype=float))
    large = x > switch
    small_x = np.where(large, switch, x)
    big_x = np.where(large, x, 2.0 * switch)

    def tail(z: np.ndarray) -> np.ndarray:
        inverse_square = 1.0 / (z * z)
        return (1.0 / z) * (1 / 12 - inverse_square * (1 / 360 - inverse_square * (1 / 1260 - inverse_square / 1680)))

    if not large.any():  # the usual case in a chunk: skip the series
        return gammaln(x + h) - gammaln(x) - h * np.log(x)
    direct = gammaln(small_x + h) - gammaln(small_x) - h * np.log(small_x)
    series = (big_x + h - 0.5) * np.log1p(h / big_x) - h + tail(big_x + h) - tail(big_x)
    return np.where(large, series, direct)


class _Likelihood:
    """sum_k log f(y_ik | d = e^t, draw s) and its first two derivatives in t, for a chunk of respondents.

    ``t`` has shape (S, m, J) (draws, respondents, points); the results have that shape."""

    def __init__(self, cm: CountModel, y: np.ndarray) -> None:
        self.cm = cm
        self.y = y  # (m, K)
        self.total = y.sum(axis=1)  # Y_i
        self.log_factorial = gammaln(y + 1.0).sum(axis=1)
        self.prob = np.exp(cm.log_prob)  # (S, K)
        # the t-free part: sum_k y_ik log p_sk - log y_ik!  (S, m)
        self.constant = cm.log_prob @ y.T - self.log_factorial[None, :]
        if cm.family == "gamma":
            a = cm.shape[:, None, :]
            # log Gamma(y + a) - log Gamma(a) - y log a, free of t
            self.constant = self.constant + _log_gamma_shift(a, y[None, :, :]).sum(axis=2)
            self.inv_r = (self.prob / cm.shape)[:, None, None, :]  # p_k / a_k = 1 / r_k
        elif cm.family == "proportional":
            self.log_omega = np.log1p(self.prob / cm.shape)[:, None, None, :]
            self.constant = -self.log_factorial[None, :] + (y[None, :, :] * (
                np.log(self.prob / cm.shape)[:, None, :] - np.log1p(self.prob / cm.shape)[:, None, :])).sum(axis=2)

    def __call__(self, t: np.ndarray, derivatives: bool = False) -> tuple[np.ndarray, ...]:
        cm, y = self.cm, self.y
        d = np.exp(t)
        if cm.family == "poisson":
            rate = d * self.prob.sum(axis=1)[:, None, None]
            value = self.total[None, :, None] * t - rate + self.constant[:, :, None]
            return (value, self.total[None, :, None] - rate, -rate) if derivatives else (value,)
        yk = y[None, :, None, :]
        if cm.family == "gamma":
            # log f = const + y t - (a + y) log(1 + d / r): the only t-dependent part
            u = d[..., None] * self.inv_r
            weight = cm.shape[:, None, None, :] + yk
            value = self.total[None, :, None] * t - (weight * np.log1p(u)).sum(axis=3) + self.constant[:, :, None]
            if not derivatives:
                return (value,)
            first = self.total[None, :, None] - (weight * u / (1.0 + u)).sum(axis=3)
            second = -(weight * u / (1.0 + u) ** 2).sum(axis=3)
            return value, first, second
        # proportional: shape a = d c, log f = log Gamma(y + a) - log Gamma(a) - a log omega + y log(1 - 1/omega)
        if derivatives:
            # Newton needs the slopes only; the second derivative is a central difference of the first: digamma
            # is far cheaper than trigamma (scipy evaluates it through the Hurwitz zeta), and h = 1e-4 leaves a
            # relative error near 1e-8
            step = 1e-4
            second = (self._first(t + step) - self._first(t - step)) / (2.0 * step)
            return None, self._first(t), second
        a = d[..., None] * cm.shape[:, None, None, :]
        # log Gamma(y + a) - log Gamma(a) = shift + y log a (exact also as omega -> 1, a -> inf), zero where y = 0:
        # evaluated on the non-zero cells only
        positive = np.broadcast_to(yk > 0, a.shape)
        gamma_terms = np.zeros(a.shape)
        a_positive = a[positive]
        y_positive = np.broadcast_to(yk, a.shape)[positive]
        gamma_terms[positive] = _log_gamma_shift(a_positive, y_positive) + y_positive * np.log(a_positive)
        value = (gamma_terms - a * self.log_omega).sum(axis=3) + self.constant[:, :, None]
        return (value,)

    def _first(self, t: np.ndarray) -> np.ndarray:
        """d/dt of the proportional family's log likelihood: sum_k a_k (psi(y_k + a_k) - psi(a_k) - log omega_k)."""
        yk = self.y[None, :, None, :]
        a = np.exp(t)[..., None] * self.cm.shape[:, None, None, :]
        positive = np.broadcast_to(yk > 0, a.shape)
        gap = np.zeros(a.shape)
        a_positive = a[positive]
        gap[positive] = psi(np.broadcast_to(yk, a.shape)[positive] + a_positive) - psi(a_positive)
        return (a * (gap - self.log_omega)).sum(axis=3)


def _log_normal_pdf(t: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    z = (t - mu) / sigma
    return -0.5 * z * z - np.log(sigma) - 0.5 * np.log(2.0 * np.pi)


def _chunk_log_density(cm: CountModel, y: np.ndarray, nodes: np.ndarray, log_weights: np.ndarray) -> np.ndarray:
    """(S, m) log p(y_i | draw s) with t = log d_i integrated out by adaptive Gauss-Hermite quadrature."""
    likelihood = _Likelihood(cm, y)
    mu = cm.mu[:, None, None]
    sigma = cm.sigma[:, None, None]
    precision = 1.0 / sigma**2
    rate = np.exp(cm.log_prob).sum(axis=1)[:, None, None]
    # start at the mode under the Poisson approximation (cheap: no per-group terms), then refine on the model's
    # own likelihood; the quadrature needs the mode only to a small fraction of the integrand's width
    total = likelihood.total[None, :, None]
    t = np.clip(np.log((total + 0.5) / rate), mu - 5.0 * sigma, mu + 5.0 * sigma)
    for _ in range(4 * NEWTON_STEPS):
        step = np.clip((total - np.exp(t) * rate - (t - mu) * precision) / (np.exp(t) * rate + precision),
                       -NEWTON_MAX_STEP, NEWTON_MAX_STEP)
        t = t + step
        if np.max(np.abs(step)) < 1e-10:
            break
    for _ in range(NEWTON_STEPS if cm.family != "poisson" else 0):
        _, first, second = likelihood(t, derivatives=True)
        gradient = first - (t - mu) * precision
        # a non-concave likelihood (possible in the NB with shape proportional to d) still gets an ascent step
        hessian = np.minimum(second, 0.0) - precision
        step = np.clip(-gradient / hessian, -NEWTON_MAX_STEP, NEWTON_MAX_STEP)
        t = t + step
        if np.max(np.abs(step)) < 1e-9:
            break
    _, _, second = likelihood(t, derivatives=True)
    scale = 1.0 / np.sqrt(precision - np.minimum(second, 0.0))
    points = t + np.sqrt(2.0) * scale * nodes  # (S, m, J)
    (value,) = likelihood(points)
    integrand = value + _log_normal_pdf(points, mu, sigma) + log_weights + nodes**2
    return np.log(np.sqrt(2.0) * scale[..., 0]) + logsumexp(integrand, axis=2)


def log_predictive(cm: CountModel, counts: np.ndarray, *, pointwise_draws: bool = False) -> np.ndarray:
    """log p(y_i | draws) for new respondents ``counts`` (n x K): each respondent's degree integrated out under
    the degree distribution of every draw, then the log of the mean over draws. With ``pointwise_draws`` the
    (draws, n) matrix log p(y_i | draw s) is returned instead."""
    counts = np.asarray(counts, dtype=float)
    hermite_nodes, hermite_weights = np.polynomial.hermite.hermgauss(GAUSS_HERMITE_NODES)
    nodes = hermite_nodes[None, None, :]
    log_weights = np.log(hermite_weights)[None, None, :]
    per_respondent = cm.draws * GAUSS_HERMITE_NODES * (counts.shape[1] if cm.family != "poisson" else 1)
    size = max(1, CHUNK_ELEMENTS // max(per_respondent, 1))
    pieces = [_chunk_log_density(cm, counts[start:start + size], nodes, log_weights)
              for start in range(0, counts.shape[0], size)]
    by_draw = np.concatenate(pieces, axis=1)
    if pointwise_draws:
        return by_draw
    return logsumexp(by_draw, axis=0) - np.log(cm.draws)


# --------------------------------------------------------------------------------------------- folds
def assign_folds(units: Sequence[Any] | np.ndarray | None, folds: int, seed: int, *,
                 strata: Sequence[Any] | np.ndarray | None = None, n: int | None = None) -> np.ndarray:
    """Fold number (1..``folds``) of every respondent, keeping each unit (PSU) whole.

    Units are the PSU labels (each respondent its own unit when ``units`` is None, then ``n`` is the number of
    respondents); with ``strata`` a unit is a (stratum, PSU) pair. Within each stratum the units are shuffled
    with the seed and dealt to the folds in turn, the turn carried over from one stratum to the next, so every
    fold gets about the same share of each stratum's units. The same labels, folds and seed give the same
    assignment, whatever the row order."""
    if units is None:
        if n is None:
            raise ConfigError("assign_folds needs the unit labels or the number of respondents")
        labels = np.arange(n).astype(str)
    else:
        labels = np.asarray(units).astype(str)
    stratum = np.zeros(len(labels), dtype=object) if strata is None else np.asarray(strata).astype(str)
    if len(stratum) != len(labels):
        raise ConfigError("the stratum and PSU columns must have one value per respondent")
    keys = pd.Series([f"{s}\x1f{u}" for s, u in zip(stratum, labels, strict=True)])
    if not isinstance(folds, int | np.integer) or folds < 2:
        raise ConfigError(f"K-fold cross-validation needs at least 2 folds, got {folds!r}")
    unique = sorted(set(keys))
    if len(unique) < folds:
        raise ConfigError(f"{folds} folds need at least {folds} PSUs; the survey has {len(unique)}: lower the "
                          "number of folds")
    rng = np.random.default_rng(seed)
    unit_fold: dict[str, int] = {}
    turn = 0
    by_stratum: dict[str, list[str]] = {}
    for key in unique:
        by_stratum.setdefault(key.split("\x1f", 1)[0], []).append(key)
    for name in sorted(by_stratum):
        members = by_stratum[name]
        for key in (members[j] for j in rng.permutation(len(members))):
            unit_fold[key] = turn % folds + 1
            turn += 1
    return keys.map(unit_fold).to_numpy(dtype=int)


# --------------------------------------------------------------------------------------------- K-fold
@dataclass
class KFoldResult:
    """K-fold comparison. ``table``: one row per model (elpd_kfold, se, elpd_diff to the best, se_diff, folds
    whose fit passed its gates); ``folds``: elpd per fold and model; ``pairs``: every pair's difference with its
    standard error; ``pointwise``: each respondent's fold and log predictive density per model."""

    table: pd.DataFrame
    folds: pd.DataFrame
    pointwise: pd.DataFrame
    units: str
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _unit_labels(psu: Any, strata: Any, n: int) -> tuple[np.ndarray, str]:
    if psu is None:
        return np.arange(n).astype(str), "respondent"
    labels = np.asarray(psu).astype(str)
    if strata is not None:
        labels = np.array([f"{s}\x1f{u}" for s, u in zip(np.asarray(strata).astype(str), labels, strict=True)])
    return labels, "PSU"


def comparison_table(pointwise: pd.DataFrame, models: Sequence[str], units: np.ndarray) -> pd.DataFrame:
    """elpd per model with its standard error and the difference to the best model with its standard error.

    The standard errors treat the units (PSUs, or respondents without a PSU column) as independent draws:
    se = sqrt(G var_g(e_g)) with e_g the summed log density of unit g (Vehtari, Gelman & Gabry 2017 sum per
    respondent; summing per PSU first keeps the within-cluster correlation out of the error)."""
    by_unit = pointwise[list(models)].groupby(units, sort=True).sum()
    count = len(by_unit)
    elpd = by_unit.sum(axis=0)
    best = str(elpd.idxmax())
    rows = []
    for name in models:
        diff = by_unit[name] - by_unit[best]
        rows.append({
            "model": name, "elpd_kfold": float(elpd[name]),
            "se": float(np.sqrt(count * by_unit[name].var(ddof=1))) if count > 1 else float("nan"),
            "elpd_diff": float(elpd[name] - elpd[best]),
            "se_diff": float(np.sqrt(count * diff.var(ddof=1))) if count > 1 else float("nan"),
        })
    return pd.DataFrame(rows).sort_values("elpd_kfold", ascending=False, kind="stable").reset_index(drop=True)


def pairwise_table(pointwise: pd.DataFrame, models: Sequence[str], units: np.ndarray) -> pd.DataFrame:
    """Every pair of models: elpd of the first minus the second, with the standard error of the difference from
    the per-unit differences (as in :func:`comparison_table`) and the difference in standard errors."""
    by_unit = pointwise[list(models)].groupby(units, sort=True).sum()
    count = len(by_unit)
    rows = []
    for i, first in enumerate(models):
        for second in models[i + 1:]:
            diff = by_unit[first] - by_unit[second]
            se = float(np.sqrt(count * diff.var(ddof=1))) if count > 1 else float("nan")
            rows.append({"model": first, "versus": second, "elpd_diff": float(diff.sum()), "se_diff": se,
                         "z": float(diff.sum() / se) if se > 0 else float("nan")})
    return pd.DataFrame(rows, columns=["model", "versus", "elpd_diff", "se_diff", "z"])


def kfold_compare(models: Mapping[str, MaltielModel], data: BayesData, *, folds: int, seed: int = 0,
                  psu: Any = None, strata: Any = None, chains: int = 4, warmup: int = 1000, draws: int = 1000,
                  target_accept: float = 0.8, quiet: bool = True,
                  max_draws: int = MAX_PREDICTIVE_DRAWS) -> KFoldResult:
    """Exact K-fold cross-validation of ``models`` (name -> configured model) on ``data``.

    Folds keep PSUs whole (:func:`assign_folds`, stratum-balanced when ``strata`` is given). Each model is refitted
    on the other K - 1 folds with the same sampler settings and seed, and every held-out respondent gets
    log p(y_i | training data) with their degree integrated out (:func:`log_predictive`). The cost is K fits per
    model."""
    n = data.n_respondents
    for name, values in (("psu", psu), ("strata", strata)):
        if values is not None and len(values) != n:
            raise DataError(f"the {name} column has {len(values)} values for {n} respondents")
        if values is not None and pd.isna(pd.Series(values)).any():
            raise DataError(f"the {name} column has missing values; cross-validation folds need every "
                            "respondent's PSU")
    fold = assign_folds(psu, folds, seed, strata=strata, n=n)
    labels, unit_name = _unit_labels(psu, strata, n)
    pointwise = pd.DataFrame({"respondent": np.arange(1, n + 1), "fold": fold})
    fold_rows = []
    warnings: list[str] = []
    for name, model in models.items():
        values = np.empty(n)
        for k in range(1, folds + 1):
            test = fold == k
            train = replace(data, counts=data.counts[~test])
            fit = model.fit(train, chains=chains, warmup=warmup, draws=draws, seed=seed,
                            target_accept=target_accept, ppc_draws=0, quiet=quiet)
            samples = fit.extras["draws"].samples
            values[test] = log_predictive(count_model(model, train, samples, max_draws), data.counts[test])
            passed = bool(fit.diagnostics.get("passed", True))
            if not passed:
                warnings.append(f"K-fold: the {name} model's fit without fold {k} failed its convergence gates; "
                                "its elpd for that fold is unreliable")
            fold_rows.append({"model": name, "fold": k, "respondents": int(test.sum()),
                              "units": len(set(labels[test])), "elpd": float(values[test].sum()),
                              "passed_gates": passed})
        pointwise[name] = values
    table = comparison_table(pointwise, list(models), labels)
    fold_table = pd.DataFrame(fold_rows)
    passed = fold_table.groupby("model")["passed_gates"].sum()
    table["folds_passed"] = table["model"].map(passed).astype(int)
    table["folds"] = folds
    notes = [f"K-fold cross-validation: {folds} folds of whole {unit_name}s ({len(set(labels))} units), each "
             "model refitted on K - 1 folds; standard errors from the per-unit sums"]
    return KFoldResult(table=table, folds=fold_table, pointwise=pointwise, units=unit_name, notes=notes,
                       warnings=warnings, pairs=pairwise_table(pointwise, list(models), labels))


# --------------------------------------------------------------------------------------------- residuals
def _cdf(cm: CountModel, y: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """P(Y <= y) per draw for each cell: y (m, K) >= 0, degree (S, m); result (S, m, K)."""
    prob = np.exp(cm.log_prob)[:, None, :]
    mean = degree[:, :, None] * prob
    y = np.maximum(y, 0.0)[None]
    if cm.family == "poisson":
        return pdtr(y, mean)  # P(Y <= y) = Q(y + 1, mean), the regularized upper incomplete gamma
    shape = cm.shape[:, None, :] if cm.family == "gamma" else degree[:, :, None] * cm.shape[:, None, :]
    # negative binomial: P(Y <= y) = I_p(shape, y + 1), p = shape / (shape + mean)
    return betainc(shape, y + 1.0, shape / (shape + mean))


def quantile_residuals(cm: CountModel, counts: np.ndarray, seed: int, *, degree: np.ndarray | None = None,
                       max_draws: int = RESIDUAL_DRAWS) -> np.ndarray:
    """Randomized quantile residuals (Dunn & Smyth 1996), n x K: r = Phi^-1(u), u ~ U(F(y - 1), F(y)) with F the
    predictive CDF of cell (i, k) given respondent i's degree (``degree``, draws x n; default the fitted degrees
    of ``cm``), averaged over the draws. N(0, 1) when F is the true distribution."""
    counts = np.asarray(counts, dtype=float)
    degree = cm.degree if degree is None else np.asarray(degree, dtype=float)
    if degree is None or degree.shape[-1] != counts.shape[0]:
        raise ConfigError("quantile residuals need one fitted degree per respondent and draw")
    keep = np.unique(np.linspace(0, cm.draws - 1, min(cm.draws, max_draws)).round().astype(int))
    thin = replace(cm, mu=cm.mu[keep], sigma=cm.sigma[keep], log_prob=cm.log_prob[keep],
                   shape=None if cm.shape is None else cm.shape[keep], degree=None)
    degree = degree[keep]
    n, groups = counts.shape
    size = max(1, CHUNK_ELEMENTS // max(len(keep) * groups, 1))
    upper = np.empty((n, groups))
    lower = np.empty((n, groups))
    for start in range(0, n, size):
        rows = slice(start, start + size)
        upper[rows] = _cdf(thin, counts[rows], degree[:, rows]).mean(axis=0)
        lower[rows] = np.where(counts[rows] > 0, _cdf(thin, counts[rows] - 1.0, degree[:, rows]).mean(axis=0), 0.0)
    u = lower + (upper - lower) * np.random.default_rng(seed).random((n, groups))
    # u is 0 or 1 only through rounding of a CDF; keep Phi^-1 finite there
    tiny = np.finfo(float).tiny
    return normal_quantile(np.clip(u, tiny, 1.0 - np.finfo(float).epsneg))


def residual_table(residuals: np.ndarray, groups: Sequence[str], covariate: Any = None,
                   covariate_name: str | None = None) -> pd.DataFrame:
    """Summary of quantile residuals by group, and by level of a respondent covariate when one is given.

    A numeric covariate with more than ``MAX_COVARIATE_LEVELS`` distinct values is cut into quintiles; a text
    covariate with more is refused (it could be an identifier); missing covariate values form their own level.
    Columns: group, covariate level, respondents, mean residual, sd, share beyond +-2 (about 0.046 under the
    model), and for a numeric covariate the correlation of the residuals with it per group. A group whose mean
    residual moves with the covariate has a barrier effect that depends on it."""
    residuals = np.asarray(residuals, dtype=float)
    n = residuals.shape[0]
    if covariate is None:
        levels = pd.Series(["all"] * n)
        numeric = None
    else:
        values = pd.Series(np.asarray(covariate, dtype=object)).reset_index(drop=True)
        if len(values) != n:
            raise DataError(f"the residual covariate has {len(values)} values for {n} respondents")
        as_number = pd.to_numeric(values, errors="coerce")
        is_numeric = bool(as_number.notna().sum() == values.notna().sum() and values.notna().any())
        numeric = as_number.to_numpy(dtype=float) if is_numeric else None
        if is_numeric and as_number.nunique() > MAX_COVARIATE_LEVELS:
            bins = pd.qcut(as_number, 5, duplicates="drop")
            levels = bins.astype(str).where(as_number.notna(), "(missing)")
        else:
            distinct = values.dropna().nunique()
            if distinct > MAX_TEXT_LEVELS:
                named = "" if covariate_name is None else f"{covariate_name!r} "
                raise ConfigError(f"the residual covariate {named}has {distinct} distinct text values; name a column "
                                  f"with at most {MAX_TEXT_LEVELS} levels (e.g. stratum, region or age band) or a "
                                  "numeric one")
            levels = values.astype(str).where(values.notna(), "(missing)")
    rows = []
    for k, group in enumerate(groups):
        column = residuals[:, k]
        trend = float("nan")
        if numeric is not None:
            present = np.isfinite(numeric)
            if present.sum() > 2 and np.std(numeric[present]) > 0:
                trend = float(np.corrcoef(numeric[present], column[present])[0, 1])
        for level in sorted(levels.unique(), key=_level_order(levels)):
            mask = (levels == level).to_numpy()
            part = column[mask]
            rows.append({"group": group, "level": level, "respondents": int(mask.sum()),
                         "mean_residual": float(part.mean()),
                         "sd_residual": float(part.std(ddof=1)) if len(part) > 1 else float("nan"),
                         "share_beyond_2": float(np.mean(np.abs(part) > 2.0)), "correlation": trend})
    table = pd.DataFrame(rows)
    if covariate_name is not None:
        table.insert(1, "covariate", covariate_name)
    return table


def _level_order(levels: pd.Series):
    """Sort levels in the order they first appear when they are intervals (quintiles), else by text."""
    first = {level: i for i, level in enumerate(pd.unique(levels))}
    intervals = all(str(level).startswith(("(", "[")) for level in first if level != "(missing)")

    def key(level: str) -> tuple[int, Any]:
        if level == "(missing)":
            return (2, 0)
        if intervals:
            return (0, float(str(level)[1:].split(",")[0]))
        return (1, level)

    return key


def respondent_column(table: pd.DataFrame, column: str, rows: np.ndarray | None, source: str | None) -> np.ndarray:
    """The values of survey column ``column`` for the respondents an ARD kept (``rows``: their 1-based data rows,
    None for every row), for :func:`residual_table`. A missing column is a :class:`ConfigError` naming the option
    to fix."""
    if column not in table.columns:
        raise missing_column(source, column, table.columns, role="residual covariate",
                             fix="fix the option residuals_by", error=ConfigError)
    values = table[column].to_numpy(dtype=object)
    return values if rows is None else values[np.asarray(rows, dtype=int) - 1]
