"""One execution layer for many-replicate work (simulation grids, many datasets): serial or Dask.

:func:`map_replicates` applies a function to a list of tasks and returns the results in task order. Where the
work runs is a setting, never a change in the numbers:

* ``scheduler="serial"``: a plain loop in this process (no Dask import).
* ``scheduler=None`` or ``"local"``: a temporary Dask ``LocalCluster`` (worker processes, one thread each) that
  is shut down afterwards, when the work is worth it: the first task runs in this process and, if all tasks at
  that pace would take less than :data:`LOCAL_CLUSTER_PAYS_FROM` seconds, the rest do too (no cluster is
  started). ``None`` first honours the ``HIDDENPOP_SCHEDULER`` environment variable.
* ``scheduler="tcp://HOST:PORT"`` (any Dask address): an existing cluster (``dask scheduler`` + ``dask worker``).

Determinism
    Randomness never depends on which worker runs a task or in which order tasks finish. With ``seed=S`` the
    task ``i`` receives its own integer seed drawn from ``numpy.random.SeedSequence(S).spawn(len(tasks))[i]``
    (independent streams, O'Neill's PCG seeding scheme as used by NumPy), and results are gathered in task order.
    A task function that builds its generator with ``numpy.random.default_rng(seed)`` therefore gives
    byte-identical results serially, on a LocalCluster and on a remote cluster running the same library
    versions.

Small jobs on this machine
    :func:`map_processes` spreads a list of deterministic tasks over forked worker processes of this machine
    (no Dask, start-up in milliseconds), for work such as bootstrap replicates whose draws are made
    beforehand in the calling process: results are in task order and do not depend on the number of workers.
    :func:`map_shared` does the same for tasks that read one large value (arrays, a list of identifiers), which
    the workers inherit with the fork instead of receiving it through a pipe; :func:`imap_processes` and
    :func:`imap_shared` hand out the results one by one, in task order, as they are done (for progress bars).
    :func:`available_cores` is the number of CPUs this process may use.

Thread limits
    :func:`single_thread_blas` limits BLAS to one thread around small dense algebra (many fits of matrices
    with tens of rows, where BLAS threads only add contention). It scans the loaded libraries once per
    process and reuses that, so entering it costs microseconds rather than milliseconds.

When to use it
    Dask pays a fixed cost (starting a cluster: seconds; each task: about a millisecond of scheduling plus
    pickling). Work that is already vectorised in NumPy (the rescaled bootstrap of :mod:`hiddenpop.design`,
    rolling-window counts) is faster in one process; use this layer for coarse tasks such as one simulated
    dataset per task, one grid cell, or one country-year. ``chunk_size`` groups tasks so each Dask task does
    enough work to amortise that cost.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from hiddenpop.errors import ConfigError

SCHEDULER_ENV = "HIDDENPOP_SCHEDULER"
SERIAL = "serial"
LOCAL = "local"
#: Serial seconds of work below which ``scheduler="local"`` keeps the work in this process. Starting a
#: LocalCluster costs about 2 s here and two workers can at best halve the time, so the cluster pays only from
#: about 4 s of work; the first task is timed in-process and the rest estimated from it.
LOCAL_CLUSTER_PAYS_FROM = 5.0


def spawn_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent 64-bit seeds derived from ``seed`` by ``SeedSequence.spawn`` (stable across versions)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError("seed must be a non-negative whole number")
    children = np.random.SeedSequence(int(seed)).spawn(int(n))
    return [int(child.generate_state(1, dtype=np.uint64)[0]) for child in children]


def resolve_scheduler(scheduler: str | None) -> str:
    """Normalise a scheduler setting to ``"serial"``, ``"local"`` or a Dask address (validated for form only)."""
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or LOCAL
    value = str(scheduler).strip()
    lowered = value.lower()
    if lowered in (SERIAL, LOCAL):
        return lowered
    if "://" in value or (":" in value and value.rsplit(":", 1)[-1].isdigit()):
        return value if "://" in value else f"tcp://{value}"
    raise ConfigError(
        f"scheduler {value!r} is not understood: use 'serial', 'local' (a temporary LocalCluster) or a Dask "
        "scheduler address such as tcp://127.0.0.1:8786"
    )


def _run_chunk(func: Callable[..., Any], items: list[tuple[Any, int | None]]) -> list[Any]:
    return [func(task) if seed is None else func(task, seed) for task, seed in items]


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def map_replicates(
    func: Callable[..., Any],
    tasks: Sequence[Any] | int,
    *,
    seed: int | None = None,
    scheduler: str | None = SERIAL,
    chunk_size: int | None = None,
    n_workers: int | None = None,
    timeout: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """Apply ``func`` to every task and return the results in task order.

    Parameters
    ----------
    func:
        ``func(task)`` or, when ``seed`` is given, ``func(task, task_seed)``. Must be picklable for Dask
        (a module-level function or a ``functools.partial`` of one).
    tasks:
        The tasks, or an integer ``n`` meaning ``range(n)`` (e.g. replicate numbers).
    seed:
        Master seed; task ``i`` gets ``spawn_seeds(seed, n)[i]``. ``None``: the function receives no seed.
    scheduler:
        ``"serial"`` (default for library calls), ``None``/``"local"`` (LocalCluster) or a Dask address.
    chunk_size:
        Tasks per Dask task (default: about four chunks per worker). Has no effect on the results.
    n_workers:
        Worker processes for a LocalCluster (default: the number of CPUs, at most 4).
    timeout:
        Seconds to wait when connecting to a remote scheduler.
    progress:
        Optional callback ``progress(done, total)``, called as chunks finish.
    """
    task_list = list(range(tasks)) if isinstance(tasks, int | np.integer) else list(tasks)
    n = len(task_list)
    seeds: list[int | None] = spawn_seeds(seed, n) if seed is not None else [None] * n
    items = list(zip(task_list, seeds, strict=True))
    mode = resolve_scheduler(scheduler)
    if n == 0:
        return []
    if mode == SERIAL:
        return _run_serial(func, items, progress, n)
    if mode == LOCAL:
        started = time.perf_counter()
        first = _run_serial(func, items[:1], progress, n)
        if (time.perf_counter() - started) * (n - 1) < LOCAL_CLUSTER_PAYS_FROM:
            return first + _run_serial(func, items[1:], progress, n, done=1)
        shifted = None if progress is None else (lambda done, _total: progress(done + 1, n))
        return first + _run_dask(func, items[1:], mode, chunk_size, n_workers, timeout, shifted)
    return _run_dask(func, items, mode, chunk_size, n_workers, timeout, progress)


def _run_serial(func: Callable[..., Any], items: list[tuple[Any, int | None]],
                progress: Callable[[int, int], None] | None, total: int, done: int = 0) -> list[Any]:
    out = []
    for i, item in enumerate(items, start=done + 1):
        out.extend(_run_chunk(func, [item]))
        if progress is not None:
            progress(i, total)
    return out


def _run_dask(func, items, mode, chunk_size, n_workers, timeout, progress) -> list[Any]:
    try:
        # Dask is loaded only when this runs: importing it costs start-up time
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - dask is a declared extra
        raise ConfigError("Dask is not installed: pip install 'hiddenpop[dask]' or use --scheduler serial") from exc
    cluster = None
    if mode == LOCAL:
        workers = n_workers or min(os.cpu_count() or 1, 4)
        with warnings.catch_warnings():  # the scheduler's health endpoint may find port 8787 taken: harmless
            warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                silence_logs=50,
            )
        client = Client(cluster)
    else:
        try:
            client = Client(mode, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {mode} within {timeout:g} s; start it with `dask scheduler` "
                "or use --scheduler local"
            ) from exc
    try:
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        size = chunk_size or max(1, -(-len(items) // (4 * workers)))
        chunks = _chunks(items, size)
        futures = [client.submit(_run_chunk, func, chunk, pure=False) for chunk in chunks]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[list[Any] | None] = [None] * len(chunks)
        done = 0
        for future in as_completed(futures):
            results[index[future.key]] = future.result()
            done += len(chunks[index[future.key]])
            if progress is not None:
                progress(done, len(items))
        return [value for chunk in results for value in chunk]  # type: ignore[union-attr]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------------- local processes
def available_cores() -> int:
    """CPUs this process may run on (its affinity mask where the platform reports one, else ``os.cpu_count``)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity masks
        return max(os.cpu_count() or 1, 1)


def even_ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut into up to ``parts`` contiguous (start, stop) ranges of (nearly) equal length, none empty."""
    bounds = np.linspace(0, n, max(int(parts), 1) + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def worker_limit(workers: int | None = None) -> int:
    """How many processes a step may use: ``workers`` (a user's cap, e.g. ``--threads``) but never more than
    :func:`available_cores`; ``None`` means every available core."""
    cores = available_cores()
    return cores if workers is None else max(1, min(int(workers), cores))


def can_fork_workers() -> bool:
    """Whether :func:`map_processes` can start worker processes here: the platform forks safely (Linux), this
    process is not itself a daemonic worker (a multiprocessing or Dask worker may not have children), and JAX
    is not loaded (its runtime threads make JAX refuse to work, and warn, after a fork).

    Other threads, such as the command line's progress spinner, do not prevent it: a fork copies their locks
    in whatever state they are, but the workers only compute and send results through the pool's own pipes,
    never touching the streams or objects those threads use, and the pool ends them (SIGTERM) when the map
    is done instead of letting them run exit handlers."""

    return (
        sys.platform.startswith("linux")
        and not multiprocessing.current_process().daemon
        and "jax" not in sys.modules
    )


def map_processes(func: Callable[[Any], Any], tasks: Sequence[Any], *, workers: int) -> list[Any]:
    """``[func(task) for task in tasks]`` computed by up to ``workers`` forked processes, in task order.

    The tasks must be deterministic (any random draws made before, in the caller): the result is then the
    same for every number of workers. Forked workers inherit the caller's loaded modules and caches, so
    starting them costs milliseconds. Runs serially with one worker, one task, where :func:`can_fork_workers`
    is false, or when no process can be started. ``func`` and the results must be picklable.
    """
    return list(imap_processes(func, tasks, workers=workers))


def imap_processes(func: Callable[[Any], Any], tasks: Sequence[Any], *, workers: int) -> Iterator[Any]:
    """:func:`map_processes` as an iterator: each result as soon as it and those before it are done (for progress
    bars). The worker processes end when the iterator is exhausted or closed."""
    tasks = list(tasks)
    workers = min(int(workers), len(tasks))
    if workers <= 1 or not can_fork_workers():
        yield from (func(task) for task in tasks)
        return
    try:
        pool = multiprocessing.get_context("fork").Pool(processes=workers)
    except OSError:  # no processes to be had (limits, memory): the same results, in this process
        yield from (func(task) for task in tasks)
        return
    with pool:
        yield from pool.imap(func, tasks, chunksize=1)


#: Values handed to forked workers by :func:`map_shared`, by slot; workers inherit them with the fork.
_SHARED: dict[int, Any] = {}


def _call_shared(func: Callable[[Any, Any], Any], slot: int, task: Any) -> Any:
    return func(_SHARED[slot], task)


def map_shared(func: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *, workers: int) -> list[Any]:
    """``[func(shared, task) for task in tasks]`` computed as :func:`map_processes` does, in task order.

    ``shared`` reaches the workers through the fork, never through a pipe: it is neither pickled nor copied
    (pages are shared until written), so large arrays cost nothing to hand over, and values that must stay in
    memory (raw identifiers) are never serialised. Only the tasks, which should be small (index ranges), and the
    results cross the pipes. ``func`` must be a module-level function (it is pickled by reference).
    """
    return list(imap_shared(func, shared, tasks, workers=workers))


def imap_shared(func: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *,
                workers: int) -> Iterator[Any]:
    """:func:`map_shared` as an iterator, as :func:`imap_processes` is to :func:`map_processes`."""
    slot = max(_SHARED, default=-1) + 1
    _SHARED[slot] = shared
    try:
        yield from imap_processes(functools.partial(_call_shared, func, slot), tasks, workers=workers)
    finally:
        del _SHARED[slot]


_BLAS_CONTROLLER: Any = None


def on_one_blas_thread(function: Callable) -> Callable:
    """Decorator: ``function`` runs inside :func:`single_thread_blas` (for code whose products are too small for
    BLAS threads to pay: on busy cores idle BLAS threads spin and can cost many times the work's CPU time)."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        with single_thread_blas():
            return function(*args, **kwargs)

    return run


def single_thread_blas() -> Any:
    """A context manager that limits BLAS to one thread (threadpoolctl), from one controller per process.

    Creating a threadpoolctl controller reads every loaded shared library (milliseconds); the controller is
    made on first use, after SciPy's BLAS is loaded so that it is covered along with NumPy's, and kept.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")
