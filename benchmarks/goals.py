"""Benchmark: every speed goal of issues #24 and #26 in one table (prints figures; not a test).

Runs the goal benchmarks one after another, each in a fresh process, reads the figures they print and prints the
goal table of ``docs/performance.md``: each workload beside its R peer, its floor and its goal. With ``--write``
the table in ``docs/performance.md`` (between its ``goals`` markers) is replaced by the one just measured, so
the document always holds figures this script printed. Run it on an otherwise idle machine (it takes about three
minutes on 2 idle cores, plus about a minute to generate the 20 M report rows the first time):

    .venv/bin/python benchmarks/goals.py [--data-dir /tmp/er20m] [--write]

The R peers cannot run here (CRAN is not reachable from the project machines): their figures are those of
issue #24's side-by-side runs on a 2-core machine, kept as constants below.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCUMENT = HERE.parent / "docs" / "performance.md"
BEGIN, END = "<!-- goals:begin (benchmarks/goals.py --write) -->", "<!-- goals:end -->"

#: R's figures from issue #24's side-by-side runs (medians of 3 on a 2-core machine): not rerunnable here.
R_PEERS = {
    "closed": "Rcapture 0.64 s CPU (t = 10)",
    "mse": "MultipleSystemsEstimation 0.25 s CPU",
    "open": "Rcapture 1.07 s CPU",
    "bootstrap": "SparseMSE 122 s",
    "nsum_bayes": "R NSUM: hours",
}


def run(script: str, *arguments: str) -> str:
    """The standard output of one benchmark script run in a fresh process (its progress goes to our stderr)."""
    print(f"running {script} {' '.join(arguments)}", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, str(HERE / script), *arguments], stdout=subprocess.PIPE, text=True,
                          check=True)
    return done.stdout


def find(pattern: str, text: str, script: str) -> re.Match:
    """The first match of ``pattern`` in a script's output; a clear error if the script's wording changed."""
    match = re.search(pattern, text, flags=re.MULTILINE)
    if match is None:
        raise SystemExit(f"benchmarks/goals.py: {script} printed no line matching {pattern!r}; update the pattern")
    return match


def number(text: str) -> float:
    return float(text.replace(",", ""))


def status(met: bool) -> str:
    return "met" if met else "not met"


def measure(data_dir: str, cache_dir: str) -> list[tuple[str, str, str, str, str, str]]:
    """Run every goal benchmark; rows of (workload, R peer, floor, hiddenpop wall (CPU), goal, status)."""
    rows = []
    startup = run("startup.py", "--runs", "5")
    imports = number(find(r"^total\s+([\d.]+)s", startup, "startup.py").group(1))
    commands = [("hiddenpop --help", "`hiddenpop --help`", None, 0.3),
                (r"capture closed \(hare\)", "`capture closed` (hare)", "closed", 0.6),
                (r"capture mse --select aic \(UK five lists\)", "`capture mse --select aic` (UK five lists)", "mse", 0.6),
                (r"capture open \(duck\)", "`capture open` (duck)", "open", 0.6),
                (r"nsum estimate --bootstrap 1000 \(3,600 respondents\)", "`nsum estimate --bootstrap 1000` (3,600 "
                 "respondents)", None, 0.6)]
    for pattern, label, peer, goal in commands:
        match = find(rf"^{pattern}\s+([\d.]+)s\s+([\d.]+)s", startup, "startup.py")
        wall, cpu = number(match.group(1)), number(match.group(2))
        floor = "–" if label.startswith("`hiddenpop --help") else f"imports {imports:.2f} s CPU"
        rows.append((label, R_PEERS.get(peer, "–"), floor, f"{wall:.2f} s ({cpu:.2f} s)", f"< {goal} s",
                     status(wall < goal)))

    bootstrap = run("capture_mse.py", "--runs", "3", "--only-bootstrap")
    one = find(r"after, 1 worker\s+([\d.]+) s wall\s+([\d.]+) s CPU", bootstrap, "capture_mse.py")
    every = find(r"after, all available cores\s+([\d.]+) s wall\s+([\d.]+) s CPU", bootstrap, "capture_mse.py")
    rows.append(("MSE stepwise, 1,000 bootstrap replicates (UK five lists)", R_PEERS["bootstrap"], "–",
                 f"{number(every.group(1)):.2f} s ({number(every.group(2)):.2f} s) on every core; "
                 f"{number(one.group(1)):.2f} s with one", "< 2.5 s", status(number(every.group(1)) < 2.5)))

    events = run("events_rolling.py", "--data-dir", data_dir)
    floor = find(r"^DuckDB alone[^:]*:\s+([\d.]+) s.*?process CPU ([\d.]+) s", events, "events_rolling.py")
    pipeline = find(r"^pipeline end to end[^:]*:\s+([\d.]+) s\s+peak RSS [\d,]+ MB, with workers ([\d,]+) MB"
                    r".*?process CPU ([\d.]+) s",
                    events, "events_rolling.py")
    stages = find(r"ingest \+ pseudonymise \+ clean ([\d.]+) s.*?history counts per window ([\d.]+) s.*?estimation "
                  r"([\d.]+) s", events, "events_rolling.py")
    wall, floor_wall = number(pipeline.group(1)), number(floor.group(1))
    ratio = wall / floor_wall
    rows.append(("report log, 20 M rows to the rolling Mth series", "–",
                 f"DuckDB scan + group by {floor_wall:.1f} s ({number(floor.group(2)):.1f} s)",
                 f"{wall:.1f} s ({number(pipeline.group(3)):.1f} s): ingest {stages.group(1)} s, history counts "
                 f"{stages.group(2)} s, estimation {stages.group(3)} s; peak {number(pipeline.group(2)) / 1000:.2f} GB",
                 "< 17 s; within 2x the floor; < 2 GB",
                 f"< 17 s {status(wall < 17)}; {ratio:.1f}x the floor: {status(ratio <= 2)}; "
                 f"memory {status(number(pipeline.group(2)) < 2000)}"))

    open_fit = run("capture_open_fit.py")
    fit = find(r"after\s+([\d.]+) ms wall\s+([\d.]+) ms CPU", open_fit, "capture_open_fit.py")
    per_fit = number(fit.group(1))
    rows.append(("open model, one fit (duck)", "–", "the model alone about 2.3 ms (issue #24)",
                 f"{per_fit:.2f} ms ({number(fit.group(2)):.2f} ms)", "thread limits once, analytic Jacobian",
                 f"done; {13.7 / per_fit:.1f}x faster than issue #24's 13.7 ms"))

    fits = []
    for _ in range(3):  # one compile cache: the first run compiles, the next two reuse it (as the command line)
        text = run("nsum_bayes.py", "--fit-only", "--compilation-cache", cache_dir)
        fits.append({
            "wall": number(find(r"wall time \(incl\. compile and summaries\): ([\d.]+) s", text, "nsum_bayes.py")[1]),
            "cpu": number(find(r"CPU time of the fit[^:]*: ([\d.]+) s", text, "nsum_bayes.py")[1]),
            "ess_cpu": number(find(r"min bulk ESS per CPU-second ([\d.]+)", text, "nsum_bayes.py")[1]),
            "bulk": number(find(r"min bulk ESS (\d+)", text, "nsum_bayes.py")[1]),
            "tail": number(find(r"min tail ESS (\d+)", text, "nsum_bayes.py")[1]),
            "rhat": number(find(r"max R-hat ([\d.]+)", text, "nsum_bayes.py")[1]),
            "passed": find(r"gates passed: (\w+)", text, "nsum_bayes.py")[1] == "True",
        })
    wall, efficiency = statistics.median(f["wall"] for f in fits), statistics.median(f["ess_cpu"] for f in fits)
    gates = all(f["passed"] and f["rhat"] <= 1.01 and min(f["bulk"], f["tail"]) >= 400 for f in fits)
    runs = "; ".join(f"{f['wall']:.1f} s ({f['cpu']:.1f} s), {f['ess_cpu']:.0f}" for f in fits)
    rows.append(("Bayesian NSUM combined, 3,600 x 19, 4 x 1,000 draws (Gibbs, 200 burn-in)", R_PEERS["nsum_bayes"],
                 "–", f"median {wall:.1f} s, {efficiency:.0f} min-bulk-ESS per CPU-s (runs: {runs}; the first "
                 f"compiles); max R-hat {max(f['rhat'] for f in fits):.4f}, min bulk / tail ESS "
                 f"{min(f['bulk'] for f in fits):,.0f} / {min(f['tail'] for f in fits):,.0f}",
                 ">= 100 per CPU-s, < 12 s, R-hat <= 1.01, ESS >= 400",
                 status(efficiency >= 100 and wall < 12 and gates)))

    compare = run("capture_mse_compare.py", "--runs", "3", "--cold")
    cold = find(r"median of 3 cold-cache runs ([\d.]+) s wall, ([\d.]+) s CPU", compare, "capture_mse_compare.py")
    rows.append(("`capture mse --compare` (UK five lists), first runs", "–", "–",
                 f"median {number(cold.group(1)):.1f} s ({number(cold.group(2)):.1f} s)", "< 20 s",
                 status(number(cold.group(1)) < 20)))
    return rows


def table(rows: list[tuple[str, ...]], load_before: float, load_after: float) -> str:
    lines = [f"Measured by `benchmarks/goals.py` (load average {load_before:.2f} before, {load_after:.2f} after; "
             f"{os.cpu_count()} cores). Wall time, CPU seconds in brackets.", "",
             "| workload | R peer | floor | hiddenpop: wall (CPU) | goal | status |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="the 20 M report rows (generated there if missing; "
                        "default: a temporary folder, generated each run)")
    parser.add_argument("--write", action="store_true", help=f"replace the goal table in {DOCUMENT.name}")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        rows = measure(args.data_dir or str(Path(scratch) / "events"), str(Path(scratch) / "jax-cache"))
    text = table(rows, load_before, os.getloadavg()[0])
    print(text)
    if args.write:
        document = DOCUMENT.read_text()
        if document.count(BEGIN) != 1 or document.count(END) != 1:
            raise SystemExit(f"benchmarks/goals.py: {DOCUMENT} needs one {BEGIN!r} and one {END!r} line")
        head, rest = document.split(BEGIN)
        _, tail = rest.split(END)
        DOCUMENT.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
        print(f"wrote the table into {DOCUMENT}", file=sys.stderr)


if __name__ == "__main__":
    main()
