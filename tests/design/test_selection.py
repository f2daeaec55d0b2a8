"""PPS selection: inclusion probabilities (closed form and by simulation), fixed sample size, certainty
units, multistage probabilities, reserves, validation errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli_commands import run_main
from hiddenpop.design.selection import (
    allocate_proportional,
    pps_inclusion_probabilities,
    select_pps,
    systematic_pps,
)
from hiddenpop.errors import ConfigError, DataError


def make_frame(seed=7, n_strata=3, per_stratum=25):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_strata):
        for i in range(per_stratum):
            rows.append(
                {
                    "region": f"R{s}",
                    "municipality": f"R{s}-M{i:02d}",
                    "households": int(rng.integers(200, 5000)),
                }
            )
    return pd.DataFrame(rows)


def test_certainty_units_iterative_closed_form():
    # n = 3 from sizes 100, 60, 20, 10, 10: 100 is certain (3*100/200 > 1); then 2 draws over 100 remaining:
    # 60 -> 2*60/100 = 1.2 -> certain; then 1 draw over 40: 20/40, 10/40, 10/40.
    pi, certain = pps_inclusion_probabilities(np.array([100, 60, 20, 10, 10]), 3)
    np.testing.assert_allclose(pi, [1, 1, 0.5, 0.25, 0.25])
    assert certain.tolist() == [True, True, False, False, False]
    assert pi.sum() == pytest.approx(3)


def test_inclusion_probabilities_by_simulation_and_exact_size():
    rng_sizes = np.random.default_rng(3)
    sizes = np.concatenate([[4000.0], rng_sizes.integers(50, 900, size=29).astype(float)])
    n = 6
    pi, _ = pps_inclusion_probabilities(sizes, n)
    replicates = 4000
    counts = np.zeros(len(sizes))
    rng = np.random.default_rng(2024)
    for _ in range(replicates):
        chosen, _, _ = systematic_pps(sizes, n, rng, order="random")
        assert len(chosen) == n and len(set(chosen.tolist())) == n  # fixed size, without replacement
        counts[chosen] += 1
    frequency = counts / replicates
    se = np.sqrt(pi * (1 - pi) / replicates)
    assert pi[0] == 1.0 and frequency[0] == 1.0
    z = np.abs(frequency[1:] - pi[1:]) / se[1:]
    assert z.max() < 4.0, z.max()
    assert np.mean(z < 1.96) > 0.85  # roughly 95% of units within their 95% band


def test_frame_order_systematic_is_exact_too():
    sizes = np.array([5.0, 1, 1, 3, 2, 8, 1, 4, 6, 2])
    pi, _ = pps_inclusion_probabilities(sizes, 4)
    counts = np.zeros(len(sizes))
    rng = np.random.default_rng(11)
    for _ in range(3000):
        chosen, _, _ = systematic_pps(sizes, 4, rng, order="frame")
        counts[chosen] += 1
    assert np.abs(counts / 3000 - pi).max() < 4 * np.sqrt(0.25 / 3000)


def test_proportional_allocation_largest_remainder():
    allocation = allocate_proportional(pd.Series({"A": 500.0, "B": 300.0, "C": 200.0}), 7)
    # exact shares 3.5, 2.1, 1.4 -> floors 3, 2, 1 with one left for the largest remainder (A)
    assert allocation == {"A": 4, "B": 2, "C": 1}
    assert sum(allocate_proportional(pd.Series({"A": 1.0, "B": 1.0, "C": 1.0}), 150).values()) == 150


def test_two_stage_self_weighting_and_reproducible():
    frame = make_frame()
    first = select_pps(
        frame, stratum="region", psu="municipality", size="households", psus=12, take=24, seed=5, reserves=2
    )
    again = select_pps(
        frame, stratum="region", psu="municipality", size="households", psus=12, take=24, seed=5, reserves=2
    )
    pd.testing.assert_frame_equal(first.tables["selection"], again.tables["selection"])
    selection = first.tables["selection"]
    assert len(selection) == 12 and selection["take"].eq(24).all()
    assert first.estimate("interviews_planned") == 288
    # pi_overall = pi_psu * take / households, and with PPS on households it is n_h * take / total_h in a stratum
    totals = frame.groupby("region")["households"].sum()
    for _, row in selection.iterrows():
        n_h = first.settings["allocation"][row["stratum"]]
        if not row["certainty"]:
            assert row["pi_psu"] == pytest.approx(n_h * row["psu_size"] / totals[row["stratum"]])
            assert row["pi_overall"] == pytest.approx(n_h * 24 / totals[row["stratum"]])
        assert row["design_weight"] == pytest.approx(1 / row["pi_overall"])
    reserves = first.tables["reserves"]
    assert set(reserves["psu"]).isdisjoint(set(selection["psu"]))
    assert len(reserves) == 2 * len(selection)
    different = select_pps(
        frame, stratum="region", psu="municipality", size="households", psus=12, take=24, seed=6
    )
    assert set(different.tables["selection"]["psu"]) != set(selection["psu"])


def test_three_stage_with_secondary_units():
    rng = np.random.default_rng(1)
    rows = [
        {
            "stratum": "S",
            "municipality": f"M{m}",
            "barangay": f"M{m}-B{b}",
            "households": int(rng.integers(100, 900)),
        }
        for m in range(10)
        for b in range(6)
    ]
    frame = pd.DataFrame(rows)
    result = select_pps(
        frame,
        stratum="stratum",
        psu="municipality",
        ssu="barangay",
        size="households",
        psus=4,
        ssus_per_psu=2,
        take=24,
        seed=3,
        reserves=1,
    )
    selection = result.tables["selection"]
    assert len(selection) == 8
    psu_totals = frame.groupby("municipality")["households"].sum()
    for _, row in selection.iterrows():
        households = frame.loc[frame["barangay"] == row["ssu"], "households"].item()
        assert row["pi_ssu"] == pytest.approx(min(1.0, 2 * households / psu_totals[row["psu"]]))
        assert row["pi_overall"] == pytest.approx(row["pi_psu"] * row["pi_ssu"] * 24 / households)
    reserves = result.tables["reserves"]
    assert set(reserves["ssu"]).isdisjoint(set(selection["ssu"]))
    assert set(reserves["psu"]) <= set(selection["psu"])


def test_small_area_takes_all_with_warning_and_single_psu_stratum_warns():
    frame = pd.DataFrame(
        {"s": ["A", "A", "B", "B"], "p": ["a1", "a2", "b1", "b2"], "hh": [10, 400, 300, 300]}
    )
    result = select_pps(frame, stratum="s", psu="p", size="hh", psus={"A": 2, "B": 1}, take=24, seed=1)
    assert any("fewer than the take" in w for w in result.warnings)
    assert any("no within-stratum variance" in w for w in result.warnings)
    row = result.tables["selection"].set_index("psu").loc["a1"]
    assert row["take"] == 10 and row["pi_within"] == 1.0


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            lambda f: f.assign(households=f["households"].where(f.index != 4, 0)),
            DataError,
            "frame.csv, row 5, column 'households': size must be a positive number",
        ),
        (
            lambda f: f.assign(households=f["households"].astype(object).where(f.index != 2, "many")),
            DataError,
            "frame.csv, row 3, column 'households': size must be a positive number",
        ),
        (
            lambda f: f.assign(region=f["region"].where(f.index != 1, None)),
            DataError,
            "frame.csv, row 2, column 'region': value is missing",
        ),
        (
            lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True),
            DataError,
            "frame.csv, row 76, column 'municipality': duplicate PSU",
        ),
        (lambda f: f.drop(columns=["households"]), DataError, "frame.csv, column 'households': column not found"),
    ],
)
def test_frame_validation_errors(change, error, message):
    with pytest.raises(error) as caught:
        select_pps(
            change(make_frame()),
            stratum="region",
            psu="municipality",
            size="households",
            psus=6,
            take=24,
            seed=1,
            source="frame.csv",
        )
    assert str(caught.value).startswith(message)


def test_allocation_errors():
    frame = make_frame(per_stratum=3)
    with pytest.raises(ConfigError, match="stratum R0 is allocated 4 PSUs but has only 3"):
        select_pps(
            frame,
            stratum="region",
            psu="municipality",
            size="households",
            psus={"R0": 4, "R1": 1, "R2": 1},
            take=24,
            seed=1,
        )
    with pytest.raises(ConfigError, match="gives no PSU count for strata"):
        select_pps(
            frame, stratum="region", psu="municipality", size="households", psus={"R0": 1}, take=24, seed=1
        )


def test_select_cli_csv_and_errors(run_cli, tmp_path, capsys):
    frame = make_frame()
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=False)
    code, _, err = run_main(
        capsys,
        "design",
        "select",
        str(path),
        "--stratum",
        "region",
        "--psu",
        "municipality",
        "--size",
        "households",
        "--psus",
        "9",
        "--take",
        "24",
        "--seed",
        "42",
        "--format",
        "csv",
        "--out",
        str(tmp_path / "sel.csv"),
        "--reserves-out",
        str(tmp_path / "reserves.csv"),
    )
    assert code == 0, err
    selection = pd.read_csv(tmp_path / "sel.csv")
    assert {"pi_psu", "pi_within", "pi_overall", "design_weight"} <= set(selection.columns)
    assert len(selection) == 9 and len(pd.read_csv(tmp_path / "reserves.csv")) == 9
    bad = frame.copy()
    bad.loc[6, "households"] = -3
    bad.to_csv(tmp_path / "bad.csv", index=False)
    failed = run_cli(
        "design",
        "select",
        tmp_path / "bad.csv",
        "--stratum",
        "region",
        "--psu",
        "municipality",
        "--size",
        "households",
        "--psus",
        "9",
        "--take",
        "24",
    )
    assert failed.returncode == 2
    assert failed.stderr.startswith(
        "error: bad.csv, row 7, column 'households': size must be a positive number"
    )
    code, _, err = run_main(
        capsys,
        "design",
        "select",
        str(path),
        "--stratum",
        "region",
        "--psu",
        "municipality",
        "--size",
        "households",
        "--take",
        "24",
    )
    assert code == 2 and "give exactly one of --psus" in err
    alloc = tmp_path / "alloc.csv"
    pd.DataFrame({"stratum": ["R0", "R1", "R2"], "psus": [2, "x", 1]}).to_csv(alloc, index=False)
    code, _, err = run_main(
        capsys,
        "design",
        "select",
        str(path),
        "--stratum",
        "region",
        "--psu",
        "municipality",
        "--size",
        "households",
        "--take",
        "24",
        "--allocation",
        str(alloc),
    )
    assert code == 2 and "alloc.csv, row 2, column 'psus': PSU count must be a whole number" in err
    pd.DataFrame({"stratum": ["R0", "R1", "R2"], "psus": [2, 3, 1]}).to_csv(alloc, index=False)
    code, out, _ = run_main(
        capsys,
        "design",
        "select",
        str(path),
        "--stratum",
        "region",
        "--psu",
        "municipality",
        "--size",
        "households",
        "--take",
        "24",
        "--allocation",
        str(alloc),
        "--format",
        "json",
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["seed"] is not None and len(payload["tables"]["selection"]) == 6
