"""The robust design (Pollock 1982) as one log-linear model (Rivest & Daigle 2004): the grouped fit against the full
log-linear fit over every history, exact Jolly-Seber expected counts, simulation with known truth, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hiddenpop.capture.closed.models import parse_model
from hiddenpop.capture.core.histories import all_patterns
from hiddenpop.capture.core.loglinear import closed_design, fit_poisson
from hiddenpop.capture.events.open import full_open_design
from hiddenpop.capture.events.robust import robust_design
from hiddenpop.errors import ConfigError, DataError, ModelError


def simulate_robust(rng, periods, *, first=300, survival=0.7, births=120, p=0.25, spread=0.0):
    """Jolly-Seber population over the primary periods, closed within each; each unit present in a period is caught
    on each of its secondary occasions with probability p (logit-normal with sd ``spread`` across units).
    Returns the true period sizes and one row per unit seen."""
    alive = [np.ones(first, dtype=bool)]
    for _ in range(1, len(periods)):
        survived = alive[-1] & (rng.random(alive[-1].size) < survival)
        newcomers = rng.poisson(births)
        alive = [np.concatenate([a, np.zeros(newcomers, dtype=bool)]) for a in alive]
        alive.append(np.concatenate([survived, np.ones(newcomers, dtype=bool)]))
    present = np.column_stack(alive)
    logit = np.log(p / (1 - p)) + spread * rng.normal(size=(present.shape[0], 1))
    chance = 1 / (1 + np.exp(-logit))
    captured = np.hstack([present[:, [i]] & (rng.random((present.shape[0], t)) < chance)
                          for i, t in enumerate(periods)]).astype(np.int8)
    seen = captured[captured.sum(axis=1) > 0]
    return present.sum(axis=0), pd.DataFrame(seen, columns=[f"o{j + 1}" for j in range(seen.shape[1])])


def _full_design(periods, model_names):
    """The robust design's columns over all 2^T - 1 histories, built directly from the model formula."""
    total = sum(periods)
    cells = all_patterns(total)
    offsets = np.concatenate([[0], np.cumsum(periods)])
    seen = np.column_stack([cells[:, offsets[i] : offsets[i + 1]].any(axis=1) for i in range(len(periods))])
    blocks = [full_open_design(seen.astype(np.int8), "ep")[:, 1 : 2 * len(periods) - 1]]
    for i, name in enumerate(model_names):
        spec = parse_model(name)
        x, _ = closed_design(cells[:, offsets[i] : offsets[i + 1]], spec.base, spec.heterogeneity, spec.theta)
        blocks.append(x)  # the closed columns vanish at an empty sub-history: omega*_i x_i(omega_i) = x_i(omega_i)
    return cells, np.column_stack(blocks)


@pytest.fixture(scope="module")
def small():
    return simulate_robust(np.random.default_rng(3), [3, 3, 3], first=400, survival=0.75, births=150, p=0.3)


@pytest.mark.parametrize("model", ["M0", "Mt", "Mh Chao (LB)", "Mh Poisson2", "Mh Darroch", "Mh Gamma3.5",
                                   "Mth Chao (LB)", "Mth Darroch", "M0, Mt, Mh Darroch"])
def test_grouped_fit_equals_the_full_loglinear_fit_over_every_history(small, model):
    """The fit uses only primary-pattern and within-period counts; the full Poisson log-linear model over all
    2^9 - 1 histories (the shared engine, with the same columns held at 0) must give the same MLE."""
    _, frame = small
    periods = [3, 3, 3]
    result = robust_design(frame, periods=periods, model=model, count_column=None)
    names = [m.strip() for m in model.split(",")] if "," in model else [model] * 3
    _, design = _full_design(periods, names)
    codes = frame.to_numpy().astype(np.int64) @ (1 << np.arange(8, -1, -1))
    counts = np.bincount(codes, minlength=2**9)[1:].astype(float)
    parameters = result.tables["loglinear_parameters"]
    free = ~parameters["fixed_at_zero"].to_numpy()
    reference = fit_poisson(design[:, free[1:]], counts)
    assert result.diagnostics["deviance"] == pytest.approx(reference.deviance, rel=1e-9, abs=1e-8)
    assert result.diagnostics["df"] == reference.df
    assert result.diagnostics["aic"] == pytest.approx(reference.aic, rel=1e-10)
    np.testing.assert_allclose(parameters.loc[free, "estimate"], reference.coef, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(parameters.loc[free, "se"], np.sqrt(np.diag(reference.vcov)), rtol=1e-6)


def _expected_counts(periods, first, survival, births, p):
    """Expected history counts of the robust design under Jolly-Seber with occasion probabilities p[i][j]."""
    total = sum(periods)
    offsets = np.concatenate([[0], np.cumsum(periods)])
    n = len(periods)
    entering = np.concatenate([[first], births])
    stay = np.zeros((n, n))
    for a in range(n):
        for b in range(a, n):
            stay[a, b] = entering[a] * np.prod(survival[a:b]) * ((1 - survival[b]) if b < n - 1 else 1.0)
    cells = all_patterns(total)
    within = np.ones((len(cells), n))
    for i in range(n):
        sub = cells[:, offsets[i] : offsets[i + 1]]
        within[:, i] = np.prod(np.where(sub == 1, p[i], 1 - p[i]), axis=1)
    seen = np.column_stack([cells[:, offsets[i] : offsets[i + 1]].any(axis=1) for i in range(n)])
    expected = np.zeros(len(cells))
    for row in range(len(cells)):
        hits = np.flatnonzero(seen[row])
        for a in range(hits[0] + 1):
            for b in range(hits[-1], n):
                expected[row] += stay[a, b] * np.prod(within[row, a : b + 1])
    return cells, expected


def test_exact_expected_counts_give_back_the_population():
    """Closed form: fitted to Jolly-Seber expected counts (Mt within periods; rounded to whole numbers at a scale
    where rounding moves them by under 1e-6), the model returns the true p*_i, phi_i, N_i, B_i and deviance ~0."""
    periods = [2, 3, 2]
    survival = np.array([0.8, 0.6])
    births = np.array([4e7, 2e7])
    p = [np.array([0.3, 0.5]), np.array([0.2, 0.4, 0.35]), np.array([0.6, 0.45])]
    cells, expected = _expected_counts(periods, 1e8, survival, births, p)
    frame = pd.DataFrame(cells, columns=[f"o{j}" for j in range(7)]).assign(freq=np.round(expected))
    result = robust_design(frame, periods=periods, model="Mt")
    table = result.table

    def values(quantity):
        return table.loc[table["quantity"] == quantity, "estimate"].to_numpy()

    sizes = np.array([1e8, 1e8 * 0.8 + 4e7, (1e8 * 0.8 + 4e7) * 0.6 + 2e7])
    caught = np.array([1 - np.prod(1 - q) for q in p])
    np.testing.assert_allclose(values("capture_probability"), caught, rtol=1e-6)
    np.testing.assert_allclose(values("survival"), survival, rtol=1e-6)
    np.testing.assert_allclose(values("abundance"), sizes, rtol=1e-6)
    np.testing.assert_allclose(values("arrivals"), births, rtol=1e-5)
    assert result.estimate("total_ever_present") == pytest.approx(1e8 + births.sum(), rel=1e-6)
    assert result.diagnostics["deviance"] < 1e-3


def test_simulated_open_population_period_size_coverage():
    """Known truth: 300 units, survival 0.7, about 120 arrivals per interval, four primary periods of five
    occasions (p = 0.25 each), Mt within periods; 50 replicates. The 95% intervals of N_i cover the true size in
    88-100% of cases, and so do those of phi and of the arrivals (against their realised values)."""
    rng = np.random.default_rng(20260523)
    periods = [5, 5, 5, 5]
    hits = total = phi_hits = phi_total = 0
    ratios = []
    for _ in range(50):
        truth, frame = simulate_robust(rng, periods)
        result = robust_design(frame, periods=periods, model="Mt", count_column=None)
        table = result.table
        sizes = table[table["quantity"] == "abundance"]
        hits += int(((sizes["lower"] <= truth) & (truth <= sizes["upper"])).sum())
        total += truth.size
        ratios.append(sizes["estimate"].to_numpy() / truth)
        survival = table[table["quantity"] == "survival"]
        phi_hits += int(((survival["lower"] <= 0.7) & (0.7 <= survival["upper"])).sum())
        phi_total += len(survival)
    assert 0.88 <= hits / total <= 1.0, hits / total
    assert 0.88 <= phi_hits / phi_total <= 1.0, phi_hits / phi_total
    assert np.abs(np.mean(ratios, axis=0) - 1).max() < 0.03


def test_heterogeneity_within_periods_needs_a_heterogeneity_model():
    """Known truth with logit-normal capture heterogeneity (sd 1.5): Mt underestimates period sizes, Mh Darroch
    (normal mixing on the logit scale) is close to the truth on average."""
    rng = np.random.default_rng(41)
    periods = [6, 6, 6]
    mt, darroch = [], []
    for _ in range(20):
        truth, frame = simulate_robust(rng, periods, first=600, births=200, p=0.3, spread=1.5)
        for model, store in (("Mt", mt), ("Mh Darroch", darroch)):
            table = robust_design(frame, periods=periods, model=model, count_column=None).table
            store.append(table.loc[table["quantity"] == "abundance", "estimate"].to_numpy() / truth)
    assert np.mean(mt) < 0.93
    assert abs(np.mean(darroch) - 1) < abs(np.mean(mt) - 1)


def test_row_order_and_aggregation_do_not_change_the_result(small):
    _, frame = small
    grouped = frame.value_counts().rename("freq").reset_index()
    first = robust_design(frame, periods=[3, 3, 3], model="Mt", count_column=None)
    second = robust_design(grouped.sample(frac=1.0, random_state=2), periods=[3, 3, 3], model="Mt")
    pd.testing.assert_frame_equal(first.table, second.table, rtol=1e-10)
    assert first.diagnostics["deviance"] == pytest.approx(second.diagnostics["deviance"], rel=1e-10)


def test_bad_inputs_are_named(small):
    _, frame = small
    with pytest.raises(DataError, match="9 occasion columns, but the periods add up to 10"):
        robust_design(frame, periods=[3, 3, 4], count_column=None, source="x.csv")
    broken = frame.copy()
    broken.iloc[4, 2] = 2
    with pytest.raises(DataError, match=r"x\.csv: row 5, column 'o3'"):
        robust_design(broken, periods=[3, 3, 3], count_column=None, source="x.csv")
    counted = frame.assign(freq=1.0)
    counted.loc[7, "freq"] = -1
    with pytest.raises(DataError, match="row 8, column 'freq'"):
        robust_design(counted, periods=[3, 3, 3])
    with pytest.raises(ConfigError, match="periods"):
        robust_design(frame, periods="3,x,3", count_column=None)
    with pytest.raises(ConfigError, match="Mb is not offered"):
        robust_design(frame, periods=[3, 3, 3], model="Mb", count_column=None)
    with pytest.raises(ConfigError, match="at least 3 secondary occasions"):
        robust_design(frame.iloc[:, :7], periods=[3, 2, 2], model="Mh Chao (LB)", count_column=None)
    with pytest.raises(ConfigError, match="one per period"):
        robust_design(frame, periods=[3, 3, 3], model="M0, Mt", count_column=None)
    once = frame[frame.iloc[:, 3:6].sum(axis=1) <= 1]
    with pytest.raises(ModelError, match="primary period 2: no unit was caught twice"):
        robust_design(once, periods=[3, 3, 3], count_column=None)


def test_command_line_runs_the_robust_design_and_refuses_bad_periods(small, tmp_path, run_cli):
    _, frame = small
    path = tmp_path / "robust.csv"
    frame.value_counts().rename("freq").reset_index().to_csv(path, index=False)
    done = run_cli("capture", "robust", path, "--periods", "3,3,3", "--model", "Mh Darroch", "--format", "json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    direct = robust_design(frame, periods=[3, 3, 3], model="Mh Darroch", count_column=None)
    assert [r["estimate"] for r in payload["estimates"]] == pytest.approx(direct.table["estimate"].tolist(),
                                                                          rel=1e-12)
    assert payload["settings"]["periods"] == [3, 3, 3]
    bad = run_cli("capture", "robust", path, "--periods", "3,3")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "robust.csv" in bad.stderr and "periods add up to 6" in bad.stderr


def test_report_log_histories_in_primary_periods_match_a_direct_count():
    """Each identifier's history over periods x occasions x days (bits set by the days it was reported), counted
    by the batched computation, equals a plain per-identifier count; batches never split an identifier."""
    from hiddenpop.capture.events.occasions import robust_history_counts, robust_plan

    rng = np.random.default_rng(9)
    codes = np.sort(rng.integers(0, 300, size=4000))
    days = rng.integers(0, 120, size=codes.size)
    frame = pd.DataFrame({"code": codes, "day": days}).drop_duplicates().sort_values(["code", "day"])
    plan = robust_plan(0, 119, occasion="2D", occasions=5, periods=3, step="15D")
    cut = int(np.searchsorted(frame["code"].to_numpy(), 150))
    batches = [(frame["code"].to_numpy()[:cut], frame["day"].to_numpy()[:cut]),
               (frame["code"].to_numpy()[cut:], frame["day"].to_numpy()[cut:])]
    found = robust_history_counts(batches, plan)
    assert len(found) == plan.n_windows == len(range(0, 120 - 30 + 1, 15))
    for (values, counts), start in zip(found, plan.starts, strict=True):
        expected: dict[int, int] = {}
        for _, rows in frame[(frame["day"] >= start) & (frame["day"] < start + 30)].groupby("code"):
            history = 0
            for day in rows["day"]:
                history |= 1 << (14 - (day - start) // 2)
            expected[history] = expected.get(history, 0) + 1
        assert dict(zip(values.tolist(), counts.tolist(), strict=True)) == expected
