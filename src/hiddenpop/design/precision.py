"""Sample size and margin of error for estimating a proportion.

Under simple random sampling without replacement of ``n`` units from a population of ``N``, the sample
proportion has variance

    Var(p_hat) = deff * p (1 - p) / n * (N - n) / (N - 1)

where ``deff`` is the design effect (the variance inflation of a clustered or weighted design relative to
simple random sampling). The normal-approximation margin of error at confidence ``1 - alpha`` is

    e = z_{1 - alpha/2} * sqrt(Var(p_hat)).

Solving ``e`` for ``n`` gives Cochran's formula with the finite population correction (FPC):

    n_0 = z^2 * p (1 - p) * deff / e^2          (infinite population)
    n   = N * n_0 / (N - 1 + n_0) = n_0 / (1 + (n_0 - 1) / N)

and the number of units to contact is ``n / response_rate``. Both are rounded up.

Assumptions: the estimator is a proportion; the normal approximation holds (``n p`` and ``n (1 - p)`` both
comfortably above 10); the design effect is known or guessed from a similar survey; ``p = 0.5`` gives the
largest (most conservative) size. Fails when ``p`` is near 0 or 1 (the normal interval is then poor; size for
a relative margin or use exact methods) and when the design effect is underestimated (clustered surveys of
rare, geographically concentrated traits can have ``deff`` well above 2).

Reference: Cochran, W. G. (1977) *Sampling Techniques*, 3rd ed., Wiley, sections 4.4-4.6; Kish, L. (1965)
*Survey Sampling*, Wiley, section 8.2 (design effect).
"""

from __future__ import annotations

import math

import numpy as np

from hiddenpop.design.specs import SampleSizeSpec
from hiddenpop.distributions import two_sided_z
from hiddenpop.errors import ConfigError
from hiddenpop.results import Estimates

METHOD = "normal approximation (Cochran)"


def z_value(confidence: float) -> float:
    """Two-sided standard normal quantile ``z_{1 - alpha/2}`` for ``confidence = 1 - alpha``."""
    _check_open_unit("confidence", confidence)
    return two_sided_z(confidence)


def _check_open_unit(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value < 1.0):
        raise ConfigError(f"{name} must be strictly between 0 and 1 (got {value!r}); e.g. --{name} 0.95")


def _check_common(
    confidence: float, proportion: float, population: float | None, design_effect: float, response_rate: float
) -> None:
    _check_open_unit("confidence", confidence)
    _check_open_unit("proportion", proportion)
    if population is not None and not (math.isfinite(population) and population >= 1):
        raise ConfigError(
            f"population must be a positive count (got {population!r}); omit it for an infinite population"
        )
    if not (math.isfinite(design_effect) and design_effect > 0):
        raise ConfigError(
            f"design effect must be positive (got {design_effect!r}); 1 means simple random sampling"
        )
    if not (0.0 < response_rate <= 1.0):
        raise ConfigError(f"response rate must be in (0, 1] (got {response_rate!r})")


def margin_of_error_value(
    n: float,
    *,
    confidence: float = 0.95,
    proportion: float = 0.5,
    population: float | None = None,
    design_effect: float = 1.0,
) -> float:
    """The half-width ``e = z sqrt(deff p(1-p)/n (N-n)/(N-1))`` as a float (no validation of types)."""
    variance = design_effect * proportion * (1.0 - proportion) / n
    if population is not None:
        variance *= (population - n) / (population - 1.0) if population > 1 else 0.0
    return z_value(confidence) * math.sqrt(max(variance, 0.0))


def required_n_value(
    margin: float,
    *,
    confidence: float = 0.95,
    proportion: float = 0.5,
    population: float | None = None,
    design_effect: float = 1.0,
) -> float:
    """Unrounded completed-interview size ``n`` giving half-width ``margin`` (Cochran with FPC)."""
    z = z_value(confidence)
    n_infinite = z * z * proportion * (1.0 - proportion) * design_effect / (margin * margin)
    if population is None:
        return n_infinite
    return population * n_infinite / (population - 1.0 + n_infinite)


def sample_size(
    margin: float,
    *,
    confidence: float = 0.95,
    proportion: float = 0.5,
    population: float | None = None,
    design_effect: float = 1.0,
    response_rate: float = 1.0,
    expected_unknown: float = 0.0,
) -> Estimates:
    """Completed interviews (or reviews) needed to estimate a proportion within +/- ``margin``.

    ``n = n_0 / (1 + (n_0 - 1)/N)`` with ``n_0 = z^2 p(1-p) deff / e^2`` (see the module docstring), rounded
    up; ``n_contact = ceil(n / (response_rate * (1 - expected_unknown)))`` is the number of units to draw when
    some will not respond or (in a review) will come back "unknown". With a finite population ``n`` never
    exceeds ``N``.

    Returns ``Estimates`` with rows ``sample_size`` (completed, usable units), ``sample_size_to_draw`` and
    ``margin_achieved`` (the margin the rounded size actually gives).
    """
    _check_common(confidence, proportion, population, design_effect, response_rate)
    _check_open_unit("margin", margin)
    if not (0.0 <= expected_unknown < 1.0):
        raise ConfigError(f"expected unknown share must be in [0, 1) (got {expected_unknown!r})")
    z = z_value(confidence)
    n_infinite = z * z * proportion * (1.0 - proportion) * design_effect / (margin * margin)
    n_exact = required_n_value(
        margin,
        confidence=confidence,
        proportion=proportion,
        population=population,
        design_effect=design_effect,
    )
    n = math.ceil(n_exact - 1e-9)
    usable_share = response_rate * (1.0 - expected_unknown)
    n_draw = math.ceil(n / usable_share - 1e-9)
    warnings: list[str] = []
    notes: list[str] = []
    if population is not None and n_draw > population:
        warnings.append(
            f"units to draw ({n_draw}) exceed the population ({int(population)}): review every unit (a census) "
            "and report the share of usable reviews"
        )
        n_draw = int(population)
    achieved = margin_of_error_value(
        n, confidence=confidence, proportion=proportion, population=population, design_effect=design_effect
    )
    if n * min(proportion, 1 - proportion) < 10:
        warnings.append(
            f"n * min(p, 1-p) = {n * min(proportion, 1 - proportion):.1f} < 10: the normal approximation behind "
            "this size is poor; plan with an exact (Clopper-Pearson) interval instead"
        )
    if population is None:
        notes.append("no population given: infinite population (no finite population correction)")
    common = {
        "confidence": confidence,
        "proportion": proportion,
        "population": population,
        "design_effect": design_effect,
        "z": z,
    }
    rows = [
        {
            "quantity": "sample_size",
            "method": METHOD,
            "estimate": n,
            "level": confidence,
            "unrounded": n_exact,
            "margin": margin,
            **common,
        },
        {
            "quantity": "sample_size_infinite_population",
            "method": METHOD,
            "estimate": math.ceil(n_infinite - 1e-9),
            "level": confidence,
            "unrounded": n_infinite,
            "margin": margin,
            **common,
        },
        {
            "quantity": "sample_size_to_draw",
            "method": METHOD,
            "estimate": n_draw,
            "level": confidence,
            "unrounded": n / usable_share,
            "margin": margin,
            **common,
        },
        {
            "quantity": "margin_achieved",
            "method": METHOD,
            "estimate": achieved,
            "level": confidence,
            "unrounded": achieved,
            "margin": achieved,
            **common,
        },
    ]
    return Estimates.from_rows(
        rows,
        settings={
            "solve_for": "n",
            "margin": margin,
            **common,
            "response_rate": response_rate,
            "expected_unknown": expected_unknown,
        },
        warnings=warnings,
        notes=notes,
        diagnostics={"fpc": _fpc(n, population), "effective_sample_size": n / design_effect},
    )


def margin_of_error(
    n: int,
    *,
    confidence: float = 0.95,
    proportion: float = 0.5,
    population: float | None = None,
    design_effect: float = 1.0,
) -> Estimates:
    """Half-width of the normal-approximation interval for a proportion from ``n`` completed interviews.

    ``e = z_{1-alpha/2} sqrt(deff p(1-p)/n (N-n)/(N-1))``. Study 2 (3,600 interviews, N = 113,771,856,
    99% confidence, p = 0.5, deff = 1) gives e = 0.0215.
    """
    _check_common(confidence, proportion, population, design_effect, 1.0)
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ConfigError(f"n must be a positive whole number (got {n!r})")
    if population is not None and n > population:
        raise ConfigError(
            f"n ({n}) exceeds the population ({population}); a sample cannot be larger than the population"
        )
    z = z_value(confidence)
    margin = margin_of_error_value(
        n, confidence=confidence, proportion=proportion, population=population, design_effect=design_effect
    )
    se = margin / z
    warnings = []
    if n * min(proportion, 1 - proportion) < 10:
        warnings.append(
            "n * min(p, 1-p) < 10: the normal approximation is poor here; quote an exact interval instead"
        )
    row = {
        "quantity": "margin_of_error",
        "method": METHOD,
        "estimate": margin,
        "se": se,
        "lower": proportion - margin,
        "upper": proportion + margin,
        "level": confidence,
        "margin_percent": round(100.0 * margin, 2),
        "n": n,
        "proportion": proportion,
        "population": population,
        "design_effect": design_effect,
        "z": z,
    }
    return Estimates.from_rows(
        [row],
        settings={
            "solve_for": "margin",
            "n": n,
            "confidence": confidence,
            "proportion": proportion,
            "population": population,
            "design_effect": design_effect,
        },
        warnings=warnings,
        notes=[
            f"margin of error +/-{100 * margin:.2f} percentage points at {confidence:.0%} confidence "
            f"(n = {n}, p = {proportion:g}, deff = {design_effect:g})"
        ]
        + ([] if population is not None else ["no population given: infinite population (no FPC)"]),
        diagnostics={"fpc": _fpc(n, population), "effective_sample_size": n / design_effect},
    )


def _fpc(n: float, population: float | None) -> float:
    if population is None or population <= 1:
        return 1.0
    return (population - n) / (population - 1.0)


def sample_size_analysis(spec: SampleSizeSpec) -> Estimates:
    """:func:`sample_size` for ``spec.margin``, or :func:`margin_of_error` for ``spec.n`` (exactly one is given)."""
    if (spec.margin is None) == (spec.n is None):
        raise ConfigError("give exactly one of --margin (solve for n) or --n (solve for the margin)")
    if spec.n is not None:
        if spec.response_rate != 1.0:
            raise ConfigError("--response-rate applies when solving for n (--margin), not with --n")
        return margin_of_error(spec.n, confidence=spec.confidence, proportion=spec.proportion,
                               population=spec.population, design_effect=spec.design_effect)
    return sample_size(spec.margin, confidence=spec.confidence, proportion=spec.proportion,
                       population=spec.population, design_effect=spec.design_effect,
                       response_rate=spec.response_rate)
