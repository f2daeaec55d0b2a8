"""Start-up and small-job timings of the command line (prints figures; not a test).

Run: .venv/bin/python benchmarks/startup.py [--runs 5] [--before OTHER/src]

Each command runs in a fresh process, ``--runs`` times; the table shows the median wall and CPU seconds (user +
system of the child process) beside the goals of issue #24 on an idle 2-core machine: ``hiddenpop --help`` under
0.3 s; ``capture closed`` on hare, ``capture mse --select aic`` on the UK five lists and ``capture open`` on duck
under 0.6 s each (R's process takes 0.33-1.07 s for these); ``nsum estimate --bootstrap 1000`` on a Study
2-sized survey under 0.6 s. On a loaded machine wall times are pessimistic; CPU seconds show the work done.

The children run with their bytecode cached, as in an installed package (a warm-up run writes it under a temporary
``PYTHONPYCACHEPREFIX``, also when ``PYTHONDONTWRITEBYTECODE`` is set here): compiling hiddenpop's modules from
source would add about 0.1 s to every command. The second table is the floor under every small command: the CPU
seconds of importing, in one fresh process and in this order, the libraries each of them loads before any work.
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

#: The libraries under every small command, imported in this order by :func:`floor` (each line costs what it adds
#: to the ones before it: SciPy's compiled special functions come through ``hiddenpop.special``, without the
#: array-API layer of ``scipy.special``'s package; pandas includes pyarrow, which pandas imports to choose its string
#: storage). None of these commands imports ``scipy.optimize`` (profile intervals use ``hiddenpop.brent``).
FLOOR = (("numpy", "import numpy"), ("SciPy's special functions (hiddenpop.special)", "import hiddenpop.special"),
         ("pandas (with pyarrow)", "import pandas"), ("rich", "import rich.console, rich.table, rich.progress"),
         ("typer (click)", "import typer"), ("pydantic (Typer's option parsing)", "import typer._adapters"))


def floor(env: dict[str, str]) -> list[tuple[str, float]]:
    """CPU seconds of each import of :data:`FLOOR`, added one after another in a fresh process."""
    code = "\n".join(["import resource", "def cpu():", "    r = resource.getrusage(resource.RUSAGE_SELF)",
                       "    return r.ru_utime + r.ru_stime", "last = cpu()"]
                      + [f"{statement}\nnow = cpu(); print(now - last); last = now" for _, statement in FLOOR])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return list(zip([label for label, _ in FLOOR], map(float, done.stdout.split()), strict=True))


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def measure(command: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    subprocess.run(command, capture_output=True, check=True, env=env)  # warm-up: writes the bytecode cache
    walls, cpus = zip(*(run_once(command, env) for _ in range(runs)), strict=True)
    return statistics.median(walls), statistics.median(cpus)


def alternate(command: list[str], runs: int, envs: list[dict[str, str]]) -> list[list[float]]:
    """CPU seconds of ``runs`` fresh processes under each environment, run in turn (A, B, A, B...) so that a
    changing load on a shared machine falls on both alike."""
    for env in envs:
        subprocess.run(command, capture_output=True, check=True, env=env)  # warm-up: writes the bytecode cache
    cpus: list[list[float]] = [[] for _ in envs]
    for _ in range(runs):
        for index, env in enumerate(envs):
            cpus[index].append(run_once(command, env)[1])
    return cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", metavar="SRC",
                        help="another source tree (a checkout's src/ folder) to compare with, runs alternated: prints "
                             "the least and the median CPU seconds of each instead of the goals table")
    args = parser.parse_args()
    from hiddenpop import datasets
    from hiddenpop.simulate.ard import NATIONAL_POPULATION, simulate_national_ard

    cli = [sys.executable, "-m", "hiddenpop.cli"]
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(data / "bytecode")
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
        if args.before:
            here = str(Path(__file__).resolve().parents[1] / "src")
            envs = [{**env, "PYTHONPATH": tree, "PYTHONPYCACHEPREFIX": str(data / f"bytecode{i}")}
                    for i, tree in enumerate((args.before, here))]
            print(f"load average: {os.getloadavg()[0]:.2f}; CPU seconds, least (median) of {args.runs} fresh "
                  f"processes of each, alternated")
            print(f"{'command':<52s} {'before':>13s} {'now':>13s}")
            for label, command, _ in jobs:
                before, now = alternate(command, args.runs, envs)
                print(f"{label:<52s} {min(before):5.2f} ({statistics.median(before):4.2f}) "
                      f"{min(now):5.2f} ({statistics.median(now):4.2f})")
            print(f"load average at the end: {os.getloadavg()[0]:.2f}")
            return
        print(f"load average: {os.getloadavg()[0]:.2f} (medians of {args.runs} fresh processes)")
        print(f"{'command':<52s} {'wall':>7s} {'CPU':>7s} {'goal':>6s}")
        for label, command, goal in jobs:
            wall, cpu = measure(command, args.runs, env)
            print(f"{label:<52s} {wall:6.2f}s {cpu:6.2f}s {goal:5.1f}s")
        runs = [floor(env) for _ in range(args.runs)]
        print(f"\nfloor: CPU of the imports under every small command (median of {args.runs} fresh processes)")
        for index, (label, _) in enumerate(FLOOR):
            print(f"{label:<52s} {statistics.median(run[index][1] for run in runs):6.2f}s")
        total = sum(statistics.median(run[i][1] for run in runs) for i in range(len(FLOOR)))
        print(f"{'total':<52s} {total:6.2f}s")


if __name__ == "__main__":
    main()
