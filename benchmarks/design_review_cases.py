"""Timing of survey design, sample review and case-file summaries at national scale (prints figures; not a test).

* `select_pps` on a synthetic frame shaped like the Philippines: 17 regions, 1,600 municipalities,
  42,000 barangays; 150 municipalities, 1 barangay each, 24 interviews, 2 reserves per barangay.
* `compute_weights` for 3,600 respondents + 600 non-respondents, 17 non-response cells, raking to
  region x sex x 5 age bands.
* `combine_with_total` with 1,000,000 Monte Carlo draws.
* `summarize_cases` on 5,000 synthetic coded cases with 3 cross-tabs.

Timings on a shared 2-core machine (other jobs running) are pessimistic.

Run: .venv/bin/python benchmarks/design_review_cases.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from hiddenpop.cases.summary import read_codebook, summarize_cases
from hiddenpop.design.selection import select_pps
from hiddenpop.design.weights import compute_weights
from hiddenpop.review.proportion import combine_with_total


def timed(label, fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    print(f"{label:<60s} {best:8.3f} s (best of {repeat})")
    return result


def main() -> None:
    rng = np.random.default_rng(1)
    municipalities = 1_600
    per_muni = rng.multinomial(42_000 - municipalities, np.full(municipalities, 1 / municipalities)) + 1
    frame = pd.DataFrame({
        "region": np.repeat(rng.integers(0, 17, municipalities).astype(str), per_muni),
        "municipality": np.repeat([f"M{i:04d}" for i in range(municipalities)], per_muni),
        "barangay": [f"B{i:05d}" for i in range(per_muni.sum())],
        "households": rng.integers(80, 6_000, per_muni.sum()),
    })
    result = timed(
        "select_pps: 42,000 barangays, 150 PSUs x 1 SSU, 2 reserves",
        lambda: select_pps(frame, stratum="region", psu="municipality", ssu="barangay", size="households",
                           psus=150, take=24, reserves=2, seed=1),
    )
    print(f"  interviews planned: {int(result.estimate('interviews_planned'))}")

    n = 4_200
    sample = pd.DataFrame({
        "pi": rng.uniform(2e-5, 6e-5, n),
        "region": rng.integers(0, 17, n).astype(str),
        "sex": rng.choice(["f", "m"], n),
        "age": rng.choice(["18-24", "25-34", "35-44", "45-54", "55-65"], n),
        "responded": (rng.random(n) < 3_600 / 4_200).astype(int),
    })
    margins = {
        "region": {str(r): 4_000_000.0 for r in range(17)},
        "sex": {"f": 34_000_000.0, "m": 34_000_000.0},
        "age": {a: 68_000_000.0 / 5 for a in ["18-24", "25-34", "35-44", "45-54", "55-65"]},
    }
    weights = timed(
        "compute_weights: 4,200 rows, 17 cells, raking 3 margins",
        lambda: compute_weights(sample, probability="pi", respondent="responded", cells=["region"], margins=margins),
    )
    print(f"  raking cycles: {int(weights.estimate('raking_iterations'))}")

    timed(
        "combine_with_total: 1,000,000 draws",
        lambda: combine_with_total(40, 160, 800, total=81_723, total_lower=80_188, total_upper=83_259, seed=1,
                                   draws=1_000_000),
    )

    cases_n = 5_000
    cases = pd.DataFrame({
        "sex": rng.choice(["female", "male", "unknown"], cases_n),
        "relationship": rng.choice(["parent", "relative", "neighbour", "other"], cases_n),
        "victims": rng.poisson(3, cases_n),
        "platforms": [";".join(rng.choice(["a", "b", "c", "d"], 2, replace=False)) for _ in range(cases_n)],
    })
    codebook = read_codebook(pd.DataFrame({
        "column": ["sex", "relationship", "victims", "platforms"],
        "role": ["victim", "trafficker", "victim", "offending_process"],
        "type": ["categorical", "categorical", "numeric", "multi_select"],
        "missing": ["unknown", "", "", ""],
    }))
    timed(
        "summarize_cases: 5,000 cases, 3 cross-tabs",
        lambda: summarize_cases(cases, codebook, by="sex", crosstabs=[("platforms", "relationship")]),
    )


if __name__ == "__main__":
    main()
