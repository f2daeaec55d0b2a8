"""Same seed, same bytes: across reruns, across serial and LocalCluster execution, and through the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiddenpop import nsum
from hiddenpop.capture.lists.coverage import sample_coverage
from hiddenpop.errors import ConfigError
from hiddenpop.parallel import map_replicates, resolve_scheduler, spawn_seeds
from hiddenpop.simulate.ard import simulate_ard
from hiddenpop.simulate.grid import _run_task, parse_grid, run_grid
from refdata import CAPTURE_DATA

CAPTURE_GRID = {
    "grid": {"seed": 7, "replicates": 4},
    "capture": {"estimators": ["M0", "Mh Chao (LB)"], "baseline": {"population": 200}, "vary": {"behaviour": [-0.5]}},
}
KNOWN = {"k1": 2e4, "k2": 5e4, "k3": 1e5}
HIDDEN = {"h1": 5e3}


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def test_spawn_seeds_are_stable_and_independent_of_count():
    first = spawn_seeds(123, 5)
    assert first == spawn_seeds(123, 5)
    # spawning more children does not change the earlier ones (SeedSequence children are indexed)
    assert spawn_seeds(123, 8)[:5] == first
    assert len(set(first)) == 5
    assert spawn_seeds(124, 5) != first
    with pytest.raises(ConfigError):
        spawn_seeds(-1, 3)


def test_scheduler_names():
    assert resolve_scheduler("serial") == "serial"
    assert resolve_scheduler("LOCAL") == "local"
    assert resolve_scheduler("127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    assert resolve_scheduler("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    with pytest.raises(ConfigError, match="not understood"):
        resolve_scheduler("my-laptop")


def test_map_replicates_keeps_task_order_and_seeds():
    out = map_replicates(lambda task, seed: (task, seed), ["a", "b", "c"], seed=9, scheduler="serial")
    assert [t for t, _ in out] == ["a", "b", "c"]
    assert [s for _, s in out] == spawn_seeds(9, 3)
    assert map_replicates(len, ["ab", "c"], scheduler="serial") == [2, 1]
    assert map_replicates(len, [], scheduler="serial") == []


def test_grid_rerun_is_byte_identical():
    spec = parse_grid(CAPTURE_GRID)
    first, second = run_grid(spec), run_grid(spec)
    assert _csv(first.summary) == _csv(second.summary)
    assert _csv(first.replicates) == _csv(second.replicates)
    other = run_grid(parse_grid({**CAPTURE_GRID, "grid": {"seed": 8, "replicates": 4}}))
    assert _csv(other.replicates) != _csv(first.replicates)


def test_grid_serial_equals_local_cluster(monkeypatch):
    import hiddenpop.parallel as parallel

    used = []
    real = parallel._run_dask
    monkeypatch.setattr(parallel, "LOCAL_CLUSTER_PAYS_FROM", 0.0)  # a small grid would otherwise stay in-process
    monkeypatch.setattr(parallel, "_run_dask", lambda *a: used.append(len(a[1])) or real(*a))
    spec = parse_grid(CAPTURE_GRID)
    serial = run_grid(spec, scheduler="serial")
    local = run_grid(spec, scheduler="local", n_workers=2)
    assert used and used[0] > 0  # the cluster ran every task but the timed first one
    assert _csv(local.summary) == _csv(serial.summary)
    assert _csv(local.replicates) == _csv(serial.replicates)


def test_small_work_on_the_local_scheduler_stays_in_process(monkeypatch):
    """A LocalCluster costs seconds to start: work estimated below the threshold runs here, same results, and
    progress still counts every task."""
    import hiddenpop.parallel as parallel

    monkeypatch.setattr(parallel, "_run_dask", lambda *a: (_ for _ in ()).throw(AssertionError("cluster started")))
    seen = []
    results = map_replicates(_square_plus_draw, 7, seed=3, scheduler="local", progress=lambda d, t: seen.append((d, t)))
    assert results == map_replicates(_square_plus_draw, 7, seed=3, scheduler="serial")
    assert seen == [(i, 7) for i in range(1, 8)]


def _square_plus_draw(task, seed):
    return task * task + float(np.random.default_rng(seed).random())


def test_chunking_does_not_change_results():
    spec = parse_grid(CAPTURE_GRID)
    fam = spec.families[0]
    tasks = [("capture", "baseline", fam.scenarios[0][1], fam.fixed, 0.95, r, s) for r, s in enumerate(spawn_seeds(1, 5))]
    one = map_replicates(_run_task, tasks, scheduler="serial")
    assert map_replicates(_run_task, tasks[:2], scheduler="serial") == one[:2]


def test_nsum_bootstrap_same_seed_same_table():
    ard = simulate_ard(KNOWN, HIDDEN, 1e6, n_respondents=300, n_strata=3, n_psu=30, seed=4).ard
    first = nsum.estimate(ard, method=["mle", "pimle", "mos"], bootstrap=200, seed=17)
    second = nsum.estimate(ard, method=["mle", "pimle", "mos"], bootstrap=200, seed=17)
    assert _csv(first.table) == _csv(second.table)
    assert first.to_json() == second.to_json()
    third = nsum.estimate(ard, method=["mle", "pimle", "mos"], bootstrap=200, seed=18)
    assert not np.array_equal(third.table["lower"].to_numpy(), first.table["lower"].to_numpy())


def test_capture_bootstrap_same_seed_same_table():
    data = pd.read_csv(CAPTURE_DATA / "care1_HAV.csv")
    first = sample_coverage(data, bootstrap=200, seed=3)
    assert _csv(first.table) == _csv(sample_coverage(data, bootstrap=200, seed=3).table)


def test_cli_grid_outputs_are_byte_identical(run_cli, tmp_path):
    """A console-script run and an in-process run of the same grid write the same bytes (tables, JSON, PNG)."""
    from hiddenpop.simulate.grid import read_grid, write_grid

    grid = tmp_path / "g.toml"
    grid.write_text(
        '[grid]\nseed = 5\nreplicates = 3\n[capture]\nestimators = ["M0", "Mt"]\n[capture.baseline]\npopulation = 150\n'
    )
    done = run_cli("simulate", "grid", grid, "--scheduler", "serial", "--out-dir", tmp_path / "a", "--quiet",
                   "--format", "json")
    assert done.returncode == 0, done.stderr
    write_grid(run_grid(read_grid(grid)), tmp_path / "b")
    for file in ("summary.csv", "summary.md", "replicates.csv", "capture.png"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        map_replicates(abs, [1], scheduler="tcp://127.0.0.1:9", timeout=2)


def test_report_figures_leave_matplotlib_settings_as_they_were(tmp_path):
    """Drawing a run's figures must not change matplotlib's settings for the rest of the process (other
    figures written later in the same process would otherwise differ from a fresh process's)."""
    import matplotlib

    from hiddenpop.study.demo import write_demo_study
    from hiddenpop.study.report.figures import build_figures
    from hiddenpop.study.runner import execute
    from hiddenpop.study.schema import load_study

    before = dict(matplotlib.rcParams)
    context, published, _ = execute(load_study(write_demo_study(tmp_path / "study", seed=3, profile="test")))
    (tmp_path / "figures").mkdir()
    figures = build_figures(context, published, tmp_path / "figures")
    assert "map" in figures and (tmp_path / "figures" / "map.svg").is_file()
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k] and k != "backend"} == set()
