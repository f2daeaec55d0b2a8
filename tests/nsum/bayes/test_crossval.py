"""K-fold cross-validation by PSU and randomized quantile residuals (hiddenpop.nsum.bayes.crossval).

Checked three ways: closed forms (sigma -> 0 gives the plain Poisson / negative-binomial likelihood), an
independent numerical integral (scipy ``quad`` over the log degree of scipy.stats log-pmfs, and plain Monte
Carlo over degrees), and simulation with known truth (residuals N(0, 1) under the true model, a trend where a
barrier effect depends on a covariate, K-fold preferring the model that generated the data)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from hiddenpop.errors import ConfigError
from hiddenpop.nsum.bayes import BarrierModel, BasicModel, DegreeModel, prepare_data
from hiddenpop.nsum.bayes.crossval import (
    CountModel,
    assign_folds,
    comparison_table,
    count_model,
    kfold_compare,
    log_predictive,
    pairwise_table,
    quantile_residuals,
    residual_table,
)

PROB = np.array([0.01, 0.02, 0.005, 0.03, 0.015])
GAMMA_SHAPE = np.array([0.02, 0.05, 0.01, 0.3, 0.03])  # a_k = p_k r_k
PROPORTIONAL = PROB / np.array([2.0, 3.0, 1.5, 5.0, 1.2])  # c_k = p_k / (omega_k - 1)
FAMILIES = {"poisson": None, "gamma": GAMMA_SHAPE, "proportional": PROPORTIONAL}


def _cell_logpmf(family: str, y: np.ndarray, degree: float) -> float:
    """sum_k log f(y_k | d) written with scipy.stats, independently of the module under test."""
    mean = degree * PROB
    if family == "poisson":
        return float(stats.poisson.logpmf(y, mean).sum())
    shape = GAMMA_SHAPE if family == "gamma" else degree * PROPORTIONAL
    return float(stats.nbinom.logpmf(y, shape, shape / (shape + mean)).sum())


def _model(family: str, mu: float, sigma: float) -> CountModel:
    shape = FAMILIES[family]
    return CountModel(mu=np.array([mu]), sigma=np.array([sigma]), log_prob=np.log(PROB)[None], family=family,
                      shape=None if shape is None else shape[None])


def _answers() -> np.ndarray:
    rng = np.random.default_rng(11)
    y = rng.poisson(150 * PROB * rng.gamma(2.0, 0.5, size=(5, len(PROB)))).astype(float)
    y[0] = [20, 40, 10, 60, 30]  # a talkative respondent: log degree pinned far more tightly than sigma
    y[1] = 0  # a respondent who knows nobody
    return y


@pytest.mark.parametrize("family", list(FAMILIES))
def test_vanishing_degree_spread_gives_the_plain_likelihood(family):
    # sigma -> 0: the degree is exp(mu), so the integral is the count likelihood at that degree
    y = _answers()
    result = log_predictive(_model(family, 5.0, 1e-6), y)
    expected = [_cell_logpmf(family, row, np.exp(5.0)) for row in y]
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_quadrature_matches_adaptive_numerical_integration(family):
    # reference: scipy quad of exp(log f(y | e^t) + log Normal(t; mu, sigma)) over t, scaled by its maximum
    mu, sigma = 5.0, 0.8
    y = _answers()
    result = log_predictive(_model(family, mu, sigma), y)
    for row, value in zip(y, result, strict=True):
        def log_integrand(t, row=row):
            return _cell_logpmf(family, row, np.exp(t)) + stats.norm.logpdf(t, mu, sigma)

        grid = np.linspace(mu - 8 * sigma, mu + 8 * sigma, 1601)
        logs = np.array([log_integrand(t) for t in grid])
        peak = float(logs.max())
        integral, _ = integrate.quad(lambda t, peak=peak: np.exp(log_integrand(t) - peak), mu - 12 * sigma,
                                     mu + 12 * sigma, points=[grid[np.argmax(logs)]], limit=500, epsabs=0, epsrel=1e-11)
        assert value == pytest.approx(np.log(integral) + peak, abs=1e-6)


def test_quadrature_matches_monte_carlo_over_degrees_and_averages_draws():
    # two posterior draws: log mean_s p(y | s), each p(y | s) checked against 400,000 log-normal degree draws
    mu, sigma = np.array([4.5, 5.2]), np.array([0.6, 0.9])
    cm = CountModel(mu=mu, sigma=sigma, log_prob=np.log(np.vstack([PROB, PROB * 1.3])), family="gamma",
                    shape=np.vstack([GAMMA_SHAPE, GAMMA_SHAPE * 2]))
    y = _answers()[2:4]
    by_draw = log_predictive(cm, y, pointwise_draws=True)
    rng = np.random.default_rng(5)
    for s in range(2):
        degree = np.exp(rng.normal(mu[s], sigma[s], 400_000))
        prob, shape = np.exp(cm.log_prob[s]), cm.shape[s]
        for i, row in enumerate(y):
            mean = degree[:, None] * prob
            log_f = stats.nbinom.logpmf(row, shape, shape / (shape + mean)).sum(axis=1)
            mc = np.log(np.mean(np.exp(log_f - log_f.max()))) + log_f.max()
            assert by_draw[s, i] == pytest.approx(mc, abs=0.02)  # Monte Carlo error about 0.005
    averaged = log_predictive(cm, y)
    np.testing.assert_allclose(averaged, np.log(np.exp(by_draw).mean(axis=0)), rtol=1e-12)


def test_folds_keep_psus_whole_and_depend_on_the_seed_only():
    rng = np.random.default_rng(2)
    psu = np.repeat([f"P{j:02d}" for j in range(30)], rng.integers(2, 8, 30))
    strata = np.array([f"S{int(p[1:]) // 10}" for p in psu])
    folds = assign_folds(psu, 5, seed=7, strata=strata)
    assert set(folds) == {1, 2, 3, 4, 5}
    for label in np.unique(psu):
        assert len(set(folds[psu == label])) == 1
    # stratum-balanced: each stratum's 10 PSUs are dealt two to each fold
    for stratum in np.unique(strata):
        in_stratum = strata == stratum
        per_fold = {f: len(set(psu[in_stratum & (folds == f)])) for f in range(1, 6)}
        assert set(per_fold.values()) == {2}
    np.testing.assert_array_equal(folds, assign_folds(psu, 5, seed=7, strata=strata))
    assert not np.array_equal(folds, assign_folds(psu, 5, seed=8, strata=strata))
    # the row order does not change which fold a PSU lands in
    order = rng.permutation(len(psu))
    np.testing.assert_array_equal(assign_folds(psu[order], 5, seed=7, strata=strata[order]), folds[order])
    # without a PSU column every respondent is a unit
    assert sorted(np.bincount(assign_folds(None, 4, seed=1, n=10))[1:]) == [2, 2, 3, 3]
    with pytest.raises(ConfigError, match="at least 6 PSUs"):
        assign_folds(["a", "a", "b", "c", "d", "e"], 6, seed=1)
    with pytest.raises(ConfigError, match="at least 2 folds"):
        assign_folds(psu, 1, seed=1)


def test_comparison_standard_errors_sum_within_psus():
    # two PSUs of two respondents: the unit sums are (-3, -7) and (-2, -2); se = sqrt(G var(e_g))
    pointwise = {"a": [-1.0, -2.0, -3.0, -4.0], "b": [-1.0, -1.0, -1.0, -1.0]}
    import pandas as pd

    table = comparison_table(pd.DataFrame(pointwise), ["a", "b"], np.array(["p", "p", "q", "q"]))
    assert list(table["model"]) == ["b", "a"]
    row = table.set_index("model")
    assert row.loc["a", "elpd_kfold"] == -10.0
    assert row.loc["a", "se"] == pytest.approx(np.sqrt(2 * np.var([-3.0, -7.0], ddof=1)))
    assert row.loc["b", "se"] == 0.0
    assert row.loc["a", "elpd_diff"] == -6.0
    assert row.loc["a", "se_diff"] == pytest.approx(np.sqrt(2 * np.var([-1.0, -5.0], ddof=1)))
    pairs = pairwise_table(pd.DataFrame(pointwise), ["a", "b"], np.array(["p", "p", "q", "q"]))
    assert pairs[["model", "versus"]].values.tolist() == [["a", "b"]]
    assert pairs["elpd_diff"].iloc[0] == -6.0 and pairs["se_diff"].iloc[0] == pytest.approx(row.loc["a", "se_diff"])
    assert pairs["z"].iloc[0] == pytest.approx(-6.0 / row.loc["a", "se_diff"])


def _simulate(n: int, rng: np.random.Generator, rho: float, multiplier: np.ndarray | None = None):
    degree = np.exp(rng.normal(5.0, 0.5, n))
    prob = PROB * (multiplier if multiplier is not None else np.ones((n, len(PROB))))
    if rho > 0:
        r = 1 / rho - 1
        rate = rng.gamma(prob * r, 1 / r, size=(n, len(PROB)))
    else:
        rate = prob
    return degree, rng.poisson(degree[:, None] * rate).astype(float)


@pytest.mark.parametrize("rho", [0.0, 0.3])
def test_quantile_residuals_are_standard_normal_under_the_true_model(rho):
    rng = np.random.default_rng(21 if rho else 22)
    degree, y = _simulate(800, rng, rho)
    family = "gamma" if rho else "poisson"
    cm = CountModel(mu=np.array([5.0]), sigma=np.array([0.5]), log_prob=np.log(PROB)[None], family=family,
                    shape=(PROB * (1 / rho - 1))[None] if rho else None, degree=degree[None])
    residuals = quantile_residuals(cm, y, seed=3)
    assert residuals.shape == y.shape and np.isfinite(residuals).all()
    assert stats.kstest(residuals.ravel(), "norm").pvalue > 0.01
    for k in range(len(PROB)):
        assert stats.kstest(stats.norm.cdf(residuals[:, k]), "uniform").pvalue > 0.001
    # the same data under the wrong model (Poisson when ties are overdispersed) is rejected
    if rho:
        wrong = CountModel(mu=cm.mu, sigma=cm.sigma, log_prob=cm.log_prob, degree=cm.degree)
        assert stats.kstest(quantile_residuals(wrong, y, seed=3).ravel(), "norm").pvalue < 1e-6


def test_quantile_residuals_trend_with_a_covariate_that_drives_a_barrier():
    # exposure to group 3 doubles per unit of the covariate x (a barrier effect that depends on x); the residuals
    # of a model that ignores x trend with x for that group only
    rng = np.random.default_rng(31)
    n = 1000
    x = rng.normal(0, 1, n)
    multiplier = np.ones((n, len(PROB)))
    multiplier[:, 3] = np.exp(np.log(2.0) * x - np.log(2.0) ** 2 / 2)
    degree, y = _simulate(n, rng, 0.0, multiplier)
    cm = CountModel(mu=np.array([5.0]), sigma=np.array([0.5]), log_prob=np.log(PROB)[None], degree=degree[None])
    residuals = quantile_residuals(cm, y, seed=4)
    table = residual_table(residuals, ["a", "b", "c", "d", "e"], x, "x")
    trend = table.groupby("group")["correlation"].first()
    assert trend["d"] > 0.4
    assert trend.drop("d").abs().max() < 0.1
    quintiles = table[table["group"] == "d"]
    assert len(quintiles) == 5 and quintiles["mean_residual"].is_monotonic_increasing
    assert quintiles["respondents"].sum() == n
    # a categorical covariate with missing values keeps every respondent, missing ones as their own level
    region = np.where(x > 0, "north", "south").astype(object)
    region[:7] = None
    by_region = residual_table(residuals, ["a", "b", "c", "d", "e"], region, "region")
    d_rows = by_region[by_region["group"] == "d"].set_index("level")
    assert list(d_rows.index) == ["north", "south", "(missing)"]
    assert d_rows.loc["north", "mean_residual"] > 0.3 > -0.3 > d_rows.loc["south", "mean_residual"]
    assert d_rows["respondents"].sum() == n
    # a text column with a value per respondent (an identifier) is refused, without echoing its values
    ids = np.array([f"R{i:05d}" for i in range(n)], dtype=object)
    with pytest.raises(ConfigError, match="'respondent_id' has 1000 distinct text values") as info:
        residual_table(residuals, ["a", "b", "c", "d", "e"], ids, "respondent_id")
    assert "R00001" not in str(info.value)


def test_models_without_a_degree_distribution_are_refused():
    data = prepare_data(np.ones((4, 2)), {"g1": 1000.0}, 1e5, groups=["g1", "g2"])
    with pytest.raises(ConfigError, match="cannot predict a new respondent"):
        count_model(BasicModel(), data, {})
    with pytest.raises(ConfigError, match="likelihood = 'poisson'"):
        count_model(DegreeModel(likelihood="binomial"), data, {})


@pytest.mark.slow
def test_kfold_prefers_the_barrier_model_on_barrier_data():
    # data from the barrier model (rho = 0.3 for every group) in 8 PSUs of 5; 2 folds, short chains
    rng = np.random.default_rng(3)
    n, per = 40, 5
    population = 1e6
    sizes = np.array([1e4, 2e4, 3e4, 1.5e4, 4e4, 2.5e4, 2e4])
    degree = np.exp(rng.normal(5.3, 0.5, n))
    prob = sizes / population
    r = 1 / 0.3 - 1
    y = rng.poisson(degree[:, None] * rng.gamma(prob * r, 1 / r, size=(n, len(sizes))))
    groups = [f"g{k}" for k in range(len(sizes))]
    data = prepare_data(y, dict(zip(groups[:6], sizes[:6], strict=True)), population, groups=groups)
    psu = np.repeat([f"P{j}" for j in range(n // per)], per)
    result = kfold_compare({"degree": DegreeModel(), "barrier": BarrierModel()}, data, folds=2, seed=1, psu=psu,
                           chains=2, warmup=100, draws=100)
    table = result.table.set_index("model")
    assert table.index[0] == "barrier"
    # the preference is decisive: more than 4 standard errors of the difference
    assert table.loc["degree", "elpd_diff"] < -4 * table.loc["degree", "se_diff"]
    assert set(result.pointwise.columns) >= {"respondent", "fold", "degree", "barrier"}
    assert np.isfinite(result.pointwise[["degree", "barrier"]].to_numpy()).all()
    assert len(result.folds) == 4 and result.folds["units"].sum() == 2 * (n // per)
    pair = result.pairs.iloc[0]
    assert (pair["model"], pair["versus"]) == ("degree", "barrier") and pair["z"] < -4


def test_the_held_out_probabilities_carry_the_recall_curve():
    # p_k* = p_k exp(b (log p_k - c)), c the mean log share of the known groups, exactly as in the likelihood
    data = prepare_data(np.ones((4, 3)), {"g1": 1000.0, "g2": 4000.0}, 1e5, groups=["g1", "g2", "h"])
    draws = {"mu": np.full((1, 2), 5.0), "sigma": np.full((1, 2), 0.5), "size": np.array([[[2000.0], [500.0]]]),
             "degree": np.ones((1, 2, 4))}
    plain = count_model(DegreeModel(), data, draws)
    curved = count_model(DegreeModel(), data, {**draws, "recall_slope": np.array([[-0.3, 0.2]])})
    centre = np.mean(np.log([1000.0 / 1e5, 4000.0 / 1e5]))
    slope = np.array([-0.3, 0.2])[:, None]
    assert np.allclose(curved.log_prob, plain.log_prob + slope * (plain.log_prob - centre), rtol=0, atol=1e-12)


def test_a_text_covariate_with_as_many_levels_as_a_national_surveys_strata_is_summarised():
    # Study 2 has 15 strata: each becomes a level; an identifier-like column (one value per respondent) is refused
    rng = np.random.default_rng(3)
    residuals = rng.standard_normal((300, 2))
    strata = np.array([f"S{i % 15:02d}" for i in range(300)], dtype=object)
    table = residual_table(residuals, ["a", "b"], strata, "stratum")
    assert sorted(table.loc[table["group"] == "a", "level"]) == sorted({f"S{i:02d}" for i in range(15)})
    with pytest.raises(ConfigError, match="has 300 distinct text values"):
        residual_table(residuals, ["a", "b"], np.array([f"R{i}" for i in range(300)], dtype=object), "id")
