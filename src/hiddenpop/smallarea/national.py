"""Consistency of area estimates with the national estimate, and optional calibration (benchmarking) to it.

Area estimates need not add up exactly to the national survey estimate (they come from different models and
the national estimate has its own sampling error), but their population-weighted sum should fall inside the
national interval; when it does not, either the area model or the national estimate is off, and a reader must
be told. :func:`national_consistency` makes that comparison::

    implied rate  = sum_a p_a N_a / sum_a N_a       (implied count = sum_a p_a N_a)

and, when posterior or bootstrap draws of the area rates are given, an interval for the implied rate.

:func:`calibrate` forces the implied rate to equal the national point estimate, reporting the adjustment:

* ``"scale"`` (ratio benchmarking): every estimate and bound times ``c = national / implied``. Preserves
  relative differences between areas; can push a rate above one when ``c`` is large.
* ``"logit"``: every estimate and bound shifted by the same constant on the logit scale, found so that the
  population-weighted mean of the shifted point estimates equals the national rate. Keeps rates inside (0, 1);
  for small rates it is close to scaling.

Benchmarking adds the national estimate's information but hides model error; report it with the unadjusted
figures (both are returned) and do not benchmark when the implied rate is already inside the national interval
unless a coherent table is required. Reference: Pfeffermann (2013) Stat. Sci. 28, section 5 (benchmarking).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.brent import find_root
from hiddenpop.errors import ConfigError, DataError
from hiddenpop.smallarea.specs import BENCHMARKS

CALIBRATION_METHODS = BENCHMARKS


def national_consistency(
    estimates: np.ndarray,
    population: np.ndarray | None,
    national: tuple[float, float, float] | None = None,
    *,
    draws: np.ndarray | None = None,
    level: float = 0.9,
) -> dict[str, Any]:
    """Compare the population-weighted sum of area rates with the national (estimate, lower, upper) rate.

    Without ``population`` every area weighs the same (reported). ``draws`` (draws x areas) give an interval
    for the implied national rate.
    """
    estimates = np.asarray(estimates, dtype=float)
    if population is None:
        weights = np.ones_like(estimates)
    else:
        weights = np.asarray(population, dtype=float)
    total = weights.sum()
    implied = float(np.sum(estimates * weights) / total)
    result: dict[str, Any] = {
        "implied_rate": implied,
        "implied_count": float(np.sum(estimates * weights)) if population is not None else None,
        "population": float(total) if population is not None else None,
        "weighting": "population" if population is not None else "equal (no --population)",
    }
    if draws is not None:
        implied_draws = np.asarray(draws) @ weights / total
        alpha = 1.0 - level
        result["implied_lower"] = float(np.quantile(implied_draws, alpha / 2))
        result["implied_upper"] = float(np.quantile(implied_draws, 1 - alpha / 2))
    if national is not None:
        estimate, lower, upper = (float(v) for v in national)
        if not lower <= estimate <= upper:
            raise ConfigError("the national estimate must lie inside its interval (estimate, lower, upper)")
        result.update(
            {
                "national_estimate": estimate,
                "national_lower": lower,
                "national_upper": upper,
                "within_national_interval": bool(lower <= implied <= upper),
                "ratio_to_national": implied / estimate if estimate > 0 else None,
            }
        )
    return result


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _expit(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def calibrate(
    table: pd.DataFrame,
    population: np.ndarray | None,
    national_estimate: float,
    method: str = "scale",
    columns: tuple[str, ...] = ("estimate", "lower", "upper"),
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Adjust the area rates so their population-weighted mean equals ``national_estimate``.

    Returns the adjusted copy of ``table`` (the original values kept in ``<column>_unbenchmarked``) and the
    adjustment (method, factor or shift, implied rate before and after).
    """
    if method not in CALIBRATION_METHODS:
        raise ConfigError(f"benchmark method {method!r}; use one of {list(CALIBRATION_METHODS)}")
    if not 0 < national_estimate < 1:
        raise ConfigError("the national estimate must be a rate strictly between 0 and 1")
    weights = np.ones(len(table)) if population is None else np.asarray(population, dtype=float)
    estimate = table["estimate"].to_numpy(dtype=float)
    if not np.isfinite(estimate).all():
        raise DataError("some area estimates are missing; benchmarking needs an estimate for every area")
    before = float(np.sum(estimate * weights) / weights.sum())
    adjusted = table.copy()
    if method == "none":
        return adjusted, {"method": "none", "implied_before": before, "implied_after": before}
    for column in columns:
        adjusted[f"{column}_unbenchmarked"] = table[column]
    if method == "scale":
        factor = national_estimate / before
        for column in columns:
            adjusted[column] = table[column] * factor
        info: dict[str, Any] = {"method": "scale", "factor": factor}
        above = int((adjusted["upper"] > 1).sum()) if "upper" in columns else 0
        if above:
            info["warning"] = f"{above} upper bound(s) above 1 after scaling; use the logit method"
    else:
        if (estimate <= 0).any() or (estimate >= 1).any():
            raise DataError("logit benchmarking needs every estimate strictly between 0 and 1; use 'scale'")
        logits = _logit(estimate)

        def gap(shift: float) -> float:
            return float(np.sum(_expit(logits + shift) * weights) / weights.sum() - national_estimate)

        shift = find_root(gap, -20.0, 20.0)
        for column in columns:
            values = table[column].to_numpy(dtype=float)
            with np.errstate(divide="ignore", over="ignore"):
                adjusted[column] = _expit(_logit(values) + shift)  # 0 and 1 map to themselves
        info = {"method": "logit", "shift": shift}
    after = float(np.sum(adjusted["estimate"].to_numpy() * weights) / weights.sum())
    info.update({"implied_before": before, "implied_after": after, "national_estimate": national_estimate})
    return adjusted, info
