"""Open models that say what they cannot see: parameters the included histories do not identify are dropped and every
quantity that depends on them is reported as not identifiable, with the reason (issue #23, item 3)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hiddenpop.capture.events.open import (
    full_open_design,
    history_matrix,
    open_population,
    reported_quantities,
)
from hiddenpop.errors import ModelError
from openpop import jolly_seber_cells
from refdata import CAPTURE_DATA, load_fixture

BUNTING_SINGLES = [format(1 << k, "08b") for k in range(8)]


@pytest.fixture(scope="module")
def bunting():
    return pd.read_csv(CAPTURE_DATA / "rcapture_bunting.csv")


@pytest.fixture(scope="module")
def bunting_without_singles(bunting):
    return open_population(bunting, exclude=BUNTING_SINGLES, drop_unidentified=True)


def _flags(result, quantity):
    rows = result.table[result.table["quantity"] == quantity]
    return rows["identifiable"].to_numpy(dtype=bool), rows["estimate"].to_numpy(dtype=float)


def test_bunting_without_single_captures_reproduces_cormack_1993(bunting_without_singles):
    fixture = load_fixture("capture_bunting_open_single_captures_excluded.json")
    diag = bunting_without_singles.diagnostics
    assert diag["deviance"] == pytest.approx(fixture["expected"]["deviance"], abs=fixture["tolerance_absolute"])
    assert diag["df"] == fixture["expected"]["df"]
    # published: population sizes and births are not identifiable
    for quantity in ("abundance", "arrivals"):
        identifiable, estimate = _flags(bunting_without_singles, quantity)
        assert not identifiable.any() and np.isnan(estimate).all()


def test_bunting_without_single_captures_identifies_exactly_what_the_design_allows(bunting_without_singles):
    """Derivation. With I = 8 the observable histories with 'not seen up to period 7' are 00000001 only, and with
    'not seen from period 2 on' 10000000 only: excluding the single captures leaves gamma7 and gamma14 without
    support (rank 19 of 21). gamma14 carries the units seen in period 1 and never again, so phi_1 is lost; gamma7
    acts on N_8, already lost under unconstrained p*. The model's N_2..N_7 do not involve them, but every
    abundance adds back observed minus fitted over the excluded histories, and the fitted counts of 10000000 and
    00000001 are exactly what is unseen: all N_i and B_i are lost. p*_2..p*_7 and phi_2..phi_6 use neither; the total
    is n plus the never-seen units, whose closed form has neither gamma7 nor gamma14."""
    result = bunting_without_singles
    assert result.diagnostics["aliased_parameters"] == ["gamma7", "gamma14"]
    expected = {"capture_probability": [False] + [True] * 6 + [False],
                "survival": [False] + [True] * 5 + [False],
                "total_ever_present": [True]}
    for quantity, flags in expected.items():
        identifiable, estimate = _flags(result, quantity)
        assert identifiable.tolist() == flags, quantity
        assert np.isfinite(estimate[identifiable]).all() and np.isnan(estimate[~identifiable]).all()
    table = result.table.set_index(["quantity", "period"])
    assert "gamma14" in table.loc[("survival", "1->2"), "reason"]
    assert "10000000" in table.loc[("survival", "1->2"), "reason"]
    assert "capture probability of period 8" in table.loc[("survival", "7->8"), "reason"]
    assert "fitted counts of 10000000, 00000001" in table.loc[("abundance", "4"), "reason"]
    assert (table.loc[table["identifiable"], "reason"] == "").all()
    assert any("gamma7, gamma14" in w for w in result.warnings)
    fitted = result.tables["fitted"].set_index("history")
    assert np.isnan(fitted.loc[["10000000", "00000001"], "fitted"]).all()
    assert np.isfinite(fitted.loc[["01000000", "00000010"], "fitted"]).all()
    parameters = result.tables["loglinear_parameters"].set_index("parameter")
    assert parameters.loc[["gamma7", "gamma14"], "aliased"].all()
    assert parameters.loc[["gamma7", "gamma14"], "estimate"].isna().all()


def test_identifiable_estimates_do_not_depend_on_the_excluded_counts(bunting, bunting_without_singles):
    """What the included histories identify cannot move when only excluded counts change; the total moves by
    exactly the change in units seen (it is n plus the never-seen units)."""
    changed = bunting.copy()
    singles = changed[["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"]].sum(axis=1) == 1
    changed.loc[singles, "freq"] = changed.loc[singles, "freq"] * 3 + 1
    other = open_population(changed, exclude=BUNTING_SINGLES, drop_unidentified=True)
    first = bunting_without_singles.table
    second = other.table
    rows = first["identifiable"].to_numpy() & (first["quantity"] != "total_ever_present").to_numpy()
    np.testing.assert_allclose(second.loc[rows, "estimate"], first.loc[rows, "estimate"], rtol=1e-9)
    np.testing.assert_allclose(second.loc[rows, "se"], first.loc[rows, "se"], rtol=1e-9)
    added = changed["freq"].sum() - bunting["freq"].sum()
    assert other.estimate("total_ever_present") - bunting_without_singles.estimate("total_ever_present") == (
        pytest.approx(added, rel=1e-9))


def _null_space(matrix: np.ndarray) -> np.ndarray:
    _, singular, vt = np.linalg.svd(matrix)
    rank = int((singular > 1e-9 * singular[0]).sum())
    return vt[rank:]


@pytest.mark.parametrize(("data", "settings"), [
    ("rcapture_bunting.csv", {"exclude": BUNTING_SINGLES}),
    ("rcapture_duck.csv", {}),
    ("rcapture_duck.csv", {"exclude": ["100000"]}),
    ("rcapture_duck.csv", {"exclude": ["100000", "000001", "010000"], "capture": "ep"}),
])
def test_flags_agree_with_local_identifiability_from_the_svd(data, settings):
    """An independent criterion: a smooth quantity is locally identified when its gradient (central differences)
    has no component in the null space of the included cells' design (SVD), the design widened by w_1 and w_I under
    unconstrained capture, whose coefficients are p*_1 and p*_I on the logit scale."""
    frame = pd.read_csv(CAPTURE_DATA / data)
    result = open_population(frame, drop_unidentified=True, **settings)
    capture = settings.get("capture", "up")
    fitted = result.tables["fitted"]
    kept = fitted["kept"].to_numpy()
    counts = fitted["observed"].to_numpy(dtype=float)
    periods = result.settings["periods"]
    histories = history_matrix(periods)
    design = full_open_design(histories, capture)
    parameters = result.tables["loglinear_parameters"]
    theta = parameters["estimate"].fillna(0.0).to_numpy()
    varies = ~(parameters["fixed_at_boundary"].to_numpy())
    if capture == "up":
        design = np.column_stack([design, histories[:, 0], histories[:, -1]])
        theta = np.concatenate([theta, [0.0, 0.0]])
        varies = np.concatenate([varies, [True, True]])
    null = np.zeros((0, theta.size))
    block = _null_space(design[kept][:, varies])
    if block.size:
        null = np.zeros((block.shape[0], theta.size))
        null[:, varies] = block
    table = result.table
    for quantity in ("capture_probability", "survival", "abundance", "arrivals", "total_ever_present"):
        flags = table.loc[table["quantity"] == quantity, "identifiable"].to_numpy(dtype=bool)
        gradient = []
        for k in range(theta.size):
            step = np.zeros(theta.size)
            step[k] = 1e-5
            up = reported_quantities(theta + step, histories, capture, kept, counts)[quantity]
            down = reported_quantities(theta - step, histories, capture, kept, counts)[quantity]
            gradient.append((np.atleast_1d(up) - np.atleast_1d(down)) / 2e-5)
        gradient = np.array(gradient)  # (parameters, entries)
        scale = np.abs(gradient).max(axis=0) + 1e-12
        unseen = np.abs(null @ gradient).max(axis=0, initial=0.0) / scale > 1e-5
        assert flags.tolist() == (~unseen).tolist(), quantity


def test_unconstrained_capture_reports_rcapture_unidentifiable_list_at_every_length():
    """Rcapture openp (m = "up"): p*_1, p*_I, phi_{I-1}, N_1, N_I, B_1, B_{I-1} not identifiable, the rest are."""
    rng = np.random.default_rng(7)
    for periods in (3, 4, 6):
        counts = rng.poisson(30.0, size=2**periods - 1).astype(float)
        result = open_population(counts, periods=periods)
        last = periods - 1
        expected = {"capture_probability": {0, last}, "survival": {last - 1}, "abundance": {0, last},
                    "arrivals": {0, last - 1}, "total_ever_present": set()}
        for quantity, lost in expected.items():
            identifiable, _ = _flags(result, quantity)
            assert set(np.flatnonzero(~identifiable).tolist()) == lost, (periods, quantity)


def test_without_the_option_unidentified_parameters_are_refused_with_their_names(bunting):
    with pytest.raises(ModelError, match=r"not of full rank \(19 < 21 parameters\).*gamma7, gamma14.*"
                                         r"drop-unidentified"):
        open_population(bunting, exclude=BUNTING_SINGLES)


def _transient_study(rng, periods, residents, survival, births, transients, p):
    """Residents follow Jolly-Seber; each period also has transients present in that period only."""
    alive = [np.ones(residents, dtype=bool)]
    for _ in range(1, periods):
        survived = alive[-1] & (rng.random(alive[-1].size) < survival)
        newcomers = rng.poisson(births)
        alive = [np.concatenate([a, np.zeros(newcomers, dtype=bool)]) for a in alive]
        alive.append(np.concatenate([survived, np.ones(newcomers, dtype=bool)]))
    present = np.column_stack(alive)
    passing = np.kron(np.eye(periods, dtype=bool), np.ones((transients, 1), dtype=bool))
    present = np.vstack([present, passing])
    captured = present & (rng.random(present.shape) < p)
    codes = captured.astype(int) @ (1 << np.arange(periods - 1, -1, -1))
    return np.bincount(codes, minlength=2**periods)[np.arange(2**periods - 1, 0, -1)]


def test_excluding_single_captures_recovers_resident_survival_despite_transients():
    """Known truth: residents with survival 0.7 plus 150 transients per period (seen at most once). With the single
    captures treated as missing the identifiable survivals (phi_2..phi_4) cover 0.7 at the nominal rate; with them
    kept the transients drag survival down and the same intervals fail that check."""
    rng = np.random.default_rng(20260523)
    periods, replicates, survival = 6, 60, 0.7
    singles = [format(1 << k, f"0{periods}b") for k in range(periods)]
    hits = naive_hits = total = 0
    for _ in range(replicates):
        counts = _transient_study(rng, periods, residents=500, survival=survival, births=150, transients=150, p=0.5)
        result = open_population(counts, periods=periods, exclude=singles, drop_unidentified=True)
        rows = result.table[(result.table["quantity"] == "survival") & result.table["identifiable"]]
        assert rows["period"].tolist() == ["2->3", "3->4", "4->5"]
        hits += int(((rows["lower"] <= survival) & (survival <= rows["upper"])).sum())
        total += len(rows)
        naive = open_population(counts, periods=periods).table
        naive = naive[naive["period"].isin(rows["period"]) & (naive["quantity"] == "survival")]
        naive_hits += int(((naive["lower"] <= survival) & (survival <= naive["upper"])).sum())
    assert 0.88 <= hits / total <= 1.0, hits / total
    assert naive_hits / total < 0.88, naive_hits / total


def test_command_line_reports_what_it_can_and_says_why(run_cli):
    path = CAPTURE_DATA / "rcapture_bunting.csv"
    exclusions = [arg for label in BUNTING_SINGLES for arg in ("--exclude-history", label)]
    refused = run_cli("capture", "open", path, *exclusions)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1 and "--drop-unidentified" in refused.stderr
    done = run_cli("capture", "open", path, *exclusions, "--drop-unidentified", "--format", "json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    rows = [r for r in payload["estimates"] if r["quantity"] == "abundance"]
    assert all(r["identifiable"] is False and r["estimate"] is None and r["reason"] for r in rows)
    assert payload["diagnostics"]["df"] == 228



def test_a_quantity_at_zero_is_not_called_unidentified_for_rounding():
    """No arrivals between periods 2 and 3 (a gamma at the boundary, B_2 = 0 up to rounding) with one excluded
    history whose fitted count stays identified: every quantity keeps the status it has without the exclusion."""
    survival = np.array([0.8, 0.7, 0.75, 0.6])
    births = np.array([200.0, 0.0, 150.0, 100.0])
    cells, _ = jolly_seber_cells(5, 1000.0, survival, np.array(births), np.array([0.4, 0.5, 0.45, 0.5, 0.4]))
    counts = np.round(cells)
    full = open_population(counts, periods=5)
    excluded = open_population(counts, periods=5, exclude=["01100"], drop_unidentified=True)
    assert excluded.diagnostics["aliased_parameters"] == []
    assert excluded.table["identifiable"].tolist() == full.table["identifiable"].tolist()
    rows = excluded.table.set_index(["quantity", "period"])
    assert rows.loc[("arrivals", "2->3"), "estimate"] == pytest.approx(0.0, abs=1.0)
