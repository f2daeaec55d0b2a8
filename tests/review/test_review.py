"""Sample review: intervals against statsmodels, unknown-category bounds, combination coverage by simulation,
unit sampling, validation errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from cli_commands import run_main
from hiddenpop.errors import ConfigError, DataError, PrivacyError
from hiddenpop.privacy import Pseudonymiser
from hiddenpop.review.proportion import (
    clopper_pearson_interval,
    combine_with_total,
    count_reviews,
    estimate_share,
    propagate_share,
    total_draws,
    wilson_interval,
)
from hiddenpop.review.sampling import draw_distinct, sample_units

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples" / "review"




@pytest.mark.parametrize(("x", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (18, 380), (76, 76), (3, 1000)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_intervals_match_statsmodels(x, n, level):
    np.testing.assert_allclose(
        wilson_interval(x, n, level), proportion_confint(x, n, 1 - level, "wilson"), atol=1e-12
    )
    np.testing.assert_allclose(
        clopper_pearson_interval(x, n, level), proportion_confint(x, n, 1 - level, "beta"), atol=1e-10
    )


def test_wilson_known_value():
    # Wilson (1927) / Newcombe (1998) example: 81 of 263 -> 0.2553 to 0.3662 at 95%
    lower, upper = wilson_interval(81, 263)
    assert (round(lower, 4), round(upper, 4)) == (0.2553, 0.3662)
    # Clopper-Pearson for 0 of n: upper limit 1 - (alpha/2)^(1/n)
    assert clopper_pearson_interval(0, 20)[1] == pytest.approx(1 - 0.025 ** (1 / 20))


def test_unknown_category_bounds_and_mar():
    x, y, u = 15, 61, 304  # 80% unknown, as in Study 1
    result = estimate_share(x, y, u)
    n = x + y + u
    assert result.estimate("share", "Wilson (unknown missing at random)") == pytest.approx(x / (x + y))
    assert result.estimate("share_lower_bound", "Wilson (unknowns all negative)") == pytest.approx(x / n)
    assert result.estimate("share_upper_bound", "Clopper-Pearson (unknowns all positive)") == pytest.approx(
        (x + u) / n
    )
    bounds = result.get("share_bounds", "Manski bounds, Clopper-Pearson outer limits")
    assert bounds["bound_upper"] - bounds["bound_lower"] == pytest.approx(u / n)  # width = unknown share
    assert bounds["lower"] == pytest.approx(clopper_pearson_interval(x, n)[0])
    assert bounds["upper"] == pytest.approx(clopper_pearson_interval(x + u, n)[1])
    assert result.estimate("unknown_share", "Wilson (share of reviews that are unknown)") == pytest.approx(
        0.8
    )
    assert any("80% of reviews are unknown" in w for w in result.warnings)
    # no unknowns: bounds collapse onto the MAR estimate
    plain = estimate_share(30, 70, 0)
    assert (
        plain.estimate("share_lower_bound", "Wilson (unknowns all negative)")
        == plain.estimate("share_upper_bound", "Wilson (unknowns all positive)")
        == 0.3
    )
    assert not plain.warnings


def test_all_unknown_is_reported_not_hidden():
    result = estimate_share(0, 0, 50)
    assert np.isnan(result.estimate("share", "Wilson (unknown missing at random)"))
    assert any("not estimable" in w for w in result.warnings)
    assert result.get("share_bounds", "Manski bounds, Wilson outer limits")[["lower", "upper"]].tolist() == [
        0.0,
        1.0,
    ]


def test_combination_plugin_and_reproducible():
    first = combine_with_total(
        40, 160, 800, total=81_723, total_lower=80_188, total_upper=83_259, seed=3, draws=20_000
    )
    again = combine_with_total(
        40, 160, 800, total=81_723, total_lower=80_188, total_upper=83_259, seed=3, draws=20_000
    )
    pd.testing.assert_frame_equal(first.table, again.table)
    mar = first.table[first.table["share_scenario"] == "share_mar"].iloc[0]
    assert mar["estimate"] == pytest.approx(81_723 * 0.2)
    assert mar["lower"] < mar["estimate"] < mar["upper"]
    low = first.table[first.table["share_scenario"] == "share_lower_bound"].iloc[0]
    high = first.table[first.table["share_scenario"] == "share_upper_bound"].iloc[0]
    assert low["upper"] < mar["lower"] and mar["upper"] < high["lower"]


@pytest.mark.parametrize("distribution", ["lognormal", "normal"])
def test_combination_interval_coverage_by_simulation(distribution):
    """Known truth: N = 20,000 units, p = 0.25. Each replicate simulates a capture-recapture estimate with a
    log-normal (or normal) sampling error and its 95% interval, and a review of 200 known-status units, then
    runs the same two steps `combine_with_total` runs (total draws matched to the interval, share propagation)."""
    rng = np.random.default_rng(20240607)
    truth_total, truth_share, n_known = 20_000, 0.25, 200
    replicates, covered = 400, 0
    for r in range(replicates):
        if distribution == "lognormal":
            sigma = 0.08
            estimate = truth_total * np.exp(sigma * rng.standard_normal())
            lower, upper = estimate * np.exp(-1.959964 * sigma), estimate * np.exp(1.959964 * sigma)
            kwargs = {"total_se": None, "total_lower": lower, "total_upper": upper}
        else:
            se = 1_200.0
            estimate = truth_total + se * rng.standard_normal()
            kwargs = {"total_se": se, "total_lower": None, "total_upper": None}
        x = int(rng.binomial(n_known, truth_share))
        draws_rng = np.random.default_rng(r)
        totals = total_draws(
            draws_rng, 4_000, estimate, total_level=0.95, distribution=distribution, **kwargs
        )
        _, low, high = propagate_share(totals, x, n_known - x, draws_rng)
        covered += low <= truth_total * truth_share <= high
    coverage = covered / replicates
    assert 0.925 <= coverage <= 0.975, coverage


def test_combination_errors():
    with pytest.raises(ConfigError, match="either --total-se or --total-lower/--total-upper"):
        combine_with_total(1, 2, total=100.0, seed=1)
    with pytest.raises(ConfigError, match="interval must contain the total"):
        combine_with_total(1, 2, total=100.0, total_lower=120.0, total_upper=150.0, seed=1)


def test_sample_units_by_unit_not_report():
    key = Pseudonymiser(b"k" * 32)
    # unit A has 50 reports, the rest one each: sampling by unit gives every unit probability n / N
    raw = ["10.0.0.1"] * 50 + [f"10.0.1.{i}" for i in range(9)]
    frame = pd.DataFrame({"ip": raw})
    result = sample_units(frame, unit="ip", n=3, seed=1, key=key)
    sample = result.tables["sample"]
    assert result.estimate("units_in_frame") == 10 and result.estimate("reports_in_frame") == 59
    assert sample["unit"].is_unique and (sample["inclusion_probability"] == 0.3).all()
    assert not any(ip in result.to_json() for ip in set(raw))  # raw identifiers never reach the output
    units = sorted(set(key.hash_many(raw)))
    assert sample["unit"].tolist() == [
        units[i] for i in draw_distinct(10, 3, 1)
    ]  # the draw sample_units makes
    counts = np.zeros(10)
    for seed in range(3000):
        counts[draw_distinct(10, 3, seed)] += 1
    frequency = counts / 3000
    assert np.abs(frequency - 0.3).max() < 4 * np.sqrt(
        0.3 * 0.7 / 3000
    )  # each unit n / N, whatever its reports
    # order of rows does not change the sample
    shuffled = frame.sample(frac=1, random_state=2).reset_index(drop=True)
    assert (
        sample_units(shuffled, unit="ip", n=3, seed=1, key=key).tables["sample"]["unit"].tolist()
        == sample["unit"].tolist()
    )


def test_sample_units_refuses_raw_identifiers_without_echoing():
    frame = pd.DataFrame({"ip": ["a" * 32, "192.168.7.7"]})
    with pytest.raises(PrivacyError) as caught:
        sample_units(frame, unit="ip", n=1, seed=1, source="log.csv")
    assert str(caught.value).startswith("log.csv, row 2, column 'ip': value is not a pseudonym")
    assert "192.168" not in str(caught.value)
    with pytest.raises(ConfigError, match="exceeds the 2 distinct units"):
        sample_units(pd.DataFrame({"ip": ["a" * 32, "b" * 32]}), unit="ip", n=3, seed=1)


def test_count_reviews_validation():
    reviews = pd.DataFrame({"unit": ["u1", "u2", "u3"], "status": ["Livestream", "no", "unknown"]})
    assert count_reviews(
        reviews, status="status", positive=["livestream"], negative=["no"], unknown=["unknown"], unit="unit"
    ) == (1, 1, 1)
    secret = pd.DataFrame({"unit": ["u1", "u2"], "status": ["no", "call 0917 555 0101"]})
    with pytest.raises(DataError) as caught:
        count_reviews(
            secret, status="status", positive=["yes"], negative=["no"], unknown=[], source="rev.csv"
        )
    assert str(caught.value).startswith(
        "rev.csv, row 2, column 'status': status is not one of the categories"
    )
    assert "0917" not in str(caught.value)
    with pytest.raises(DataError, match=r"rev.csv, row 2, column 'unit': unit appears more than once"):
        count_reviews(
            pd.DataFrame({"unit": ["u1", "u1"], "status": ["no", "no"]}),
            status="status",
            positive=["yes"],
            negative=["no"],
            unknown=[],
            unit="unit",
            source="rev.csv",
        )
    with pytest.raises(DataError, match=r"rev.csv, row 1, column 'status': status is missing"):
        count_reviews(
            pd.DataFrame({"status": [None, "no"]}),
            status="status",
            positive=["yes"],
            negative=["no"],
            unknown=[],
            source="rev.csv",
        )
    with pytest.raises(ConfigError, match="listed as both positive and negative"):
        count_reviews(reviews, status="status", positive=["no"], negative=["no"], unknown=[])


def test_review_cli(run_cli, tmp_path, capsys):
    code, stdout, err = run_main(
        capsys,
        "review",
        "estimate",
        str(EXAMPLES / "reviews.csv"),
        "--positive",
        "livestream",
        "--negative",
        "not livestream",
        "--unknown",
        "unknown",
        "--unit",
        "unit",
        "--total",
        "81723",
        "--total-lower",
        "80188",
        "--total-upper",
        "83259",
        "--seed",
        "7",
        "--format",
        "json",
    )
    assert code == 0, err
    payload = json.loads(stdout)
    quantities = {row["quantity"] for row in payload["estimates"]}
    assert {"share", "share_bounds", "positive_total"} <= quantities and payload["seed"] == 7
    failed = run_cli(
        "review",
        "estimate",
        EXAMPLES / "reviews.csv",
        "--positive",
        "livestream",
        "--negative",
        "not livestream",
    )
    assert failed.returncode == 2
    assert (
        failed.stderr.startswith("error: reviews.csv, row ")
        and "status is not one of the categories" in failed.stderr
    )
    # Study 1: 95% confidence, 5% margin, finite population of distinct IPs
    code, out, _ = run_main(capsys, "review", "size", "--population", "56193", "--format", "json")
    assert code == 0
    assert json.loads(out)["estimates"][0]["estimate"] == 382
    code, _, err = run_main(capsys, "review", "estimate", "--positive-count", "3")
    assert code == 2 and "--positive-count and --negative-count" in err
    code, _, err = run_main(
        capsys, "review", "estimate", "--positive-count", "3", "--negative-count", "4", "--total-se", "10"
    )
    assert code == 2 and "need --total" in err
    units = tmp_path / "units.csv"
    pd.DataFrame({"ip": ["10.1.1.1", "10.1.1.2"]}).to_csv(units, index=False)
    code, _, err = run_main(capsys, "review", "sample", str(units), "--unit", "ip", "--n", "1")
    assert code == 2 and "value is not a pseudonym" in err and "10.1.1" not in err
    key = tmp_path / "key"
    key.write_text("0123456789abcdef0123456789abcdef")
    code, out, _ = run_main(
        capsys,
        "review",
        "sample",
        str(units),
        "--unit",
        "ip",
        "--n",
        "1",
        "--key-file",
        str(key),
        "--format",
        "csv",
    )
    assert code == 0 and "10.1.1" not in out and out.startswith("unit,reports,inclusion_probability")


def test_imbens_manski_interval_limits():
    from scipy import stats

    from hiddenpop.review.proportion import imbens_manski_interval

    # no unknowns: the ordinary two-sided Wald interval
    lower, upper = imbens_manski_interval(30, 0, 100)
    half = stats.norm.ppf(0.975) * np.sqrt(0.3 * 0.7 / 100)
    assert (lower, upper) == pytest.approx((0.3 - half, 0.3 + half))
    # far-apart bounds: one-sided critical value on each side
    lower, upper = imbens_manski_interval(100, 600, 1000)
    z1 = stats.norm.ppf(0.95)
    assert lower == pytest.approx(0.1 - z1 * np.sqrt(0.1 * 0.9 / 1000), rel=1e-6)
    assert upper == pytest.approx(0.7 + z1 * np.sqrt(0.7 * 0.3 / 1000), rel=1e-6)
    # and it is inside the conservative outer-limits region
    result = estimate_share(100, 300, 600)
    outer = result.get("share_bounds", "Manski bounds, Wilson outer limits")
    inner = result.get("share_bounds", "Imbens-Manski interval for the share")
    assert outer["lower"] < inner["lower"] and inner["upper"] < outer["upper"]
