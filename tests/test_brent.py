"""hiddenpop.brent: Brent's root finder and bounded minimiser, checked against SciPy bit for bit.

The reference is SciPy's ``brentq`` and ``minimize_scalar(method="bounded")``, which the estimators called before:
every root, minimum, value and evaluation count must be the same float, over thousands of random functions,
brackets and tolerances (smooth, kinked, discontinuous, flat, steep), and closed-form cases must come out right.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

from hiddenpop.brent import find_root, minimize_bounded

RNG_SEED = 20261204


def _random_function(rng: np.random.Generator):
    """A random scalar function of one of several shapes, with a sign change or a minimum somewhere in [-10, 10]."""
    kind = int(rng.integers(8))
    c = float(rng.uniform(-5, 5))
    scale = float(10.0 ** rng.uniform(-6, 6))
    if kind == 0:
        roots = rng.uniform(-10, 10, size=int(rng.integers(1, 5)))
        return lambda x: scale * float(np.prod(x - roots))
    if kind == 1:
        return lambda x: scale * (math.exp(x / 3) - math.exp(c / 3))
    if kind == 2:
        return lambda x: scale * math.tanh(2 * (x - c)) + 1e-3 * (x - c)
    if kind == 3:
        return lambda x: scale * ((x - c) ** 3)
    if kind == 4:
        return lambda x: scale * (math.floor(x - c) + 0.5)  # discontinuous: steps, no exact zero
    if kind == 5:
        return lambda x: scale * (abs(x - c) ** 0.3) * (1 if x > c else -1)  # infinite slope at the root
    if kind == 6:
        return lambda x: scale * (x - c) * math.exp(-((x - c) ** 2))  # flat far away
    return lambda x: scale * (math.sin(x) - math.sin(c)) + 1e-9 * (x - c)


def _roots_match(f, a: float, b: float, **tolerances) -> None:
    calls: list[float] = []

    def counted(x: float) -> float:
        calls.append(x)
        return f(x)

    scipy_calls: list[float] = []
    try:
        expected = brentq(lambda x: scipy_calls.append(x) or f(x), a, b, **tolerances)
    except RuntimeError:  # SciPy gave up after maxiter steps: so must find_root, at the same points
        with pytest.raises(RuntimeError, match="no convergence"):
            find_root(counted, a, b, **tolerances)
    else:
        assert find_root(counted, a, b, **tolerances) == expected
    assert calls == scipy_calls  # the same points evaluated, in the same order


def test_find_root_is_scipy_brentq_bit_for_bit():
    rng = np.random.default_rng(RNG_SEED)
    checked = 0
    while checked < 3000:
        f = _random_function(rng)
        a, b = np.sort(rng.uniform(-12, 12, size=2))
        if a == b or not (f(a) < 0) != (f(b) < 0) or f(a) == 0 or f(b) == 0:
            continue
        tolerance = [{}, {"xtol": 1e-12, "rtol": 1e-14}, {"xtol": float(10.0 ** rng.uniform(-9, -1))},
                     {"xtol": 1e-7 * 500, "rtol": 1e-10}][checked % 4]
        _roots_match(f, float(a), float(b), **tolerance)
        checked += 1


def _minima_match(f, lower: float, upper: float, **options) -> None:
    expected = minimize_scalar(f, bounds=(lower, upper), method="bounded", options=options)
    found = minimize_bounded(f, lower, upper, **options)
    assert found.x == expected.x
    assert found.fun == expected.fun
    assert found.evaluations == expected.nfev
    assert found.converged == bool(expected.success)


def test_minimize_bounded_is_scipy_bounded_bit_for_bit():
    rng = np.random.default_rng(RNG_SEED + 1)
    shapes = [
        lambda c, s: (lambda x: s * (x - c) ** 2),
        lambda c, s: (lambda x: s * abs(x - c)),  # kink at the minimum
        lambda c, s: (lambda x: s * math.cos(x - c)),  # several minima
        lambda c, s: (lambda x: s * (math.exp(x - c) - x)),  # asymmetric
        lambda c, s: (lambda x: -s * (c * math.log(abs(x) + 1) - abs(x))),  # a log-likelihood shape
        lambda c, s: (lambda x: s * x),  # monotone: the minimum is at an end
        lambda c, s: (lambda x: s * math.floor(abs(x - c))),  # flat steps
    ]
    for case in range(3000):
        f = shapes[case % len(shapes)](float(rng.uniform(-5, 5)), float(10.0 ** rng.uniform(-4, 4)))
        lower, upper = np.sort(rng.uniform(-12, 12, size=2))
        options = [{}, {"xatol": float(10.0 ** rng.uniform(-10, -1))}, {"xatol": 1e-5, "maxiter": 7}][case % 3]
        _minima_match(f, float(lower), float(upper), **options)


def test_closed_forms():
    assert find_root(lambda x: x * x - 2.0, 0.0, 2.0) == pytest.approx(math.sqrt(2.0), abs=2e-12)
    assert find_root(lambda x: math.log(x) - 1.0, 1.0, 5.0, xtol=1e-14) == pytest.approx(math.e, rel=1e-13)
    assert find_root(lambda x: x - 3.0, 3.0, 9.0) == 3.0  # a root at an end is returned as is
    minimum = minimize_bounded(lambda x: (x - 1.25) ** 2 + 4.0, -3.0, 7.0, xatol=1e-9)
    # within the stopping rule's tolerance sqrt(2.2e-16) |x| + xatol / 3 (about 1.9e-8 here) of the minimum
    assert minimum.converged and minimum.x == pytest.approx(1.25, abs=3e-8) and minimum.fun == pytest.approx(4.0)
    edge = minimize_bounded(lambda x: x, 2.0, 3.0, xatol=1e-8)  # the minimum at the lower end, never evaluated
    assert 2.0 < edge.x < 2.0 + 1e-6


def test_bad_brackets_and_tolerances_raise():
    with pytest.raises(ValueError, match="same sign"):
        find_root(lambda x: x * x + 1.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        find_root(lambda x: math.nan, -1.0, 1.0)
    with pytest.raises(ValueError, match="xtol"):
        find_root(lambda x: x, -1.0, 1.0, xtol=0.0)
    with pytest.raises(ValueError, match="rtol"):
        find_root(lambda x: x, -1.0, 1.0, rtol=1e-17)
    with pytest.raises(RuntimeError, match="no convergence after 3"):
        find_root(lambda x: math.floor(x - 0.3) + 0.5, -1.0, 1e6, maxiter=3)  # no zero: bisects to the jump
    with pytest.raises(ValueError, match="exceeds"):
        minimize_bounded(lambda x: x, 1.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        minimize_bounded(lambda x: x, 0.0, math.inf)
    assert not minimize_bounded(lambda x: (x - 0.1) ** 2, -1e6, 1e6, maxiter=5).converged


def test_results_are_python_floats_whatever_the_function_returns():
    """Callers print and serialise these: a NumPy scalar from ``f`` must not leak into the result's type."""
    root = find_root(lambda x: np.float64(x) - np.float64(0.25), -1.0, 1.0)
    minimum = minimize_bounded(lambda x: np.float64((x - 0.25) ** 2), -1.0, 1.0)
    assert type(root) is float and type(minimum.x) is float and type(minimum.fun) is float
