"""Fast checks without sampling: data validation, gates on synthetic chains, calibration algebra, log densities."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from hiddenpop.errors import ConfigError, DataError
from hiddenpop.mcmc.nuts import Draws
from hiddenpop.nsum.bayes import BarrierModel, CombinedModel, DegreeModel, Priors, prepare_data
from hiddenpop.nsum.bayes.calibration import reported_size_in_areas, tau_prior_from_counts, tau_sensitivity
from hiddenpop.nsum.bayes.diagnostics import convergence, ebfmi, predictive_checks
from hiddenpop.nsum.bayes.maltiel import count_tails, log_gamma_shift, model_arrays, stack_arrays
from hiddenpop.results import Estimates

KNOWN = {"a": 50_000.0, "b": 20_000.0}


def _frame():
    return pd.DataFrame({"a": [5, 3, 0, 7], "b": [2, 1, 0, 3], "h": [1, 0, 0, 2]})


# ---------------------------------------------------------------- data validation
def test_prepare_data_orders_groups_and_marks_known():
    data = prepare_data(_frame(), KNOWN, 1e6)
    assert data.groups == ("a", "b", "h")
    assert data.known.tolist() == [True, True, False]
    assert data.hidden_groups == ("h",)
    np.testing.assert_allclose(data.killworth_degrees(), 1e6 * np.array([7, 4, 0, 10]) / 70_000.0)


def test_missing_count_is_an_error_naming_row_and_column():
    frame = _frame().astype(float)
    frame.loc[2, "h"] = np.nan
    with pytest.raises(DataError, match=r"row 3, column 'h'.*missing"):
        prepare_data(frame, KNOWN, 1e6, source="survey.csv")


@pytest.mark.parametrize("bad", [-1, 2.5, np.inf])
def test_invalid_counts_rejected_without_echoing_value(bad):
    frame = _frame().astype(float)
    frame.loc[1, "a"] = bad
    with pytest.raises(DataError) as info:
        prepare_data(frame, KNOWN, 1e6)
    assert "row 2, column 'a'" in str(info.value)
    assert str(bad) not in str(info.value)


def test_known_size_must_be_below_population():
    with pytest.raises(ConfigError, match="strictly between 0 and the population"):
        prepare_data(_frame(), {"a": 2e6, "b": 1.0}, 1e6)


def test_priors_validated():
    with pytest.raises(ConfigError):
        Priors(mu=(8, 3)).validate()
    with pytest.raises(ConfigError):
        DegreeModel(likelihood="gaussian")
    with pytest.raises(ConfigError):
        Priors(tau=(0.0, 1.0)).tau_for("h")


# ---------------------------------------------------------------- log densities against closed forms
def _value_and_gradient(model, data, z):
    """The model's log density (unconstrained scale) at z, and its gradient, in 64-bit."""
    import jax

    density = model.numpyro_model(data)
    with jax.enable_x64(True):
        arrays = {k: jax.numpy.asarray(v) for k, v in model_arrays(data, model.priors).items()}
        value, gradient = jax.jit(jax.value_and_grad(density.log_density))(
            {k: jax.numpy.asarray(v, dtype=float) for k, v in z.items()}, arrays)
    return float(value), {k: np.asarray(v) for k, v in gradient.items()}


def _potential(model, data, z):
    return _value_and_gradient(model, data, z)[0]


def test_barrier_log_density_is_beta_binomial_with_continuous_degree():
    data = prepare_data(_frame(), KNOWN, 1e6)
    model = BarrierModel(likelihood="binomial")
    rng = np.random.default_rng(1)
    z = {"mu": np.array(0.3), "sigma": np.array(-0.2), "log_degree_raw": rng.normal(3, 0.5, 4),
         "log_size_raw": np.array([0.1]), "rho": np.array([-2.0, -1.5, -3.0])}
    logistic = lambda u: 1 / (1 + math.exp(-u))  # noqa: E731
    mu = 3 + 5 * logistic(0.3)
    sigma = 0.25 + 1.75 * logistic(-0.2)
    degree = data.counts.max(axis=1) + np.exp(z["log_degree_raw"])
    low, high = math.log(max(1.0, 2.0)), math.log(1e6)
    size = math.exp(low + (high - low) * logistic(0.1))
    prob = np.array([50_000 / 1e6, 20_000 / 1e6, size / 1e6])
    rho = np.array([logistic(u) for u in z["rho"]])
    r = 1 / rho - 1
    from scipy.special import betaln, gammaln

    d = degree[:, None]
    y = data.counts
    loglik = (gammaln(d + 1) - gammaln(y + 1) - gammaln(d - y + 1) + betaln(y + prob * r, d - y + (1 - prob) * r)
              - betaln(prob * r, (1 - prob) * r)).sum()
    jac = lambda u: math.log(logistic(u)) + math.log(1 - logistic(u))  # noqa: E731
    prior = (jac(0.3) + jac(-0.2) + jac(0.1) + sum(jac(u) for u in z["rho"])
             + np.sum(stats.lognorm.logpdf(degree, s=sigma, scale=math.exp(mu)) + z["log_degree_raw"]))
    assert _potential(model, data, z) == pytest.approx(loglik + prior, rel=1e-8)


def _poisson_z(rng, n_respondents):
    return {"mu": np.array(0.3), "sigma": np.array(-0.2), "log_degree_raw": rng.normal(4, 0.5, n_respondents),
            "log_size_raw": np.array([0.1]), "rho": np.array([-2.0, -1.5, -3.0])}


@pytest.mark.parametrize("parameterisation", ["centred", "noncentred"])
@pytest.mark.parametrize("barrier", [False, True])
def test_poisson_log_density_from_sufficient_statistics_matches_cell_by_cell(barrier, parameterisation):
    """The Poisson paths sum through row/column totals and count tails; they must equal the cell-by-cell
    Poisson / negative-binomial log-likelihood (scipy) plus the priors, constants included."""
    frame = _frame()
    frame.loc[1, "h"] = 4  # a count above 1 in a hidden group exercises the tails
    data = prepare_data(frame, KNOWN, 1e6)
    model = (BarrierModel if barrier else DegreeModel)(likelihood="poisson", parameterisation=parameterisation)
    z = _poisson_z(np.random.default_rng(2), 4)
    if not barrier:
        z.pop("rho")
    logistic = lambda u: 1 / (1 + math.exp(-u))  # noqa: E731
    mu = 3 + 5 * logistic(0.3)
    sigma = 0.25 + 1.75 * logistic(-0.2)
    raw = z["log_degree_raw"]
    log_d = raw if parameterisation == "centred" else mu + sigma * raw
    low, high = math.log(4.0), math.log(1e6)  # lower bound: the largest report of the hidden group
    size = math.exp(low + (high - low) * logistic(0.1))
    prob = np.array([50_000 / 1e6, 20_000 / 1e6, size / 1e6])
    mean = np.exp(log_d)[:, None] * prob[None, :]
    y = data.counts
    jac = lambda u: math.log(logistic(u)) + math.log(1 - logistic(u))  # noqa: E731
    prior = jac(0.3) + jac(-0.2) + jac(0.1) + np.sum(
        stats.norm.logpdf(log_d, mu, sigma) if parameterisation == "centred" else stats.norm.logpdf(raw))
    if barrier:
        rho = np.array([logistic(u) for u in z["rho"]])
        r = 1 / rho - 1
        # gamma-Poisson: NB with size a_k = p_k r_k and success probability r_k / (r_k + d_i)
        loglik = stats.nbinom.logpmf(y, prob * r, r / (r + np.exp(log_d)[:, None])).sum()
        prior += sum(jac(u) for u in z["rho"])
    else:
        loglik = stats.poisson.logpmf(y, mean).sum()
    assert _potential(model, data, z) == pytest.approx(loglik + prior, rel=1e-10)


def test_cell_log_sum_value_and_hand_written_gradient():
    """The per-cell term of the gamma-Poisson model has a hand-written gradient (for speed); it must equal the value
    and the automatic gradient of the plain expression, also when vectorised over chains, from moderate r down to
    the Poisson limit (s = 1/r as small as 1e-15), with unit and with unequal respondent weights."""
    import jax
    import jax.numpy as jnp

    from hiddenpop.nsum.bayes.maltiel import cell_log_sum, weighted_cell_log_sum

    rng = np.random.default_rng(5)
    n, k = 40, 6
    a = rng.uniform(0.01, 3, (2, k))  # two "chains"
    s = np.vstack([1 / rng.uniform(0.5, 1e4, k), 10.0 ** -rng.uniform(3, 15, k)])
    d, y = rng.lognormal(4, 1, (2, n)), rng.poisson(3, (n, k)).astype(float)
    for w in (np.ones(n), rng.uniform(0.2, 3.0, n)):
        with jax.enable_x64(True):
            plain = lambda a, s, d, y, w: jnp.sum(w[:, None] * (a + y) * jnp.log1p(d[:, None] * s))  # noqa: E731
            expected = np.sum(w[:, None] * (a[0] + y) * np.log1p(s[0] * d[0][:, None]))
            assert float(weighted_cell_log_sum()(a[0], s[0], d[0], y, w)) == pytest.approx(expected, rel=1e-13)
            want = jax.vmap(jax.value_and_grad(plain, argnums=(0, 1, 2)), in_axes=(0, 0, 0, None, None))(
                a, s, d, y, w)
            got = jax.jit(jax.vmap(jax.value_and_grad(weighted_cell_log_sum(), argnums=(0, 1, 2)),
                                   in_axes=(0, 0, 0, None, None)))(a, s, d, y, w)
            np.testing.assert_allclose(got[0], want[0], rtol=1e-13)
            for mine, reference in zip(got[1], want[1], strict=True):
                np.testing.assert_allclose(mine, reference, rtol=1e-12)
            data_gradient = jax.grad(weighted_cell_log_sum(), argnums=3)(a[0], s[0], d[0], y, w)
            assert data_gradient.shape == y.shape  # data: zero cotangent
            assert not np.any(data_gradient)
    # the unweighted form (what an unweighted fit runs) gives the weighted form's value and gradient at unit weights
    with jax.enable_x64(True):
        ones = np.ones(n)
        want = jax.value_and_grad(weighted_cell_log_sum(), argnums=(0, 1, 2))(a[0], s[0], d[0], y, ones)
        got = jax.value_and_grad(cell_log_sum(), argnums=(0, 1, 2))(a[0], s[0], d[0], y)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-13)
        for mine, reference in zip(got[1], want[1], strict=True):
            np.testing.assert_allclose(mine, reference, rtol=1e-12)


@pytest.mark.parametrize("name", ["barrier", "combined"])
def test_poisson_barrier_gradient_matches_central_differences(name):
    """The whole log posterior's gradient (through the hand-written per-cell gradient) against central differences
    in every coordinate."""
    import jax
    from jax.flatten_util import ravel_pytree

    frame = _frame()
    frame.loc[1, "h"] = 4
    data = prepare_data(frame, KNOWN, 1e6)
    model = (BarrierModel if name == "barrier" else CombinedModel)(likelihood="poisson")
    density = model.numpyro_model(data)
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        arrays = {k: jax.numpy.asarray(v) for k, v in model_arrays(data, model.priors).items()}
        z = {k: rng.normal(0, 0.5, s) + (4.0 if k == "log_degree_raw" else 0.0) for k, s in density.shapes.items()}
        flat, unravel = ravel_pytree({k: jax.numpy.asarray(v) for k, v in z.items()})
        f = jax.jit(lambda v: density.log_density(unravel(v), arrays))
        grad = np.asarray(jax.jit(jax.grad(lambda v: density.log_density(unravel(v), arrays)))(flat))
        step = 1e-6
        basis = np.eye(flat.size) * step
        numeric = np.array([(float(f(flat + e)) - float(f(flat - e))) / (2 * step) for e in basis])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)
@pytest.mark.parametrize("likelihood", ["poisson", "binomial"])
@pytest.mark.parametrize("logit_rho", [-30.0, -35.0, -40.0])
def test_barrier_likelihood_reaches_its_no_barrier_limit_without_rounding_noise(likelihood, logit_rho):
    """As rho -> 0 the gamma-Poisson (beta-binomial) tends to the Poisson (binomial): the barrier model's log
    density must tend to the degree model's plus the rho prior, and its gradient in logit(rho) to the prior's
    alone (1 - 2 rho). At Study 2's scale the true gap is below 1e-7 from logit(rho) = -30 on. A form that
    subtracts terms of size n a_k log r_k was off by 26 (Poisson) and 2.6 (binomial) at -35, with gradients of
    the wrong sign: a chain that reached rho ~ 1e-15 in warm-up froze there."""
    rng = np.random.default_rng(3)
    known = {"a": 50_000.0, "b": 20_000.0, "c": 200_000.0}
    degree = rng.lognormal(5.5, 0.5, 300)
    frame = pd.DataFrame({k: rng.poisson(degree * v / 1e8) for k, v in {**known, "h": 60_000.0}.items()})
    data = prepare_data(frame, known, 1e8)
    options = {"parameterisation": "centred"} if likelihood == "poisson" else {}
    raw = np.log(degree) if likelihood == "poisson" else np.log(degree - frame.max(axis=1).to_numpy() + 0.5)
    z = {"mu": np.array(0.3), "sigma": np.array(-0.2), "log_degree_raw": raw, "log_size_raw": np.array([0.1])}
    plain, plain_gradient = _value_and_gradient(DegreeModel(likelihood=likelihood, **options), data, z)
    value, gradient = _value_and_gradient(BarrierModel(likelihood=likelihood, **options), data,
                                          dict(z, rho=np.full(4, logit_rho)))
    rho = 1 / (1 + math.exp(-logit_rho))
    prior = 4 * (math.log(rho) + math.log1p(-rho))
    assert abs(value - (plain + prior)) < 1e-6
    np.testing.assert_allclose(gradient["rho"], 1 - 2 * rho, atol=1e-6)
    for name in z:
        np.testing.assert_allclose(gradient[name], plain_gradient[name], atol=1e-6)


@pytest.mark.parametrize("x", [0.01, 0.5, 3.0, 29.0, 31.0, 999.0, 1e4, 1e8, 1e15, 1e30])
@pytest.mark.parametrize("h", [0, 1, 2, 7, 40, 3000])
def test_log_gamma_shift_equals_its_finite_product_everywhere(x, h):
    """For whole h, log Gamma(x + h) - log Gamma(x) - h log x = sum_{j < h} log(1 + j / x) exactly: an
    independent reference on both sides of the switch to Stirling's series, up to x = 1e30. Bound: the
    rounding of the terms each form adds (about 50 ulp of 1 + h + |value|, plus x log x for the direct one)."""
    import jax

    with jax.enable_x64(True):
        value = float(log_gamma_shift(jax.numpy.float64(x), jax.numpy.float64(h)))
    reference = math.fsum(math.log1p(j / x) for j in range(h))
    scale = 1 + h + abs(reference) + (x * abs(math.log(x)) if x <= 30 else 0.0)
    assert abs(value - reference) <= 1e-14 * scale


def test_log_gamma_shift_series_agrees_with_direct_form_at_the_switch():
    """Fractional h (the binomial's continuous degrees): just above the switch the series must equal the
    direct log-gamma difference, which is still accurate there (rounding about 1e-12)."""
    import jax
    from scipy.special import gammaln

    h = np.array([0.3, 12.5, 250.75, 4000.2])
    for x in (30.5, 100.0, 2500.0):
        with jax.enable_x64(True):
            value = np.asarray(log_gamma_shift(jax.numpy.float64(x), jax.numpy.asarray(h)))
        np.testing.assert_allclose(value, gammaln(x + h) - gammaln(x) - h * np.log(x), rtol=1e-9, atol=1e-9)


def test_auto_parameterisation_follows_reports_per_respondent():
    few = prepare_data(_frame() // 3, KNOWN, 1e6)  # median 1 report per respondent
    some = prepare_data(_frame(), KNOWN, 1e6)  # median 6
    many = prepare_data(_frame() * 20, KNOWN, 1e6)  # median 160
    assert not DegreeModel().centred(few)
    assert DegreeModel().centred(some) and not BarrierModel().centred(some)
    assert DegreeModel().centred(many) and BarrierModel().centred(many)
    assert DegreeModel(parameterisation="centred").centred(few)
    with pytest.raises(ConfigError, match="parameterisation"):
        DegreeModel(parameterisation="sideways")


def test_count_tails_and_padding():
    counts = np.array([[0, 3], [2, 0], [1, 1]])
    tails = count_tails(counts)
    # T[k, j] = #{i: y_ik > j}
    assert tails.tolist() == [[2, 1, 0], [2, 1, 1]]
    assert count_tails(counts, 5).shape == (2, 5)
    with pytest.raises(ConfigError, match="below the largest count"):
        count_tails(counts, 2)
    data_a = prepare_data(pd.DataFrame({"a": [1, 0], "h": [0, 1]}), {"a": 10.0}, 100.0)
    data_b = prepare_data(pd.DataFrame({"a": [4, 0], "h": [0, 1]}), {"a": 10.0}, 100.0)
    stacked = stack_arrays([model_arrays(d, Priors()) for d in (data_a, data_b)])
    assert stacked["tail"].shape == (2, 2, 4)
    assert stacked["tail"][0].sum() == count_tails(data_a.counts).sum()


def test_transmission_prior_in_effective_size_coordinates():
    """p(w, tau) must be Beta(tau) / w on w/U < tau < min(1, w/L): check the tau_raw marginal is the Beta."""
    data = prepare_data(_frame(), KNOWN, 1e6)
    model = CombinedModel(Priors(tau=(3.0, 5.0)))
    base = {"mu": np.array(0.0), "sigma": np.array(0.0), "log_degree_raw": np.zeros(4),
            "log_effective_size_raw": np.array([math.log(math.log(1e6) - math.log(2_000.0))]),
            "rho": np.zeros(3)}
    grid = np.linspace(-12, 12, 4001)
    import jax

    density = model.numpyro_model(data)
    with jax.enable_x64(True):
        arrays = {k: jax.numpy.asarray(v) for k, v in model_arrays(data, model.priors).items()}
        batch = {k: jax.numpy.broadcast_to(jax.numpy.asarray(v, dtype=float), (101, *np.shape(v)))
                 for k, v in base.items()}
        batch["tau_raw"] = jax.numpy.asarray(grid[::40, None])
        values = np.asarray(jax.jit(jax.vmap(lambda z: density.log_density(z, arrays)))(batch))
    # move along tau_raw only: the density in tau (after the Jacobian) must be proportional to the Beta(3, 5)
    # times the likelihood of the fixed effective size, which does not depend on tau: so values - log Beta is flat
    w = 2_000.0
    lower, upper = w / 1e6, min(1.0, w / 2.0)
    tau = lower + (upper - lower) / (1 + np.exp(-grid[::40]))
    jac = np.log(upper - lower) + np.log(tau - lower) - np.log(upper - lower) + np.log(upper - tau) - np.log(
        upper - lower)
    flat = values - stats.beta.logpdf(tau, 3, 5) - jac
    assert np.ptp(flat[np.isfinite(flat)]) < 1e-6


# ---------------------------------------------------------------- gates on synthetic chains
def test_gates_pass_on_independent_chains_and_fail_on_stuck_chains():
    rng = np.random.default_rng(0)
    good = {"x": rng.normal(size=(4, 1000)), "v": rng.normal(size=(4, 1000, 3))}
    energy = rng.normal(size=(4, 1000))
    diag, warnings = convergence(good, diverging=np.zeros((4, 1000), bool), energy=energy,
                                 num_steps=np.full((4, 1000), 7), max_tree_depth=10)
    assert diag["passed"] and not warnings
    bad = {"x": rng.normal(size=(4, 1000)) + np.arange(4)[:, None]}
    diverging = np.zeros((4, 1000), bool)
    diverging[0, :5] = True
    stuck_energy = np.cumsum(rng.normal(size=(4, 1000)), axis=1)  # random walk: E-BFMI near 0
    diag, warnings = convergence(bad, diverging=diverging, energy=stuck_energy, num_steps=np.full((4, 1000), 1023),
                                 max_tree_depth=10)
    assert not diag["passed"]
    text = " ".join(warnings)
    assert "R-hat" in text and "divergent" in text and "E-BFMI" in text and "tree depth" in text
    assert diag["divergences"] == 5


def test_gates_of_a_sampler_without_trees_report_no_tree_depth():
    """A Gibbs fit (no energy, no trees): no E-BFMI, and no tree-depth entry or warning however its steps read."""
    rng = np.random.default_rng(1)
    draws = {"x": rng.normal(size=(4, 1000))}
    diag, warnings = convergence(draws, diverging=np.zeros((4, 1000), bool), energy=None,
                                 num_steps=np.full((4, 1000), 1023), max_tree_depth=None)
    assert diag["passed"] and not warnings
    assert "max_tree_depth_hits" not in diag and diag["ebfmi"] == []


def test_ebfmi_closed_form():
    energy = np.array([[0.0, 1.0, 0.0, 1.0]])
    # diffs: 1, -1, 1 -> 3; deviations from 0.5: 4 * 0.25 = 1
    assert ebfmi(energy)[0] == pytest.approx(3.0)


def test_predictive_checks_tables():
    counts = np.array([[0, 1], [2, 0], [0, 0], [12, 1]], dtype=float)
    rep = np.broadcast_to(counts, (50, 4, 2)).copy()
    ppc, root = predictive_checks(counts, ("g1", "g2"), lambda rng: rep, replicates=50, seed=1)
    zero = ppc[(ppc.group == "g1") & (ppc.statistic == "share_zero")].iloc[0]
    assert zero.observed == 0.5 and zero.predicted == 0.5 and not zero.outside_interval
    g1 = root[root.group == "g1"]
    assert g1.observed.sum() == 4 and g1.expected.sum() == pytest.approx(4)
    assert g1[g1["count"] == ">=10"].observed.iloc[0] == 1


def test_simulate_in_blocks_is_ordered_reproducible_and_machine_independent(monkeypatch):
    """Blocks come back in row order, each from its own child generator; the draws depend on the seed only, not
    on how many threads the machine lends (one core gives the same numbers as two)."""
    import os

    from hiddenpop.nsum.bayes import diagnostics

    def block(generator, rows):
        return np.column_stack([rows, generator.standard_normal(len(rows))])

    first = diagnostics.simulate_in_blocks(np.random.default_rng(5), 10, block)
    np.testing.assert_array_equal(first[:, 0], np.arange(10))
    assert len(np.unique(first[:, 1])) == 10  # no block repeats another's stream
    np.testing.assert_array_equal(first, diagnostics.simulate_in_blocks(np.random.default_rng(5), 10, block))
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    np.testing.assert_array_equal(first, diagnostics.simulate_in_blocks(np.random.default_rng(5), 10, block))
    assert not np.array_equal(first, diagnostics.simulate_in_blocks(np.random.default_rng(6), 10, block))
    assert diagnostics.simulate_in_blocks(np.random.default_rng(5), 2, block).shape == (2, 2)  # fewer rows than blocks


@pytest.mark.parametrize("likelihood", ["poisson", "binomial"])
def test_predictive_simulator_draws_from_the_combined_model(likelihood):
    """Replicated counts have the model's mean d_i tau_k N_k / N and its over-dispersion: under the Poisson
    likelihood var = m + m^2 / a_k (gamma-Poisson, a_k = tau_k p_k r_k), under the binomial
    var = m (1 - q) (1 + (d_i - 1) rho_k) (beta-binomial), with r_k = 1/rho_k - 1, m = d_i q_k."""
    counts = pd.DataFrame({"a": [5, 3, 0, 7], "b": [2, 1, 0, 3], "h": [1, 0, 0, 2]})
    data = prepare_data(counts, KNOWN, 1e6)
    # integer degrees (the binomial simulator rounds them) and shapes a_k >= 1, so the sample variance of 6,000
    # replicates is itself within a few per cent
    degree, size, tau, rho = np.array([150.0, 300.0, 600.0, 60.0]), 10_000.0, 0.5, np.array([0.02, 0.01, 0.004])
    shape = (2, 3000)
    draws = Draws(
        samples={"degree": np.broadcast_to(degree, (*shape, 4)), "size": np.full((*shape, 1), size),
                 "tau": np.full((*shape, 1), tau), "rho": np.broadcast_to(rho, (*shape, 3))},
        diverging=np.zeros(shape, bool), energy=np.zeros(shape), num_steps=np.ones(shape), seconds=0.0,
    )
    model = CombinedModel(likelihood=likelihood)
    replicated = model.predictive_simulator(data, draws, None, 6000)(np.random.default_rng(3))
    assert replicated.shape == (6000, 4, 3)
    q = np.array([KNOWN["a"] / 1e6, KNOWN["b"] / 1e6, tau * size / 1e6])
    mean = degree[:, None] * q
    r = 1 / rho - 1
    if likelihood == "poisson":
        variance = mean + mean**2 / (q * r)
        zero = (1 + degree[:, None] / r) ** (-q * r)
    else:
        variance = mean * (1 - q) * (1 + (degree[:, None] - 1) * rho)
        zero = np.exp(special.betaln(q * r, (1 - q) * r + degree[:, None]) - special.betaln(q * r, (1 - q) * r))
    assert np.all(np.abs(replicated.mean(axis=0) - mean) < 4.5 * np.sqrt(variance / 6000))
    share_zero = np.mean(replicated == 0, axis=0)
    assert np.all(np.abs(share_zero - zero) < 4.5 * np.sqrt(zero * (1 - zero) / 6000) + 1e-12)
    np.testing.assert_allclose(replicated.var(axis=0), variance, rtol=0.15)


# ---------------------------------------------------------------- calibration
def test_reported_size_in_areas_is_ratio_estimator():
    y = np.array([0, 1, 0, 2, 1.0])
    d = np.array([100, 150, 80, 300, 120.0])
    estimate, se = reported_size_in_areas(y, d, 50_000)
    assert estimate == pytest.approx(50_000 * 4 / 750)
    r = 4 / 750
    manual = 50_000 * math.sqrt(np.sum((y - r * d) ** 2) / (4 * 5 * d.mean() ** 2))
    assert se == pytest.approx(manual)


def test_tau_prior_moments_match():
    prior = tau_prior_from_counts(reported=400.0, reported_se=50.0, external_count=900, completeness=0.9)
    mean = 400 * 0.9 / 900
    var = mean**2 * ((50 / 400) ** 2 + 1 / 900)
    assert stats.beta.mean(prior.a, prior.b) == pytest.approx(mean)
    assert stats.beta.var(prior.a, prior.b) == pytest.approx(var)
    low, high = prior.interval()
    assert low < mean < high


def test_tau_prior_refuses_tau_above_one():
    with pytest.raises(ConfigError, match="tau would be >= 1"):
        tau_prior_from_counts(reported=1000.0, reported_se=10.0, external_count=500)


def test_tau_sensitivity_scales_draws_exactly():
    rng = np.random.default_rng(2)
    sizes = rng.lognormal(10, 0.1, size=(2, 500, 2))
    draws = Draws(samples={"size": sizes}, diverging=np.zeros((2, 500), bool), energy=np.zeros((2, 500)),
                  num_steps=np.zeros((2, 500)), seconds=0.0)
    est = Estimates(table=pd.DataFrame([{"quantity": "h1"}]), settings={"hidden_groups": ["h1", "h2"]},
                    extras={"draws": draws})
    table = tau_sensitivity(est, [0.5, 1.0], sums={"both": ["h1", "h2"]}, ratios={"r": ("h1", "h2")})
    h1 = table[table.quantity == "h1"].set_index("tau")
    assert h1.loc[0.5, "estimate"] == pytest.approx(2 * h1.loc[1.0, "estimate"])
    assert h1.loc[1.0, "estimate"] == pytest.approx(np.median(sizes[..., 0]))
    r = table[table.quantity == "r"].set_index("tau")
    assert r.loc[0.5, "estimate"] == pytest.approx(r.loc[1.0, "estimate"])
    both = table[(table.quantity == "both") & (table.tau == 1.0)].iloc[0]
    assert both["mean"] == pytest.approx(sizes.sum(axis=-1).mean())


def test_sums_and_ratios_refuse_unknown_names():
    from hiddenpop.nsum.bayes.maltiel import derived_rows

    sizes = {"h1": np.ones((2, 10)), "h2": np.ones((2, 10))}
    with pytest.raises(ConfigError, match="without a posterior size"):
        derived_rows(sizes, "m", {"s": ["h1", "nope"]}, None)
    with pytest.raises(ConfigError, match="neither a hidden group nor a sum"):
        derived_rows(sizes, "m", None, {"r": ("h1", "zzz")})
    rows = derived_rows(sizes, "m", {"s": ["h1", "h2"]}, {"r": ("s", "h1")})
    assert rows[0]["estimate"] == 2.0 and rows[1]["estimate"] == 2.0


def test_rootogram_expected_counts_are_replicate_means():
    rng = np.random.default_rng(2)
    counts = rng.poisson(3.0, size=(40, 3)).astype(float)
    replicated = rng.poisson(rng.gamma(1.5, 2.0, size=(25, 40, 3)))
    _, root = predictive_checks(counts, ("a", "b", "c"), lambda _: replicated, replicates=25, seed=1)
    for k, group in enumerate("abc"):
        rows = root[root.group == group]
        for value in range(10):
            row = rows[rows["count"] == str(value)].iloc[0]
            assert row.observed == np.sum(counts[:, k] == value)
            assert row.expected == pytest.approx(np.mean(np.sum(replicated[:, :, k] == value, axis=1)), rel=1e-12)
        top = rows[rows["count"] == ">=10"].iloc[0]
        assert top.expected == pytest.approx(np.mean(np.sum(replicated[:, :, k] >= 10, axis=1)), rel=1e-12)


def test_predictive_statistics_are_each_groups_own_over_respondents():
    """The statistics are computed for all groups at once: each must still be the group's own, over respondents
    within a replicate, after its own cap."""
    rng = np.random.default_rng(7)
    counts = rng.poisson(2.0, size=(30, 4))
    replicated = rng.poisson(rng.gamma(0.8, 3.0, size=(60, 30, 4)))
    caps = np.array([4.0, np.inf, 6.0, np.inf])
    ppc, _ = predictive_checks(counts, tuple("abcd"), lambda _: replicated.copy(), replicates=60, seed=1, caps=caps)
    for k, group in enumerate("abcd"):
        simulated = np.minimum(replicated[:, :, k], caps[k])
        for stat, values in (("share_zero", np.mean(simulated == 0, axis=1)), ("mean", simulated.mean(axis=1)),
                             ("max", simulated.max(axis=1))):
            row = ppc[(ppc.group == group) & (ppc.statistic == stat)].iloc[0]
            lower, median, upper = np.quantile(values, [0.025, 0.5, 0.975])
            assert (row.lower, row.predicted, row.upper) == pytest.approx((lower, median, upper), rel=1e-12)
            observed = {"share_zero": np.mean(counts[:, k] == 0), "mean": counts[:, k].mean(),
                        "max": counts[:, k].max()}[stat]
            assert row.ppp == pytest.approx(np.mean(values >= observed), rel=1e-12)


def test_predictive_replicates_are_top_coded_as_the_survey_was():
    """Observed known-group answers were top-coded at 30; replicates must be too, or the maximum always looks
    'outside' (observed 30 against replicated 41 and 50)."""
    counts = np.array([[30, 1], [2, 0], [0, 3], [30, 1]], dtype=float)
    rep = np.broadcast_to(counts, (40, 4, 2)).copy()
    rep[:, 0, 0] = 50.0  # the model predicts more than the cap for the known group
    plain, _ = predictive_checks(counts, ("known", "hidden"), lambda rng: rep.copy(), replicates=40, seed=1)
    capped, _ = predictive_checks(counts, ("known", "hidden"), lambda rng: rep.copy(), replicates=40, seed=1,
                                  caps=np.array([30.0, np.inf]))
    row = lambda table, group, stat: table[(table.group == group) & (table.statistic == stat)].iloc[0]  # noqa: E731
    assert row(plain, "known", "max").outside_interval
    assert not row(capped, "known", "max").outside_interval and row(capped, "known", "max").predicted == 30
    assert row(capped, "hidden", "max").predicted == row(plain, "hidden", "max").predicted


def test_one_definition_of_outside_drives_the_warnings():
    from hiddenpop.nsum.bayes.diagnostics import ppc_warnings

    ppc = pd.DataFrame({"group": ["a", "a", "b"], "statistic": ["max", "mean", "share_zero"],
                        "observed": [9.0, 1.0, 0.2], "lower": [1.0, 0.5, 0.1], "upper": [5.0, 2.0, 0.3],
                        "outside_interval": [True, False, False]})
    warnings = ppc_warnings(ppc)
    assert len(warnings) == int(ppc["outside_interval"].sum()) == 1 and "max of 'a'" in warnings[0]
