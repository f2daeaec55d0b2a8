"""Recall correction of the design-based estimators (:mod:`hiddenpop.nsum.recall`).

Checked three ways: the least-squares line against numpy's independent ``polyfit``; a closed-form survey whose
reports lie exactly on a power curve (the correction must return the true size, every bootstrap replicate too);
and simulation with a known recall curve, where the corrected interval must cover and the uncorrected one must
not.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hiddenpop.data.ard import ARD
from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.nsum.estimators import estimate, visibility_sensitivity
from hiddenpop.nsum.recall import fit_loglinear, invert

POPULATION = 1e6


def test_least_squares_line_matches_numpy_polyfit():
    rng = np.random.default_rng(3)
    x = np.log(rng.uniform(1e-4, 0.05, size=9))
    y = 0.2 - 0.3 * x + rng.normal(0, 0.1, size=9)
    slope, intercept = np.polyfit(x, y, 1)
    a, b = fit_loglinear(x, y)
    assert a == pytest.approx(intercept, rel=1e-12) and b == pytest.approx(slope, rel=1e-12)
    # one fit per row of a replicate matrix, a row with a missing point gives NaN
    rows = np.vstack([y, y + 1.0, np.where(np.arange(9) == 2, np.nan, y)])
    a_rows, b_rows = fit_loglinear(x, rows)
    assert a_rows[:2] == pytest.approx([intercept, intercept + 1.0], rel=1e-12)
    assert b_rows[:2] == pytest.approx([slope, slope], rel=1e-12)
    assert np.isnan(a_rows[2]) and np.isnan(b_rows[2])


def test_inversion_solves_the_fixed_point():
    a, b = 0.3, -0.4
    log_p = np.log(np.array([1e-4, 3e-3, 0.2]))
    reported = a + (1 + b) * log_p  # log of the share the curve makes respondents report
    assert invert(reported, a, b) == pytest.approx(log_p, rel=1e-12)
    assert np.isnan(invert(reported, a, -1.0)).all()  # a flat curve cannot be inverted


# Closed form: every respondent reports m_k contacts in known group k of size N * 1e-4 * m_k^2, i.e. the reported
# count is proportional to the square root of the size (recall slope b = -1/2). A hidden group with 3 reports then
# has size N * 1e-4 * 9 = 900. The uncorrected MLE is N * 3 / d with d = N * 20 / (N * 1e-4 * 110): 1,650.
MULTIPLES = {"k1": 1, "k2": 2, "k4": 4, "k5": 5, "k8": 8}


def _power_curve_survey(respondents: int = 40) -> ARD:
    frame = pd.DataFrame({**{k: [m] * respondents for k, m in MULTIPLES.items()}, "h": [3] * respondents})
    known = {k: POPULATION * 1e-4 * m * m for k, m in MULTIPLES.items()}
    return ARD.from_frame(frame, known=known, population=POPULATION, hidden=["h"])


@pytest.mark.parametrize("method", ["mle", "pimle", "mos"])
def test_reports_on_an_exact_power_curve_give_back_the_true_size(method):
    ard = _power_curve_survey()
    result = estimate(ard, method, recall="loglinear", bootstrap=100, seed=1)
    row = result.get("h", method)
    assert row["estimate"] == pytest.approx(900.0, rel=1e-10)
    # identical respondents: every replicate refits the same curve, so the interval is the point
    assert row["lower"] == pytest.approx(900.0, rel=1e-10) and row["upper"] == pytest.approx(900.0, rel=1e-10)
    (fit,) = result.diagnostics["recall"][method].values()
    assert fit["slope"] == pytest.approx(-0.5, abs=1e-12)
    assert fit["residual_sd"] == pytest.approx(0.0, abs=1e-12)
    if method == "mle":
        assert estimate(ard, "mle").get("h", "mle")["estimate"] == pytest.approx(1650.0, rel=1e-12)
    table = result.tables["recall"]
    hidden = table[table["kind"] == "hidden"].iloc[0]
    assert hidden["size"] == pytest.approx(900.0, rel=1e-10)
    assert hidden["ratio"] == pytest.approx(hidden["fitted"], rel=1e-12)  # a hidden group sits on its curve
    known = table[table["kind"] == "known"]
    assert known["ratio"].to_numpy() == pytest.approx(known["fitted"].to_numpy(), rel=1e-10)


def test_without_recall_error_the_correction_changes_little():
    """Reports proportional to size (slope 0): the curve is flat at 1 and the estimate is the uncorrected one."""
    frame = pd.DataFrame({"a": [1] * 30, "b": [2] * 30, "c": [4] * 30, "h": [3] * 30})
    ard = ARD.from_frame(frame, known={"a": 1e3, "b": 2e3, "c": 4e3}, population=POPULATION, hidden=["h"])
    corrected = estimate(ard, "mle", recall="loglinear").get("h", "mle")["estimate"]
    assert corrected == pytest.approx(3e3, rel=1e-10)
    assert estimate(ard, "mle").get("h", "mle")["estimate"] == pytest.approx(3e3, rel=1e-10)


# Simulation: log-normal degrees, Poisson reports whose share is p * (p / 0.01)^SLOPE, a hidden group inside the
# range of known sizes.
KNOWN = {f"k{i}": s for i, s in enumerate([1e3, 2e3, 4e3, 7e3, 1.2e4, 2e4, 3e4, 5e4])}
HIDDEN_SIZE = 3e3
SLOPE = -0.35


def _simulate(seed: int, respondents: int = 400) -> ARD:
    rng = np.random.default_rng(seed)
    degree = np.exp(rng.normal(np.log(300), 0.5, respondents))
    columns = {}
    for group, size in {**KNOWN, "h": HIDDEN_SIZE}.items():
        share = size / POPULATION
        columns[group] = rng.poisson(degree * share * (share / 0.01) ** SLOPE)
    return ARD.from_frame(pd.DataFrame(columns), known=KNOWN, population=POPULATION, hidden=["h"])


def test_corrected_interval_covers_a_known_recall_curve_and_the_uncorrected_one_does_not():
    datasets = 200
    covered = {"loglinear": 0, "none": 0}
    slopes = []
    for seed in range(datasets):
        ard = _simulate(10_000 + seed)
        for recall in covered:
            result = estimate(ard, "mle", recall=recall, bootstrap=200, seed=seed)
            row = result.get("h", "mle")
            covered[recall] += row["lower"] <= HIDDEN_SIZE <= row["upper"]
            if recall == "loglinear":
                slopes.append(next(iter(result.diagnostics["recall"]["mle"].values()))["slope"])
    coverage = {k: v / datasets for k, v in covered.items()}
    assert 0.88 <= coverage["loglinear"] <= 1.0, coverage
    assert coverage["none"] < 0.5, coverage
    assert np.mean(slopes) == pytest.approx(SLOPE, abs=0.03)


def test_visibility_factors_divide_the_corrected_estimate():
    ard = _simulate(1)
    result = estimate(ard, "mle", recall="loglinear", bootstrap=100, seed=2)
    halved = estimate(ard, "mle", recall="loglinear", bootstrap=100, seed=2,
                      adjustments={"transmission_rate": 0.5})
    base = result.get("h", "mle")
    assert halved.get("h", "mle")["estimate"] == pytest.approx(base["estimate"] / 0.5, rel=1e-12)
    grid = visibility_sensitivity(result, "transmission_rate", [0.5, 1.0])
    at_one = grid[grid["value"] == 1.0].iloc[0]
    assert at_one["estimate"] == pytest.approx(base["estimate"], rel=1e-12)
    assert at_one["lower"] == pytest.approx(base["lower"], rel=1e-12)


def test_a_hidden_group_beyond_the_known_sizes_is_warned_about():
    frame = pd.DataFrame({k: [m] * 30 for k, m in MULTIPLES.items()}).assign(h=[20] * 30)
    ard = ARD.from_frame(frame, known={k: POPULATION * 1e-4 * m * m for k, m in MULTIPLES.items()},
                         population=POPULATION, hidden=["h"])
    result = estimate(ard, "mle", recall="loglinear")
    assert result.get("h", "mle")["estimate"] == pytest.approx(POPULATION * 1e-4 * 400, rel=1e-10)
    assert any("extrapolated" in w and "'h'" in w for w in result.warnings)
    # without a bootstrap there is no interval, and the result says why
    assert np.isnan(result.get("h", "mle")["lower"])
    assert any("recall correction without a bootstrap" in w for w in result.warnings)
    assert "killworth_se" not in result.table.columns  # it would describe the uncorrected estimate


def test_same_seed_same_tables():
    ard = _simulate(4)
    first, second = (estimate(ard, ["mle", "pimle"], recall="loglinear", bootstrap=100, seed=9) for _ in range(2))
    pd.testing.assert_frame_equal(first.table, second.table)
    pd.testing.assert_frame_equal(first.tables["recall"], second.tables["recall"])
    assert set(first.tables["recall"]["method"]) == {"mle", "pimle"}


def test_refusals():
    ard = _power_curve_survey()
    with pytest.raises(ConfigError, match="recall must be one of"):
        estimate(ard, "mle", recall="spline")
    two = ARD.from_frame(pd.DataFrame({"a": [1, 2], "b": [2, 3], "h": [1, 1]}), known={"a": 1e3, "b": 4e3},
                         population=POPULATION, hidden=["h"])
    with pytest.raises(ConfigError, match="at least 3 known groups"):
        estimate(two, "mle", recall="loglinear")
    # a summation degree's column that nobody reports (the survey refuses such a known group, not a degree column)
    silent = ARD.from_frame(pd.DataFrame({"a": [1, 2], "b": [2, 3], "c": [0, 0], "h": [1, 1]}),
                            known={"a": 1e3}, population=POPULATION, hidden=["h"], degree_columns=["a", "b", "c"])
    with pytest.raises(ConfigError, match=r"\['b', 'c'\] have no known size"):
        estimate(silent, "mle", recall="loglinear")
    with pytest.raises(ModelError, match=r"no respondent reports anyone in known group\(s\) \['c'\]"):
        estimate(silent, "mle", recall="loglinear", recall_sizes={"b": 4e3, "c": 9e3})
    # reports that fall as groups grow: slope -2, the curve cannot be inverted
    falling = ARD.from_frame(pd.DataFrame({"a": [8] * 5, "b": [2] * 5, "c": [1] * 5, "h": [3] * 5}),
                             known={"a": 1e3, "b": 2e3, "c": 2.83e3}, population=POPULATION, hidden=["h"])
    with pytest.raises(ModelError, match="cannot be inverted"):
        estimate(falling, "mle", recall="loglinear")


def test_recall_option_reaches_the_command_line(capsys, tmp_path):
    from hiddenpop.cli import main

    ard_frame = pd.DataFrame({k: [m] * 40 for k, m in MULTIPLES.items()}).assign(h=[3] * 40)
    survey = tmp_path / "survey.csv"
    ard_frame.to_csv(survey, index=False)
    known = tmp_path / "known.csv"
    pd.DataFrame({"group": list(MULTIPLES), "size": [POPULATION * 1e-4 * m * m for m in MULTIPLES.values()]}).to_csv(
        known, index=False)
    args = ["nsum", "estimate", survey, "--known", known, "--population", "1000000", "--hidden", "h",
            "--bootstrap", "100", "--seed", "3", "--recall", "loglinear", "--format", "json"]
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    assert info.value.code in (0, None)
    payload = json.loads(capsys.readouterr().out)
    (row,) = [r for r in payload["estimates"] if r["quantity"] == "h"]
    assert row["estimate"] == pytest.approx(900.0, rel=1e-10)
    assert "recall" in payload["tables"]
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in [*args[:-4], "--recall", "cubic"]])
    assert info.value.code == 2
