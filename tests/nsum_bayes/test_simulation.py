"""Simulation with known truth: every model recovers its own generating truth.

Each model is fitted to 50 simulated surveys (100 respondents, 3 known groups + 1 hidden group, N = 1e6) in ONE
batched NUTS call (independent chains, step sizes and mass matrices per replicate). We check the 95% interval
coverage of the hidden size (88-100%), R-hat <= 1.01 and the median's bias on the log scale.
For the transmission models the truth tau is drawn from the prior the model is given (so coverage is the
calibration the prior promises); the combined model also runs on barrier data with tau = 0.5 and a correct
(centred) prior, as the issue asks.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from hiddenpop.nsum.bayes import MODELS, Priors, prepare_data
from hiddenpop.nsum.bayes._common import quantity_row, sample_nuts
from hiddenpop.nsum.bayes._maltiel import model_arrays
from hiddenpop.simulate.ard import simulate_ard_arrays

REPLICATES = 50
RESPONDENTS = 100
POPULATION = 1_000_000.0
KNOWN = {"k1": 60_000.0, "k2": 30_000.0, "k3": 90_000.0}
HIDDEN = {"h1": 20_000.0}
TAU_PRIOR = (20.0, 20.0)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("HIDDENPOP_BAYES_SIMULATION") != "1",
        reason="Bayesian recovery study (minutes of NUTS per model); only the basic model has been verified on the "
        "project machine so far, so it is opt-in: HIDDENPOP_BAYES_SIMULATION=1 pytest tests/nsum_bayes",
    ),
]


def _simulate_nb(seed: int, omega: float = 2.0) -> np.ndarray:
    """Zheng et al. generating model: y_ik ~ NB(mean d_i p_k, variance omega * mean)."""
    rng = np.random.default_rng(seed)
    degree = np.exp(rng.normal(4.5, 0.6, RESPONDENTS))
    prob = np.array([*KNOWN.values(), *HIDDEN.values()]) / POPULATION
    mean = degree[:, None] * prob[None, :]
    shape = mean / (omega - 1.0)
    return rng.poisson(rng.gamma(shape, omega - 1.0))


def _replicates(model_name: str, seed0: int):
    """Simulated data sets and their true hidden size / tau."""
    rng = np.random.default_rng(seed0)
    datasets, truths = [], []
    for r in range(REPLICATES):
        seed = seed0 + r
        if model_name == "overdispersed":
            counts = _simulate_nb(seed)
            groups = [*KNOWN, *HIDDEN]
            truths.append(HIDDEN["h1"])
        else:
            barrier = 0.05 if model_name in ("barrier", "combined") else None
            if model_name == "transmission":
                tau = float(rng.beta(*TAU_PRIOR))
            elif model_name == "combined":
                tau = 0.5
            else:
                tau = None
            sim = simulate_ard_arrays(KNOWN, HIDDEN, POPULATION, n_respondents=RESPONDENTS, degree_mu=4.5,
                                      degree_sigma=0.6, barrier_rho=barrier, transmission=tau, seed=seed)
            counts, groups = sim.counts, sim.groups
            truths.append(HIDDEN["h1"])
        datasets.append(prepare_data(counts, KNOWN, POPULATION, groups=groups))
    return datasets, np.array(truths)


@pytest.mark.parametrize("model_name", ["basic", "degree", "barrier", "transmission", "combined", "overdispersed"])
def test_recovers_generating_truth(model_name):
    priors = Priors(tau=TAU_PRIOR) if model_name in ("transmission", "combined") else Priors()
    model = MODELS[model_name]() if model_name == "overdispersed" else MODELS[model_name](priors)
    datasets, truth = _replicates(model_name, seed0=1000 * (1 + list(MODELS).index(model_name)))
    arrays = []
    for data in datasets:
        fixed, _ = model.fixed_degree(data)
        arrays.append(
            {"y": data.counts, "known_prob": data.known_sizes[data.known_index] / POPULATION,
             "population": np.float64(POPULATION)} if model_name == "overdispersed"
            else model_arrays(data, model.priors, fixed_degree=fixed)
        )
    stacked = {k: np.stack([a[k] for a in arrays]) for k in arrays[0]}
    inits = {k: np.stack([np.asarray(model.initial_values(d)[k], dtype=float) for d in datasets])
             for k in model.initial_values(datasets[0])}
    # the basic model has one parameter per replicate and short NUTS trajectories (ESS ~ 0.4 per draw): it
    # gets more (cheap) draws so that R-hat's own Monte Carlo noise stays below 0.01 in all 50 replicates
    draws = 1200 if model_name == "basic" else 600
    fits = sample_nuts(model.numpyro_model(datasets[0]), stacked, chains=4, warmup=300, draws=draws, seed=7,
                       batched=True, init_values=inits)
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
    assert 0.88 <= coverage <= 1.0, (model_name, coverage)
    assert max(rhats) <= 1.01, (model_name, max(rhats))
    # the posterior median is close to unbiased on the log scale (Monte Carlo sd of this mean ~ 0.02-0.05)
    assert abs(np.mean(log_errors)) < 0.12, (model_name, np.mean(log_errors))
