"""Benchmark: report logs -> rolling M_th Chao series at tipline scale.

Default: 20 million report rows, 2 million identifiers, four years, daily-step windows of four 1-week occasions
(about 1,430 windows), estimator Mth Chao (LB) (``--estimator`` any other, e.g. a single-source one on the days
seen per window). Prints, for the whole pipeline (read + pseudonymise + clean + history counts per window + one
model fit per window) wall time, peak RSS and rows/s, next to the time DuckDB alone needs to scan the same Parquet
file and group it by (identifier, day) (the floor); medians of ``--runs`` alternating runs of each (default 3).

Each stage runs in its own subprocess so peak RSS is that stage's own; the pipeline's memory is also given with its
forked workers (proportional set size of the process tree, sampled every 0.1 s), and CPU seconds include the
workers'. Both stages use the same explicit DuckDB settings (``--threads``, default one per core;
``--memory-limit``, default 3GB, beyond which DuckDB spills to ``--temp-dir``). The machine's load average before
and after each stage is printed: on a shared machine the wall times are pessimistic. Data are generated chunk-wise
(25 million rows at a time) into a temporary folder (or ``--data-dir``, kept and reused) by
:func:`hiddenpop.simulate.reports.simulate_reports`.

    .venv/bin/python benchmarks/events_rolling.py --data-dir /tmp/er20m          # 20M rows
    .venv/bin/python benchmarks/events_rolling.py --rows 200000000 --files 40 --data-dir /tmp/er200m \
        --temp-dir /tmp/er200m-spill --runs 1                                      # streaming, bounded memory
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DAYS = 1461


def generate(workdir: Path, rows: int, identifiers: int, files: int, seed: int) -> list[str]:
    import numpy as np

    from hiddenpop.simulate.reports import simulate_reports

    # closed population of `identifiers`, log-normal report rates (sdlog 1) tuned to give about `rows` rows
    median = rows / (identifiers * DAYS * math.exp(0.5))
    paths: list[str] = []
    per_chunk = max(1, math.ceil(rows / 25_000_000))
    for chunk in range(per_chunk):
        stream = simulate_reports(
            initial=identifiers // per_chunk, days=DAYS, rate_median=median, rate_sdlog=1.0,
            missing_identifier=1000, foreign=1000, flagged=1000, seed=seed + chunk,
        )
        if per_chunk > 1:  # distinct identifiers per chunk
            stream.identifier_index = np.where(stream.identifier_index >= 0,
                                               stream.identifier_index + chunk * 50_000_000, -1)
        k = max(1, files // per_chunk)
        written = stream.write(workdir / f"reports_{chunk:03d}.parquet", files=k)
        paths.extend(str(p) for p in written)
        del stream
    return paths


def _config(threads: int | None, memory_limit: str | None, temp_dir: str | None) -> dict:
    from hiddenpop.capture.events.reader import engine_config

    return engine_config(threads, memory_limit, temp_dir)


def stage_floor(paths: list[str], threads: int | None, memory_limit: str | None, temp_dir: str | None) -> dict:
    import duckdb

    con = duckdb.connect(config=_config(threads, memory_limit, temp_dir))
    listing = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    t0 = time.perf_counter()
    groups = con.execute(
        f"SELECT count(*) FROM (SELECT ip, CAST(TRY_CAST(time AS TIMESTAMPTZ) AS DATE) AS day "
        f"FROM read_parquet({listing}) GROUP BY ALL)"
    ).fetchone()[0]
    return {"seconds": time.perf_counter() - t0, "groups": int(groups)}


def stage_pipeline(paths: list[str], threads: int | None, memory_limit: str | None, temp_dir: str | None,
                   estimator: str) -> dict:
    from hiddenpop.capture.events.cleaning import CleaningRules
    from hiddenpop.capture.events.reader import read_events
    from hiddenpop.capture.events.rolling import rolling_series, window_counts
    from hiddenpop.privacy import Pseudonymiser

    key = Pseudonymiser(os.urandom(32))
    rules = CleaningRules(country_column="country", country="PH", exclude=[("category", "viral")],
                          timezone="Asia/Manila")
    timings = {}
    t0, c0 = time.perf_counter(), _cpu_s()
    log = read_events(paths, identifier="ip", time="time", key=key, rules=rules, threads=threads,
                      memory_limit=memory_limit, temp_directory=temp_dir)
    timings["ingest_clean_s"] = time.perf_counter() - t0
    timings["ingest_clean_cpu_s"] = _cpu_s() - c0
    t1, c1 = time.perf_counter(), _cpu_s()
    plan, counts = window_counts(log, occasion="7D", occasions=4, step="1D", estimator=estimator)
    timings["history_counts_s"] = time.perf_counter() - t1
    timings["history_counts_cpu_s"] = _cpu_s() - c1
    t2 = time.perf_counter()
    result = rolling_series(counts, plan, log.origin, estimator=estimator, base=5_485_000, audit=log.audit)
    timings["estimation_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    series = result.tables["series"]
    return {
        **timings, "rows": int(log.audit["rows_in"].iloc[0]), "pairs": log.n_pairs,
        "identifiers": log.n_identifiers, "windows": plan.n_windows,
        "not_estimable": int(series["estimate"].isna().sum()),
        "median_estimate": float(series["estimate"].median()), "engine": _engine(log),
        "ingest": getattr(log, "ingest", "per-batch"),
    }


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far, all threads (DuckDB's included), plus those of its
    finished worker processes (forked hashing and window counting)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _tree_pss_mb(pid: int) -> float:
    """Proportional set size of process ``pid`` and all its descendants (pages shared by a fork counted once)."""
    total_kb, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # the process ended between two reads
    return total_kb / 1024


class _MemorySampler(threading.Thread):
    """Peak of :func:`_tree_pss_mb` of a running process, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_mb = pid, interval, 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.peak_mb = max(self.peak_mb, _tree_pss_mb(self.pid))


def _engine(log) -> dict:
    """DuckDB settings in effect (``EventLog.engine``; queried directly for older versions being compared)."""
    if getattr(log, "engine", None):
        return log.engine
    import duckdb

    threads, memory = log.connection.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')").fetchall()[0]
    return {"duckdb": duckdb.__version__, "threads": int(threads), "memory_limit": str(memory)}


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it is not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stage(name: str, args: argparse.Namespace, paths: list[str]) -> dict:
    """Run a stage in a subprocess; returns its JSON result plus the peak memory of it and its workers."""
    cmd = [sys.executable, __file__, "--stage", name, "--paths-json", json.dumps(paths),
           "--estimator", args.estimator, "--threads", str(args.threads)]
    if args.memory_limit:
        cmd += ["--memory-limit", args.memory_limit]
    if args.temp_dir:
        cmd += ["--temp-dir", args.temp_dir]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        sampler = _MemorySampler(process.pid)
        sampler.start()
        stdout, stderr = process.communicate()
        sampler.done.set()
        sampler.join()
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    if process.returncode != 0:
        raise SystemExit(f"stage {name} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    result["peak_tree_mb"] = sampler.peak_mb
    result["load"] = (load_before, load_after)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--identifiers", type=int, default=None, help="default rows / 10")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the generated Parquet files here and reuse them on the next run")
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory limit (spills beyond); default 3GB")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="DuckDB threads; default one per core")
    parser.add_argument("--generate-only", action="store_true", help="write the data into --data-dir and stop")
    parser.add_argument("--runs", type=int, default=3,
                        help="alternating runs of the floor and the pipeline; the medians are reported (default 3)")
    parser.add_argument("--temp-dir", default=None)
    parser.add_argument("--estimator", default="Mth Chao (LB)",
                        help="any estimator of `capture events`, e.g. zelterman or ztoipoisson (days-seen counts)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--paths-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage:
        paths = json.loads(args.paths_json)
        if args.stage == "floor":
            out = stage_floor(paths, args.threads, args.memory_limit, args.temp_dir)
        else:
            out = stage_pipeline(paths, args.threads, args.memory_limit, args.temp_dir, args.estimator)
        out["peak_rss_mb"] = _peak_rss_mb()
        out["cpu_s"] = _cpu_s()
        text = json.dumps(out)
        Path(tempfile.gettempdir(), f"events_rolling_{args.stage}.json").write_text(text)
        print(text)
        return

    identifiers = args.identifiers or args.rows // 10
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = args.data_dir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        paths = sorted(str(p) for p in workdir.glob("reports_*.parquet"))
        if not paths:
            t0 = time.perf_counter()
            paths = generate(workdir, args.rows, identifiers, args.files, args.seed)
            size = sum(Path(p).stat().st_size for p in paths) / 1e6
            print(f"generated {len(paths)} Parquet file(s), {size:,.0f} MB in {time.perf_counter() - t0:,.1f} s")
        else:
            print(f"reusing {len(paths)} Parquet file(s) in {workdir}")
        if args.generate_only:
            return
        floors, pipes = [], []
        for _ in range(args.runs):  # alternating, so a change in the machine's load touches both alike
            floors.append(run_stage("floor", args, paths))
            pipes.append(run_stage("pipeline", args, paths))
    floor = _median_run(floors, "seconds")
    pipe = _median_run(pipes, "total_s")
    rows = pipe["rows"]
    engine = pipe["engine"]
    print(f"DuckDB {engine['duckdb']}: {engine['threads']} threads, memory limit {engine['memory_limit']}; "
          f"{os.cpu_count()} cores")
    print(f"rows {rows:,}  identifiers {pipe['identifiers']:,}  (identifier, day) pairs {pipe['pairs']:,}  "
          f"windows {pipe['windows']:,}  (not estimable {pipe['not_estimable']})")
    print(f"DuckDB alone (scan + group by identifier, day): {floor['seconds']:7.1f} s   "
          f"peak RSS {floor['peak_rss_mb']:,.0f} MB   (process CPU {floor['cpu_s']:.1f} s)   {_load(floor)}")
    print(f"pipeline end to end ({args.estimator}):        {pipe['total_s']:7.1f} s   "
          f"peak RSS {pipe['peak_rss_mb']:,.0f} MB, with workers {pipe['peak_tree_mb']:,.0f} MB   "
          f"{rows / pipe['total_s']:,.0f} rows/s   "
          f"(process CPU {pipe['cpu_s']:.1f} s)   {_load(pipe)}")
    print(f"  ingest + pseudonymise + clean {pipe['ingest_clean_s']:.1f} s (CPU {pipe['ingest_clean_cpu_s']:.1f} s, "
          f"identifiers hashed {pipe['ingest']}) | history counts per window {pipe['history_counts_s']:.1f} s "
          f"(CPU {pipe['history_counts_cpu_s']:.1f} s) | estimation {pipe['estimation_s']:.1f} s | "
          f"ratio to floor {pipe['total_s'] / floor['seconds']:.1f}x")
    print(f"(process wall incl. interpreter start: {pipe['process_wall_s']:.1f} s; timings on a shared machine "
          "are pessimistic)")
    if args.runs > 1:
        floor_runs = ", ".join(f"{run['seconds']:.1f}" for run in floors)
        pipeline_runs = ", ".join(f"{run['total_s']:.1f}" for run in pipes)
        print(f"median of {args.runs} alternating runs; floor {floor_runs} s; pipeline {pipeline_runs} s")


def _median_run(runs: list[dict], key: str) -> dict:
    """The run whose ``key`` is the median (the lower middle one for an even number of runs)."""
    return sorted(runs, key=lambda run: run[key])[(len(runs) - 1) // 2]


def _load(stage: dict) -> str:
    before, after = stage["load"]
    return f"load average (1 min) {before[0]:.1f} before, {after[0]:.1f} after"


if __name__ == "__main__":
    main()
