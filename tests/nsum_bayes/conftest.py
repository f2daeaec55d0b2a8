"""Keep compiled samplers between test sessions (first run compiles; later runs reuse)."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _jax_cache():
    from hiddenpop.nsum.bayes._common import enable_compilation_cache

    enable_compilation_cache(os.environ.get("HIDDENPOP_JAX_CACHE"))
    yield
