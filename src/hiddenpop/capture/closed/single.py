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
* **Zero-truncated geometric and negative binomial regressions**, and the **one-inflated** Poisson and geometric
  regressions in both orders (OIZT, ZTOI): see :mod:`.single_counts`. The two orders fit the count parameter
  alike and differ in the size; when both are run for a family the band between them is reported.

Intervals are log-transformed around n (Chao 1987), as for the other closed models. Assumptions: a closed
population during the observation period and independent sightings of a unit (Poisson); one-inflation (units that
avoid being seen again after a first sighting, such as dynamic IP addresses) biases the Poisson, geometric and
negative binomial regressions, Zelterman and Chao upwards (the last two least); the one-inflated models allow
for it. Failure modes: f_2 = 0 leaves Zelterman and Chao undefined (reported as such).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hiddenpop.capture.closed.single_counts import fit_count_model
from hiddenpop.capture.core.histories import MAX_COUNT
from hiddenpop.capture.core.intervals import log_transformed_ci
from hiddenpop.data.io import missing_column
from hiddenpop.errors import DataError, ModelError, locate
from hiddenpop.results import Estimates
from hiddenpop.special import gammaln

__all__ = ["COUNT_MODELS", "SINGLE_MODELS", "SINGLE_NAMES", "chao_single", "count_regression", "frequency_row", "single_row",
           "single_source", "zelterman", "zero_truncated_poisson"]

#: The count regressions of :mod:`.single_counts` by model name: (base distribution, one-inflation order).
COUNT_MODELS = {
    "ztgeom": ("geometric", "zt"),
    "ztnegbin": ("negbin", "zt"),
    "oiztpoisson": ("poisson", "oizt"),
    "ztoipoisson": ("poisson", "ztoi"),
    "oiztgeom": ("geometric", "oizt"),
    "ztoigeom": ("geometric", "ztoi"),
}
SINGLE_MODELS = ("ztpoisson", *COUNT_MODELS, "zelterman", "chao")
#: Models whose count parameter follows the covariates.
REGRESSION_MODELS = ("ztpoisson", *COUNT_MODELS)

_FAMILY_NAMES = {"poisson": "Poisson", "geometric": "geometric", "negbin": "negative binomial"}
_KIND_NAMES = {"zt": "zero-truncated {}", "oizt": "one-inflated zero-truncated {} (OIZT)",
               "ztoi": "zero-truncated one-inflated {} (ZTOI)"}
#: Each estimator's name in tables.
SINGLE_NAMES = {
    "ztpoisson": "zero-truncated Poisson",
    **{model: _KIND_NAMES[kind].format(_FAMILY_NAMES[family]) for model, (family, kind) in COUNT_MODELS.items()},
    "zelterman": "Zelterman",
    "chao": "Chao (lower bound)",
}


def _row(method: str, observed: int, estimate: float, se: float, level: float, **extra) -> dict:
    lower, upper = log_transformed_ci(observed, estimate, se, level)
    return {"quantity": "abundance", "method": method, "estimate": estimate, "se": se, "lower": lower,
            "upper": upper, "level": level, "observed": observed, **extra}


def zero_truncated_poisson(counts: np.ndarray, design: np.ndarray | None = None, *, level: float = 0.95,
                           max_iter: int = 200, multiplicity: np.ndarray | None = None) -> dict:
    """Zero-truncated Poisson regression and its Horvitz-Thompson size (see the module docstring); ``multiplicity``
    as in :func:`.single_counts.fit_count_model`."""
    y = np.asarray(counts, dtype=float)
    x = np.ones((y.size, 1)) if design is None else np.asarray(design, dtype=float)
    times = np.ones(y.size) if multiplicity is None else np.asarray(multiplicity, dtype=float)
    beta = np.zeros(x.shape[1])
    beta[0] = math.log(max(np.average(y, weights=times) - 1.0, 0.1))
    info = np.eye(x.shape[1])
    for _ in range(max_iter):
        lam = np.exp(x @ beta)
        p0 = np.exp(-lam)
        score = x.T @ (times * (y - lam / (1.0 - p0)))
        weight = times * lam * (1.0 - p0 - lam * p0) / (1.0 - p0) ** 2
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
    estimate = float(times @ (1.0 / (1.0 - p0)))
    gradient = -(x * (times * lam * p0 / (1.0 - p0) ** 2)[:, None]).sum(axis=0)
    variance = float(times @ (p0 / (1.0 - p0) ** 2) + gradient @ np.linalg.solve(info, gradient))
    loglik = float(times @ (y * np.log(lam) - lam - np.log1p(-p0) - gammaln(y + 1)))
    return _row(SINGLE_NAMES["ztpoisson"], int(times.sum()), estimate, math.sqrt(variance), level,
                aic=-2 * loglik + 2 * x.shape[1], parameters=int(x.shape[1]))


def count_regression(counts: np.ndarray, design: np.ndarray | None = None, *, model: str,
                     level: float = 0.95, multiplicity: np.ndarray | None = None) -> dict:
    """One of :data:`COUNT_MODELS` as a result row (NaN with a warning when the model cannot be fitted)."""
    family, kind = COUNT_MODELS[model]
    fit = fit_count_model(counts, design, family=family, kind=kind, multiplicity=multiplicity)
    extra = {"aic": -2 * fit.loglik + 2 * fit.parameters if fit.converged else math.nan,
             "parameters": fit.parameters}
    if family == "negbin":
        extra["dispersion"] = math.nan if fit.alpha is None else fit.alpha
    if kind != "zt":
        extra["omega"] = math.nan if fit.omega is None else fit.omega
    if fit.warning:
        extra["warnings"] = fit.warning
    observed = np.asarray(counts).size if multiplicity is None else np.sum(multiplicity)
    return _row(SINGLE_NAMES[model], int(observed), fit.estimate, fit.se, level, **extra)


def _frequencies(counts: np.ndarray, multiplicity: np.ndarray | None = None) -> tuple[int, int, int]:
    y = np.asarray(counts)
    times = np.ones(y.size, dtype=np.int64) if multiplicity is None else np.asarray(multiplicity, dtype=np.int64)
    return int(times.sum()), int(times[y == 1].sum()), int(times[y == 2].sum())


def zelterman(counts: np.ndarray, *, level: float = 0.95, multiplicity: np.ndarray | None = None) -> dict:
    """Zelterman's estimator from the units seen once and twice."""
    n, f1, f2 = _frequencies(counts, multiplicity)
    if f1 == 0 or f2 == 0:
        return _row(SINGLE_NAMES["zelterman"], n, math.nan, math.nan, level, warnings="needs units seen once and twice")
    lam = 2.0 * f2 / f1
    p0 = math.exp(-lam)
    estimate = n / (1.0 - p0)
    variance = n * p0 / (1.0 - p0) ** 2 + (n * p0 * lam / (1.0 - p0) ** 2) ** 2 * (1.0 / f1 + 1.0 / f2)
    return _row(SINGLE_NAMES["zelterman"], n, estimate, math.sqrt(variance), level)


def chao_single(counts: np.ndarray, *, level: float = 0.95, multiplicity: np.ndarray | None = None) -> dict:
    """Chao's lower bound n + f_1^2 / (2 f_2)."""
    n, f1, f2 = _frequencies(counts, multiplicity)
    if f2 == 0:
        return _row(SINGLE_NAMES["chao"], n, math.nan, math.nan, level, warnings="needs units seen twice")
    ratio = f1 / f2
    variance = f2 * (ratio**4 / 4.0 + ratio**3 + ratio**2 / 2.0)
    return _row(SINGLE_NAMES["chao"], n, n + f1 * f1 / (2.0 * f2), math.sqrt(variance), level)


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
    design = np.hstack(parts)
    if not np.all(np.isfinite(design)):
        row = int(np.flatnonzero(~np.isfinite(design).all(axis=1))[0]) + 1
        column = next(c for c in covariates if pd.api.types.is_numeric_dtype(frame[c])
                      and not np.isfinite(frame[c].to_numpy(dtype=float)[row - 1]))
        raise DataError(f"{locate(source, row, column)}covariate is not a finite number")
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise DataError(f"{source}: the covariates {', '.join(repr(c) for c in covariates)} are collinear with "
                        "each other or the intercept (a constant column, or a category determined by the others); "
                        "leave one out")
    return design


def single_row(counts: np.ndarray, design: np.ndarray | None = None, *, model: str, level: float = 0.95,
               multiplicity: np.ndarray | None = None) -> dict:
    """One of :data:`SINGLE_MODELS` as a result row (key ``model`` = its name); ``multiplicity`` as in
    :func:`.single_counts.fit_count_model`."""
    if model == "ztpoisson":
        row = zero_truncated_poisson(counts, design, level=level, multiplicity=multiplicity)
    elif model in COUNT_MODELS:
        row = count_regression(counts, design, model=model, level=level, multiplicity=multiplicity)
    elif model == "zelterman":
        row = zelterman(counts, level=level, multiplicity=multiplicity)
    elif model == "chao":
        row = chao_single(counts, level=level, multiplicity=multiplicity)
    else:
        raise ValueError(f"unknown single-source model {model!r}")
    return row | {"model": model}


def frequency_row(frequencies: np.ndarray, *, model: str, level: float = 0.95) -> dict:
    """:func:`single_row` on a frequency table: ``frequencies[c]`` units seen exactly c times (entry 0 ignored)."""
    frequencies = np.asarray(frequencies, dtype=np.int64)
    seen = np.flatnonzero(frequencies[1:] > 0) + 1
    return single_row(seen.astype(float), model=model, level=level, multiplicity=frequencies[seen])


def one_inflation_partner(model: str) -> str | None:
    """The same base distribution inflated in the other order (``oiztpoisson`` <-> ``ztoipoisson``), or None."""
    family, kind = COUNT_MODELS.get(model, ("", "zt"))
    if kind == "zt":
        return None
    other = "ztoi" if kind == "oizt" else "oizt"
    return next(name for name, pair in COUNT_MODELS.items() if pair == (family, other))


def single_source(frame: pd.DataFrame, *, count_column: str, covariates: Sequence[str] = (),
                  models: Sequence[str] = SINGLE_MODELS, level: float = 0.95, source: str = "data") -> Estimates:
    """Every named single-source estimator on one row per unit seen (``count_column`` = times seen, >= 1);
    covariates enter the count regressions (:data:`REGRESSION_MODELS`)."""
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
    design = _design(frame, covariates, source) if any(m in REGRESSION_MODELS for m in models) else None
    rows = [single_row(y, design, model=model, level=level) for model in models]
    n, f1, f2 = _frequencies(y)
    warnings = [f"{row['method']}: {row['warnings']}" for row in rows if row.get("warnings")]
    notes = [f"{n} units seen: {f1} once, {f2} twice, {n - f1 - f2} more often"]
    if covariates and not any(m in REGRESSION_MODELS for m in models):
        notes.append("covariates enter only the count regressions, none of which was asked for")
    band = _one_inflation_band(rows)
    for family, ends in band.items():
        notes.append(f"one-inflation band ({_FAMILY_NAMES[family]}): {ends['lower']:,.0f} to {ends['upper']:,.0f}; "
                     "the two one-inflation orders fit the counts alike and differ in the size, so report the band")
    for row in rows:
        row.pop("model", None)
    diagnostics = {"observed": n, "f1": f1, "f2": f2, "covariates": list(covariates)}
    if band:
        diagnostics["one_inflation_band"] = band
    return Estimates.from_rows(rows, warnings=warnings, notes=notes, diagnostics=diagnostics)


def _one_inflation_band(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per base distribution fitted in both one-inflation orders: both sizes and the band between them; the rows
    of the two orders are marked as its lower and upper end."""
    band = {}
    for family in _FAMILY_NAMES:
        pair = {COUNT_MODELS[row["model"]][1]: row for row in rows
                if COUNT_MODELS.get(row.get("model"), ("", ""))[0] == family and COUNT_MODELS[row["model"]][1] != "zt"}
        if len(pair) < 2 or not all(math.isfinite(row["estimate"]) for row in pair.values()):
            continue
        sizes = {kind: row["estimate"] for kind, row in pair.items()}
        low, high = min(sizes.values()), max(sizes.values())
        band[family] = {**sizes, "lower": low, "upper": high}
        for kind, row in pair.items():
            row["one_inflation_band"] = ("both ends" if low == high else
                                         "lower end" if sizes[kind] == low else "upper end")
    return band
