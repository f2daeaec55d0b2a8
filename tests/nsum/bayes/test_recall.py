"""The recall curve in the Bayesian models (:mod:`hiddenpop.nsum.bayes.recall`).

* closed form: the log density with the curve equals the Poisson log-likelihood (scipy, cell by cell) with every
  group's probability multiplied by exp(b (log p_k - c)), plus the priors;
* simulation: one survey with a known recall curve, fitted with and without the curve. The full coverage study
  (100 surveys each way, batched) is ``benchmarks/nsum_recall.py``; its figures are in docs/methods/nsum-bayes.md.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hiddenpop.errors import ConfigError
from hiddenpop.nsum.bayes import BasicModel, DegreeModel, prepare_data
from hiddenpop.nsum.bayes import recall as recall_curve
from hiddenpop.nsum.bayes.analyses import bayes_analysis, check_spec
from hiddenpop.nsum.bayes.maltiel import model_arrays
from hiddenpop.nsum.specs import BayesSpec

POPULATION = 1e6


def test_log_density_with_the_curve_is_the_poisson_likelihood_of_the_bent_probabilities():
    import jax

    frame = pd.DataFrame({"a": [5, 3, 0, 7], "b": [2, 1, 0, 3], "c": [9, 4, 2, 8], "h": [1, 4, 0, 2]})
    known = {"a": 50_000.0, "b": 20_000.0, "c": 120_000.0}
    data = prepare_data(frame, known, POPULATION)
    model = DegreeModel(likelihood="poisson", parameterisation="centred", recall="loglinear")
    z = {"mu": 0.3, "sigma": -0.2, "log_degree_raw": np.random.default_rng(2).normal(4, 0.5, 4),
         "log_size_raw": np.array([0.1]), "recall_slope": -0.7}
    arrays = {**model_arrays(data, model.priors),
              **recall_curve.arrays(data.known_sizes[data.known_index], POPULATION)}
    with jax.enable_x64(True):
        value = float(jax.jit(model.numpyro_model(data).log_density)(
            {k: jax.numpy.asarray(v, dtype=float) for k, v in z.items()},
            {k: jax.numpy.asarray(v) for k, v in arrays.items()}))

    def logistic(u):
        return 1 / (1 + math.exp(-u))

    def jac(u):
        return math.log(logistic(u)) + math.log(1 - logistic(u))

    mu, sigma = 3 + 5 * logistic(0.3), 0.25 + 1.75 * logistic(-0.2)
    slope = -0.9 + 1.8 * logistic(-0.7)
    low, high = math.log(4.0), math.log(POPULATION)  # size bounds: largest single report of h, population
    size = math.exp(low + (high - low) * logistic(0.1))
    share = np.array([*known.values(), size]) / POPULATION
    centre = np.mean(np.log(share[:3]))
    bent = share * np.exp(slope * (np.log(share) - centre))
    log_d = z["log_degree_raw"]
    loglik = stats.poisson.logpmf(data.counts, np.exp(log_d)[:, None] * bent[None, :]).sum()
    prior = jac(0.3) + jac(-0.2) + jac(0.1) + jac(-0.7) + stats.norm.logpdf(log_d, mu, sigma).sum()
    assert value == pytest.approx(loglik + prior, rel=1e-10)


def test_models_that_cannot_take_the_curve_refuse_it_before_sampling():
    with pytest.raises(ConfigError, match="the basic model cannot take a recall curve"):
        check_spec(BayesSpec(model="basic", recall="loglinear"))
    with pytest.raises(ConfigError, match="the overdispersed model cannot take a recall curve"):
        check_spec(BayesSpec(model="overdispersed", recall="loglinear"))
    with pytest.raises(ConfigError, match="recall must be one of"):
        DegreeModel(recall="spline")
    assert BasicModel().recall is False


KNOWN = {f"k{i}": s for i, s in enumerate([1e3, 2e3, 4e3, 7e3, 1.2e4, 2e4, 3e4, 5e4])}
HIDDEN_SIZE = 3e3
SLOPE = -0.35


def _simulate(seed: int, respondents: int) -> pd.DataFrame:
    """Log-normal degrees, Poisson reports with share p (p / 0.01)^SLOPE (as benchmarks/nsum_recall.py)."""
    rng = np.random.default_rng(seed)
    degree = np.exp(rng.normal(np.log(300), 0.5, respondents))
    columns = {}
    for group, size in {**KNOWN, "h": HIDDEN_SIZE}.items():
        share = size / POPULATION
        columns[group] = rng.poisson(degree * share * (share / 0.01) ** SLOPE)
    return pd.DataFrame(columns)


@pytest.mark.slow
def test_the_curve_recovers_a_known_recall_slope_and_the_uncorrected_model_misses():
    frame = _simulate(11, 150)
    fits = {}
    for recall in ("loglinear", "none"):
        spec = BayesSpec(model="degree", recall=recall, chains=2, warmup=300, draws=300, seed=5, tau_grid=())
        fits[recall] = bayes_analysis(frame, spec, known_sizes=KNOWN, population=POPULATION, hidden=["h"])
    corrected = fits["loglinear"].get("h")
    slope = fits["loglinear"].get("recall_slope")
    assert corrected["lower"] <= HIDDEN_SIZE <= corrected["upper"]
    assert slope["lower"] <= SLOPE <= slope["upper"] < 0
    assert max(fits["loglinear"].table["rhat"].dropna()) < 1.05
    assert fits["loglinear"].settings["recall"] == "loglinear"
    # without the curve the small hidden group is over-reported and its interval lies above the truth
    assert fits["none"].get("h")["lower"] > HIDDEN_SIZE
    assert "recall_slope" not in set(fits["none"].table["quantity"])
    # the hidden group (3,000) lies inside the known sizes (1,000 to 50,000): no extrapolation warning
    assert not [w for w in fits["loglinear"].warnings if "extrapolated" in w]
    assert len(fits["loglinear"].tables["ppc"]) > 0


def test_a_hidden_group_beyond_the_known_sizes_is_warned_about():
    draws = {"h": np.array([300.0, 400.0, 500.0]), "g": np.array([2e3, 3e3, 4e3])}
    (warning,) = recall_curve.extrapolation_warnings(draws, np.array(list(KNOWN.values())))
    assert "'h'" in warning and "posterior median 400" in warning and "extrapolated" in warning
