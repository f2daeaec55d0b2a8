"""The recall curve as a factor of the Bayesian models' reporting probabilities (``recall="loglinear"``).

The design-based correction (:mod:`hiddenpop.nsum.recall`) fits log(reported / true share) = a + b log(true
share) on the known groups and inverts it for the hidden ones. Here the same curve multiplies every group's
probability of a tie inside the likelihood:

    p_k* = p_k exp(b (log p_k - c)),   c = mean over known groups of log(N_k / N),

with p_k = N_k / N for a known group and the hidden group's reported probability (N_k / N, or tau_k N_k / N with
transmission error: the curve acts on the members respondents know of) for a hidden one, evaluated at the
sampled size, so each draw solves the fixed point of the design-based inversion automatically. The slope b is
sampled jointly with the sizes and degrees, so its uncertainty is in every posterior interval.

The curve's level a is not a parameter: exp(a) multiplies every probability, which a random degree absorbs
(log d_i shifts by a), so only the shape is identified. Centring at c makes b nearly uncorrelated with the
degree location mu. The models with fixed degrees (basic) or their own scaling (overdispersed) have nowhere to
put the level and do not take the curve.

Prior: b ~ Uniform(-0.9, 0.9). b <= -1 would make reports fall as groups grow (the curve could not be inverted
and the hidden size would not be identified); the bound keeps 1 + b >= 0.1. A posterior piled against a bound
says the line does not describe the known groups (look at the design-based curve's figure).

Assumptions and failure modes: those of the design-based curve (same distortion for known and hidden groups of
the same size; beyond the known groups' sizes the line is extrapolated); with barrier effects the group-level
dispersion rho_k absorbs some departures from the curve.

References: Maltiel, Raftery, McCormick & Baraff (2015), Annals of Applied Statistics 9:1247-1277; McCormick,
Salganik & Zheng (2010), JASA 105:59-70.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hiddenpop.errors import ConfigError
from hiddenpop.mcmc.nuts import uniform_interval
from hiddenpop.nsum.specs import RECALL_CURVES

__all__ = ["MODELS_WITHOUT_RECALL", "SLOPE_BOUNDS", "apply", "arrays", "check", "extrapolation_warnings",
           "initial_values", "multiplier", "shapes"]

#: Bounds of the uniform prior on the recall slope b.
SLOPE_BOUNDS = (-0.9, 0.9)
#: Models the curve cannot enter (see the module docstring).
MODELS_WITHOUT_RECALL = ("basic", "overdispersed", "correlated", "uncorrelated")


def check(recall: str, model: str) -> bool:
    """Whether ``model`` takes the curve; refuses an unknown curve or a model that cannot take one."""
    if recall not in RECALL_CURVES:
        raise ConfigError(f"recall must be one of {list(RECALL_CURVES)}, got {recall!r}")
    if recall != "none" and model in MODELS_WITHOUT_RECALL:
        raise ConfigError(f"the {model} model cannot take a recall curve (its degrees are fixed or scaled by the "
                          "known groups); use the degree, barrier, transmission or combined model, or recall 'none'")
    return recall != "none"


def shapes() -> dict[str, tuple[int, ...]]:
    return {"recall_slope": ()}


def arrays(known_sizes: np.ndarray, population: float) -> dict[str, Any]:
    """The centre c of the curve and the slope's prior bounds."""
    return {"recall_centre": np.float64(np.mean(np.log(np.asarray(known_sizes, dtype=float) / population))),
            "recall_lo": np.float64(SLOPE_BOUNDS[0]), "recall_hi": np.float64(SLOPE_BOUNDS[1])}


def initial_values() -> dict[str, np.ndarray]:
    """Start at the middle of the prior (b = 0 for the symmetric default bounds: accurate recall)."""
    return {"recall_slope": np.float64(0.0)}


def apply(z: dict[str, Any], data: dict[str, Any], prob: Any) -> tuple[Any, Any, Any]:
    """(probabilities times the curve, the slope, its log prior + log Jacobian)."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax.numpy as jnp

    slope, log_jacobian = uniform_interval(z["recall_slope"], data["recall_lo"], data["recall_hi"])
    return prob * jnp.exp(slope * (jnp.log(prob) - data["recall_centre"])), slope, log_jacobian


def multiplier(prob: np.ndarray, slope: np.ndarray, centre: float) -> np.ndarray:
    """The curve's factor for probabilities ``prob`` (draws, groups) and slopes (draws,), for predictive draws."""
    return np.exp(np.asarray(slope)[:, None] * (np.log(prob) - centre))


def extrapolation_warnings(effective: dict[str, np.ndarray], known_sizes: np.ndarray) -> list[str]:
    """A warning for each hidden group whose posterior median reported size (the size the curve is evaluated at)
    lies outside the known groups' sizes, where the curve is extrapolated."""
    low, high = float(np.min(known_sizes)), float(np.max(known_sizes))
    warnings = []
    for group, draws in effective.items():
        median = float(np.median(draws))
        if not low <= median <= high:
            warnings.append(f"recall curve: the reported size of {group!r} (posterior median {median:.4g}) lies "
                            f"outside the known groups' sizes ({low:.4g} to {high:.4g}): the curve is extrapolated "
                            "there, so the correction is an assumption, not a calibration")
    return warnings
