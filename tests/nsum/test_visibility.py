"""The visibility model: factors as constants or distributions, propagated through the bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from hiddenpop import nsum
from hiddenpop.errors import ConfigError
from hiddenpop.nsum.adjust import Adjustments, Beta, Declared, Fixed, LogNormal, parse_distribution
from hiddenpop.nsum.estimators import break_even, visibility_sensitivity
from hiddenpop.simulate.ard import simulate_ard

KNOWN = {f"k{i}": size for i, size in enumerate([20_000, 50_000, 90_000, 150_000, 300_000, 600_000])}
HIDDEN = {"h1": 40_000, "h2": 25_000}
POPULATION = 10_000_000


def _survey(seed: int, transmission: float | None = None, n: int = 1_200):
    return simulate_ard(KNOWN, HIDDEN, POPULATION, n_respondents=n, n_strata=4, n_psu=80, psu_sd=0.2,
                        transmission=transmission, seed=seed)


@pytest.fixture(scope="module")
def survey():
    return _survey(11).ard


def test_distribution_grammar():
    assert parse_distribution("0.85") == Fixed(0.85)
    assert parse_distribution(2) == Fixed(2.0)
    assert parse_distribution(" Beta( 17 , 3 ) ") == Beta(17.0, 3.0)
    assert parse_distribution("lognormal(0.8, 0.2)") == LogNormal(0.8, 0.2)
    for bad in ("beta(17)", "beta(-1, 3)", "gamma(2, 3)", "0", "nan", "secret-value-123", True):
        with pytest.raises(ConfigError) as error:
            parse_distribution(bad)
        assert "secret" not in str(error.value)


def test_transmission_rate_lies_in_unit_interval():
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        Adjustments(transmission_rate="lognormal(0.8, 0.1)")
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        Adjustments(transmission_rate=1.2)
    with pytest.raises(ConfigError, match="declared twice"):
        Adjustments(declared=[Declared("transmission_rate", Beta(2, 2), ("h1",)),
                              Declared("transmission_rate", Fixed(0.5), ("h1", "h2"))])


def test_declared_moments_and_quantiles():
    beta = Beta(17, 3)
    assert beta.mean == pytest.approx(0.85)
    assert beta.sd == pytest.approx(np.sqrt(17 * 3 / (20**2 * 21)))
    draws = beta.draw(np.random.default_rng(1), 200_000)
    assert draws.mean() == pytest.approx(beta.mean, abs=4 * beta.sd / np.sqrt(draws.size))
    low, high = LogNormal(0.8, 0.2).quantiles([0.025, 0.975])
    assert low == pytest.approx(0.8 * np.exp(-1.959964 * 0.2), rel=1e-6)
    assert high == pytest.approx(0.8 * np.exp(1.959964 * 0.2), rel=1e-6)
    assert LogNormal(0.8, 0.2).probability_above(0.8) == pytest.approx(0.5)


def test_constant_factors_divide_the_basic_estimate(survey):
    basic = nsum.estimate(survey, bootstrap=200, seed=3)
    adjusted = nsum.estimate(survey, bootstrap=200, seed=3,
                             adjustments=Adjustments(transmission_rate=0.8, degree_ratio=0.5, frame_ratio=1.25))
    for group in HIDDEN:
        for column in ("estimate", "lower", "upper", "se"):
            assert adjusted.get(group)[column] == pytest.approx(basic.get(group)[column] / 0.5, rel=1e-12)


def test_beta_point_uses_the_mean_and_interval_widens_as_the_delta_method_says(survey):
    """Independent X (basic replicate) and Y = 1/tau: Var(XY) = Var X (E Y^2) + (E X)^2 Var Y."""
    replicates = 4_000
    a, b = 17.0, 3.0
    fixed = nsum.estimate(survey, bootstrap=replicates, seed=5, adjustments={"transmission_rate": a / (a + b)})
    drawn = nsum.estimate(survey, bootstrap=replicates, seed=5, adjustments={"transmission_rate": Beta(a, b)})
    unadjusted = nsum.estimate(survey, bootstrap=replicates, seed=5)
    x = unadjusted.extras["replicates"]["mle"]["h1"].to_numpy()
    mean_y = (a + b - 1) / (a - 1)  # E[1/tau] for tau ~ Beta(a, b)
    mean_y2 = (a + b - 1) * (a + b - 2) / ((a - 1) * (a - 2))
    expected_sd = np.sqrt(x.var(ddof=1) * mean_y2 + x.mean() ** 2 * (mean_y2 - mean_y**2))
    assert drawn.estimate("h1") == pytest.approx(fixed.estimate("h1"), rel=1e-12)
    assert drawn.get("h1")["se"] > 1.5 * fixed.get("h1")["se"]
    assert drawn.get("h1")["upper"] - drawn.get("h1")["lower"] > fixed.get("h1")["upper"] - fixed.get("h1")["lower"]
    # the sd of 4,000 draws has a Monte Carlo relative error near 1/sqrt(2 * 4000) = 1.1% (more with a skewed 1/tau)
    assert drawn.get("h1")["se"] == pytest.approx(expected_sd, rel=0.05)


def test_a_shared_factor_cancels_in_a_ratio_draw_by_draw(survey):
    kwargs = {"bootstrap": 300, "seed": 9, "sums": {"both": ["h1", "h2"]}, "ratios": {"r": ("h1", "h2")}}
    plain = nsum.estimate(survey, **kwargs)
    shared = nsum.estimate(survey, adjustments={"transmission_rate": Beta(5, 2)}, **kwargs)
    separate = nsum.estimate(survey, adjustments={"transmission_rate": {"h1": Beta(5, 2), "h2": Beta(5, 2)}},
                             **kwargs)
    np.testing.assert_allclose(shared.extras["replicates"]["mle"]["r"], plain.extras["replicates"]["mle"]["r"],
                               rtol=1e-12)
    # independent draws per group do not cancel: the ratio's interval widens
    assert separate.get("r")["upper"] - separate.get("r")["lower"] > 1.5 * (plain.get("r")["upper"]
                                                                          - plain.get("r")["lower"])
    reps = shared.extras["replicates"]["mle"]
    np.testing.assert_allclose(reps["both"], reps["h1"] + reps["h2"], rtol=1e-12)


def test_coverage_when_the_declared_distribution_is_how_tau_varies():
    """Each simulated country draws its true tau from Beta(17, 3); declaring that Beta gives ~95% coverage."""
    rng = np.random.default_rng(2024)
    hits, countries = 0, 60
    for index in range(countries):
        tau = float(rng.beta(17, 3))
        ard = _survey(1_000 + index, transmission=tau, n=960).ard
        row = nsum.estimate(ard, bootstrap=300, seed=index, hidden=["h1"],
                            adjustments={"transmission_rate": "beta(17, 3)"}).get("h1")
        hits += row["lower"] <= HIDDEN["h1"] <= row["upper"]
    # 60 countries: coverage 0.95 gives >= 52 hits with probability 0.99; below 0.85 it rarely reaches 52
    assert 52 <= hits <= countries


def test_sensitivity_rows_equal_refits_with_the_factor_fixed(survey):
    declared = Adjustments(transmission_rate="beta(17, 3)", degree_ratio=0.9)
    result = nsum.estimate(survey, bootstrap=200, seed=4, adjustments=declared, sums={"both": ["h1", "h2"]})
    table = visibility_sensitivity(result, "transmission_rate", [0.5, 1.0])
    for value in (0.5, 1.0):
        refit = nsum.estimate(survey, bootstrap=200, seed=4, sums={"both": ["h1", "h2"]},
                              adjustments=Adjustments(transmission_rate=value, degree_ratio=0.9))
        for quantity in ("h1", "both"):
            row = table[(table["value"] == value) & (table["quantity"] == quantity)].iloc[0]
            for column in ("estimate", "lower", "upper"):
                assert row[column] == pytest.approx(refit.get(quantity)[column], rel=1e-10)


def test_break_even_value_reproduces_the_threshold(survey):
    result = nsum.estimate(survey, bootstrap=200, seed=4, sums={"both": ["h1", "h2"]},
                           adjustments=Adjustments(transmission_rate="beta(17, 3)"))
    threshold = 0.9 * result.estimate("both")
    found = break_even(result, "both", "transmission_rate", threshold)
    at_value = nsum.estimate(survey, sums={"both": ["h1", "h2"]},
                             adjustments={"transmission_rate": found["value"]}).estimate("both")
    assert at_value == pytest.approx(threshold, rel=1e-10)
    assert found["probability_beyond"] == pytest.approx(Beta(17, 3).probability_above(found["value"]))
    # half the estimate needs tau = 2 x its mean, beyond a rate's range: the declaration gives it no probability
    half = break_even(result, "both", "transmission_rate", 0.5 * result.estimate("both"))
    assert half["value"] == pytest.approx(2 * 0.85, rel=1e-12)
    assert half["probability_beyond"] == 0.0
    # an undeclared degree ratio is 1: the estimate falls to 90% when it is 1 / 0.9, and nothing states its odds
    delta = break_even(result, "both", "degree_ratio", threshold)
    assert delta["value"] == pytest.approx(1 / 0.9, rel=1e-12)
    assert delta["probability_beyond"] is None
    assert break_even(result, "both", "transmission_rate", -1.0) is None  # no rate makes an estimate negative
