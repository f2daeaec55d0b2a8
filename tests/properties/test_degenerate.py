"""Degenerate data: a correct result, or a clear error, or a result that carries a warning; never a crash or a
silent NaN."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from hiddenpop import nsum
from hiddenpop.capture.closed.models import closedp, fit_closed
from hiddenpop.capture.core.histories import Histories
from hiddenpop.capture.lists.models import mse
from hiddenpop.data import ARD, read_ard
from hiddenpop.errors import DataError
from hiddenpop.simulate.grid import parse_grid, run_grid

KNOWN = pd.DataFrame({"group": ["k1", "k2"], "size": [1e4, 2e4]})


def _ard(frame):
    return ARD.from_frame(frame, known=KNOWN, population=1e6, hidden=["h"], source="t.csv")


def test_nsum_hidden_group_nobody_knows_gives_zero_not_nan():
    frame = pd.DataFrame({"k1": [1, 2, 0], "k2": [3, 1, 2], "h": [0, 0, 0]})
    table = nsum.estimate(_ard(frame), method=["mle", "pimle", "mos"]).table
    assert (table["estimate"] == 0).all()
    booted = nsum.estimate(_ard(frame), bootstrap=100, seed=1).table.iloc[0]
    assert booted["estimate"] == 0 and booted["lower"] == 0 and booted["upper"] == 0


def test_nsum_one_respondent_is_finite():
    frame = pd.DataFrame({"k1": [2], "k2": [3], "h": [1]})
    table = nsum.estimate(_ard(frame), method=["mle", "pimle", "mos"]).table
    assert np.isfinite(table["estimate"]).all()
    # MLE/PIMLE: N y / (N sum y_k / sum N_k); mean of sums: degree N * mean_k(y_k / N_k) = 175
    np.testing.assert_allclose(table["estimate"], [1e6 / (1e6 * 5 / 3e4)] * 2 + [1e6 / 175])


def test_nsum_all_zero_survey_is_a_clear_error():
    with pytest.raises(DataError, match="reported by nobody"):
        _ard(pd.DataFrame({"k1": [0, 0], "k2": [0, 0], "h": [0, 1]}))


def test_excel_dates_in_a_count_column_are_named(tmp_path):
    path = tmp_path / "survey.xlsx"
    pd.DataFrame({"k1": [dt.datetime(2022, 1, 3), dt.datetime(2022, 1, 4)], "k2": [1, 2], "h": [0, 1]}).to_excel(
        path, index=False)
    with pytest.raises(DataError, match=r"survey.xlsx.*column 'k1'.*dates"):
        read_ard(path, known=KNOWN, population=1e6, hidden=["h"])


def test_no_recaptures_every_model_warns_and_nothing_crashes():
    caught = np.eye(4, dtype=int)[[0, 1, 2, 3, 0, 1]]
    result = closedp(Histories.from_patterns(caught))
    assert len(result.table) > 0
    assert (result.table["warnings"] != "").all()


def test_f2_zero_chao_warns_when_not_identified():
    histories = Histories.from_patterns(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]), [30, 20, 25, 2])
    fit = fit_closed(histories, "Mh Chao (LB)")
    assert fit.warnings, "an unidentified Chao fit must say so"


def test_huge_counts_stay_finite():
    patterns = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 1, 1]])
    counts = np.array([30, 20, 25, 6, 1])
    small = fit_closed(Histories.from_patterns(patterns, counts), "M0").abundance
    huge = fit_closed(Histories.from_patterns(patterns, counts * 10**9), "M0").abundance
    assert np.isfinite(huge)
    np.testing.assert_allclose(huge, small * 10**9, rtol=1e-6)  # M0 is homogeneous in the counts


def test_list_that_shares_nobody_gives_a_finite_estimate_or_a_clear_error():
    lists = pd.DataFrame({"A": [1, 0, 0, 1], "B": [0, 1, 0, 1], "C": [0, 0, 1, 0], "count": [30, 20, 25, 5]})
    table = mse(lists).table
    assert np.isfinite(table["estimate"]).all()
    with pytest.raises(DataError, match="contain nobody"):
        mse(pd.DataFrame({"A": [1], "B": [0], "count": [5]}))


def test_grid_scenario_where_nothing_is_caught_is_reported_not_crashed():
    spec = parse_grid({"grid": {"seed": 1, "replicates": 3},
                       "capture": {"estimators": ["M0"], "baseline": {"population": 10, "capture_probability": 0.001,
                                                                       "occasions": 2}}})
    result = run_grid(spec)
    row = result.summary.iloc[0]
    assert row["failed"] == 3 and np.isnan(row["bias"]) and np.isnan(row["coverage"])
    assert any("3 of 3 replicates" in w for w in result.warnings)


def test_count_above_the_population_is_an_error_not_silent():
    """A 99999-style missing code in a count column would give an estimate above the population: no respondent can
    know more people than live in the country, so the reader refuses it, naming the row and column."""
    frame = pd.DataFrame({"k1": [1, 2, 0], "k2": [3, 1, 2], "h": [0, 99_999_999, 0]})
    with pytest.raises(DataError, match="row 2, column 'h': count larger than the population base"):
        nsum.estimate(_ard(frame))
