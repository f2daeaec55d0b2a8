"""The stepwise bootstrap's fast paths give what the plain computation gives.

The plain computation is written out here: one ``scipy.stats.poisson`` call per candidate and an existence
check of every candidate, as the procedure is published (Chan, Silverman & Vincent 2021). The library's
vectorised p-values, its early stop of the existence checks and its worker processes must reproduce it
exactly, and the replicates must not depend on the number of workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hiddenpop.capture.core.terms import term_indicator
from hiddenpop.capture.lists.bootstrap import jackknife_acceleration, selection_estimates
from hiddenpop.capture.lists.data import list_data
from hiddenpop.capture.lists.existence import EXISTS, check_extended_mle
from hiddenpop.capture.lists.fitting import fit_model
from hiddenpop.capture.lists.models import mse
from hiddenpop.capture.lists.selection import _overlap_pvalues, select_model
from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.parallel import can_fork_workers, map_processes
from refdata import CAPTURE_DATA

THRESHOLD = 0.02  # the stepwise default
DATASETS = ["mse_UKdat_5.csv", "mse_NewOrl_5.csv", "mse_Kosovo.csv", "mse_Ned_5.csv"]


def _reference_pvalue(observed: float, expected: float) -> float:
    return float(min(stats.poisson.cdf(observed, expected), stats.poisson.sf(observed - 1, expected)))


def _reference_stepwise(data, counts: np.ndarray, threshold: float = THRESHOLD):
    """Stepwise selection with scalar p-values and every candidate checked; returns (fit, path p-values)."""
    current = fit_model(data, (), counts=counts, check=False)
    if not current.ok:
        raise ModelError("main effects cannot be fitted")
    chosen: list[tuple[int, ...]] = []
    remaining = [(i, j) for i in range(data.lists) for j in range(i + 1, data.lists)]
    path = []
    while remaining:
        p_values = []
        for pair in remaining:
            indicator = term_indicator(data.patterns, pair)
            p_value = _reference_pvalue(counts @ indicator, current.fitted @ indicator)
            if check_extended_mle(data, [*chosen, pair], counts) != EXISTS:
                p_value = 1.0
            p_values.append(p_value)
        best_index = int(np.argmin(p_values))
        path.append(p_values[best_index])
        if p_values[best_index] >= threshold:
            break
        chosen.append(remaining.pop(best_index))
        current = fit_model(data, chosen, counts=counts, check=False)
        if not current.ok:
            raise ModelError("no convergence")
    return current, path


def _reference_abundance(data, counts: np.ndarray) -> float:
    try:
        return _reference_stepwise(data, counts)[0].abundance
    except ModelError:
        return float("nan")


def _draws(data, bootstrap: int, seed: int) -> np.ndarray:
    """The multinomial resamples of :func:`mse` (drawn in the calling process, before any selection)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(int(data.observed), data.counts / data.observed, size=bootstrap).astype(float)


def test_vectorised_pvalues_equal_scalar_scipy():
    observed = np.array([0, 1, 2, 3, 5, 8, 13, 40, 41, 200, 1000], dtype=float)
    expected = np.array([0.0, 1e-12, 1e-3, 0.4, 1.0, 2.5, 7.9, 13.0, 40.5, 180.0, 950.0, 5000.0])
    grid_o, grid_e = np.meshgrid(observed, expected, indexing="ij")
    vectorised = _overlap_pvalues(grid_o.ravel(), grid_e.ravel())
    scalar = [_reference_pvalue(o, e) for o, e in zip(grid_o.ravel(), grid_e.ravel(), strict=True)]
    assert np.array_equal(vectorised, np.array(scalar), equal_nan=True)
    assert np.all((vectorised >= 0) & (vectorised <= 1))
    assert (vectorised < 1e-6).any() and ((vectorised > 0.05) & (vectorised < 1)).any()  # both tails reached


def test_vectorised_pvalues_keep_scipys_edge_values():
    observed = [3.0, np.nan, 2.0, 0.0, -1.0, 0.0, 2.5]
    expected = [-1.0, 2.0, np.nan, -1.0, 2.0, 0.0, 1.5]
    vectorised = _overlap_pvalues(observed, expected)
    scalar = [_reference_pvalue(o, e) for o, e in zip(observed, expected, strict=True)]
    assert np.array_equal(vectorised, np.array(scalar), equal_nan=True)
    assert np.isnan(vectorised[:4]).all() and np.isfinite(vectorised[4:]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_pvalues_equal_scalar_scipy_on_random_inputs(seed):
    # counts spread over magnitudes from 0 to 1e12, expectations near them (the usual case: both tails
    # moderate) and far from them (p-values that underflow towards 0), with exact zeros in both arrays
    rng = np.random.default_rng(seed)
    size = 600
    observed = np.floor(10.0 ** rng.uniform(0, 12, size) * rng.uniform(size=size))
    observed[rng.uniform(size=size) < 0.15] = 0.0
    near = observed * rng.uniform(0.5, 1.5, size) + rng.uniform(0, 3, size)
    far = 10.0 ** rng.uniform(-6, 12, size)
    expected = np.where(rng.uniform(size=size) < 0.5, near, far)
    expected[rng.uniform(size=size) < 0.05] = 0.0
    vectorised = _overlap_pvalues(observed, expected)
    scalar = np.array([_reference_pvalue(o, e) for o, e in zip(observed, expected, strict=True)])
    assert np.array_equal(vectorised, scalar)
    assert (observed == 0).any() and (expected == 0).any() and (observed > 1e9).any()
    assert (vectorised == 0).any() and (vectorised == 1).any() and ((vectorised > 1e-3) & (vectorised < 0.5)).any()


@pytest.mark.parametrize("name", DATASETS)
def test_selection_path_equals_scalar_reference(name):
    data = list_data(CAPTURE_DATA / name)
    selection = select_model(data, "stepwise")
    fit, p_path = _reference_stepwise(data, data.counts)
    assert selection.fit.terms == fit.terms
    assert selection.fit.abundance == fit.abundance
    assert [step["p_value"] for step in selection.path[1:]] == p_path


@pytest.mark.parametrize(("name", "seed"), [("mse_UKdat_5.csv", 1), ("mse_NewOrl_5.csv", 5), ("mse_Kosovo.csv", 3)])
def test_bootstrap_replicates_equal_scalar_reference(name, seed):
    bootstrap = 40
    data = list_data(CAPTURE_DATA / name)
    result = mse(data, "stepwise", bootstrap=bootstrap, seed=seed, profile=False, workers=1)
    replicates = result.tables["bootstrap"]["abundance"].to_numpy()
    reference = np.array([_reference_abundance(data, counts) for counts in _draws(data, bootstrap, seed)])
    assert np.isfinite(reference).sum() >= bootstrap - 2
    assert np.array_equal(replicates, reference, equal_nan=True)
    # the jackknife behind the BCa acceleration as well
    jackknife = np.zeros(len(data.counts))
    for k in np.flatnonzero(data.counts > 0):
        counts = data.counts.copy()
        counts[k] -= 1
        jackknife[k] = _reference_abundance(data, counts)
    assert result.diagnostics["bca_acceleration"] == jackknife_acceleration(jackknife, data.counts)


def _pid(_task: int) -> int:
    return os.getpid()


def _isolated(check: str) -> None:
    """Run ``check`` of this module in a fresh interpreter. Forked workers are used only while JAX is not loaded,
    and earlier tests of the session (the latent-class model) load it; a fresh process tests the workers for
    real instead of their in-process fallback."""
    here = Path(__file__).resolve()
    code = (f"import sys; sys.path[:0] = [{str(here.parent)!r}, {str(here.parents[2])!r}]; "
            f"import {here.stem} as module; module.{check}()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_map_processes_runs_in_workers_and_keeps_task_order():
    _isolated("check_map_processes")


def check_map_processes():
    assert can_fork_workers()
    assert map_processes(abs, [-3, 2, -1, 0, 5], workers=2) == [3, 2, 1, 0, 5]
    pids = map_processes(_pid, range(8), workers=2)
    assert os.getpid() not in pids
    assert map_processes(_pid, range(3), workers=1) == [os.getpid()] * 3


def test_one_and_several_workers_give_identical_replicates():
    _isolated("check_identical_replicates")


def check_identical_replicates():
    assert can_fork_workers()
    data = list_data(CAPTURE_DATA / "mse_UKdat_5.csv")
    samples = _draws(data, 70, seed=9)
    serial = selection_estimates(data, samples, "stepwise", THRESHOLD, None, None, workers=1)
    assert np.isfinite(serial).all()
    for workers in (2, 3):
        parallel = selection_estimates(data, samples, "stepwise", THRESHOLD, None, None, workers=workers)
        assert np.array_equal(serial, parallel, equal_nan=True)


def test_mse_result_does_not_depend_on_workers():
    _isolated("check_mse_workers")


def check_mse_workers():
    assert can_fork_workers()
    path = CAPTURE_DATA / "mse_UKdat_5.csv"
    one = mse(path, "stepwise", bootstrap=60, seed=4, profile=False, workers=1)
    two = mse(path, "stepwise", bootstrap=60, seed=4, profile=False, workers=2)
    assert one.to_json() == two.to_json()
    assert np.isfinite(one.tables["bootstrap"]["abundance"]).all()


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_positive_whole_number(workers):
    with pytest.raises(ConfigError, match="workers"):
        mse(CAPTURE_DATA / "mse_UKdat_5.csv", "stepwise", bootstrap=10, workers=workers)


def test_workers_beside_a_running_thread(monkeypatch):
    # the command line shows a spinner thread while the bootstrap runs
    _isolated("check_workers_beside_a_thread")
    monkeypatch.setitem(sys.modules, "jax", object())
    assert not can_fork_workers()
    assert map_processes(_pid, range(4), workers=2) == [os.getpid()] * 4  # in this process instead


def check_workers_beside_a_thread():
    release = threading.Event()
    spinner = threading.Thread(target=release.wait, daemon=True)
    spinner.start()
    try:
        assert can_fork_workers()
        pids = map_processes(_pid, range(6), workers=2)
        assert os.getpid() not in pids
        assert map_processes(abs, [-4, 3, -2], workers=2) == [4, 3, 2]
    finally:
        release.set()
        spinner.join()


def test_map_processes_runs_here_when_no_process_can_start(monkeypatch):
    import multiprocessing

    class NoProcesses:
        def Pool(self, processes):  # the name multiprocessing contexts use
            raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing, "get_context", lambda method: NoProcesses())
    assert map_processes(_pid, range(4), workers=2) == [os.getpid()] * 4


def test_remembered_designs_equal_built_ones():
    from hiddenpop.capture.core.terms import canonical_patterns
    from hiddenpop.capture.lists.space import design_matrix

    terms = ((0, 1), (2, 4), (0, 1, 2))
    canonical = canonical_patterns(5)
    built = np.column_stack([np.ones(len(canonical)), canonical, *[canonical[:, list(t)].prod(axis=1) for t in terms]])
    first = design_matrix(canonical, terms)
    assert np.array_equal(first, built)
    first[:] = -1.0  # a caller changing its copy
    assert np.array_equal(design_matrix(canonical, terms), built)
    subset = canonical[::2].copy()  # any other table is built, not looked up
    assert np.array_equal(design_matrix(subset, terms), built[::2])
