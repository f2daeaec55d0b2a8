"""Truth recovery on the synthetic country (fixed seeds): coverage, stream ranking, national consistency, CV."""

from __future__ import annotations

import numpy as np

from hiddenpop.smallarea.national import national_consistency


def _coverage(result, country, surveyed: bool) -> float:
    table = result.table.merge(country.truth, left_on="area", right_on="area_id", suffixes=("", "_truth"))
    rows = table[table["surveyed"] == surveyed]
    assert len(rows) > 0
    hits = (rows["lower"] <= rows["prevalence"]) & (rows["prevalence"] <= rows["upper"])
    return float(np.mean(hits))


def test_country_shape(country):
    assert len(country.areas) == 1600
    assert country.areas["region"].nunique() == 17
    assert sum(len(c) for c in country.streams.values()) >= 20
    assert len(country.streams) >= 20
    assert country.survey["area_id"].nunique() == 150
    assert country.survey.groupby("area_id").size().eq(24).all()


def test_same_seed_same_country(country):
    from hiddenpop.simulate.country import synthetic_country

    again = synthetic_country(seed=country.settings["seed"])
    assert again.truth["prevalence"].equals(country.truth["prevalence"])
    assert again.survey.equals(country.survey)


def test_direct_national_interval_covers_truth(country, national_interval):
    estimate, lower, upper = national_interval
    assert lower <= country.national_prevalence <= upper
    assert abs(estimate / country.national_prevalence - 1) < 0.1


def test_direct_area_intervals_cover_truth(country, direct):
    table = direct.table[direct.table["quantity"] == "prevalence"].merge(country.truth, left_on="area",
                                                                         right_on="area_id")
    hits = (table["lower"] <= table["prevalence"]) & (table["prevalence"] <= table["upper"])
    # 150 areas, nominal 90%: a binomial 99% band around 0.9 is about [0.84, 0.96]
    assert 0.83 <= hits.mean() <= 0.96
    log_error = np.log(table["estimate"] / table["prevalence"])
    assert abs(log_error.mean()) < 0.06  # ratio estimator nearly unbiased on the log scale


def test_pooled_unsurveyed_coverage(pooled, country):
    assert 0.85 <= _coverage(pooled, country, surveyed=False) <= 0.95


def test_ml_unsurveyed_coverage(ml, country):
    assert 0.85 <= _coverage(ml, country, surveyed=False) <= 0.95
    everything = ml.tables["areas_all"]
    for learner in ("LightGBM", "ridge"):
        rows = everything[everything["method"].str.startswith(learner)]
        assert len(rows) == len(country.areas)
        assert 0.85 <= _coverage(type(ml)(table=rows), country, surveyed=False) <= 0.95, learner


def test_best_learner_is_the_lower_cv_rmse(ml):
    cv = ml.tables["cv"].set_index("method")
    best = cv["rmse_log"].idxmin()
    assert ml.table["method"].str.startswith(best).all()


def test_pooling_beats_direct_for_surveyed(pooled, direct, country):
    truth = country.truth.set_index("area_id")["prevalence"]
    rows = direct.table[direct.table["quantity"] == "prevalence"].set_index("area")
    pooled_rows = pooled.table.set_index("area").loc[rows.index]
    direct_error = np.sqrt(np.mean(np.log(rows["estimate"] / truth.loc[rows.index]) ** 2))
    pooled_error = np.sqrt(np.mean(np.log(pooled_rows["estimate"] / truth.loc[rows.index]) ** 2))
    assert pooled_error < direct_error


def test_driving_streams_rank_first_ml(ml, country):
    importance = ml.tables["importance_all"]
    drivers = set(country.driving_streams)
    for model in ("lightgbm", "ridge"):
        ranked = importance[importance["model"] == model].sort_values("rank")
        assert set(ranked["stream"].head(len(drivers))) == drivers, model
    lightgbm = importance[importance["model"] == "lightgbm"]
    shap = lightgbm.sort_values("shap_mean_abs", ascending=False)
    assert set(shap["stream"].head(len(drivers))) == drivers


def test_driving_streams_rank_first_pooled(pooled, country):
    ranked = pooled.tables["importance"].sort_values("rank")
    assert set(ranked["stream"].head(len(country.driving_streams))) == set(country.driving_streams)


def test_sum_of_area_estimates_within_national_interval(pooled, ml, area_table, national_interval):
    population = area_table.populations()
    everything = ml.tables["areas_all"]
    tables = [pooled.table] + [everything[everything["method"].str.startswith(m)] for m in ("LightGBM", "ridge")]
    for table in tables:
        check = national_consistency(table["estimate"].to_numpy(), population, national_interval)
        assert check["within_national_interval"], (table["method"].iloc[0], check)


def test_pooled_national_sum_interval_covers_truth(pooled, area_table, country):
    check = national_consistency(pooled.table["estimate"].to_numpy(), area_table.populations(),
                                 draws=pooled.extras["draws"], level=0.9)
    assert check["implied_lower"] <= country.national_prevalence <= check["implied_upper"]


def test_cv_table_compares_methods(ml, pooled, area_table):
    from hiddenpop.smallarea.pooling import PooledModel, cross_validate_pooled

    cv = ml.tables["cv"]
    assert set(cv["method"]) == {"LightGBM", "ridge"}
    for column in ("rmse", "rmse_log", "coverage", "mean_width", "n", "folds"):
        assert cv[column].notna().all()
    # held-out direct estimates fall in the nested conformal observation intervals about 90% of the time
    assert cv["coverage"].between(0.8, 0.98).all()
    pooled_cv, grouping = cross_validate_pooled(area_table, PooledModel(seed=3, draws=300), folds=5, seed=3)
    assert grouping == "region"
    assert 0.8 <= pooled_cv["coverage"].iloc[0] <= 0.98
    assert pooled_cv["rmse_log"].iloc[0] < 0.6


def test_pooled_unsurveyed_coverage_over_consecutive_seeds():
    """Seeds 101-103 (consecutive, not selected): the average 90% coverage of unsurveyed areas is in 85-95%.

    Per seed, coverage over ~1,450 areas shares one estimate of sigma, so it scatters more than a binomial would;
    seed 103 is the known low case (about 0.80, see docs/methods/small-area.md: even the exact truth at its 150
    surveyed areas gives 0.87). The floor of 0.75 per seed catches a broken model, not that scatter.
    """
    from hiddenpop.simulate.country import synthetic_country
    from hiddenpop.smallarea.areas import AreaTable
    from hiddenpop.smallarea.direct import direct_estimates
    from hiddenpop.smallarea.pooling import PooledModel

    coverages = []
    for seed in (101, 102, 103):
        country = synthetic_country(seed=seed)
        direct = direct_estimates(country.survey, area="area_id", hidden="know_hidden", known=country.known_columns,
                                  roster=country.roster_columns, household_size="household_size", weight="weight",
                                  seed=seed, replicates=200)
        rows = direct.table[direct.table["quantity"] == "prevalence"]
        targets = rows[["area", "estimate", "se"]].rename(columns={"area": "area_id", "estimate": "target",
                                                                   "se": "target_se"})
        areas = AreaTable.from_frame(country.areas.merge(targets, on="area_id", how="left"), id="area_id",
                                     target="target", target_se="target_se", population="population",
                                     region="region", streams=country.streams, adjacency=country.adjacency)
        coverages.append(_coverage(PooledModel(seed=seed, draws=300).fit(areas), country, surveyed=False))
    assert 0.85 <= np.mean(coverages) <= 0.95, coverages
    assert min(coverages) >= 0.75, coverages
