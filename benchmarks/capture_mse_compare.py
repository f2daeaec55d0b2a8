"""Timing of ``capture mse --compare`` on the UK 2013 five lists (prints figures; not a test).

Run: .venv/bin/python benchmarks/capture_mse_compare.py [--runs 3] [--draws 1000] [--cold]

Each run is a fresh process running the command end to end (start-up, every model class; the latent class at 4
chains x ``--draws`` warmup and draws). The command keeps compiled samplers in a disk cache: here the cache is a
fresh folder, so the first run compiles the latent-class sampler (cold) and later runs load it (warm), as a user's
second run does; ``--cold`` gives every run a fresh cache. The goal of issue #22 is under 20 s on 2 cores. For scale: LCMCR's C sampler draws 2,000 samples in under a second, and
MultipleSystemsEstimation's BIC enumeration with 200 BCa bootstraps takes about 52 s on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--cold", action="store_true", help="a fresh compilation cache for every run")
    args = parser.parse_args()
    from hiddenpop import datasets

    with tempfile.TemporaryDirectory() as folder:
        lists = Path(folder) / "uk5.csv"
        datasets.load("mse_UKdat_5").to_csv(lists, index=False)
        command = [sys.executable, "-m", "hiddenpop.cli", "capture", "mse", str(lists), "--select", "stepwise",
                   "--compare", "--draws", str(args.draws), "--format", "json", "--quiet"]
        walls, cpus, payload = [], [], None
        load = os.getloadavg()[0]
        for run in range(args.runs):
            cache = Path(folder) / (f"cache{run}" if args.cold else "cache")
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=True,
                                  env={**os.environ, "HIDDENPOP_JAX_CACHE": str(cache)})
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            payload = json.loads(done.stdout)
            print(f"  run {run + 1} ({'cold' if args.cold or run == 0 else 'warm'} cache): {walls[-1]:.1f} s wall, "
                  f"{cpus[-1]:.1f} s CPU")
    print(f"load average before/after: {load:.2f} / {os.getloadavg()[0]:.2f}")
    label = "cold" if args.cold or args.runs == 1 else "warm"
    timed_walls, timed_cpus = (walls, cpus) if label == "cold" else (walls[1:], cpus[1:])
    wall = statistics.median(timed_walls)
    print(f"capture mse --compare, UK five lists, latent class 4 x {args.draws}: median of {len(timed_walls)} "
          f"{label}-cache runs {wall:.1f} s wall, {statistics.median(timed_cpus):.1f} s CPU; first (cold) run "
          f"{walls[0]:.1f} s wall, {cpus[0]:.1f} s CPU (goal < {GOAL_SECONDS:.0f} s: "
          f"{'met' if wall < GOAL_SECONDS else 'not met'})")
    for row in payload["estimates"]:
        print(f"  {row['model_class']:<13s} {row['estimate']:>10,.0f}  [{row['lower']:,.0f}, {row['upper']:,.0f}]  "
              f"{row['status']}")


if __name__ == "__main__":
    main()
