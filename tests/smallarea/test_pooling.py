"""Pooled model: closed-form pieces (ICAR scaling, marginal likelihood, Gaussian conditional draws)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from hiddenpop.smallarea import pooling, targets


def _ring_neighbours(n: int) -> np.ndarray:
    return np.array([[i, (i + 1) % n] for i in range(n)])


def test_icar_basis_is_scaled_pseudo_inverse():
    n = 12
    neighbours = np.vstack([_ring_neighbours(n), [[0, 6]]])
    basis = pooling.icar_basis(n, neighbours)
    precision = np.zeros((n, n))
    for i, j in neighbours:
        precision[i, j] = precision[j, i] = -1
    precision[np.arange(n), np.arange(n)] = -precision.sum(axis=1)
    pseudo = np.linalg.pinv(precision)
    scale = np.exp(np.mean(np.log(np.diag(pseudo))))
    assert basis.scale == pytest.approx(scale, rel=1e-5)
    assert np.allclose(basis.covariance, pseudo / scale, atol=1e-5)
    # geometric mean of the marginal variances is one (BYM2 scaling)
    assert np.exp(np.mean(np.log(np.diag(basis.covariance)))) == pytest.approx(1.0, rel=1e-5)
    draws = basis.draw(20000, np.random.default_rng(0))
    assert np.allclose(draws.sum(axis=1), 0, atol=1e-6)  # sum-to-zero
    assert np.allclose(np.cov(draws.T), basis.covariance, atol=0.06)


def test_isolated_area_has_no_spatial_variance():
    neighbours = np.array([[0, 1], [1, 2]])
    basis = pooling.icar_basis(4, neighbours)
    assert basis.covariance[3, 3] == pytest.approx(0, abs=1e-6)
    assert np.allclose(basis.draw(10, np.random.default_rng(1))[:, 3], 0, atol=1e-6)


def test_log_posterior_matches_multivariate_normal():
    rng = np.random.default_rng(3)
    n, p = 15, 4
    x = rng.normal(size=(n, p))
    c_oo = pooling.icar_basis(n, _ring_neighbours(n)).covariance
    y_c = rng.normal(size=n)
    s2 = rng.uniform(0.01, 0.1, n)
    sigma, tau, rho = 0.4, 0.2, 0.3
    phi = np.array([[np.log(sigma), np.log(tau), np.log(rho / (1 - rho))]])
    value = pooling._log_posterior(phi, y_c, x @ x.T, c_oo, s2)[0]
    cov = (pooling.INTERCEPT_SD**2 + tau**2 * x @ x.T + sigma**2 * ((1 - rho) * np.eye(n) + rho * c_oo)
           + np.diag(s2) + 1e-8 * np.eye(n))
    loglik = multivariate_normal(np.zeros(n), cov).logpdf(y_c)
    # priors on the unconstrained scale (constants dropped): half-normals with log Jacobians, Beta(1,1) with logit
    logprior = -0.5 * sigma**2 + np.log(sigma) - 0.5 * (tau / 0.5) ** 2 + np.log(tau) + np.log(rho * (1 - rho))
    constant = -0.5 * n * np.log(2 * np.pi)
    assert value == pytest.approx(loglik - constant + logprior, rel=1e-10)


def test_conditional_draws_match_kriging(monkeypatch):
    """With the hyper-parameters fixed, the Matheron draws have the closed-form Gaussian posterior mean/variance."""
    rng = np.random.default_rng(8)
    n, p, draws = 40, 3, 6000
    x = rng.normal(size=(n, p))
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    basis = pooling.icar_basis(n, _ring_neighbours(n))
    observed = np.zeros(n, dtype=bool)
    observed[::2] = True
    y = np.where(observed, rng.normal(-5, 0.5, n), np.nan)
    s = np.where(observed, 0.2, np.nan)
    sigma, tau, rho = 0.5, 0.3, 0.6

    def fixed(y_c, gram_oo, c_oo, s2, count, generator):
        return {"sigma": np.full(count, sigma), "tau": np.full(count, tau), "rho": np.full(count, rho)}, {
            "engine": "importance", "ess": float(count), "pareto_k": 0.0}

    monkeypatch.setattr(pooling, "_hyper_importance", fixed)
    fit = pooling._fit_pooled(y, s, observed, x, basis, engine="importance", warmup=0, draws=draws, chains=1,
                              seed=2)
    obs = np.flatnonzero(observed)
    m = y[obs].mean()
    prior = pooling.INTERCEPT_SD**2 + tau**2 * x @ x.T + sigma**2 * ((1 - rho) * np.eye(n) + rho * basis.covariance)
    k_oo = prior[np.ix_(obs, obs)] + np.diag(s[obs] ** 2) + 1e-8 * np.eye(obs.size)
    gain = np.linalg.solve(k_oo, prior[obs]).T
    mean = m + gain @ (y[obs] - m)
    variance = np.diag(prior - gain @ prior[obs])
    assert np.allclose(fit.theta.mean(axis=0), mean, atol=4 * np.sqrt(variance.max() / draws) + 1e-3)
    assert np.allclose(fit.theta.var(axis=0), variance, rtol=0.08)
    beta_mean = tau**2 * x[obs].T @ np.linalg.solve(k_oo, y[obs] - m)
    assert np.allclose(fit.beta.mean(axis=0), beta_mean, atol=0.02)


def test_zero_targets_are_excluded_and_reported(area_table):
    from hiddenpop.smallarea.areas import AreaTable

    frame = area_table.frame.copy()
    surveyed = np.flatnonzero(frame["target"].notna().to_numpy())
    frame.loc[surveyed[:2], "target"] = 0.0
    table = AreaTable.from_frame(frame, id="area_id", target="target", target_se="target_se", region="region",
                                 covariates=area_table.covariates)
    _, _, usable, notes = targets.log_targets(table)
    assert usable.sum() == surveyed.size - 2
    assert any("2 surveyed area(s) with a direct estimate of 0" in n for n in notes)


def test_pooled_result_contract(pooled, area_table):
    table = pooled.table
    assert len(table) == area_table.n
    assert (table["lower"] <= table["estimate"]).all() and (table["estimate"] <= table["upper"]).all()
    assert table["method"].eq("pooled (BYM2)").all()
    assert pooled.diagnostics["pareto_k"] < 0.7 and pooled.diagnostics["ess"] > 200
    assert not pooled.warnings
    # the direct SEs are correlated with the direct estimates (the reason they are smoothed by default)
    assert pooled.settings["sampling_variance"] == "pooled"
    assert pooled.diagnostics["gvf"]["corr_direct_vs_se"] < -0.2
    assert any("sampling variances smoothed (pooled)" in note for note in pooled.notes)
    assert np.isfinite(pooled.diagnostics["log_evidence"])
    assert set(pooled.tables["coefficients"]["stream"]) == set(area_table.streams)
    # shrinkage: surveyed intervals are narrower than the direct ones on average
    surveyed = table[table["surveyed"]]
    direct_width = 2 * 1.645 * surveyed["direct_se"]
    assert (surveyed["upper"] - surveyed["lower"]).mean() < direct_width.mean()


def test_without_standard_errors_direct_values_are_kept_and_flagged(area_table):
    from hiddenpop.smallarea.areas import AreaTable
    from hiddenpop.smallarea.pooling import pooled_estimates

    table = AreaTable.from_frame(area_table.frame.drop(columns=["target_se"]), id="area_id", target="target",
                                 population="population", region="region", covariates=area_table.covariates)
    result = pooled_estimates(table, spatial="iid", draws=200, seed=1)
    assert any("no target standard errors" in w for w in result.warnings)
    surveyed = result.table[result.table["surveyed"]]
    assert np.allclose(surveyed["median"], surveyed["direct"], rtol=1e-3)


def _gvf_data(n=300, seed=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return rng, x, -5.0 + x @ np.array([0.4, -0.2, 0.3])


def test_gvf_recovers_an_exact_power_law():
    """log s^2 exactly linear in the log rate and exact targets: the GVF returns the input SEs."""
    _, x, truth = _gvf_data()
    s = np.sqrt(0.05 * np.exp(-0.7 * (truth - truth.mean())))
    usable = np.ones(truth.size, dtype=bool)
    smoothed, info = pooling.smooth_sampling_variances(truth, s, usable, x, "gvf")
    assert info["gvf_slope"] == pytest.approx(-0.7, rel=1e-8)
    assert np.allclose(smoothed, s, rtol=1e-8)
    direct, _ = pooling.smooth_sampling_variances(truth, s, usable, x, "direct")
    assert np.array_equal(direct, s)


def test_smoothed_variances_carry_no_own_sampling_error():
    """Raw SEs that grow when the estimate falls (as for counts) are correlated with the error; smoothed ones not."""
    rng, x, truth = _gvf_data(n=2000)
    error = rng.normal(size=truth.size) * 0.3
    y = truth + error
    raw = 0.3 * np.exp(-0.8 * error + 0.1 * rng.normal(size=truth.size))
    usable = np.ones(truth.size, dtype=bool)
    assert np.corrcoef(raw, error)[0, 1] < -0.5
    for how in ("pooled", "gvf"):
        smoothed, _ = pooling.smooth_sampling_variances(y, raw, usable, x, how)
        assert np.mean(smoothed**2) == pytest.approx(np.mean(raw**2), rel=1e-10)
        if how == "pooled":
            assert np.allclose(smoothed, smoothed[0])
        else:
            assert abs(np.corrcoef(smoothed, error)[0, 1]) < 0.1
    with pytest.raises(pooling.ConfigError, match="sampling_variance"):
        pooling.smooth_sampling_variances(y, raw, usable, x, "magic")
