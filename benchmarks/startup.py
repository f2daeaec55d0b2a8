"""Start-up and small-job timings of the command line (prints figures; not a test).

Run: .venv/bin/python benchmarks/startup.py [--runs 5]

Each command runs in a fresh process, ``--runs`` times; the table shows the median wall and CPU seconds (user +
system of the child process) beside the goals of issue #24 on an idle 2-core machine: ``hiddenpop --help`` under
0.3 s; ``capture closed`` on hare, ``capture mse --select aic`` on the UK five lists and ``capture open`` on duck
under 0.6 s each (R's process takes 0.33-1.07 s for these); ``nsum estimate --bootstrap 1000`` on a Study
2-sized survey under 0.6 s. On a loaded machine wall times are pessimistic; CPU seconds show the work done.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(command: list[str], runs: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from hiddenpop import datasets
    from hiddenpop.simulate.ard import NATIONAL_POPULATION, simulate_national_ard

    cli = [sys.executable, "-m", "hiddenpop.cli"]
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        for name in ("rcapture_hare", "mse_UKdat_5", "rcapture_duck"):
            datasets.load(name).to_csv(data / f"{name}.csv", index=False)
        survey = simulate_national_ard(seed=1)
        survey.frame.to_csv(data / "survey.csv", index=False)
        survey.known_table.to_csv(data / "known.csv", index=False)
        hidden = [flag for group in survey.ard.hidden for flag in ("--hidden", group)]
        jobs = [
            ("hiddenpop --help", [*cli, "--help"], 0.3),
            ("capture closed (hare)", [*cli, "capture", "closed", str(data / "rcapture_hare.csv")], 0.6),
            ("capture mse --select aic (UK five lists)",
             [*cli, "capture", "mse", str(data / "mse_UKdat_5.csv"), "--select", "aic"], 0.6),
            ("capture open (duck)", [*cli, "capture", "open", str(data / "rcapture_duck.csv")], 0.6),
            ("nsum estimate --bootstrap 1000 (3,600 respondents)",
             [*cli, "nsum", "estimate", str(data / "survey.csv"), "--known", str(data / "known.csv"),
              "--population", str(NATIONAL_POPULATION), *hidden, "--weights", "weight", "--strata", "stratum",
              "--psu", "psu", "--bootstrap", "1000"], 0.6),
        ]
        print(f"load average: {os.getloadavg()[0]:.2f} (medians of {args.runs} fresh processes)")
        print(f"{'command':<52s} {'wall':>7s} {'CPU':>7s} {'goal':>6s}")
        for label, command, goal in jobs:
            wall, cpu = measure(command, args.runs)
            print(f"{label:<52s} {wall:6.2f}s {cpu:6.2f}s {goal:5.1f}s")


if __name__ == "__main__":
    main()
