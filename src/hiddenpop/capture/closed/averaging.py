"""Model averaging over the closed models a user fits (Buckland, Burnham & Augustin 1997).

With criterion values C_m (AIC or BIC) of models m = 1..M fitted to the same counts, the weights are

    w_m = exp(-Delta_m / 2) / sum_j exp(-Delta_j / 2),        Delta_m = C_m - min_j C_j,

the averaged abundance is N_bar = sum_m w_m N_m, and its unconditional standard error adds the spread between
models to each model's own variance:

    se(N_bar) = sum_m w_m sqrt(se_m^2 + (N_m - N_bar)^2).

The interval is log-transformed around the M units seen, as for each closed model (Chao 1987): with f = N_bar - M
units never seen and C = exp(z sqrt(log(1 + se^2 / f^2))), it is [M + f / C, M + f C].

Failure modes: the closed models are compared on one Poisson log-linear likelihood of the same history counts, so
their AICs are comparable; a weight that sits on a model with warnings (a boundary fit, a lower bound such as
Chao's) is flagged, since the average then inherits that model's problem. Averaging does not repair a set of
models that all miss the heterogeneity in the data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiddenpop.capture.core.intervals import log_transformed_ci
from hiddenpop.errors import ConfigError

__all__ = ["CRITERIA", "akaike_weights", "model_average"]

CRITERIA = ("aic", "bic")


def akaike_weights(values: np.ndarray) -> np.ndarray:
    """Weights exp(-Delta/2), normalised, of criterion values (NaN values get weight 0)."""
    values = np.asarray(values, dtype=float)
    usable = np.isfinite(values)
    if not usable.any():
        raise ConfigError("no model has a finite information criterion to average over")
    delta = values - values[usable].min()
    raw = np.where(usable, np.exp(-0.5 * np.where(usable, delta, 0.0)), 0.0)
    return raw / raw.sum()


def model_average(models: pd.DataFrame, observed: int, *, criterion: str = "aic", level: float = 0.95) -> dict:
    """The model-averaged abundance of a closed-model table (columns method, estimate, se, aic, bic and, when
    present, warnings), as one row: estimate, unconditional se, log-transformed interval, and the warnings."""
    if criterion not in CRITERIA:
        raise ConfigError(f"criterion must be one of {', '.join(CRITERIA)}, not {criterion!r}")
    estimate = models["estimate"].to_numpy(dtype=float)
    se = models["se"].to_numpy(dtype=float)
    usable = np.isfinite(estimate) & np.isfinite(se) & np.isfinite(models[criterion].to_numpy(dtype=float))
    weights = np.zeros(len(models))
    weights[usable] = akaike_weights(models[criterion].to_numpy(dtype=float)[usable])
    average = float(np.sum(weights[usable] * estimate[usable]))
    spread = float(np.sum(weights[usable] * np.sqrt(se[usable] ** 2 + (estimate[usable] - average) ** 2)))
    lower, upper = log_transformed_ci(observed, average, spread, level)
    notes = []
    if "warnings" in models.columns:
        flagged = [(m, w) for m, w, text in zip(models["method"], weights, models["warnings"].fillna(""),
                                               strict=True) if text and w > 0]
        weight_on_flagged = float(sum(w for _, w in flagged))
        if weight_on_flagged >= 0.05:
            names = ", ".join(m for m, _ in flagged)
            notes.append(f"{weight_on_flagged:.0%} of the {criterion.upper()} weight is on models with warnings "
                         f"({names}); the average inherits them")
    return {"quantity": "abundance", "method": f"model average ({criterion.upper()})", "estimate": average,
            "se": spread, "lower": lower, "upper": upper, "level": level, "models": int(usable.sum()),
            "weights": dict(zip(models["method"], (float(w) for w in weights), strict=True)),
            "warnings": "; ".join(notes)}

