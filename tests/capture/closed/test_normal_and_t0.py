"""Beyond Rcapture's closedp.t: logistic-normal heterogeneity (Mh Normal, Mth Normal) and t0 (closedp.0)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hiddenpop.capture import Histories, closedp, fit_closed
from hiddenpop.capture.closed.models import parse_model
from hiddenpop.errors import ModelError
from refdata import CAPTURE_DATA


def test_hare_mth_normal_matches_coull_and_agresti_table_2():
    fit = fit_closed(Histories.from_file(CAPTURE_DATA / "rcapture_hare.csv"), "Mth Normal")
    assert round(fit.abundance, 1) == 92.0
    assert round(fit.coef["sigma"], 2) == 0.97
    assert fit.converged and fit.warnings == []


def test_bbs2001_mh_normal_matches_dorazio_and_royle():
    histories = Histories.from_file(CAPTURE_DATA / "rcapture_BBS2001.csv", occasions=50)
    fit = fit_closed(histories, "Mh Normal")
    assert round(fit.abundance, 1) == 82.2
    assert round(fit.deviance, 1) == 35.3 and fit.df == 47


def test_rcapture_flag_halves_the_variance_term_as_rcapture_prints_it():
    histories = Histories.from_file(CAPTURE_DATA / "rcapture_hare.csv")
    ours, theirs = fit_closed(histories, "Mth Normal"), fit_closed(histories, "Mth Normal", rcapture=True)
    unseen = ours.abundance - ours.observed
    variance = (ours.stderr**2 - unseen) / unseen**2
    assert theirs.stderr**2 == pytest.approx(unseen + unseen**2 * variance / 2, rel=1e-9)
    assert theirs.abundance == ours.abundance


def test_names_parse_and_the_comparison_table_includes_normal_models_on_request():
    assert parse_model("mth normal").name == "Mth Normal"
    histories = Histories.from_file(CAPTURE_DATA / "rcapture_hare.csv")
    assert "Mh Normal" not in set(closedp(histories).table["method"])
    assert {"Mh Normal", "Mth Normal"} <= set(closedp(histories, normal=True).table["method"])


def test_no_profile_interval_for_a_model_that_is_not_log_linear():
    from hiddenpop.capture import profile_ci

    with pytest.raises(ModelError, match="not a log-linear model"):
        profile_ci(Histories.from_file(CAPTURE_DATA / "rcapture_hare.csv"), "Mth Normal")


def _simulate(rng: np.random.Generator, size: int, logits: np.ndarray, sigma: float) -> Histories:
    z = rng.standard_normal(size)
    p = 1.0 / (1.0 + np.exp(-(logits[None, :] + sigma * z[:, None])))
    caught = rng.random(p.shape) < p
    seen = caught[caught.any(axis=1)].astype(np.int8)
    patterns, counts = np.unique(seen, axis=0, return_counts=True)
    return Histories.from_patterns(patterns, counts)


def test_simulation_with_known_truth_bias_and_coverage():
    """A population of 400 with logit p_ij = beta_j + sigma z_i (sigma 1, t = 6): 40 replicates at a fixed seed."""
    rng = np.random.default_rng(20231)
    truth, logits = 400, np.array([-1.2, -0.8, -1.0, -0.6, -1.4, -0.9])
    estimates, covered = [], 0
    for _ in range(40):
        fit = fit_closed(_simulate(rng, truth, logits, 1.0), "Mth Normal")
        lower, upper = fit.log_ci(0.95)
        estimates.append(fit.abundance)
        covered += lower <= truth <= upper
    assert abs(np.mean(estimates) / truth - 1) < 0.08
    assert covered / 40 >= 0.85


def test_a_homogeneous_population_gives_sigma_near_zero():
    rng = np.random.default_rng(7)
    fit = fit_closed(_simulate(rng, 500, np.full(5, -0.5), 0.0), "Mh Normal")
    assert fit.coef["sigma"] < 0.3
    assert math.isfinite(fit.abundance) and abs(fit.abundance / 500 - 1) < 0.1


# ---------------------------------------------------------------------------------------------- t0 (closedp.0)
def test_t0_two_gives_chaos_closed_form_for_m0():
    """M0 on the classes k = 1, 2 alone is saturated: N = n + (t - 1)/t * f1^2 / (2 f2)."""
    histories = Histories.from_file(CAPTURE_DATA / "rcapture_BBS2001.csv", occasions=50)
    f1, f2 = histories.frequencies()[:2]
    fit = fit_closed(histories, "M0", t0=2)
    assert fit.abundance == pytest.approx(histories.observed + (49 / 50) * f1**2 / (2 * f2), rel=1e-9)
    assert fit.df == 0


def test_t0_equal_to_t_changes_nothing_and_a_smaller_t0_fits_fewer_classes():
    histories = Histories.from_file(CAPTURE_DATA / "rcapture_BBS2001.csv", occasions=50)
    full, same = fit_closed(histories, "Mh Gamma3.5"), fit_closed(histories, "Mh Gamma3.5", t0=50)
    assert same.abundance == pytest.approx(full.abundance, rel=1e-10) and same.df == full.df
    twenty = fit_closed(histories, "Mh Gamma3.5", t0=20)
    assert twenty.df == 20 - 3 and twenty.abundance != pytest.approx(full.abundance, rel=1e-3)
    table = closedp(histories, t0=20)
    assert list(table.table["method"]) == ["M0", "Mh Chao (LB)", "Mh Poisson2", "Mh Darroch", "Mh Gamma3.5"]
    assert table.settings["t0"] == 20


def test_t0_profile_interval_brackets_its_estimate():
    from hiddenpop.capture import profile_ci

    histories = Histories.from_file(CAPTURE_DATA / "rcapture_BBS2001.csv", occasions=50)
    ci = profile_ci(histories, "Mh Gamma3.5", t0=20)
    point = fit_closed(histories, "Mh Gamma3.5", t0=20)
    assert ci.poisson_abundance == pytest.approx(point.abundance, rel=1e-8)
    assert ci.lower < ci.multinomial_abundance < ci.upper


@pytest.mark.parametrize(("model", "t0", "message"), [("Mt", 3, "needs every history"), ("M0", 1, "at least 2"),
                                                      ("M0", 60, "at most t = 50")])
def test_bad_t0_is_refused(model, t0, message):
    from hiddenpop.errors import ConfigError

    histories = Histories.from_file(CAPTURE_DATA / "rcapture_BBS2001.csv", occasions=50)
    if model == "Mt":
        histories = Histories.from_file(CAPTURE_DATA / "rcapture_hare.csv")
    with pytest.raises(ConfigError, match=message):
        fit_closed(histories, model, t0=t0)
