"""Weights: base weights, non-response cells (closed form), raking to margins (known solution), errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_commands import run_main
from hiddenpop.design.weights import compute_weights, rake, read_margins
from hiddenpop.errors import ConfigError, DataError


def test_base_weights_and_nonresponse_closed_form():
    sample = pd.DataFrame(
        {
            "pi": [0.1, 0.1, 0.2, 0.2, 0.05, 0.05],
            "responded": [1, 0, 1, 1, "yes", "no"],
            "cell": ["a", "a", "a", "a", "b", "b"],
        }
    )
    result = compute_weights(sample, probability="pi", respondent="responded", cells=["cell"])
    weights = result.tables["weights"]
    np.testing.assert_allclose(weights["base_weight"], [10, 10, 5, 5, 20, 20])
    # cell a: all weight 30, respondents 20 -> factor 1.5; cell b: 40 / 20 -> factor 2
    np.testing.assert_allclose(weights["final_weight"], [15, 0, 7.5, 7.5, 40, 0])
    cells = result.tables["nonresponse"].set_index("cell")
    assert cells.loc["a", "factor"] == pytest.approx(1.5) and cells.loc["b", "factor"] == pytest.approx(2.0)
    # total weight is preserved by the adjustment
    assert weights["final_weight"].sum() == pytest.approx(weights["base_weight"].sum())
    final = np.array([15, 7.5, 7.5, 40])
    assert result.estimate("kish_design_effect") == pytest.approx(
        len(final) * (final**2).sum() / final.sum() ** 2
    )
    assert any("2 non-respondent rows kept with final weight 0" in n for n in result.notes)


def test_raking_recovers_known_multiplicative_solution():
    # a 3 x 2 sample whose calibrated weights are known: w_ij = d_ij * a_i * b_j
    rng = np.random.default_rng(4)
    region = np.repeat(["north", "centre", "south"], 40)
    sex = np.tile(["f", "m"], 60)
    d = rng.uniform(50, 150, size=120)
    a = {"north": 1.3, "centre": 0.8, "south": 1.1}
    b = {"f": 0.9, "m": 1.25}
    truth = d * np.array([a[r] for r in region]) * np.array([b[s] for s in sex])
    margins = {
        "region": {r: float(truth[region == r].sum()) for r in a},
        "sex": {s: float(truth[sex == s].sum()) for s in b},
    }
    raked, history, converged = rake(
        d, {"region": region, "sex": sex}, margins, tolerance=1e-12, max_iter=500
    )
    assert converged
    # the raking solution is unique (minimum-discrimination); here it is exactly the multiplicative truth
    np.testing.assert_allclose(raked, truth, rtol=1e-8)
    assert history["max_relative_error"].iloc[-1] < 1e-12 < history["max_relative_error"].iloc[0]


def test_compute_weights_rakes_to_margins_and_reports(tmp_path):
    rng = np.random.default_rng(9)
    n = 300
    sample = pd.DataFrame(
        {
            "pi": rng.uniform(0.001, 0.004, n),
            "sex": rng.choice(["f", "m"], n, p=[0.6, 0.4]),
            "age": rng.choice(["18-34", "35-49", "50-65"], n),
            "responded": rng.choice([0, 1], n, p=[0.2, 0.8]),
            "stratum": rng.choice(["urban", "rural"], n),
        }
    )
    margins = read_margins(
        pd.DataFrame(
            {
                "variable": ["sex", "sex", "age", "age", "age"],
                "level": ["f", "m", "18-34", "35-49", "50-65"],
                "total": [60_000, 60_000, 50_000, 40_000, 30_000],
            }
        )
    )
    result = compute_weights(
        sample, probability="pi", respondent="responded", cells=["stratum"], margins=margins
    )
    assert result.diagnostics["raking_converged"]
    table = result.tables["margins"]
    np.testing.assert_allclose(table["after_raking"], table["target"], rtol=1e-7)
    assert result.estimate("sum_of_weights") == pytest.approx(120_000)
    weights = result.tables["weights"]
    assert (weights.loc[weights["responded"] == 0, "final_weight"] == 0).all()
    assert result.estimate("effective_sample_size") <= (sample["responded"] == 1).sum()
    assert len(result.tables["raking_history"]) == result.estimate("raking_iterations")


def test_inconsistent_margins_warn_and_do_not_converge():
    sample = pd.DataFrame({"w": [10.0, 10, 10, 10], "x": ["a", "a", "b", "b"], "y": ["c", "d", "c", "d"]})
    margins = {"x": {"a": 30.0, "b": 30.0}, "y": {"c": 20.0, "d": 20.0}}
    result = compute_weights(sample, base_weight="w", margins=margins, max_iter=50)
    assert not result.diagnostics["raking_converged"]
    assert any("grand totals differ" in w for w in result.warnings)
    assert any("did not converge" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("frame", "kwargs", "error", "message"),
    [
        (
            pd.DataFrame({"pi": [0.5, 1.5]}),
            {"probability": "pi"},
            DataError,
            "sample.csv, row 2, column 'pi': selection probability must be a number in (0, 1]",
        ),
        (
            pd.DataFrame({"pi": [0.5, 0.5], "r": [1, 2]}),
            {"probability": "pi", "respondent": "r"},
            DataError,
            "sample.csv, row 2, column 'r': response status must be 1/0",
        ),
        (
            pd.DataFrame({"pi": [0.5, 0.5], "r": [0, 0], "c": ["a", "a"]}),
            {"probability": "pi", "respondent": "r", "cells": ["c"]},
            DataError,
            "non-response cell(s) ['a'] have no respondents",
        ),
        (
            pd.DataFrame({"pi": [0.5, 0.5], "sex": ["f", "x"]}),
            {"probability": "pi", "margins": {"sex": {"f": 1.0, "m": 1.0}}},
            DataError,
            "sample.csv, row 2, column 'sex': level is not in the margins for 'sex'",
        ),
        (
            pd.DataFrame({"pi": [0.5, 0.5], "sex": ["f", "f"]}),
            {"probability": "pi", "margins": {"sex": {"f": 1.0, "m": 1.0}}},
            DataError,
            "raking: margin level(s) ['m'] have no respondents",
        ),
        (
            pd.DataFrame({"pi": [0.5]}),
            {"probability": "pi", "base_weight": "pi"},
            ConfigError,
            "give exactly one of --probability",
        ),
    ],
)
def test_weight_errors(frame, kwargs, error, message):
    with pytest.raises(error) as caught:
        compute_weights(frame, source="sample.csv", **kwargs)
    assert str(caught.value).startswith(message)


def test_margins_file_errors():
    with pytest.raises(
        DataError, match=r"margins.csv, row 2, column 'total': margin total must be a positive"
    ):
        read_margins(
            pd.DataFrame({"variable": ["a", "a"], "level": ["x", "y"], "total": [1, -1]}),
            source="margins.csv",
        )
    with pytest.raises(DataError, match=r"margins.csv, row 2, column 'level': duplicate level"):
        read_margins(
            pd.DataFrame({"variable": ["a", "a"], "level": ["x", "x"], "total": [1, 1]}), source="margins.csv"
        )


def test_weights_cli(tmp_path, capsys):
    sample = pd.DataFrame({"pi": [0.01, 0.02, 0.01, 0.02], "sex": ["f", "m", "m", "f"], "r": [1, 1, 1, 0]})
    sample.to_csv(tmp_path / "sample.csv", index=False)
    pd.DataFrame({"variable": ["sex", "sex"], "level": ["f", "m"], "total": [100, 120]}).to_csv(
        tmp_path / "margins.csv", index=False
    )
    code, out, err = run_main(
        capsys,
        "design",
        "weights",
        str(tmp_path / "sample.csv"),
        "--probability",
        "pi",
        "--respondent",
        "r",
        "--margins",
        str(tmp_path / "margins.csv"),
        "--format",
        "csv",
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].endswith("base_weight,nonresponse_weight,final_weight") and len(lines) == 5
    code, _, err = run_main(capsys, "design", "weights", str(tmp_path / "sample.csv"), "--probability", "sex")
    assert code == 2 and err.startswith(
        "error: sample.csv, row 1, column 'sex': selection probability must be"
    )
    code, _, err = run_main(
        capsys, "design", "weights", str(tmp_path / "sample.csv"), "--probability", "pi", "--cells", "sex"
    )
    assert code == 2 and "--cells needs --respondent" in err
