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
from hiddenpop.mcmc.nuts import (
    ChainLayout,
    Density,
    Draws,
    ProgressBar,
    check_run_lengths,
    chunk_size,
    run_chunks,
    starting_points,
)


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
) -> Draws:
    """Run ``chains`` Gibbs chains on ``density`` (which must offer ``conditional`` and ``sweep``) for ``warmup``
    burn-in iterations and ``draws`` kept ones. Starting points as :func:`~hiddenpop.mcmc.nuts.sample_nuts`
    (``init_values`` jittered by +-0.1 per chain, else uniform in +-init_radius). No tree is built, so the
    settings carry no tree depth and the draws record zero leapfrog steps and no divergence."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    if density.conditional is None or density.sweep is None:
        raise ConfigError("the Gibbs sampler needs a model with a conditional block and a sweep of the rest")
    check_run_lengths(chains, warmup, draws)
    with jax.enable_x64(True):
        return _sample_gibbs(density, data, chains=chains, warmup=warmup, draws=draws, seed=seed,
                             init_radius=init_radius, init_values=init_values, quiet=quiet,
                             description=description, keep=keep)


def _sample_gibbs(density: Density, data: dict[str, Any], *, chains: int, warmup: int, draws: int, seed: int,
                  init_radius: float, init_values: dict[str, np.ndarray] | None, quiet: bool, description: str,
                  keep: tuple[str, ...]) -> Draws:
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    arrays = {k: np.asarray(v) for k, v in data.items()}
    every = sorted(density.shapes)
    latent_name, sweep = density.conditional.name, density.sweep
    update = density.conditional.gibbs_update or density.conditional.update
    bases = {name: np.broadcast_to(np.asarray(init_values[name], dtype=np.float64),
                                   (chains, *density.shapes[name]))
             for name in every if init_values is not None and name in init_values}

    start, chain_keys = starting_points(density, chains, seed, init_radius, bases)

    def run_chunk(carry, model_data, length):
        def body(carry, _):
            z, key = carry
            key, first, second = jax.random.split(key, 3)
            z = {**z, latent_name: update(first, z, model_data)}
            z = {**z, **sweep(second, z, model_data)}
            return (z, key), z

        return jax.lax.scan(body, carry, None, length=length)

    layout = ChainLayout.for_chains(chains)
    size = chunk_size(warmup, draws, 1 if quiet else 25)
    advance = layout.lift(lambda carry, model_data: run_chunk(carry, model_data, size), (0, None))
    begin = time.perf_counter()
    collected = run_chunks(advance, layout.lay_out((start, chain_keys)), arrays, warmup=warmup, draws=draws,
                           size=size, bar=ProgressBar(warmup + draws, description, quiet), warmup_label="burn-in")
    seconds = time.perf_counter() - begin
    z_draws = layout.join(collected)
    constrained = jax.jit(jax.vmap(jax.vmap(lambda one, d: density.constrain(one, d), in_axes=(0, None)),
                                   in_axes=(0, None)))(z_draws, arrays)
    constrained = {k: np.asarray(v) for k, v in constrained.items()}
    settings = {"chains": chains, "warmup": warmup, "draws": draws, "seed": int(seed), "sampler": "gibbs",
                "devices": layout.devices, "conditional_update": latent_name}
    kept = {name: np.asarray(z_draws[name]) for name in keep if name in z_draws}
    zeros = np.zeros((chains, draws))
    return Draws(constrained, zeros.astype(bool), None, zeros.astype(np.int64), seconds, settings, kept)
