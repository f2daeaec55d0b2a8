"""Timing of ``capture mse --compare`` on the UK 2013 five lists (prints figures; not a test).

Run: .venv/bin/python benchmarks/capture_mse_compare.py [--runs 3] [--draws 1000]

Each run is a fresh process running the command end to end (start-up, JAX compilation of the latent-class
sampler, every model class; the latent class at 4 chains x ``--draws`` warmup and draws). The goal of issue #22
is under 20 s on 2 cores. For scale: LCMCR's C sampler draws 2,000 samples in under a second, and
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
    args = parser.parse_args()
    from hiddenpop import datasets

    with tempfile.TemporaryDirectory() as folder:
        lists = Path(folder) / "uk5.csv"
        datasets.load("mse_UKdat_5").to_csv(lists, index=False)
        command = [sys.executable, "-m", "hiddenpop.cli", "capture", "mse", str(lists), "--select", "stepwise",
                   "--compare", "--draws", str(args.draws), "--format", "json", "--quiet"]
        walls, cpus, payload = [], [], None
        for _ in range(args.runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            payload = json.loads(done.stdout)
    print(f"load average before/after: {os.getloadavg()[0]:.2f}")
    print(f"capture mse --compare, UK five lists, latent class 4 x {args.draws}: median of {args.runs} runs "
          f"{statistics.median(walls):.1f} s wall, {statistics.median(cpus):.1f} s CPU "
          f"(goal < {GOAL_SECONDS:.0f} s: {'met' if statistics.median(walls) < GOAL_SECONDS else 'not met'})")
    for row in payload["estimates"]:
        print(f"  {row['model_class']:<13s} {row['estimate']:>10,.0f}  [{row['lower']:,.0f}, {row['upper']:,.0f}]  "
              f"{row['status']}")


if __name__ == "__main__":
    main()
