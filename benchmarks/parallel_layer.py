"""Where Dask pays off: vectorised bootstrap vs the cost of a LocalCluster, and a grid serial vs LocalCluster.

Prints wall-clock seconds. Timings on a shared machine are pessimistic; compare ratios, not absolutes.
Run: .venv/bin/python benchmarks/parallel_layer.py
"""

from __future__ import annotations

import time


def main() -> None:
    from hiddenpop import nsum
    from hiddenpop.parallel import map_replicates
    from hiddenpop.simulate.ard import simulate_national_ard
    from hiddenpop.simulate.grid import parse_grid, run_grid

    ard = simulate_national_ard(seed=1).ard
    start = time.perf_counter()
    nsum.estimate(ard, method=["mle", "pimle", "mos"], bootstrap=1000, seed=1)
    boot = time.perf_counter() - start
    print(f"NSUM 1,000 rescaled-bootstrap replicates, 3 estimators, Study 2 shape (serial, vectorised): {boot:.2f} s")

    start = time.perf_counter()
    map_replicates(abs, [1, 2], scheduler="local", n_workers=2)
    cluster = time.perf_counter() - start
    print(f"LocalCluster start + 2 trivial tasks + shutdown: {cluster:.2f} s")

    spec = parse_grid({"grid": {"seed": 1, "replicates": 40},
                       "capture": {"vary": {"heterogeneity": [1.0]}}})
    for scheduler in ("serial", "local"):
        start = time.perf_counter()
        run_grid(spec, scheduler=scheduler, n_workers=2)
        print(f"capture grid, 2 scenarios x 40 replicates x 6 models, {scheduler}: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
