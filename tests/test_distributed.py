"""A real Dask cluster on loopback: ``dask scheduler`` + two ``dask worker`` processes, grid results = serial.

Everything binds to 127.0.0.1 on free ports with dashboards off; every wait is bounded and the processes are
terminated (then killed) in a ``finally`` block, so a failure never leaves a cluster running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from hiddenpop.parallel import map_replicates
from hiddenpop.simulate.grid import parse_grid, run_grid

DASK = Path(sys.executable).with_name("dask")
TINY_GRID = """
[grid]
seed = 11
replicates = 3

[nsum]
bootstrap = 100
[nsum.baseline]
n_respondents = 200
[nsum.vary]
barrier_rho = [0.05]

[capture]
estimators = ["M0", "Mth Chao (LB)"]
[capture.vary]
heterogeneity = [0.8]
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _draw(task: int, seed: int) -> float:
    import numpy as np

    return float(np.random.default_rng(seed).normal() + task)


def _wait_for_workers(address: str, n: int, deadline: float) -> None:
    from distributed import Client

    while time.monotonic() < deadline:
        try:
            with Client(address, timeout=5) as client:
                if len(client.scheduler_info()["workers"]) >= n:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{n} workers did not register at {address} in time")


@pytest.fixture(scope="module")
def loopback_cluster(tmp_path_factory):
    if not DASK.exists():
        pytest.fail(f"dask CLI not found at {DASK}; install the [dask] extra")
    workdir = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    # workers import this test module by name to unpickle ``_draw``
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    log = open(workdir / "cluster.log", "w")
    common = {"stdout": log, "stderr": subprocess.STDOUT, "env": env, "cwd": workdir, "start_new_session": True}
    processes = [
        subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                         **common)
    ]
    try:
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                     "--host", "127.0.0.1", "--local-directory", str(workdir), "--death-timeout", "60"],
                    **common,
                )
            )
        _wait_for_workers(address, 2, time.monotonic() + 120)
        yield address
    finally:
        for proc in reversed(processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def test_map_replicates_on_cluster_equals_serial(loopback_cluster):
    serial = map_replicates(_draw, 40, seed=5, scheduler="serial")
    remote = map_replicates(_draw, 40, seed=5, scheduler=loopback_cluster, chunk_size=3)
    assert remote == serial  # exact equality: same seeds, same order


def test_grid_through_scheduler_option_equals_serial(loopback_cluster, run_cli, tmp_path):
    import tomllib

    grid = tmp_path / "tiny.toml"
    grid.write_text(TINY_GRID)
    serial = run_grid(parse_grid(tomllib.loads(TINY_GRID), source="tiny.toml"), scheduler="serial")
    done = run_cli("simulate", "grid", grid, "--scheduler", loopback_cluster, "--out-dir", tmp_path / "remote", "--quiet",
                   "--format", "csv")
    assert done.returncode == 0, done.stderr
    remote = pd.read_csv(tmp_path / "remote" / "summary.csv")
    expected = pd.read_csv(pd.io.common.StringIO(serial.summary.to_csv(index=False, lineterminator="\n")))
    pd.testing.assert_frame_equal(remote, expected, check_exact=True)
    assert (tmp_path / "remote" / "summary.csv").read_text() == serial.summary.to_csv(index=False, lineterminator="\n")
    replicates = (tmp_path / "remote" / "replicates.csv").read_text()
    assert replicates == serial.replicates.to_csv(index=False, lineterminator="\n")
