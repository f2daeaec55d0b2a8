"""Stratified MSE: each stratum on its own, strata the data cannot estimate reported (never dropped) and the total
saying what it leaves out; the total of the estimable strata from a stratified bootstrap, checked by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_commands import run_main
from hiddenpop.capture.lists.models import mse
from hiddenpop.capture.lists.strata import stratified
from hiddenpop.errors import ConfigError


def _population(rng, size, catch, name):
    caught = rng.random((size, len(catch))) < np.asarray(catch)
    seen = caught[caught.any(axis=1)].astype(int)
    frame = pd.DataFrame(seen, columns=["police", "ngo", "hotline"])
    frame["region"] = name
    return frame


def _no_overlap(rng, name):
    """People caught by exactly one list each: nothing tells how many nobody caught."""
    which = rng.integers(0, 3, size=150)
    frame = pd.DataFrame(np.eye(3, dtype=int)[which], columns=["police", "ngo", "hotline"])
    frame["region"] = name
    return frame


def test_a_stratum_without_overlap_is_reported_and_the_total_says_it_leaves_it_out():
    rng = np.random.default_rng(11)
    data = pd.concat([_population(rng, 800, [0.3, 0.4, 0.35], "north"), _no_overlap(rng, "islands"),
                      _population(rng, 600, [0.5, 0.3, 0.4], "south")], ignore_index=True)
    result = stratified(data, "region", model="stepwise", bootstrap=100, seed=4)
    table = result.table.set_index("stratum")
    assert list(table.index) == ["islands", "north", "south", "total"]
    islands = table.loc["islands"]
    assert np.isnan(islands["estimate"]) and islands["status"].startswith("not estimable: nobody is on two")
    assert islands["observed"] == 150
    total = table.loc["total"]
    assert total["status"].startswith("partial: excludes islands; 150 people seen there")
    assert "excludes islands" in total["method"]
    assert total["estimate"] == pytest.approx(table.loc["north", "estimate"] + table.loc["south", "estimate"])
    assert total["lower"] < total["estimate"] < total["upper"]
    assert result.warnings[0].startswith("the total covers the estimable strata only: islands")
    # each stratum is the unstratified analysis of its own rows
    north = data.loc[data["region"] == "north"].drop(columns="region")
    assert table.loc["north", "estimate"] == pytest.approx(mse(north, "stepwise").table["estimate"].iloc[0])


def test_stratified_bootstrap_total_covers_the_truth():
    """40 two-stratum populations (1,000 and 700, lists independent within a stratum, different rates by
    stratum): the 95% percentile interval of the total covers 1,700 in 85-100% of them."""
    rng = np.random.default_rng(2026)
    covered = 0
    for r in range(40):
        data = pd.concat([_population(rng, 1000, [0.25, 0.3, 0.2], "a"),
                          _population(rng, 700, [0.4, 0.2, 0.3], "b")], ignore_index=True)
        total = stratified(data, "region", model="stepwise", bootstrap=200, seed=r).table.iloc[-1]
        covered += total["lower"] <= 1700 <= total["upper"]
    assert 0.85 <= covered / 40 <= 1.0


def test_stratum_errors_name_the_column_and_row(tmp_path, capsys):
    rng = np.random.default_rng(3)
    data = _population(rng, 300, [0.3, 0.4, 0.35], "north")
    with pytest.raises(ConfigError, match="district"):
        stratified(data, "district", bootstrap=100)
    data.loc[5, "region"] = None
    with pytest.raises(ConfigError, match="row 7"):
        stratified(data, "region", bootstrap=100)
    with pytest.raises(ConfigError, match="bootstrap"):
        stratified(data.dropna(), "region", bootstrap=0)
    path = tmp_path / "lists.csv"
    data.dropna().to_csv(path, index=False)
    code, _, err = run_main(capsys, "capture", "mse", path, "--select", "stepwise", "--stratum", "county")
    assert code == 2 and "county" in err and err.count("\n") == 1
