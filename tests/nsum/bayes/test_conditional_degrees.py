"""The split sampler of the Poisson barrier models: NUTS moves the global parameters while each log degree is
redrawn from its full conditional between transitions (``degree_update`` in :func:`build_model`).

Checked two ways: the update leaves the exact conditional invariant (the conditional computed here by quadrature
from SciPy's negative binomial, not from the model's algebra), and a fit with the split sampler gives the posterior
of the joint NUTS sampler (every parameter moved by NUTS) on the same data.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import stats

from hiddenpop.mcmc.nuts import sample_nuts
from hiddenpop.nsum.bayes import BarrierModel, CombinedModel, Priors, prepare_data
from hiddenpop.nsum.bayes.maltiel import model_arrays
from samplers import assert_same_posterior

KNOWN = {"k1": 60_000.0, "k2": 30_000.0, "k3": 90_000.0, "k4": 15_000.0}
POPULATION = 1_000_000.0


def _exact_conditional(row, mu, sigma, prob, rho, grid):
    """log p(x | globals, y) on ``grid`` up to a constant: N(x; mu, sigma) times, per group, the gamma-Poisson
    marginal NB(y_k; shape p_k r_k, success probability r_k / (r_k + e^x)), r_k = 1 / rho_k - 1."""
    r = 1.0 / rho - 1.0
    degree = np.exp(grid)[:, None]
    log_nb = stats.nbinom.logpmf(row[None, :], prob * r, r / (r + degree)).sum(axis=1)
    return stats.norm.logpdf(grid, mu, sigma) + log_nb


def test_degree_update_leaves_the_exact_conditional_invariant():
    import jax

    rows = np.array([[0, 0, 0, 0, 0], [9, 2, 14, 0, 3], [40, 25, 61, 12, 30]], dtype=float)
    copies = 10_000
    counts = np.repeat(rows, copies, axis=0)
    data = prepare_data(counts, KNOWN, POPULATION, groups=["k1", "k2", "k3", "k4", "h1"])
    model = CombinedModel(Priors(tau=(4.0, 4.0)), parameterisation="centred")
    density = model.numpyro_model(data)
    arrays = model_arrays(data, model.priors)
    z = {"mu": np.float64(0.3), "sigma": np.float64(-0.4), "rho": np.linspace(-3.5, -2.0, 5),
         "log_effective_size_raw": np.log(np.log(POPULATION) - np.log(np.array([25_000.0]))),
         "tau_raw": np.array([0.2])}
    with jax.enable_x64(True):
        values = jax.jit(density.constrain)({**z, "log_degree_raw": np.zeros(len(counts))}, arrays)
        values = {k: np.asarray(v) for k, v in values.items()}
        prob = np.r_[arrays["known_prob"], values["effective_size"] / POPULATION]
        grid = np.linspace(0.0, 10.0, 5_001)
        start = np.empty(len(counts))
        cdfs = []
        rng = np.random.default_rng(5)
        for j, row in enumerate(rows):
            log_p = _exact_conditional(row, values["mu"], values["sigma"], prob, values["rho"], grid)
            cdf = np.cumsum(np.exp(log_p - log_p.max()))
            cdf /= cdf[-1]
            cdfs.append(cdf)
            # start from the exact conditional (inverse CDF): one update must leave it unchanged
            start[j * copies:(j + 1) * copies] = np.interp(rng.uniform(size=copies), cdf, grid)
        update = jax.jit(density.conditional.update)
        moved = np.asarray(update(jax.random.PRNGKey(11), {**z, "log_degree_raw": start}, arrays))
    for j in range(len(rows)):
        block = slice(j * copies, (j + 1) * copies)
        after = moved[block]
        result = stats.kstest(after, lambda x, c=cdfs[j]: np.interp(x, grid, c))
        assert result.pvalue > 1e-3, (j, result)
        # the move is not the identity: most respondents get a fresh value
        assert np.mean(after != start[block]) > 0.8


def test_split_sampler_gives_the_joint_samplers_posterior():
    rng = np.random.default_rng(21)
    n = 120
    prob = np.array([*KNOWN.values(), 20_000.0]) / POPULATION
    degree = np.exp(rng.normal(5.6, 0.5, n))
    r = 1 / 0.05 - 1
    counts = rng.poisson(degree[:, None] * rng.gamma(prob * r, 1 / r, size=(n, len(prob))))
    data = prepare_data(counts, KNOWN, POPULATION, groups=["k1", "k2", "k3", "k4", "h1"])
    model = BarrierModel()
    assert model.centred(data)  # the split sampler serves the centred parameterisation
    density = model.numpyro_model(data)
    assert density.conditional is not None
    arrays = model_arrays(data, model.priors)
    options = {"chains": 2, "warmup": 300, "draws": 1500, "seed": 3, "init_values": model.initial_values(data)}
    split = sample_nuts(density, arrays, conditional=density.conditional, **options)
    joint = sample_nuts(replace(density, conditional=None), arrays, **options)
    assert split.settings["conditional_update"] == "log_degree_raw" and "conditional_update" not in joint.settings
    assert_same_posterior(split, joint, (("size", 0), ("sigma", None), ("mu", None), ("rho", 0), ("rho", 4), ("degree", 0)))


def test_split_sampler_serves_large_unweighted_centred_barrier_fits_only():
    from hiddenpop.nsum.bayes import DegreeModel
    from hiddenpop.nsum.bayes.maltiel import SPLIT_MIN_RESPONDENTS

    rng = np.random.default_rng(2)
    large = prepare_data(rng.poisson(20.0, size=(SPLIT_MIN_RESPONDENTS, 5)), KNOWN, POPULATION,
                         groups=["k1", "k2", "k3", "k4", "h1"])
    small = prepare_data(large.counts[:SPLIT_MIN_RESPONDENTS - 1], KNOWN, POPULATION,
                         groups=["k1", "k2", "k3", "k4", "h1"])
    model = BarrierModel()
    assert model.split_sampler(large) and not model.split_sampler(small)
    assert not model.split_sampler(large, weights=np.ones(SPLIT_MIN_RESPONDENTS))
    # only the centred Poisson barrier density offers the conditional update
    assert model.numpyro_model(large).conditional is not None
    assert BarrierModel(parameterisation="noncentred").numpyro_model(large).conditional is None
    assert BarrierModel(likelihood="binomial").numpyro_model(large).conditional is None
    assert DegreeModel().numpyro_model(large).conditional is None


def test_split_sampler_is_reproducible():
    rng = np.random.default_rng(4)
    counts = rng.poisson(rng.gamma(2.0, 30.0, size=(60, 1)) * np.array([[0.06, 0.03, 0.09, 0.015, 0.02]]))
    data = prepare_data(counts, KNOWN, POPULATION, groups=["k1", "k2", "k3", "k4", "h1"])
    density = BarrierModel(parameterisation="centred").numpyro_model(data)
    arrays = model_arrays(data, BarrierModel().priors)
    runs = [sample_nuts(density, arrays, chains=2, warmup=30, draws=30, seed=9, conditional=density.conditional)
            for _ in range(2)]
    for name in ("degree", "rho", "size", "sigma"):
        assert np.array_equal(runs[0].samples[name], runs[1].samples[name]), name
    # the degrees move between draws (the conditional update ran)
    assert np.mean(np.diff(runs[0].samples["degree"], axis=1) != 0) > 0.5
