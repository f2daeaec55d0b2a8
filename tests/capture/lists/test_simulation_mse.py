"""Simulation with known truth: lists with a true pairwise dependence (fixed seeds, kept small and fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiddenpop.capture.lists.data import list_data
from hiddenpop.capture.lists.fitting import fit_model
from hiddenpop.capture.lists.models import _conditional_interval, mse
from hiddenpop.capture.lists.selection import select_model

POPULATION = 3000
PROBS = np.array([0.25, 0.2, 0.3, 0.2])
DEPENDENCE = 1.5  # log odds ratio between lists A and B (A refers cases to B)


def _cell_probabilities():
    patterns = ((np.arange(0, 16)[:, None] >> np.arange(4)) & 1).astype(int)
    weight = np.prod(np.where(patterns == 1, PROBS, 1 - PROBS), axis=1)
    weight = weight * np.exp(DEPENDENCE * patterns[:, 0] * patterns[:, 1])
    return patterns, weight / weight.sum()


def _simulate(reps, seed):
    patterns, probs = _cell_probabilities()
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(POPULATION, probs, size=reps)
    frames = []
    for row in counts:
        frame = pd.DataFrame(patterns[1:], columns=list("ABCD"))
        frame["count"] = row[1:]
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def simulated():
    return _simulate(60, seed=20261121)


def test_selected_model_interval_covers_truth(simulated):
    estimates, covered, found = [], [], []
    for frame in simulated:
        data = list_data(frame)
        selection = select_model(data, "stepwise")
        interval = _conditional_interval(data, selection.fit, 0.95, True)  # profile CI of the selected model
        estimates.append(selection.fit.abundance)
        covered.append(interval["lower"] <= POPULATION <= interval["upper"])
        found.append((0, 1) in selection.order_added)
    assert np.mean(found) >= 0.95  # the true dependence is detected
    assert abs(np.mean(estimates) / POPULATION - 1) < 0.03
    assert np.mean(covered) >= 0.85, np.mean(covered)


def test_independence_model_is_biased_down_by_positive_dependence(simulated):
    main = np.array([fit_model(list_data(frame), []).abundance for frame in simulated])
    true_model = np.array([fit_model(list_data(frame), ["A:B"]).abundance for frame in simulated])
    assert np.mean(main) / POPULATION - 1 < -0.08
    assert abs(np.mean(true_model) / POPULATION - 1) < 0.03


def test_bca_interval_repeating_selection_covers_truth():
    # BCa intervals that repeat the stepwise selection in every replicate (20 data sets x 50 replicates).
    frames = _simulate(20, seed=7)
    covered = []
    for r, frame in enumerate(frames):
        row = mse(frame, "stepwise", bootstrap=50, seed=r, profile=False).table.iloc[0]
        covered.append(row["lower"] <= POPULATION <= row["upper"])
    assert np.mean(covered) >= 0.8, np.mean(covered)
