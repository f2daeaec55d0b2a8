"""Timing of the closed capture-recapture models (prints figures; not a test).

All 12 closed models at t = 6, 10, 14 (2,000 units, M_th data), the M_th family (Mt, Mth Chao (LB),
Mth Poisson2, Mth Darroch, Mth Gamma3.5) at t = 52 and t = 200 fitted from sufficient statistics, and the
Mth Chao (LB) profile-likelihood interval at t = 30. Each timing is the median of ``REPEATS`` runs.
Goal: t = 14 table < 1 s (Rcapture: 109 s), t = 52 < 1 s. Timings on a shared machine are pessimistic: the
load average is printed with the figures.

Run: .venv/bin/python benchmarks/capture_closed.py
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from hiddenpop.capture.closed.models import closedp
from hiddenpop.capture.core.histories import Histories

MTH_FAMILY = ("Mt", "Mth Chao (LB)", "Mth Poisson2", "Mth Darroch", "Mth Gamma3.5")
REPEATS = 3


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


#: CPU seconds of this process for the last median_time() call (median over the repeats): with other jobs
#: competing for the cores, wall time overstates the cost and CPU time is closer to a one-core figure
LAST_CPU = [0.0]


def median_time(run) -> tuple[float, object]:
    """Median wall-clock seconds of REPEATS runs (and their median CPU seconds in LAST_CPU)."""
    times, cpu, result = [], [], None
    for _ in range(REPEATS):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    LAST_CPU[0] = statistics.median(cpu)
    return statistics.median(times), result


def main() -> None:
    closedp(simulate_mth(200, 4, 1.5, 0))  # warm-up: library imports are not part of the timings
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"closed models, 2,000 units, M_th data: median of {REPEATS} runs in seconds "
        f"(load average {load:.1f} on {os.cpu_count()} cores; a shared machine, so pessimistic)"
    )
    for t in (6, 10, 14):
        h = simulate_mth(2000, t, mean_captures=1.5, seed=t)
        elapsed, result = median_time(lambda h=h: closedp(h))
        chao = result.estimate("abundance", "Mth Chao (LB)")
        print(
            f"t = {t:3d}: all 12 models {elapsed:6.3f} s (CPU {LAST_CPU[0]:.3f} s)   "
            f"(n = {h.observed}, Mth Chao N = {chao:,.1f})"
        )
    for t in (52, 200):
        h = simulate_mth(2000, t, mean_captures=4.0, seed=t)
        elapsed, result = median_time(lambda h=h: closedp(h, models=MTH_FAMILY))
        per_model = {f.model: f for f in result.extras["fits"]}
        chao = per_model["Mth Chao (LB)"]
        not_converged = [f.model for f in result.extras["fits"] if not f.converged]
        print(
            f"t = {t:3d}: M_th family ({len(MTH_FAMILY)} models) {elapsed:6.3f} s (CPU {LAST_CPU[0]:.3f} s)   "
            f"(n = {h.observed}, "
            f"Mth Chao N = {chao.abundance:,.1f}, {len(chao.dropped_eta)} eta dropped"
            + (f"; not converged: {', '.join(not_converged)}" if not_converged else "")
            + ")"
        )
        if t == 200:
            from hiddenpop.capture.closed.models import fit_closed

            parts = []
            for m in MTH_FAMILY:
                wall = median_time(lambda m=m, h=h: fit_closed(h, m))[0]
                parts.append(f"{m} {wall:.3f} (CPU {LAST_CPU[0]:.3f})")
            print(f"          per model, s: {', '.join(parts)}")
    from hiddenpop.capture.closed.profile import profile_ci

    h = simulate_mth(2000, 30, mean_captures=4.0, seed=30)
    elapsed, ci = median_time(lambda: profile_ci(h, "Mth Chao (LB)"))
    print(
        f"t =  30: Mth Chao (LB) profile interval {elapsed:6.3f} s (CPU {LAST_CPU[0]:.3f} s)   "
        f"(N = {ci.multinomial_abundance:,.1f}, 95% [{ci.lower:,.1f}, {ci.upper:,.1f}])"
    )


if __name__ == "__main__":
    main()
