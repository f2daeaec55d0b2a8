"""Cormack (1989) open-population model: Rcapture openp reference, closed-form checks and simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiddenpop.capture.events.open import history_matrix, open_population
from hiddenpop.errors import ConfigError, DataError
from refdata import CAPTURE_DATA, load_fixture


@pytest.fixture(scope="module")
def duck():
    return pd.read_csv(CAPTURE_DATA / "rcapture_duck.csv")


def test_reproduces_rcapture_openp_duck(duck):
    fixture = load_fixture("capture_duck_open.json")
    expected = fixture["expected"]
    rel = fixture["tolerance_relative"]
    result = open_population(duck)
    diag = result.diagnostics
    assert diag["deviance"] == pytest.approx(expected["deviance"], rel=rel)
    assert diag["df"] == expected["df"]
    assert diag["aic"] == pytest.approx(expected["aic"], rel=rel)
    table = result.table

    def values(quantity, column="estimate"):
        return table.loc[table["quantity"] == quantity, column].to_numpy()

    assert values("capture_probability")[1:5] == pytest.approx(expected["capture_probability_p2_to_p5"], rel=rel)
    assert values("survival")[0:4] == pytest.approx(expected["survival_phi1_to_phi4"], rel=rel)
    assert values("abundance")[1:5] == pytest.approx(expected["abundance_N2_to_N5"], rel=rel)
    assert values("abundance", "se")[1:5] == pytest.approx(expected["abundance_se_N2_to_N5"], rel=rel)
    assert values("arrivals")[1:4] == pytest.approx(expected["births_B2_to_B4"], rel=rel)
    assert values("arrivals", "se")[1:4] == pytest.approx(expected["births_se_B2_to_B4"], rel=rel)
    total = result.get("total_ever_present")
    assert total["estimate"] == pytest.approx(expected["total_ever_present"], rel=rel)
    assert total["se"] == pytest.approx(expected["total_ever_present_se"], rel=rel)
    # phi4 is on the boundary: reported as such and warned about
    assert diag["boundary_parameters"] == ["gamma7"]
    assert bool(table.loc[(table["quantity"] == "survival") & (table["period"] == "4->5"), "at_boundary"].iloc[0])
    assert any("boundary" in w for w in result.warnings)
    # non-identifiable quantities under unconstrained capture probabilities are missing, not invented
    assert np.isnan(values("capture_probability")[[0, 5]]).all()
    assert np.isnan(values("abundance")[[0, 5]]).all()


def test_row_order_and_vector_input_agree(duck):
    shuffled = duck.sample(frac=1.0, random_state=3)
    a = open_population(shuffled)
    # vector in histpos order
    codes = duck[[f"p{i}" for i in range(1, 7)]].to_numpy() @ (1 << np.arange(5, -1, -1))
    counts = np.zeros(64)
    counts[codes] = duck["freq"].to_numpy()
    b = open_population(counts[np.arange(63, 0, -1)], periods=6)
    assert a.diagnostics["deviance"] == pytest.approx(b.diagnostics["deviance"], rel=1e-12)
    assert a.table["estimate"].to_numpy() == pytest.approx(b.table["estimate"].to_numpy(), rel=1e-10, nan_ok=True)


def test_excluding_histories_adds_back_observed_minus_fitted(duck):
    full = open_population(duck)
    excluded = open_population(duck, exclude=["010000"])
    free = int((~excluded.tables["loglinear_parameters"]["fixed_at_boundary"]).sum())
    assert excluded.diagnostics["df"] == 62 - free
    assert full.diagnostics["df"] == 63 - int((~full.tables["loglinear_parameters"]["fixed_at_boundary"]).sum())
    assert excluded.settings["excluded_histories"] == ["010000"]
    fitted = excluded.tables["fitted"].set_index("history")
    correction = fitted.loc["010000", "observed"] - fitted.loc["010000", "fitted"]
    assert correction != 0
    assert any("excluded" in n for n in excluded.notes)
    # the excluded cell's fitted value comes from the model, observed count is unchanged
    assert fitted.loc["010000", "observed"] == duck.loc[
        (duck[[f"p{i}" for i in range(1, 7)]].to_numpy() == [0, 1, 0, 0, 0, 0]).all(axis=1), "freq"
    ].iloc[0]


def test_equal_capture_matches_closed_population_when_no_births_or_deaths():
    """Closed population, constant p: phi -> 1, births -> 0, N_i -> N (expected counts, no noise)."""
    periods, population, p = 5, 1000.0, 0.3
    histories = history_matrix(periods)
    k = histories.sum(axis=1)
    expected_counts = population * p**k * (1 - p) ** (periods - k)
    result = open_population(expected_counts, periods=periods, capture="ep")
    table = result.table
    assert table.loc[table["quantity"] == "capture_probability", "estimate"].to_numpy() == pytest.approx(p, rel=1e-6)
    assert table.loc[table["quantity"] == "survival", "estimate"].to_numpy() == pytest.approx(1.0, abs=1e-6)
    assert table.loc[table["quantity"] == "abundance", "estimate"].to_numpy() == pytest.approx(population, rel=1e-6)
    assert result.estimate("total_ever_present") == pytest.approx(population, rel=1e-6)
    assert result.diagnostics["deviance"] == pytest.approx(0.0, abs=1e-6)


def test_simulated_open_population_abundance_coverage():
    """Jolly-Seber population with known N_i; 95% intervals for identifiable N_i cover near the nominal rate."""
    rng = np.random.default_rng(20261121)
    periods, replicates = 5, 150
    p_capture = np.array([0.5, 0.45, 0.5, 0.4, 0.5])
    survival, initial, arrivals_mean = 0.8, 800, 200
    hits, total = 0, 0
    for _ in range(replicates):
        alive = np.zeros((0, periods), dtype=bool)
        present = np.ones(initial, dtype=bool)
        rows = [present]
        for _i in range(1, periods):
            survived = rows[-1] & (rng.random(rows[-1].size) < survival)
            newcomers = np.ones(rng.poisson(arrivals_mean), dtype=bool)
            rows = [np.concatenate([r, np.zeros(newcomers.size, dtype=bool)]) for r in rows]
            rows.append(np.concatenate([survived, newcomers]))
        alive = np.column_stack(rows)
        captured = alive & (rng.random(alive.shape) < p_capture)
        codes = captured.astype(int) @ (1 << np.arange(periods - 1, -1, -1))
        counts = np.bincount(codes, minlength=2**periods)[np.arange(2**periods - 1, 0, -1)]
        result = open_population(counts, periods=periods)
        rows_ = result.table[result.table["quantity"] == "abundance"].iloc[1 : periods - 1]
        truth = alive.sum(axis=0)[1 : periods - 1]
        hits += int(((rows_["lower"].to_numpy() <= truth) & (truth <= rows_["upper"].to_numpy())).sum())
        total += truth.size
    coverage = hits / total
    assert 0.90 <= coverage <= 0.985, coverage


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError):
        open_population(np.ones(7), periods=3, capture="xx")
    with pytest.raises(DataError):
        open_population(np.ones(6), periods=3)
    frame = pd.DataFrame({"a": [1, 0, 2], "b": [0, 1, 1], "c": [1, 1, 0], "freq": [3, 4, 5]})
    with pytest.raises(DataError, match="row 3, column 'a'"):
        open_population(frame)
    with pytest.raises(ConfigError):
        open_population(np.ones(7), periods=3, exclude=["999"])


def test_excluding_the_only_history_for_a_parameter_is_a_clear_error(duck):
    from hiddenpop.errors import ModelError

    with pytest.raises(ModelError, match="not of full rank"):
        open_population(duck, exclude=["100000"])
