"""The correlated and uncorrelated models on networkscaleup's example ARD (known groups 1, 2, 4; N = 1e6).

No R numbers exist for these models on these data: neither reference_networkscaleup_example.json (degree, barrier
and overdispersed only) nor /work/shared/fixtures holds a correlatedStan or uncorrelated fit, so none is compared
here. The fits are compared with the truth shipped with the data (size_true: 36,246 and 20,174), with the R
packages' overdispersed posterior for group 3 (the nearest published model: the same scaling, negative-binomial
rather than log-normal over-dispersion), and with each other.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiddenpop.nsum.bayes import CorrelatedModel, UncorrelatedModel
from refdata import NSUM_DATA

REFERENCE = json.loads((Path(__file__).parent / "reference_networkscaleup_example.json").read_text())
HIDDEN = ("y_group3", "y_group5")


@pytest.fixture(scope="module")
def example():
    frame = pd.read_csv(NSUM_DATA / REFERENCE["data"])
    groups = pd.read_csv(NSUM_DATA / "networkscaleup_example_groups.csv")
    truth = dict(zip(groups["column"], groups["size_true"], strict=True))
    known = {g: float(truth[g]) for g in REFERENCE["known_groups"]}
    counts = frame[[c for c in frame.columns if c.startswith("y_group")]]
    covariates = (pd.read_csv(NSUM_DATA / "networkscaleup_example_x.csv")
                  .merge(pd.read_csv(NSUM_DATA / "networkscaleup_example_z.csv"), on="respondent"))
    return counts, known, truth, covariates


@pytest.fixture(scope="module")
def fits(example):
    counts, known, _, _ = example
    options = dict(chains=4, warmup=1000, draws=1000, seed=3, ppc_draws=100)
    return {model.name: model.fit(counts, known, REFERENCE["population"], **options)
            for model in (CorrelatedModel(), UncorrelatedModel())}


@pytest.mark.parametrize("name", ["correlated", "uncorrelated"])
def test_converged_fit_covers_the_true_sizes(fits, example, name):
    _, _, truth, _ = example
    fit = fits[name]
    assert fit.diagnostics["passed"], fit.warnings
    assert fit.diagnostics["max_rhat"] <= 1.01
    assert fit.diagnostics["divergences"] == 0
    for group in HIDDEN:
        row = fit.get(group)
        print(f"{name} {group}: median {row['estimate']:.0f} [{row['lower']:.0f}, {row['upper']:.0f}], mean "
              f"{row['mean']:.0f}, sd {row['sd']:.0f}; truth {truth[group]}")  # shown with -s
        assert row["lower"] <= truth[group] <= row["upper"], (group, row)
    assert set(fit.tables) >= {"ppc", "rootogram", "degrees"}


def test_group3_beside_the_r_overdispersed_posterior_and_the_uncorrelated_model(fits):
    """The data were simulated without reporting bias (the basic binomial model), so the bias terms are small and
    both models must agree with each other and with the R overdispersed fit, to within half a posterior sd."""
    reference = REFERENCE["expected"]["overdispersed"]
    correlated, uncorrelated = fits["correlated"].get("y_group3"), fits["uncorrelated"].get("y_group3")
    print(f"group 3 posterior mean: correlated {correlated['mean']:.0f} (sd {correlated['sd']:.0f}), uncorrelated "
          f"{uncorrelated['mean']:.0f} (sd {uncorrelated['sd']:.0f}), R overdispersed {reference['mean']} "
          f"(sd {reference['sd']})")
    assert abs(correlated["mean"] - uncorrelated["mean"]) <= 0.5 * uncorrelated["sd"]
    assert abs(correlated["mean"] - reference["mean"]) <= 0.5 * reference["sd"]
    for group in HIDDEN:
        row_c, row_u = fits["correlated"].get(group), fits["uncorrelated"].get(group)
        assert abs(row_c["mean"] - row_u["mean"]) <= 0.5 * row_u["sd"], group


def test_correlation_table_is_a_symmetric_matrix_with_prior_width_intervals(fits):
    """Without bias in the data the correlations are learnt from almost nothing: every interval contains 0, and the
    table holds the full symmetric matrix with a unit diagonal."""
    table = fits["correlated"].tables["correlation"]
    groups = fits["correlated"].settings["known_groups"] + fits["correlated"].settings["hidden_groups"]
    assert len(table) == len(groups) ** 2
    matrix = table.pivot(index="group", columns="with_group", values="estimate")
    assert (matrix - matrix.T).abs().to_numpy().max() < 1e-12
    diagonal = table[table["group"] == table["with_group"]]
    assert np.allclose(diagonal[["estimate", "lower", "upper"]].to_numpy(), 1.0)
    off = table[table["group"] != table["with_group"]]
    assert (off["lower"] < 0).all() and (off["upper"] > 0).all()
    assert (fits["correlated"].table.query("parameter == 'correlation'")["rhat"] <= 1.01).all()


def test_covariate_model_on_the_example(example):
    """x (Likert answers per group) and z as the package's man-page example: z[, 1:2] global, z[, 3:4] per group.
    Converged, the truth covered, and one effect row per covariate and group. The per-group z effects share their
    mean with the respondents' degrees (only delta's N(0, 1) prior tells them apart), so they mix slowly: 500 draws
    per chain left beta_subpop at R-hat 1.03 (seed 5); 1,000 give <= 1.01."""
    counts, known, truth, covariates = example
    model = CorrelatedModel(x={f"y_group{k}": f"x_group{k}" for k in range(1, 6)}, z_global=("z1", "z2"),
                            z_subpop=("z3", "z4"))
    fit = model.fit(counts, known, REFERENCE["population"], covariates=covariates, chains=4, warmup=1000, draws=1000,
                    seed=3, ppc_draws=50)
    assert fit.diagnostics["max_rhat"] <= 1.01 and fit.diagnostics["divergences"] == 0, fit.diagnostics
    for group in HIDDEN:
        row = fit.get(group)
        assert row["lower"] <= truth[group] <= row["upper"]
    effects = fit.tables["covariate_effects"]
    assert len(effects) == 5 + 2 + 2 * 5
    assert set(effects["parameter"]) == {"alpha", "beta_global", "beta_subpop"}
    # the saved posterior: sizes by hidden group, bias sds by group, effects unlabelled (never a group's name)
    posterior = fit.extras["idata"].posterior
    assert posterior["size"].dims[-1] == "hidden_group" and posterior["bias_sd"].dims[-1] == "group"
    assert "hidden_group" not in posterior["beta_global"].dims and posterior["beta_subpop"].ndim == 4
