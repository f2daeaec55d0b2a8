"""The one number formatter: each kind's rule, and a round-trip property."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hiddenpop.formatting import (
    column_label,
    display_table,
    format_interval,
    format_value,
    kind_for,
    significant,
)


@pytest.mark.parametrize(("value", "kind", "text"), [
    (466884.59, "count", "466,885"),
    (np.int64(3818), "auto", "3,818"),
    (np.float64(35100.0), "auto", "35,100"),
    (3.6234, "ratio", "3.62"),
    (4.0, "ratio", "4.00"),
    (0.006343, "ratio", "0.00634"),
    (12345.6, "ratio", "12,300"),
    (9.996, "ratio", "10.0"),
    (999.6, "ratio", "1,000"),
    (1.0076379546097605, "diagnostic", "1.008"),
    (0.0004, "diagnostic", "<0.001"),
    (0.95, "percent", "95%"),
    (0.995, "percent", "99.5%"),
    (np.True_, "auto", "yes"),
    (False, "auto", "no"),
    (float("nan"), "count", ""),
    (pd.NA, "ratio", ""),
    (None, "auto", ""),
    ("text", "count", "text"),
])
def test_each_kind_follows_its_rule(value, kind, text):
    assert format_value(value, kind) == text


def test_an_interval_is_written_one_way():
    assert format_interval(3.2712, 4.0, "ratio") == "3.27 to 4.00"
    assert format_interval(379922.3, 606544.29, "count") == "379,922 to 606,544"
    assert format_interval(float("nan"), float("nan")) == ""
    assert format_interval(1.5, None, "ratio") == "1.50 to ?"


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown number kind"):
        format_value(1.0, "money")


def test_kinds_follow_columns_and_units():
    assert kind_for("estimate", "people") == "count"
    assert kind_for("upper", "per 100 children") == "ratio"
    assert kind_for("estimate") == "auto"
    assert kind_for("r_hat") == "diagnostic"
    assert kind_for("level") == "percent"
    assert kind_for("ess_bulk") == "count"
    assert column_label("ratio_to_known") == "estimate / known size"
    assert column_label("some_new_column") == "some new column"


@given(st.floats(min_value=1e-6, max_value=1e14, allow_nan=False, allow_infinity=False))
def test_three_significant_digits_round_trip(value):
    text = significant(value)
    back = float(text.replace(",", ""))
    assert math.isclose(back, value, rel_tol=5.01e-3)
    digits = text.replace(",", "").replace(".", "").lstrip("0")
    assert len(digits) >= 3 or back >= 100  # whole numbers keep their zeros as places, not digits


def test_a_column_saying_how_the_interval_was_made_is_kept_beside_the_merged_interval():
    frame = pd.DataFrame({"method": ["m"], "estimate": [10.0], "lower": [8.0], "upper": [13.0],
                          "interval": ["BCa bootstrap"]})
    names, rows = display_table(frame)
    assert names == ["method", "estimate", "interval", "interval_method"]
    assert rows[0][3] == "BCa bootstrap"
    assert "8" in rows[0][2] and "13" in rows[0][2]
