"""One output contract: every spec-driven command's --format json validates against docs/estimates.schema.json,
and docs/cli.md shows each command's options exactly as its spec declares them."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from cli_commands import spec_commands
from hiddenpop.cli import main
from hiddenpop.results import Estimates
from hiddenpop.specs import options_markdown
from refdata import CAPTURE_DATA, NSUM_DATA

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXAMPLE_FILES = Path(__file__).resolve().parents[1] / "examples"
SCHEMA = json.loads((DOCS / "estimates.schema.json").read_text())
COMMANDS = spec_commands()
NSUM_SURVEY = NSUM_DATA / "networkreporting_example_survey.csv"
NSUM_KNOWN = NSUM_DATA / "networkreporting_example_knownpop.csv"

# A small real input per command; a new spec-driven command without an example fails test_every_command_has_one.
EXAMPLES = {
    "capture closed": [CAPTURE_DATA / "rcapture_hare.csv"],
    "capture ci": [CAPTURE_DATA / "rcapture_hare.csv", "--model", "Mth Chao (LB)"],
    "capture mse": [CAPTURE_DATA / "mse_Korea.csv", "--select", "stepwise"],
    "plan": ["--target", "0.5", "--hidden-size", "200000", "--sizes", "240", "--replicates", "10", "--bootstrap",
             "100"],
    "datasets list": [],
    "simulate study": ["--countries", "10", "--scenario", "right", "--bootstrap", "100", "--quiet"],
    "capture single": [CAPTURE_DATA / "singlercapture_netherlandsimmigrant.csv", "--count-column", "capture"],
    "capture open": [CAPTURE_DATA / "rcapture_duck.csv"],
    "capture coverage": [CAPTURE_DATA / "care1_HAV.csv", "--bootstrap", "20"],
    "nsum estimate": [NSUM_SURVEY, "--known", NSUM_KNOWN, "--population", "1e7", "--hidden", "clients",
                      "--topcode", "30", "--bootstrap", "100"],
    "cases summarize": [EXAMPLE_FILES / "cases" / "cases.csv", "--codebook", EXAMPLE_FILES / "cases" / "codebook.csv"],
    "compare referrals": [EXAMPLE_FILES / "compare" / "referrals.csv", "--base-file",
                          EXAMPLE_FILES / "compare" / "children.csv", "--count", "referrals", "--agency", "agency",
                          "--period", "year", "--focus", "PHL", "--base-label", "children", "--draws", "1000"],
    "design sample-size": ["--margin", "0.05", "--population", "100000"],
    "review size": ["--margin", "0.05", "--population", "81723"],
    "review sample": [EXAMPLE_FILES / "review" / "reviews.csv", "--unit", "unit", "--n", "20"],
    "review estimate": [EXAMPLE_FILES / "review" / "reviews.csv", "--positive", "livestream", "--negative",
                        "not livestream", "--unknown", "unknown", "--unit", "unit"],
    "nsum bayes": [NSUM_SURVEY, "--known", NSUM_KNOWN, "--population", "1e7", "--hidden", "clients", "--model",
                   "basic", "--chains", "1", "--warmup", "20", "--draws", "20", "--quiet"],
    "nsum consistency": [NSUM_SURVEY, "--known", NSUM_KNOWN, "--population", "1e7", "--topcode", "30"],
    "nsum visibility": [NSUM_DATA / "networkreporting_scratch_goc_survey.csv", "--aware", "total.aware", "--alters",
                        "total.alters", "--degree", "netsize.1.bss", "--coupon", "in.coupon", "--issued",
                        "out.coupon1", "--issued", "out.coupon2", "--issued", "out.coupon3", "--bootstrap", "100"],
    "nsum degree-ratio": [NSUM_SURVEY, "--known", NSUM_KNOWN, "--population", "1e7", "--topcode", "30",
                          "--reference", "incarcerated", "--reference", "man.divorced", "--reference", "woman.smoke",
                          "--reference", "widower"],
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict:
    """Inputs made on the spot for commands without a bundled example: a synthetic country and a report log."""
    import pandas as pd
    from typer.testing import CliRunner

    from hiddenpop.cli import app
    from hiddenpop.simulate.reports import simulate_reports

    folder = tmp_path_factory.mktemp("contract")
    pd.DataFrame({"region": [f"R{i % 3}" for i in range(30)], "municipality": [f"M{i:02d}" for i in range(30)],
                  "households": [200 + 37 * i for i in range(30)]}).to_csv(folder / "frame.csv", index=False)
    pd.DataFrame({"pi": [0.01, 0.02, 0.01, 0.02], "sex": ["f", "m", "m", "f"], "r": [1, 1, 1, 0]}).to_csv(
        folder / "sample.csv", index=False)
    done = CliRunner().invoke(app, ["smallarea", "synth", str(folder / "country"), "--rows", "12", "--cols", "12",
                                    "--surveyed", "40", "--seed", "3"])
    assert done.exit_code == 0, done.output
    simulate_reports(initial=300, arrival_rate=0.5, mean_stay_days=200, days=120, rate_median=0.05,
                     rate_sdlog=0.5, seed=2).write(folder / "log.csv")
    (folder / "key.txt").write_text("0123456789abcdef0123456789abcdef\n")
    rng = np.random.default_rng(4)  # a robust design: three primary periods of four occasions, p = 0.35
    present = np.repeat(np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 1, 1], [0, 0, 1]], dtype=bool), 60, axis=0)
    caught = np.repeat(present, 4, axis=1) & (rng.random((present.shape[0], 12)) < 0.35)
    pd.DataFrame(caught[caught.any(axis=1)].astype(int), columns=[f"o{j}" for j in range(12)]).to_csv(
        folder / "robust.csv", index=False)
    (folder / "grid.toml").write_text('[grid]\nseed = 5\nreplicates = 3\n[capture]\nestimators = ["M0"]\n'
                                      '[capture.baseline]\npopulation = 150\n')
    return {"country": folder / "country", "log": folder / "log.csv", "key": folder / "key.txt",
            "robust": folder / "robust.csv",
            "frame": folder / "frame.csv", "sample": folder / "sample.csv", "grid": folder / "grid.toml",
            "folder": folder}


#: Commands whose result is tables only (no estimate rows).
TABLES_ONLY = {"capture histories", "simulate grid", "datasets list"}


def _generated_args(path: str, made: dict) -> list:
    areas = [made["country"] / "areas.csv", "--id", "area_id", "--target", "direct_rate", "--target-se",
             "direct_se", "--region", "region", "--quiet"]
    log = [made["log"], "--id", "ip", "--time", "time", "--key-file", made["key"], "--quiet"]
    return {"smallarea pool": [*areas, "--draws", "200", "--no-cv"],
            "smallarea extrapolate": [*areas, "--repeats", "1", "--folds", "3", "--no-compare-pooled"],
            "capture events": [*log, "--step", "28D"],
            "capture histories": log,
            "capture robust": [made["robust"], "--periods", "4,4,4", "--model", "Mt"],
            "design select": [made["frame"], "--stratum", "region", "--psu", "municipality", "--size",
                              "households", "--psus", "6", "--take", "10"],
            "design weights": [made["sample"], "--probability", "pi", "--respondent", "r"],
            "simulate grid": [made["grid"], "--scheduler", "serial", "--out-dir", made["folder"] / "grid", "--quiet"],
            "smallarea direct": [made["country"] / "survey.csv", "--area", "area_id", "--hidden", "know_hidden",
                                 "--known-columns", "know_doctor,know_teacher,know_nurse", "--roster",
                                 "roster_doctor,roster_teacher,roster_nurse", "--household-size",
                                 "household_size", "--replicates", "100"]}[path]


GENERATED = {"simulate grid", "smallarea direct", "smallarea pool", "smallarea extrapolate", "capture events", "capture histories", "design select",
             "design weights", "capture robust"}


def _json_of(path: str, args: list) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([*path.split(), *map(str, args), "--format", "json"])
        except SystemExit as stop:
            assert stop.code in (0, None), err.getvalue()
    return json.loads(out.getvalue())


def test_the_schema_is_a_valid_schema_and_matches_estimates():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    import pandas as pd

    empty = Estimates(pd.DataFrame({"quantity": ["x"], "method": ["m"], "estimate": [float("inf")]})).to_dict()
    assert set(empty) == set(SCHEMA["required"]) == set(SCHEMA["properties"])
    jsonschema.validate(empty, SCHEMA)


def test_every_command_has_an_example():
    assert {path for path, _, _ in COMMANDS} <= set(EXAMPLES) | GENERATED


@pytest.mark.parametrize("path", sorted(set(EXAMPLES) | GENERATED))
def test_json_output_validates_against_the_schema(path, generated):
    args = EXAMPLES[path] if path in EXAMPLES else _generated_args(path, generated)
    payload = _json_of(path, args)
    jsonschema.validate(payload, SCHEMA)
    if path in TABLES_ONLY:
        assert payload["tables"] and all(payload["tables"].values()), f"{path} printed empty tables"
    else:
        assert payload["estimates"], f"{path} printed no estimates"


def test_a_broken_output_is_refused_by_the_schema():
    payload = _json_of("capture ci", EXAMPLES["capture ci"])
    del payload["estimates"][0]["lower"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload, SCHEMA)


@pytest.mark.parametrize(("path", "spec"), [(p, s) for p, _, s in COMMANDS], ids=[p for p, _, _ in COMMANDS])
def test_docs_show_each_commands_options_as_declared(path, spec):
    text = (DOCS / "cli.md").read_text()
    section = f"### `hiddenpop {path}`\n\n{options_markdown(spec)}"
    assert section in text, f"docs/cli.md: regenerate the options table of {path} from {spec.__name__}"
