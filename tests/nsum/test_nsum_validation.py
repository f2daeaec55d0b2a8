"""Every ARD validation error: message (file, row, column, fix; no identifier echoed) and CLI exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli_commands import run_main
from hiddenpop.data import ARD, read_ard
from hiddenpop.errors import ConfigError, DataError

GOOD = pd.DataFrame(
    {
        "rid": ["RESP-0001", "RESP-0002", "RESP-0003", "RESP-0004", "RESP-0005", "RESP-0006"],
        "k1": [3, 1, 0, 2, 5, 1],
        "k2": [1, 0, 2, 4, 0, 3],
        "h": [0, 1, 0, 2, 0, 1],
        "w": [1.0, 2.0, 1.5, 1.0, 0.5, 1.2],
        "st": ["a", "a", "a", "b", "b", "b"],
        "cl": [1, 1, 2, 3, 4, 4],
        "note": ["x", "y", "z", "u", "v", "w"],
    }
)
KNOWN = "group,size\nk1,5000\nk2,8000\n"


def _write(tmp_path, frame=GOOD, known=KNOWN):
    survey = tmp_path / "survey.csv"
    frame.to_csv(survey, index=False)
    known_path = tmp_path / "known.csv"
    known_path.write_text(known)
    return survey, known_path


def _estimate_args(survey, known, *extra):
    return ["nsum", "estimate", survey, "--known", known, "--population", "100000", "--hidden", "h", *extra]


def _assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        (-2, ["survey.csv, row 3, column 'k2'", "negative count", "whole numbers >= 0"]),
        (1.5, ["survey.csv, row 3, column 'k2'", "fractional count", "whole numbers >= 0"]),
        ("lots", ["survey.csv, row 3, column 'k2'", "not a number", "whole numbers >= 0"]),
    ],
)
def test_bad_counts(tmp_path, capsys, value, fragments):
    frame = GOOD.copy().astype({"k2": object})
    frame.loc[2, "k2"] = value
    survey, known = _write(tmp_path, frame)
    with pytest.raises(DataError) as info:
        read_ard(survey, known=known, population=1e5, hidden=["h"])
    for fragment in fragments:
        assert fragment in str(info.value)
    code, out, err = run_main(capsys, *_estimate_args(survey, known))
    _assert_one_line_error(code, err, *fragments)
    assert "lots" not in err  # free text is never echoed
    assert out == ""


def test_unknown_hidden_column(tmp_path, capsys):
    survey, known = _write(tmp_path)
    code, _, err = run_main(capsys, "nsum", "estimate", survey, "--known", known, "--population", "1e5", "--hidden", "hh")
    _assert_one_line_error(code, err, "survey.csv", "column 'hh'", "not in the survey", "did you mean 'h'")


def test_unknown_known_group(tmp_path, capsys):
    survey, known = _write(tmp_path, known="group,size\nk1,5000\nk3,8000\n")
    code, _, err = run_main(capsys, *_estimate_args(survey, known))
    _assert_one_line_error(code, err, "known.csv, row 2, column 'group'", "'k3' is not a column of survey.csv")


@pytest.mark.parametrize("option", ["--weights", "--strata", "--psu", "--id-column"])
def test_unknown_design_column(tmp_path, capsys, option):
    survey, known = _write(tmp_path)
    code, _, err = run_main(capsys, *_estimate_args(survey, known, option, "nope"))
    _assert_one_line_error(code, err, "survey.csv", "column 'nope'", "not in the survey")


def test_known_size_not_below_population(tmp_path, capsys):
    survey, known = _write(tmp_path, known="group,size\nk1,5000\nk2,100000\n")
    with pytest.raises(DataError, match="not smaller than the population"):
        read_ard(survey, known=known, population=1e5, hidden=["h"])
    code, _, err = run_main(capsys, *_estimate_args(survey, known))
    _assert_one_line_error(code, err, "known.csv, row 2, column 'size'", "'k2'", "not smaller than the population")


def test_duplicate_respondent_ids(tmp_path, capsys):
    frame = GOOD.copy()
    frame.loc[4, "rid"] = "RESP-0002"
    survey, known = _write(tmp_path, frame)
    code, _, err = run_main(capsys, *_estimate_args(survey, known, "--id-column", "rid"))
    _assert_one_line_error(code, err, "survey.csv, row 5, column 'rid'", "duplicate respondent id", "row 2")
    assert "RESP-0002" not in err  # identifiers are never echoed


def test_known_group_nobody_reports(tmp_path, capsys):
    frame = GOOD.copy()
    frame["k2"] = 0
    survey, known = _write(tmp_path, frame)
    code, _, err = run_main(capsys, *_estimate_args(survey, known))
    _assert_one_line_error(code, err, "survey.csv, column 'k2'", "reported by nobody", "remove it from known.csv")


@pytest.mark.parametrize("value", [0.0, -1.0, np.nan])
def test_weights_must_be_positive(tmp_path, capsys, value):
    frame = GOOD.copy()
    frame.loc[3, "w"] = value
    survey, known = _write(tmp_path, frame)
    code, _, err = run_main(capsys, *_estimate_args(survey, known, "--weights", "w"))
    _assert_one_line_error(code, err, "survey.csv, row 4, column 'w'", "weights must be > 0")


def test_known_sizes_file_errors(tmp_path, capsys):
    survey, known = _write(tmp_path, known="group,size\nk1,5000\nk1,8000\n")
    code, _, err = run_main(capsys, *_estimate_args(survey, known))
    _assert_one_line_error(code, err, "known.csv, row 2, column 'group'", "listed twice")
    survey, known = _write(tmp_path, known="group,size\nk1,5000\nk2,many\n")
    code, _, err = run_main(capsys, *_estimate_args(survey, known))
    _assert_one_line_error(code, err, "known.csv, row 2, column 'size'", "not a number")
    survey, known = _write(tmp_path, known="name,count,extra\nk1,5000,1\n")
    code, _, err = run_main(capsys, *_estimate_args(survey, known))
    _assert_one_line_error(code, err, "known.csv", "expected columns 'group' and 'size'")


def test_missing_design_labels(tmp_path, capsys):
    frame = GOOD.copy().astype({"st": object})
    frame.loc[1, "st"] = None
    survey, known = _write(tmp_path, frame)
    code, _, err = run_main(capsys, *_estimate_args(survey, known, "--strata", "st"))
    _assert_one_line_error(code, err, "survey.csv, row 2, column 'st'", "stratum is missing")


def test_settings_errors_exit_2(tmp_path, capsys):
    survey, known = _write(tmp_path)
    code, _, err = run_main(capsys, *_estimate_args(survey, known, "--missing", "ignore"))
    assert code == 2  # Typer usage error
    code, _, err = run_main(capsys, "nsum", "estimate", survey, "--known", known, "--population", "-5", "--hidden", "h")
    _assert_one_line_error(code, err, "population")
    code, _, err = run_main(capsys, *_estimate_args(survey, known, "--topcode", "0"))
    _assert_one_line_error(code, err, "topcode")
    code, _, err = run_main(capsys, "nsum", "estimate", survey, "--known", known, "--population", "1e5")
    _assert_one_line_error(code, err, "--hidden")
    code, _, err = run_main(capsys, *_estimate_args(survey, known, "--ratio", "r=h"))
    _assert_one_line_error(code, err, "--ratio")
    with pytest.raises(ConfigError, match="both hidden and in the known sizes"):
        ARD.from_frame(GOOD, known={"k1": 5000, "h": 10}, population=1e5, hidden=["h"])
    with pytest.raises(ConfigError, match="missing="):
        ARD.from_frame(GOOD, known={"k1": 5000}, population=1e5, hidden=["h"], missing="mean")


def test_missing_policy_is_reported(tmp_path, capsys):
    frame = GOOD.copy().astype({"k1": float, "h": float})
    frame.loc[0, "k1"] = np.nan
    frame.loc[3, "h"] = np.nan
    survey, known = _write(tmp_path, frame)
    zero = read_ard(survey, known=known, population=1e5, hidden=["h"])
    assert zero.n == 6 and zero.missing_counts == {"k1": 1, "h": 1}
    assert any("2 missing answer(s) counted as 0" in n for n in zero.notes)
    dropped = read_ard(survey, known=known, population=1e5, hidden=["h"], missing="drop")
    assert dropped.n == 4 and dropped.dropped_respondents == 2
    assert list(dropped.rows) == [2, 3, 5, 6]
    code, out, _ = run_main(capsys, *_estimate_args(survey, known, "--missing", "drop", "--format", "json"))
    assert code in (0, None)
    payload = json.loads(out)
    assert any("2 respondent(s) with a missing answer removed" in n for n in payload["notes"])


def test_nothing_is_silently_coerced(tmp_path):
    """Top-coding is explicit and counted; hidden answers are never top-coded."""
    frame = GOOD.copy()
    frame.loc[0, "k1"] = 95
    frame.loc[1, "h"] = 40
    survey, known = _write(tmp_path, frame)
    ard = read_ard(survey, known=known, population=1e5, hidden=["h"], topcode=30)
    assert ard.counts.loc[0, "k1"] == 30 and ard.topcoded_cells == {"k1": 1}
    assert ard.counts.loc[1, "h"] == 40
    raw = read_ard(survey, known=known, population=1e5, hidden=["h"])
    assert raw.counts.loc[0, "k1"] == 95
