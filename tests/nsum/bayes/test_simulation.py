"""Simulation with known truth: every model recovers its own generating truth.

Each model is fitted to 50 simulated surveys (100 respondents, 6 known groups + 1 hidden group, N = 1e6) in ONE
batched NUTS call (independent chains, step sizes and mass matrices per replicate). We check the 95% interval
coverage of the hidden size (88-100%), R-hat <= 1.01 and the median's bias on the log scale.
For the transmission model the truth tau is drawn from the prior the model is given, stratified over its
quantiles (so coverage is the calibration the prior promises, estimated with less noise); the combined model also
runs on barrier data with tau = 0.5 and a correct (centred) prior, as the issue asks.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import stats

from hiddenpop.mcmc.nuts import quantity_row, sample_nuts
from hiddenpop.nsum.bayes import MODELS, Priors, prepare_data
from hiddenpop.nsum.bayes.maltiel import model_arrays, stack_arrays
from hiddenpop.simulate.ard import simulate_ard_arrays

REPLICATES = 50
RESPONDENTS = 100
POPULATION = 1_000_000.0
KNOWN = {"k1": 60_000.0, "k2": 30_000.0, "k3": 90_000.0, "k4": 15_000.0, "k5": 45_000.0, "k6": 8_000.0}
HIDDEN = {"h1": 20_000.0}
TAU_PRIOR = (20.0, 20.0)


def _opt_in(reason: str):
    return pytest.mark.skipif(
        os.environ.get("HIDDENPOP_BAYES_SIMULATION") != "1",
        reason=f"slow recovery study: {reason}; opt in with HIDDENPOP_BAYES_SIMULATION=1",
    )


def _binomial_opt_in():
    return _opt_in("64-bit log-gamma on every cell of the binomial (R package) likelihood makes it several minutes "
                   "per model")


def _simulate_poisson(seed: int, model_name: str, tau: float | None) -> np.ndarray:
    """The Poisson family's own generating model: log d_i ~ N(4.5, 0.6); with barriers the rate multiplier
    g_ik ~ Gamma(shape p_k r, rate r), r = 1/rho - 1 (mean p_k, rho = 0.05); transmission multiplies the hidden
    group's rate by tau; y_ik ~ Poisson(d_i g_ik)."""
    rng = np.random.default_rng(seed)
    degree = np.exp(rng.normal(4.5, 0.6, RESPONDENTS))
    prob = np.array([*KNOWN.values(), *HIDDEN.values()]) / POPULATION
    if model_name in ("barrier", "combined"):
        r = 1 / 0.05 - 1
        rate = rng.gamma(prob * r, 1 / r, size=(RESPONDENTS, len(prob)))
    else:
        rate = np.broadcast_to(prob, (RESPONDENTS, len(prob))).copy()
    if tau is not None:
        rate[:, -1] *= tau
    return rng.poisson(degree[:, None] * rate)


def _simulate_nb(seed: int, omega: float = 2.0) -> np.ndarray:
    """Zheng et al. generating model: y_ik ~ NB(mean d_i p_k, variance omega * mean)."""
    rng = np.random.default_rng(seed)
    degree = np.exp(rng.normal(4.5, 0.6, RESPONDENTS))
    prob = np.array([*KNOWN.values(), *HIDDEN.values()]) / POPULATION
    mean = degree[:, None] * prob[None, :]
    shape = mean / (omega - 1.0)
    return rng.poisson(rng.gamma(shape, omega - 1.0))


def _tau_truths(rng: np.random.Generator) -> np.ndarray:
    """The transmission study's true tau per replicate, drawn from the prior the model is given, stratified:
    replicate r takes a uniform prior quantile from its own 1/REPLICATES slice of (0, 1), slices in shuffled order.

    The coverage these replicates estimate is the same prior average as with independent draws (each quantile is
    still uniform once the slice is random), but with less Monte Carlo noise. The prior (sd 0.08 around 0.5) makes
    most of each interval's width, so an independent draw that puts several truths in the prior's outer 1% decides
    the study by itself: the seed base 4000 did so with three truths at the 0.5% quantile.
    """
    u = (rng.permutation(REPLICATES) + rng.uniform(size=REPLICATES)) / REPLICATES
    return stats.beta.ppf(u, *TAU_PRIOR)


def _replicates(model_name: str, seed0: int, likelihood: str):
    """Simulated data sets and their true hidden size."""
    rng = np.random.default_rng(seed0)
    tau_truths = _tau_truths(rng)
    datasets, truths = [], []
    groups = [*KNOWN, *HIDDEN]
    for r in range(REPLICATES):
        seed = seed0 + r
        if model_name == "transmission":
            tau = float(tau_truths[r])
        elif model_name == "combined":
            tau = 0.5
        else:
            tau = None
        if model_name == "overdispersed":
            counts = _simulate_nb(seed)
        elif likelihood == "poisson":
            counts = _simulate_poisson(seed, model_name, tau)
        else:
            barrier = 0.05 if model_name in ("barrier", "combined") else None
            sim = simulate_ard_arrays(KNOWN, HIDDEN, POPULATION, n_respondents=RESPONDENTS, degree_mu=4.5,
                                      degree_sigma=0.6, barrier_rho=barrier, transmission=tau, seed=seed)
            counts, groups = sim.counts, sim.groups
        truths.append(HIDDEN["h1"])
        datasets.append(prepare_data(counts, KNOWN, POPULATION, groups=groups))
    return datasets, np.array(truths)


CASES = [
    *[pytest.param(name, "poisson", id=f"{name}-poisson")
      for name in ("basic", "degree", "barrier", "transmission", "combined")],
    pytest.param("overdispersed", "poisson", id="overdispersed", marks=_opt_in(
        "the Zheng likelihood evaluates two log-gamma functions per cell for 200 vectorised chains (over 13 minutes "
        "on 2 shared cores)")),
    *[pytest.param(name, "binomial", id=f"{name}-binomial", marks=_binomial_opt_in())
      for name in ("basic", "degree", "barrier", "transmission", "combined")],
]


@pytest.mark.slow
@pytest.mark.parametrize(("model_name", "likelihood"), CASES)
def test_recovers_generating_truth(model_name, likelihood):
    priors = Priors(tau=TAU_PRIOR) if model_name in ("transmission", "combined") else Priors()
    model = (MODELS[model_name]() if model_name == "overdispersed"
             else MODELS[model_name](priors, likelihood=likelihood))
    datasets, truth = _replicates(model_name, 1000 * (1 + list(MODELS).index(model_name)), likelihood)
    if model_name != "overdispersed":
        # one compiled density serves every replicate: fix the parameterisation "auto" picks for the first one
        # (production picks it per data set)
        choice = "centred" if model.centred(datasets[0]) else "noncentred"
        model = MODELS[model_name](priors, likelihood=likelihood, parameterisation=choice)
    arrays = []
    for data in datasets:
        fixed, _ = model.fixed_degree(data)
        arrays.append(
            {"y": data.counts, "known_prob": data.known_sizes[data.known_index] / POPULATION,
             "population": np.float64(POPULATION)} if model_name == "overdispersed"
            else model_arrays(data, model.priors, fixed_degree=fixed)
        )
    stacked = stack_arrays(arrays) if model_name != "overdispersed" else {
        k: np.stack([a[k] for a in arrays]) for k in arrays[0]}
    inits = {k: np.stack([np.asarray(model.initial_values(d)[k], dtype=float) for d in datasets])
             for k in model.initial_values(datasets[0])}
    # the basic model has one parameter per replicate and short NUTS trajectories (ESS ~ 0.4 per draw): it
    # gets more (cheap) draws so that R-hat's own Monte Carlo noise stays below 0.01 in all 50 replicates.
    # Binomial combined: sigma (degree log-sd) sits near its prior bound 0.25 in some replicates and trades
    # off against the largest group's rho, so its bulk ESS fell to 400-450 of 3,200 draws and R-hat to 1.012
    # with agreeing chains; 1,600 draws gave the five worst replicates R-hat <= 1.003 (docs/methods/nsum-bayes.md)
    if model_name == "basic":
        draws = 1200
    elif (model_name, likelihood) == ("combined", "binomial"):
        draws = 1600
    else:
        draws = 800
    # max_tree_depth 6 (63 leapfrog steps) is far above the 15-31 these fits use; a lower cap keeps the batched
    # sampler's per-step bookkeeping (checkpoints per tree level, for 200 vectorised chains) small
    fits = sample_nuts(model.numpyro_model(datasets[0]), stacked, chains=4, warmup=300, draws=draws, seed=7,
                       batched=True, init_values=inits, max_tree_depth=6)
    covered, rhats, log_errors = [], [], []
    for fit, data, true_size in zip(fits, datasets, truth, strict=True):
        model.add_sizes(data, fit)
        row = quantity_row("h1", "sim", fit.samples["size"][..., 0])
        covered.append(row["lower"] <= true_size <= row["upper"])
        rhats.append(row["rhat"])
        log_errors.append(np.log(row["estimate"] / true_size))
        for name in ("mu", "sigma"):
            if name in fit.samples:
                rhats.append(quantity_row(name, "sim", fit.samples[name])["rhat"])
    coverage = float(np.mean(covered))
    print(f"{model_name} ({likelihood}): coverage {coverage:.2f}, max R-hat {max(rhats):.4f}, "
          f"mean log error {np.mean(log_errors):+.3f}")  # shown with -s: the study's figures for notes
    assert 0.88 <= coverage <= 1.0, (model_name, coverage)
    assert max(rhats) <= 1.01, (model_name, max(rhats))
    # the posterior median is close to unbiased on the log scale (Monte Carlo sd of this mean ~ 0.02-0.05)
    assert abs(np.mean(log_errors)) < 0.12, (model_name, np.mean(log_errors))


def test_tau_truths_take_one_quantile_per_prior_slice():
    """The stratified truths are draws from the prior with exactly one in each 1/REPLICATES slice of its CDF."""
    truths = _tau_truths(np.random.default_rng(4000))
    slices = np.floor(stats.beta.cdf(truths, *TAU_PRIOR) * REPLICATES).astype(int)
    assert sorted(slices) == list(range(REPLICATES))
    assert not np.array_equal(slices, np.arange(REPLICATES))  # shuffled, not in quantile order
    assert np.all((truths > 0) & (truths < 1))
