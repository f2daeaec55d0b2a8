"""Study-level validation: the whole study pipeline on synthetic countries with known truth.

For each scenario of :data:`hiddenpop.simulate.specs.STUDY_SCENARIOS` and each of ``countries`` synthetic
countries, :func:`simulate_study`

1. draws the country's true transmission rate from the scenario's ``tau_truth``;
2. writes the demo's synthetic study for that country (:func:`hiddenpop.study.demo.write_demo_study`, with the
   scenario's barrier effects and network spread), whose study file declares the scenario's ``tau_prior`` in
   ``[visibility.transmission]``;
3. loads and checks the study file and runs the design-based analysis through the study pipeline
   (:func:`hiddenpop.study.runner.execute`: the same steps and headline rules as ``hiddenpop run``);
4. compares the headline victims, traffickers and victims per trafficker with the truth the data were drawn from.

The summary per scenario and quantity gives the mean relative error (bias), its Monte Carlo standard error, the
coverage of the intervals and its Monte Carlo standard error sqrt(c (1 - c) / countries), over the countries whose
study ran; ``stopped`` counts those whose study file could not be honoured (a casework calibration that would put
tau at 1 or above stops a run, as it would stop a real one). Countries are
independent tasks with seeds spawned from the master seed, so results do not depend on the scheduler.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.errors import ConfigError
from hiddenpop.nsum.adjust import parse_distribution
from hiddenpop.parallel import map_replicates
from hiddenpop.results import Estimates
from hiddenpop.simulate.specs import STUDY_SCENARIOS, StudySimulationSpec
from hiddenpop.specs import MAX_SEED, to_dict
from hiddenpop.study.demo import PROFILES, World, write_demo_study
from hiddenpop.study.runner import execute
from hiddenpop.study.schema import load_study
from hiddenpop.study.steps import nsum_step

__all__ = ["QUANTITIES", "simulate_study", "summarise_countries"]

#: The headline quantities checked against the truth (names of the demo study's combinations and ratio).
QUANTITIES = ("victims", "traffickers", "victims_per_trafficker")


def _country(task: tuple[str, int, str, int], seed: int) -> list[dict[str, Any]]:
    scenario, country, profile, bootstrap = task
    setting = STUDY_SCENARIOS[scenario]
    rng = np.random.default_rng(seed)
    tau = float(np.clip(parse_distribution(setting["tau_truth"]).draw(rng, 1)[0], 1e-6, 1.0))
    world = World(transmission=tau, barrier=float(setting.get("barrier", 0.0)),
                  degree_sigma=float(setting.get("degree_sigma", World.degree_sigma)),
                  casework_rate=float(setting.get("casework_rate", World.casework_rate)),
                  tau_prior=str(setting["tau_prior"]), tau_source=f"scenario {scenario}")
    size = replace(PROFILES[profile], bootstrap=bootstrap,
                   respondents_per_area=int(setting.get("respondents_per_area",
                                                        PROFILES[profile].respondents_per_area)))
    with tempfile.TemporaryDirectory(prefix="hiddenpop-validation-") as folder:
        path = write_demo_study(Path(folder) / "study", seed=seed % (MAX_SEED + 1), profile=size, world=world)
        truth = json.loads((path.parent / "truth.json").read_text())
        try:
            _context, published, _timings = execute(load_study(path), steps=[("nsum", nsum_step)])
        except ConfigError:
            # a study that stops here (e.g. a casework calibration putting tau at 1 or above) publishes nothing
            return [{"scenario": scenario, "country": country, "tau_true": tau, "quantity": quantity,
                     "truth": float(truth[quantity]), "estimate": np.nan, "lower": np.nan, "upper": np.nan,
                     "covered": False, "relative_error": np.nan, "failed": True} for quantity in QUANTITIES]
    headline = published.tables["headline"].set_index("quantity")
    rows = []
    for quantity in QUANTITIES:
        row = headline.loc[quantity]
        true = float(truth[quantity])
        rows.append({"scenario": scenario, "country": country, "tau_true": tau, "quantity": quantity,
                     "truth": true, "estimate": float(row["estimate"]), "lower": float(row["lower"]),
                     "upper": float(row["upper"]), "covered": bool(row["lower"] <= true <= row["upper"]),
                     "relative_error": float(row["estimate"]) / true - 1.0, "failed": False})
    return rows


def summarise_countries(countries: pd.DataFrame) -> pd.DataFrame:
    """Bias and coverage per scenario and quantity, each with its Monte Carlo standard error."""
    rows = []
    for (scenario, quantity), everything in countries.groupby(["scenario", "quantity"], sort=False):
        part = everything[~everything["failed"]]
        n = len(part)
        coverage = float(part["covered"].mean()) if n else np.nan
        errors = part["relative_error"].to_numpy()
        rows.append({"scenario": scenario, "quantity": quantity, "countries": n,
                     "stopped": int(everything["failed"].sum()),
                     "relative_bias": float(errors.mean()),
                     "bias_mcse": float(errors.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan,
                     "coverage": coverage,
                     "coverage_mcse": float(np.sqrt(coverage * (1 - coverage) / n)) if n else np.nan,
                     "median_relative_width": float(((part["upper"] - part["lower"]) / part["truth"]).median()),
                     "what": STUDY_SCENARIOS[scenario]["what"]})
    return pd.DataFrame(rows)


def simulate_study(spec: StudySimulationSpec, *, scheduler: str = "serial",
                   progress: Callable[[int, int], None] | None = None) -> Estimates:
    """Run the validation grid; ``tables["countries"]`` holds every country's headline against its truth and
    ``tables["summary"]`` (also the main table) the bias and coverage per scenario and quantity."""
    tasks = [(scenario, country, spec.profile, spec.bootstrap) for scenario in spec.scenario
             for country in range(spec.countries)]
    results = map_replicates(_country, tasks, seed=spec.seed, scheduler=scheduler, progress=progress)
    countries = pd.DataFrame([row for rows in results for row in rows])
    summary = summarise_countries(countries)
    table = summary.rename(columns={"relative_bias": "estimate", "bias_mcse": "se"})
    table.insert(2, "method", "design-based NSUM through the study pipeline")
    return Estimates(table=table, settings=to_dict(spec), seed=spec.seed,
                     tables={"countries": countries, "summary": summary},
                     notes=["estimate is the mean relative error of the headline point estimate (bias), se its "
                            "Monte Carlo standard error; coverage is the share of intervals containing the truth"])
