"""Closed models against Rcapture reference numbers (tests/reference/capture_*.json) and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hiddenpop.capture.closed.descriptive_stats import descriptive, first_capture_fit
from hiddenpop.capture.closed.forms import (
    chao1987,
    chao_bias_corrected,
    chapman,
    closedp_bc,
    lincoln_petersen,
)
from hiddenpop.capture.closed.models import closedp, fit_closed
from hiddenpop.capture.closed.profile import profile_ci
from hiddenpop.capture.core.histories import Histories
from refdata import CAPTURE_DATA, load_fixture

HARE = CAPTURE_DATA / "rcapture_hare.csv"
COLUMNS = ("abundance", "stderr", "deviance", "df", "aic", "bic")


@pytest.fixture(scope="module")
def hare() -> Histories:
    return Histories.from_file(HARE)


def _close(value: float, expected: float, rel: float) -> bool:
    return abs(value - expected) <= rel * max(abs(expected), 1e-12) or (expected == 0 and abs(value) < 1e-9)


def test_hare_all_models_every_number_rcapture_mode(hare):
    fixture = load_fixture("capture_hare_closed.json")
    rel = fixture["tolerance_relative"]
    result = closedp(hare, rcapture=True)
    fits = {f.model: f for f in result.extras["fits"]}
    assert list(fits) == [m["model"] for m in fixture["models"]]
    assert hare.observed == fixture["observed"] and hare.occasions == fixture["occasions"]
    for expected in fixture["models"]:
        fit = fits[expected["model"]]
        for column in COLUMNS:
            assert _close(getattr(fit, column), expected[column], rel), (expected["model"], column)


def test_hare_exact_mode_matches_all_but_glm_path_stderr(hare):
    """Default (Newton to convergence): identical MLE, deviance, AIC, BIC; the stderr is the exact inverse
    information, which differs from R's penultimate-iterate value only beyond the 4th significant digit."""
    fixture = load_fixture("capture_hare_closed.json")
    rel = fixture["tolerance_relative"]
    fits = {f.model: f for f in closedp(hare).extras["fits"]}
    for expected in fixture["models"]:
        fit = fits[expected["model"]]
        for column in ("abundance", "deviance", "df", "aic", "bic"):
            assert _close(getattr(fit, column), expected[column], rel), (expected["model"], column)
    # Mh Chao dropped eta5, Mth Chao none (fixture notes)
    assert fits["Mh Chao (LB)"].dropped_eta == ["eta5"]
    assert fits["Mth Chao (LB)"].dropped_eta == []
    assert any("eta5" in w for w in fits["Mh Chao (LB)"].warnings)


def test_exact_stderr_is_inverse_information_of_enumerated_fit(hare):
    for model in ("Mh Gamma3.5", "Mth Darroch", "Mth Chao (LB)"):
        auto = fit_closed(hare, model)
        enumerated = fit_closed(hare, model, engine="enumerate")
        assert auto.engine != "enumerate"
        assert auto.stderr == pytest.approx(enumerated.stderr, rel=1e-9)
        assert auto.abundance == pytest.approx(enumerated.abundance, rel=1e-10)


def test_mbh_stderr_is_the_delta_method(hare):
    """Rcapture's Mbh stderr drops a factor in one derivative; ours equals a numerical delta method."""
    fit = fit_closed(hare, "Mbh")
    coef = np.array(list(fit.coef.values()))
    t = 6

    def abundance(c):
        b0, b1, b2, b3 = c
        d = 1 + math.exp(b3) - math.exp(b2)
        return math.exp(b0) * (1 + math.exp(b3)) ** (t - 1) * (1 + math.exp(b1 + b2) / d)

    eps = 1e-6
    grad = np.array([(abundance(coef + eps * e) - abundance(coef - eps * e)) / (2 * eps) for e in np.eye(4)])
    assert abundance(coef) == pytest.approx(fit.abundance, rel=1e-12)
    assert fit.stderr == pytest.approx(math.sqrt(grad @ fit.vcov @ grad - fit.abundance), rel=1e-6)


def test_hare_descriptive_block(hare):
    expected = load_fixture("capture_hare_closed.json")["descriptive"]
    table = descriptive(hare)
    for column in ("f", "u", "v", "n"):
        assert table[column].tolist() == expected[column]


def test_first_capture_fit_sums_to_fitted_total(hare):
    table = first_capture_fit(hare, "M0")
    assert table["u_observed"].sum() == hare.observed
    # the M0 MLE fits the number of units seen exactly (score equation for the intercept)
    assert table["u_fitted"].sum() == pytest.approx(hare.observed, rel=1e-8)


def test_hare_extras_bias_corrected_and_chao(hare):
    fixture = load_fixture("capture_hare_extras.json")
    rel = fixture["tolerance"]["abundance_se_relative"]
    names = {"Mh Chao (Chao 1987 closed form, bias corrected)": "Mh Chao", "Mth Chao": "Mth Chao", "Mt": "Mt", "M0": "M0"}
    for row in fixture["bias_corrected_closedp_bc"]:
        form = closedp_bc(hare, names[row["model"]], algorithm="glm")
        # the fixture prints 6-7 significant digits: compare within the stated relative tolerance or the
        # printed rounding, whichever is larger
        for key, value in (("abundance", form.abundance), ("stderr", form.stderr)):
            printed = 0.5e-6
            assert abs(value - row[key]) <= max(rel * abs(row[key]), printed), (row["model"], key)
    f = hare.frequencies()
    classic = chao1987(f[0], f[1], hare.observed)
    assert classic.abundance == pytest.approx(fixture["classic_chao_1987"]["abundance"], rel=rel)
    assert classic.stderr == pytest.approx(fixture["classic_chao_1987"]["stderr"], rel=rel)


def test_hare_profile_intervals(hare):
    fixture = load_fixture("capture_hare_extras.json")
    tol = fixture["tolerance"]["profile_ci_absolute"]
    for row in fixture["profile_likelihood_ci_closedpCI"]:
        ci = profile_ci(hare, row["model"])
        assert ci.poisson_abundance == pytest.approx(row["poisson_abundance"], abs=tol)
        assert ci.multinomial_abundance == pytest.approx(row["multinomial_abundance"], abs=tol)
        assert ci.lower == pytest.approx(row["lower95"], abs=tol)
        assert ci.upper == pytest.approx(row["upper95"], abs=tol)
        wald = ci.wald()
        assert wald[0] < ci.poisson_abundance < wald[1]


def test_seber_two_occasions():
    fixture = load_fixture("capture_two_occasion_seber.json")
    rel = fixture["tolerance_relative"]
    patterns = [h["pattern"] for h in fixture["histories"]]
    counts = [h["freq"] for h in fixture["histories"]]
    data = Histories.from_patterns(patterns, counts)
    fits = {f.model: f for f in closedp(data, rcapture=True).extras["fits"]}
    assert list(fits) == ["M0", "Mt", "Mb"]
    exp = fixture["expected"]
    for name, key in (("M0", "M0"), ("Mt", "Mt (Lincoln-Petersen)"), ("Mb", "Mb")):
        for column, value in exp[key].items():
            got = getattr(fits[name], column)
            assert abs(got - value) <= rel * abs(value) + (1e-8 if value == 0 else 0), (name, column)
    n1, n2 = data.occasion_totals()
    m = n1 + n2 - data.observed
    lp = lincoln_petersen(n1, n2, m)
    assert lp.abundance == pytest.approx(exp["Mt (Lincoln-Petersen)"]["abundance"], rel=rel)
    assert lp.stderr == pytest.approx(exp["Mt (Lincoln-Petersen)"]["stderr"], rel=rel)
    ch = chapman(n1, n2, m)
    assert ch.abundance == pytest.approx(exp["Chapman"]["abundance"], rel=rel)
    assert ch.stderr == pytest.approx(exp["Chapman"]["stderr"], rel=rel)
    bc = closedp_bc(data, "Mt")
    assert bc.abundance == pytest.approx(exp["Chapman"]["abundance"], rel=rel)
    extra = fixture["extra_chapman"]
    assert chapman(extra["n1"], extra["n2"], extra["m"]).abundance == pytest.approx(extra["abundance"], rel=rel)


def test_ill_continuous_time_chao_is_closed_form():
    data = Histories.from_file(CAPTURE_DATA / "rcapture_ill.csv", occasions="inf")
    assert math.isinf(data.occasions)
    f = data.frequencies()
    fit = fit_closed(data, "Mh Chao (LB)")
    # with f1, f2 fitted exactly the log-linear Chao model is n + f1^2/(2 f2), se = Chao (1987) formula
    classic = chao1987(f[0], f[1], data.observed)
    assert fit.abundance == pytest.approx(data.observed + f[0] ** 2 / (2 * f[1]), rel=1e-9)
    assert fit.abundance == pytest.approx(classic.abundance, rel=1e-9)
    assert fit.stderr == pytest.approx(classic.stderr, rel=1e-8)
    bc = chao_bias_corrected(f[0], f[1], data.observed, math.inf)
    assert bc.abundance == pytest.approx(data.observed + f[0] * (f[0] - 1) / (2 * (f[1] + 1)), rel=1e-12)
    result = closedp(data)
    assert result.table["method"].tolist() == ["M0", "Mh Chao (LB)", "Mh Poisson2", "Mh Darroch", "Mh Gamma3.5"]


def test_hare_finite_t_mh_chao_closed_form(hare):
    f = hare.frequencies()
    fit = fit_closed(hare, "Mh Chao (LB)")
    assert fit.abundance == pytest.approx(hare.observed + (5 / 6) * f[0] ** 2 / (2 * f[1]), rel=1e-10)


def test_frequency_data_rejects_time_models():
    data = Histories.from_file(CAPTURE_DATA / "rcapture_cbird.csv", occasions=11)
    from hiddenpop.errors import ModelError

    with pytest.raises(ModelError, match="capture histories"):
        fit_closed(data, "Mt")
    # capture-count data fit M0 exactly as the histories would: f_k with offset log C(t, k)
    assert fit_closed(data, "M0").abundance > data.observed


def test_mb_with_infinite_estimate_is_flagged_not_a_crash():
    """Hypothesis found data whose Mb MLE has 1 + e^b2 - e^b1 = 0 exactly (N_hat infinite)."""
    caught = np.array(
        [[0, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0],
         [0, 1, 0], [0, 0, 1]],
        dtype=np.uint8,
    )
    fit = fit_closed(Histories.from_patterns(caught), "Mb")
    assert math.isinf(fit.abundance) and math.isnan(fit.stderr)
    assert any("undefined abundance" in w for w in fit.warnings)
