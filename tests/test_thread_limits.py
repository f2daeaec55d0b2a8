"""BLAS thread limits: one threadpoolctl scan per process, and the limit really applies inside the block."""

from __future__ import annotations

import threadpoolctl

from hiddenpop import parallel


def test_single_thread_blas_scans_libraries_once(monkeypatch):
    made = []
    original = threadpoolctl.ThreadpoolController

    class Counting(original):
        def __init__(self):
            made.append(1)
            super().__init__()

    monkeypatch.setattr(parallel, "_BLAS_CONTROLLER", None)
    monkeypatch.setattr(parallel, "ThreadpoolController", Counting)
    for _ in range(3):
        with parallel.single_thread_blas():
            inside = [lib["num_threads"] for lib in original().info() if lib["user_api"] == "blas"]
        assert inside and all(n == 1 for n in inside)
    assert made == [1]
