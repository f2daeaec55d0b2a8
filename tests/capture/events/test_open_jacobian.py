"""The open model's analytic Jacobian of the demographic quantities against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from hiddenpop.capture.events.open import demography, demography_jacobian, full_open_design, history_matrix

QUANTITIES = ("pstar", "phi", "abundance", "total", "fitted_sum")


def _random_theta(rng: np.random.Generator, design: np.ndarray, periods: int) -> np.ndarray:
    theta = np.empty(design.shape[1])
    theta[0] = rng.normal(3.0, 0.5)
    theta[1 : 2 * periods - 1] = rng.uniform(0.05, 1.2, size=2 * periods - 2)  # gammas (arrivals, departures)
    theta[2 * periods - 1 :] = rng.normal(0.0, 1.0, size=design.shape[1] - 2 * periods + 1)  # capture logits
    return theta


def _finite_differences(theta, design, capture, name):
    columns = []
    for k in range(theta.size):
        step = 1e-6 * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += step
        down[k] -= step
        columns.append((demography(up, design, capture)[name] - demography(down, design, capture)[name]) / (2 * step))
    return np.array(columns)  # (parameters, entries)


@pytest.mark.parametrize("capture", ["up", "ep"])
@pytest.mark.parametrize("periods", [3, 4, 6, 8])
def test_analytic_jacobian_matches_finite_differences(capture, periods):
    rng = np.random.default_rng(1000 * periods + (capture == "ep"))
    design = full_open_design(history_matrix(periods), capture)
    for _ in range(3):
        theta = _random_theta(rng, design, periods)
        derived = demography_jacobian(theta, design, capture)
        for name in QUANTITIES:
            value, grad = derived[name]
            assert grad.shape == (theta.size, value.size)
            numeric = _finite_differences(theta, design, capture, name)
            scale = max(np.abs(numeric).max(), 1e-12)
            np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6 * scale, err_msg=f"{name}")
        assert np.abs(derived["abundance"][1]).max() > 0  # the check is not over all-zero derivatives


def test_jacobian_at_a_boundary_gamma():
    # a gamma fixed at 0 (survival 1 or no arrivals) is where the constrained fit leaves it
    periods, capture = 5, "up"
    design = full_open_design(history_matrix(periods), capture)
    theta = _random_theta(np.random.default_rng(3), design, periods)
    theta[[2, periods + 1]] = 0.0
    derived = demography_jacobian(theta, design, capture)
    for name in QUANTITIES:
        numeric = _finite_differences(theta, design, capture, name)
        scale = max(np.abs(numeric).max(), 1e-12)
        np.testing.assert_allclose(derived[name][1], numeric, rtol=1e-5, atol=1e-6 * scale, err_msg=name)


@pytest.mark.parametrize("settings", [{}, {"capture": "ep"}, {"constrain_negative": False}, {"exclude": ["010000"]}])
def test_open_table_equals_the_same_rows_built_as_records(settings):
    # the table is built column by column; pandas' construction from row records is the plain reference
    import pandas as pd

    from hiddenpop.capture.events.open import open_population
    from hiddenpop.results import Estimates
    from refdata import CAPTURE_DATA

    result = open_population(pd.read_csv(CAPTURE_DATA / "rcapture_duck.csv"), **settings)
    records = result.table.to_dict("records")
    assert records and all(isinstance(row["quantity"], str) for row in records)
    pd.testing.assert_frame_equal(result.table, Estimates.from_rows(records).table, check_exact=True)
    assert result.table["at_boundary"].dtype == bool


def _as_nullable(frame):
    return frame.astype({column: "Int64" for column in frame.columns})


@pytest.mark.parametrize("count_column", ["freq", None])
def test_histories_read_as_one_array_equal_the_column_by_column_reading(count_column):
    # plain NumPy columns take the one-array path; nullable Int64 columns the column-by-column one
    import pandas as pd

    from hiddenpop.capture.events.open import _histories_from_frame
    from refdata import CAPTURE_DATA

    duck = pd.read_csv(CAPTURE_DATA / "rcapture_duck.csv")
    if count_column is None:  # one row per unit
        duck = duck.loc[duck.index.repeat(duck["freq"])].drop(columns="freq").reset_index(drop=True)
    mixed = duck.astype(float).astype({duck.columns[0]: "int64"})
    for frame in (duck, mixed):
        assert all(isinstance(dtype, np.dtype) for dtype in frame.dtypes)
        histories, counts = _histories_from_frame(frame, count_column)
        reference_histories, reference_counts = _histories_from_frame(_as_nullable(frame), count_column)
        assert np.array_equal(histories, reference_histories)
        assert np.array_equal(counts, reference_counts)
        assert counts.sum() == (duck["freq"].sum() if count_column else len(duck))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("b", 2, "row 2, column 'b'"), ("c", -1, "row 2, column 'c'"), ("freq", 2.5, "row 2, column 'freq'"),
     ("freq", -3, "row 2, column 'freq'")],
)
def test_bad_values_named_alike_on_both_readings(column, value, message):
    import pandas as pd

    from hiddenpop.capture.events.open import _histories_from_frame
    from hiddenpop.errors import DataError

    frame = pd.DataFrame({"a": [1, 0, 1], "b": [0, 1, 1], "c": [1, 1, 0], "freq": [3, 4, 5]})
    frame[column] = frame[column].astype(float)
    frame.loc[1, column] = value
    for version in (frame, frame.astype({"a": "Int64"})):
        with pytest.raises(DataError, match=message):
            _histories_from_frame(version, "freq")
