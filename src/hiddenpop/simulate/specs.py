"""The options of survey planning by simulation, declared once as a spec (see :mod:`hiddenpop.specs`).

``hiddenpop plan`` is built from it; :func:`hiddenpop.simulate.plan.plan_analysis` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hiddenpop.specs import REQUIRED, opt, seed_option

__all__ = ["PlanSpec"]


@dataclass(frozen=True, kw_only=True)
class PlanSpec:
    """Recommend an NSUM survey size for a target precision under assumed barrier and transmission effects."""

    target: float = opt(REQUIRED, "relative half-width of the interval, e.g. 0.2", min=0, inclusive=False)
    hidden_size: float = opt(REQUIRED, "assumed size of the hidden group", min=0, inclusive=False)
    population: float | None = opt(None, "population (default: the synthetic national population)", min=0,
                                   inclusive=False)
    sizes: tuple[int, ...] = opt((600, 1200, 2400, 4800), "candidate survey sizes", min=10)
    barrier: float = opt(0.0, "barrier dispersion rho, from 0 (none) to below 1", min=0, max=0.999)
    transmission: float = opt(1.0, "transmission rate tau, above 0 up to 1", min=0.001, max=1)
    adjust_transmission: bool = opt(True, "divide the estimates by the assumed transmission rate")
    degree_mu: float = opt(5.0, "mean of the log degrees")
    degree_sigma: float = opt(0.8, "standard deviation of the log degrees", min=0, inclusive=False)
    per_psu: int = opt(24, "interviews per PSU", min=1)
    strata: int = opt(5, "strata", min=1)
    psu_sd: float = opt(0.3, "PSU heterogeneity of hidden-group exposure", min=0)
    replicates: int = opt(100, "simulated surveys per candidate size (100 or more for a decision)", min=10,
                          max=100_000)
    bootstrap: int = opt(200, "rescaled-bootstrap replicates per simulated survey", min=0, max=100_000)
    seed: int = seed_option()
