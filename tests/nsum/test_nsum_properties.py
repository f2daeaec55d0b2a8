"""Closed-form cases and invariances of the NSUM estimators and the rescaled bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiddenpop import nsum
from hiddenpop.data import ARD
from hiddenpop.design.replicate import (
    exact_bootstrap_variance_total,
    rescaled_bootstrap,
    rescaled_bootstrap_weights,
)
from hiddenpop.errors import ConfigError
from hiddenpop.simulate.ard import CHILD_BAND_SIZES, OCCUPATION_SIZES, simulate_ard, simulate_national_ard


@pytest.fixture(scope="module")
def study2():
    return simulate_national_ard(seed=5)


def test_summation_equals_known_population_when_groups_make_up_the_base(study2):
    ard = study2.ard
    children = sum(CHILD_BAND_SIZES.values())
    summation = nsum.degree(ard, "summation", columns=list(CHILD_BAND_SIZES), population=children)
    known_pop = nsum.degree(ard, "known_population", columns=list(CHILD_BAND_SIZES), population=children)
    np.testing.assert_allclose(summation.values, known_pop.values, rtol=1e-12)
    np.testing.assert_array_equal(summation.values, ard.counts[list(CHILD_BAND_SIZES)].sum(axis=1))


def test_per_group_degrees_and_derived_quantities(study2):
    ard = study2.ard
    children = sum(CHILD_BAND_SIZES.values())
    child = nsum.degree(ard, "summation", columns=list(CHILD_BAND_SIZES), population=children)
    adult = nsum.degree(ard, columns=list(OCCUPATION_SIZES))
    degrees = {"child_nonlive": child, "child_livestream": child, "adult_nonlive": adult, "adult_livestream": adult}
    result = nsum.estimate(
        ard,
        degree=degrees,
        sums={"victims": ["child_nonlive", "child_livestream"], "traffickers": ["adult_nonlive", "adult_livestream"]},
        ratios={"victims_per_trafficker": ("victims", "traffickers")},
        prevalence={"victims_per_100_children": nsum.Prevalence("victims", children, 100)},
        bootstrap=300,
        seed=4,
    )
    w = ard.weights
    expected = children * np.sum(w * ard.y("child_nonlive")) / np.sum(w * child.values)
    assert result.estimate("child_nonlive") == pytest.approx(expected, rel=1e-12)
    victims = result.estimate("child_nonlive") + result.estimate("child_livestream")
    traffickers = result.estimate("adult_nonlive") + result.estimate("adult_livestream")
    assert result.estimate("victims") == pytest.approx(victims, rel=1e-12)
    assert result.estimate("victims_per_trafficker") == pytest.approx(victims / traffickers, rel=1e-12)
    assert result.estimate("victims_per_100_children") == pytest.approx(victims / children * 100, rel=1e-12)
    reps = result.extras["replicates"]["mle"]
    np.testing.assert_allclose(reps["victims"], reps["child_nonlive"] + reps["child_livestream"], rtol=1e-12)
    truth = study2.truth.hidden_sizes
    row = result.get("victims_per_trafficker")
    true_ratio = (truth["child_nonlive"] + truth["child_livestream"]) / (truth["adult_nonlive"] + truth["adult_livestream"])
    assert row["lower"] < true_ratio < row["upper"]


def test_weights_scale_invariance_and_seed_reproducibility():
    sim = simulate_ard({"a": 2e4, "b": 6e4}, {"h": 8e3}, 1e6, n_respondents=400, n_strata=4, n_psu=40, seed=3)
    ard = sim.ard
    scaled = ARD.from_frame(sim.frame.assign(weight=sim.frame["weight"] * 1000.0), known={"a": 2e4, "b": 6e4},
                            population=1e6, hidden=["h"], weights="weight", strata="stratum", psu="psu")
    first = nsum.estimate(ard, method=["mle", "pimle", "mos"], bootstrap=200, seed=9)
    second = nsum.estimate(scaled, method=["mle", "pimle", "mos"], bootstrap=200, seed=9)
    cols = ["estimate", "se", "lower", "upper", "killworth_se"]
    pd.testing.assert_frame_equal(first.table[cols], second.table[cols], rtol=1e-10)
    again = nsum.estimate(ard, method=["mle", "pimle", "mos"], bootstrap=200, seed=9)
    pd.testing.assert_frame_equal(first.table, again.table)
    other = nsum.estimate(ard, bootstrap=200, seed=10)
    assert other.get("h", "mle")["lower"] != first.get("h", "mle")["lower"]
    # constant weights = unweighted
    ones = nsum.estimate(ard, weighted=False, method=["mle", "pimle"])
    flat = ARD.from_frame(sim.frame.assign(weight=2.5), known={"a": 2e4, "b": 6e4}, population=1e6, hidden=["h"],
                          weights="weight")
    pd.testing.assert_frame_equal(ones.table[["estimate", "killworth_se"]],
                                  nsum.estimate(flat, method=["mle", "pimle"]).table[["estimate", "killworth_se"]])


def test_pimle_equals_mle_with_equal_degrees_and_mos_equals_kp_with_one_group():
    frame = pd.DataFrame({"k": [4, 4, 4, 4], "j": [1, 2, 3, 2], "h": [1, 0, 2, 1]})
    ard = ARD.from_frame(frame, known={"k": 400, "j": 200}, population=1e4, hidden=["h"])
    equal = nsum.degree(ard, columns=["k"])
    result = nsum.estimate(ard, method=["mle", "pimle"], degree=equal)
    assert result.estimate("h", "pimle") == pytest.approx(result.estimate("h", "mle"), rel=1e-12)
    mos = nsum.degree(ard, "mean_of_sums", columns=["k"])
    np.testing.assert_allclose(mos.values, equal.values)
    # mean of sums weights groups by 1/N_k: d_i = N/L * sum y_ik/N_k
    both = nsum.degree(ard, "mean_of_sums")
    np.testing.assert_allclose(both.values, 1e4 / 2 * (frame["k"] / 400 + frame["j"] / 200))
    with pytest.raises(ConfigError, match="mos"):
        sm = ARD.from_frame(frame, known={"k": 400}, population=1e4, hidden=["h"], degree_columns=["j"])
        nsum.estimate(sm, method="mos")


def test_rescaled_factors_structure_and_lonely_stratum():
    strata = np.repeat(["a", "b", "c"], [6, 9, 2])
    psu = np.array([1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9])
    factors = rescaled_bootstrap(len(psu), strata=strata, psu=psu, replicates=500, seed=1)
    assert factors.n_psu == 9
    for h in range(3):
        members = factors.stratum_of_psu == h
        n_h = members.sum()
        # each replicate draws m_h = n_h - 1 PSUs and rescales by n_h/m_h: factors sum to n_h
        np.testing.assert_allclose(factors.psu_factors[members].sum(axis=0), n_h)
    # stratum 'c' has one PSU: factor 1, and a warning
    lonely = factors.psu_factors[factors.stratum_of_psu == 2]
    np.testing.assert_array_equal(lonely, 1.0)
    assert factors.warnings and "fewer than 2 PSUs" in factors.warnings[0] and "c" in factors.warnings[0]
    matrix = rescaled_bootstrap_weights(np.arange(1, 18, dtype=float), strata=strata, psu=psu, replicates=500, seed=1)
    assert matrix.shape == (17, 500)
    np.testing.assert_allclose(matrix, np.arange(1, 18)[:, None] * factors.psu_factors[factors.psu_index])


def test_lonely_stratum_warning_reaches_estimates():
    frame = pd.DataFrame({"k": [3, 1, 2, 5, 4], "h": [1, 0, 0, 1, 2], "s": ["x", "x", "x", "y", "y"],
                          "c": [1, 2, 3, 4, 4]})
    ard = ARD.from_frame(frame, known={"k": 300}, population=1e4, hidden=["h"], strata="s", psu="c")
    result = nsum.estimate(ard, bootstrap=100, seed=1)
    assert any("fewer than 2 PSUs" in w for w in result.warnings)


def test_bootstrap_sd_of_ratio_matches_linearised_closed_form():
    """For large R the bootstrap variance of the MLE matches the with-replacement variance of its linearisation."""
    sim = simulate_ard({"a": 2e4, "b": 6e4}, {"h": 8e3}, 1e6, n_respondents=1500, n_strata=5, n_psu=100,
                       psu_sd=0.3, seed=8)
    ard = sim.ard
    d = nsum.degree(ard).values
    y = ard.y("h")
    w = ard.weights
    ratio = np.sum(w * y) / np.sum(w * d)
    linearised = 1e6 * (y - ratio * d) / np.sum(w * d)
    closed = np.sqrt(exact_bootstrap_variance_total(linearised, w, strata=ard.strata, psu=ard.psu))
    boot = nsum.estimate(ard, bootstrap=4000, seed=2).get("h", "mle")["se"]
    assert boot == pytest.approx(closed, rel=0.05)


def test_degree_must_come_from_the_same_survey_and_subset_keeps_design():
    sim = simulate_ard({"a": 2e4, "b": 6e4}, {"h": 8e3}, 1e6, n_respondents=200, n_strata=2, n_psu=20, seed=1)
    ard = sim.ard
    part = ard.subset(ard.strata == "S01", note="stratum S01 only")
    assert part.n == 100 and set(part.strata) == {"S01"} and len(part.psu) == 100
    assert "stratum S01 only" in part.notes
    with pytest.raises(ConfigError, match="Degree computed from this survey"):
        nsum.estimate(part, degree=nsum.degree(ard))
    direct = nsum.estimate(part, bootstrap=100, seed=1)
    assert direct.get("h", "mle")["lower"] < direct.estimate("h") < direct.get("h", "mle")["upper"]
