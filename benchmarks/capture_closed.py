"""Timing of the closed capture-recapture models (prints figures; not a test).

All 12 closed models at t = 6, 10, 14 (2,000 units, M_th data) and the M_th family (Mt, Mth Chao (LB),
Mth Poisson2, Mth Darroch, Mth Gamma3.5) at t = 52 and t = 200, fitted from sufficient statistics.
Goal: t = 14 table < 1 s (Rcapture: 109 s), t = 52 < 1 s. Timings on a shared machine are pessimistic.

Run: .venv/bin/python benchmarks/capture_closed.py
"""

from __future__ import annotations

import time

import numpy as np

from hiddenpop.capture.closed import closedp
from hiddenpop.capture.histories import Histories

MTH_FAMILY = ("Mt", "Mth Chao (LB)", "Mth Poisson2", "Mth Darroch", "Mth Gamma3.5")


def simulate_mth(units: int, occasions: int, mean_captures: float, seed: int) -> Histories:
    """M_th data: unit catchability ~ Beta(2, 6) scaled, times occasion effects in [0.6, 1.4]."""
    rng = np.random.default_rng(seed)
    unit = rng.beta(2.0, 6.0, size=units)
    time_effect = rng.uniform(0.6, 1.4, size=occasions)
    p = unit[:, None] * time_effect[None, :]
    p = np.clip(p * mean_captures / p.sum(axis=1).mean(), 0.0, 0.95)
    caught = rng.random((units, occasions)) < p
    caught = caught[caught.any(axis=1)]
    return Histories.from_patterns(caught.astype(np.uint8))


def main() -> None:
    closedp(simulate_mth(200, 4, 1.5, 0))  # warm-up: library imports are not part of the timings
    print("closed models, 2,000 units, M_th data (times in seconds; shared 2-core machine, pessimistic)")
    for t in (6, 10, 14):
        h = simulate_mth(2000, t, mean_captures=1.5, seed=t)
        start = time.perf_counter()
        result = closedp(h)
        elapsed = time.perf_counter() - start
        chao = result.estimate("abundance", "Mth Chao (LB)")
        print(f"t = {t:3d}: all 12 models {elapsed:6.3f} s   (n = {h.observed}, Mth Chao N = {chao:,.1f})")
    for t in (52, 200):
        h = simulate_mth(2000, t, mean_captures=4.0, seed=t)
        start = time.perf_counter()
        result = closedp(h, models=MTH_FAMILY)
        elapsed = time.perf_counter() - start
        chao = result.estimate("abundance", "Mth Chao (LB)")
        per_model = {f.model: f for f in result.extras["fits"]}
        dropped = len(per_model["Mth Chao (LB)"].dropped_eta)
        print(
            f"t = {t:3d}: M_th family ({len(MTH_FAMILY)} models) {elapsed:6.3f} s   "
            f"(n = {h.observed}, Mth Chao N = {chao:,.1f}, {dropped} eta dropped)"
        )


if __name__ == "__main__":
    main()
