"""Report-log work spread over forked processes gives the serial results exactly.

* keyed hashes of the distinct identifiers (ranges hashed by workers, concatenated in order), and their codes
  (ordered by the first digest word, the second consulted only where the first ties);
* window counts from in-memory pairs (one range of identifiers per worker, integer counts added up);
* the ranges and batches the work is cut into never split an identifier;
* a run killed (SIGKILL) while workers count leaves no worker behind and no output.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiddenpop import parallel
from hiddenpop.capture.events import reader, rolling
from hiddenpop.capture.events.cleaning import CleaningRules
from hiddenpop.capture.events.occasions import pattern_counts_naive, plan_windows
from hiddenpop.capture.events.reader import array_batches, identifier_ranges, read_events
from hiddenpop.privacy import Pseudonymiser
from hiddenpop.simulate.reports import simulate_reports

SRC = str(Path(__file__).resolve().parents[3] / "src")
KEY_BYTES = b"parallel-equivalence-key-0000001"
KEY = Pseudonymiser(KEY_BYTES)
needs_two_workers = pytest.mark.skipif(parallel.available_cores() < 2 or not parallel.can_fork_workers(),
                                       reason="needs two cores and fork")


@pytest.fixture
def worker_counts(monkeypatch):
    """Records how many tasks each ``map_shared`` call was given (the work actually split)."""
    calls: list[int] = []
    original = parallel.map_shared

    def spy(func, shared, tasks, *, workers):
        calls.append(len(tasks))
        return original(func, shared, tasks, workers=workers)

    monkeypatch.setattr(reader, "map_shared", spy)
    monkeypatch.setattr(rolling, "map_shared", spy)
    return calls


@needs_two_workers
def test_hashes_computed_by_workers_equal_the_serial_ones_and_the_standard_library(monkeypatch, worker_counts):
    rng = np.random.default_rng(3)
    texts = sorted({f"10.{a}.{b}.{c}" for a, b, c in rng.integers(0, 256, size=(5000, 3))})
    monkeypatch.setattr(reader, "HASHES_PER_WORKER", 10**9)
    serial = reader._digests(KEY, texts, 16)
    assert worker_counts == [1]
    monkeypatch.setattr(reader, "HASHES_PER_WORKER", 1000)
    forked = reader._digests(KEY, texts, 16)
    assert worker_counts == [1, 2]
    assert forked == serial
    reference = b"".join(hmac.new(KEY_BYTES, t.encode(), hashlib.sha256).digest()[:16] for t in texts)
    assert forked == reference
    codes_serial, _ = reader._pseudonym_codes(KEY, texts, {})
    monkeypatch.setattr(reader, "HASHES_PER_WORKER", 10**9)
    codes_forked, _ = reader._pseudonym_codes(KEY, texts, {})
    np.testing.assert_array_equal(codes_serial, codes_forked)


def test_codes_use_the_second_digest_word_where_the_first_ties(monkeypatch):
    # (high, low) words of six values: ties in the first word with different second words, and one exact repeat
    words = [(5, 9), (5, 2), (1, 7), (5, 2), (0, 0), (1, 3)]
    digests = b"".join(high.to_bytes(8, "big") + low.to_bytes(8, "big") for high, low in words)
    monkeypatch.setattr(reader, "_digests", lambda key, canon, width, workers: digests)
    codes, flags = reader._pseudonym_codes(KEY, ["v"] * len(words), {0: (5).to_bytes(8, "big").hex() + "0" * 14 + "02"})
    ranks = {pair: i for i, pair in enumerate(sorted(set(words)))}
    assert codes.tolist() == [ranks[pair] for pair in words] == [4, 3, 2, 3, 0, 1]
    assert flags[0].tolist() == [False, True, False, True, False, False]


def test_identifier_ranges_cover_the_pairs_and_cut_between_identifiers():
    rng = np.random.default_rng(8)
    codes = np.sort(rng.integers(0, 40, size=1000)).astype(np.int32)
    for parts in (1, 2, 3, 7, 60):
        ranges = identifier_ranges(codes, parts)
        assert ranges[0][0] == 0 and ranges[-1][1] == codes.size
        assert all(stop > start for start, stop in ranges) and len(ranges) <= parts
        for (_, stop), (start, _) in itertools.pairwise(ranges):
            assert stop == start and codes[start - 1] < codes[start]
    # one identifier holding every pair cannot be split
    assert identifier_ranges(np.zeros(50, dtype=np.int32), 4) == [(0, 50)]
    assert identifier_ranges(np.zeros(0, dtype=np.int32), 2) == []


def test_even_ranges_cover_the_tasks_in_order_without_empty_ranges():
    for n, parts in ((0, 2), (1, 4), (10, 3), (1000, 32), (7, 7)):
        ranges = parallel.even_ranges(n, parts)
        assert [i for start, stop in ranges for i in range(start, stop)] == list(range(n))
        assert all(stop > start for start, stop in ranges) and len(ranges) == min(n, parts)
        sizes = [stop - start for start, stop in ranges]
        assert not sizes or max(sizes) - min(sizes) <= 1


def test_array_batches_end_with_identifiers_and_keep_every_pair():
    rng = np.random.default_rng(9)
    codes = np.sort(rng.integers(0, 30, size=900)).astype(np.int32)
    codes[100:400] = codes[100]  # one identifier larger than a batch
    codes = np.sort(codes)
    days = rng.integers(0, 500, size=codes.size).astype(np.int32)
    for batch_rows in (1, 64, 250, 10_000):
        batches = list(array_batches(codes, days, batch_rows))
        np.testing.assert_array_equal(np.concatenate([c for c, _ in batches]), codes)
        np.testing.assert_array_equal(np.concatenate([d for _, d in batches]), days)
        assert all(c.dtype == np.int64 and d.dtype == np.int64 for c, d in batches)
        for (first, _), (second, _) in itertools.pairwise(batches):
            assert first[-1] < second[0]
        # a batch exceeds batch_rows only when it is a single identifier
        assert all(c.size <= batch_rows or np.all(c == c[0]) for c, _ in batches)


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parallel")
    stream = simulate_reports(initial=1200, days=120, rate_median=0.06, rate_sdlog=0.8, seed=21)
    stream.write(folder / "r.parquet")
    events = read_events([folder / "r.parquet"], identifier="ip", time="time", key=KEY,
                         rules=CleaningRules(timezone="Asia/Manila"))
    yield events
    events.close()


@needs_two_workers
@pytest.mark.parametrize("estimator", ["Mth Chao (LB)", "zelterman"])
def test_window_counts_by_workers_equal_serial_counts(log, monkeypatch, worker_counts, estimator):
    assert log.pair_arrays is not None and log.n_pairs > 2_000
    options = dict(occasion="5D", occasions=4, step="1D", estimator=estimator, batch_rows=700)
    monkeypatch.setattr(rolling, "PAIRS_PER_WORKER", 10**9)
    plan, serial = rolling.window_counts(log, **options)
    assert worker_counts == []
    seen: list[int] = []
    monkeypatch.setattr(rolling, "PAIRS_PER_WORKER", 1000)
    plan_forked, forked = rolling.window_counts(log, on_batch=seen.append, **options)
    assert worker_counts == [2]
    assert plan_forked == plan
    np.testing.assert_array_equal(forked, serial)
    assert sum(seen) == log.n_pairs and len(seen) == 2
    if estimator == "Mth Chao (LB)":
        codes, days = log.pair_arrays
        np.testing.assert_array_equal(forked, pattern_counts_naive(codes, days, plan_windows(
            log.first_day, log.last_day, occasion="5D", occasions=4, step="1D")))
    else:
        assert forked[:, 1:].sum() > 0


def test_pairs_read_back_out_of_order_are_refused():
    con = reader.connect(KEY)
    con.execute("CREATE TEMP TABLE staged AS SELECT 1 AS x")
    kept = "SELECT * FROM (VALUES (0, 3), (1, 2), (0, 5)) AS t(code, day)"
    with pytest.raises(RuntimeError, match="out of \\(code, day\\) order"):
        reader._distinct_sorted_pairs(con, kept)
    reader.close_private(con)


@needs_two_workers
@pytest.mark.parametrize("estimator", ["Mth Chao (LB)", "coverage", "ztoipoisson"])
def test_windows_fitted_by_workers_give_the_serial_series(monkeypatch, estimator):
    rng = np.random.default_rng(5)
    plan = plan_windows(0, 120, occasion="7D", occasions=4, step="1D")
    single = estimator == "ztoipoisson"
    counts = rng.poisson(20, size=(plan.n_windows, plan.window_days + 1 if single else 16))
    counts[:, 0] = 0
    counts[7] = 0  # a window with nobody observed: a warning row, not an error
    calls: list[int] = []
    original = rolling.imap_shared

    def spy(func, shared, tasks, *, workers):
        calls.append(workers)
        return original(func, shared, tasks, workers=workers)

    monkeypatch.setattr(rolling, "imap_shared", spy)
    monkeypatch.setattr(rolling, "WINDOWS_PER_WORKER", 10**9)
    serial = rolling.rolling_series(counts, plan, "2020-01-01", estimator=estimator, bootstrap=30, seed=3)
    assert calls == []
    monkeypatch.setattr(rolling, "WINDOWS_PER_WORKER", 20)
    seen: list[int] = []

    def iterate(rows, total):
        for row in rows:
            seen.append(total)
            yield row

    forked = rolling.rolling_series(counts, plan, "2020-01-01", estimator=estimator, bootstrap=30, seed=3,
                                    iterate=iterate)
    assert calls == [2]
    assert len(seen) == plan.n_windows and set(seen) == {plan.n_windows}
    pd.testing.assert_frame_equal(forked.tables["series"], serial.tables["series"])
    assert forked.tables["series"]["warnings"].iloc[7] == "no identifier observed in this window"


@needs_two_workers
def test_threads_cap_the_worker_processes(tmp_path, monkeypatch):
    """``--threads 1`` (the log's DuckDB threads) keeps hashing, counting and fitting in one process."""
    calls: list[tuple[str, int, int]] = []

    def spy(name, original):
        def run(func, shared, tasks, *, workers):
            calls.append((name, len(tasks), workers))
            return original(func, shared, tasks, workers=workers)
        return run

    monkeypatch.setattr(reader, "map_shared", spy("hash", parallel.map_shared))
    monkeypatch.setattr(rolling, "map_shared", spy("count", parallel.map_shared))
    monkeypatch.setattr(rolling, "imap_shared", spy("fit", parallel.imap_shared))
    monkeypatch.setattr(reader, "HASHES_PER_WORKER", 100)
    monkeypatch.setattr(rolling, "PAIRS_PER_WORKER", 100)
    monkeypatch.setattr(rolling, "WINDOWS_PER_WORKER", 10)
    simulate_reports(initial=800, days=90, rate_median=0.08, rate_sdlog=0.6, seed=6).write(tmp_path / "r.parquet")
    series = {}
    for threads in (1, 2):
        calls.clear()
        log = read_events([tmp_path / "r.parquet"], identifier="ip", time="time", key=KEY, threads=threads)
        plan, counts = rolling.window_counts(log, occasion="5D", occasions=4, step="1D")
        series[threads] = rolling.rolling_series(counts, plan, log.origin, workers=log.engine["threads"])
        log.close()
        if threads == 1:  # one hashing range; counting and fitting never reach the process layer
            assert calls == [("hash", 1, 1)]
        else:
            assert [name for name, _, _ in calls] == ["hash", "count", "fit"]
            assert all(workers == 2 for _, _, workers in calls)
    pd.testing.assert_frame_equal(series[1].tables["series"], series[2].tables["series"])
    assert parallel.worker_limit(None) == parallel.available_cores()
    assert parallel.worker_limit(1) == 1 and parallel.worker_limit(0) == 1
    assert parallel.worker_limit(10**6) == parallel.available_cores()


def _slow_square(shared, task):
    time.sleep(shared)
    return task * task, os.getpid()


@needs_two_workers
def test_imap_shared_yields_in_task_order_and_ends_its_workers_when_closed():
    results = parallel.imap_shared(_slow_square, 0.01, list(range(12)), workers=2)
    values = [next(results) for _ in range(3)]
    assert [value for value, _ in values] == [0, 1, 4]
    workers = {pid for _, pid in values} | {pid for _, pid in parallel.map_shared(_slow_square, 0.2, [1, 2],
                                                                                    workers=2)}
    assert os.getpid() not in workers
    results.close()  # stops early: the pool is ended, no worker is left running
    assert parallel._SHARED == {}
    assert not parallel.multiprocessing.active_children()


DRIVER = """
import os, sys, time
from pathlib import Path
from hiddenpop.capture.events import rolling
from hiddenpop.cli import main

rolling.PAIRS_PER_WORKER = 100
counted = rolling._count_range

def slow_count(shared, bounds):
    Path(os.environ["WORKERS_DIR"], str(os.getpid())).touch()
    time.sleep(2)
    return counted(shared, bounds)

slow_count.__module__, slow_count.__qualname__ = rolling.__name__, "_count_range"
rolling._count_range = slow_count
sys.argv = ["hiddenpop", *sys.argv[1:]]
main()
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in state  # a zombie has ended; only its exit status is left


@needs_two_workers
def test_workers_end_and_write_nothing_when_the_run_is_killed(tmp_path):
    """SIGKILL while forked workers count: they finish their range and exit, and the run leaves no output."""
    stream = simulate_reports(initial=600, days=60, rate_median=0.1, rate_sdlog=0.5, seed=4)
    stream.write(tmp_path / "r.parquet")
    (tmp_path / "key.txt").write_text("0123456789abcdef0123456789abcdef\n")
    (tmp_path / "key.txt").chmod(0o600)
    workers_dir = tmp_path / "workers"
    workers_dir.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "WORKERS_DIR": str(workers_dir), "PYTHONPATH": SRC}
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, "capture", "events", str(tmp_path / "r.parquet"), "--id", "ip",
         "--time", "time", "--key-file", str(tmp_path / "key.txt"), "--quiet", "--out-dir", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while len(list(workers_dir.iterdir())) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = [int(p.name) for p in workers_dir.iterdir()]
    assert len(workers) == 2, process.stderr.read().decode()[-2000:] if process.poll() is not None else "timeout"
    process.kill()
    process.wait()
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(pid) for pid in workers)
    assert not out.exists() or not any(out.iterdir())
