"""Rolling estimates on synthetic report streams with known truth (fixed seeds).

* Homogeneous report rates, closed population: M0, Mt and Mth Chao (LB) hold; their 95% intervals over
  independent (non-overlapping) windows cover the truth close to 95% of the time.
* Heterogeneous report rates: M0 is biased down strongly; Chao's lower bound is biased down less but still
  down (it is a lower bound), which is the documented direction.
"""

from __future__ import annotations

import numpy as np
import pytest

from hiddenpop.capture.events.cleaning import CleaningRules
from hiddenpop.capture.events.reader import read_events
from hiddenpop.capture.events.rolling import SERIES_COLUMNS, rolling_series, window_counts
from hiddenpop.privacy import Pseudonymiser
from hiddenpop.simulate.reports import simulate_reports

KEY = Pseudonymiser(b"simulation-key-0123456789abcdef")
POPULATION = 1500
WINDOWS = 100


def _pipeline(stream, tmp_path, **window_options):
    stream.write(tmp_path / "reports.parquet")
    log = read_events([tmp_path / "reports.parquet"], identifier="ip", time="time", key=KEY,
                      rules=CleaningRules(timezone="Asia/Manila"))
    plan, counts = window_counts(log, **window_options)
    return log, plan, counts


@pytest.fixture(scope="module")
def homogeneous(tmp_path_factory):
    stream = simulate_reports(initial=POPULATION, days=28 * WINDOWS, rate_median=0.04, seed=101)
    return stream, *_pipeline(stream, tmp_path_factory.mktemp("hom"), occasion="7D", occasions=4, step=None)


@pytest.fixture(scope="module")
def heterogeneous(tmp_path_factory):
    stream = simulate_reports(initial=POPULATION, days=28 * WINDOWS, rate_median=0.04, rate_sdlog=1.2, seed=202)
    return stream, *_pipeline(stream, tmp_path_factory.mktemp("het"), occasion="7D", occasions=4, step=None)


@pytest.mark.parametrize("model", ["M0", "Mt", "Mth Chao (LB)"])
def test_interval_coverage_when_the_model_holds(homogeneous, model):
    stream, log, plan, counts = homogeneous
    assert plan.n_windows == WINDOWS
    result = rolling_series(counts, plan, log.origin, estimator=model)
    series = result.tables["series"]
    truth = stream.truth(plan.starts, plan.window_days)
    assert (truth == POPULATION).all()
    covered = (series["lower"] <= truth) & (truth <= series["upper"])
    coverage = covered.mean()
    # 100 independent windows: binomial sd of the coverage is about 0.022
    assert 0.88 <= coverage <= 1.0, (model, coverage)
    relative_bias = series["estimate"].mean() / POPULATION - 1
    assert abs(relative_bias) < 0.03, (model, relative_bias)


def test_lower_bound_bias_direction_under_heterogeneity(heterogeneous):
    stream, log, plan, counts = heterogeneous
    truth = stream.truth(plan.starts, plan.window_days)
    means, coverage = {}, {}
    for model in ("M0", "Mth Chao (LB)"):
        series = rolling_series(counts, plan, log.origin, estimator=model).tables["series"]
        means[model] = float(series["estimate"].mean())
        coverage[model] = float(((series["lower"] <= truth) & (truth <= series["upper"])).mean())
    observed = float(series["observed"].mean())
    # documented direction: M0 far below, the lower bound closer but still below the truth
    assert observed < means["M0"] < means["Mth Chao (LB)"] < truth.mean()
    # so intervals of a lower bound are not confidence intervals for N under strong heterogeneity
    assert coverage["Mth Chao (LB)"] < 0.5 and coverage["M0"] <= coverage["Mth Chao (LB)"]


def test_sample_coverage_series_runs_with_seeded_bootstrap(heterogeneous):
    _stream, log, plan, counts = heterogeneous
    first = rolling_series(counts[:10], _first(plan, 10), log.origin, estimator="coverage", bootstrap=50, seed=7)
    again = rolling_series(counts[:10], _first(plan, 10), log.origin, estimator="coverage", bootstrap=50, seed=7)
    series = first.tables["series"]
    assert series["model"].iloc[0] == "Nhat (Mth coverage)"
    assert np.allclose(series["se"], again.tables["series"]["se"])
    assert (series["estimate"] >= series["observed"]).all()


def _first(plan, n):
    from dataclasses import replace

    return replace(plan, last_day=int(plan.starts[n - 1]) + plan.window_days - 1)


def test_growing_population_daily_windows_track_the_truth(tmp_path):
    stream = simulate_reports(initial=400, arrival_rate=4.0, growth=0.8, mean_stay_days=120, days=365,
                              rate_median=0.06, seed=303)
    log, plan, counts = _pipeline(stream, tmp_path, occasion="7D", occasions=4, step="1D")
    result = rolling_series(counts, plan, log.origin, estimator="Mt", base=5_485_000)
    series = result.tables["series"]
    assert list(series.columns) == SERIES_COLUMNS
    assert len(series) == 365 - 27
    truth = stream.truth(plan.starts, plan.window_days)
    assert np.corrcoef(series["estimate"], truth)[0, 1] > 0.95
    assert np.allclose(series["per_10000"], series["estimate"] / 5_485_000 * 10_000)
    assert (series["observed"] <= truth).all()


def test_report_series_one_call_is_reproducible(tmp_path):
    from hiddenpop.capture.events.rolling import report_series

    stream = simulate_reports(initial=300, days=84, rate_median=0.05, missing_identifier=3, seed=9)
    stream.write(tmp_path / "r.csv")
    runs = [report_series([tmp_path / "r.csv"], identifier="ip", time="time", key=KEY, step="7D",
                          estimator="coverage", bootstrap=30, seed=3) for _ in range(2)]
    first, second = (r.tables["series"] for r in runs)
    assert first.equals(second)
    assert runs[0].tables["audit"].set_index("step").loc["missing_identifier", "removed"] == 3
    assert runs[0].provenance["inputs"][0]["file"] == "r.csv"
    assert len(first) == len(range(0, 84 - 27, 7))
