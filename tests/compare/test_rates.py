"""Exact Poisson and rate-ratio intervals against scipy's closed forms, their coverage by simulation with known
means, and the ranking simulation against closed forms and exchangeability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hiddenpop.compare.rates import garwood_interval, rank_simulation, rate_ratio_interval, rate_ratio_p_value


@pytest.mark.parametrize("count", [0, 1, 2, 7, 30, 378, 5000])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_garwood_is_the_chi_square_form_and_inverts_the_poisson_tests(count, level):
    alpha = 1 - level
    lower, upper = garwood_interval(count, level)
    assert upper == pytest.approx(stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2, rel=1e-12)
    # the upper bound is the mean at which seeing `count` or fewer has probability alpha/2
    assert stats.poisson.cdf(count, upper) == pytest.approx(alpha / 2, rel=1e-9)
    if count == 0:
        assert lower == 0 and upper == pytest.approx(-math.log(alpha / 2))
    else:
        assert lower == pytest.approx(stats.chi2.ppf(alpha / 2, 2 * count) / 2, rel=1e-12)
        # the lower bound is the mean at which seeing `count` or more has probability alpha/2
        assert stats.poisson.sf(count - 1, lower) == pytest.approx(alpha / 2, rel=1e-9)


def test_garwood_hand_values():
    # chi2 quantiles of 2 and 4 degrees of freedom have closed forms: -2 ln(q) and the Poisson(2) identity
    lower, upper = garwood_interval(0, 0.95)
    assert upper == pytest.approx(-math.log(0.025))  # 3.689
    lower, upper = garwood_interval(1, 0.95)
    assert lower == pytest.approx(-math.log(1 - 0.025))  # chi2_{0.025}(2)/2
    with pytest.raises(ValueError):
        garwood_interval(-1)


@pytest.mark.parametrize(("x1", "b1", "x2", "b2"), [(378, 40e6, 26, 14e6), (12, 6e6, 26, 14e6), (5, 1.0, 9, 1.0),
                                                   (0, 2e6, 4, 3e6), (7, 1e5, 0, 5e5), (1, 1.0, 1, 1.0)])
def test_rate_ratio_is_clopper_pearson_transformed(x1, b1, x2, b2):
    estimate, lower, upper = rate_ratio_interval(x1, b1, x2, b2, 0.95)
    n = x1 + x2
    ci = stats.binomtest(x1, n).proportion_ci(confidence_level=0.95, method="exact")
    def odds(p):
        return math.inf if p >= 1 else p / (1 - p)

    assert lower == pytest.approx(odds(ci.low) * b2 / b1, rel=1e-9)
    if x2 == 0:
        assert math.isinf(upper) and ci.high == 1
    else:
        assert upper == pytest.approx(odds(ci.high) * b2 / b1, rel=1e-9)
    assert estimate == (math.inf if x2 == 0 else pytest.approx((x1 / b1) / (x2 / b2)))
    p_value = stats.binomtest(x1, n, b1 / (b1 + b2)).pvalue
    assert rate_ratio_p_value(x1, b1, x2, b2) == pytest.approx(p_value)


def test_rate_ratio_without_any_count_says_nothing():
    estimate, lower, upper = rate_ratio_interval(0, 1.0, 0, 2.0)
    assert math.isnan(estimate) and lower == 0 and math.isinf(upper)
    assert rate_ratio_p_value(0, 1.0, 0, 2.0) == 1.0


def test_garwood_coverage_with_known_means():
    """Counts drawn from known means: the exact interval covers each mean in at least 95% of 4,000 draws (the
    tolerance is three Monte Carlo standard errors below 95%)."""
    rng = np.random.default_rng(20240601)
    replicates = 4000
    tolerance = 3 * math.sqrt(0.95 * 0.05 / replicates)
    for mean in (0.3, 2.0, 9.5, 41.0, 380.0):
        counts = rng.poisson(mean, replicates)
        bounds = {c: garwood_interval(int(c), 0.95) for c in np.unique(counts)}
        covered = np.mean([bounds[c][0] <= mean <= bounds[c][1] for c in counts])
        assert covered >= 0.95 - tolerance, (mean, covered)


def test_rate_ratio_coverage_with_known_rates():
    rng = np.random.default_rng(20240602)
    replicates = 3000
    tolerance = 3 * math.sqrt(0.95 * 0.05 / replicates)
    for (rate1, rate2), (base1, base2) in [((1.0, 0.2), (40.0, 6.0)), ((0.5, 0.5), (10.0, 20.0)),
                                           ((3.0, 0.05), (5.0, 100.0))]:
        truth = rate1 / rate2
        x1 = rng.poisson(rate1 * base1, replicates)
        x2 = rng.poisson(rate2 * base2, replicates)
        covered = np.mean([lo <= truth <= hi for lo, hi in
                           (rate_ratio_interval(int(a), base1, int(b), base2)[1:] for a, b in zip(x1, x2, strict=True))])
        assert covered >= 0.95 - tolerance, (truth, covered)


def test_two_country_ranking_matches_the_beta_closed_form():
    """lambda_1 > lambda_2 for independent Gamma(a_i, rate b_i) draws exactly when G_1 / (G_1 + G_2), a
    Beta(a_1, a_2) variable, exceeds b_1 / (b_1 + b_2); the ratio lambda_1 / lambda_2 is an F(2 a_1, 2 a_2)
    variable times (a_1 / a_2) (b_2 / b_1)."""
    counts, bases, prior = np.array([12, 26]), np.array([6.0, 14.0]), 0.5
    draws = 200_000
    result = rank_simulation(counts, bases, draws=draws, prior_shape=prior, rng=np.random.default_rng(5), focus=0)
    a1, a2 = counts + prior
    exact = stats.beta.sf(bases[0] / bases.sum(), a1, a2)
    assert result.p_first()[0] == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / draws))
    assert result.histogram.sum(axis=0).tolist() == [draws, draws] == result.histogram.sum(axis=1).tolist()
    for q in (0.025, 0.5, 0.975):
        exact_q = stats.f.ppf(q, 2 * a1, 2 * a2) * (a1 / a2) * (bases[1] / bases[0])
        assert np.quantile(result.focus_ratio, q) == pytest.approx(exact_q, rel=0.02)


def test_ranking_probability_with_known_rates():
    """50 replicates of counts drawn from known rates (fixed seed). Three countries with equal rates and bases are
    exchangeable, so each one's probability of ranking first averages 1/3 over replicates; a country whose rate is
    ten times the others' ranks first with probability near 1 in every replicate."""
    rng = np.random.default_rng(2017)
    bases = np.array([4.0, 4.0, 4.0])
    equal, leader = [], []
    for replicate in range(50):
        counts = rng.poisson([5.0, 5.0, 5.0] * bases / 4)
        equal.append(rank_simulation(counts, bases, draws=2000, prior_shape=0.5,
                                     rng=np.random.default_rng([1, replicate])).p_first())
        counts = rng.poisson(np.array([10.0, 1.0, 1.0]) * bases)
        leader.append(rank_simulation(counts, bases, draws=2000, prior_shape=0.5,
                                      rng=np.random.default_rng([2, replicate]), focus=0).p_first()[0])
    equal = np.array(equal)
    assert np.allclose(equal.sum(axis=1), 1.0)
    assert np.abs(equal.mean(axis=0) - 1 / 3).max() < 0.1  # the sd of one replicate's probability is about 0.3
    assert min(leader) > 0.99


def test_the_same_seed_gives_the_same_draws():
    kwargs = {"draws": 25_000, "prior_shape": 0.5, "focus": 1}
    first = rank_simulation(np.array([3, 9, 4]), np.ones(3), rng=np.random.default_rng([9, 0]), **kwargs)
    second = rank_simulation(np.array([3, 9, 4]), np.ones(3), rng=np.random.default_rng([9, 0]), **kwargs)
    assert (first.histogram == second.histogram).all() and first.focus_ratio.tobytes() == second.focus_ratio.tobytes()
    other = rank_simulation(np.array([3, 9, 4]), np.ones(3), rng=np.random.default_rng([10, 0]), **kwargs)
    assert not (first.histogram == other.histogram).all()
