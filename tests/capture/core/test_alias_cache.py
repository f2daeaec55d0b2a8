"""The Poisson engine's memory of aliased columns: the same masks and fits as computing afresh, bounded size."""

from __future__ import annotations

import numpy as np

from hiddenpop.capture.core import loglinear
from hiddenpop.capture.core.histories import all_patterns
from hiddenpop.capture.core.loglinear import fit_poisson, interaction_design


def _design_with_alias() -> np.ndarray:
    patterns = all_patterns(4).astype(float)
    x = np.column_stack([np.ones(len(patterns)), patterns, patterns[:, 0] * patterns[:, 1]])
    return np.column_stack([x, x[:, 1] + x[:, 2]])  # the last column is a sum of two earlier ones


def test_remembered_mask_equals_a_fresh_one_and_cannot_be_altered(monkeypatch):
    monkeypatch.setattr(loglinear, "_ALIAS_CACHE", {})
    x = _design_with_alias()
    fresh = loglinear._non_aliased_columns(x)
    assert fresh.tolist() == [True] * 6 + [False]
    first = loglinear._non_aliased(x)
    first[:] = False  # a caller changing its copy
    second = loglinear._non_aliased(x.copy())
    assert np.array_equal(second, fresh) and len(loglinear._ALIAS_CACHE) == 1


def test_fits_equal_with_and_without_the_memory(monkeypatch):
    patterns = all_patterns(5)
    design, _names = interaction_design(patterns, ["c1:c2", "c3:c4"], [f"c{j + 1}" for j in range(5)])
    y = np.random.default_rng(2).poisson(np.exp(1.5 + 0.4 * patterns.sum(axis=1))).astype(float)
    monkeypatch.setattr(loglinear, "_ALIAS_CACHE", {})
    cold = fit_poisson(design, y)
    warm = fit_poisson(design, y)
    assert len(loglinear._ALIAS_CACHE) == 1
    assert np.array_equal(cold.coef, warm.coef) and np.array_equal(cold.vcov, warm.vcov)
    assert cold.deviance == warm.deviance and np.isfinite(cold.deviance)


def test_memory_stays_within_its_budget(monkeypatch):
    monkeypatch.setattr(loglinear, "_ALIAS_CACHE", {})
    monkeypatch.setattr(loglinear, "_alias_cache_used", 0)
    monkeypatch.setattr(loglinear, "_ALIAS_CACHE_BUDGET", 3 * _design_with_alias().nbytes)
    rng = np.random.default_rng(0)
    for _ in range(10):
        x = _design_with_alias() * rng.uniform(1, 2)
        assert loglinear._non_aliased(x).sum() == 6
        held = sum(len(key[1]) for key in loglinear._ALIAS_CACHE)
        assert held <= loglinear._ALIAS_CACHE_BUDGET and held == loglinear._alias_cache_used
