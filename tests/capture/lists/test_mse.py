"""Multiple systems estimation: UK reference, extended-MLE checks, procedures on every MSE data set, closed forms."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hiddenpop.capture.core.terms import term_name
from hiddenpop.capture.lists import existence
from hiddenpop.capture.lists.bootstrap import bca_interval, bic_batch_abundance, jackknife_acceleration
from hiddenpop.capture.lists.data import list_data
from hiddenpop.capture.lists.existence import check_extended_mle
from hiddenpop.capture.lists.fitting import fit_model
from hiddenpop.capture.lists.models import mse
from hiddenpop.capture.lists.selection import select_model
from hiddenpop.capture.lists.space import design_matrix, hierarchical_models, is_hierarchical
from hiddenpop.errors import ConfigError, DataError
from refdata import CAPTURE_DATA, load_fixture

UK = load_fixture("capture_uk_modern_slavery_5_lists.json")


def _uk_path():
    # the fixture names its data by the file name of the bundled dataset
    return CAPTURE_DATA / UK["data"].split()[0].split("/")[-1]


@pytest.fixture(scope="module")
def uk_aic():
    return mse(_uk_path(), "aic")


def test_uk_aic_selects_published_interactions_in_order(uk_aic):
    assert uk_aic.diagnostics["selected"] == UK["selected_interactions_in_order"]


def test_uk_aic_reproduces_reference_numbers(uk_aic):
    expected = UK["expected"]
    rel = UK["tolerance"]["abundance_relative"]
    absolute = UK["tolerance"]["profile_ci_absolute"]
    row = uk_aic.table.iloc[0]
    assert row["estimate"] == pytest.approx(expected["poisson_abundance"], rel=rel)
    assert row["se"] == pytest.approx(expected["stderr"], rel=rel)
    assert row["deviance"] == pytest.approx(expected["deviance"], rel=rel)
    assert row["df"] == expected["df"]
    assert row["aic"] == pytest.approx(expected["aic"], rel=rel)
    assert row["bic"] == pytest.approx(expected["bic"], rel=rel)
    assert row["multinomial_estimate"] == pytest.approx(expected["profile_multinomial_abundance"], rel=rel)
    assert row["lower"] == pytest.approx(expected["lower95"], abs=absolute)
    assert row["upper"] == pytest.approx(expected["upper95"], abs=absolute)
    assert row["procedure"] == "aic" and row["threshold"] == 0.05


def test_uk_main_effects_only(uk_aic):
    # The reference value is the multinomial (profile) estimate of the main-effects model.
    main = uk_aic.get("population", "MSE main effects only")
    rel = UK["tolerance"]["abundance_relative"]
    assert main["multinomial_estimate"] == pytest.approx(
        UK["expected"]["main_effects_only_abundance"], rel=rel
    )
    assert main["estimate"] > main["multinomial_estimate"]  # Poisson estimate sits slightly above


def test_uk_stepwise_selects_the_same_model():
    result = mse(_uk_path(), "stepwise", profile=False)
    assert sorted(result.diagnostics["selected"]) == sorted(UK["selected_interactions_in_order"])
    assert result.estimate("population", "MSE stepwise (threshold 0.02)") == pytest.approx(
        UK["expected"]["poisson_abundance"], rel=UK["tolerance"]["abundance_relative"]
    )


def test_uk_bic_order_two_beats_the_aic_model_on_bic(uk_aic):
    selection = select_model(_uk_path(), "bic", max_order=2)
    assert selection.fit.bic <= uk_aic.table.iloc[0]["bic"] + 1e-9
    ranking = selection.candidates
    assert ranking["bic"].is_monotonic_increasing
    assert ranking.iloc[0]["bic"] == pytest.approx(selection.fit.bic)


# ---------------------------------------------------------------------------------------------- extended MLE
def test_artificial_3_existence_and_identifiability():
    # Chan, Silverman & Vincent (2021) Table 2: all pairs -> not identifiable; A:B alone -> no extended MLE;
    # A:C + B:C (both lists pairs that share nobody, fixed at -inf) -> fine.
    path = CAPTURE_DATA / "mse_Artificial_3.csv"
    assert check_extended_mle(path, ["A:B", "A:C", "B:C"]) == existence.NOT_IDENTIFIABLE
    assert check_extended_mle(path, ["A:B"]) == existence.NO_MLE
    assert check_extended_mle(path, ["A:C", "B:C"]) == existence.EXISTS
    assert check_extended_mle(path, []) == existence.EXISTS


def test_fast_existence_check_agrees_with_the_linear_programme():
    rng = np.random.default_rng(8)
    checked = failures = 0
    for name in ("mse_UKdat_5", "mse_Western", "mse_Korea", "mse_Artificial_3"):
        data = list_data(CAPTURE_DATA / f"{name}.csv")
        models = hierarchical_models(data.lists, 2)
        for draw in range(2):
            counts = (
                data.counts if draw == 0 else rng.multinomial(int(data.observed), data.counts / data.observed)
            )
            counts = np.asarray(counts, dtype=float)
            for terms in models[:: max(1, len(models) // 40)]:
                finite, _neg, kept = existence.split_terms(data, terms, counts)
                design = design_matrix(data.patterns, finite)[kept]
                y = counts[kept]
                if np.linalg.matrix_rank(design) < design.shape[1] or np.all(y > 0):
                    continue
                fast = existence._exists_full_rank(design, y > 0)
                assert fast == existence._exists_lp(design, y), (name, terms)
                checked += 1
                failures += not fast
    assert checked > 100 and failures > 0


def test_non_overlapping_pair_is_fixed_at_minus_infinity():
    data = list_data(CAPTURE_DATA / "mse_Artificial_3.csv")
    fit = fit_model(data, ["A:C", "B:C"])
    assert fit.ok
    assert [term_name(t, data.names) for t in fit.neg_inf_terms] == ["A:C", "B:C"]
    assert fit.parameters == 6  # intercept, 3 main effects, 2 interactions at -inf (counted in AIC/BIC)
    # the cells containing A and C, or B and C, are structural zeros with fitted value 0
    both = (data.patterns[:, 2] == 1) & ((data.patterns[:, 0] == 1) | (data.patterns[:, 1] == 1))
    assert np.all(fit.fitted[both] == 0)
    assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * 6)


# ---------------------------------------------------------------------------------------------- closed forms
def test_two_lists_main_effects_is_lincoln_petersen():
    frame = pd.DataFrame({"A": [1, 1, 0], "B": [1, 0, 1], "count": [167, 781, 254]})
    fit = fit_model(frame, [])
    n1, n2, m = 167 + 781, 167 + 254, 167
    assert fit.abundance == pytest.approx(n1 * n2 / m, rel=1e-10)


def test_independent_lists_with_expected_counts_recover_population():
    probs = np.array([0.3, 0.2, 0.45, 0.25])
    patterns = ((np.arange(1, 16)[:, None] >> np.arange(4)) & 1).astype(int)
    counts = 5000 * np.prod(np.where(patterns == 1, probs, 1 - probs), axis=1)
    frame = pd.DataFrame(patterns, columns=list("ABCD"))
    frame["count"] = np.round(counts * 1e6)  # whole numbers, exact up to the scale factor
    fit = fit_model(frame, [])
    assert fit.abundance == pytest.approx(5000 * 1e6, rel=1e-6)
    assert fit.deviance == pytest.approx(0, abs=1e-3)


def test_hierarchical_model_counts():
    assert len(hierarchical_models(3, 2)) == 8
    assert len(hierarchical_models(4, 3)) == 113
    assert len(hierarchical_models(5, 2)) == 1024
    models = hierarchical_models(4, 3)
    assert all(is_hierarchical(m) for m in models)
    assert len(set(models)) == len(models)


def test_korea_bic_has_six_admissible_models():
    # Silverman, Chan & Vincent (2024): six of the eight 3-list models pass the existence check.
    selection = select_model(CAPTURE_DATA / "mse_Korea.csv", "bic")
    assert len(selection.candidates) == 6


# ---------------------------------------------------------------------------------------------- BCa
def test_bca_without_bias_or_acceleration_is_the_percentile_interval():
    replicates = np.linspace(-3, 3, 2001)
    lower, upper, z0 = bca_interval(replicates, 0.0, 0.0, 0.9)
    assert z0 == pytest.approx(0.0, abs=1e-3)
    assert lower == pytest.approx(np.quantile(replicates, 0.05, method="median_unbiased"), abs=1e-2)
    assert upper == pytest.approx(np.quantile(replicates, 0.95, method="median_unbiased"), abs=1e-2)


def test_bca_shifts_with_bias_and_acceleration():
    rng = np.random.default_rng(1)
    replicates = rng.normal(0, 1, 4000)
    base = bca_interval(replicates, 0.0, 0.0, 0.95)
    biased = bca_interval(replicates, 0.5, 0.0, 0.95)  # estimate above most replicates: z0 > 0
    accelerated = bca_interval(replicates, 0.0, 0.1, 0.95)
    assert biased[2] > 0 and biased[0] > base[0] and biased[1] > base[1]
    assert accelerated[1] > base[1] and accelerated[0] > base[0]


def test_jackknife_acceleration_closed_form():
    values = np.array([1.0, 2.0, 4.0])
    weights = np.array([1.0, 1.0, 1.0])
    d = values.mean() - values
    expected = np.sum(d**3) / (6 * np.sum(d**2) ** 1.5)
    assert jackknife_acceleration(values, weights) == pytest.approx(expected)
    # weights count repeated histories: two copies of a value = weight 2
    assert jackknife_acceleration(np.array([1.0, 2.0]), np.array([2.0, 1.0])) == pytest.approx(
        jackknife_acceleration(np.array([1.0, 1.0, 2.0]), np.ones(3))
    )


@pytest.mark.parametrize("select", ["aic", "stepwise", "bic"])
def test_bootstrap_is_seeded_and_brackets_the_estimate(select):
    path = CAPTURE_DATA / "mse_Korea.csv"
    a = mse(path, select, bootstrap=40, seed=5)
    b = mse(path, select, bootstrap=40, seed=5)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.tables["bootstrap"], b.tables["bootstrap"])
    row = a.table.iloc[0]
    assert row["observed"] <= row["lower"] < row["upper"]
    assert "BCa" in row["interval"]
    assert a.seed == 5 and np.isfinite(a.diagnostics["bca_acceleration"])
    assert json.loads(a.to_json())["estimates"][0]["procedure"] == select  # serialisable, names its procedure


# ---------------------------------------------------------------------------------------------- all data sets
@pytest.mark.parametrize(
    ("name", "select", "kwargs"),
    [
        ("mse_Western", "aic", {}),
        ("mse_Western", "stepwise", {}),
        ("mse_Western", "bic", {"max_order": 2}),
        ("mse_Kosovo", "aic", {}),
        ("mse_Kosovo", "stepwise", {}),
        ("mse_Kosovo", "bic", {}),
        ("mse_Korea", "aic", {}),
        ("mse_Korea", "stepwise", {}),
        ("mse_Korea", "bic", {}),
        ("mse_Ned", "aic", {}),
        ("mse_Ned", "stepwise", {}),
        ("mse_Ned_5", "bic", {"max_order": 2}),
        ("mse_NewOrl", "aic", {}),
        ("mse_NewOrl", "stepwise", {}),
        ("mse_NewOrl_5", "bic", {"max_order": 2}),
        ("mse_UKdat", "stepwise", {}),
    ],
)
def test_procedures_run_on_every_mse_data_set(name, select, kwargs):
    result = mse(CAPTURE_DATA / f"{name}.csv", select, **kwargs)
    row = result.table.iloc[0]
    observed = row["observed"]
    assert observed < row["estimate"] < 100 * observed
    assert row["se"] > 0
    assert observed <= row["lower"] < row["estimate"] < row["upper"]
    assert row["procedure"] == select
    assert len(result.tables["path"]) >= 1


def test_bic_on_eight_lists_explains_the_limit():
    with pytest.raises(ConfigError, match="too many to enumerate"):
        mse(CAPTURE_DATA / "mse_NewOrl.csv", "bic")


# ---------------------------------------------------------------------------------------------- validation
def test_settings_are_validated():
    path = CAPTURE_DATA / "mse_Korea.csv"
    with pytest.raises(ConfigError):
        mse(path, "lasso")
    with pytest.raises(ConfigError):
        mse(path, "aic", p_threshold=1.5)
    with pytest.raises(ConfigError):
        mse(path, "bic", max_order=3)
    with pytest.raises(ConfigError):
        mse(path, "aic", bootstrap=-2)


def test_empty_list_is_a_data_error(tmp_path):
    path = tmp_path / "lists.csv"
    path.write_text("A,B,C,count\n1,0,0,5\n0,1,0,3\n1,1,0,2\n")
    with pytest.raises(DataError, match=r"lists\.csv.*\['C'\] contain nobody"):
        mse(path, "aic")


def test_batched_bootstrap_refits_match_the_shared_engine():
    # The BIC bootstrap refits many models to many replicates with a batched Newton solver; on the original
    # counts it must give the same abundance and BIC as the shared log-linear engine (fit_model).
    for name in ("mse_Korea", "mse_Kosovo"):
        data = list_data(CAPTURE_DATA / f"{name}.csv")
        models = list(select_model(data, "bic").candidates["terms"])[:15]
        abundance, bic = bic_batch_abundance(data, models, data.counts[None, :])
        for m, terms in enumerate(models):
            fit = fit_model(data, terms)
            assert abundance[m, 0] == pytest.approx(fit.abundance, rel=1e-8)
            assert bic[m, 0] == pytest.approx(fit.bic, rel=1e-10)
