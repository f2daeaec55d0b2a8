"""Shared machinery of the Bayesian network scale-up models.

* :class:`BayesData` - the validated arrays every model reads (counts, which groups are known, their sizes, N).
* :class:`Priors` - the prior settings, with the published defaults of Maltiel et al. (2015).
* :func:`sample_nuts` - NUTS on JAX for one data set (chains vectorised, spread over host devices when
  ``numpyro.set_host_device_count`` ran before JAX started) or for many data sets of the same shape in one
  compiled call (used by the simulation studies). It reports progress with a Rich bar on stderr.
* :func:`summarise` - posterior draws -> the tidy ``Estimates`` table (median, 2.5/97.5% quantiles, mean, sd,
  R-hat, bulk and tail ESS).

JAX and NumPyro are imported inside functions so that importing :mod:`hiddenpop.nsum.bayes` (and the CLI) stays
fast.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hiddenpop.data.io import missing_column
from hiddenpop.errors import ConfigError, DataError, locate
from hiddenpop.nsum.bayes.diagnostics import rhat_ess_many

LEVEL = 0.95


# ---------------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class BayesData:
    """Aggregated relational data ready for a Bayesian model.

    ``counts`` is the n x K matrix y_ik ("how many people in group k do you know"); ``known`` marks the groups
    whose sizes are known; ``known_sizes`` holds N_k for those (NaN for hidden groups); ``population`` is N.
    """

    counts: np.ndarray
    groups: tuple[str, ...]
    known: np.ndarray
    known_sizes: np.ndarray
    population: float
    source: str | None = None
    #: the value known-group answers were top-coded at (the survey's ``topcode``), or None
    topcode: int | None = None

    @property
    def n_respondents(self) -> int:
        return int(self.counts.shape[0])

    @property
    def hidden_groups(self) -> tuple[str, ...]:
        return tuple(g for g, k in zip(self.groups, self.known, strict=True) if not k)

    @property
    def known_groups(self) -> tuple[str, ...]:
        return tuple(g for g, k in zip(self.groups, self.known, strict=True) if k)

    @property
    def known_index(self) -> np.ndarray:
        return np.flatnonzero(self.known)

    @property
    def hidden_index(self) -> np.ndarray:
        return np.flatnonzero(~self.known)

    def killworth_degrees(self) -> np.ndarray:
        """Known-population degree d_i = N * sum_{k known} y_ik / sum_{k known} N_k (Killworth et al. 1998)."""
        known = self.known_index
        return self.population * self.counts[:, known].sum(axis=1) / self.known_sizes[known].sum()

    def killworth_sizes(self) -> np.ndarray:
        """Killworth MLE N * sum_i y_ik / sum_i d_i for every group (used for starting values and bounds)."""
        degree_total = self.killworth_degrees().sum()
        return self.population * self.counts.sum(axis=0) / max(degree_total, 1e-12)


def prepare_data(
    counts: Any,
    known_sizes: Mapping[str, float],
    population: float,
    *,
    groups: Sequence[str] | None = None,
    hidden: Sequence[str] | None = None,
    source: str | None = None,
) -> BayesData:
    """Validate ARD counts and known sizes and return :class:`BayesData`.

    ``counts`` is a DataFrame (its columns are the groups) or an n x K array with ``groups`` naming the columns.
    Groups with a known size are known; ``hidden`` selects the groups to estimate (default: every group without
    a known size). Columns that are neither known nor listed in ``hidden`` are left out and named in the error
    if they were requested. Missing, negative, non-integer or infinite counts raise :class:`DataError` naming
    the row and column: the Bayesian models have no missing-data policy, so nothing is dropped silently.
    """
    if isinstance(counts, pd.DataFrame):
        frame = counts
        if groups is not None:
            missing = [g for g in groups if g not in frame.columns]
            if missing:
                raise missing_column(source, missing[0], frame.columns)
            frame = frame[list(groups)]
    else:
        array = np.asarray(counts)
        if array.ndim != 2:
            raise DataError(f"{locate(source)}counts must be a respondents x groups matrix, got shape {array.shape}")
        if groups is None:
            groups = [f"group{k + 1}" for k in range(array.shape[1])]
        if len(groups) != array.shape[1]:
            raise ConfigError(f"{len(groups)} group names for {array.shape[1]} count columns")
        frame = pd.DataFrame(array, columns=list(groups))
    known_sizes = {str(k): v for k, v in dict(known_sizes).items()}
    unknown_known = [g for g in known_sizes if g not in frame.columns]
    if unknown_known:
        raise missing_column(source, unknown_known[0], frame.columns, role="a group with a known size",
                             fix="make the known-size table's group names match the survey header")
    if hidden is None:
        hidden = [g for g in frame.columns if g not in known_sizes]
    hidden = list(hidden)
    overlap = [g for g in hidden if g in known_sizes]
    if overlap:
        raise ConfigError(f"groups {overlap} are listed as hidden but also have a known size; choose one")
    absent = [g for g in hidden if g not in frame.columns]
    if absent:
        raise missing_column(source, absent[0], frame.columns, role="hidden group")
    if not known_sizes:
        raise ConfigError("at least one known group is needed to fix the scale of degrees and sizes")
    if not math.isfinite(float(population)) or float(population) <= 0:
        raise ConfigError(f"population must be a positive number, got {population!r}")
    population = float(population)
    order = [g for g in frame.columns if g in known_sizes or g in hidden]
    values = np.empty((len(frame), len(order)), dtype=float)
    for j, group in enumerate(order):
        column = pd.to_numeric(frame[group], errors="coerce")
        raw_missing = frame[group].isna().to_numpy()
        bad_text = column.isna().to_numpy() & ~raw_missing
        col = column.to_numpy(dtype=float)
        for mask, why in (
            (raw_missing, "is missing; the Bayesian models need complete rows: impute or drop the respondent "
             "explicitly before fitting"),
            (bad_text, "is not a number; fix the cell"),
        ):
            if mask.any():
                row = int(np.flatnonzero(mask)[0]) + 1
                raise DataError(f"{locate(source, row, group)}count {why} ({int(mask.sum())} such cells)")
        with np.errstate(invalid="ignore"):
            invalid = ~np.isfinite(col) | (col < 0) | (np.abs(col - np.round(col)) > 1e-9)
        if invalid.any():
            row = int(np.flatnonzero(invalid)[0]) + 1
            raise DataError(
                f"{locate(source, row, group)}count must be a non-negative whole number "
                f"({int(invalid.sum())} invalid cells in this column)"
            )
        values[:, j] = np.round(col)
    if values.shape[0] < 2:
        raise DataError(f"{locate(source)}need at least 2 respondents, found {values.shape[0]}")
    known = np.array([g in known_sizes for g in order])
    sizes = np.full(len(order), np.nan)
    for j, group in enumerate(order):
        if group in known_sizes:
            size = float(known_sizes[group])
            if not math.isfinite(size) or size <= 0 or size >= population:
                raise ConfigError(
                    f"known size of {group!r} must lie strictly between 0 and the population {population:g}, "
                    f"got {size!r}"
                )
            sizes[j] = size
    return BayesData(
        counts=values,
        groups=tuple(order),
        known=known,
        known_sizes=sizes,
        population=population,
        source=source,
    )


def from_ard(ard: Any, *, hidden: Sequence[str] | None = None) -> BayesData:
    """Build :class:`BayesData` from a :class:`hiddenpop.data.ard.ARD` (duck-typed: ``counts``/``frame``,
    ``known_sizes`` mapping, ``population``)."""
    counts = None
    for name in ("counts", "ard", "frame", "data"):
        value = getattr(ard, name, None)
        if isinstance(value, pd.DataFrame):
            counts = value
            break
    if counts is None:
        raise ConfigError("this ARD object exposes no counts table (expected .counts or .frame as a DataFrame)")
    known_sizes = getattr(ard, "known_sizes", None)
    if known_sizes is None:
        raise ConfigError("this ARD object has no known sizes")
    if isinstance(known_sizes, pd.Series):
        known_sizes = known_sizes.to_dict()
    elif isinstance(known_sizes, pd.DataFrame):
        known_sizes = dict(zip(known_sizes.iloc[:, 0], known_sizes.iloc[:, 1], strict=True))
    population = getattr(ard, "population", None)
    if population is None:
        raise ConfigError("this ARD object has no population; pass population= to the model")
    groups_hidden = list(hidden) if hidden is not None else list(getattr(ard, "hidden", []) or []) or None
    cols = [c for c in counts.columns if c in known_sizes or (groups_hidden is None or c in groups_hidden)]
    if groups_hidden is None:
        numeric = [c for c in cols if c in known_sizes or pd.api.types.is_numeric_dtype(counts[c])]
        cols = numeric
    data = prepare_data(
        counts[cols], known_sizes, float(population), hidden=groups_hidden, source=getattr(ard, "source", None)
    )
    return replace(data, topcode=getattr(ard, "topcode", None))


def coerce_data(data: Any, known_sizes: Mapping[str, float] | None, population: float | None,
                hidden: Sequence[str] | None, groups: Sequence[str] | None) -> BayesData:
    """Accept :class:`BayesData`, an ``ARD`` object, or plain counts + ``known_sizes`` + ``population``."""
    if isinstance(data, BayesData):
        return data
    if known_sizes is None or population is None:
        if hasattr(data, "known_sizes"):
            return from_ard(data, hidden=hidden)
        raise ConfigError("pass known_sizes= and population= with a counts matrix")
    return prepare_data(data, known_sizes, population, groups=groups, hidden=hidden)


# ---------------------------------------------------------------------------------------------------- priors
@dataclass(frozen=True)
class Priors:
    """Prior settings (defaults: Maltiel et al. 2015 and Study 2).

    * ``mu``, ``sigma``: bounds of the uniform priors on the log-normal degree distribution's location and scale,
      log d_i ~ Normal(mu, sigma), mu ~ U(3, 8), sigma ~ U(0.25, 2).
    * ``rho``: bounds of the uniform prior on the barrier dispersion rho_k (0, 1).
    * ``tau``: Beta(a, b) prior on the transmission rate of hidden groups; one pair for all hidden groups or a
      mapping group -> (a, b). Default (1, 1), uniform.
    * ``size_bounds``: bounds (lower, upper) of the prior p(N_k) proportional to 1/N_k (uniform on log N_k) of
      hidden groups, one pair or a mapping. Default lower = max(1, largest single report of the group),
      upper = population (the support the NSUM package uses).
    """

    mu: tuple[float, float] = (3.0, 8.0)
    sigma: tuple[float, float] = (0.25, 2.0)
    rho: tuple[float, float] = (0.0, 1.0)
    tau: tuple[float, float] | Mapping[str, tuple[float, float]] = (1.0, 1.0)
    size_bounds: tuple[float, float] | Mapping[str, tuple[float, float]] | None = None

    def validate(self) -> Priors:
        for name in ("mu", "sigma", "rho"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ConfigError(f"prior bounds for {name} must be finite with lower < upper, got {(low, high)}")
        if self.sigma[0] < 0:
            raise ConfigError("sigma prior bounds must be non-negative")
        if self.rho[0] < 0 or self.rho[1] > 1:
            raise ConfigError("rho prior bounds must lie in [0, 1]")
        return self

    def tau_for(self, group: str) -> tuple[float, float]:
        value = self.tau.get(group, (1.0, 1.0)) if isinstance(self.tau, Mapping) else self.tau
        a, b = (float(v) for v in value)
        if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
            raise ConfigError(f"tau prior for {group!r} must be Beta(a, b) with a, b > 0, got {value!r}")
        return a, b

    def bounds_for(self, group: str, data: BayesData) -> tuple[float, float]:
        column = data.groups.index(group)
        default_low = max(1.0, float(data.counts[:, column].max()))
        value = None
        if isinstance(self.size_bounds, Mapping):
            value = self.size_bounds.get(group)
        elif self.size_bounds is not None:
            value = self.size_bounds
        low, high = (default_low, data.population) if value is None else (float(value[0]), float(value[1]))
        if not (0 < low < high <= data.population):
            raise ConfigError(
                f"size prior bounds for {group!r} must satisfy 0 < lower < upper <= population, got {(low, high)}"
            )
        return low, high

    def with_tau(self, tau: tuple[float, float] | Mapping[str, tuple[float, float]]) -> Priors:
        return replace(self, tau=tau)


# ---------------------------------------------------------------------------------------------------- sampling
@dataclass
class Draws:
    """Posterior draws of one fit: ``samples[name]`` has shape (chains, draws, ...)."""

    samples: dict[str, np.ndarray]
    diverging: np.ndarray
    energy: np.ndarray
    num_steps: np.ndarray
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)


def _chunk_size(warmup: int, draws: int, pieces: int) -> int:
    common = math.gcd(warmup, draws) if warmup > 0 else draws
    target = max(1, (warmup + draws) // max(pieces, 1))
    best = 1
    for candidate in range(1, common + 1):
        if common % candidate == 0 and candidate <= target:
            best = candidate
    return best


@dataclass(frozen=True)
class Density:
    """A model as NUTS needs it: unconstrained parameter shapes, the log density (Jacobians included) and the
    map from unconstrained parameters to the reported quantities. Written directly in JAX (rather than traced
    from a NumPyro model) so nothing runs eagerly op by op before compilation."""

    shapes: dict[str, tuple[int, ...]]
    log_density: Callable[[dict[str, Any], dict[str, Any]], Any]
    constrain: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def interval(u: Any, low: Any, high: Any) -> tuple[Any, Any]:
    """x = low + (high - low) * logistic(u) and log |dx/du|."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax.numpy as jnp
    from jax.nn import log_sigmoid, sigmoid

    return low + (high - low) * sigmoid(u), jnp.log(high - low) + log_sigmoid(u) + log_sigmoid(-u)


def uniform_interval(u: Any, low: Any, high: Any) -> tuple[Any, Any]:
    """A parameter with a U(low, high) prior: its value and log prior + log Jacobian (the 1/(high-low) cancels)."""
    # JAX is loaded only when this runs: importing it costs start-up time
    from jax.nn import log_sigmoid, sigmoid

    return low + (high - low) * sigmoid(u), log_sigmoid(u) + log_sigmoid(-u)


def sample_nuts(
    density: Density,
    data: dict[str, Any],
    *,
    chains: int = 4,
    warmup: int = 1000,
    draws: int = 1000,
    seed: int = 0,
    batched: bool = False,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    warmup_max_tree_depth: int | None = None,
    init_radius: float = 2.0,
    init_values: dict[str, np.ndarray] | None = None,
    quiet: bool = True,
    description: str = "sampling",
) -> Draws | list[Draws]:
    """Run NumPyro's NUTS on ``density`` with ``data``.

    ``data`` is a dict of arrays. With ``batched=False`` one data set is fitted with ``chains`` chains run as one
    vectorised computation, split across host devices when more than one is available (call
    ``numpyro.set_host_device_count(n)`` before JAX starts to get n CPU devices; otherwise chains are
    vectorised on one device, which is the graceful fallback). With ``batched=True`` every array in ``data``
    has a leading replicate axis and each replicate gets its own independent chains, step size and mass matrix:
    many small fits in one compiled call, returning a list of :class:`Draws`.

    ``warmup_max_tree_depth`` caps the tree during warmup only (default: ``max_tree_depth``). Early in warmup the
    mass matrix is still the identity, and in models with thousands of respondent-level parameters NUTS then
    builds trees of 30-60 leapfrog steps per iteration; a cap of 4 (15 steps) lets adaptation reach the same
    step size and mass matrix for a third of the cost. Draws after warmup are unaffected by the cap.

    Starting points are drawn uniformly in (-init_radius, init_radius) on the unconstrained scale, independently
    per chain, unless ``init_values`` gives unconstrained starting values (then jittered by +-0.1 per chain;
    with ``batched=True`` they may carry a leading replicate axis).

    Everything runs in 64-bit floating point (inside ``jax.enable_x64``, so the process-wide JAX setting is left
    alone): the beta-binomial and negative-binomial log-likelihoods difference large log-gamma values, which
    float32 cancels into noise when a dispersion parameter approaches zero.
    """
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    with jax.enable_x64(True):
        return _sample_nuts(
            density, data, chains=chains, warmup=warmup, draws=draws, seed=seed, batched=batched,
            target_accept=target_accept, max_tree_depth=max_tree_depth,
            warmup_max_tree_depth=warmup_max_tree_depth, init_radius=init_radius,
            init_values=init_values, quiet=quiet, description=description,
        )


def _sample_nuts(
    density: Density, data: dict[str, Any], *, chains: int, warmup: int, draws: int, seed: int, batched: bool,
    target_accept: float, max_tree_depth: int, warmup_max_tree_depth: int | None, init_radius: float,
    init_values: dict[str, np.ndarray] | None, quiet: bool, description: str,
) -> Draws | list[Draws]:
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax
    from numpyro.infer.hmc import hmc

    if chains < 1 or warmup < 0 or draws < 1:
        raise ConfigError(f"need chains >= 1, warmup >= 0 and draws >= 1 (got {chains}, {warmup}, {draws})")
    if warmup_max_tree_depth is None:
        warmup_max_tree_depth = max_tree_depth
    for name, depth in (("max_tree_depth", max_tree_depth), ("warmup_max_tree_depth", warmup_max_tree_depth)):
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {depth!r}")
    depths = (int(warmup_max_tree_depth), int(max_tree_depth))
    # Starting points and chain keys come from one compiled call and data stay NumPy arrays: built with eager JAX
    # operations, each small operation was compiled on its own (about 8 s of 41 compilations at Study 2's size).
    arrays = {k: np.asarray(v) for k, v in data.items()}
    replicates = int(next(iter(arrays.values())).shape[0]) if batched else 1
    total = replicates * chains
    names = sorted(density.shapes)
    bases = {}
    for name in names:
        if init_values is not None and name in init_values:
            base = np.asarray(init_values[name], dtype=np.float64)
            if batched and base.shape == (replicates, *density.shapes[name]):
                base = np.repeat(base, chains, axis=0)
            bases[name] = np.broadcast_to(base, (total, *density.shapes[name]))

    def draw_start(bases):
        """Starting points (jittered by +-0.1 around ``init_values``, else uniform in +-init_radius) and one key
        per chain, in one compiled call (the data-derived bases are arguments, never compiled-in constants)."""
        key_jitter, key_chain = jax.random.split(jax.random.PRNGKey(int(seed)), 2)
        start = {}
        for name, k in zip(names, jax.random.split(key_jitter, len(names)), strict=True):
            shape = (total, *density.shapes[name])
            if name in bases:
                start[name] = bases[name] + jax.random.uniform(k, shape, minval=-0.1, maxval=0.1)
            else:
                start[name] = jax.random.uniform(k, shape, minval=-init_radius, maxval=init_radius)
        return start, jax.random.split(key_chain, total)

    init_z, chain_keys = jax.tree_util.tree_map(np.asarray, jax.jit(draw_start)(bases))
    # NUTS sees one flat vector, not the dict of parameters: with a dict every momentum and position update,
    # kinetic energy and U-turn check would run once per leaf and ravel the leaves again. The order is
    # ravel_pytree's (sorted names), so momenta and draws are those the dict would give.
    offsets = np.cumsum([0] + [int(np.prod(density.shapes[name])) for name in names])

    def unravel(flat):
        return {name: flat[..., offsets[i]:offsets[i + 1]].reshape(flat.shape[:-1] + tuple(density.shapes[name]))
                for i, name in enumerate(names)}

    init_z = np.concatenate([init_z[name].reshape(total, -1) for name in names], axis=1)

    def potential_fn_gen(model_data):
        return lambda z: -density.log_density(unravel(z), model_data)

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")
    if batched:
        batch_data = {k: np.repeat(v, chains, axis=0) for k, v in arrays.items()}
        data_axis: Any = 0
    else:
        batch_data = arrays
        data_axis = None

    def init_one(z, rng, model_data):
        return init_kernel(
            z, num_warmup=warmup, model_args=(model_data,), rng_key=rng,
            target_accept_prob=target_accept, max_tree_depth=depths,
        )

    def run_chunk(state, model_data, length):
        def body(carry, _):
            new = sample_kernel(carry, model_args=(model_data,))
            return new, (new.z, new.diverging, new.energy, new.num_steps)

        return jax.lax.scan(body, state, None, length=length)

    devices = jax.local_device_count()
    use_devices = devices if devices > 1 and total % devices == 0 else 1
    per_device = total // use_devices
    # chains are laid out as (devices, chains per device, ...): pmap over the first axis when there is more than
    # one device, vmap over the second when a device runs more than one chain. An axis of length one is dropped
    # rather than mapped: a vmapped NUTS turns every while loop into a masked one, which cost 20-25% per step
    # (and compile time) with one chain per device.
    layout = ((use_devices,) if use_devices > 1 else ()) + ((per_device,) if per_device > 1 else ())

    def lay_out(tree):
        return jax.tree_util.tree_map(lambda x: x.reshape(layout + x.shape[1:]), tree)

    def lift(fn: Callable, in_axes: tuple) -> Callable:
        if per_device > 1:
            fn = jax.vmap(fn, in_axes=in_axes)
        return jax.pmap(fn, in_axes=in_axes) if use_devices > 1 else jax.jit(fn)

    data_in = lay_out(batch_data) if batched else batch_data
    size = _chunk_size(warmup, draws, 1 if quiet else 25)
    initialise = lift(init_one, (0, 0, data_axis))
    start_args = (lay_out(init_z), lay_out(chain_keys), data_in)
    advance = lift(lambda s, d: run_chunk(s, d, size), (0, data_axis))

    start = time.perf_counter()
    # XLA compiles a program on one core: compile the sampler in a second thread while the initial step (a
    # separate program: step-size search, first gradient) compiles and runs
    state_shape = jax.eval_shape(initialise, *start_args)

    def compile_sampler() -> Callable:
        with jax.enable_x64(True):  # a thread-local setting: the caller's does not reach this thread
            return advance.lower(state_shape, data_in).compile()

    with ThreadPoolExecutor(max_workers=1) as pool:
        compiling = pool.submit(compile_sampler)
        state = initialise(*start_args)
        advance = compiling.result()
    collected: list[Any] = []
    bar = _Bar(warmup + draws, description, quiet)
    with bar:
        done = 0
        while done < warmup + draws:
            state, out = advance(state, data_in)
            if done >= warmup:
                collected.append(out)
            done += size
            bar.advance(size, "warmup" if done <= warmup else "sampling")
    jax.block_until_ready(state)
    seconds = time.perf_counter() - start

    def stack(index: int) -> Any:
        # chunk outputs are laid out as (*layout, length, ...): join the chunks along length, then flatten the
        # layout back to (chains, draws, ...) (in NumPy: no compilation)
        axis = len(layout)
        joined = jax.tree_util.tree_map(lambda *xs: np.concatenate([np.asarray(x) for x in xs], axis=axis),
                                        *[c[index] for c in collected])
        return jax.tree_util.tree_map(lambda x: x.reshape((total, *x.shape[axis:])), joined)

    z_draws = unravel(stack(0))
    diverging = np.asarray(stack(1))
    energy = np.asarray(stack(2))
    num_steps = np.asarray(stack(3))

    def constrain(z, model_data):
        return jax.vmap(lambda one: density.constrain(one, model_data))(z)

    if batched:
        constrained = jax.jit(jax.vmap(constrain))(z_draws, batch_data)
    else:
        constrained = jax.jit(jax.vmap(constrain, in_axes=(0, None)))(z_draws, batch_data)
    constrained = {k: np.asarray(v) for k, v in constrained.items()}
    settings = {"chains": chains, "warmup": warmup, "draws": draws, "seed": int(seed),
                "target_accept": target_accept, "max_tree_depth": depths[1], "warmup_max_tree_depth": depths[0],
                "devices": use_devices}
    if not batched:
        return Draws(constrained, diverging, energy, num_steps, seconds, settings)
    results = []
    for r in range(replicates):
        block = slice(r * chains, (r + 1) * chains)
        results.append(Draws({k: v[block] for k, v in constrained.items()}, diverging[block], energy[block],
                             num_steps[block], seconds / replicates, settings))
    return results


class _Bar:
    """Rich progress bar on stderr (no-op when quiet)."""

    def __init__(self, total: int, description: str, quiet: bool) -> None:
        self.total, self.description, self.quiet = total, description, quiet
        self._progress = None
        self._task = None

    def __enter__(self) -> _Bar:
        if not self.quiet:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(stderr=True), transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(f"{self.description} (compiling, warmup)", total=self.total)
        return self

    def advance(self, steps: int, phase: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=steps, description=f"{self.description} ({phase})")

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


# ---------------------------------------------------------------------------------------------------- summaries
def enable_compilation_cache(path: str | None = None) -> str | None:
    """Keep compiled samplers on disk so the second run of a model skips XLA compilation (often most of the
    time of a small fit). Used by the CLI; API users may call it once at start-up. Returns the directory used,
    or None when JAX refuses (a read-only home, for example)."""

    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    directory = path or os.environ.get("HIDDENPOP_JAX_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "hiddenpop", "jax"
    )
    try:
        os.makedirs(directory, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", directory)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    except (OSError, AttributeError, ValueError):
        return None
    return directory


def rhat_ess(values: np.ndarray) -> tuple[float, float, float]:
    """Rank-normalised split R-hat, bulk ESS and tail ESS (Vehtari et al. 2021) of a (chains, draws) array."""

    values = np.asarray(values, dtype=float)
    if values.shape[0] * values.shape[1] < 8 or not np.all(np.isfinite(values)) or np.ptp(values) == 0:
        return float("nan"), float("nan"), float("nan")
    rhat, bulk, tail = rhat_ess_many(values[None])
    return float(rhat[0]), float(bulk[0]), float(tail[0])


def quantity_row(quantity: str, method: str, values: np.ndarray, **extra: Any) -> dict[str, Any]:
    """One tidy row: estimate = posterior median, lower/upper = 2.5% and 97.5% quantiles, plus mean, sd, rhat,
    ess_bulk, ess_tail. ``values`` has shape (chains, draws)."""
    flat = np.asarray(values, dtype=float).reshape(-1)
    rhat, ess_bulk, ess_tail = rhat_ess(values)
    lower, median, upper = np.quantile(flat, [(1 - LEVEL) / 2, 0.5, (1 + LEVEL) / 2])
    sd = float(np.std(flat, ddof=1))
    return {
        "quantity": quantity, "method": method, "estimate": float(median), "se": sd,
        "lower": float(lower), "upper": float(upper), "level": LEVEL,
        "mean": float(np.mean(flat)), "sd": sd, "rhat": rhat, "ess_bulk": ess_bulk, "ess_tail": ess_tail,
        **extra,
    }
