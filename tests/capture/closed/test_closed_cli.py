"""``hiddenpop capture closed`` and ``hiddenpop capture ci``."""

from __future__ import annotations

import json

import pytest

from refdata import CAPTURE_DATA, load_fixture


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process (same main() as the console script); returns (exit code, stdout, stderr)."""
    from hiddenpop.cli import main

    def _run(*args):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as stop:
            code = stop.code or 0
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


def test_closed_json_schema_and_numbers(cli):
    code, out, err = cli("capture", "closed", CAPTURE_DATA / "rcapture_hare.csv", "--format", "json", "--rcapture")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["diagnostics"]["observed"] == 68 and payload["diagnostics"]["occasions"] == 6
    fixture = load_fixture("capture_hare_closed.json")
    models = payload["tables"]["models"]
    assert [m["model"] for m in models] == [m["model"] for m in fixture["models"]]
    assert [row["method"] for row in payload["estimates"]] == [m["model"] for m in fixture["models"]]
    for key in ("f", "u", "v", "n"):
        assert [row[key] for row in payload["tables"]["descriptive"]] == fixture["descriptive"][key]
    for got, expected in zip(models, fixture["models"], strict=True):
        assert set(got) >= {"model", "abundance", "stderr", "deviance", "df", "aic", "bic", "warnings"}
        assert abs(got["abundance"] - expected["abundance"]) <= 1e-6 * expected["abundance"]
        assert abs(got["stderr"] - expected["stderr"]) <= 1e-6 * expected["stderr"]


def test_closed_frequency_input_with_infinite_t(cli):
    code, out, err = cli("capture", "closed", CAPTURE_DATA / "rcapture_ill.csv", "--occasions", "inf", "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["diagnostics"]["occasions"] == "inf" and payload["diagnostics"]["observed"] == 1880
    chao = next(m for m in payload["tables"]["models"] if m["model"] == "Mh Chao (LB)")
    assert abs(chao["abundance"] - (1880 + 1645**2 / 366)) < 1e-6


def test_ci_json(cli):
    code, out, err = cli("capture", "ci", CAPTURE_DATA / "rcapture_hare.csv", "--model", "M0", "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    expected = next(r for r in load_fixture("capture_hare_extras.json")["profile_likelihood_ci_closedpCI"] if r["model"] == "M0")
    profile = next(r for r in payload["estimates"] if r["interval"] == "profile likelihood")
    assert profile["method"] == "M0" and profile["level"] == 0.95
    assert abs(profile["lower"] - expected["lower95"]) < 0.01 and abs(profile["upper"] - expected["upper95"]) < 0.01


def test_errors_are_one_line_exit_2(run_cli, cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,0\n0,0\n")
    result = run_cli("capture", "closed", bad)  # one real subprocess: the console behaviour end to end
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "row 2" in result.stderr
    code, _, err = cli("capture", "ci", CAPTURE_DATA / "rcapture_hare.csv", "--model", "Mq")
    assert code == 2 and "unknown closed model" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("capture", "closed", CAPTURE_DATA / "rcapture_ill.csv")
    assert code == 2 and "--occasions" in err
    code, _, err = cli("capture", "ci", CAPTURE_DATA / "rcapture_hare.csv", "--model", "M0", "--level", "1.5")
    assert code == 2 and "level" in err
