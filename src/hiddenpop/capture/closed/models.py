"""Closed-population capture-recapture models with Rcapture's names and parametrisations.

All models are Poisson log-linear models for the 2^t - 1 observable history counts (Cormack 1989; Rivest &
Baillargeon 2007; Baillargeon & Rivest 2007, Rcapture):

    log mu_w = gamma + x_w' beta,      N_hat = n + exp(gamma_hat)     (except Mb, Mbh: see below)

=================  ==========================================================================================
model              columns besides the intercept (k = number of captures of history w)
=================  ==========================================================================================
M0                 k                                  (equal catchability)
Mt                 w_1..w_t                           (time effects; t = 2 gives Lincoln-Petersen)
Mh Chao (LB)       k, eta_j = (k - j + 1)_+, j = 3..t (heterogeneity, Chao's lower bound; eta_j >= 0)
Mh Poisson<a>      k, a^k - 1                         (Poisson2 = a = 2)
Mh Darroch         k, k^2 / 2                         (normal heterogeneity on the logit scale)
Mh Gamma<theta>    k, -log(theta + k) + log(theta)    (Gamma3.5 = theta = 3.5)
Mth <h>            w_1..w_t plus the Mh heterogeneity columns
Mb                 occasions before first capture, k - 1        (trap response)
Mbh                1[w_1 = 0], occasions before first capture, k - 1
=================  ==========================================================================================

* Assumptions: closed population over the study, no tag loss, captures of different units independent given
  the model's catchabilities. Heterogeneity models approximate a mixture of catchabilities; Chao's models
  give a *lower bound* when heterogeneity is present and assumptions of the others fail.
* Chao models: theory requires eta_j >= 0; as Rcapture (``neg = TRUE``), negative eta are removed one at a time
  (smallest j first among the negative ones) and the model refitted until none is negative; dropped names are
  reported in the warnings.
* Mb: N_hat = e^b0 (1 + e^b2)^t / (1 + e^b2 - e^b1), Mbh: N_hat = e^b0 (1 + e^b3)^(t-1) (1 + e^(b1+b2) /
  (1 + e^b3 - e^b2)); their standard errors are by the delta method minus N (multinomial adjustment), as
  Rcapture. Both can give negative or absurd estimates when recapture rates exceed first-capture rates
  strongly (warned).
* When models fail: M0/Mt underestimate under heterogeneity; Darroch/Gamma give large, unstable upper
  values when heterogeneity is strong; Chao is a lower bound; any estimate with large asymptotic bias
  (> 10% of N_hat), non-convergence, a boundary fit or N_hat > 10^6 n is flagged.

Engines: every standard model is fitted *exactly* either on grouped cells (M0, Mh family: by k with offset
log C(t, k); Mb, Mbh: by first capture and k) or from sufficient statistics (Mt, Mth family; see
:mod:`hiddenpop.capture.closed.sufficient`), so any t works. ``engine="enumerate"`` fits all 2^t - 1 cells (t <= 20),
and ``algorithm="glm"`` reproduces R's ``glm`` iteration path (and so Rcapture's printed standard errors, which
are computed at the penultimate IRLS iterate) to all digits.

Reference: Otis, Burnham, White & Anderson (1978) Wildlife Monographs 62; Rivest & Baillargeon (2007)
Biometrics 63:999-1006; Baillargeon & Rivest (2007) J. Stat. Softw. 19(5).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.capture.closed.normal import fit_logistic_normal
from hiddenpop.capture.closed.sufficient import fit_mt_family, log_binomial
from hiddenpop.capture.core.histories import MAX_ENUMERATED_OCCASIONS, Histories, all_patterns
from hiddenpop.capture.core.intervals import log_transformed_ci, wald_ci
from hiddenpop.capture.core.loglinear import (
    closed_design,
    exp_or_inf,
    fit_poisson,
    heterogeneity_columns,
    interaction_design,
)
from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.results import Estimates
from hiddenpop.special import gammaln

#: Rcapture closedp.t model names, in its order.
STANDARD_MODELS = (
    "M0",
    "Mt",
    "Mh Chao (LB)",
    "Mh Poisson2",
    "Mh Darroch",
    "Mh Gamma3.5",
    "Mth Chao (LB)",
    "Mth Poisson2",
    "Mth Darroch",
    "Mth Gamma3.5",
    "Mb",
    "Mbh",
)
#: Models available for capture-count (nbcap) data (Rcapture closedp.0).
FREQUENCY_MODELS = ("M0", "Mh Chao (LB)", "Mh Poisson2", "Mh Darroch", "Mh Gamma3.5")
#: Logistic-normal heterogeneity (Coull & Agresti 1999; Rcapture's h = "Normal"), fitted by quadrature.
NORMAL_MODELS = ("Mh Normal", "Mth Normal")
#: Largest t at which a Normal model is fitted on the 2^t - 1 history cells (beyond it, Mh uses capture counts).
NORMAL_ENUMERATION_MAX = 16

BIAS_WARNING_FRACTION = 0.1
HUGE_FACTOR = 1e6
#: Largest t at which Mt/Mth asymptotic bias is computed (it needs one pass over the 2^t cells, for the
#: final model only: about 0.05 s per model at t = 16).
BIAS_ENUMERATION_MAX = 16


@dataclass(frozen=True)
class ModelSpec:
    """A closed model: base structure, heterogeneity form and its parameter."""

    base: str  # M0, Mt, Mh, Mth, Mb, Mbh
    heterogeneity: str | None = None
    theta: float | None = None
    t0: int | None = None  # fit on capture-count classes 1..t0 only (Rcapture's closedp.0 t0)

    @property
    def name(self) -> str:
        if self.heterogeneity is None:
            return self.base
        if self.heterogeneity == "Chao":
            return f"{self.base} Chao (LB)"
        if self.heterogeneity in ("Darroch", "Normal"):
            return f"{self.base} {self.heterogeneity}"
        return f"{self.base} {self.heterogeneity}{_fmt_theta(self.theta)}"


def _fmt_theta(theta: float | None) -> str:
    if theta is None:
        return ""
    return str(int(theta)) if float(theta).is_integer() else f"{theta:g}"


_MODEL_RE = re.compile(
    r"^(M0|Mt|Mh|Mth|Mb|Mbh)(?:\s+(Chao|LB|Poisson|Darroch|Gamma|Normal)\s*([0-9.]*)\s*(?:\(LB\))?)?$",
    re.IGNORECASE
)


def parse_model(name: str) -> ModelSpec:
    """Parse a model name: "M0", "Mt", "Mh Chao (LB)", "Mth Poisson2", "Mh Gamma2.5", "Mbh" ..."""
    text = " ".join(str(name).split())
    match = _MODEL_RE.match(text)
    if not match:
        raise ConfigError(f"unknown closed model {name!r}; use one of {', '.join(STANDARD_MODELS)} (any Gamma theta)")
    base = {"m0": "M0", "mt": "Mt", "mh": "Mh", "mth": "Mth", "mb": "Mb", "mbh": "Mbh"}[match.group(1).lower()]
    het = match.group(2)
    number = match.group(3)
    if base in ("Mh", "Mth"):
        if het is None:
            raise ConfigError(f"model {name!r} needs a heterogeneity form, e.g. '{base} Chao (LB)' or '{base} Darroch'")
        het = {"chao": "Chao", "lb": "Chao", "poisson": "Poisson", "darroch": "Darroch", "gamma": "Gamma",
               "normal": "Normal"}[het.lower()]
        theta = None
        if het == "Poisson":
            theta = float(number) if number else 2.0
        elif het == "Gamma":
            theta = float(number) if number else 3.5
        elif number:
            raise ConfigError(f"model {name!r}: {het} heterogeneity takes no parameter")
        if theta is not None and theta <= 0:
            raise ConfigError(f"model {name!r}: the heterogeneity parameter must be > 0")
        return ModelSpec(base, het, theta)
    if het is not None:
        raise ConfigError(f"model {name!r}: only Mh and Mth take a heterogeneity form")
    return ModelSpec(base)


@dataclass
class ClosedFit:
    """One fitted closed model (what a row of the comparison table is made of)."""

    model: str
    abundance: float
    stderr: float
    deviance: float
    df: float
    aic: float
    bic: float
    coef: dict[str, float]
    vcov: np.ndarray
    rank: int
    converged: bool
    engine: str
    observed: int
    bias: float = math.nan
    dropped_eta: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fixed_eta: list[str] = field(default_factory=list)
    loglik: float = math.nan

    @property
    def unobserved(self) -> float:
        return self.abundance - self.observed

    def wald_ci(self, level: float = 0.95) -> tuple[float, float]:
        """N_hat -/+ z se (may go below n; use :meth:`log_ci`)."""
        return wald_ci(self.abundance, self.stderr, level)

    def log_ci(self, level: float = 0.95) -> tuple[float, float]:
        """Chao (1987) log-transformed interval [n + (N-n)/C, n + (N-n) C], C = exp(z sqrt(log(1 + se^2/(N-n)^2)))."""
        return log_transformed_ci(self.observed, self.abundance, self.stderr, level)

    def as_row(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "abundance": self.abundance,
            "stderr": self.stderr,
            "deviance": self.deviance,
            "df": self.df,
            "aic": self.aic,
            "bic": self.bic,
            "warnings": list(self.warnings),
        }


# ------------------------------------------------------------------------------------------- internals
@dataclass
class _RawFit:
    names: list[str]
    coef: np.ndarray
    vcov: np.ndarray
    rank: int
    converged: bool
    deviance: float
    df: float
    loglik: float
    bias: float


def _cells_count(t: float) -> float:
    return float(2**t - 1) if t < 1000 else math.inf


def _frequency_offsets(t: float, ks: np.ndarray) -> np.ndarray:
    if math.isinf(t):
        return -gammaln(ks + 1.0)
    return log_binomial(int(t), ks)


def _cells_to_fit(
    design: np.ndarray,
    names: list[str],
    y: np.ndarray,
    drop: list[str],
    unobserved: float | None,
    offset: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray | None]:
    """The design without the ``drop`` columns and, when ``unobserved`` is given, the never-caught cell put first
    (a zero design row with that count and a zero offset)."""
    keep = [i for i, nm in enumerate(names) if nm not in drop]
    design = design[:, keep]
    names = [names[i] for i in keep]
    if unobserved is not None:
        design = np.vstack([np.zeros((1, design.shape[1])), design])
        y = np.concatenate([[unobserved], y])
        if offset is not None:
            offset = np.concatenate([[0.0], offset])
    return design, names, y, offset


def _grouped_fit(
    histories: Histories,
    spec: ModelSpec,
    drop: list[str],
    unobserved: float | None,
    start: np.ndarray | None,
) -> _RawFit:
    """Exact fit on cells grouped by k (M0, Mh) or by (first capture, k) (Mb, Mbh), with offsets."""
    t = histories.occasions
    n = histories.observed
    if spec.base in ("M0", "Mh"):
        f = histories.frequencies()
        if spec.t0 is not None:  # classes 1..t0 (zeros beyond the largest count seen, as Rcapture pads them)
            f = np.concatenate([f, np.zeros(max(spec.t0 - len(f), 0), dtype=f.dtype)])[: spec.t0]
        ks = np.arange(1, len(f) + 1, dtype=float)
        y = f.astype(float)
        group_size_log = _frequency_offsets(t, ks)
        cols = [ks[:, None]]
        names = ["k"]
        if spec.base == "Mh":
            h, hn = heterogeneity_columns(ks, spec.heterogeneity, t, spec.theta)
            cols.append(h)
            names += hn
        design = np.column_stack(cols)
    else:  # Mb, Mbh
        if histories.is_frequency_only:
            raise ModelError(f"{spec.name} needs capture histories, not capture-count frequencies")
        t_int = int(t)
        patterns = histories.patterns
        first = patterns.argmax(axis=1)
        k = patterns.sum(axis=1)
        aa, kk = np.meshgrid(np.arange(t_int), np.arange(1, t_int + 1), indexing="ij")
        valid = kk <= t_int - aa
        aa, kk = aa[valid], kk[valid]
        counts = np.zeros((t_int, t_int + 1))
        np.add.at(counts, (first, k), histories.counts)
        y = counts[aa, kk]
        # histories first caught at a (0-based) with k captures: C(t - a - 1, k - 1) cells
        group_size_log = gammaln(t_int - aa) - gammaln(kk) - gammaln(t_int - aa - kk + 1.0)
        cols = [aa.astype(float), (kk - 1).astype(float)]
        names = ["b_before", "b_after"]
        if spec.base == "Mbh":
            cols.insert(0, (aa > 0).astype(float))
            names.insert(0, "first_missed")
        design = np.column_stack(cols)
    design, names, y, group_size_log = _cells_to_fit(design, names, y, drop, unobserved, group_size_log)
    fit = fit_poisson(design, y, offset=group_size_log, names=names, n_observed=n, start=start)
    rank = fit.rank
    if histories.is_frequency_only or spec.t0 is not None:
        deviance, df, loglik = fit.deviance, fit.df, fit.loglik
    else:
        # convert the grouped likelihood to the 2^t - 1 (+ 1) cell likelihood: cells in a group share mu
        mu = fit.fitted
        kernel = float(np.sum(y[y > 0] * (np.log(mu[y > 0]) - group_size_log[y > 0])) - mu.sum())
        extra = unobserved if unobserved is not None else 0.0
        ylogy = histories.ylogy_sum() + (extra * math.log(extra) if extra > 0 else 0.0)
        logfact = histories.log_factorial_sum() + (float(gammaln(extra + 1.0)) if extra > 0 else 0.0)
        deviance = 2.0 * (ylogy - (n + extra)) - 2.0 * kernel
        loglik = kernel - logfact
        df = _cells_count(t) + (1 if unobserved is not None else 0) - rank
    return _RawFit(fit.names, fit.coef, fit.vcov, rank, fit.converged, deviance, df, loglik, fit.bias)


def _sufficient_fit(
    histories: Histories,
    spec: ModelSpec,
    drop: list[str],
    unobserved: float | None,
    start: np.ndarray | None,
    hints: dict | None = None,
) -> _RawFit:
    t = int(histories.occasions)
    h = None
    hn: list[str] = []
    if spec.base == "Mth":
        h, hn = heterogeneity_columns(np.arange(t + 1), spec.heterogeneity, t, spec.theta)
        keep = [i for i, nm in enumerate(hn) if nm not in drop]
        h = h[:, keep]
        hn = [hn[i] for i in keep]
    if start is None and spec.base == "Mth":
        start = _mth_start(histories, spec, drop, unobserved, hn, hints)
    # a fit with a count in the never-caught cell is a profile-likelihood evaluation: only its deviance is used
    profile = unobserved is not None
    fit = fit_mt_family(
        histories.occasion_totals(), histories.frequencies(), h, hn, unobserved=unobserved, start=start,
        covariance=not profile,
    )
    n = histories.observed
    extra = unobserved if unobserved is not None else 0.0
    ylogy = histories.ylogy_sum() + (extra * math.log(extra) if extra > 0 else 0.0)
    logfact = histories.log_factorial_sum() + (float(gammaln(extra + 1.0)) if extra > 0 else 0.0)
    deviance = 2.0 * (ylogy - (n + extra)) - 2.0 * fit.loglik_kernel
    df = _cells_count(t) + (1 if unobserved is not None else 0) - fit.rank
    # the asymptotic bias (third-order cell sums) is added by fit_closed for the final fit only
    return _RawFit(fit.names, fit.coef, fit.vcov, fit.rank, fit.converged, deviance, df, fit.loglik_kernel - logfact, math.nan)


def _mth_start(
    histories: Histories, spec: ModelSpec, drop: list[str], unobserved, h_names, hints: dict | None = None
) -> np.ndarray | None:
    """Starting values for an Mth fit from the (cheap, grouped) Mh fit with the same heterogeneity columns.

    Mh is Mth with all beta_j equal to its k-slope alpha, so gamma and eta are taken from Mh and
    beta_j = alpha + log(n_j / mean n_j). Newton from this point needs a few steps even at t = 200, where a
    start at eta = 0 first has to creep out of the unobservable high-k cells (only the path changes, not the MLE).
    ``hints`` (kept by the caller across the refits of the negative-eta rule) carries the last Mh coefficients.
    """
    previous = (hints or {}).get("mh")
    mh_start = None
    if previous is not None:
        mh_start = np.array([previous.get(nm, 0.0) for nm in ["(Intercept)", "k", *h_names]])
    with np.errstate(all="ignore"):
        try:
            mh = _grouped_fit(histories, ModelSpec("Mh", spec.heterogeneity, spec.theta), drop, unobserved, mh_start)
        except (ModelError, np.linalg.LinAlgError):
            return None
        coef = dict(zip(mh.names, mh.coef, strict=True))
        if hints is not None and np.isfinite(mh.coef).all():
            hints["mh"] = coef
        totals = histories.occasion_totals().astype(float)
        if "k" not in coef or (totals <= 0).any():
            return None
        beta = coef["k"] + np.log(totals / totals.mean())
        start = np.concatenate([[mh.coef[0]], beta, [coef.get(nm, 0.0) for nm in h_names]])
    return start if np.isfinite(start).all() else None


def _enumerated_bias(
    histories: Histories, spec: ModelSpec, names: list[str], coef: np.ndarray, vcov: np.ndarray, unobserved: float | None
) -> float:
    patterns = all_patterns(int(histories.occasions))
    x, xn = closed_design(patterns, spec.base, spec.heterogeneity, spec.theta)
    cols = [xn.index(nm) for nm in names[1:]]
    x = np.column_stack([np.ones(len(x)), x[:, cols]])
    if unobserved is not None:
        x = np.vstack([np.eye(1, x.shape[1]), x])
    mu = np.exp(x @ coef)
    xi = -0.5 * ((x @ vcov) * x).sum(axis=1)
    psi = -2.0 * x.T @ (mu * xi)
    psi[0] -= 1.0
    return float(0.5 * exp_or_inf(coef[0]) * (-(vcov @ psi))[0])


def _enumerated_fit(
    histories: Histories,
    spec: ModelSpec | None,
    drop: list[str],
    unobserved: float | None,
    start: np.ndarray | None,
    algorithm: str,
    design: tuple[np.ndarray, list[str]] | None = None,
) -> _RawFit:
    t = histories.occasions
    if histories.is_frequency_only:
        raise ModelError("enumerated fits need capture histories")
    if t > MAX_ENUMERATED_OCCASIONS:
        raise ModelError(f"t = {t} is too many occasions to enumerate; use engine='auto'")
    patterns = all_patterns(int(t))
    y = histories.cell_counts().astype(float)
    if design is None:
        x, names = closed_design(patterns, spec.base, spec.heterogeneity, spec.theta)
    else:
        x, names = design
    x, names, y, _ = _cells_to_fit(x, names, y, drop, unobserved)
    fit = fit_poisson(x, y, names=names, n_observed=histories.observed, start=start, algorithm=algorithm)
    return _RawFit(fit.names, fit.coef, fit.vcov, fit.rank, fit.converged, fit.deviance, fit.df, fit.loglik, fit.bias)


def choose_engine(histories: Histories, spec: ModelSpec | None, engine: str, algorithm: str) -> str:
    if engine not in ("auto", "enumerate", "sufficient"):
        raise ConfigError(f"unknown engine {engine!r}; use auto, enumerate or sufficient")
    if spec is None:
        return "enumerate"
    if histories.is_frequency_only:
        if spec.base not in ("M0", "Mh"):
            raise ModelError(
                f"{spec.name} needs the capture histories; capture-count (nbcap) data support "
                f"{', '.join(FREQUENCY_MODELS)} only"
            )
        return "grouped"
    if algorithm == "glm" or engine == "enumerate":
        return "enumerate"
    return "sufficient" if spec.base in ("Mt", "Mth") else "grouped"


def _raw_fit(histories, spec, engine, drop, unobserved, start, algorithm, design=None, hints=None) -> _RawFit:
    if engine == "enumerate":
        return _enumerated_fit(histories, spec, drop, unobserved, start, algorithm, design)
    if engine == "sufficient":
        return _sufficient_fit(histories, spec, drop, unobserved, start, hints)
    return _grouped_fit(histories, spec, drop, unobserved, start)


def fit_with_chao_rule(histories, spec, engine, unobserved, algorithm, neg_eta, design=None, warm=None):
    """Fit; for Chao models drop the negative eta with the smallest index, refit, repeat (Rcapture neg=TRUE).

    Before that, eta_j with j > K (K = the largest number of captures observed) are fixed at zero: they act
    only on cells with no observations, so their MLE is -infinity or not identified and a numerical fit
    leaves them wherever its iterations stopped (Rcapture then drops them one by one in an order that
    depends on the optimiser's path). Returns (fit, eta dropped for negativity, eta fixed as unidentified).
    ``warm`` (a dict kept by the caller, e.g. across the N values of a profile) maps a set of dropped columns
    to the last coefficients fitted with it, used as starting values (same MLE, fewer iterations).
    """
    use_warm = warm is not None and not (engine == "enumerate" and algorithm == "glm")
    is_chao = (spec is not None and spec.heterogeneity == "Chao") or (
        design is not None and any(nm.startswith("eta") for nm in design[1])
    )
    fixed: list[str] = []
    if is_chao:
        f = histories.frequencies()
        largest = int(np.flatnonzero(f)[-1]) + 1
        if spec is not None and spec.t0 is not None:
            largest = min(largest, spec.t0)
        top = int(histories.occasions) if math.isfinite(histories.occasions) else len(f)
        fixed = [f"eta{j}" for j in range(max(largest + 1, 3), top + 1)]
    drop: list[str] = list(fixed)
    start0 = warm.get(tuple(drop)) if use_warm else None
    # the last Mh fit, whose coefficients start Mth fits (refits below, other N values of a profile)
    hints: dict = warm.setdefault("mh hints", {}) if use_warm else {}
    raw = _raw_fit(histories, spec, engine, drop, unobserved, start0, algorithm, design, hints)
    if use_warm:
        warm[tuple(drop)] = raw.coef.copy()
    while is_chao and neg_eta:
        negative = [
            (int(nm[3:]), nm)
            for nm, c in zip(raw.names, raw.coef, strict=True)
            if nm.startswith("eta") and nm[3:].isdigit() and np.isfinite(c) and c < 0
        ]
        if not negative:
            break
        drop.append(min(negative)[1])
        start = np.array([c for nm, c in zip(raw.names, raw.coef, strict=True) if nm not in drop])
        if engine == "enumerate" and algorithm == "glm":
            start = None
        elif engine == "sufficient" and spec is not None and spec.base == "Mth":
            start = None  # the Mh-based start is much closer after a drop (3-4 Newton steps instead of 7-11)
        if use_warm and tuple(drop) in warm:
            start = warm[tuple(drop)]
        raw = _raw_fit(histories, spec, engine, drop, unobserved, start, algorithm, design, hints)
        if use_warm:
            warm[tuple(drop)] = raw.coef.copy()
    return raw, drop[len(fixed) :], fixed


def _abundance(spec: ModelSpec | None, raw: _RawFit, n: int, t: float, rcapture: bool = False) -> tuple[float, float]:
    c = raw.coef
    v = raw.vcov
    if spec is not None and spec.base == "Mb":
        b0, b1, b2 = c[0], c[1], c[2]
        denom = 1.0 + math.exp(b2) - math.exp(b1)
        if denom == 0.0:  # recapture odds equal to first-capture odds plus one: N_hat is infinite (warned)
            return math.inf, math.nan
        big = math.exp(b0) * (1.0 + math.exp(b2)) ** t
        abundance = big / denom
        grad = abundance * np.array(
            [1.0, math.exp(b1) / denom, t * math.exp(b2) / (1.0 + math.exp(b2)) - math.exp(b2) / denom]
        )
    elif spec is not None and spec.base == "Mbh":
        b0, b1, b2, b3 = c[0], c[1], c[2], c[3]
        denom = 1.0 + math.exp(b3) - math.exp(b2)
        if denom == 0.0:
            return math.inf, math.nan
        ratio = math.exp(b1 + b2) / denom
        scale = math.exp(b0) * (1.0 + math.exp(b3)) ** (t - 1)
        abundance = scale * (1.0 + ratio)
        grad = scale * np.array(
            [
                1.0 + ratio,
                ratio,
                ratio + math.exp(b1 + 2 * b2) / denom**2,
                (t - 1) * math.exp(b3) / (1.0 + math.exp(b3)) * (1.0 if rcapture else 1.0 + ratio)
                - math.exp(b1 + b2 + b3) / denom**2,
            ]
        )
        # Rcapture 1.4-4 omits the factor (1 + ratio) in the last derivative (checked against a numerical
        # derivative: hare Mbh se 4.649, Rcapture prints 14.594); rcapture=True reproduces its number.
    else:
        g = c[0]
        # A degenerate fit can put the intercept beyond exp's range: the abundance is then infinite (and flagged
        # by the estimate-size warning), never an OverflowError.
        with np.errstate(over="ignore"):
            unseen = float(np.exp(g))
            var = unseen + unseen * unseen * float(v[0, 0])
        abundance = n + unseen
        return abundance, math.sqrt(var) if var > 0 else math.nan
    var = float(grad @ v @ grad) - abundance
    return abundance, math.sqrt(var) if var > 0 else math.nan


def _warnings(fit: ClosedFit, aliased: bool) -> list[str]:
    out = []
    if fit.fixed_eta:
        names = fit.fixed_eta[0] if len(fit.fixed_eta) == 1 else f"{fit.fixed_eta[0]}..{fit.fixed_eta[-1]}"
        out.append(
            f"{names} fixed at zero: no unit was caught more than {int(fit.fixed_eta[0][3:]) - 1} times, "
            "so the data cannot identify them"
        )
    if fit.dropped_eta:
        out.append(f"negative eta parameter(s) set to zero and model refitted: {', '.join(fit.dropped_eta)}")
    if not fit.converged:
        out.append("the fit did not converge (estimates at or near a boundary; do not use)")
    if aliased:
        out.append("the design is not of full rank; some parameters are not estimable")
    if not math.isfinite(fit.abundance) or fit.abundance < 0:
        out.append("negative or undefined abundance estimate; the model does not fit these data")
    elif fit.abundance > HUGE_FACTOR * fit.observed:
        out.append("abundance beyond 10^6 times the number observed; the model is not identified by these data")
    elif fit.abundance < fit.observed or (fit.unobserved < 1e-6 * max(fit.observed, 1)):
        out.append("boundary estimate: (almost) no unseen units estimated")
    if math.isfinite(fit.bias) and abs(fit.bias) > BIAS_WARNING_FRACTION * abs(fit.abundance):
        out.append(f"large asymptotic bias ({fit.bias:.3g}, more than 10% of the estimate)")
    if not math.isfinite(fit.stderr):
        out.append("standard error not available (non-positive variance estimate)")
    return out


# ------------------------------------------------------------------------------------------- public API
def fit_closed(
    histories: Histories,
    model: str | ModelSpec,
    *,
    engine: str = "auto",
    algorithm: str = "newton",
    neg_eta: bool = True,
    rcapture: bool = False,
    t0: int | None = None,
) -> ClosedFit:
    """Fit one closed model by name (see module docstring); returns a :class:`ClosedFit`.

    ``engine``: ``"auto"`` (exact grouped / sufficient-statistics fit, any t), ``"enumerate"`` (all 2^t - 1
    cells). ``algorithm="glm"`` reproduces R's glm path (implies enumeration). ``neg_eta`` applies Rcapture's
    negative-eta rule to Chao models. ``rcapture=True`` reproduces Rcapture 1.4-4's printed numbers exactly:
    R's glm iteration path (standard errors at the penultimate IRLS iterate) and its Mbh standard-error
    formula, which drops a factor in one derivative (the default gives the correct delta-method value).
    ``t0`` fits M0 and Mh models on the capture-count classes 1..t0 only (Rcapture ``closedp.0(..., t0=)``): with
    many occasions the classes of units caught very often carry little information and can distort the fit.
    N is still n plus the estimated unseen, n counting every unit seen.
    """
    if rcapture:
        algorithm = "glm"
    spec = model if isinstance(model, ModelSpec) else parse_model(model)
    spec = with_t0(spec, t0, histories)
    if spec.t0 is not None and spec.heterogeneity != "Normal":
        engine, algorithm = "auto", "newton"  # the truncated fit is on capture-count classes
    t = histories.occasions
    if spec.base in ("Mh", "Mth") and spec.heterogeneity == "Chao" and t < 3:
        raise ModelError(f"{spec.name} needs at least 3 occasions")
    if spec.base in ("Mb", "Mbh") and t < 2:
        raise ModelError(f"{spec.name} needs at least 2 occasions")
    if spec.heterogeneity == "Normal":
        return _fit_normal(histories, spec, rcapture)
    used = choose_engine(histories, spec, engine, algorithm)
    raw, drop, fixed = fit_with_chao_rule(histories, spec, used, None, algorithm, neg_eta)
    if used == "sufficient" and t <= BIAS_ENUMERATION_MAX:
        # the bias needs the third-order sums over the 2^t cells: enumerated once, for the final model only
        raw.bias = _enumerated_bias(histories, spec, raw.names, raw.coef, raw.vcov, None)
    return _finish(spec.name, spec, raw, drop, histories, used, rcapture, fixed)


def with_t0(spec: ModelSpec, t0: int | None, histories: Histories) -> ModelSpec:
    """``spec`` restricted to capture-count classes 1..t0, after checking that t0 suits the model and data."""
    if t0 is None:
        return spec
    if spec.base not in ("M0", "Mh"):
        raise ConfigError(f"t0 applies to models of capture counts (M0, Mh); {spec.name} needs every history")
    t = histories.occasions
    if int(t0) != t0 or t0 < 2 or (math.isfinite(t) and t0 > t):
        limit = f"and at most t = {int(t)}" if math.isfinite(t) else "(t is infinite)"
        raise ConfigError(f"t0 must be a whole number of at least 2 {limit}; got {t0}")
    return ModelSpec(spec.base, spec.heterogeneity, spec.theta, int(t0))


def _fit_normal(histories: Histories, spec: ModelSpec, rcapture: bool) -> ClosedFit:
    """Mh or Mth with logistic-normal heterogeneity (see :mod:`hiddenpop.capture.closed.normal`)."""
    t = histories.occasions
    if not math.isfinite(t) or t < 3:
        raise ModelError(f"{spec.name} needs a finite number of occasions, at least 3")
    t = int(t)
    if histories.patterns is not None and t <= NORMAL_ENUMERATION_MAX and spec.t0 is None:
        patterns = all_patterns(t)
        codes = histories.patterns.astype(np.int64) @ (1 << np.arange(t - 1, -1, -1, dtype=np.int64))
        y = np.bincount(codes - 1, weights=histories.counts, minlength=len(patterns)).astype(float)
        k = patterns.sum(axis=1).astype(float)
        offset = np.zeros(len(y))
        design, names = (k[:, None], ["k"]) if spec.base == "Mh" else (patterns.astype(float),
                                                                      [f"c{j + 1}" for j in range(t)])
    elif spec.base == "Mh":
        top = t if spec.t0 is None else spec.t0
        k = np.arange(1, top + 1, dtype=float)
        y = np.concatenate([histories.frequencies(), np.zeros(t)])[:top].astype(float)
        offset = gammaln(t + 1.0) - gammaln(k + 1.0) - gammaln(t - k + 1.0)  # histories per capture count
        design, names = k[:, None], ["k"]
    else:
        raise ModelError(f"{spec.name} needs the capture histories and at most {NORMAL_ENUMERATION_MAX} occasions")
    normal = fit_logistic_normal(y, design, k, offset, names=names)
    n = histories.observed
    unseen = exp_or_inf(normal.intercept)
    variance = normal.vcov[0, 0] / (2.0 if rcapture else 1.0)  # Rcapture inverts the deviance's Hessian
    stderr = math.sqrt(unseen + unseen**2 * variance) if np.isfinite(variance) else math.nan
    aic = -2.0 * normal.loglik + 2.0 * normal.parameters
    fit = ClosedFit(
        model=spec.name, abundance=n + unseen, stderr=stderr, deviance=normal.deviance, df=normal.df, aic=aic,
        bic=aic + (math.log(n) - 2.0) * normal.parameters, coef=dict(zip(normal.names, normal.coef.tolist(),
                                                                           strict=True)),
        vcov=normal.vcov, rank=normal.parameters, converged=normal.converged, engine="quadrature", observed=n,
        loglik=normal.loglik,
    )
    fit.warnings = _warnings(fit, aliased=False) + normal.warnings
    return fit


def _finish(
    name, spec, raw: _RawFit, drop, histories: Histories, used: str, rcapture: bool = False, fixed=()
) -> ClosedFit:
    n = histories.observed
    abundance, stderr = _abundance(spec, raw, n, histories.occasions, rcapture)
    aic = -2.0 * raw.loglik + 2.0 * raw.rank
    fit = ClosedFit(
        model=name,
        abundance=abundance,
        stderr=stderr,
        deviance=raw.deviance,
        df=raw.df,
        aic=aic,
        bic=aic + (math.log(n) - 2.0) * raw.rank,
        coef=dict(zip(raw.names, raw.coef.tolist(), strict=True)),
        vcov=raw.vcov,
        rank=raw.rank,
        converged=raw.converged,
        engine=used,
        observed=n,
        bias=raw.bias if (spec is None or spec.base not in ("Mb", "Mbh")) else math.nan,
        dropped_eta=list(drop),
        loglik=raw.loglik,
    )
    fit.fixed_eta = list(fixed)
    fit.warnings = _warnings(fit, aliased=bool(np.isnan(raw.coef).any())) + _poisson_tail_warning(spec, histories)
    return fit


#: Poisson<a> heterogeneity is flagged when a^k - 1 is this many times larger at k = t than at the largest
#: observed capture count.
POISSON_TAIL_RATIO = 1e6


def _poisson_tail_warning(spec: ModelSpec | None, histories: Histories) -> list[str]:
    """Why Mh/Mth Poisson<a> is useless at many occasions: a^k - 1 is dominated by unobservable counts.

    The column a^k - 1 grows so fast that at large t its coefficient is fixed by the cells with k near t,
    which no unit is expected in: the MLE makes that coefficient tiny (of order a^-t), so the term changes
    nothing among the observed counts and the model reduces to M0/Mt (or, when the expected counts there
    overflow double precision, the fit cannot converge at all).
    """
    if spec is None or spec.heterogeneity != "Poisson" or not math.isfinite(histories.occasions):
        return []
    a = float(spec.theta or 2.0)
    t = int(histories.occasions)
    largest = int(np.flatnonzero(histories.frequencies())[-1]) + 1
    if a <= 1.0 or largest >= t:
        return []
    log_ratio = (t - largest) * math.log(a) + math.log1p(-(a**-t)) - math.log1p(-(a**-largest))
    if log_ratio < math.log(POISSON_TAIL_RATIO):
        return []
    return [
        f"the Poisson{_fmt_theta(a)} term {_fmt_theta(a)}^k - 1 is 10^{log_ratio / math.log(10):.0f} times larger "
        f"at k = t = {t} than at the largest observed capture count ({largest}): its coefficient is set by "
        "capture counts nobody is expected to reach, so it cannot describe heterogeneity among the observed "
        f"counts (the fit reduces to {'Mt' if spec.base == 'Mth' else 'M0'} at best); at this many occasions "
        "use the Chao, Darroch or Gamma forms"
    ]


def fit_custom(
    histories: Histories,
    terms: list[str] | str,
    heterogeneity: str | None = None,
    theta: float | None = None,
    *,
    algorithm: str = "newton",
    neg_eta: bool = True,
    name: str | None = None,
) -> ClosedFit:
    """Log-linear model with main effects plus chosen interactions (``["A:B", "B:C"]``), optionally with a
    heterogeneity form of k (Chao applies the negative-eta rule). Enumerates the 2^t - 1 cells (t <= 20)."""
    if histories.is_frequency_only:
        raise ModelError("custom log-linear models need capture histories")
    patterns = all_patterns(int(histories.occasions))
    design = interaction_design(patterns, terms, histories.labels, heterogeneity, theta)
    label = name or ("Mt + " + " + ".join(design[1][int(histories.occasions) :]) if design[1][int(histories.occasions) :] else "Mt")
    raw, drop, fixed = fit_with_chao_rule(histories, None, "enumerate", None, algorithm, neg_eta, design)
    return _finish(label, None, raw, drop, histories, "enumerate", fixed=fixed)


def closedp(
    histories: Histories,
    models: list[str] | tuple[str, ...] | None = None,
    *,
    engine: str = "auto",
    algorithm: str = "newton",
    neg_eta: bool = True,
    rcapture: bool = False,
    normal: bool = False,
    t0: int | None = None,
) -> Estimates:
    """Fit the whole closed family (Rcapture ``closedp.t`` / ``closedp.0``) and return a comparison table.

    ``.table`` has one row per model: quantity = "abundance", method = model name, estimate, se, the
    log-transformed 95% interval (Chao 1987) as lower/upper, and the columns deviance, df, aic, bic, bias,
    converged, warnings. ``.tables["models"]`` is the Rcapture-style table; ``.extras["fits"]`` the
    :class:`ClosedFit` objects. With t = 2 only M0, Mt and Mb are fitted (as Rcapture). ``normal=True`` adds the
    logistic-normal models (Mh Normal, and Mth Normal when the histories have at most 16 occasions). ``t0``
    fits the capture-count models (M0, Mh) on classes 1..t0 only, as Rcapture's ``closedp.0``.
    """
    t = histories.occasions
    if models is None:
        if histories.is_frequency_only or t0 is not None:
            models = FREQUENCY_MODELS if t > 2 else ("M0",)
        else:
            models = STANDARD_MODELS if t > 2 else ("M0", "Mt", "Mb")
        if normal and math.isfinite(t) and t > 2:
            models = (*models, *(m for m in NORMAL_MODELS
                                 if m == "Mh Normal" or (not histories.is_frequency_only and t0 is None
                                                         and t <= NORMAL_ENUMERATION_MAX)))
    fits: list[ClosedFit] = []
    all_warnings: list[str] = []
    for name in models:
        fit = fit_closed(histories, name, engine=engine, algorithm=algorithm, neg_eta=neg_eta, rcapture=rcapture,
                         t0=t0)
        fits.append(fit)
        all_warnings.extend(f"{fit.model}: {w}" for w in fit.warnings)
    rows = []
    for fit in fits:
        lower, upper = fit.log_ci(0.95) if math.isfinite(fit.stderr) else (math.nan, math.nan)
        rows.append(
            {
                "quantity": "abundance",
                "method": fit.model,
                "estimate": fit.abundance,
                "se": fit.stderr,
                "lower": lower,
                "upper": upper,
                "level": 0.95,
                "deviance": fit.deviance,
                "df": fit.df,
                "aic": fit.aic,
                "bic": fit.bic,
                "bias": fit.bias,
                "converged": fit.converged,
                "warnings": "; ".join(fit.warnings),
            }
        )

    result = Estimates.from_rows(
        rows,
        settings={
            "engine": engine,
            "algorithm": algorithm,
            "neg_eta": neg_eta,
            "rcapture": rcapture,
            "t0": t0,
            "models": list(models),
        },
        warnings=all_warnings,
        diagnostics={
            "observed": histories.observed,
            "occasions": t,
            "engines": {f.model: f.engine for f in fits},
            "dropped_eta": {f.model: f.dropped_eta for f in fits if f.dropped_eta},
        },
        notes=[
            "interval columns: Chao (1987) log-transformed 95% interval; use profile_ci() for profile-likelihood",
            "BIC = AIC + (log n - 2) * parameters (Rcapture's convention); AIC includes the log Y! term as R's glm",
        ],
        tables={"models": pd.DataFrame([f.as_row() | {"warnings": "; ".join(f.warnings)} for f in fits])},
    )
    result.extras["fits"] = fits
    return result
