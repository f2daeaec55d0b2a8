"""Reference reproductions on networkscaleup's example ARD (known groups 1, 2, 4; N = 1e6).

The R packages' numbers come from the issue; they are stored beside this file (not in the code).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hiddenpop.nsum.bayes import MODELS
from refdata import NSUM_DATA

REFERENCE = json.loads((Path(__file__).parent / "reference_networkscaleup_example.json").read_text())


@pytest.fixture(scope="module")
def example():
    frame = pd.read_csv(NSUM_DATA / REFERENCE["data"])
    groups = pd.read_csv(NSUM_DATA / "networkscaleup_example_groups.csv")
    sizes = dict(zip(groups["column"], groups["size_true"], strict=True))
    known = {g: float(sizes[g]) for g in REFERENCE["known_groups"]}
    counts = frame[[c for c in frame.columns if c.startswith("y_group")]]
    return counts, known


@pytest.mark.parametrize(("model", "likelihood"), [
    ("degree", "poisson"), ("barrier", "poisson"), ("degree", "binomial"), ("barrier", "binomial"),
    ("overdispersed", None),
])
def test_group3_posterior_matches_r_package(example, model, likelihood):
    """The R packages use the binomial; the default Poisson limit must land in the same place on these data."""
    counts, known = example
    expected = REFERENCE["expected"][model]
    instance = MODELS[model]() if likelihood is None else MODELS[model](likelihood=likelihood)
    fit = instance.fit(counts, known, REFERENCE["population"], chains=4, warmup=500, draws=500, seed=3,
                              ppc_draws=100)
    row = fit.get(REFERENCE["group"])
    assert abs(row["mean"] - expected["mean"]) <= 0.5 * expected["sd"], (row["mean"], expected)
    # the posterior spread is the package's to within a quarter (Monte Carlo error on both sides)
    assert 0.75 * expected["sd"] <= row["sd"] <= 1.25 * expected["sd"], (row["sd"], expected)
    assert row["rhat"] <= 1.01
    assert row["lower"] < row["estimate"] < row["upper"]
    assert fit.diagnostics["divergences"] == 0
    idata = fit.extras["idata"]
    assert "size" in idata.posterior
    assert set(fit.tables) >= {"ppc", "rootogram"}
    assert set(fit.tables["ppc"]["group"]) == set(counts.columns)
