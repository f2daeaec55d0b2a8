"""NUTS for the project's Bayesian models: a model is a :class:`Density` written in JAX; :func:`sample_nuts` runs
NumPyro's NUTS on it for one data set (chains vectorised, spread over host devices when
``numpyro.set_host_device_count`` ran before JAX started) or for many data sets of the same shape in one compiled
call (simulation studies), with a Rich progress bar on stderr; :func:`quantity_row` summarises draws.

JAX and NumPyro are imported inside functions so that importing this module (and the command line) stays fast.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hiddenpop.errors import ConfigError
from hiddenpop.mcmc.diagnostics import rhat_ess_many

#: level of the equal-tailed posterior intervals in summaries
LEVEL = 0.95


@dataclass
class Draws:
    """Posterior draws of one fit: ``samples[name]`` has shape (chains, draws, ...)."""

    samples: dict[str, np.ndarray]
    diverging: np.ndarray
    energy: np.ndarray
    num_steps: np.ndarray
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    #: the unconstrained draws of the parameters named in ``sample_nuts(keep=...)``, shape (chains, draws, ...)
    unconstrained: dict[str, np.ndarray] = field(default_factory=dict)


def chunk_size(warmup: int, draws: int, pieces: int) -> int:
    common = math.gcd(warmup, draws) if warmup > 0 else draws
    target = max(1, (warmup + draws) // max(pieces, 1))
    best = 1
    for candidate in range(1, common + 1):
        if common % candidate == 0 and candidate <= target:
            best = candidate
    return best


@dataclass(frozen=True)
class Conditional:
    """Parameters drawn from their full conditional between NUTS transitions (Metropolis-within-Gibbs).

    ``name`` is one entry of the density's ``shapes``; NUTS then moves every other parameter with this one held
    fixed, and before each transition ``update(key, z, data)`` returns a new value of ``z[name]`` (unconstrained,
    like ``z``) by a move that leaves the full conditional p(z[name] | rest) invariant."""

    name: str
    update: Callable[[Any, dict[str, Any], dict[str, Any]], Any]
    #: the move a Gibbs scan uses instead (:func:`hiddenpop.mcmc.gibbs.sample_gibbs`; e.g. over-relaxed), if any
    gibbs_update: Callable[[Any, dict[str, Any], dict[str, Any]], Any] | None = None


@dataclass(frozen=True)
class Density:
    """A model as NUTS needs it: unconstrained parameter shapes, the log density (Jacobians included) and the
    map from unconstrained parameters to the reported quantities. Written directly in JAX (rather than traced
    from a NumPyro model) so nothing runs eagerly op by op before compilation."""

    shapes: dict[str, tuple[int, ...]]
    log_density: Callable[[dict[str, Any], dict[str, Any]], Any]
    constrain: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    #: an exact conditional update the model offers for one block of parameters (``sample_nuts(conditional=...)``)
    conditional: Conditional | None = None
    #: ``sweep(key, z, data)`` -> new values of every parameter except the conditional block, by moves that each
    #: leave their full conditional invariant: with ``conditional`` a complete Gibbs sampler
    #: (:func:`hiddenpop.mcmc.gibbs.sample_gibbs`) that needs no NUTS
    sweep: Callable[[Any, dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None


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
    keep: tuple[str, ...] = (),
    conditional: Conditional | None = None,
    dense_mass: bool = False,
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

    ``keep`` names parameters whose unconstrained draws are returned too (``Draws.unconstrained``), e.g. for a
    post-processing step that works on the sampler's scale.

    ``dense_mass`` adapts a full mass matrix during warmup instead of a diagonal one (worth it when the posterior
    has strongly correlated directions, such as a ridge between a scale parameter and the variables it scales).

    ``conditional`` (not with ``batched``) splits the parameters: the one it names is redrawn from its full
    conditional before every NUTS transition of the others (:class:`Conditional`).
    """
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    with jax.enable_x64(True):
        return _sample_nuts(
            density, data, chains=chains, warmup=warmup, draws=draws, seed=seed, batched=batched,
            target_accept=target_accept, max_tree_depth=max_tree_depth,
            warmup_max_tree_depth=warmup_max_tree_depth, init_radius=init_radius,
            init_values=init_values, quiet=quiet, description=description, keep=keep, conditional=conditional,
            dense_mass=dense_mass,
        )


def _sample_nuts(
    density: Density, data: dict[str, Any], *, chains: int, warmup: int, draws: int, seed: int, batched: bool,
    target_accept: float, max_tree_depth: int, warmup_max_tree_depth: int | None, init_radius: float,
    init_values: dict[str, np.ndarray] | None, quiet: bool, description: str, keep: tuple[str, ...] = (),
    conditional: Conditional | None = None,
    dense_mass: bool = False,
) -> Draws | list[Draws]:
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax
    from numpyro.infer.hmc import hmc

    check_run_lengths(chains, warmup, draws)
    if warmup_max_tree_depth is None:
        warmup_max_tree_depth = max_tree_depth
    for name, depth in (("max_tree_depth", max_tree_depth), ("warmup_max_tree_depth", warmup_max_tree_depth)):
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {depth!r}")
    depths = (int(warmup_max_tree_depth), int(max_tree_depth))
    if conditional is not None and (batched or conditional.name not in density.shapes):
        raise ConfigError(f"a conditional update needs one data set and a parameter of the model, got "
                          f"{conditional.name!r} with batched={batched}")
    # Starting points and chain keys come from one compiled call and data stay NumPy arrays: built with eager JAX
    # operations, each small operation was compiled on its own (about 8 s of 41 compilations at Study 2's size).
    arrays = {k: np.asarray(v) for k, v in data.items()}
    replicates = int(next(iter(arrays.values())).shape[0]) if batched else 1
    total = replicates * chains
    every = sorted(density.shapes)
    names = [name for name in every if conditional is None or name != conditional.name]
    bases = {}
    for name in every:
        if init_values is not None and name in init_values:
            base = np.asarray(init_values[name], dtype=np.float64)
            if batched and base.shape == (replicates, *density.shapes[name]):
                base = np.repeat(base, chains, axis=0)
            bases[name] = np.broadcast_to(base, (total, *density.shapes[name]))

    init_z, chain_keys = starting_points(density, total, seed, init_radius, bases)
    # NUTS sees one flat vector, not the dict of parameters: with a dict every momentum and position update,
    # kinetic energy and U-turn check would run once per leaf and ravel the leaves again. The order is
    # ravel_pytree's (sorted names), so momenta and draws are those the dict would give.
    offsets = np.cumsum([0] + [int(np.prod(density.shapes[name])) for name in names])

    def unravel(flat):
        return {name: flat[..., offsets[i]:offsets[i + 1]].reshape(flat.shape[:-1] + tuple(density.shapes[name]))
                for i, name in enumerate(names)}

    latent_name = None if conditional is None else conditional.name
    init_latent = None if conditional is None else init_z[latent_name]
    init_z = np.concatenate([init_z[name].reshape(total, -1) for name in names], axis=1)

    def full(z, model_data):
        """The parameters as the density reads them: NUTS's flat vector, plus the conditionally drawn block."""
        params = unravel(z)
        if latent_name is not None:
            params[latent_name] = model_data[_LATENT]
        return params

    def potential_fn_gen(model_data):
        return lambda z: -density.log_density(full(z, model_data), model_data)

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")
    if batched:
        batch_data = {k: np.repeat(v, chains, axis=0) for k, v in arrays.items()}
        data_axis: Any = 0
    else:
        batch_data = arrays
        data_axis = None

    def init_one(z, rng, model_data, latent=None):
        if latent_name is None:
            return init_kernel(
                z, num_warmup=warmup, model_args=(model_data,), rng_key=rng,
                target_accept_prob=target_accept, max_tree_depth=depths, dense_mass=dense_mass,
            )
        rng, own = jax.random.split(rng)
        state = init_kernel(
            z, num_warmup=warmup, model_args=({**model_data, _LATENT: latent},), rng_key=rng,
            target_accept_prob=target_accept, max_tree_depth=depths, dense_mass=dense_mass,
        )
        return state, latent, own

    def run_chunk(state, model_data, length):
        def body(carry, _):
            new = sample_kernel(carry, model_args=(model_data,))
            return new, (new.z, new.diverging, new.energy, new.num_steps)

        def gibbs_body(carry, _):
            hmc_state, latent, key = carry
            key, step = jax.random.split(key)
            latent = conditional.update(step, full(hmc_state.z, {**model_data, _LATENT: latent}), model_data)
            given = {**model_data, _LATENT: latent}
            # the transition starts from the current point: its energy and gradient change with the new block
            energy, gradient = jax.value_and_grad(potential_fn_gen(given))(hmc_state.z)
            hmc_state = hmc_state._replace(potential_energy=energy, z_grad=gradient)
            new = sample_kernel(hmc_state, model_args=(given,))
            return (new, latent, key), ((new.z, latent), new.diverging, new.energy, new.num_steps)

        return jax.lax.scan(body if latent_name is None else gibbs_body, state, None, length=length)

    chain_layout = ChainLayout.for_chains(total)
    lay_out, lift = chain_layout.lay_out, chain_layout.lift

    data_in = lay_out(batch_data) if batched else batch_data
    size = chunk_size(warmup, draws, 1 if quiet else 25)
    if latent_name is None:
        initialise = lift(init_one, (0, 0, data_axis))
        start_args = (lay_out(init_z), lay_out(chain_keys), data_in)
    else:
        initialise = lift(init_one, (0, 0, data_axis, 0))
        start_args = (lay_out(init_z), lay_out(chain_keys), data_in, lay_out(init_latent))
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
    collected = run_chunks(advance, state, data_in, warmup=warmup, draws=draws, size=size,
                           bar=ProgressBar(warmup + draws, description, quiet), warmup_label="warmup")
    seconds = time.perf_counter() - start

    def stack(index: int) -> Any:
        return chain_layout.join([c[index] for c in collected])

    if latent_name is None:
        z_draws = unravel(stack(0))
    else:
        flat, latent_draws = stack(0)
        z_draws = {**unravel(flat), latent_name: latent_draws}
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
                "devices": chain_layout.devices}
    if latent_name is not None:
        settings["conditional_update"] = latent_name
    kept = {name: np.asarray(z_draws[name]) for name in keep if name in z_draws}
    if not batched:
        return Draws(constrained, diverging, energy, num_steps, seconds, settings, kept)
    results = []
    for r in range(replicates):
        block = slice(r * chains, (r + 1) * chains)
        results.append(Draws({k: v[block] for k, v in constrained.items()}, diverging[block], energy[block],
                             num_steps[block], seconds / replicates, settings,
                             {k: v[block] for k, v in kept.items()}))
    return results


def check_run_lengths(chains: int, warmup: int, draws: int) -> None:
    """Refuse a run without chains, with negative warm-up or without draws (both samplers)."""
    if chains < 1 or warmup < 0 or draws < 1:
        raise ConfigError(f"need chains >= 1, warmup >= 0 and draws >= 1 (got {chains}, {warmup}, {draws})")


@dataclass(frozen=True)
class ChainLayout:
    """How ``total`` chains sit on the host devices: as (devices, chains per device, ...), pmapped over the first
    axis when there is more than one device and vmapped over the second when a device runs more than one chain.
    An axis of length one is dropped rather than mapped: a vmapped NUTS turns every while loop into a masked one,
    which cost 20-25% per step (and compile time) with one chain per device."""

    total: int
    devices: int
    per_device: int

    @classmethod
    def for_chains(cls, total: int) -> ChainLayout:
        # JAX is loaded only when this runs: importing it costs start-up time
        import jax

        devices = jax.local_device_count()
        use_devices = devices if devices > 1 and total % devices == 0 else 1
        return cls(total, use_devices, total // use_devices)

    @property
    def axes(self) -> tuple[int, ...]:
        return ((self.devices,) if self.devices > 1 else ()) + ((self.per_device,) if self.per_device > 1 else ())

    def lay_out(self, tree: Any) -> Any:
        """(chains, ...) arrays reshaped to (*axes, ...)."""
        # JAX is loaded only when this runs: importing it costs start-up time
        import jax

        return jax.tree_util.tree_map(lambda x: x.reshape(self.axes + x.shape[1:]), tree)

    def lift(self, fn: Callable, in_axes: tuple) -> Callable:
        """``fn`` of one chain mapped over the layout's axes (compiled)."""
        # JAX is loaded only when this runs: importing it costs start-up time
        import jax

        if self.per_device > 1:
            fn = jax.vmap(fn, in_axes=in_axes)
        return jax.pmap(fn, in_axes=in_axes) if self.devices > 1 else jax.jit(fn)

    def join(self, chunks: list[Any]) -> Any:
        """Chunk outputs laid out as (*axes, length, ...) joined into (chains, draws, ...) NumPy arrays: each
        chunk is copied once into its slice (no compilation; no joined intermediate of thousands of latent
        parameters' draws to copy again)."""
        # JAX is loaded only when this runs: importing it costs start-up time
        import jax

        axis = len(self.axes)

        def join(*parts: Any) -> np.ndarray:
            parts = [np.asarray(x) for x in parts]
            lengths = [p.shape[axis] for p in parts]
            out = np.empty((self.total, sum(lengths), *parts[0].shape[axis + 1:]), dtype=parts[0].dtype)
            position = 0
            for part, length in zip(parts, lengths, strict=True):
                out[:, position:position + length] = part.reshape((self.total, length, *part.shape[axis + 1:]))
                position += length
            return out

        return jax.tree_util.tree_map(join, *chunks)


def run_chunks(advance: Callable, state: Any, data: Any, *, warmup: int, draws: int, size: int, bar: ProgressBar,
               warmup_label: str) -> list[Any]:
    """Call ``advance(state, data)`` (``size`` iterations each) until ``warmup + draws`` iterations have run;
    returns the outputs of the chunks after warm-up, with the progress bar advanced."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    collected: list[Any] = []
    with bar:
        done = 0
        while done < warmup + draws:
            state, out = advance(state, data)
            if done >= warmup:
                collected.append(out)
            done += size
            bar.advance(size, warmup_label if done <= warmup else "sampling")
    jax.block_until_ready(state)
    return collected


def starting_points(density: Density, total: int, seed: int, init_radius: float,
                    bases: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Starting points of ``total`` chains (jittered by +-0.1 around ``bases``, the given initial values broadcast
    to ``(total, *shape)``; else uniform in +-init_radius) and one key per chain, in one compiled call (the
    data-derived bases are arguments, never compiled-in constants). Shared by the NUTS and Gibbs samplers."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    every = sorted(density.shapes)

    def draw_start(bases):
        key_jitter, key_chain = jax.random.split(jax.random.PRNGKey(int(seed)), 2)
        start = {}
        for name, k in zip(every, jax.random.split(key_jitter, len(every)), strict=True):
            shape = (total, *density.shapes[name])
            if name in bases:
                start[name] = bases[name] + jax.random.uniform(k, shape, minval=-0.1, maxval=0.1)
            else:
                start[name] = jax.random.uniform(k, shape, minval=-init_radius, maxval=init_radius)
        return start, jax.random.split(key_chain, total)

    return jax.tree_util.tree_map(np.asarray, jax.jit(draw_start)(bases))

#: key of the conditionally drawn block in the data the potential reads
_LATENT = "__conditional__"


class ProgressBar:
    """Rich progress bar on stderr (no-op when quiet)."""

    def __init__(self, total: int, description: str, quiet: bool) -> None:
        self.total, self.description, self.quiet = total, description, quiet
        self._progress = None
        self._task = None

    def __enter__(self) -> ProgressBar:
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


def host_devices(chains: int) -> None:
    """Ask for one JAX CPU device per chain, so that :func:`sample_nuts` runs the chains in parallel on the cores
    there are, each building its own trees (vectorised in lockstep on one device, every chain waits for the
    longest tree of the four at every draw, and a vectorised while loop is masked). Effective only before JAX
    starts in this process; afterwards it does nothing and the chains run vectorised on one device. The split
    depends on the chain count only, never on the machine, so a run is reproducible across machines. A device
    count already asked for (``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``: by the user, a test
    set-up or another analysis of the same run) is kept."""
    if "--xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    # NumPyro loads JAX, so only when a Bayesian model is about to run
    import numpyro

    numpyro.set_host_device_count(max(1, int(chains)))


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
