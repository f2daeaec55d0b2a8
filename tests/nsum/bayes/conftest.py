"""Keep compiled samplers between test sessions (first run compiles; later runs reuse), and give JAX one CPU
device per core so chains (and batched replicates) run in parallel, as ``numpyro.set_host_device_count`` does
for the CLI. The flag only takes effect if JAX has not started yet in this process."""

import os

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={min(os.cpu_count() or 1, 4)}"
    ).strip()

import pytest


@pytest.fixture(scope="session", autouse=True)
def _jax_cache():
    from hiddenpop.mcmc.nuts import enable_compilation_cache

    enable_compilation_cache(os.environ.get("HIDDENPOP_JAX_CACHE"))
    yield
