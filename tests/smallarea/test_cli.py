"""CLI: synth -> direct -> pool/extrapolate, JSON schema, output folder with map, one-line errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from hiddenpop.cli import app


@pytest.fixture(scope="module")
def small_country(tmp_path_factory):
    folder = tmp_path_factory.mktemp("country")
    result = CliRunner().invoke(app, ["smallarea", "synth", str(folder), "--rows", "16", "--cols", "16",
                                      "--surveyed", "60", "--seed", "7"])
    assert result.exit_code == 0, result.output
    return folder


def test_synth_writes_everything(small_country):
    for name in ("areas.csv", "survey.csv", "truth.csv", "adjacency.csv", "streams.toml", "areas.geojson"):
        assert (small_country / name).stat().st_size > 0
    areas = pd.read_csv(small_country / "areas.csv")
    assert len(areas) == 256 and areas["direct_rate"].notna().sum() == 60


def test_direct_command(small_country):
    known = ",".join(f"know_{g}" for g in ("doctor", "teacher", "driver", "nurse", "student", "construction"))
    roster = known.replace("know_", "roster_")
    result = CliRunner().invoke(app, ["smallarea", "direct", str(small_country / "survey.csv"), "--area", "area_id",
                                      "--hidden", "know_hidden", "--known", known, "--roster", roster,
                                      "--household-size", "household_size", "--weight", "weight",
                                      "--replicates", "200", "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["tables"]["areas"]) == 60
    first = payload["tables"]["areas"][0]
    for key in ("area", "estimate", "se", "lower", "upper", "method", "surveyed", "sparse", "flag"):
        assert key in first
    (national,) = [row for row in payload["estimates"] if row["quantity"] == "national prevalence"]
    assert national["lower"] <= national["estimate"] <= national["upper"]
    assert payload["settings"]["replicates"] == 200


def test_pool_writes_folder_with_map(small_country, tmp_path):
    out = tmp_path / "pooled"
    result = CliRunner().invoke(app, [
        "smallarea", "pool", str(small_country / "areas.csv"), "--id", "area_id", "--target", "direct_rate",
        "--target-se", "direct_se", "--population", "population", "--region", "region", "--name", "name",
        "--streams", str(small_country / "streams.toml"), "--geometry", str(small_country / "areas.geojson"),
        "--no-cv", "--draws", "300", "--national", "0.007,0.006,0.008", "--benchmark", "scale", "--out-dir", str(out),
        "--quiet",
    ])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    assert set(payload) >= {"estimates", "tables", "diagnostics", "warnings", "notes", "settings", "provenance"}
    assert {"areas", "importance"} <= set(payload["tables"]) and "cv" not in payload["tables"]  # --no-cv
    assert len(payload["tables"]["areas"]) == 256
    assert {"area", "estimate", "lower", "upper", "method", "surveyed"} <= set(payload["tables"]["areas"][0])
    assert payload["diagnostics"]["national"]["benchmark"]["implied_after"] == pytest.approx(0.007)
    assert payload["settings"]["benchmark"] == "scale" and payload["settings"]["cv"] is False
    assert "neighbours derived from the geometry" in " ".join(payload["notes"])
    html = (out / "map.html").read_text()
    assert "<script src=\"http" not in html and "Plotly" in html
    assert pd.read_csv(out / "areas.csv").shape[0] == 256


def test_extrapolate_json(small_country):
    result = CliRunner().invoke(app, [
        "smallarea", "extrapolate", str(small_country / "areas.csv"), "--id", "area_id", "--target", "direct_rate",
        "--target-se", "direct_se", "--population", "population", "--region", "region", "--name", "name",
        "--streams", str(small_country / "streams.toml"), "--no-compare-pooled", "--repeats", "2",
        "--folds", "4", "--format", "json", "--quiet",
    ])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["tables"]["areas"]) == 256
    assert {"stream", "importance"} <= set(payload["tables"]["importance"][0])
    assert {row["method"] for row in payload["tables"]["cv"]} == {"LightGBM", "ridge"}
    assert payload["diagnostics"]["cv"]["grouping"] == "region"
    assert "implied_rate" in payload["diagnostics"]["national"]


def test_bad_input_is_one_line_exit_2(small_country, tmp_path, run_cli):
    areas = pd.read_csv(small_country / "areas.csv")
    areas.loc[5, "area_id"] = areas.loc[1, "area_id"]
    path = tmp_path / "dup.csv"
    areas.to_csv(path, index=False)
    result = run_cli("smallarea", "pool", path, "--id", "area_id", "--target", "direct_rate")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "dup.csv, row 6, column 'area_id': duplicate area id (same as row 2)" in lines[0]


def test_out_is_a_file_and_out_dir_a_folder(small_country, tmp_path):
    """--out FILE writes the JSON to that file, as every command does; the folder of files is --out-dir."""
    out = tmp_path / "pool.json"
    args = ["smallarea", "pool", str(small_country / "areas.csv"), "--id", "area_id", "--target", "direct_rate",
            "--target-se", "direct_se", "--no-cv", "--draws", "200", "--quiet"]
    result = CliRunner().invoke(app, [*args, "--format", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["tables"]["areas"]) == 256
    both = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x.json"), "--out-dir", str(tmp_path / "d")])
    assert both.exit_code != 0 and not (tmp_path / "d").exists()


def test_the_map_is_the_same_file_every_time(small_country, tmp_path):
    """Plotly draws a random element id per figure; two identical runs must write the same map.html."""
    args = ["smallarea", "pool", str(small_country / "areas.csv"), "--id", "area_id", "--target", "direct_rate",
            "--target-se", "direct_se", "--geometry", str(small_country / "areas.geojson"), "--no-cv", "--draws",
            "200", "--quiet"]
    for name in ("a", "b"):
        result = CliRunner().invoke(app, [*args, "--out-dir", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "map.html").read_bytes() == (tmp_path / "b" / "map.html").read_bytes()
