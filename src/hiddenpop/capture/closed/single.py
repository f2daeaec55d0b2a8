"""Single-source estimators: the population size from how often each observed unit was seen.

A single register or report log gives, for each unit seen, the number of times y_i >= 1 it was seen (apprehended,
reported). With f_k units seen exactly k times and n = sum_k f_k units seen:

* **Zero-truncated Poisson** (van der Heijden et al. 2003): y_i ~ Poisson(lambda_i) truncated at zero, log lambda_i =
  x_i'beta (covariates optional). Fitted by Newton-Raphson on the truncated likelihood; the size is the
  Horvitz-Thompson sum N = sum_i 1 / (1 - exp(-lambda_i)), with variance sum_i p0_i / (1 - p0_i)^2 (sampling) plus
  g' I^-1 g (estimation of beta), g = dN/dbeta (Boehning 2003 / van der Heijden et al. 2003).
* **Zelterman** (1988): lambda = 2 f_2 / f_1 from the ones and twos only (robust to heterogeneity in the larger
  counts); N = n / (1 - exp(-lambda)); variance n p0 / (1 - p0)^2 + (n p0 lambda / (1 - p0)^2)^2 (1/f_1 + 1/f_2)
  (Boehning & van der Heijden 2009).
* **Chao** (1987) lower bound: N = n + f_1^2 / (2 f_2), variance f_2 (r^4 / 4 + r^3 + r^2 / 2), r = f_1 / f_2; under
  heterogeneity a lower bound.

Intervals are log-transformed around n (Chao 1987), as for the other closed models. Assumptions: a closed
population during the observation period and independent sightings of a unit (Poisson); one-inflation (units that
avoid being seen again after a first sighting, such as dynamic IP addresses) biases all three upwards, Zelterman
and Chao least. Failure modes: f_2 = 0 leaves Zelterman and Chao undefined (reported as such).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hiddenpop.capture.core.histories import MAX_COUNT
from hiddenpop.capture.core.intervals import log_transformed_ci
from hiddenpop.errors import DataError, ModelError, locate
from hiddenpop.results import Estimates

__all__ = ["SINGLE_MODELS", "chao_single", "single_source", "zelterman", "zero_truncated_poisson"]

SINGLE_MODELS = ("ztpoisson", "zelterman", "chao")


def _row(method: str, observed: int, estimate: float, se: float, level: float, **extra) -> dict:
    lower, upper = log_transformed_ci(observed, estimate, se, level)
    return {"quantity": "abundance", "method": method, "estimate": estimate, "se": se, "lower": lower,
            "upper": upper, "level": level, "observed": observed, **extra}


def zero_truncated_poisson(counts: np.ndarray, design: np.ndarray | None = None, *, level: float = 0.95,
                           max_iter: int = 200) -> dict:
    """Zero-truncated Poisson regression and its Horvitz-Thompson size (see the module docstring)."""
    y = np.asarray(counts, dtype=float)
    x = np.ones((y.size, 1)) if design is None else np.asarray(design, dtype=float)
    beta = np.zeros(x.shape[1])
    beta[0] = math.log(max(y.mean() - 1.0, 0.1))
    info = np.eye(x.shape[1])
    for _ in range(max_iter):
        lam = np.exp(x @ beta)
        p0 = np.exp(-lam)
        score = x.T @ (y - lam / (1.0 - p0))
        weight = lam * (1.0 - p0 - lam * p0) / (1.0 - p0) ** 2
        info = x.T @ (x * weight[:, None])
        step = np.linalg.solve(info, score)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    else:
        raise ModelError("the zero-truncated Poisson fit did not converge; check for covariate levels whose units "
                         "are all seen once")
    lam = np.exp(x @ beta)
    p0 = np.exp(-lam)
    estimate = float(np.sum(1.0 / (1.0 - p0)))
    gradient = -(x * (lam * p0 / (1.0 - p0) ** 2)[:, None]).sum(axis=0)
    variance = float(np.sum(p0 / (1.0 - p0) ** 2) + gradient @ np.linalg.solve(info, gradient))
    loglik = float(np.sum(y * np.log(lam) - lam - np.log1p(-p0)) - np.sum([math.lgamma(v + 1) for v in y]))
    return _row("zero-truncated Poisson", int(y.size), estimate, math.sqrt(variance), level,
                aic=-2 * loglik + 2 * x.shape[1], parameters=int(x.shape[1]))


def _frequencies(counts: np.ndarray) -> tuple[int, int, int]:
    y = np.asarray(counts)
    return int(y.size), int(np.sum(y == 1)), int(np.sum(y == 2))


def zelterman(counts: np.ndarray, *, level: float = 0.95) -> dict:
    """Zelterman's estimator from the units seen once and twice."""
    n, f1, f2 = _frequencies(counts)
    if f1 == 0 or f2 == 0:
        return _row("Zelterman", n, math.nan, math.nan, level, warnings="needs units seen once and twice")
    lam = 2.0 * f2 / f1
    p0 = math.exp(-lam)
    estimate = n / (1.0 - p0)
    variance = n * p0 / (1.0 - p0) ** 2 + (n * p0 * lam / (1.0 - p0) ** 2) ** 2 * (1.0 / f1 + 1.0 / f2)
    return _row("Zelterman", n, estimate, math.sqrt(variance), level)


def chao_single(counts: np.ndarray, *, level: float = 0.95) -> dict:
    """Chao's lower bound n + f_1^2 / (2 f_2)."""
    n, f1, f2 = _frequencies(counts)
    if f2 == 0:
        return _row("Chao (lower bound)", n, math.nan, math.nan, level, warnings="needs units seen twice")
    ratio = f1 / f2
    variance = f2 * (ratio**4 / 4.0 + ratio**3 + ratio**2 / 2.0)
    return _row("Chao (lower bound)", n, n + f1 * f1 / (2.0 * f2), math.sqrt(variance), level)


def _design(frame: pd.DataFrame, covariates: Sequence[str], source: str) -> np.ndarray:
    """Intercept, then one column per numeric covariate and treatment dummies (first level in sorted order as
    the baseline) per text covariate."""
    parts = [np.ones((len(frame), 1))]
    for column in covariates:
        values = frame[column]
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0]) + 1
            raise DataError(f"{locate(source, row, column)}covariate is missing; fill it or leave the column out")
        if pd.api.types.is_numeric_dtype(values):
            parts.append(values.to_numpy(dtype=float)[:, None])
        else:
            levels = sorted(values.astype(str).unique())
            parts.append(np.column_stack([(values.astype(str) == level).to_numpy(float) for level in levels[1:]])
                         if len(levels) > 1 else np.zeros((len(frame), 0)))
    return np.hstack(parts)


def single_source(frame: pd.DataFrame, *, count_column: str, covariates: Sequence[str] = (),
                  models: Sequence[str] = SINGLE_MODELS, level: float = 0.95, source: str = "data") -> Estimates:
    """Every named single-source estimator on one row per unit seen (``count_column`` = times seen, >= 1);
    covariates enter the zero-truncated Poisson regression."""
    from hiddenpop.data.io import missing_column

    for column in (count_column, *covariates):
        if column not in frame.columns:
            raise missing_column(source, column, frame.columns)
    counts = pd.to_numeric(frame[count_column], errors="coerce")
    bad = counts.isna() | (counts < 1) | (counts != np.floor(counts)) | (counts > MAX_COUNT)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise DataError(f"{locate(source, row, count_column)}expected a whole number of sightings from 1 to 2^53 "
                        "(units never seen are not in the file)")
    y = counts.to_numpy(dtype=float)
    rows = []
    for model in models:
        if model == "ztpoisson":
            rows.append(zero_truncated_poisson(y, _design(frame, covariates, source), level=level))
        elif model == "zelterman":
            rows.append(zelterman(y, level=level))
        else:
            rows.append(chao_single(y, level=level))
    n, f1, f2 = _frequencies(y)
    warnings = [f"{row['method']}: {row['warnings']}" for row in rows if row.get("warnings")]
    notes = [f"{n} units seen: {f1} once, {f2} twice, {n - f1 - f2} more often"]
    if covariates and "ztpoisson" not in models:
        notes.append("covariates enter only the zero-truncated Poisson regression, which was not asked for")
    return Estimates.from_rows(rows, warnings=warnings, notes=notes,
                               diagnostics={"observed": n, "f1": f1, "f2": f2,
                                            "covariates": list(covariates)})
