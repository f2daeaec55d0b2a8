"""Small-area estimation on synthetic countries: timings, coverage over several seeds, NUTS vs importance.

Prints figures; never run by the test suite. Timings on a shared machine are pessimistic.
Usage: .venv/bin/python benchmarks/smallarea.py [n_seeds] [--nuts] [--variances]

``--variances`` adds, per seed, the pooled model's unsurveyed coverage under each way of treating the direct
standard errors (pooled = default, gvf, direct) and the direct estimates' own coverage (BCa intervals).
"""

from __future__ import annotations

import sys
import time

from hiddenpop.simulate.country import areas_with_direct_rates, synthetic_country
from hiddenpop.smallarea.areas import AreaTable
from hiddenpop.smallarea.extrapolate import extrapolate
from hiddenpop.smallarea.national import national_consistency
from hiddenpop.smallarea.pooling import PooledModel


def build(seed: int):
    country = synthetic_country(seed=seed)
    frame, direct = areas_with_direct_rates(country, seed=seed)
    areas = AreaTable.from_frame(frame, id="area_id", target="direct_rate", target_se="direct_se",
                                 population="population", region="region", name="name", streams=country.streams,
                                 adjacency=country.adjacency)
    national = direct.get("national prevalence")
    return country, direct, areas, (national["estimate"], national["lower"], national["upper"])


def coverage(table, country, surveyed):
    merged = table.merge(country.truth, left_on="area", right_on="area_id", suffixes=("", "_truth"))
    rows = merged[merged["surveyed"] == surveyed]
    return float(((rows["lower"] <= rows["prevalence"]) & (rows["prevalence"] <= rows["upper"])).mean())


def main() -> None:
    n_seeds = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 4
    print("seed  pooled_cov_unsurv  lgbm_cov_unsurv  ridge_cov_unsurv  best  ridge_top3_ok  lgbm_top3_ok  "
          "pooled_in_nat  ml_in_nat  t_pool_s  t_ml_s")
    seeds = [20221, *range(101, 101 + n_seeds)]  # the test seed first
    for seed in seeds:
        country, direct, areas, national = build(seed)
        start = time.perf_counter()
        pooled = PooledModel(seed=seed).fit(areas)
        t_pool = time.perf_counter() - start
        start = time.perf_counter()
        ml = extrapolate(areas, seed=seed, repeats=5)
        t_ml = time.perf_counter() - start
        drivers = set(country.driving_streams)
        imp = ml.tables["importance_all"]
        top = {m: set(imp[imp["model"] == m].sort_values("rank")["stream"].head(len(drivers))) == drivers
               for m in ("ridge", "lightgbm")}
        population = areas.populations()
        in_nat = [national_consistency(r.table["estimate"].to_numpy(), population, national)[
            "within_national_interval"] for r in (pooled, ml)]
        both = ml.tables["areas_all"]
        learner_cov = {m: coverage(both[both["method"].str.startswith(m)], country, False) for m in ("LightGBM", "ridge")}
        print(f"{seed:4d}  {coverage(pooled.table, country, False):17.3f}  {learner_cov['LightGBM']:15.3f}  "
              f"{learner_cov['ridge']:16.3f}  {ml.settings['model'][:5]:>5}  {top['ridge']!s:>13}  "
              f"{top['lightgbm']!s:>12}  {in_nat[0]!s:>13}  {in_nat[1]!s:>9}  {t_pool:8.1f}  {t_ml:6.1f}", flush=True)
        if "--variances" in sys.argv:
            rows = direct.table[direct.table["quantity"] == "prevalence"]
            direct_cov = coverage(rows.assign(surveyed=True), country, True)
            by_variance = {how: coverage(PooledModel(seed=seed, sampling_variance=how).fit(areas).table, country,
                                         False) for how in ("pooled", "gvf", "direct")}
            print(f"      direct BCa coverage (surveyed) {direct_cov:.3f}; pooled unsurveyed coverage by sampling "
                  f"variance: " + ", ".join(f"{k} {v:.3f}" for k, v in by_variance.items()), flush=True)
    if "--nuts" in sys.argv:
        country, _, areas, _ = build(101)
        for engine in ("importance", "nuts"):
            start = time.perf_counter()
            fit = PooledModel(seed=1, engine=engine, draws=1000).fit(areas)
            elapsed = time.perf_counter() - start
            hyper = fit.diagnostics["hyperparameters"]
            summary = ", ".join(f"{k}={v['mean']:.3f} (sd {v['sd']:.3f})" for k, v in sorted(hyper.items()))
            print(f"{engine:10s} {elapsed:6.1f}s  {summary}  unsurveyed coverage "
                  f"{coverage(fit.table, country, False):.3f}", flush=True)


if __name__ == "__main__":
    main()
