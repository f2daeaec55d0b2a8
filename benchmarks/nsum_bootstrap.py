"""Benchmark: 1,000 rescaled-bootstrap replicates of every NSUM estimate on a Study 2-shaped survey.

3,600 respondents x 19 groups (11 occupations + 4 child age bands known, 4 hidden), 150 PSUs in 15 strata.
Estimates: MLE, PIMLE and MoS for the 4 hidden groups (adult degree from the occupations), plus the victims
sum, traffickers sum, victims-per-trafficker ratio and two prevalences, all with percentile intervals.
Goal: under 1 s on 2 cores. Reference point: surveybootstrap (R) takes about 2.8 s for 1,000 replicates of one
estimate on a 2,406-row survey. Run: ``.venv/bin/python benchmarks/nsum_bootstrap.py``.
"""

from __future__ import annotations

import time

import numpy as np

from hiddenpop import nsum
from hiddenpop.design.replicate import rescaled_bootstrap
from hiddenpop.simulate.ard import (
    CHILD_BAND_SIZES,
    NATIONAL_POPULATION,
    OCCUPATION_SIZES,
    simulate_national_ard,
)


def main(repeats: int = 5) -> None:
    sim = simulate_national_ard(seed=2023)
    ard = sim.ard
    adult = nsum.degree(ard, columns=list(OCCUPATION_SIZES))
    children = sum(CHILD_BAND_SIZES.values())
    derived = {
        "sums": {"victims": ["child_nonlive", "child_livestream"], "traffickers": ["adult_nonlive", "adult_livestream"]},
        "ratios": {"victims_per_trafficker": ("victims", "traffickers")},
        "prevalence": {
            "victims_per_100": nsum.Prevalence("victims", children, 100),
            "traffickers_per_1000": nsum.Prevalence("traffickers", NATIONAL_POPULATION - children, 1000),
        },
    }
    print(f"survey: {ard.n} respondents x {ard.counts.shape[1]} groups, "
          f"{len(np.unique(ard.psu))} PSUs in {len(np.unique(ard.strata))} strata")

    times = []
    for r in range(repeats):
        start = time.perf_counter()
        result = nsum.estimate(ard, method=["mle", "pimle", "mos"], degree=adult, bootstrap=1000, seed=r, **derived)
        times.append(time.perf_counter() - start)
    print(f"nsum.estimate, 3 methods x (4 groups + 5 derived) = {len(result.table)} estimates, 1,000 replicates: "
          f"median {np.median(times):.3f} s, min {min(times):.3f} s over {repeats} runs")

    start = time.perf_counter()
    factors = rescaled_bootstrap(ard.n, strata=ard.strata, psu=ard.psu, replicates=1000, seed=0)
    t_factors = time.perf_counter() - start
    start = time.perf_counter()
    matrix = factors.matrix(ard.weights)
    t_matrix = time.perf_counter() - start
    print(f"replicate factors (150 PSUs x 1,000): {t_factors * 1e3:.1f} ms; "
          f"full replicate-weight matrix {matrix.shape}: {t_matrix * 1e3:.1f} ms")
    truth = sim.truth.hidden_sizes
    table = result.table[result.table["method"] == "mle"].set_index("quantity")
    for group in truth.index:
        row = table.loc[group]
        print(f"  {group:18s} truth {truth[group]:>10,.0f}  MLE {row['estimate']:>10,.0f} "
              f"[{row['lower']:>10,.0f}, {row['upper']:>10,.0f}]")
    row = table.loc["victims_per_trafficker"]
    print(f"  victims per trafficker: {row['estimate']:.2f} [{row['lower']:.2f}, {row['upper']:.2f}] "
          f"(truth {(truth.iloc[:2].sum() / truth.iloc[2:].sum()):.2f})")
    print("note: timings on a shared 2-core machine are pessimistic")


if __name__ == "__main__":
    main()
