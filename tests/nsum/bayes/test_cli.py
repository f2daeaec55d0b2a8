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


@pytest.mark.slow
def test_kfold_and_residuals_from_the_command_line(run_cli, files, tmp_path):
    # wiring only (tiny chains): folds of whole PSUs from --psu, residuals by --residuals-by, the tables returned
    survey, known = files
    frame = pd.read_csv(survey)
    frame["cluster"] = [f"C{i // 10}" for i in range(len(frame))]
    frame["region"] = ["north" if i % 3 else "south" for i in range(len(frame))]
    frame.to_csv(survey, index=False)
    result = run_cli(
        "nsum", "bayes", survey, "--known", known, "--population", "1e6", "--model", "degree",
        "--hidden", "y_group3", "--chains", "2", "--warmup", "15", "--draws", "15", "--seed", "2",
        "--tau-grid", "1", "--kfold", "2", "--kfold-models", "degree,overdispersed", "--psu", "cluster",
        "--residuals-by", "region", "--format", "json", "--quiet",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    kfold = payload["tables"]["kfold"]
    assert {row["model"] for row in kfold} == {"degree", "overdispersed"}
    assert {"elpd_kfold", "se", "elpd_diff", "se_diff", "folds_passed"} <= set(kfold[0])
    assert max(row["elpd_diff"] for row in kfold) == 0.0
    assert [(row["model"], row["versus"]) for row in payload["tables"]["kfold_pairs"]] == [("degree", "overdispersed")]
    folds = payload["tables"]["kfold_folds"]
    assert sum(row["respondents"] for row in folds) == 2 * len(frame)
    assert sum(row["units"] for row in folds) == 2 * 10  # 10 clusters, each in one fold, for each model
    residuals = payload["tables"]["residuals"]
    assert {row["level"] for row in residuals} == {"north", "south"}
    assert {row["group"] for row in residuals} == {"y_group1", "y_group2", "y_group3", "y_group4"}
    assert sum(row["respondents"] for row in residuals if row["group"] == "y_group1") == len(frame)


@pytest.fixture
def covariate_files(tmp_path):
    """The example survey with its x (one column per group) and z covariates as survey columns; respondent 7 has no
    z1 answer in a second copy."""
    frame = (pd.read_csv(NSUM_DATA / "networkscaleup_example_ard.csv").drop(columns=["degree_true"])
             .merge(pd.read_csv(NSUM_DATA / "networkscaleup_example_x.csv"), on="respondent")
             .merge(pd.read_csv(NSUM_DATA / "networkscaleup_example_z.csv"), on="respondent"))
    frame.to_csv(tmp_path / "survey_cov.csv", index=False)
    frame.loc[6, "z1"] = None
    frame.to_csv(tmp_path / "survey_gap.csv", index=False)
    pd.DataFrame({"group": ["y_group1", "y_group2", "y_group4"], "size": [136961, 56322, 69238]}).to_csv(
        tmp_path / "known.csv", index=False)
    return tmp_path


def test_correlated_model_with_covariates_from_survey_columns(run_cli, covariate_files):
    """The covariate options reach the model (short chains: the structure is checked here, convergence in
    test_correlated_reference.py)."""
    result = run_cli(
        "nsum", "bayes", covariate_files / "survey_cov.csv", "--known", covariate_files / "known.csv",
        "--population", "1e6", "--model", "correlated", "--hidden", "y_group3", "--hidden", "y_group5",
        "--chains", "2", "--warmup", "50", "--draws", "50", "--x-columns", "y_group3=x_group3",
        "--x-columns", "y_group5=x_group5", "--z-global", "z1", "--z-subpop", "z3", "--scaling", "weighted",
        "--format", "json", "--quiet",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    quantities = {row["quantity"] for row in payload["estimates"]}
    assert {"y_group3", "y_group5", "sigma_delta", "alpha[y_group3]", "alpha[y_group5]", "beta_global[z1]",
            "beta_subpop[z3,y_group1]", "corr[y_group1,y_group3]"} <= quantities
    assert {"correlation", "covariate_effects", "degrees", "ppc"} <= set(payload["tables"])
    assert len(payload["tables"]["correlation"]) == 25
    assert payload["settings"]["scaling"] == "weighted"
    assert payload["settings"]["x_columns"] == {"y_group3": "x_group3", "y_group5": "x_group5"}
    assert any(note.startswith("no quantile residuals: the correlated model") for note in payload["notes"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kfold", "1"], "at least 2 folds"),
        (["--kfold", "2", "--kfold-models", "basic,degree"], "leave it out of kfold_models"),
        (["--kfold", "2", "--likelihood", "binomial"], "likelihood = 'poisson'"),
        (["--residuals-by", "no_such_column"], "residuals_by"),
        (["--kfold", "2", "--psu", "no_such_column"], "no_such_column"),
    ],
)
def test_kfold_and_residual_options_are_checked(run_cli, files, args, message):
    survey, known = files
    result = run_cli("nsum", "bayes", survey, "--known", known, "--population", "1e6", "--hidden", "y_group3",
                     "--chains", "1", "--warmup", "5", "--draws", "5", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def design_files(tmp_path, files):
    """The example survey with a design: 10 PSUs of equal size nested in 2 strata, weights varying by PSU."""
    survey, known = files
    frame = pd.read_csv(survey)
    psu = [i * 10 // len(frame) for i in range(len(frame))]
    frame["psu"] = psu
    frame["stratum"] = [p % 2 for p in psu]
    frame["weight"] = [1.0 + 0.25 * p for p in psu]
    frame.to_csv(tmp_path / "designed.csv", index=False)
    return tmp_path / "designed.csv", known


def test_design_columns_give_the_adjusted_weighted_fit(run_cli, design_files):
    survey, known = design_files
    base = ["nsum", "bayes", survey, "--known", known, "--population", "1e6", "--model", "basic", "--hidden",
            "y_group3", "--chains", "2", "--warmup", "200", "--draws", "300", "--seed", "5", "--tau-grid", "1",
            "--format", "json", "--quiet", "--weights", "weight", "--strata", "stratum", "--psu", "psu"]
    weighted = run_cli(*base)
    assert weighted.returncode == 0, weighted.stderr
    payload = json.loads(weighted.stdout)
    assert payload["settings"]["design"] == {"weighted": True, "strata": 2, "psu": 10, "respondents": 100,
                                             "kish_effective_size": payload["settings"]["design"]["kish_effective_size"],
                                             "adjusted": True}
    assert payload["settings"]["design"]["kish_effective_size"] < 100
    adjustment = payload["tables"]["design_adjustment"]
    assert [row["parameter"] for row in adjustment] == ["size[y_group3]"]
    assert any("Williams & Savitsky" in note for note in payload["notes"])
    plain = json.loads(run_cli(*base, "--unweighted").stdout)
    assert "design" not in plain["settings"] and "design_adjustment" not in plain["tables"]
    drawn = json.loads(run_cli(*base, "--no-design-adjust").stdout)
    assert drawn["settings"]["design"]["adjusted"] is False and "design_adjustment" not in drawn["tables"]
    # the pseudo-posterior and its adjustment share the draws' centre; only the spread changes
    rows = {name: next(r for r in p["estimates"] if r["quantity"] == "y_group3")
            for name, p in (("adjusted", payload), ("drawn", drawn))}
    assert rows["adjusted"]["mean"] == pytest.approx(rows["drawn"]["mean"], rel=0.02)
    ratio = adjustment[0]["sd_ratio"]
    width = {name: row["upper"] - row["lower"] for name, row in rows.items()}
    assert width["adjusted"] / width["drawn"] == pytest.approx(ratio, rel=0.15)


def test_overdispersed_model_refuses_a_weighted_survey(run_cli, design_files):
    survey, known = design_files
    result = run_cli("nsum", "bayes", survey, "--known", known, "--population", "1e6", "--model", "overdispersed",
                     "--hidden", "y_group3", "--weights", "weight", "--quiet")
    assert result.returncode == 2, result.stderr
    assert "overdispersed model does not take them" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "combined", "--z-global", "z1"], "z_global applies to the correlated and uncorrelated"),
        (["--model", "uncorrelated", "--scaling", "weighted"], "needs the correlated model"),
        (["--model", "correlated", "--x-columns", "x_group3"], "GROUP=COLUMN"),
        (["--model", "correlated", "--z-global", "nope"], "survey_gap.csv, column 'nope'"),
        (["--model", "correlated", "--z-global", "z1"], "survey_gap.csv, row 7, column 'z1'"),
        (["--model", "correlated", "--x-columns", "y_group9=x_group1"], "not a group of this model"),
    ],
)
def test_covariate_errors_exit_2_with_one_line(run_cli, covariate_files, args, message):
    result = run_cli("nsum", "bayes", covariate_files / "survey_gap.csv", "--known", covariate_files / "known.csv",
                     "--population", "1e6", "--hidden", "y_group3", "--quiet", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
