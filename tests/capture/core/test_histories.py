"""The Histories contract: shapes, keying on the pattern, validation errors naming file/row/column."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hiddenpop.capture.core.histories import Histories, all_patterns, pattern_codes
from hiddenpop.errors import ConfigError, DataError
from refdata import CAPTURE_DATA


def test_three_shapes_agree_on_hare(tmp_path):
    individual = Histories.from_file(CAPTURE_DATA / "rcapture_hare.csv")
    frame = individual.to_frame()
    shuffled = frame.sample(frac=1.0, random_state=3)  # row order must not matter
    path = tmp_path / "hare_counts.csv"
    shuffled.to_csv(path, index=False)
    grouped = Histories.from_file(path)
    assert grouped.observed == individual.observed == 68
    assert np.array_equal(grouped.patterns, individual.patterns)
    assert np.array_equal(grouped.counts, individual.counts)
    freq = Histories.from_frequencies(individual.frequencies(), occasions=6)
    assert np.array_equal(freq.frequencies(), individual.frequencies())


def test_rcapture_order_and_zero_rows_are_fine():
    hiv = Histories.from_file(CAPTURE_DATA / "rcapture_HIV.csv")  # all 15 histories listed, some with 0
    assert hiv.occasions == 4 and hiv.observed == 1896
    assert (hiv.counts > 0).all()
    y = hiv.cell_counts()
    assert len(y) == 15 and y.sum() == 1896


def test_frequency_file_with_infinite_t():
    ill = Histories.from_file(CAPTURE_DATA / "rcapture_ill.csv", occasions="inf")
    assert math.isinf(ill.occasions) and ill.observed == 1880 and ill.is_frequency_only


def test_all_patterns_codes_roundtrip():
    patterns = all_patterns(5)
    assert patterns.shape == (31, 5)
    assert np.array_equal(pattern_codes(patterns), np.arange(1, 32))


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("a,b,c\n1,0,1\n0,2,1\n", ["data.csv", "row 2", "column 'b'", "0 or 1"]),
        ("a,b,c\n1,0,1\n0,0,0\n", ["data.csv", "row 2", "all-zero"]),
        ("a,b,freq\n1,0,4\n0,1,-1\n", ["data.csv", "row 2", "column 'freq'", "negative"]),
        ("a,b,freq\n1,0,4.5\n0,1,1\n", ["data.csv", "row 1", "column 'freq'", "whole"]),
        ("a,freq\n1,4\n", ["data.csv", "at least 2 occasions"]),
        ("a,b\n1,x\n", ["data.csv", "row 1", "column 'b'", "not a number"]),
        ("nbcap,freq\n1,10\n1,3\n", ["data.csv", "row 2", "nbcap", "twice"]),
        ("nbcap,freq\n0,10\n", ["data.csv", "row 1", "nbcap"]),
    ],
)
def test_validation_errors_name_file_row_column(tmp_path, text, pieces):
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as info:
        Histories.from_file(path, occasions=5 if "nbcap" in text else None)
    for piece in pieces:
        assert piece in str(info.value)


def test_frequency_data_need_occasions(tmp_path):
    path = _write(tmp_path, "nbcap,freq\n1,10\n2,3\n")
    with pytest.raises(ConfigError, match="--occasions"):
        Histories.from_file(path)
    with pytest.raises(DataError, match="exceeds"):
        Histories.from_file(_write(tmp_path, "nbcap,freq\n1,10\n4,3\n", "b.csv"), occasions=3)


def test_identifier_values_not_echoed(tmp_path):
    path = _write(tmp_path, "a,b\n1,SECRET-ID-77\n")
    with pytest.raises(DataError) as info:
        Histories.from_file(path)
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "count_column", "occasions", "message"),
    [
        ("a,b,c,units\n1,0,1,3\n0,1,1,-2\n", "units", None, r"row 2, column 'units': counts cannot be negative.*'units'"),
        ("a,b,c,units\n1,0,1,3\n0,1,1,2.5\n", "units", None, r"row 2, column 'units': counts must be whole.*'units'"),
        ("nbcap,Frequency\n1,3\n2,-1\n", None, 5, r"row 2, column 'Frequency': counts cannot be negative.*'Frequency'"),
        ("NbCap,freq\n1,3\n1,1\n", None, 5, r"row 2, column 'NbCap': capture count listed twice"),
        ("NbCap,freq\n1,3\n7,1\n", None, 5, r"row 2, column 'NbCap': capture count exceeds"),
    ],
)
def test_errors_name_the_files_real_count_columns(tmp_path, text, count_column, occasions, message):
    path = tmp_path / "counts.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as caught:
        Histories.from_file(path, count_column=count_column, occasions=occasions)
    assert "column 'count'" not in str(caught.value) and "column 'freq'" not in str(caught.value)
