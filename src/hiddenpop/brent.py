"""Brent's scalar root finder and bounded minimiser, without importing ``scipy.optimize``.

``import scipy.optimize`` costs about 0.2 s of CPU (it loads SciPy's linear-programming, least-squares and
array-API layers and parses hundreds of docstrings): more than a profile-likelihood interval's whole computation
on a small list. The two one-dimensional methods the estimators need are short, so they live here.

Both follow the same steps, in the same floating-point order, as SciPy's ``brentq`` and ``minimize_scalar(...,
method="bounded")``, so every result is the one SciPy gives, bit for bit; ``tests/test_brent.py`` checks that on
thousands of functions, brackets and tolerances. References: Brent, R. P. (1973), *Algorithms for Minimization
without Derivatives*, ch. 4 (roots: bisection safeguarding secant and inverse quadratic interpolation) and ch. 5
(minimisation: golden section safeguarding successive parabolic interpolation); Forsythe, Malcolm & Moler (1977),
*Computer Methods for Mathematical Computations*, routine FMIN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BoundedMinimum", "find_root", "minimize_bounded"]

#: The smallest relative tolerance ``find_root`` accepts: four units in the last place (SciPy's floor too).
RTOL_FLOOR = 4 * 2.220446049250313e-16


def _not_nan(f: Callable[[float], float], x: float) -> float:
    value = f(x)
    if math.isnan(value):
        raise ValueError(f"the function returned NaN at {x!r}; no root can be bracketed")
    return value


def find_root(
    f: Callable[[float], float],
    a: float,
    b: float,
    *,
    xtol: float = 2e-12,
    rtol: float = RTOL_FLOOR,
    maxiter: int = 100,
) -> float:
    """A root of ``f`` in ``[a, b]``, where ``f(a)`` and ``f(b)`` have opposite signs (Brent 1973, ch. 4).

    Converged when the bracket around the best point is narrower than ``xtol + rtol * |x|``. Each step tries
    inverse interpolation (secant through two points, or the three-point extrapolation when the bracket's far
    end is a third point), accepted only when it moves less than half the previous step and three quarters of the
    bisection step; otherwise bisects. Raises ``ValueError`` when the signs are not opposite or ``f`` returns
    NaN, and ``RuntimeError`` after ``maxiter`` steps without convergence.
    """
    if not xtol > 0:
        raise ValueError(f"xtol must be positive, got {xtol:g}")
    if not rtol >= RTOL_FLOOR:
        raise ValueError(f"rtol must be at least {RTOL_FLOOR:g}, got {rtol:g}")
    previous, best = float(a), float(b)
    f_previous, f_best = _not_nan(f, previous), _not_nan(f, best)
    if f_previous == 0:
        return previous
    if f_best == 0:
        return best
    if math.copysign(1.0, f_previous) == math.copysign(1.0, f_best):
        raise ValueError("the function has the same sign at both ends of the bracket; no root is bracketed")
    far = f_far = 0.0  # the end of the bracket opposite ``best``
    step = older_step = 0.0  # the last step taken and the one before it
    for _ in range(maxiter):
        if f_previous != 0 and f_best != 0 and math.copysign(1.0, f_previous) != math.copysign(1.0, f_best):
            far, f_far = previous, f_previous
            step = older_step = best - previous
        if abs(f_far) < abs(f_best):  # keep the smaller |f| as the best point
            previous, best, far = best, far, best
            f_previous, f_best, f_far = f_best, f_far, f_best
        tolerance = (xtol + rtol * abs(best)) / 2
        half_bracket = (far - best) / 2
        if f_best == 0 or abs(half_bracket) < tolerance:
            return float(best)  # a Python float whatever type f returns
        interpolated = False
        if abs(older_step) > tolerance and abs(f_best) < abs(f_previous):
            if previous == far:  # secant through the two points
                trial = -f_best * (best - previous) / (f_best - f_previous)
            else:  # inverse quadratic through three points
                slope_previous = (f_previous - f_best) / (previous - best)
                slope_far = (f_far - f_best) / (far - best)
                trial = -f_best * (f_far * slope_far - f_previous * slope_previous) / (
                    slope_far * slope_previous * (f_far - f_previous))
            if 2 * abs(trial) < min(abs(older_step), 3 * abs(half_bracket) - tolerance):
                older_step, step = step, trial
                interpolated = True
        if not interpolated:
            older_step = step = half_bracket
        previous, f_previous = best, f_best
        if abs(step) > tolerance:
            best += step
        else:
            best += tolerance if half_bracket > 0 else -tolerance
        f_best = _not_nan(f, best)
    raise RuntimeError(f"no convergence after {maxiter} steps")


@dataclass(frozen=True)
class BoundedMinimum:
    """Where :func:`minimize_bounded` stopped: the point, its value, the evaluations used, and whether it
    converged (``False`` when ``maxiter`` evaluations ran out first)."""

    x: float
    fun: float
    evaluations: int
    converged: bool


#: The golden-section fraction (3 - sqrt 5) / 2 and the square root of the relative precision (of 2.2e-16, as
#: FMIN and SciPy) that scales the tolerance with |x|.
_GOLDEN = 0.5 * (3.0 - math.sqrt(5.0))
_SQRT_EPS = math.sqrt(2.2e-16)


def minimize_bounded(
    f: Callable[[float], float], lower: float, upper: float, *, xatol: float = 1e-5, maxiter: int = 500
) -> BoundedMinimum:
    """A local minimum of ``f`` on ``[lower, upper]`` by Brent's method (1973, ch. 5; FMIN).

    Starts at the golden-section point; each step fits a parabola through the three best points and takes its
    vertex when it lies inside the interval and moves less than half the step before last, otherwise a golden-
    section step into the larger part. Stops when the best point is within ``2 tol - (b - a) / 2`` of the
    interval's middle, with ``tol = sqrt(eps) |x| + xatol / 3``. The ends themselves are never evaluated.
    """
    if not (math.isfinite(lower) and math.isfinite(upper)):
        raise ValueError("the bounds of a bounded minimisation must be finite")
    if lower > upper:
        raise ValueError(f"the lower bound {lower!r} exceeds the upper bound {upper!r}")
    a, b = lower, upper
    # the best point so far, the second best and the previous second best, with their values
    best = second = third = a + _GOLDEN * (b - a)
    f_best = f(best)
    f_second = f_third = f_best
    evaluations = 1
    f_trial = math.inf
    step = older_step = 0.0
    middle = 0.5 * (a + b)
    tol = _SQRT_EPS * abs(best) + xatol / 3.0
    converged = True
    while abs(best - middle) > 2.0 * tol - 0.5 * (b - a):
        golden = True
        if abs(older_step) > tol:
            golden = False
            r = (best - second) * (f_best - f_third)
            q = (best - third) * (f_best - f_second)
            p = (best - third) * q - (best - second) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            r, older_step = older_step, step
            if abs(p) < abs(0.5 * q * r) and p > q * (a - best) and p < q * (b - best):
                step = (p + 0.0) / q
                vertex = best + step
                if vertex - a < 2.0 * tol or b - vertex < 2.0 * tol:  # too near an end: a minimal step inwards
                    step = tol * (_sign(middle - best) + (middle - best == 0))
            else:
                golden = True
        if golden:
            older_step = a - best if best >= middle else b - best
            step = _GOLDEN * older_step
        trial = best + (_sign(step) + (step == 0)) * max(abs(step), tol)
        f_trial = f(trial)
        evaluations += 1
        if f_trial <= f_best:
            if trial >= best:
                a = best
            else:
                b = best
            third, f_third = second, f_second
            second, f_second = best, f_best
            best, f_best = trial, f_trial
        else:
            if trial < best:
                a = trial
            else:
                b = trial
            if f_trial <= f_second or second == best:
                third, f_third = second, f_second
                second, f_second = trial, f_trial
            elif f_trial <= f_third or third == best or third == second:
                third, f_third = trial, f_trial
        middle = 0.5 * (a + b)
        tol = _SQRT_EPS * abs(best) + xatol / 3.0
        if evaluations >= maxiter:
            converged = False
            break
    if math.isnan(best) or math.isnan(f_best) or math.isnan(f_trial):
        converged = False
    return BoundedMinimum(float(best), float(f_best), evaluations, converged)


def _sign(value: float) -> float:
    """-1, 0 or 1 as ``numpy.sign`` (NaN stays NaN), for Python and NumPy scalars alike."""
    if value > 0:
        return 1.0
    if value < 0:
        return -1.0
    return value * 0.0
