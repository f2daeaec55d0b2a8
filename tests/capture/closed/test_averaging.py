"""Model averaging over closed models (Buckland, Burnham & Augustin 1997): closed-form cases and the hare data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hiddenpop.capture.closed.averaging import akaike_weights, model_average
from hiddenpop.capture.core.intervals import log_transformed_ci
from hiddenpop.errors import ConfigError


def _models(estimates, ses, aics, warnings=None):
    return pd.DataFrame({"method": [f"m{i}" for i in range(len(estimates))], "estimate": estimates, "se": ses,
                         "aic": aics, "bic": aics, "warnings": warnings or [""] * len(estimates)})


def test_weights_closed_form():
    weights = akaike_weights(np.array([100.0, 102.0, np.nan]))
    assert weights[2] == 0.0
    assert weights[0] == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert weights.sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        akaike_weights(np.array([np.nan]))


def test_equal_criteria_give_the_mean_and_the_unconditional_se():
    row = model_average(_models([100.0, 120.0], [5.0, 8.0], [50.0, 50.0]), observed=60)
    assert row["estimate"] == pytest.approx(110.0)
    expected_se = 0.5 * math.sqrt(25 + 100) + 0.5 * math.sqrt(64 + 100)
    assert row["se"] == pytest.approx(expected_se)
    assert (row["lower"], row["upper"]) == pytest.approx(log_transformed_ci(60, 110.0, expected_se, 0.95))
    assert row["weights"] == {"m0": 0.5, "m1": 0.5}


def test_one_dominant_model_returns_that_model():
    row = model_average(_models([100.0, 500.0], [5.0, 50.0], [10.0, 110.0]), observed=60)
    assert row["estimate"] == pytest.approx(100.0, rel=1e-9) and row["se"] == pytest.approx(5.0, rel=1e-6)


def test_weight_on_a_flagged_model_is_said():
    row = model_average(_models([100.0, 120.0], [5.0, 8.0], [50.0, 50.0], ["", "boundary fit"]), observed=60)
    assert "50% of the AIC weight is on models with warnings (m1)" in row["warnings"]


def test_hare_average_lies_among_the_models_and_weights_sum_to_one():
    from hiddenpop import datasets
    from hiddenpop.capture.analyses import closed_analysis, read_histories
    from hiddenpop.capture.specs import ClosedSpec

    histories = read_histories(datasets.path("rcapture_hare"), ClosedSpec())
    result = closed_analysis(histories, ClosedSpec())
    averages = result.tables["model_average"].set_index("method")
    for criterion in ("aic", "bic"):
        assert result.table[f"{criterion}_weight"].sum() == pytest.approx(1.0)
        assert result.tables["models"][f"{criterion}_weight"].sum() == pytest.approx(1.0)
        row = averages.loc[f"model average ({criterion.upper()})"]
        assert result.table["estimate"].min() <= row["estimate"] <= result.table["estimate"].max()
        # the unconditional se is never below the weighted model se
        weighted = float((result.table[f"{criterion}_weight"] * result.table["se"]).sum())
        assert row["se"] >= weighted
    # the best AIC model carries the largest AIC weight
    best = result.table.loc[result.table["aic"].idxmin(), "method"]
    assert result.table.set_index("method")["aic_weight"].idxmax() == best


@pytest.mark.parametrize("heterogeneity", [0.0, 1.0])
def test_average_covers_the_truth_by_simulation(heterogeneity):
    """Closed populations of known size (M0, and Mh with logit-normal sd 1): the AIC-averaged interval covers N
    in at least 90% of 100 replicates and the average is within 5% of N on average."""
    from hiddenpop.capture.analyses import closed_analysis
    from hiddenpop.capture.core.histories import Histories
    from hiddenpop.capture.specs import ClosedSpec
    from hiddenpop.simulate.grid import simulate_closed_population

    population, hits, estimates = 300, [], []
    for seed in range(100):
        caught = simulate_closed_population(population, 6, 0.25, heterogeneity=heterogeneity, seed=seed)
        histories = Histories.from_frame(pd.DataFrame(caught, columns=[f"c{j}" for j in range(6)]))
        row = closed_analysis(histories, ClosedSpec()).tables["model_average"].iloc[0]
        hits.append(row["lower"] <= population <= row["upper"])
        estimates.append(row["estimate"])
    assert np.mean(hits) >= 0.90
    assert abs(np.mean(estimates) / population - 1) < 0.05
