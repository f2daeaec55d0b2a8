"""The nsum CLI: JSON schema, csv/table output, ignored columns, formats, reproducibility."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hiddenpop.data import read_ard
from hiddenpop.simulate.ard import CHILD_BAND_SIZES, OCCUPATION_SIZES, simulate_national_ard
from refdata import NSUM_DATA

SURVEY = NSUM_DATA / "networkreporting_example_survey.csv"
KNOWN = NSUM_DATA / "networkreporting_example_knownpop.csv"
CORE = {"quantity", "method", "estimate", "se", "lower", "upper", "level"}


def test_estimate_json_schema(capsys):
    from hiddenpop.cli import main

    args = [
        "nsum", "estimate", SURVEY, "--known", KNOWN, "--population", "10000000",
        "--hidden", "clients", "--hidden", "sex.workers", "--weights", "indweight", "--strata", "region",
        "--psu", "cluster", "--topcode", "30", "--method", "mle", "--method", "pimle",
        "--bootstrap", "200", "--seed", "7", "--sum", "both=clients+sex.workers",
        "--ratio", "clients_per_sw=clients/sex.workers", "--prevalence", "clients_per_1000=clients:1e7:1000",
        "--format", "json",
    ]
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    assert info.value.code in (0, None)
    stdout = capsys.readouterr().out
    payload = json.loads(stdout)
    assert {"estimates", "tables", "diagnostics", "warnings"} <= set(payload)
    quantities = {(r["quantity"], r["method"]) for r in payload["estimates"]}
    for q in ("clients", "sex.workers", "both", "clients_per_sw", "clients_per_1000"):
        assert (q, "mle") in quantities and (q, "pimle") in quantities
    for row in payload["estimates"]:
        assert CORE <= set(row)
        assert row["lower"] <= row["estimate"] <= row["upper"]
        assert row["level"] == 0.95
    (degrees,) = payload["tables"]["degrees"]
    assert {"min", "q1", "median", "mean", "q3", "max", "sum", "zero_degree_respondents"} <= set(degrees)
    assert degrees["zero_degree_respondents"] == 234
    assert payload["diagnostics"]["degrees"]["known_population"]["zero_degree_respondents"] == 234
    assert payload["diagnostics"]["bootstrap"]["replicates"] == 200
    assert payload["diagnostics"]["bootstrap"]["psus"] == 130
    assert "consistency" in payload["diagnostics"]
    assert isinstance(payload["warnings"], list)
    # survey columns with no role are listed in the notes, by name
    ignored = next(n for n in payload["notes"] if n.startswith("ignored"))
    for column in ("sex", "age.cat", "civil.servant", "judge", "treatedfortb", "died", "msm", "idu", "id"):
        assert column in ignored
    assert payload["seed"] == 7
    # no identifiers in the output
    assert "1.1.1" not in stdout


def test_consistency_command_and_error_exit(run_cli, tmp_path, capsys):
    from hiddenpop.cli import main

    out = tmp_path / "check.json"
    with pytest.raises(SystemExit) as info:
        main(["nsum", "consistency", str(SURVEY), "--known", str(KNOWN), "--population", "1e7", "--topcode", "30",
              "--format", "json", "--out", str(out)])
    assert info.value.code in (0, None)
    payload = json.loads(out.read_text())
    assert len(payload["estimates"]) == 22
    assert {"are", "mae", "rmse", "flagged"} <= set(payload["diagnostics"])
    assert "priest" in payload["diagnostics"]["flagged"]
    bad = run_cli("nsum", "consistency", SURVEY, "--known", KNOWN, "--population", "1e5")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: networkreporting_example_knownpop.csv, row 5, column 'size'")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_csv_and_table_output_same_seed_same_numbers(capsys):
    from hiddenpop.cli import main

    args = ["nsum", "estimate", str(SURVEY), "--known", str(KNOWN), "--population", "1e7", "--hidden", "clients",
            "--psu", "cluster", "--strata", "region", "--bootstrap", "150", "--seed", "3"]
    outputs = []
    for _ in range(2):
        with pytest.raises(SystemExit) as info:
            main([*args, "--format", "csv"])
        assert info.value.code in (0, None)
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines()[0].startswith("quantity,method,estimate,se,lower,upper,level")
    with pytest.raises(SystemExit):
        main([*args, "--format", "table"])
    text = capsys.readouterr().out
    assert "clients" in text and "Notes:" in text


def test_summation_degree_from_cli(tmp_path, capsys):
    """Study 2 victims: child network by summation, scaled up to the child population."""
    from hiddenpop.cli import main

    sim = simulate_national_ard(seed=11)
    survey = tmp_path / "study2.csv"
    sim.frame.to_csv(survey, index=False)
    known = tmp_path / "known.csv"
    pd.DataFrame({"group": list(OCCUPATION_SIZES), "size": list(OCCUPATION_SIZES.values())}).to_csv(
        known, index=False
    )
    children = sum(CHILD_BAND_SIZES.values())
    with pytest.raises(SystemExit):
        main(["nsum", "estimate", str(survey), "--known", str(known), "--population", str(children),
              "--hidden", "child_nonlive", "--hidden", "child_livestream",
              "--degree-columns", ",".join(CHILD_BAND_SIZES), "--weights", "weight", "--strata", "stratum",
              "--psu", "psu", "--bootstrap", "200", "--seed", "1", "--sum", "victims=child_nonlive+child_livestream",
              "--prevalence", f"victims_per_100_children=victims:{children}:100", "--format", "json"])
    payload = json.loads(capsys.readouterr().out)
    rows = {r["quantity"]: r for r in payload["estimates"]}
    truth = sim.truth.hidden_sizes
    assert rows["child_nonlive"]["degree_method"] == "summation"
    victims = truth["child_nonlive"] + truth["child_livestream"]
    assert rows["victims"]["lower"] < victims < rows["victims"]["upper"]
    assert rows["victims_per_100_children"]["estimate"] == pytest.approx(
        rows["victims"]["estimate"] / children * 100, rel=1e-12
    )


@pytest.mark.parametrize("suffix", [".parquet", ".xlsx", ".sav", ".dta"])
def test_ard_from_every_file_format(tmp_path, suffix):
    frame = pd.read_csv(SURVEY).rename(columns=lambda c: c.replace(".", "_"))
    frame = frame[["cluster", "region", "indweight", "widower", "teacher", "priest", "clients"]].head(300)
    known = {"widower": 36147, "teacher": 47745, "priest": 1004}
    path = tmp_path / f"survey{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        import pyreadstat

        writer = pyreadstat.write_sav if suffix == ".sav" else pyreadstat.write_dta
        writer(frame, str(path))
    ard = read_ard(path, known=known, population=1e7, hidden=["clients"], weights="indweight", strata="region",
                   psu="cluster")
    reference = read_ard(SURVEY, known={k.replace("_", "."): v for k, v in known.items()}, population=1e7,
                         hidden=["clients"], weights="indweight")
    assert ard.n == 300 and ard.source == path.name
    assert ard.counts["clients"].sum() == reference.counts["clients"].head(300).sum()
