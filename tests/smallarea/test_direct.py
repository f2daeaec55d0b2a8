"""Direct roster-based estimates: closed form, bootstrap reproducibility, sparse flags, validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiddenpop.errors import ConfigError, DataError
from hiddenpop.smallarea.direct import direct_estimates


def _survey() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for area, n in (("north", 12), ("south", 15)):
        for _ in range(n):
            size = int(rng.integers(2, 7))
            teachers = int(rng.integers(0, 2))
            drivers = int(rng.integers(0, 2))
            rows.append({"area": area, "w": float(rng.uniform(50, 150)), "hh": size, "r_teacher": teachers,
                         "r_driver": drivers, "k_teacher": int(rng.poisson(4)), "k_driver": int(rng.poisson(6)),
                         "hidden": int(rng.poisson(2))})
    return pd.DataFrame(rows)


def _run(frame, **kwargs):
    options = {"area": "area", "hidden": "hidden", "known": ["k_teacher", "k_driver"],
               "roster": ["r_teacher", "r_driver"], "household_size": "hh", "weight": "w", "replicates": 200,
               "seed": 4, "min_respondents": 5, "min_roster_members": 3}
    options.update(kwargs)
    return direct_estimates(frame, **options)


def test_closed_form_ratio():
    frame = _survey()
    result = _run(frame)
    for area, rows in frame.groupby("area"):
        w = rows["w"]
        hidden = (w * rows["hidden"]).sum()
        known = (w * (rows["k_teacher"] + rows["k_driver"])).sum()
        roster = (w * (rows["r_teacher"] + rows["r_driver"])).sum()
        persons = (w * rows["hh"]).sum()
        row = result.table[result.table["area"] == area].iloc[0]
        assert row["estimate"] == pytest.approx(hidden / known * roster / persons, rel=1e-12)
        assert row["known_size"] == pytest.approx(roster)
        assert row["population"] == pytest.approx(persons)
        assert row["lower"] <= row["estimate"] <= row["upper"]
    w = frame["w"]
    national = (w * frame["hidden"]).sum() / (w * (frame["k_teacher"] + frame["k_driver"])).sum() * (
        (w * (frame["r_teacher"] + frame["r_driver"])).sum() / (w * frame["hh"]).sum()
    )
    assert result.estimate("national prevalence") == pytest.approx(national, rel=1e-12)


def test_equal_weights_cancel_within_area():
    frame = _survey()
    frame["w"] = 7.0
    weighted = _run(frame)
    unweighted = _run(frame.drop(columns="w"), weight=None)
    assert np.allclose(weighted.table["estimate"], unweighted.table["estimate"])


def test_same_seed_same_numbers():
    frame = _survey()
    first, second = _run(frame), _run(frame)
    assert first.table[["se", "lower", "upper"]].equals(second.table[["se", "lower", "upper"]])
    third = _run(frame, seed=99)
    assert not np.allclose(first.table["se"], third.table["se"])


def test_bootstrap_se_close_to_linearisation():
    """Rao-Wu bootstrap SE of the area ratio agrees with the Taylor-linearised SE within Monte Carlo error."""
    rng = np.random.default_rng(11)
    n = 60
    frame = pd.DataFrame({
        "area": "a", "w": 1.0, "hh": rng.integers(3, 7, n), "r_teacher": rng.integers(0, 3, n), "r_driver": rng.integers(0, 2, n),
        "k_teacher": rng.poisson(20, n), "k_driver": rng.poisson(5, n), "hidden": rng.poisson(3, n),
    })
    result = _run(frame, replicates=4000, min_roster_members=1)
    row = result.table.iloc[0]
    columns = np.column_stack([frame["hidden"], frame["k_teacher"] + frame["k_driver"],
                               frame["r_teacher"] + frame["r_driver"], frame["hh"]]).astype(float)
    means = columns.mean(axis=0)
    gradient = np.array([1 / means[0], -1 / means[1], 1 / means[2], -1 / means[3]]) * row["estimate"]
    linear = columns @ gradient
    se_linear = np.std(linear, ddof=1) / np.sqrt(n)
    assert row["se"] == pytest.approx(se_linear, rel=0.1)


def test_sparse_flags():
    frame = _survey()
    frame.loc[frame["area"] == "north", "hidden"] = 0
    result = _run(frame, min_respondents=13)
    north = result.table[result.table["area"] == "north"].iloc[0]
    assert north["sparse"]
    assert "nobody reported" in north["flag"]
    assert "respondents" in north["flag"]
    assert north["estimate"] == 0
    assert any("flagged sparse" in w for w in result.warnings)


def test_roster_errors_name_row_and_column():
    frame = _survey()
    frame.loc[3, "r_teacher"] = 9  # more members than the household has
    with pytest.raises(DataError, match=r"row 4, column 'hh'"):
        _run(frame)
    frame = _survey()
    frame.loc[5, "r_driver"] = np.nan
    with pytest.raises(DataError, match=r"row 6, column 'r_driver'.*roster count is missing"):
        _run(frame)
    frame = _survey()
    frame.loc[2, "hidden"] = -1
    with pytest.raises(DataError, match=r"row 3, column 'hidden'"):
        _run(frame)
    frame = _survey()
    frame.loc[0, "area"] = None
    with pytest.raises(DataError, match=r"row 1, column 'area'"):
        _run(frame)


def test_option_errors():
    frame = _survey()
    with pytest.raises(ConfigError, match="one roster column per known group"):
        _run(frame, roster=["r_teacher"])
    with pytest.raises(ConfigError, match="level"):
        _run(frame, level=1.2)


def test_bca_reduces_to_percentile_without_bias_or_skew():
    from hiddenpop.smallarea.direct import _bca_interval

    boot = np.sort(np.random.default_rng(2).normal(size=(4001, 1)), axis=0)
    boot = np.vstack([boot, -boot[::-1]])  # exactly symmetric about 0: no median bias
    jackknife = [np.array([-1.0, 0.0, 1.0])]  # symmetric: acceleration 0
    lower, upper = _bca_interval(boot, np.array([0.0]), jackknife, level=0.9)
    assert lower[0] == pytest.approx(np.quantile(boot, 0.05))
    assert upper[0] == pytest.approx(np.quantile(boot, 0.95))


def test_bca_corrects_median_bias_in_closed_form():
    """Replicates ~ N(estimate + b, 1), no skew: z0 = -b, so the limits are estimate - b +- z (Efron 1987)."""
    from scipy.stats import norm

    from hiddenpop.smallarea.direct import _bca_interval

    b = 0.3
    boot = (b + norm.ppf((np.arange(20000) + 0.5) / 20000))[:, None]
    lower, upper = _bca_interval(boot, np.array([0.0]), [np.array([-1.0, 0.0, 1.0])], level=0.9)
    assert lower[0] == pytest.approx(-b - 1.6449, abs=2e-3)
    assert upper[0] == pytest.approx(-b + 1.6449, abs=2e-3)


def test_bca_skew_moves_interval_towards_the_long_tail():
    from hiddenpop.smallarea.direct import _bca_interval

    boot = np.random.default_rng(4).normal(size=(5000, 1))
    symmetric = _bca_interval(boot, np.array([np.median(boot)]), [np.array([-1.0, 0.0, 1.0])], 0.9)
    # jackknife values with a long left tail of deviations d = mean - value give a > 0 (right-skewed estimator)
    skewed = _bca_interval(boot, np.array([np.median(boot)]), [np.array([0.0, 0.0, 0.0, -3.0])], 0.9)
    assert skewed[0][0] > symmetric[0][0] and skewed[1][0] > symmetric[1][0]
