"""Closed-form abundance estimators and Rcapture's bias-corrected fits (``closedp.bc``).

* **Lincoln-Petersen** (two occasions): N = n_1 n_2 / m, Var = n_1 n_2 (n_1 - m)(n_2 - m) / m^3. Equals the
  Mt log-linear fit with t = 2. Biased upwards for small m; undefined when m = 0.
* **Chapman** (Seber 1982 p.60): N = (n_1 + 1)(n_2 + 1)/(m + 1) - 1,
  Var = (n_1 + 1)(n_2 + 1)(n_1 - m)(n_2 - m) / ((m + 1)^2 (m + 2)). Nearly unbiased when n_1 + n_2 >= N
  (Chapman 1951); assumes a closed population, independent lists and equal catchability on at least one list.
* **Chao (1987) lower bound**: N = n + f_1^2 / (2 f_2),
  Var = f_2 [ (f_1/f_2)^4 / 4 + (f_1/f_2)^3 + (f_1/f_2)^2 / 2 ]. A lower bound under heterogeneity; undefined
  when f_2 = 0 (use the bias-corrected form).
* **Chao bias-corrected** (Rcapture ``closedp.bc(m = "Mh", h = "Chao")``):
  N = n + (t - 1) f_1 (f_1 - 1) / (2 t (f_2 + 1)),
  Var = (t-1) f_1 (f_1-1) / (2t(f_2+1)) + (t-1)^2 f_1 (f_1-1)(f_1^2 + 4 f_1 f_2 + 3 f_1 - 6 f_2 - 6)
        / (4 t^2 (f_2+1)^2 (f_2+2)); with t = inf the factor (t - 1)/t is 1.
* **Log-transformed interval** (Chao 1987 eq. 12): C = exp(z sqrt(log(1 + se^2 / (N - n)^2))),
  CI = [n + (N - n)/C, n + (N - n) C]; never below n, asymmetric like the sampling distribution.
* **Bias-corrected log-linear fits** (Rivest & Levesque 2001; Rcapture ``closedp.bc``): frequencies are
  modified, Y <- max(0, Y + delta_k) by capture count k, and the ordinary model refitted; Mt with t > 2 solves
  prod_j (1 - n_j'/N') = 1 - n'/N' with n_j' = n_j + (t+2)/(2t), n' = n + t/2, N = N' - t/2 (Seber p.131-133).

References: Chapman (1951) Univ. Calif. Publ. Stat. 1:131-160; Seber (1982) The Estimation of Animal
Abundance, 2nd ed.; Chao (1987) Biometrics 43:783-791; Rivest & Levesque (2001) Biometrics 57:1055-1063.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hiddenpop.brent import find_root
from hiddenpop.capture.closed.models import fit_closed, parse_model
from hiddenpop.capture.closed.sufficient import fit_mt_family, log_binomial
from hiddenpop.capture.core.histories import Histories, all_patterns
from hiddenpop.capture.core.intervals import log_transformed_ci
from hiddenpop.capture.core.loglinear import closed_design, fit_poisson, heterogeneity_columns
from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.results import Estimates


@dataclass(frozen=True)
class ClosedForm:
    """A closed-form estimate with its standard error and log-transformed interval."""

    method: str
    abundance: float
    stderr: float
    observed: float
    lower: float = math.nan
    upper: float = math.nan
    level: float = 0.95


def _with_ci(method: str, abundance: float, stderr: float, observed: float, level: float) -> ClosedForm:
    lower, upper = log_transformed_ci(observed, abundance, stderr, level)
    return ClosedForm(method, abundance, stderr, observed, lower, upper, level)


def _two_counts(n1: float, n2: float, m: float) -> None:
    for name, value in (("n1", n1), ("n2", n2), ("m", m)):
        if value < 0 or value != round(value):
            raise ConfigError(f"{name} must be a whole number >= 0")
    if m > min(n1, n2):
        raise ConfigError("m (caught on both occasions) cannot exceed n1 or n2")


def lincoln_petersen(n1: int, n2: int, m: int, level: float = 0.95) -> ClosedForm:
    """Lincoln-Petersen N = n1 n2 / m with Var = n1 n2 (n1 - m)(n2 - m) / m^3."""
    _two_counts(n1, n2, m)
    if m == 0:
        raise ModelError("Lincoln-Petersen is undefined when no unit was caught twice (m = 0); use Chapman")
    abundance = n1 * n2 / m
    var = n1 * n2 * (n1 - m) * (n2 - m) / m**3
    return _with_ci("Lincoln-Petersen", abundance, math.sqrt(var), n1 + n2 - m, level)


def chapman(n1: int, n2: int, m: int, level: float = 0.95) -> ClosedForm:
    """Chapman (1951) N = (n1+1)(n2+1)/(m+1) - 1 with Seber's variance."""
    _two_counts(n1, n2, m)
    abundance = (n1 + 1) * (n2 + 1) / (m + 1) - 1
    var = (n1 + 1) * (n2 + 1) * (n1 - m) * (n2 - m) / ((m + 1) ** 2 * (m + 2))
    return _with_ci("Chapman", abundance, math.sqrt(var), n1 + n2 - m, level)


def chao1987(f1: float, f2: float, observed: float, level: float = 0.95) -> ClosedForm:
    """Chao's (1987) lower bound n + f1^2/(2 f2) with its variance."""
    if f2 <= 0:
        raise ModelError("Chao's lower bound needs f2 > 0 (units caught exactly twice); use the bias-corrected form")
    r = f1 / f2
    var = f2 * (r**4 / 4 + r**3 + r**2 / 2)
    return _with_ci("Chao (1987)", observed + f1**2 / (2 * f2), math.sqrt(var), observed, level)


def chao_bias_corrected(f1: float, f2: float, observed: float, occasions: float, level: float = 0.95) -> ClosedForm:
    """Bias-corrected Chao estimator (Rcapture closedp.bc, Mh Chao), with (t - 1)/t = 1 when t is infinite."""
    factor = 1.0 if math.isinf(occasions) else (occasions - 1) / occasions
    core = factor * f1 * (f1 - 1) / (2 * (f2 + 1))
    var = core + factor**2 * f1 * (f1 - 1) * (f1**2 + 4 * f1 * f2 + 3 * f1 - 6 * f2 - 6) / (
        4 * (f2 + 1) ** 2 * (f2 + 2)
    )
    return _with_ci("Mh Chao (bias corrected)", observed + core, math.sqrt(max(var, 0.0)), observed, level)


def two_occasion(n1: int, n2: int, m: int, level: float = 0.95) -> Estimates:
    """Lincoln-Petersen and Chapman for two-occasion counts, as an :class:`Estimates` table."""
    forms = [chapman(n1, n2, m, level)]
    warnings = []
    if m > 0:
        forms.insert(0, lincoln_petersen(n1, n2, m, level))
    else:
        warnings.append("m = 0: Lincoln-Petersen undefined; Chapman shown (very uncertain)")
    if m < 7:
        warnings.append("fewer than 7 recaptures: Chapman's estimator may be biased (Robson & Regier 1964)")
    return _estimates(forms, warnings, {"n1": n1, "n2": n2, "m": m})


def _estimates(forms: list[ClosedForm], warnings: list[str], settings: dict) -> Estimates:
    rows = [
        {
            "quantity": "abundance",
            "method": f.method,
            "estimate": f.abundance,
            "se": f.stderr,
            "lower": f.lower,
            "upper": f.upper,
            "level": f.level,
            "interval": "log-transformed (Chao 1987)",
        }
        for f in forms
    ]
    return Estimates.from_rows(rows, settings=settings, warnings=warnings)


# ------------------------------------------------------------------------------------ closedp.bc
def _mt_seber(histories: Histories) -> tuple[float, float]:
    t = int(histories.occasions)
    nj = histories.occasion_totals().astype(float)
    n = float(histories.observed)
    if t == 2:
        m = nj[0] + nj[1] - n
        c = chapman(int(nj[0]), int(nj[1]), int(m))
        return c.abundance, c.stderr
    prelim = fit_closed(histories, "M0").abundance
    nj_c = nj + (t + 2) / (2 * t)
    n_c = n + t / 2

    def equation(big_n: float) -> float:
        return float(np.prod(1 - nj_c / big_n) - (1 - n_c / big_n))

    lo, hi = max(n, nj_c.max()) + 1e-9, 2 * prelim
    while equation(hi) < 0 and hi < 1e12:
        hi *= 2
    if equation(lo) * equation(hi) > 0:
        raise ModelError("bias-corrected Mt: the estimating equation has no root (too few recaptures)")

    root = find_root(equation, lo, hi, xtol=1e-12, rtol=1e-14)
    var_inv = 1 / (root - n_c) + (t - 1) / root - float(np.sum(1 / (root - nj_c)))
    return root - t / 2, math.sqrt(1 / var_inv) if var_inv > 0 else math.nan


def closedp_bc(histories: Histories, model: str, *, algorithm: str = "newton", level: float = 0.95) -> ClosedForm:
    """Bias-corrected abundance for one model (Rcapture ``closedp.bc``).

    ``model``: "M0", "Mt", "Mh Chao" (closed form), "Mh Poisson2" / "Mh Darroch" / "Mh Gamma<theta>",
    "Mth Chao", "Mth Poisson2", "Mth Darroch", "Mb", "Mbh".
    """

    spec = parse_model(model if model not in ("Mh Chao", "Mth Chao") else model + " (LB)")
    t = histories.occasions
    n = histories.observed
    name = f"{spec.name} (bias corrected)"
    if spec.base == "Mt":
        if histories.is_frequency_only:
            raise ModelError("Mt needs capture histories")
        abundance, stderr = _mt_seber(histories)
        return _with_ci(name, abundance, stderr, n, level)
    if spec.base == "Mh" and spec.heterogeneity == "Chao":
        f = histories.frequencies()
        if len(f) < 2 or (math.isfinite(t) and t < 3):
            raise ModelError("the bias-corrected Chao estimator needs at least 3 occasions")
        form = chao_bias_corrected(float(f[0]), float(f[1]), n, t, level)
        return ClosedForm(name, form.abundance, form.stderr, n, form.lower, form.upper, level)
    if spec.base in ("Mb", "Mbh"):
        return _behaviour_bc(histories, spec.base, name, level, algorithm)
    if spec.base == "Mth" and spec.heterogeneity == "Gamma":
        raise ModelError("no bias correction is defined for Mth Gamma (as Rcapture)")
    if spec.base == "Mth" and spec.heterogeneity == "Poisson" and spec.theta != 2:
        raise ModelError("the Mth Poisson bias correction is defined for theta = 2 only")
    if math.isfinite(t) and t < 3 and spec.base != "M0":
        raise ModelError(f"the bias correction for {spec.name} needs at least 3 occasions")
    delta = _delta(spec, t)
    abundance, stderr = _modified_fit(histories, spec, delta, algorithm)
    return _with_ci(name, abundance, stderr, n, level)


def _delta(spec, t: float) -> tuple[float, float, float]:
    if spec.base == "M0":
        return (-0.5, 1.0, 0.0)
    if spec.base == "Mh":
        h = heterogeneity_columns(np.array([1.0, 2.0, 3.0]), spec.heterogeneity, t, spec.theta)[0][:, 0]
        c = (h[1] - 2 * h[0]) / (h[2] - 2 * h[1] + h[0])
        return (-(1 + c) / 2, 1 + c, (1 - c) / 2)
    if spec.heterogeneity == "Chao":
        return ((t - 2) / (2 * t), 2 / (t * (t - 1)), 0.0)
    if spec.heterogeneity == "Poisson":
        return ((2 * t - 5) / (4 * t), 3 / (t * (t - 1)), 3 / (2 * t * (t - 1) * (t - 2)))
    return ((t - 3) / (2 * t), 4 / (t * (t - 1)), 0.0)  # Darroch


def _modified_fit(histories: Histories, spec, delta, algorithm: str) -> tuple[float, float]:
    """Refit after Y <- max(0, Y + delta_k): M0/Mh on f_k (Rcapture's .0 fit), Mth on the history cells."""

    t = histories.occasions
    n = histories.observed
    if spec.base in ("M0", "Mh"):
        f = histories.frequencies().astype(float)
        ks = np.arange(1, len(f) + 1, dtype=float)
        y = f.copy()
        for i, d in enumerate(delta):
            if i < len(y):
                y[i] += d
        y = np.maximum(y, 0.0)
        offset = log_binomial(int(t), ks) if math.isfinite(t) else -np.array([math.lgamma(k + 1) for k in ks])
        x = ks[:, None]
        if spec.base == "Mh":
            x = np.column_stack([x, heterogeneity_columns(ks, spec.heterogeneity, t, spec.theta)[0]])
        fit = fit_poisson(x, y, offset=offset, n_observed=n, algorithm=algorithm)
        g, v = fit.intercept, fit.vcov[0, 0]
    else:
        t_int = int(t)
        if algorithm == "glm":
            patterns = all_patterns(t_int)
            y = histories.cell_counts().astype(float)
            k = patterns.sum(axis=1)
            for i, d in enumerate(delta):
                y[k == i + 1] += d
            y = np.maximum(y, 0.0)
            x, _ = closed_design(patterns, spec.base, spec.heterogeneity, spec.theta)
            fit = fit_poisson(x, y, n_observed=n, algorithm="glm")
            g, v = fit.intercept, fit.vcov[0, 0]
        else:
            if min(delta) < 0:
                raise ModelError("internal: negative frequency modification for an Mth model")
            nj = histories.occasion_totals().astype(float)
            f = histories.frequencies().astype(float)
            # every occasion appears in 1 history with k = 1, t - 1 with k = 2, C(t-1, 2) with k = 3
            nj = nj + delta[0] + delta[1] * (t_int - 1) + delta[2] * (t_int - 1) * (t_int - 2) / 2
            f[0] += delta[0] * t_int
            if t_int >= 2:
                f[1] += delta[1] * t_int * (t_int - 1) / 2
            if t_int >= 3:
                f[2] += delta[2] * t_int * (t_int - 1) * (t_int - 2) / 6
            h, hn = heterogeneity_columns(np.arange(t_int + 1), spec.heterogeneity, t_int, spec.theta)
            fit = fit_mt_family(nj, f, h, hn)
            g, v = fit.coef[0], fit.vcov[0, 0]
    var = math.exp(g) + math.exp(2 * g) * v
    return n + math.exp(g), math.sqrt(var) if var > 0 else math.nan


def _behaviour_bc(histories: Histories, base: str, name: str, level: float, algorithm: str) -> ClosedForm:
    """Mb / Mbh bias correction: geometric regression of first captures u_j (+2, -1, -1 on the first three)."""

    t = int(histories.occasions)
    if (base == "Mb" and t < 3) or (base == "Mbh" and t < 4):
        raise ModelError(f"the {base} bias correction needs at least {3 if base == 'Mb' else 4} occasions")
    u = histories.first_captures().astype(float)
    omitted = 0.0
    y = u.copy()
    if base == "Mbh":  # units first caught on occasion 1 are left out of the regression and added back
        omitted = u[0]
        y = y[1:]
    y[:3] += np.array([2.0, -1.0, -1.0])
    y = np.maximum(y, 0.0)
    x = np.arange(len(y), dtype=float)[:, None]
    fit = fit_poisson(x, y, n_observed=histories.observed, algorithm=algorithm)
    b0, b1 = fit.coef[0], fit.coef[1]
    if b1 >= 0:
        raise ModelError(f"{base} bias correction: first captures do not decline over occasions; N is not estimable")
    abundance = math.exp(b0) / (1 - math.exp(b1))
    grad = abundance * np.array([1.0, math.exp(b1) / (1 - math.exp(b1))])
    var = float(grad @ fit.vcov @ grad) - abundance
    abundance += omitted
    return _with_ci(name, abundance, math.sqrt(var) if var > 0 else math.nan, histories.observed, level)
