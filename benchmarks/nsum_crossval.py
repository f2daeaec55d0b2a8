"""Benchmark: the post-fit cost of model comparison at Study 2's size (no MCMC).

Held-out log predictive densities (:func:`hiddenpop.nsum.bayes.crossval.log_predictive`, adaptive Gauss-Hermite
over each respondent's log degree) for one fold of 720 respondents, and randomized quantile residuals for 3,600
respondents, for each count family (Poisson: degree/transmission; gamma-Poisson: barrier/combined; NB with shape
proportional to the degree: overdispersed), 19 groups, 1,000 posterior draws (100 for the residuals). The K
refits themselves cost K times one fit (see benchmarks/nsum_bayes.py).

    .venv/bin/python benchmarks/nsum_crossval.py [--respondents 720] [--draws 1000]

Run it on an otherwise idle machine: timings on shared cores are pessimistic.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hiddenpop.nsum.bayes.crossval import RESIDUAL_DRAWS, CountModel, log_predictive, quantile_residuals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=720, help="held-out respondents (one fold of 3,600)")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=19)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    draws, groups = args.draws, args.groups
    prob = rng.uniform(0.001, 0.03, groups)
    log_prob = np.log(prob)[None].repeat(draws, 0) + rng.normal(0, 0.02, (draws, groups))
    mu, sigma = rng.normal(5.0, 0.02, draws), np.abs(rng.normal(0.6, 0.02, draws))
    counts = rng.poisson(150 * prob * rng.gamma(3.0, 1 / 3.0, (5 * args.respondents, groups))).astype(float)
    degree = np.exp(rng.normal(5.0, 0.6, (RESIDUAL_DRAWS, len(counts))))
    for family, shape in (("poisson", None), ("gamma", prob * 3.0), ("proportional", prob / 2.0)):
        model = CountModel(mu=mu, sigma=sigma, log_prob=log_prob, family=family,
                           shape=None if shape is None else np.broadcast_to(shape, (draws, groups)))
        start = time.perf_counter()
        log_predictive(model, counts[:args.respondents])
        held_out = time.perf_counter() - start
        thin = CountModel(mu=mu[:RESIDUAL_DRAWS], sigma=sigma[:RESIDUAL_DRAWS], log_prob=log_prob[:RESIDUAL_DRAWS],
                          family=family, shape=None if shape is None else model.shape[:RESIDUAL_DRAWS], degree=degree)
        start = time.perf_counter()
        quantile_residuals(thin, counts, seed=1)
        residuals = time.perf_counter() - start
        print(f"{family:>12}: held-out density {args.respondents} respondents x {draws} draws {held_out:6.1f} s; "
              f"residuals {len(counts)} x {groups} x {RESIDUAL_DRAWS} draws {residuals:6.1f} s")


if __name__ == "__main__":
    main()
