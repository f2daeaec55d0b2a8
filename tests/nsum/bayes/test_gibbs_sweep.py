"""The Gibbs sampler of the centred Poisson barrier models: the log degrees from their exact conditional
(``degree_update``) and every global parameter from its own (``sweep`` in :func:`build_model`), no NUTS.

Checked two ways: one sweep leaves the exact joint conditional of the globals given the degrees invariant (that
conditional computed here by quadrature from SciPy's negative binomial and Beta, not from the model's algebra),
and a Gibbs fit gives the posterior of the joint NUTS sampler on the same data.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from hiddenpop.mcmc.gibbs import sample_gibbs
from hiddenpop.mcmc.nuts import sample_nuts
from hiddenpop.nsum.bayes import BarrierModel, CombinedModel, Priors, prepare_data
from hiddenpop.nsum.bayes.maltiel import model_arrays
from samplers import assert_same_posterior

KNOWN = {"k1": 60_000.0, "k2": 30_000.0, "k3": 90_000.0, "k4": 15_000.0}
POPULATION = 1_000_000.0
GROUPS = ["k1", "k2", "h1", "k3", "k4"]


def _survey(n, seed, rho=0.05):
    rng = np.random.default_rng(seed)
    prob = np.array([KNOWN["k1"], KNOWN["k2"], 20_000.0, KNOWN["k3"], KNOWN["k4"]]) / POPULATION
    degree = np.exp(rng.normal(5.6, 0.5, n))
    r = 1 / rho - 1
    counts = rng.poisson(degree[:, None] * rng.gamma(prob * r, 1 / r, size=(n, len(prob))))
    return prepare_data(counts, KNOWN, POPULATION, groups=GROUPS), degree


def _log_nb(counts, prob, rho, degree):
    """sum_i log NB(y_i; shape p r, success r / (r + d_i)), r = 1 / rho - 1, for a grid of (prob, rho)."""
    r = 1.0 / rho - 1.0
    return stats.nbinom.logpmf(counts[None, :], (prob * r)[:, None], (r[:, None] / (r[:, None] + degree))).sum(1)


def _inverse_cdf(rng, log_p, grid, size):
    weights = np.exp(log_p - log_p.max())
    cdf = np.cumsum(weights) / weights.sum()
    return np.interp(rng.uniform(size=size), cdf, grid), (lambda x: np.interp(x, grid, cdf))


def _cell_cdf(weights):
    """The CDF at the grid points of draws spread uniformly over each grid point's cell: half of the point's
    own cell lies below it."""
    return (np.cumsum(weights) - 0.5 * weights) / weights.sum()


def _logit(share):
    return np.log(share) - np.log1p(-share)


@pytest.mark.parametrize("transmission", [True, False])
def test_sweep_leaves_the_exact_conditional_of_the_globals_invariant(transmission):
    import jax

    data, degree = _survey(40, 3)
    model = (CombinedModel(Priors(tau=(4.0, 4.0)), parameterisation="centred") if transmission
             else BarrierModel(parameterisation="centred"))
    density = model.numpyro_model(data)
    arrays = model_arrays(data, model.priors)
    counts = data.counts
    x = np.log(degree)
    rng = np.random.default_rng(8)
    copies = 6_000
    start, cdfs = {}, {}
    # mu and sigma: flat priors on (3, 8) and (0.25, 2), Normal log degrees; 2-D grid
    mus, sigmas = np.linspace(4.8, 6.4, 401), np.linspace(0.25, 1.2, 401)
    log_ms = stats.norm.logpdf(x[None, None, :], mus[:, None, None], sigmas[None, :, None]).sum(-1)
    flat = np.exp(log_ms - log_ms.max()).ravel()
    pick = rng.choice(flat.size, size=copies, p=flat / flat.sum())
    step_mu, step_sigma = mus[1] - mus[0], sigmas[1] - sigmas[0]
    mu = mus[pick // len(sigmas)] + rng.uniform(-0.5, 0.5, copies) * step_mu
    sigma = sigmas[pick % len(sigmas)] + rng.uniform(-0.5, 0.5, copies) * step_sigma
    start["mu"] = _logit((mu - 3.0) / 5.0)
    start["sigma"] = _logit((sigma - 0.25) / 1.75)
    grid_mu = np.exp(log_ms - log_ms.max()).sum(1)
    cdfs["mu"] = (mus, _cell_cdf(grid_mu))
    grid_sigma = np.exp(log_ms - log_ms.max()).sum(0)
    cdfs["sigma"] = (sigmas, _cell_cdf(grid_sigma))
    # each known group's rho: U(0, 1) prior, its own column of counts
    rho_grid = np.linspace(1e-4, 0.4, 4_001)
    rho = np.empty((copies, len(GROUPS)))
    for k in data.known_index:
        log_p = _log_nb(counts[:, k], np.full_like(rho_grid, data.known_sizes[k] / POPULATION), rho_grid, degree)
        rho[:, k], _ = _inverse_cdf(rng, log_p, rho_grid, copies)
        weights = np.exp(log_p - log_p.max())
        cdfs[f"rho{k}"] = (rho_grid, np.cumsum(weights) / weights.sum())
    # the hidden group: (log reported size, rho) on a 2-D grid; p(N) ~ 1/N on (L, U) and, with transmission,
    # tau ~ Beta(4, 4) on (w / U, min(1, w / L)): integrated over tau, the effective size w has density
    # proportional to (F(min(1, w / L)) - F(w / U)) / w, flat in log w times that bracket
    h = data.hidden_index[0]
    log_lo, log_hi = float(arrays["log_size_lo"][0]), float(arrays["log_size_hi"][0])
    log_sizes = np.linspace(np.log(3_000.0), min(np.log(120_000.0), log_hi - 1e-6), 601)
    rho_h = np.linspace(1e-4, 0.5, 601)
    log_joint = np.stack([_log_nb(counts[:, h], np.full_like(rho_h, np.exp(v) / POPULATION), rho_h, degree)
                          for v in log_sizes])
    if transmission:
        w = np.exp(log_sizes)
        bracket = stats.beta.cdf(np.minimum(1.0, w / np.exp(log_lo)), 4, 4) - stats.beta.cdf(w / np.exp(log_hi), 4, 4)
        log_joint += np.log(bracket)[:, None]
    flat = np.exp(log_joint - log_joint.max()).ravel()
    pick = rng.choice(flat.size, size=copies, p=flat / flat.sum())
    size = log_sizes[pick // len(rho_h)] + rng.uniform(-0.5, 0.5, copies) * (log_sizes[1] - log_sizes[0])
    rho[:, h] = rho_h[pick % len(rho_h)] + rng.uniform(-0.5, 0.5, copies) * (rho_h[1] - rho_h[0])
    marginal = np.exp(log_joint - log_joint.max()).sum(1)
    cdfs["size"] = (log_sizes, _cell_cdf(marginal))
    marginal = np.exp(log_joint - log_joint.max()).sum(0)
    cdfs[f"rho{h}"] = (rho_h, _cell_cdf(marginal))
    start["rho"] = _logit(rho)
    if transmission:
        lower, upper = np.exp(size - log_hi), np.minimum(1.0, np.exp(size - log_lo))
        f_lo, f_hi = stats.beta.cdf(lower, 4, 4), stats.beta.cdf(upper, 4, 4)
        tau = stats.beta.ppf(f_lo + rng.uniform(size=copies) * (f_hi - f_lo), 4, 4)
        start["log_effective_size_raw"] = np.log(log_hi - size)[:, None]
        start["tau_raw"] = _logit((tau - lower) / (upper - lower))[:, None]
    else:
        start["log_size_raw"] = _logit((size - log_lo) / (log_hi - log_lo))[:, None]
    with jax.enable_x64(True):
        sweep = jax.jit(jax.vmap(lambda key, z: density.sweep(key, {**z, "log_degree_raw": x}, arrays)))
        moved = sweep(jax.random.split(jax.random.PRNGKey(4), copies), start)
        moved = {k: np.asarray(v) for k, v in moved.items()}
    after = {
        "mu": 3.0 + 5.0 / (1.0 + np.exp(-moved["mu"])),
        "sigma": 0.25 + 1.75 / (1.0 + np.exp(-moved["sigma"])),
        **{f"rho{k}": 1.0 / (1.0 + np.exp(-moved["rho"][:, k])) for k in range(len(GROUPS))},
    }
    if transmission:
        after["size"] = log_hi - np.exp(moved["log_effective_size_raw"][:, 0])
        lower = np.exp(after["size"] - log_hi)
        upper = np.minimum(1.0, np.exp(after["size"] - log_lo))
        tau = lower + (upper - lower) / (1.0 + np.exp(-moved["tau_raw"][:, 0]))
        # tau's marginal: the Beta(4, 4) restricted to each draw's interval, mixed over w; transformed by the
        # restricted CDF it must be uniform
        f_lo, f_hi = stats.beta.cdf(lower, 4, 4), stats.beta.cdf(upper, 4, 4)
        assert stats.kstest((stats.beta.cdf(tau, 4, 4) - f_lo) / (f_hi - f_lo), "uniform").pvalue > 1e-3
        assert np.mean(moved["tau_raw"][:, 0] != start["tau_raw"][:, 0]) > 0.8
    else:
        after["size"] = log_lo + (log_hi - log_lo) / (1.0 + np.exp(-moved["log_size_raw"][:, 0]))
    for name, values in after.items():
        grid, cdf = cdfs[name]
        result = stats.kstest(values, lambda v, g=grid, c=cdf: np.interp(v, g, c))
        assert result.pvalue > 1e-3, (name, result)
    # the moves are not the identity: most copies get fresh values
    assert np.mean(moved["rho"] != start["rho"]) > 0.7
    assert np.mean(moved["mu"] != start["mu"]) > 0.9 and np.mean(moved["sigma"] != start["sigma"]) > 0.9


def test_gibbs_sampler_gives_the_joint_nuts_posterior():
    data, _ = _survey(120, 21)
    model = CombinedModel(Priors(tau=(10.0, 10.0)))
    assert model.centred(data)
    density = model.numpyro_model(data)
    assert density.sweep is not None
    arrays = model_arrays(data, model.priors)
    gibbs = sample_gibbs(density, arrays, chains=2, warmup=300, draws=3000, seed=3,
                         init_values=model.initial_values(data))
    joint = sample_nuts(replace(density, conditional=None, sweep=None), arrays, chains=2, warmup=300, draws=1500,
                        seed=3, init_values=model.initial_values(data))
    assert gibbs.settings["sampler"] == "gibbs" and gibbs.energy is None and not gibbs.diverging.any()
    assert "max_tree_depth" not in gibbs.settings  # no tree is built: no depth to report
    assert_same_posterior(gibbs, joint, (("size", 0), ("effective_size", 0), ("tau", 0), ("sigma", None), ("mu", None),
                        ("rho", 0), ("rho", 2), ("degree", 0)))


def test_gibbs_sweep_serves_unweighted_fits_without_a_recall_curve_only():
    data, _ = _survey(50, 2)
    assert BarrierModel(parameterisation="centred").numpyro_model(data).sweep is not None
    assert BarrierModel(parameterisation="centred", recall="loglinear").numpyro_model(data).sweep is None
    assert BarrierModel(parameterisation="noncentred").numpyro_model(data).sweep is None
    assert BarrierModel(likelihood="binomial").numpyro_model(data).sweep is None


def test_gibbs_sampler_is_reproducible():
    data, _ = _survey(60, 4)
    model = CombinedModel(Priors(tau=(10.0, 10.0)), parameterisation="centred")
    density = model.numpyro_model(data)
    arrays = model_arrays(data, model.priors)
    runs = [sample_gibbs(density, arrays, chains=2, warmup=20, draws=30, seed=9) for _ in range(2)]
    for name in ("degree", "rho", "size", "sigma", "tau"):
        assert np.array_equal(runs[0].samples[name], runs[1].samples[name]), name
