"""The options of survey planning by simulation, declared once as a spec (see :mod:`hiddenpop.specs`).

``hiddenpop plan`` is built from it; :func:`hiddenpop.simulate.plan.plan_analysis` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hiddenpop.specs import REQUIRED, opt, seed_option

__all__ = ["STUDY_SCENARIOS", "PlanSpec", "StudySimulationSpec"]

#: The scenarios of ``hiddenpop simulate study``: how each synthetic country is drawn and what its study file
#: declares. ``tau_truth`` is the distribution each country's true transmission rate is drawn from and
#: ``tau_prior`` what the study declares; the model is right when they agree.
STUDY_SCENARIOS: dict[str, dict[str, object]] = {
    "right": {"tau_truth": "beta(17, 3)", "tau_prior": "beta(17, 3)",
              "what": "the declared Beta(17, 3) is how the true rate varies between countries"},
    "right_barrier": {"tau_truth": "beta(17, 3)", "tau_prior": "beta(17, 3)", "barrier": 1.0,
                      "what": "as right, with strong barrier effects (Gamma exposure, variance 1)"},
    "right_spread": {"tau_truth": "beta(17, 3)", "tau_prior": "beta(17, 3)", "degree_sigma": 0.9,
                     "what": "as right, with a wider spread of network sizes (log sd 0.9 instead of 0.55)"},
    "right_low_tau": {"tau_truth": "beta(6, 4)", "tau_prior": "beta(6, 4)",
                      "what": "a low, uncertain reporting rate (mean 0.6), declared as such"},
    "small_sample": {"tau_truth": "beta(17, 3)", "tau_prior": "beta(17, 3)", "respondents_per_area": 8,
                     "what": "as right, with a third of the interviews (8 per area)"},
    "casework_right": {"tau_truth": "beta(17, 3)", "tau_prior": "casework(0.005)",
                       "what": "tau calibrated against casework that found 0.5% of members, as the study assumes"},
    "casework_overstated": {"tau_truth": "beta(17, 3)", "tau_prior": "casework(0.005)", "casework_rate": 0.0045,
                            "what": "the study assumes casework found 0.5% of members; it found 0.45%"},
    "prior_high": {"tau_truth": "beta(17, 3)", "tau_prior": "beta(38, 2)",
                   "what": "the declared prior is centred 0.1 too high (mean 0.95 against 0.85)"},
    "tau_ignored": {"tau_truth": "beta(17, 3)", "tau_prior": "1",
                    "what": "the study declares no under-reporting (tau = 1) while people report 85%"},
}
SCENARIO_NAMES = tuple(STUDY_SCENARIOS)


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


@dataclass(frozen=True, kw_only=True)
class StudySimulationSpec:
    """Validate the whole study pipeline on synthetic countries with known truth."""

    scenario: tuple[Literal[SCENARIO_NAMES], ...] = opt(SCENARIO_NAMES, "scenarios to run (see docs/validation.md)")
    countries: int = opt(200, "synthetic countries per scenario (about 100 detect coverage below 85%)", min=10,
                         max=100_000)
    profile: Literal["test", "quick", "full"] = opt("test", "size of each country's survey: test (480 respondents), "
                                                            "quick (720) or full (3,600, the demo's)")
    bootstrap: int = opt(200, "rescaled-bootstrap replicates per country (95% intervals)", min=100, max=100_000)
    seed: int = seed_option()
