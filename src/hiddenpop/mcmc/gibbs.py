"""A Gibbs sampler for models whose every block has an exact conditional move: a :class:`~hiddenpop.mcmc.nuts.
Density` with a ``conditional`` block (the latent variables) and a ``sweep`` of the other parameters. Each
iteration redraws the conditional block, then sweeps the rest; every move leaves its full conditional invariant,
so the scan leaves the posterior invariant. There is nothing to adapt: warm-up iterations are plain burn-in.

Chains run as in :func:`hiddenpop.mcmc.nuts.sample_nuts` (one host device per chain when there are enough, else
vectorised on one device) and the result is the same :class:`~hiddenpop.mcmc.nuts.Draws`, with no divergences,
no leapfrog steps and no Hamiltonian energy (``energy`` is None, so no E-BFMI is computed).

JAX is imported inside functions so that importing this module (and the command line) stays fast.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from hiddenpop.errors import ConfigError
from hiddenpop.mcmc.nuts import Density, Draws, ProgressBar, chunk_size


def sample_gibbs(
    density: Density,
    data: dict[str, Any],
    *,
    chains: int = 4,
    warmup: int = 1000,
    draws: int = 1000,
    seed: int = 0,
    init_radius: float = 2.0,
    init_values: dict[str, np.ndarray] | None = None,
    quiet: bool = True,
    description: str = "sampling",
    keep: tuple[str, ...] = (),
    max_tree_depth: int = 10,
) -> Draws:
    """Run ``chains`` Gibbs chains on ``density`` (which must offer ``conditional`` and ``sweep``) for ``warmup``
    burn-in iterations and ``draws`` kept ones. Starting points as :func:`~hiddenpop.mcmc.nuts.sample_nuts`
    (``init_values`` jittered by +-0.1 per chain, else uniform in +-init_radius). ``max_tree_depth`` is only
    recorded in the settings (the gates read it; no tree is built)."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    if density.conditional is None or density.sweep is None:
        raise ConfigError("the Gibbs sampler needs a model with a conditional block and a sweep of the rest")
    if chains < 1 or warmup < 0 or draws < 1:
        raise ConfigError(f"need chains >= 1, warmup >= 0 and draws >= 1 (got {chains}, {warmup}, {draws})")
    with jax.enable_x64(True):
        return _sample_gibbs(density, data, chains=chains, warmup=warmup, draws=draws, seed=seed,
                             init_radius=init_radius, init_values=init_values, quiet=quiet,
                             description=description, keep=keep, max_tree_depth=max_tree_depth)


def _sample_gibbs(density: Density, data: dict[str, Any], *, chains: int, warmup: int, draws: int, seed: int,
                  init_radius: float, init_values: dict[str, np.ndarray] | None, quiet: bool, description: str,
                  keep: tuple[str, ...], max_tree_depth: int) -> Draws:
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    arrays = {k: np.asarray(v) for k, v in data.items()}
    every = sorted(density.shapes)
    latent_name, sweep = density.conditional.name, density.sweep
    update = density.conditional.gibbs_update or density.conditional.update
    bases = {name: np.broadcast_to(np.asarray(init_values[name], dtype=np.float64),
                                   (chains, *density.shapes[name]))
             for name in every if init_values is not None and name in init_values}

    def draw_start(bases):
        key_jitter, key_chain = jax.random.split(jax.random.PRNGKey(int(seed)), 2)
        start = {}
        for name, k in zip(every, jax.random.split(key_jitter, len(every)), strict=True):
            shape = (chains, *density.shapes[name])
            if name in bases:
                start[name] = bases[name] + jax.random.uniform(k, shape, minval=-0.1, maxval=0.1)
            else:
                start[name] = jax.random.uniform(k, shape, minval=-init_radius, maxval=init_radius)
        return start, jax.random.split(key_chain, chains)

    start, chain_keys = jax.tree_util.tree_map(np.asarray, jax.jit(draw_start)(bases))

    def run_chunk(carry, model_data, length):
        def body(carry, _):
            z, key = carry
            key, first, second = jax.random.split(key, 3)
            z = {**z, latent_name: update(first, z, model_data)}
            z = {**z, **sweep(second, z, model_data)}
            return (z, key), z

        return jax.lax.scan(body, carry, None, length=length)

    devices = jax.local_device_count()
    use_devices = devices if devices > 1 and chains % devices == 0 else 1
    per_device = chains // use_devices
    layout = ((use_devices,) if use_devices > 1 else ()) + ((per_device,) if per_device > 1 else ())

    def lay_out(tree):
        return jax.tree_util.tree_map(lambda x: x.reshape(layout + x.shape[1:]), tree)

    size = chunk_size(warmup, draws, 1 if quiet else 25)

    def chunk(carry, model_data):
        return run_chunk(carry, model_data, size)

    fn = chunk
    if per_device > 1:
        fn = jax.vmap(fn, in_axes=(0, None))
    advance = jax.pmap(fn, in_axes=(0, None)) if use_devices > 1 else jax.jit(fn)
    begin = time.perf_counter()
    state = lay_out((start, chain_keys))
    collected: list[Any] = []
    bar = ProgressBar(warmup + draws, description, quiet)
    with bar:
        done = 0
        while done < warmup + draws:
            state, out = advance(state, arrays)
            if done >= warmup:
                collected.append(out)
            done += size
            bar.advance(size, "burn-in" if done <= warmup else "sampling")
    jax.block_until_ready(state)
    seconds = time.perf_counter() - begin
    axis = len(layout)

    def join(*chunks: Any) -> np.ndarray:
        parts = [np.asarray(x) for x in chunks]
        return np.concatenate([p.reshape((chains, p.shape[axis], *p.shape[axis + 1:])) for p in parts], axis=1)

    z_draws = jax.tree_util.tree_map(join, *collected)
    constrained = jax.jit(jax.vmap(jax.vmap(lambda one, d: density.constrain(one, d), in_axes=(0, None)),
                                   in_axes=(0, None)))(z_draws, arrays)
    constrained = {k: np.asarray(v) for k, v in constrained.items()}
    settings = {"chains": chains, "warmup": warmup, "draws": draws, "seed": int(seed), "sampler": "gibbs",
                "max_tree_depth": max_tree_depth, "devices": use_devices, "conditional_update": latent_name}
    kept = {name: np.asarray(z_draws[name]) for name in keep if name in z_draws}
    zeros = np.zeros((chains, draws))
    return Draws(constrained, zeros.astype(bool), None, zeros.astype(np.int64), seconds, settings, kept)
