"""``hiddenpop nsum bayes``: JSON schema, gate warnings on a deliberately bad fit, and clear errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from refdata import NSUM_DATA


@pytest.fixture
def files(tmp_path):
    frame = pd.read_csv(NSUM_DATA / "networkscaleup_example_ard.csv")
    frame[["respondent", "y_group1", "y_group2", "y_group3", "y_group4", "y_group5"]].to_csv(
        tmp_path / "survey.csv", index=False)
    pd.DataFrame({"group": ["y_group1", "y_group2", "y_group4"], "size": [136961, 56322, 69238]}).to_csv(
        tmp_path / "known.csv", index=False)
    return tmp_path / "survey.csv", tmp_path / "known.csv"


def test_bad_fit_is_returned_with_gate_warnings_and_json_schema(run_cli, files, tmp_path):
    survey, known = files
    posterior = tmp_path / "post.nc"
    result = run_cli(
        "nsum", "bayes", survey, "--known", known, "--population", "1e6", "--model", "basic",
        "--hidden", "y_group3", "--hidden", "y_group5", "--chains", "2", "--warmup", "4", "--draws", "16",
        "--seed", "5", "--sum", "both=y_group3+y_group5", "--ratio", "r=y_group3/y_group5", "--tau-grid", "0.5,1",
        "--save-posterior", posterior, "--format", "json", "--quiet",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) >= {"estimates", "diagnostics", "warnings", "notes", "settings", "seed", "tables",
                            "provenance"}
    rows = {row["quantity"]: row for row in payload["estimates"]}
    assert {"y_group3", "y_group5", "both", "r"} <= set(rows)
    for column in ("estimate", "lower", "upper", "mean", "sd", "rhat", "ess_bulk", "ess_tail", "passed_gates"):
        assert column in rows["y_group3"]
    assert rows["y_group3"]["lower"] <= rows["y_group3"]["estimate"] <= rows["y_group3"]["upper"]
    # 16 draws x 2 chains cannot reach 200 effective draws: the gates must fail loudly, not silently
    assert payload["diagnostics"]["passed"] is False
    assert rows["y_group3"]["passed_gates"] is False
    assert any(w.startswith("convergence gate failed") for w in payload["warnings"])
    assert "failed the convergence gates" in result.stderr
    assert {"ppc", "rootogram"} <= set(payload["tables"])
    # a failed fit gets no sensitivity table (as in a study run), and says why
    assert "tau_sensitivity" not in payload["tables"]
    assert any("sensitivity" in note and "gates" in note for note in payload["notes"])
    assert payload["settings"]["tau_grid"] == [0.5, 1.0]
    assert payload["seed"] == 5
    assert posterior.exists()
    import arviz as az

    idata = az.from_netcdf(posterior)
    assert idata.posterior["size"].shape[:2] == (2, 16)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tau-prior", "x,1"], "--tau-prior"),
        (["--save-posterior", "post.txt"], ".nc"),
        (["--population", "-5"], "population"),
        (["--tau-prior", "2,8", "--model", "degree"], "transmission and combined"),
        (["--ratio", "r=y_group3"], "--ratio"),
        (["--ratio", "r=y_group3/y_group5/y_group3"], "one '/'"),
        (["--tau-prior", "2,8", "--transmission-rate", "beta(2, 8)"], "keep transmission_rate"),
        (["--transmission-rate", "beta(2)"], "--transmission-rate"),
        (["--transmission-rate", "0.5"], "declare it as beta(a, b)"),
        (["--recall", "loglinear", "--model", "basic"], "the basic model cannot take a recall curve"),
        (["--recall", "cubic"], "--recall"),
    ],
)
def test_errors_exit_2_with_one_line(run_cli, files, args, message):
    survey, known = files
    base = ["nsum", "bayes", survey, "--known", known, "--hidden", "y_group3", "--quiet"]
    if "--population" not in args:
        base += ["--population", "1e6"]
    result = run_cli(*base, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_survey_file(run_cli, files, tmp_path):
    _, known = files
    result = run_cli("nsum", "bayes", tmp_path / "nope.csv", "--known", known, "--population", "1e6", "--quiet")
    assert result.returncode == 2
    assert "nope.csv" in result.stderr
