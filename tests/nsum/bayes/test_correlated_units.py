"""Closed-form and independent-implementation checks of the correlated / uncorrelated models' pieces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import betaln

from hiddenpop.errors import ConfigError, DataError
from hiddenpop.nsum.bayes import CorrelatedModel, UncorrelatedModel, prepare_data
from hiddenpop.nsum.bayes.analyses import check_spec
from hiddenpop.nsum.bayes.correlated import (
    build_covariates,
    build_laga,
    corr_cholesky,
    degree_weights,
    laga_arrays,
    lkj_cholesky_log_density,
    scaling_constants,
)
from hiddenpop.nsum.covariates import covariate_frame, parse_x_columns
from hiddenpop.nsum.specs import BayesSpec


def _x64():
    import jax

    return jax.enable_x64(True)


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_lkj_cholesky_map_and_density_match_numpyro(dim):
    """Our L(y) is numpyro's CorrCholeskyTransform, and log LKJ(L) + log|dL/dy| differs from numpyro's
    LKJCholesky.log_prob + log_abs_det_jacobian by one constant (the normaliser, which NUTS does not need)."""
    import jax.numpy as jnp
    from numpyro.distributions import LKJCholesky
    from numpyro.distributions.transforms import CorrCholeskyTransform

    rng = np.random.default_rng(dim)
    transform = CorrCholeskyTransform()
    gaps = []
    with _x64():
        # moderate |y|: for |y| near 10 NumPyro forms 1 - (sum of squares), which loses digits (our product form
        # does not), and the two then differ by ~1e-9
        for scale in (0.3, 1.0, 2.0):
            y = jnp.asarray(rng.normal(size=dim * (dim - 1) // 2) * scale)
            chol, log_jacobian = corr_cholesky(y, dim)
            reference = transform(y)
            np.testing.assert_allclose(chol, reference, atol=1e-12)
            ours = lkj_cholesky_log_density(chol, 2.0) + log_jacobian
            theirs = LKJCholesky(dim, 2.0).log_prob(reference) + transform.log_abs_det_jacobian(y, reference)
            gaps.append(float(theirs - ours))
    assert np.ptp(gaps) < 1e-9, gaps


@pytest.mark.parametrize("eta", [1.0, 2.0, 3.5])
def test_lkj_at_dimension_two_is_the_scaled_beta_of_the_correlation(eta):
    """K = 2: r = tanh(y) and LKJ(eta) is (r + 1) / 2 ~ Beta(eta, eta), so
    p(y) = (1 - r^2)^(eta - 1) / (2^(2 eta - 1) B(eta, eta)) * (1 - r^2); our unnormalised log density plus the
    normaliser equals it."""
    import jax.numpy as jnp

    ys = np.linspace(-5, 5, 11)
    with _x64():
        ours = []
        for y in ys:
            chol, log_jacobian = corr_cholesky(jnp.array([y]), 2)
            ours.append(float(lkj_cholesky_log_density(chol, eta) + log_jacobian))
    r = np.tanh(ys)
    log_one_minus_r2 = -2 * np.log(np.cosh(ys))  # log(1 - tanh^2), without cancellation
    closed = stats.beta.logpdf((r + 1) / 2, eta, eta) - np.log(2) + log_one_minus_r2
    offset = closed - np.array(ours)
    np.testing.assert_allclose(offset, offset[0], atol=1e-9)
    np.testing.assert_allclose(offset[0], -(2 * eta - 1) * np.log(2) - betaln(eta, eta), atol=1e-10)


def _toy(n=12, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.poisson([4.0, 2.0, 6.0, 3.0], size=(n, 4))
    data = prepare_data(counts, {"a": 5e4, "b": 2e4, "c": 8e4}, 1e6, groups=["a", "b", "c", "h"])
    frame = pd.DataFrame({"xa": rng.normal(size=n), "xh": rng.normal(size=n), "g1": rng.normal(size=n),
                          "s1": rng.normal(size=n), "s2": rng.integers(0, 2, size=n)})
    return data, frame


def _reference_log_density(point, data, design, correlated, centred):
    """The same posterior written out cell by cell with SciPy (numpyro for the LKJ part)."""
    import jax.numpy as jnp
    from numpyro.distributions import LKJCholesky
    from numpyro.distributions.transforms import CorrCholeskyTransform

    y = data.counts
    n, k = y.shape
    halfcauchy = stats.halfcauchy(scale=2.5)
    sigma_rho = np.exp(point["log_sigma_rho"])
    total = stats.norm.logpdf(point["mu_rho"], 0, 10) + halfcauchy.logpdf(sigma_rho) + point["log_sigma_rho"]
    total += np.sum(stats.norm.logpdf(point["rho"], point["mu_rho"], sigma_rho))
    alpha = np.zeros(k)
    alpha[[data.groups.index(g) for g in design.x_groups]] = point["alpha"]
    total += np.sum(stats.norm.logpdf(point["alpha"], 0, 10)) + np.sum(stats.norm.logpdf(point["beta_global"], 0, 10))
    total += np.sum(stats.norm.logpdf(point["beta_subpop"], 0, 10))
    if correlated:
        # u_i ~ N(0, S R S), S_k ~ half-Cauchy(0, 2.5), R ~ LKJ(2); log mean = rho + u - (Sigma_kk - 1'Sigma1/k^2)/2
        transform = CorrCholeskyTransform()
        raw = jnp.asarray(point["corr_raw"])
        total += float(LKJCholesky(k, 2.0).log_prob(transform(raw)) + transform.log_abs_det_jacobian(raw, transform(raw)))
        corr = np.asarray(transform(raw)) @ np.asarray(transform(raw)).T
        scale = np.exp(point["log_scale"])
        total += np.sum(halfcauchy.logpdf(scale) + point["log_scale"])
        cov = scale[:, None] * corr * scale[None, :]
        if centred:
            # the degree part d_i = mean_k u_ik ~ N(0, 1'Sigma1/k^2), and u_i given d_i through the conditional
            # normal: mean Sigma w d_i / (w'Sigma w), covariance C = Sigma - Sigma w w'Sigma / (w'Sigma w), factored
            # on the model's basis Q of 1's complement as Q'chol(Q C Q'); checked: the factor reproduces C, the two
            # parts add up to Sigma, and the mean of u_i over groups is d_i
            w = np.full(k, 1.0 / k)
            degree_var = w @ cov @ w
            total += np.sum(stats.norm.logpdf(point["degree_part"], 0, np.sqrt(degree_var))) + np.sum(
                stats.norm.logpdf(point["z"]))
            _, basis = degree_weights(k)
            conditional = cov - np.outer(cov @ w, cov @ w) / degree_var
            factor = basis.T @ np.linalg.cholesky(basis @ conditional @ basis.T)
            np.testing.assert_allclose(factor @ factor.T, conditional, atol=1e-10)
            np.testing.assert_allclose(np.outer(cov @ w, cov @ w) / degree_var + factor @ factor.T, cov, atol=1e-10)
            u = point["degree_part"][:, None] * (cov @ w / degree_var)[None, :] + point["z"] @ factor.T
            np.testing.assert_allclose(u.mean(axis=1), point["degree_part"], atol=1e-10)
        else:
            u = point["u"] @ np.linalg.cholesky(cov).T
            total += np.sum(stats.norm.logpdf(point["u"]))
        effect = u - 0.5 * (np.diag(cov) - cov.sum() / k**2)[None, :]
    else:
        sigma_delta = np.exp(point["log_sigma_delta"])
        bias_sd = np.exp(point["log_bias_sd"])
        total += halfcauchy.logpdf(sigma_delta) + point["log_sigma_delta"]
        total += np.sum(halfcauchy.logpdf(bias_sd) + point["log_bias_sd"])
        if centred:
            log_degree = point["delta"]
            total += np.sum(stats.norm.logpdf(log_degree, 0, sigma_delta))
        else:
            log_degree = sigma_delta * point["delta"]
            total += np.sum(stats.norm.logpdf(point["delta"]))
        total += np.sum(stats.norm.logpdf(point["eps"]))
        tau = np.sqrt(np.log1p(bias_sd**2))
        effect = log_degree[:, None] - tau**2 / 2 + tau * point["eps"]
    for i in range(n):
        for j in range(k):
            log_lambda = (point["rho"][j] + alpha[j] * design.x[i, j]
                          + design.z_global[i] @ point["beta_global"] + design.z_subpop[i] @ point["beta_subpop"][:, j])
            total += stats.poisson.logpmf(y[i, j], np.exp(log_lambda + effect[i, j]))
    return total


@pytest.mark.parametrize(("correlated", "centred"), [(True, True), (True, False), (False, True)])
def test_log_density_matches_cell_by_cell_scipy(correlated, centred):
    """Two random points: the JAX log density equals the SciPy one up to the LKJ normaliser, which cancels in the
    difference between the points."""
    data, frame = _toy()
    design = build_covariates(data, frame, {"a": "xa", "h": "xh"}, ("g1",), ("s1", "s2"))
    density = build_laga(data.n_respondents, 4, correlated=correlated, x_index=[0, 3], n_global=1, n_subpop=2,
                         centred=centred)
    rng = np.random.default_rng(5)
    values = []
    with _x64():
        import jax.numpy as jnp

        for _ in range(2):
            point = {name: rng.normal(size=shape) * 0.5 for name, shape in density.shapes.items()}
            arrays = {k: jnp.asarray(v) for k, v in laga_arrays(data, design).items()}
            ours = float(density.log_density({k: jnp.asarray(v) for k, v in point.items()}, arrays))
            values.append((ours, _reference_log_density(point, data, design, correlated, centred)))
    (a1, b1), (a2, b2) = values
    assert abs((a1 - a2) - (b1 - b2)) < 1e-8 * max(1.0, abs(b1 - b2))
    if not correlated:
        assert abs(a1 - b1) < 1e-8 * abs(b1)


def test_bias_has_mean_one_and_the_stated_sd():
    """b = exp(mu + tau e), tau^2 = log(1 + tau_N^2), mu = -tau^2 / 2: lognormal moments E b = 1, SD b = tau_N."""
    for tau_n in (0.1, 0.6, 2.0):
        tau2 = np.log1p(tau_n**2)
        dist = stats.lognorm(s=np.sqrt(tau2), scale=np.exp(-tau2 / 2))
        assert dist.mean() == pytest.approx(1.0, rel=1e-12)
        assert dist.std() == pytest.approx(tau_n, rel=1e-12)


def test_all_scaling_is_the_mean_ratio_to_the_known_prevalences():
    known_index = np.array([0, 1, 2])
    prob = np.array([0.05, 0.02, 0.08])
    rho = np.log(np.array([[0.05, 0.02, 0.08, 0.04], [0.1, 0.04, 0.16, 0.02]])) + 4.0
    common, per_group, fallback = scaling_constants(rho, known_index, prob, "all")
    np.testing.assert_allclose(common, [4.0, 4.0 + np.log(2.0)])
    np.testing.assert_allclose(1e6 * np.exp(rho[:, 3] - per_group[:, 3]), [40_000.0, 10_000.0])
    assert fallback == []


def test_weighted_scaling_weights_and_its_fallback():
    """Group 3 correlates positively with known group 1 only: it takes group 1's scale. Group 4 correlates with no
    known group: equal weights (the 'all' constant), where the R package returns NaN, and it is reported."""
    known_index = np.array([0, 1, 2])
    prob = np.array([0.05, 0.02, 0.08])
    ratios = np.array([2.0, 4.0, 8.0])  # exp(rho_j) / p_j for the known groups
    rho = np.log(np.concatenate([ratios * prob, [0.01, 0.01]]))[None, :]
    corr = np.eye(5)
    corr[3, :3] = corr[:3, 3] = [0.0, 0.5, -0.2]
    corr[4, :3] = corr[:3, 4] = [-0.1, 0.0, -0.3]
    common, per_group, fallback = scaling_constants(rho, known_index, prob, "weighted", corr)
    assert per_group[0, 3] == pytest.approx(np.log(4.0))
    assert per_group[0, 4] == pytest.approx(np.log(ratios.mean())) == pytest.approx(common[0])
    assert 4 in fallback and 3 not in fallback
    # a known group is scaled by the other known groups only (k != j), weights 0.5 / 0.2 of groups 2 and 3 ... here
    # group 1 has no positive correlation with groups 2 and 3 (identity): fallback to their equal mean
    assert per_group[0, 0] == pytest.approx(np.log((4.0 + 8.0) / 2))


def test_weighted_scaling_needs_the_correlated_model():
    with pytest.raises(ConfigError, match="correlated model"):
        UncorrelatedModel(scaling="weighted")
    with pytest.raises(ConfigError, match="correlated model"):
        check_spec(BayesSpec(model="uncorrelated", scaling="weighted"))


@pytest.mark.parametrize("options", [{"x_columns": ("a=xa",)}, {"z_global": ("g1",)}, {"scaling": "weighted"}])
def test_covariate_options_belong_to_the_laga_models(options):
    with pytest.raises(ConfigError, match="correlated and uncorrelated"):
        check_spec(BayesSpec(model="combined", **options))
    check_spec(BayesSpec(model="correlated", **options))


def test_binomial_likelihood_is_refused():
    with pytest.raises(ConfigError, match="Poisson"):
        check_spec(BayesSpec(model="correlated", likelihood="binomial"))


@pytest.mark.parametrize("entries", [("a",), ("=xa",), ("a=",), ("a=xa", "a=xb")])
def test_x_columns_grammar(entries):
    with pytest.raises(ConfigError, match="x_columns"):
        parse_x_columns(entries)


def test_x_columns_parse():
    assert parse_x_columns(("a = xa", "h=xh")) == {"a": "xa", "h": "xh"}


def test_covariates_missing_cell_names_file_row_and_column_not_the_value():
    table = pd.DataFrame({"z": [0.5, np.nan, 1.5, 2.5], "w": ["1", "2", "secret", "4"]})
    with pytest.raises(DataError, match=r"survey.csv, row 2, column 'z'"):
        covariate_frame(table, ["z"], source="survey.csv")
    with pytest.raises(DataError, match=r"row 3, column 'w'") as error:
        covariate_frame(table, ["w"], source="survey.csv")
    assert "secret" not in str(error.value)
    # the kept respondents only: a dropped row's gap is not an error
    kept = covariate_frame(table, ["z"], rows=np.array([1, 3, 4]), source="survey.csv")
    np.testing.assert_allclose(kept["z"], [0.5, 1.5, 2.5])
    with pytest.raises(DataError, match="not found"):
        covariate_frame(table, ["nope"], source="survey.csv")


def test_covariates_are_standardised_and_constant_columns_refused():
    data, frame = _toy()
    design = build_covariates(data, frame, {"h": "xh"}, ("g1",), ())
    np.testing.assert_allclose(design.x[:, 3].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(design.x[:, 3].std(ddof=1), 1)
    assert np.all(design.x[:, :3] == 0)
    frame["flat"] = 3.0
    with pytest.raises(DataError, match="'flat'"):
        build_covariates(data, frame, {}, ("flat",), ())
    with pytest.raises(ConfigError, match="not a group"):
        build_covariates(data, frame, {"zz": "xh"}, (), ())
    with pytest.raises(ConfigError, match="both"):
        build_covariates(data, frame, {}, ("g1",), ("g1",))


def test_models_are_registered_for_every_interface():
    from hiddenpop.nsum.bayes import MODELS
    from hiddenpop.nsum.specs import BAYES_MODELS

    assert MODELS["correlated"] is CorrelatedModel and MODELS["uncorrelated"] is UncorrelatedModel
    assert set(MODELS) == set(BAYES_MODELS)


def test_decompose_is_the_split_into_mean_over_groups_and_deviation():
    """Draw u_i ~ N(0, Sigma), split each into its mean over groups d_i and the deviations e_i = u_i - d_i: the
    sample sd of d, the log-normal sds exp(var e_k) - 1 and the correlations of e match ``decompose`` (to Monte Carlo
    error at 400,000 draws), and Laga et al.'s form with independent degree and biases (sigma 0.5, tau 0.6,
    correlations Omega) does not come back as (0.5, Omega): the split is a convention."""
    from hiddenpop.nsum.bayes.correlated import decompose

    omega = np.array([[1.0, 0.6, 0.3, 0.5], [0.6, 1.0, 0.2, 0.4], [0.3, 0.2, 1.0, -0.3], [0.5, 0.4, -0.3, 1.0]])
    tau = np.sqrt(np.log1p(np.array([0.6, 0.3, 0.8, 0.5]) ** 2))
    sigma = 0.5**2 + tau[:, None] * omega * tau[None, :]
    u = np.random.default_rng(1).multivariate_normal(np.zeros(4), sigma, size=400_000)
    degree = u.mean(axis=1)
    deviation = u - degree[:, None]
    split = decompose(sigma)
    assert split["sigma_delta"] == pytest.approx(degree.std(), abs=0.005)
    np.testing.assert_allclose(split["bias_sd"], np.sqrt(np.expm1(deviation.var(axis=0))), atol=0.005)
    np.testing.assert_allclose(split["corr"], np.corrcoef(deviation.T), atol=0.01)
    assert abs(split["sigma_delta"] - 0.5) > 0.05 and np.abs(split["corr"] - omega).max() > 0.5
