"""Profile-likelihood intervals for N in any log-linear closed model (Rcapture ``closedpCI``), plus Wald and
log-transformed intervals.

For a candidate N the never-caught cell gets the count n_0 = N - n and a design row of zeros (so
mu_0 = exp(gamma)); the Poisson model is refitted on all 2^t cells (for Chao models the negative-eta rule is
re-applied at every N) and the multinomial profile log-likelihood is, with Cormack's (1992) correction,

    l(N) = -(D(N) - 2 c(N)) / 2,
    c(N) = log( n_0^n_0 N! / (N^N n_0!) )                       if N <= 100,
         = n_0 - N - 1/2 log(n_0 / N)   (n_0 > 1),  -N + 1/2 log(2 pi N)  (n_0 in {0, 1})   if N > 100,

where D(N) is the Poisson deviance over the 2^t cells. The multinomial estimate maximises l over
(n, 3 N_Poisson); the bounds solve l(N) = l_max - chi2_{1, level} / 2 below and above it (upper search up to
``fmax_sup`` x N_Poisson). No root below means the lower bound is n; none above means the upper bound
exceeds the search range (both warned). Assumes the model is right; unlike Wald intervals it respects N >= n
and the skewness of the likelihood. Reference: Cormack (1992) Biometrics 48:567-576; Rivest & Levesque (2001).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from hiddenpop.brent import find_root, minimize_bounded
from hiddenpop.capture.closed.models import (
    choose_engine,
    fit_closed,
    fit_with_chao_rule,
    parse_model,
    with_t0,
)
from hiddenpop.capture.core.histories import Histories
from hiddenpop.capture.core.intervals import log_transformed_ci
from hiddenpop.capture.core.loglinear import fit_poisson
from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.results import Estimates
from hiddenpop.special import gammaln


@dataclass
class ProfileCI:
    """Profile-likelihood interval for N, with the Poisson and multinomial point estimates."""

    model: str
    poisson_abundance: float
    stderr: float
    multinomial_abundance: float
    lower: float
    upper: float
    level: float
    observed: int
    warnings: list[str] = field(default_factory=list)

    def wald(self) -> tuple[float, float]:
        z = NormalDist().inv_cdf(0.5 + self.level / 2)
        return self.poisson_abundance - z * self.stderr, self.poisson_abundance + z * self.stderr

    def log_transformed(self) -> tuple[float, float]:
        return log_transformed_ci(self.observed, self.poisson_abundance, self.stderr, self.level)

    def to_estimates(self) -> Estimates:
        """Rows: the profile interval (with the Poisson N_hat as estimate), Wald and log-transformed."""
        wald = self.wald()
        logt = self.log_transformed()
        base = {"quantity": "abundance", "method": self.model, "estimate": self.poisson_abundance, "se": self.stderr}
        rows = [
            base | {"lower": self.lower, "upper": self.upper, "level": self.level, "interval": "profile likelihood",
                    "multinomial_estimate": self.multinomial_abundance},
            base | {"lower": wald[0], "upper": wald[1], "level": self.level, "interval": "Wald"},
            base | {"lower": logt[0], "upper": logt[1], "level": self.level, "interval": "log-transformed"},
        ]
        return Estimates.from_rows(rows, warnings=list(self.warnings), settings={"level": self.level})


def cormack_correction(big_n: float, n0: float) -> float:
    """Cormack's (1992) term c(N) turning the Poisson deviance into the multinomial profile likelihood."""
    if big_n > 100:
        if n0 == 0 or n0 == 1:
            return -big_n + 0.5 * math.log(2 * math.pi * big_n)
        return n0 - big_n - 0.5 * math.log(n0 / big_n)
    n0_log = n0 * math.log(n0) if n0 > 0 else 0.0
    return n0_log + float(gammaln(big_n + 1.0)) - big_n * math.log(big_n) - float(gammaln(n0 + 1.0))


def profile_interval(
    deviance_at: Callable[[float], float],
    observed: int,
    poisson_abundance: float,
    level: float = 0.95,
    fmax_sup: float = 3.0,
    tol: float = 1e-7,
    stderr: float | None = None,
) -> tuple[float, float, float, list[str]]:
    """Generic profile interval given ``deviance_at(N)`` (Poisson deviance with n_0 = N - n in the 0 cell).

    Returns (multinomial N_hat, lower, upper, warnings). Every refit is expensive (for Chao models a chain of
    negative-eta refits), so evaluations are cached and, when ``stderr`` (of the Poisson estimate) is given,
    each bound is first bracketed next to its log-transformed guess, so Brent's method starts on a short
    bracket (about half the refits of bracketing [n, N_hat] and [N_hat, fmax_sup N]); the roots solved for
    are the same.
    """
    if not 0 < level < 1:
        raise ConfigError(f"confidence level must be between 0 and 1, got {level}")
    n = float(observed)
    cache: dict[float, float] = {}

    def loglik(big_n: float) -> float:
        big_n = float(big_n)
        if big_n not in cache:
            n0 = max(big_n - n, 0.0)
            cache[big_n] = -(deviance_at(big_n) - 2.0 * cormack_correction(big_n, n0)) / 2.0
        return cache[big_n]

    xtol = tol * max(1.0, n)
    upper_search = max(3.0 * poisson_abundance, n + 1.0)
    search = (n, upper_search)
    if stderr is not None and math.isfinite(stderr) and stderr > 0:
        # the multinomial estimate is within a few standard errors of the Poisson one; search there first
        # and the whole range only if the optimum lands on an edge of that window
        search = (max(n, poisson_abundance - 4.0 * stderr), min(upper_search, poisson_abundance + 4.0 * stderr))
    opt = minimize_bounded(lambda v: -loglik(v), *search, xatol=xtol)
    if search != (n, upper_search) and (
        (opt.x - search[0] < 10 * xtol and search[0] > n) or (search[1] - opt.x < 10 * xtol and search[1] < upper_search)
    ):
        opt = minimize_bounded(lambda v: -loglik(v), n, upper_search, xatol=xtol)
    n_max = float(opt.x)
    l_max = -float(opt.fun)
    if loglik(n) > l_max:
        n_max, l_max = n, loglik(n)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    target = l_max - z**2 / 2.0  # chi2_1 quantile
    warnings: list[str] = []

    def g(v: float) -> float:
        return loglik(v) - target

    guesses = (None, None)
    if stderr is not None and math.isfinite(stderr) and stderr > 0 and poisson_abundance > n:
        guesses = log_transformed_ci(observed, poisson_abundance, stderr, level)

    def bracket(inner: float, outer: float, guess: float | None) -> tuple[float, float]:
        """A short [a, b] between ``inner`` (g > 0) and ``outer`` containing the root, starting at ``guess``."""
        if guess is None or not math.isfinite(guess) or not min(inner, outer) < guess < max(inner, outer):
            return inner, outer
        near = guess
        for _ in range(6):
            if g(near) < 0:
                return inner, near
            inner, near = near, near + 1.5 * (near - inner) if outer > inner else near - 1.5 * (inner - near)
            if not min(inner, outer) < near < max(inner, outer):
                break
        return inner, outer

    lower = n
    if n_max > n and g(n) < 0:
        a, b = bracket(n_max, n, guesses[0])
        lower = find_root(g, min(a, b), max(a, b), xtol=xtol)
    else:
        warnings.append("profile lower bound reached the number observed (no root above n); lower = n")
    hi = fmax_sup * poisson_abundance
    upper = math.inf
    if hi > n_max and g(hi) < 0:
        a, b = bracket(n_max, hi, guesses[1])
        upper = find_root(g, min(a, b), max(a, b), xtol=xtol)
    else:
        warnings.append(f"profile upper bound beyond {fmax_sup:g} x the Poisson estimate; reported as infinite")
    return n_max, lower, upper, warnings


def profile_ci(
    histories: Histories,
    model: str,
    level: float = 0.95,
    *,
    fmax_sup: float = 3.0,
    engine: str = "auto",
    neg_eta: bool = True,
    t0: int | None = None,
) -> ProfileCI:
    """Profile-likelihood CI for a named closed model (M0, Mt, Mh *, Mth *; any t, capture-count data too).

    ``t0`` restricts M0 and Mh models to the capture-count classes 1..t0 (see :func:`fit_closed`)."""
    spec = with_t0(parse_model(model), t0, histories)
    if spec.t0 is not None:
        engine = "auto"
    if spec.base in ("Mb", "Mbh"):
        raise ModelError("no profile-likelihood interval for Mb/Mbh (N is not n + exp(intercept)); use the log-transformed CI")
    if spec.heterogeneity == "Normal":
        raise ModelError(f"no profile-likelihood interval for {spec.name} (it is not a log-linear model); use the "
                         "log-transformed interval of capture closed --normal")
    fit = fit_closed(histories, spec, engine=engine, neg_eta=neg_eta)
    used = choose_engine(histories, spec, engine, "newton")
    if used == "sufficient" and engine == "auto" and histories.occasions <= 10:
        used = "enumerate"  # the same exact fit; for small t the dense 2^t-cell Newton is faster per refit
    n = histories.observed

    warm: dict = {}

    def deviance_at(big_n: float) -> float:
        raw, _, _ = fit_with_chao_rule(histories, spec, used, max(big_n - n, 0.0), "newton", neg_eta, warm=warm)
        return raw.deviance

    n_max, lower, upper, warnings = profile_interval(
        deviance_at, n, fit.abundance, level, fmax_sup, stderr=fit.stderr
    )
    return ProfileCI(spec.name, fit.abundance, fit.stderr, n_max, lower, upper, level, n, warnings + fit.warnings)


def profile_ci_design(
    design: np.ndarray,
    counts: np.ndarray,
    level: float = 0.95,
    *,
    names: list[str] | None = None,
    observed: int | None = None,
    fmax_sup: float = 3.0,
    model: str = "custom",
) -> ProfileCI:
    """Profile-likelihood CI for any log-linear design over the observable cells (for MSE model selection).

    ``design`` is (cells, p) without the intercept, ``counts`` the cell counts (zeros included), in the same
    order. Negative-eta rules are not applied here (pass the design of the final model).
    """
    y = np.asarray(counts, dtype=float)
    x = np.asarray(design, dtype=float).reshape(len(y), -1)
    n = int(np.rint(y.sum())) if observed is None else int(observed)
    fit = fit_poisson(x, y, names=names, n_observed=n)
    if fit.aliased:
        raise ModelError("the design is not of full rank; no profile interval (as Rcapture)")
    x0 = np.vstack([np.zeros((1, x.shape[1])), x])
    start = fit.coef.copy()

    def deviance_at(big_n: float) -> float:
        y0 = np.concatenate([[max(big_n - n, 0.0)], y])
        return fit_poisson(x0, y0, names=names, n_observed=n, start=start).deviance

    n_max, lower, upper, warnings = profile_interval(
        deviance_at, n, fit.abundance, level, fmax_sup, stderr=fit.stderr
    )
    return ProfileCI(model, fit.abundance, fit.stderr, n_max, lower, upper, level, n, warnings)
