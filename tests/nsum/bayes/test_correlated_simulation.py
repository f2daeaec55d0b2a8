"""Simulation with known truth for the correlated model (Laga, Bao & Niu 2023): a known correlation structure.

50 surveys are simulated from Laga et al.'s model (RESPONDENTS respondents, 3 known groups and 1 hidden group,
N = 1e6, log degrees with sd SIGMA_DELTA, reporting biases with SD 0.6 whose correlations are TRUE_CORR) and fitted
in ONE batched NUTS call (independent chains, step sizes and mass matrices per replicate). The model is fitted in its
identified form (the covariance Sigma of a respondent's log rates) and reports sigma_delta, the bias sds and Omega as
a projection of Sigma (``decompose``); their truth is the same projection of the true Sigma (TRUE_SPLIT), because
the data determine Sigma only. Checks: the 95% intervals of the hidden size, of the 10 entries of Sigma, of the 6
correlations and of the 5 scales cover their truth in 88-100% of the replicates (pooled; for each correlation at 84%
or more: 50 replicates leave a binomial sd of 3 points), and R-hat <= 1.01 for all of them. The 50-replicate study is
opt-in (HIDDENPOP_BAYES_SIMULATION=1); the suite runs the same design with SMALL_REPLICATES replicates.

With the "all" scaling the true scaling constant is log of the mean degree, so the true size is N p_k exactly.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from hiddenpop.mcmc.nuts import quantity_row, sample_nuts
from hiddenpop.nsum.bayes import CorrelatedModel, prepare_data
from hiddenpop.nsum.bayes.correlated import decompose, laga_arrays

REPLICATES = 50
SMALL_REPLICATES = 6
#: chain lengths: with 300 warm-up and 400 draws per chain every one of the 50 fits left sigma_delta, the bias sds
#: or the correlations above R-hat 1.01 (up to 1.27; sizes mostly below), with 0-1 divergences: the common part of a
#: respondent's biases trades off against their degree, so these mix slowly
WARMUP = 600
DRAWS = 1000
MAX_TREE_DEPTH = 6
RESPONDENTS = 120
POPULATION = 1_000_000.0
KNOWN = {"k1": 50_000.0, "k2": 30_000.0, "k3": 80_000.0}
HIDDEN = {"h1": 40_000.0}
LOG_MEAN_DEGREE = 5.0
SIGMA_DELTA = 0.5
BIAS_SD = 0.6
TRUE_CORR = np.array([
    [1.0, 0.6, 0.3, 0.5],
    [0.6, 1.0, 0.2, 0.4],
    [0.3, 0.2, 1.0, -0.3],
    [0.5, 0.4, -0.3, 1.0],
])
#: The covariance of a respondent's log rates across groups, Sigma = sigma_delta^2 11' + D Omega D (D = the log-scale
#: bias sds): what the counts identify, and what the model samples. The model reports sigma_delta, the bias sds and
#: Omega by the convention of ``decompose`` (degree part = the respondent's mean log-rate effect over all groups), so
#: their truth is the projection of TRUE_COV, not the generating SIGMA_DELTA / BIAS_SD / TRUE_CORR: the data cannot
#: tell those apart from any other split of the same Sigma.
TRUE_COV = SIGMA_DELTA**2 + np.log1p(BIAS_SD**2) * TRUE_CORR
TRUE_SPLIT = decompose(TRUE_COV)

def simulate(seed: int) -> np.ndarray:
    """y_ik ~ Poisson(exp(rho_k + sigma_delta delta_i) b_ik), b_ik = exp(mu + tau e_ik), e_i ~ N(0, TRUE_CORR)."""
    rng = np.random.default_rng(seed)
    prob = np.array([*KNOWN.values(), *HIDDEN.values()]) / POPULATION
    rho = np.log(prob) + LOG_MEAN_DEGREE
    delta = rng.standard_normal(RESPONDENTS)
    e = rng.standard_normal((RESPONDENTS, len(prob))) @ np.linalg.cholesky(TRUE_CORR).T
    tau2 = np.log1p(BIAS_SD**2)
    rate = np.exp(rho[None, :] + SIGMA_DELTA * delta[:, None] - tau2 / 2 + np.sqrt(tau2) * e)
    return rng.poisson(rate)


def run_study(replicates: int, seed0: int = 2600, warmup: int = WARMUP, draws: int = DRAWS,
              max_tree_depth: int = MAX_TREE_DEPTH):
    """Fit every replicate in one batched call; returns coverage per quantity, max R-hat and the seconds taken."""
    groups = [*KNOWN, *HIDDEN]
    model = CorrelatedModel()
    datasets = [prepare_data(simulate(seed0 + r), KNOWN, POPULATION, groups=groups) for r in range(replicates)]
    designs = [model.covariates_for(d, None) for d in datasets]
    stacked = {k: np.stack([laga_arrays(d, c)[k] for d, c in zip(datasets, designs, strict=True)])
               for k in laga_arrays(datasets[0], designs[0])}
    inits = {k: np.stack([model.initial_values(d)[k] for d in datasets]) for k in model.initial_values(datasets[0])}
    # one compiled density for every replicate: the parameterisation the first one picks (at ~25 reports each,
    # all pick the centred log degrees)
    assert len({model.centred(d) for d in datasets}) == 1
    start = time.perf_counter()
    fits = sample_nuts(model.density(datasets[0], designs[0]), stacked, chains=4, warmup=warmup, draws=draws,
                       seed=11, batched=True, init_values=inits, max_tree_depth=max_tree_depth)
    seconds = time.perf_counter() - start
    pairs = [(a, b) for a in range(len(groups)) for b in range(a + 1, len(groups))]
    covered: dict[str, list[bool]] = {"h1": [], **{f"corr{a}{b}": [] for a, b in pairs},
                                      **{f"cov{a}{b}": [] for a in range(len(groups)) for b in range(a, len(groups))},
                                      **{f"scale{k}": [] for k in range(len(groups) + 1)}}
    rhats: dict[str, list[float]] = {"size": [], "corr": [], "scales": [], "cov": []}
    divergences = 0

    def check(key: str, kind: str, values: np.ndarray, truth: float) -> None:
        row = quantity_row(key, "sim", values)
        covered[key].append(row["lower"] <= truth <= row["upper"])
        rhats[kind].append(row["rhat"])

    for fit, data in zip(fits, datasets, strict=True):
        model.add_sizes(data, fit)
        check("h1", "size", fit.samples["size"][..., 0], HIDDEN["h1"])
        for a, b in pairs:
            check(f"corr{a}{b}", "corr", fit.samples["corr"][..., a, b], TRUE_SPLIT["corr"][a, b])
        for a in range(len(groups)):
            for b in range(a, len(groups)):
                check(f"cov{a}{b}", "cov", fit.samples["cov"][..., a, b], TRUE_COV[a, b])
        check("scale0", "scales", fit.samples["sigma_delta"], TRUE_SPLIT["sigma_delta"])
        for k in range(len(groups)):
            check(f"scale{k + 1}", "scales", fit.samples["bias_sd"][..., k], TRUE_SPLIT["bias_sd"][k])
        divergences += int(fit.diverging.sum())
    coverage = {k: float(np.mean(v)) for k, v in covered.items()}
    return coverage, {k: float(max(v)) for k, v in rhats.items()}, divergences, seconds


def _report(label: str, replicates: int, coverage: dict[str, float], rhat: dict[str, float], divergences: int,
            seconds: float) -> float:
    pooled = float(np.mean([v for k, v in coverage.items() if k.startswith("corr")]))
    # shown with -s: the study's figures
    print(f"{label}, {replicates} replicates: size coverage {coverage['h1']:.2f}, correlation coverage pooled "
          f"{pooled:.3f}, per entry {coverage}, max R-hat {rhat}, divergences {divergences}, "
          f"{seconds:.0f} s sampling")
    return pooled


FULL = pytest.mark.skipif(os.environ.get("HIDDENPOP_BAYES_SIMULATION") != "1",
                          reason="slow recovery study (200 vectorised chains of ~600 parameters; about half an hour "
                                 "on 2 shared cores); opt in with HIDDENPOP_BAYES_SIMULATION=1")
def _correlation_misses(coverage: dict[str, float], replicates: int) -> int:
    return round(sum(1 - v for k, v in coverage.items() if k.startswith("corr")) * replicates)


@pytest.fixture(scope="module")
def full_study():
    return run_study(REPLICATES)


@pytest.fixture(scope="module")
def small_study():
    return run_study(SMALL_REPLICATES)


@pytest.mark.slow
@FULL
def test_correlated_model_recovers_the_size(full_study):
    coverage, rhat, divergences, seconds = full_study
    _report("correlated model", REPLICATES, coverage, rhat, divergences, seconds)
    assert 0.88 <= coverage["h1"] <= 1.0, coverage
    assert rhat["size"] <= 1.01, rhat


@pytest.mark.slow
@FULL
def test_correlated_model_recovers_and_converges_on_the_correlations(full_study):
    coverage, rhat, _, _ = full_study
    pooled = float(np.mean([v for k, v in coverage.items() if k.startswith("corr")]))
    assert 0.88 <= pooled <= 1.0, coverage
    assert all(v >= 0.84 for k, v in coverage.items() if k.startswith("corr")), coverage
    scales = float(np.mean([v for k, v in coverage.items() if k.startswith("scale")]))
    assert 0.88 <= scales <= 1.0, coverage
    assert max(rhat["corr"], rhat["scales"]) <= 1.01, rhat


@pytest.mark.slow
def test_correlated_model_small_fixed_seed_recovery(small_study):
    """The suite's version: SMALL_REPLICATES replicates of the same design. Too few for a coverage rate, so the
    floor is what a calibrated interval misses with small probability: at most one of the sizes (expected 0.3 at 95%);
    the correlations and Sigma are checked below."""
    coverage, rhat, divergences, seconds = small_study
    _report("correlated model (suite version)", SMALL_REPLICATES, coverage, rhat, divergences, seconds)
    missed_sizes = round((1 - coverage["h1"]) * SMALL_REPLICATES)
    assert missed_sizes <= 1, coverage
    assert rhat["size"] <= 1.01, rhat


@pytest.mark.slow
def test_correlated_model_small_study_recovers_and_converges_on_the_correlations(small_study):
    """At most 3 of the 6 x SMALL_REPLICATES correlation intervals miss (expected 1.8 at 95%), and R-hat <= 1.01."""
    coverage, rhat, _, _ = small_study
    assert _correlation_misses(coverage, SMALL_REPLICATES) <= 3, coverage
    assert max(rhat["corr"], rhat["scales"]) <= 1.01, rhat


def _covariance_misses(coverage: dict[str, float], replicates: int) -> int:
    return round(sum(1 - v for k, v in coverage.items() if k.startswith("cov")) * replicates)


@pytest.mark.slow
@FULL
def test_correlated_model_covers_the_identified_covariance(full_study):
    coverage, rhat, _, _ = full_study
    pooled = float(np.mean([v for k, v in coverage.items() if k.startswith("cov")]))
    assert 0.88 <= pooled <= 1.0, coverage
    assert rhat["cov"] <= 1.01, rhat


@pytest.mark.slow
def test_correlated_model_small_study_covers_the_identified_covariance(small_study):
    """At most 5 of the 10 x SMALL_REPLICATES covariance intervals miss (expected 3 at 95%)."""
    coverage, _, _, _ = small_study
    assert _covariance_misses(coverage, SMALL_REPLICATES) <= 5, coverage


@pytest.mark.slow
def test_correlated_model_small_study_converges_on_the_identified_covariance(small_study):
    """Sigma is sampled directly (S R S), so no ridge is left for it to crawl along."""
    _, rhat, _, _ = small_study
    assert rhat["cov"] <= 1.01, rhat
