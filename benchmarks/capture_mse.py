"""Timings for multiple systems estimation and sample coverage (prints figures; not a test).

Run: .venv/bin/python benchmarks/capture_mse.py
Timings on a shared machine are pessimistic; compare ratios, not absolute seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

from hiddenpop.capture.lists.coverage import sample_coverage
from hiddenpop.capture.lists.models import mse

DATA = Path(__file__).resolve().parents[2] / "shared" / "capture" / "data"


def timed(label: str, func, *args, **kwargs):
    start, cpu = time.perf_counter(), time.process_time()
    result = func(*args, **kwargs)
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    print(f"{label:<58s} {wall:8.2f} s wall {used:8.2f} s CPU")
    return result


def main() -> None:
    uk = DATA / "mse_UKdat_5.csv"
    timed("UK 5 lists, aic (+ profile CI)", mse, uk, "aic")
    timed("UK 5 lists, stepwise", mse, uk, "stepwise", profile=False)
    timed("UK 5 lists, bic order 2 (1,024 models)", mse, uk, "bic", max_order=2, profile=False)
    timed("UK 5 lists, bic order 3 (6,212 models)", mse, uk, "bic", max_order=3, profile=False)
    timed(
        "UK 5 lists, stepwise, 200 bootstrap + jackknife", mse, uk, "stepwise", bootstrap=200, profile=False
    )
    timed(
        "UK 5 lists, bic order 2, 200 bootstrap, 100 top models",
        mse,
        uk,
        "bic",
        max_order=2,
        bootstrap=200,
        profile=False,
    )
    timed(
        "Kosovo 4 lists, bic (113 models), 1,000 bootstrap",
        mse,
        DATA / "mse_Kosovo.csv",
        "bic",
        bootstrap=1000,
        profile=False,
    )
    timed(
        "CARE1 Congenital 5 lists, coverage, 1,000 bootstrap",
        sample_coverage,
        DATA / "care1_Congenital.csv",
        bootstrap=1000,
    )


if __name__ == "__main__":
    main()
