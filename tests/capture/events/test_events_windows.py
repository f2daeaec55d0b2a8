"""Occasions and rolling windows: the event-sweep counts equal a brute-force count on every configuration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiddenpop.capture.events.occasions import (
    history_labels,
    parse_days,
    pattern_counts_naive,
    pattern_table,
    plan_windows,
    window_pattern_counts,
)
from hiddenpop.errors import ConfigError


def _pairs(rng, identifiers, days, n):
    codes = rng.integers(0, identifiers, n)
    day = rng.integers(0, days, n)
    unique = np.unique(codes * 10_000 + day)
    return unique // 10_000, unique % 10_000


def _batches(codes, days, cuts):
    """Split sorted pairs into batches at identifier boundaries."""
    edges = [0] + [int(np.searchsorted(codes, c)) for c in cuts] + [codes.size]
    return [(codes[a:b], days[a:b]) for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize("occasion,occasions,step", [(7, 4, 1), (3, 3, 2), (28, 2, 5), (1, 5, 1), (4, 13, 3)])
def test_sweep_equals_brute_force(occasion, occasions, step):
    rng = np.random.default_rng(occasion * 100 + occasions)
    codes, days = _pairs(rng, 60, 160, 500)
    plan = plan_windows(3, 155, occasion=occasion, occasions=occasions, step=step)
    expected = pattern_counts_naive(codes, days, plan)
    fast = window_pattern_counts(_batches(codes, days, [20, 50]), plan)
    sorted_only = window_pattern_counts(_batches(codes, days, [40]), plan, use_templates=False)
    assert (fast == expected).all()
    assert (sorted_only == expected).all()
    assert fast[:, 0].sum() == 0


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    occasion=st.integers(1, 10),
    occasions=st.integers(2, 6),
    step=st.integers(1, 9),
    density=st.sampled_from([10, 100, 500]),
)
def test_sweep_equals_brute_force_property(seed, occasion, occasions, step, density):
    rng = np.random.default_rng(seed)
    codes, days = _pairs(rng, 20, 90, density)
    if occasion * occasions > 80:
        return
    plan = plan_windows(int(rng.integers(0, 5)), 88, occasion=occasion, occasions=occasions, step=step)
    assert (window_pattern_counts([(codes, days)], plan) == pattern_counts_naive(codes, days, plan)).all()


def test_an_identifier_every_day_and_a_single_report():
    plan = plan_windows(0, 27, occasion=7, occasions=4)
    codes = np.array([0] * 28 + [1])
    days = np.array([*list(range(28)), 9])
    counts = window_pattern_counts([(codes, days)], plan)
    assert counts.shape == (1, 16)
    labels = history_labels(4)
    assert counts[0, labels.index("1111")] == 1  # seen in all four weeks
    assert counts[0, labels.index("0100")] == 1  # day 9 is in week 2
    assert counts.sum() == 2


def test_plan_and_durations():
    assert parse_days("7D") == 7 and parse_days("4W") == 28 and parse_days("28") == 28 and parse_days(3) == 3
    for bad in ("1M", "0D", "week"):
        with pytest.raises(ConfigError):
            parse_days(bad)
    plan = plan_windows(0, 1460, occasion="7D", occasions=4, step="1D")
    assert plan.window_days == 28 and plan.n_windows == 1461 - 27
    back_to_back = plan_windows(0, 364, occasion="28D", occasions=13, step="none")
    assert back_to_back.n_windows == 1 and back_to_back.window_days == 364
    with pytest.raises(ConfigError, match="fewer than one window"):
        plan_windows(0, 20, occasion="7D", occasions=4)
    with pytest.raises(ConfigError):
        plan_windows(0, 100, occasions=1)


def test_pattern_table_is_tidy():
    plan = plan_windows(0, 13, occasion=7, occasions=2, step="7D")
    counts = window_pattern_counts([(np.array([0, 0, 1]), np.array([1, 8, 3]))], plan)
    table = pattern_table(counts, plan, "2017-01-01")
    assert list(table.columns) == ["window_start", "window_end", "history", "count"]
    assert table["history"].tolist() == ["11", "10", "01"]
    assert table["count"].tolist() == [1, 1, 0]
    assert table["window_end"].iloc[0] == "2017-01-14"
