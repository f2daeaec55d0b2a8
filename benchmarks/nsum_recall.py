"""Benchmark: coverage of the Bayesian recall curve (``recall="loglinear"``) against a known recall curve.

Simulated surveys: log-normal degrees (median 300, log-sd 0.5), 8 known groups of 1,000 to 50,000 and one hidden
group of 3,000 in a population of 1e6, reports y_ik ~ Poisson(d_i p_k (p_k / 0.01)^b) with b = -0.35 (small
groups over-reported, large ones under-reported). The degree model (random degrees, Poisson likelihood) is fitted
to every survey with and without the curve in one batched NUTS call each; the script prints the 95% interval
coverage of the hidden size, the coverage of the slope, the largest R-hat and the wall time. This is the
full-size check behind tests/nsum/bayes/test_recall.py, which fits one survey each way.

    .venv/bin/python benchmarks/nsum_recall.py [--replicates 100] [--respondents 100] [--draws 400]

Run it on an otherwise idle machine: timings on shared cores are pessimistic.
"""

from __future__ import annotations

import argparse
import os
import time

POPULATION = 1e6
KNOWN = {f"k{i}": s for i, s in enumerate([1e3, 2e3, 4e3, 7e3, 1.2e4, 2e4, 3e4, 5e4])}
HIDDEN_SIZE = 3e3
SLOPE = -0.35


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--respondents", type=int, default=100)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--seed", type=int, default=500)
    args = parser.parse_args()
    # one CPU device per chain, set before JAX starts
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={args.chains}")

    # numpy, pandas and the models load JAX lazily; imported here so --help stays instant
    import numpy as np
    import pandas as pd

    from hiddenpop.mcmc.nuts import quantity_row, sample_nuts
    from hiddenpop.nsum.bayes import DegreeModel
    from hiddenpop.nsum.bayes import recall as recall_curve
    from hiddenpop.nsum.bayes.common import coerce_data
    from hiddenpop.nsum.bayes.maltiel import model_arrays, stack_arrays

    def simulate(seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        degree = np.exp(rng.normal(np.log(300), 0.5, args.respondents))
        columns = {}
        for group, size in {**KNOWN, "h": HIDDEN_SIZE}.items():
            share = size / POPULATION
            columns[group] = rng.poisson(degree * share * (share / 0.01) ** SLOPE)
        return pd.DataFrame(columns)

    datasets = [coerce_data(simulate(args.seed + r), KNOWN, POPULATION, ["h"], None) for r in range(args.replicates)]
    print(f"{args.replicates} surveys of {args.respondents} respondents; {args.chains} chains x {args.draws} draws "
          f"after {args.warmup} warm-up; true slope {SLOPE}, hidden size {HIDDEN_SIZE:g}")
    for recall in ("loglinear", "none"):
        start = time.perf_counter()
        model = DegreeModel(recall=recall, parameterisation="centred")
        arrays = []
        for data in datasets:
            values = model_arrays(data, model.priors)
            if model.recall:  # as MaltielModel.fit adds them
                values.update(recall_curve.arrays(data.known_sizes[data.known_index], data.population))
            arrays.append(values)
        inits = {k: np.stack([np.asarray(model.initial_values(d)[k], dtype=float) for d in datasets])
                 for k in model.initial_values(datasets[0])}
        fits = sample_nuts(model.numpyro_model(datasets[0]), stack_arrays(arrays), chains=args.chains,
                           warmup=args.warmup, draws=args.draws, seed=7, batched=True, init_values=inits,
                           max_tree_depth=6)
        covered, slope_covered, rhats, log_errors = [], [], [], []
        for fit in fits:
            row = quantity_row("h", "sim", fit.samples["size"][..., 0])
            covered.append(row["lower"] <= HIDDEN_SIZE <= row["upper"])
            log_errors.append(np.log(row["estimate"] / HIDDEN_SIZE))
            rhats.append(row["rhat"])
            if "recall_slope" in fit.samples:
                slope = quantity_row("recall_slope", "sim", fit.samples["recall_slope"])
                slope_covered.append(slope["lower"] <= SLOPE <= slope["upper"])
                rhats.append(slope["rhat"])
        line = (f"recall={recall:9s} coverage {np.mean(covered):.3f}  mean log error {np.mean(log_errors):+.3f}  "
                f"max R-hat {max(rhats):.4f}")
        if slope_covered:
            line += f"  slope coverage {np.mean(slope_covered):.3f}"
        print(f"{line}  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
