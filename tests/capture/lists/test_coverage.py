"""Sample-coverage estimators: CARE1 reference values, closed forms, simulation with known truth, validation."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hiddenpop.capture.lists.coverage import (
    _list_estimators,
    _mth_statistics,
    coverage_mth,
    log_transformed_interval,
    sample_coverage,
)
from hiddenpop.errors import ConfigError, DataError
from refdata import CAPTURE_DATA, REFERENCE

SPEC = (REFERENCE / "capture_models.md").read_text()


def _care1_reference() -> dict[str, list[str]]:
    """The CARE1 values quoted in the method spec, as printed strings (so we can compare to all digits)."""
    block = SPEC[SPEC.index("reproduces CARE1 to all printed digits") :]
    block = block[: block.index("\n\n")]
    found = re.findall(r"(HAV|Diabetes|Congenital) (\d+\.\d+) / (\d+\.\d+) /\s+(\d+\.\d+)", block)
    assert len(found) == 3
    return {name: list(values) for name, *values in found}


def _same_to_printed_digits(value: float, printed: str) -> bool:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return round(value, decimals) == pytest.approx(float(printed), abs=0.5 * 10**-decimals)


@pytest.mark.parametrize("name", ["HAV", "Diabetes", "Congenital"])
def test_care1_values_to_all_printed_digits(name):
    expected = _care1_reference()[name]
    result = sample_coverage(CAPTURE_DATA / f"care1_{name}.csv", bootstrap=0)
    for method, printed in zip(["Nhat-0 (Indep)", "Nhat (HSC)", "Nhat-1 (LSC)"], expected, strict=True):
        value = result.estimate("population", method)
        assert _same_to_printed_digits(value, printed), (name, method, value, printed)


def test_hav_low_coverage_warning_and_bootstrap():
    result = sample_coverage(CAPTURE_DATA / "care1_HAV.csv", bootstrap=300, seed=11)
    assert result.diagnostics["coverage"] == pytest.approx(0.513, abs=5e-4)
    assert any("≤ 0.55" in w for w in result.warnings)
    for _, row in result.table.iterrows():
        assert row["se"] > 0
        assert row["observed"] < row["lower"] < row["estimate"] < row["upper"]
    again = sample_coverage(CAPTURE_DATA / "care1_HAV.csv", bootstrap=300, seed=11)
    pd.testing.assert_frame_equal(result.table, again.table)
    other = sample_coverage(CAPTURE_DATA / "care1_HAV.csv", bootstrap=300, seed=12)
    assert not np.allclose(other.table["se"], result.table["se"])


def test_diabetes_no_warning_and_dependence_table():
    result = sample_coverage(CAPTURE_DATA / "care1_Diabetes.csv", bootstrap=50, seed=3)
    assert result.warnings == []
    dependence = result.tables["dependence"]
    assert len(dependence) == 6
    assert set(dependence.columns) >= {"list_i", "list_j", "both", "covariation"}


def _independent_expected_counts(population, probs):
    t = len(probs)
    patterns = ((np.arange(1, 2**t)[:, None] >> np.arange(t)) & 1).astype(np.int64)
    probs = np.asarray(probs)
    cell = np.prod(np.where(patterns == 1, probs, 1 - probs), axis=1)
    return patterns, population * cell


@pytest.mark.parametrize("probs", [[0.3, 0.2, 0.5], [0.1, 0.4, 0.25, 0.6], [0.2, 0.3, 0.15, 0.35, 0.5]])
def test_closed_form_independent_lists_recover_population_exactly(probs):
    # With exact expected counts under independence, D = N·C so N0 = N, B_ij/(n_i n_j) = 1/N so
    # HSC = D/C = N and every r_ij = 0 so LSC = N0 = N.
    patterns, counts = _independent_expected_counts(1000.0, probs)
    estimates = _list_estimators(patterns, counts)
    for key in ("independence", "hsc", "lsc"):
        assert estimates[key][0] == pytest.approx(1000.0, rel=1e-10)
    assert np.allclose(estimates["covariation"], 0.0, atol=1e-10)


def test_log_transformed_interval_formula():
    lower, upper = log_transformed_interval(150.0, 20.0, 100.0, 0.95)
    factor = np.exp(1.959963984540054 * np.sqrt(np.log(1 + 20.0**2 / 50.0**2)))
    assert lower == pytest.approx(100 + 50 / factor)
    assert upper == pytest.approx(100 + 50 * factor)
    assert np.isnan(log_transformed_interval(100.0, 5.0, 100.0, 0.95)[0])


def test_hare_mth_coverage_matches_spec_values():
    line = next(ln for ln in SPEC.splitlines() if "hare Ĉ =" in ln)
    expected = dict(re.findall(r"(Ĉ|γ̂²|N̂_0|N̂) = (\d+\.\d+)", line))
    result = coverage_mth(CAPTURE_DATA / "rcapture_hare.csv", bootstrap=0)
    assert _same_to_printed_digits(result.diagnostics["coverage"], expected["Ĉ"])
    assert _same_to_printed_digits(result.diagnostics["cv2"], expected["γ̂²"])
    assert _same_to_printed_digits(result.estimate("population", "Nhat-0 (Mth coverage)"), expected["N̂_0"])
    assert _same_to_printed_digits(result.estimate("population", "Nhat (Mth coverage)"), expected["N̂"])


def _simulate_mth(rng, population, occasions, reps, shape=2.0, mean_p=0.25):
    """p_ij = p_i e_j with p_i ~ Gamma-distributed individual effects (CV² = 1/shape)."""
    effect = rng.gamma(shape, 1.0 / shape, size=(reps, population, 1))
    occasion = np.linspace(0.7, 1.3, occasions)[None, None, :]
    p = np.clip(mean_p * effect * occasion, 0, 0.95)
    return rng.random((reps, population, occasions)) < p


def test_mth_coverage_simulation_bias_and_interval_coverage():
    # Known truth N = 400, t = 8, heterogeneity CV² = 0.5. The heterogeneity estimator should be nearly
    # unbiased (Chao, Lee & Jeng 1992) while N0 (no heterogeneity) is biased low; its 95% log-transformed
    # bootstrap interval should cover the truth at a sensible rate.
    rng = np.random.default_rng(2024)
    population, occasions, reps = 400, 8, 150
    caught = _simulate_mth(rng, population, occasions, reps)
    n0_values, nhat_values, covered = [], [], []
    for r in range(reps):
        histories = caught[r][caught[r].any(axis=1)].astype(int)
        frame = pd.DataFrame(histories, columns=[f"c{j}" for j in range(occasions)])
        result = coverage_mth(frame, bootstrap=150, seed=r)
        row = result.get("population", "Nhat (Mth coverage)")
        n0_values.append(result.estimate("population", "Nhat-0 (Mth coverage)"))
        nhat_values.append(row["estimate"])
        covered.append(row["lower"] <= population <= row["upper"])
    relative_bias = np.mean(nhat_values) / population - 1
    relative_bias_n0 = np.mean(n0_values) / population - 1
    assert abs(relative_bias) < 0.05, relative_bias
    assert relative_bias_n0 < -0.05, relative_bias_n0
    assert 0.85 <= np.mean(covered) <= 1.0, np.mean(covered)


def test_mth_statistics_vectorised_equals_loop():
    rng = np.random.default_rng(5)
    patterns = ((np.arange(1, 2**5)[:, None] >> np.arange(5)) & 1).astype(np.int64)
    counts = rng.poisson(4.0, size=(7, patterns.shape[0])).astype(float)
    batch = _mth_statistics(patterns, counts)
    for b in range(7):
        single = _mth_statistics(patterns, counts[b])
        assert single["heterogeneity"][0] == pytest.approx(batch["heterogeneity"][b])


def test_list_simulation_heterogeneity_induced_dependence():
    # Three lists, two latent classes of people (half "visible": capture probabilities 0.5/0.4/0.5, half
    # "hidden": 0.2 on every list). Heterogeneity shared by the lists makes them positively dependent, so the
    # independence estimator N0 is biased low; the HSC estimator removes most of that bias and the
    # one-step LSC estimator sits between the two (Chao et al. 2001). Coverage here is about 0.6.
    rng = np.random.default_rng(77)
    population, reps = 2000, 200
    visible = rng.random((reps, population)) < 0.5
    probs = np.where(visible[..., None], np.array([0.5, 0.4, 0.5]), np.array([0.2, 0.2, 0.2]))
    seen = rng.random((reps, population, 3)) < probs
    codes = (seen * np.array([1, 2, 4])).sum(axis=-1)
    counts = np.stack([(codes == c).sum(axis=1) for c in range(1, 8)], axis=1).astype(float)
    patterns = ((np.arange(1, 8)[:, None] >> np.arange(3)) & 1).astype(np.int64)
    estimates = _list_estimators(patterns, counts)
    bias = {key: estimates[key].mean() / population - 1 for key in ("independence", "hsc", "lsc")}
    assert bias["independence"] < -0.08, bias
    assert abs(bias["hsc"]) < abs(bias["independence"]) / 2, bias
    assert bias["independence"] < bias["lsc"] < 0, bias


# ---------------------------------------------------------------------------------------------- validation
def _write(tmp_path, text, name="lists.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A,B,C,count\n1,0,0,5\n0,2,0,3\n1,1,1,2\n", "row 2, column 'B'"),
        ("A,B,C,count\n1,0,0,5\n0,0,0,3\n1,1,1,2\n", "row 2"),
        ("A,B,C,count\n1,0,0,5\n0,1,0,-3\n1,1,1,2\n", "row 2, column 'count'"),
        ("A,B,C,count\n1,0,0,5\n0,1,0,2.5\n1,1,1,2\n", "row 2, column 'count'"),
        ("A,count\n1,5\n", "at least 2"),
        ("A,B,count\n1,0,5\n0,1,3\n1,1,2\n", "at least 3 lists"),
    ],
)
def test_bad_input_is_a_data_error_naming_the_place(tmp_path, text, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as info:
        sample_coverage(path, bootstrap=0)
    assert fragment in str(info.value)
    assert "lists.csv" in str(info.value)


def test_pattern_order_does_not_matter(tmp_path):
    frame = pd.read_csv(CAPTURE_DATA / "care1_HAV.csv")
    shuffled = frame.sample(frac=1.0, random_state=3)
    a = sample_coverage(frame, bootstrap=0).table["estimate"].to_numpy()
    b = sample_coverage(shuffled, bootstrap=0).table["estimate"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-13)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError):
        sample_coverage(CAPTURE_DATA / "care1_HAV.csv", bootstrap=-1)
    with pytest.raises(ConfigError):
        coverage_mth(CAPTURE_DATA / "rcapture_hare.csv", level=1.5)
