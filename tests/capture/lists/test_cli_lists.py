"""``hiddenpop capture mse`` and ``hiddenpop capture coverage``: JSON schema, formats, one-line errors."""

from __future__ import annotations

import json

import pytest

from refdata import CAPTURE_DATA, load_fixture

MSE_KEYS = {
    "selected",
    "estimate",
    "se",
    "lower",
    "upper",
    "deviance",
    "df",
    "aic",
    "bic",
    "procedure",
    "threshold",
}


def test_mse_json_uk(run_cli):
    uk = load_fixture("capture_uk_modern_slavery_5_lists.json")
    done = run_cli("capture", "mse", CAPTURE_DATA / "mse_UKdat_5.csv", "--select", "aic", "--format", "json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    selected = payload["estimates"][0]
    assert MSE_KEYS <= set(selected)
    assert payload["diagnostics"]["selected"] == uk["selected_interactions_in_order"]
    assert selected["estimate"] == pytest.approx(uk["expected"]["poisson_abundance"], rel=1e-6)
    assert selected["procedure"] == "aic" and selected["threshold"] == 0.05
    assert payload["settings"]["select"] == "aic" and payload["settings"]["p_threshold"] == 0.05
    assert selected["lower"] == pytest.approx(uk["expected"]["lower95"], abs=0.5)


def test_mse_bootstrap_json_is_seeded(run_cli):
    from hiddenpop.capture.lists.models import mse

    path = CAPTURE_DATA / "mse_Korea.csv"
    args = ["capture", "mse", path, "--select", "bic", "--bootstrap", "30", "--seed", "3", "--format", "json"]
    payload = json.loads(run_cli(*args, "--quiet").stdout)
    selected = payload["estimates"][0]
    same = mse(path, "bic", bootstrap=30, seed=3).table.iloc[0]  # same seed in-process: same numbers
    assert selected["lower"] == pytest.approx(same["lower"], rel=1e-12)
    assert selected["upper"] == pytest.approx(same["upper"], rel=1e-12)
    assert payload["settings"]["bootstrap"] == 30 and payload["settings"]["seed"] == 3 and payload["seed"] == 3
    assert "BCa" in selected["interval"]


def test_mse_table_and_csv(run_cli, tmp_path):
    out = tmp_path / "mse.csv"
    done = run_cli(
        "capture",
        "mse",
        CAPTURE_DATA / "mse_Korea.csv",
        "--select",
        "stepwise",
        "--format",
        "csv",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert text.startswith("method,selected,estimate")
    assert "MSE stepwise (threshold 0.02)" in text
    assert "MSE main effects only" in text


def test_coverage_json(run_cli):
    done = run_cli(
        "capture", "coverage", CAPTURE_DATA / "care1_HAV.csv", "--format", "json", "--bootstrap", "50"
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    methods = [row["method"] for row in payload["estimates"]]
    assert methods == ["Nhat-0 (Indep)", "Nhat (HSC)", "Nhat-1 (LSC)"]
    assert payload["diagnostics"]["coverage"] == pytest.approx(0.513, abs=5e-4)
    assert any("0.55" in w for w in payload["warnings"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["capture", "mse", "missing.csv", "--select", "aic"], "file not found"),
        (["capture", "mse", CAPTURE_DATA / "mse_NewOrl.csv", "--select", "bic"], "too many to enumerate"),
        (
            ["capture", "mse", CAPTURE_DATA / "mse_Korea.csv", "--select", "bic", "--max-order", "5"],
            "max order",
        ),
        (
            [
                "capture",
                "coverage",
                CAPTURE_DATA / "rcapture_hare.csv",
                "--kind",
                "occasions",
                "--level",
                "2",
            ],
            "level",
        ),
    ],
)
def test_errors_are_one_line_exit_2(run_cli, args, fragment):
    done = run_cli(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0]


def test_bad_cell_error_names_row_and_column_without_echoing_values(run_cli, tmp_path):
    path = tmp_path / "lists.csv"
    path.write_text("A,B,C,count\n1,0,0,5\n0,7,0,3\n1,1,1,2\n")
    done = run_cli("capture", "mse", path, "--select", "aic")
    assert done.returncode == 2
    assert "row 2" in done.stderr and "'B'" in done.stderr
    assert "7" not in done.stderr.replace("lists.csv", "")


def test_select_is_required(run_cli):
    assert run_cli("capture", "mse", CAPTURE_DATA / "mse_Korea.csv").returncode == 2
