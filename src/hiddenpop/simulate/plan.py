"""Survey-size planning for network scale-up by simulation (``hiddenpop plan``).

Question answered: how many respondents does an ARD survey need so that the scale-up estimate of a hidden group
of assumed size N_H reaches a target precision, given the design (respondents per PSU, strata, cluster
heterogeneity) and assumed departures from random mixing (barrier effects rho) and imperfect transmission tau?

Method
    For every candidate size n, ``replicates`` surveys are drawn with :func:`hiddenpop.simulate.ard.simulate_ard`
    under the assumptions, and the Killworth MLE N_hat = N * sum w y_iH / sum w d_i is computed with a
    rescaled-bootstrap percentile interval (:func:`hiddenpop.nsum.estimate`). When ``adjust_transmission`` is on
    (default) the assumed tau is applied as the generalized-NSUM factor 1 / tau (Feehan & Salganik 2016), as a
    study would do; off, the estimate keeps its bias -(1 - tau) N_H, which no sample size removes.
    Precision is the median relative half-width of the interval, (upper - lower) / (2 N_H); the grid also reports
    the relative RMSE and coverage. The recommendation is the smallest candidate meeting the target, and an
    interpolated size from half-width ~ c * n^b between the two candidates that bracket the target (log-log
    linear; b is about -1/2 when precision is driven by variance), rounded up to whole PSUs and strata.

Assumptions and when it fails
    The answer is only as good as the assumed degree distribution (log-normal mu, sigma), hidden size, barrier
    dispersion and transmission rate; it ignores non-response, recall error on known groups and uncertainty in
    the adjustment factors themselves. If the assumed bias exceeds the target (no adjustment), no n helps and the
    result says so. Monte Carlo error: with R replicates the median half-width has relative error of order
    1 / sqrt(R); use R >= 100 for decisions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop import nsum
from hiddenpop.errors import ConfigError, HiddenpopError
from hiddenpop.parallel import SERIAL, map_replicates, spawn_seeds
from hiddenpop.results import Estimates
from hiddenpop.simulate.ard import NATIONAL_POPULATION, OCCUPATION_SIZES, simulate_ard
from hiddenpop.simulate.specs import PlanSpec
from hiddenpop.specs import to_dict


def _plan_replicate(task: tuple[dict[str, Any], int, int]) -> dict[str, Any]:
    settings, n, seed = task
    failed = {"n_respondents": n, "estimate": math.nan, "lower": math.nan, "upper": math.nan}
    try:
        return _plan_estimate(settings, n, seed)
    except HiddenpopError:
        # e.g. a rare known group that no simulated respondent reports: counted as a failed replicate
        return failed


def _plan_estimate(settings: dict[str, Any], n: int, seed: int) -> dict[str, Any]:
    sim = simulate_ard(
        settings["known_sizes"],
        {"hidden": settings["hidden_size"]},
        settings["population"],
        n_respondents=n,
        degree_mu=settings["degree_mu"],
        degree_sigma=settings["degree_sigma"],
        barrier_rho=settings["barrier_rho"] or None,
        transmission=settings["transmission"] if settings["transmission"] < 1 else None,
        n_strata=settings["n_strata"],
        n_psu=n // settings["per_psu"],
        psu_sd=settings["psu_sd"],
        seed=seed,
    )
    adjust = {"transmission_rate": settings["transmission"]} if settings["adjust_transmission"] else None
    result = nsum.estimate(
        sim.ard, method="mle", bootstrap=settings["bootstrap"], seed=seed % (2**32), adjustments=adjust,
        level=settings["level"],
    )
    row = result.get("hidden", "mle")
    return {"n_respondents": n, **{k: float(row[k]) for k in ("estimate", "lower", "upper")}}


def _round_up(n: float, step: int) -> int:
    return int(math.ceil(n / step) * step)


def plan_survey_size(
    *,
    target: float,
    hidden_size: float,
    population: float,
    known_sizes: Mapping[str, float],
    sizes: Sequence[int] = (500, 1000, 2000, 4000),
    barrier_rho: float = 0.0,
    transmission: float = 1.0,
    adjust_transmission: bool = True,
    degree_mu: float = 5.0,
    degree_sigma: float = 0.8,
    per_psu: int = 10,
    n_strata: int = 10,
    psu_sd: float = 0.0,
    replicates: int = 100,
    bootstrap: int = 200,
    level: float = 0.95,
    seed: int,
    scheduler: str | None = SERIAL,
) -> Estimates:
    """Recommend a survey size for a target relative precision of the hidden-group estimate (see module doc).

    Returns :class:`Estimates` whose ``.table`` has one row per candidate size (quantity ``"relative_half_width"``,
    method ``"mle"``, estimate = median relative half-width) with columns ``relative_bias``, ``relative_rmse``,
    ``coverage`` and ``meets_target``; ``.diagnostics`` holds ``recommended_n`` (smallest candidate meeting the
    target, or ``None``) and ``interpolated_n``.
    """
    if not 0 < target < 1:
        raise ConfigError("target must be a relative half-width between 0 and 1 (e.g. 0.2 for +/-20%)")
    if not 0 < hidden_size < population:
        raise ConfigError("hidden size must be positive and below the population")
    if not 0 <= barrier_rho < 1:
        raise ConfigError("barrier rho must be in [0, 1) (0 = random mixing)")
    if not 0 < transmission <= 1:
        raise ConfigError("transmission must be in (0, 1]")
    if replicates < 10:
        raise ConfigError("use at least 10 replicates per size (100 or more for a decision)")
    sizes = sorted({int(s) for s in sizes})
    if not sizes:
        raise ConfigError("give at least one candidate survey size")
    step = per_psu * n_strata
    for n in sizes:
        if n < step or n % step:
            raise ConfigError(
                f"survey size {n} must be a positive multiple of per-PSU interviews x strata = {step} "
                "(equal allocation); choose sizes such as " + ", ".join(str(step * k) for k in (5, 10, 20))
            )
    settings = {
        "known_sizes": {str(k): float(v) for k, v in known_sizes.items()},
        "hidden_size": float(hidden_size),
        "population": float(population),
        "barrier_rho": float(barrier_rho),
        "transmission": float(transmission),
        "adjust_transmission": bool(adjust_transmission),
        "degree_mu": float(degree_mu),
        "degree_sigma": float(degree_sigma),
        "per_psu": int(per_psu),
        "n_strata": int(n_strata),
        "psu_sd": float(psu_sd),
        "bootstrap": int(bootstrap),
        "level": float(level),
    }
    seeds = spawn_seeds(seed, replicates)
    tasks = [(settings, n, seeds[r]) for n in sizes for r in range(replicates)]
    records = pd.DataFrame(map_replicates(_plan_replicate, tasks, scheduler=scheduler))
    rows = []
    warnings: list[str] = []
    for n, group in records.groupby("n_respondents", sort=True):
        est = group["estimate"].to_numpy(float)
        ok = np.isfinite(est) & np.isfinite(group["lower"].to_numpy(float)) & np.isfinite(group["upper"].to_numpy(float))
        if (~ok).any():
            warnings.append(f"n={n}: {int((~ok).sum())} of {len(group)} replicates gave no finite estimate; excluded")
        g = group[ok]
        half = (g["upper"] - g["lower"]).to_numpy(float) / (2.0 * hidden_size)
        err = g["estimate"].to_numpy(float) - hidden_size
        covered = ((g["lower"] <= hidden_size) & (g["upper"] >= hidden_size)).to_numpy()
        median_half = float(np.median(half)) if len(half) else math.nan
        rows.append(
            {
                "quantity": "relative_half_width",
                "method": "mle",
                "estimate": median_half,
                "se": math.nan,
                "lower": math.nan,
                "upper": math.nan,
                "level": level,
                "n_respondents": int(n),
                "replicates": int(ok.sum()),
                "relative_bias": float(err.mean() / hidden_size) if len(err) else math.nan,
                "relative_rmse": float(np.sqrt(np.mean(err**2)) / hidden_size) if len(err) else math.nan,
                "coverage": float(covered.mean()) if len(covered) else math.nan,
                "meets_target": bool(median_half <= target),
            }
        )
    table_rows = pd.DataFrame(rows)
    meeting = table_rows.loc[table_rows["meets_target"], "n_respondents"]
    recommended = int(meeting.min()) if len(meeting) else None
    interpolated = None
    slope = math.nan
    good = table_rows[np.isfinite(table_rows["estimate"]) & (table_rows["estimate"] > 0)].reset_index(drop=True)
    if len(good) >= 2:
        # log-log interpolation between the bracketing candidates (extrapolation from the nearest two otherwise)
        meets = np.flatnonzero(good["estimate"].to_numpy() <= target)
        first = int(meets[0]) if len(meets) else len(good)
        pair = good.iloc[[first - 1, first]] if 0 < first < len(good) else (good.iloc[:2] if first == 0
                                                                             else good.iloc[-2:])
        log_n = np.log(pair["n_respondents"].to_numpy(float))
        log_hw = np.log(pair["estimate"].to_numpy(float))
        slope = float((log_hw[1] - log_hw[0]) / (log_n[1] - log_n[0]))
        if slope < 0:
            interpolated = _round_up(math.exp(log_n[0] + (math.log(target) - log_hw[0]) / slope), step)
    notes = [
        f"precision = median relative half-width of the {level:.0%} rescaled-bootstrap interval over "
        f"{replicates} simulated surveys per size",
        f"interpolated size: log half-width linear in log n between the two candidates that bracket the target "
        f"(slope {slope:.3f}; about -0.5 when variance dominates), rounded up to a multiple of {step}",
    ]
    if adjust_transmission and transmission < 1:
        notes.append(f"estimates divided by the assumed transmission rate {transmission:g} (generalized NSUM)")
    if not adjust_transmission and transmission < 1:
        warnings.append(
            f"transmission {transmission:g} is not adjusted for: the estimate is biased by about "
            f"{transmission - 1:+.0%} whatever the sample size"
        )
    if recommended is None:
        warnings.append(
            f"no candidate size reaches a relative half-width of {target:g}; the largest ({sizes[-1]}) gives "
            f"{table_rows['estimate'].iloc[-1]:.3f}; add larger sizes"
        )
    return Estimates.from_rows(
        rows,
        settings={**settings, "target": target, "sizes": sizes, "replicates": replicates},
        seed=seed,
        warnings=warnings,
        notes=notes,
        diagnostics={"recommended_n": recommended, "interpolated_n": interpolated, "slope": slope},
    )


def plan_analysis(spec: PlanSpec, *, known_sizes: Mapping[str, float] | None = None,
                  scheduler: str | None = SERIAL) -> Estimates:
    """:func:`plan_survey_size` with a spec's options (known groups and population default to the synthetic
    national survey's); the recommendation is the first note."""

    result = plan_survey_size(
        target=spec.target, hidden_size=spec.hidden_size,
        population=spec.population if spec.population is not None else NATIONAL_POPULATION,
        known_sizes=dict(known_sizes) if known_sizes is not None else dict(OCCUPATION_SIZES),
        sizes=list(spec.sizes), barrier_rho=spec.barrier, transmission=spec.transmission,
        adjust_transmission=spec.adjust_transmission, degree_mu=spec.degree_mu, degree_sigma=spec.degree_sigma,
        per_psu=spec.per_psu, n_strata=spec.strata, psu_sd=spec.psu_sd, replicates=spec.replicates,
        bootstrap=spec.bootstrap, seed=spec.seed, scheduler=scheduler)
    recommended = result.diagnostics["recommended_n"]
    shown = recommended if recommended is not None else "none of the candidates"
    result.notes.insert(0, f"recommended survey size: {shown}; interpolated: {result.diagnostics['interpolated_n']}")
    result.settings = {**to_dict(spec), **result.settings}
    return result
