"""Validation studies: estimator x scenario grids with known truth (bias, RMSE, interval coverage).

A grid file (TOML) names, per family, the estimators, fixed settings, a ``baseline`` scenario and the axes to
``vary``. Each scenario is simulated ``replicates`` times with known truth; every estimator is applied to every
simulated dataset, and per (scenario, estimator) the grid reports

    bias          = mean(N_hat) - N                 relative_bias = bias / N
    rmse          = sqrt(mean((N_hat - N)^2))       relative_rmse = rmse / N
    coverage      = share of replicates whose interval [lower, upper] contains N
    coverage_mcse = sqrt(coverage (1 - coverage) / R)  (Monte Carlo standard error)
    width         = median relative interval width (upper - lower) / N

Families and what "truth" means
    * ``nsum``: surveys from :func:`hiddenpop.simulate.ard.simulate_ard` (log-normal degrees, optional barrier
      effects rho, transmission tau, PSU clustering), estimated with :func:`hiddenpop.nsum.estimate`
      (Killworth MLE, PIMLE, mean of sums) and rescaled-bootstrap percentile intervals. Truth is the hidden
      group's real size N_H; under transmission error the basic estimators target tau N_H, so the grid shows
      the resulting bias rather than hiding it.
    * ``capture``: closed populations with ``occasions`` capture occasions; capture probability
      logit p_ij = logit(p) + e_i + a_j + b * (caught before), with individual heterogeneity e_i ~ N(0, s^2)
      (``heterogeneity`` = s), a linear time trend a_j from -``time_variation`` to +``time_variation`` and a
      behavioural (trap) response b (``behaviour``). Estimated with :func:`hiddenpop.capture.closed.closedp`
      (log-transformed Chao 1987 intervals). Truth is the population size N.

Design of the grid
    ``design = "one_at_a_time"`` (default) runs the baseline and, for every axis in ``vary``, one scenario per
    listed value with the other axes at baseline; ``"factorial"`` runs the full Cartesian product of the ``vary``
    axes. Replicate r of every scenario uses the same seed (common random numbers), drawn with
    :func:`hiddenpop.parallel.spawn_seeds`, so differences between scenarios are not Monte Carlo noise in the
    seeds, and a grid gives byte-identical tables serially or on any Dask cluster.

Failures are data: a replicate whose estimate is not finite, whose fit raised a
:class:`~hiddenpop.errors.HiddenpopError`, or (capture) whose abundance is below the number of units observed is
counted in ``failed`` and left out of bias and RMSE, with a warning; replicates without a finite interval are
counted in ``without_interval`` and left out of coverage; fits that carried a warning are counted in ``warned``. Reference for the metrics: Morris, White & Crowther (2019), "Using simulation studies to evaluate
statistical methods", Statistics in Medicine 38:2074-2102.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop import nsum
from hiddenpop.capture.closed.models import fit_closed, parse_model
from hiddenpop.capture.core.histories import Histories
from hiddenpop.data.io import read_toml
from hiddenpop.errors import ConfigError, HiddenpopError
from hiddenpop.outputs import atomic_write_text, dumps
from hiddenpop.parallel import SERIAL, map_replicates, spawn_seeds
from hiddenpop.results import Estimates
from hiddenpop.simulate.ard import simulate_ard

FAMILIES = ("nsum", "capture")

NSUM_AXES = {
    "n_respondents": int,
    "degree_mu": float,
    "degree_sigma": float,
    "barrier_rho": float,
    "transmission": float,
    "psu_sd": float,
    "per_psu": int,
    "n_strata": int,
}
NSUM_FIXED = {
    "estimators": ["mle", "pimle", "mos"],
    "bootstrap": 200,
    "population": 1_000_000.0,
    "known_sizes": {"k1": 20_000.0, "k2": 50_000.0, "k3": 100_000.0, "k4": 30_000.0, "k5": 8_000.0, "k6": 60_000.0},
    "hidden_size": 5_000.0,
}
NSUM_BASELINE = {
    "n_respondents": 1_000,
    "degree_mu": 5.0,
    "degree_sigma": 0.8,
    "barrier_rho": 0.0,
    "transmission": 1.0,
    "psu_sd": 0.0,
    "per_psu": 10,
    "n_strata": 10,
}
CAPTURE_AXES = {
    "population": int,
    "occasions": int,
    "capture_probability": float,
    "heterogeneity": float,
    "time_variation": float,
    "behaviour": float,
}
CAPTURE_FIXED = {"estimators": ["M0", "Mt", "Mb", "Mh Chao (LB)", "Mth Chao (LB)", "Mh Poisson2"]}
CAPTURE_BASELINE = {
    "population": 1_000,
    "occasions": 5,
    "capture_probability": 0.15,
    "heterogeneity": 0.0,
    "time_variation": 0.0,
    "behaviour": 0.0,
}
FAMILY_SPECS = {
    "nsum": (NSUM_AXES, NSUM_FIXED, NSUM_BASELINE),
    "capture": (CAPTURE_AXES, CAPTURE_FIXED, CAPTURE_BASELINE),
}


@dataclass
class FamilyGrid:
    """The validated grid of one family: fixed settings and the list of scenarios (name, parameters)."""

    family: str
    fixed: dict[str, Any]
    scenarios: list[tuple[str, dict[str, Any]]]


@dataclass
class GridSpec:
    """A validated grid file."""

    seed: int
    replicates: int
    level: float
    families: list[FamilyGrid]
    source: str = "grid"

    @property
    def n_tasks(self) -> int:
        return sum(len(f.scenarios) for f in self.families) * self.replicates


@dataclass
class GridResult:
    """Per-replicate results and the summary table of a validation grid."""

    summary: pd.DataFrame
    replicates: pd.DataFrame
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------- parsing
def _where(source: str, section: str) -> str:
    return f"{source}, [{section}]: "


def _cast(value: Any, kind: type, source: str, section: str, key: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{_where(source, section)}{key} must be a number, got {type(value).__name__}")
    if kind is int:
        if float(value) != int(value):
            raise ConfigError(f"{_where(source, section)}{key} must be a whole number")
        return int(value)
    if not math.isfinite(float(value)):
        raise ConfigError(f"{_where(source, section)}{key} must be finite")
    return float(value)


def _check_scenario(family: str, params: dict[str, Any], fixed: dict[str, Any], source: str, name: str) -> None:
    where = _where(source, f"{family} scenario {name}")
    if family == "nsum":
        n, per_psu, strata = params["n_respondents"], params["per_psu"], params["n_strata"]
        if n < 2 or per_psu < 1 or strata < 1:
            raise ConfigError(f"{where}n_respondents >= 2, per_psu >= 1 and n_strata >= 1 are required")
        if n % per_psu or (n // per_psu) % strata:
            raise ConfigError(
                f"{where}n_respondents ({n}) must be a multiple of per_psu ({per_psu}) and the number of PSUs "
                f"({n / per_psu:g}) a multiple of n_strata ({strata}); change one of them"
            )
        if not 0 <= params["barrier_rho"] < 1:
            raise ConfigError(f"{where}barrier_rho must be in [0, 1) (0 = random mixing)")
        if not 0 < params["transmission"] <= 1:
            raise ConfigError(f"{where}transmission must be in (0, 1]")
        if params["degree_sigma"] <= 0 or params["psu_sd"] < 0:
            raise ConfigError(f"{where}degree_sigma must be > 0 and psu_sd >= 0")
    else:
        if params["population"] < 10 or params["occasions"] < 2:
            raise ConfigError(f"{where}population must be >= 10 and occasions >= 2")
        if not 0 < params["capture_probability"] < 1:
            raise ConfigError(f"{where}capture_probability must be strictly between 0 and 1")
        if params["heterogeneity"] < 0 or params["time_variation"] < 0:
            raise ConfigError(f"{where}heterogeneity and time_variation must be >= 0")


def _family_grid(family: str, table: Mapping[str, Any], source: str) -> FamilyGrid:
    axes, fixed_defaults, baseline_defaults = FAMILY_SPECS[family]
    allowed = set(fixed_defaults) | {"baseline", "vary", "design"}
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{_where(source, family)}unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    fixed = {k: v for k, v in fixed_defaults.items()}
    for key in fixed_defaults:
        if key in table:
            fixed[key] = table[key]
    if not isinstance(fixed["estimators"], list) or not fixed["estimators"]:
        raise ConfigError(f"{_where(source, family)}estimators must be a non-empty list")
    if family == "nsum":
        bad = [m for m in fixed["estimators"] if m not in ("mle", "pimle", "mos")]
        if bad:
            raise ConfigError(f"{_where(source, family)}unknown NSUM estimators {bad}; choose from mle, pimle, mos")
        fixed["bootstrap"] = _cast(fixed["bootstrap"], int, source, family, "bootstrap")
        if fixed["bootstrap"] < 100:
            raise ConfigError(f"{_where(source, family)}bootstrap must be >= 100 replicates for percentile intervals")
        fixed["population"] = _cast(fixed["population"], float, source, family, "population")
        fixed["hidden_size"] = _cast(fixed["hidden_size"], float, source, family, "hidden_size")
        if not isinstance(fixed["known_sizes"], Mapping) or len(fixed["known_sizes"]) < 1:
            raise ConfigError(f"{_where(source, family)}known_sizes must be a table of group = size")
        fixed["known_sizes"] = {
            str(k): _cast(v, float, source, family, f"known_sizes.{k}") for k, v in fixed["known_sizes"].items()
        }
        sizes = [*fixed["known_sizes"].values(), fixed["hidden_size"]]
        if any(not 0 < s < fixed["population"] for s in sizes):
            raise ConfigError(f"{_where(source, family)}every group size must be positive and below population")
    else:
        for name in fixed["estimators"]:
            try:
                parse_model(str(name))
            except HiddenpopError as exc:
                raise ConfigError(f"{_where(source, family)}{exc}") from None
    baseline = dict(baseline_defaults)
    for key, value in (table.get("baseline") or {}).items():
        if key not in axes:
            raise ConfigError(f"{_where(source, family + '.baseline')}unknown setting {key!r}; allowed: {sorted(axes)}")
        baseline[key] = _cast(value, axes[key], source, family + ".baseline", key)
    vary: dict[str, list[Any]] = {}
    for key, values in (table.get("vary") or {}).items():
        if key not in axes:
            raise ConfigError(f"{_where(source, family + '.vary')}unknown axis {key!r}; allowed: {sorted(axes)}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{_where(source, family + '.vary')}{key} must be a non-empty list of values")
        vary[key] = [_cast(v, axes[key], source, family + ".vary", key) for v in values]
    design = table.get("design", "one_at_a_time")
    scenarios: list[tuple[str, dict[str, Any]]] = []
    if design == "one_at_a_time":
        scenarios.append(("baseline", dict(baseline)))
        for key, values in vary.items():
            for value in values:
                if value == baseline[key]:
                    continue
                scenarios.append((f"{key}={value:g}", {**baseline, key: value}))
    elif design == "factorial":
        keys = list(vary)
        for combo in itertools.product(*(vary[k] for k in keys)) if keys else [()]:
            params = {**baseline, **dict(zip(keys, combo, strict=True))}
            name = ",".join(f"{k}={v:g}" for k, v in zip(keys, combo, strict=True)) or "baseline"
            scenarios.append((name, params))
    else:
        raise ConfigError(f"{_where(source, family)}design must be 'one_at_a_time' or 'factorial', got {design!r}")
    for name, params in scenarios:
        _check_scenario(family, params, fixed, source, name)
    return FamilyGrid(family, fixed, scenarios)


def parse_grid(config: Mapping[str, Any], source: str = "grid") -> GridSpec:
    """Validate a grid given as a mapping (the parsed TOML)."""
    unknown = set(config) - {"grid", *FAMILIES}
    if unknown:
        raise ConfigError(f"{source}: unknown sections {sorted(unknown)}; allowed: grid, nsum, capture")
    head = config.get("grid") or {}
    unknown = set(head) - {"seed", "replicates", "level"}
    if unknown:
        raise ConfigError(f"{_where(source, 'grid')}unknown keys {sorted(unknown)}; allowed: seed, replicates, level")
    if "seed" not in head:
        raise ConfigError(f"{_where(source, 'grid')}seed is required (same seed, same tables)")
    seed = _cast(head["seed"], int, source, "grid", "seed")
    if seed < 0:
        raise ConfigError(f"{_where(source, 'grid')}seed must be >= 0")
    replicates = _cast(head.get("replicates", 200), int, source, "grid", "replicates")
    if replicates < 2:
        raise ConfigError(f"{_where(source, 'grid')}replicates must be >= 2")
    level = _cast(head.get("level", 0.95), float, source, "grid", "level")
    if not 0 < level < 1:
        raise ConfigError(f"{_where(source, 'grid')}level must be between 0 and 1")
    families = [_family_grid(f, config[f], source) for f in FAMILIES if f in config]
    if not families:
        raise ConfigError(f"{source}: the grid has no [nsum] or [capture] section; nothing to simulate")
    return GridSpec(seed=seed, replicates=replicates, level=level, families=families, source=source)


def read_grid(path: str | Path) -> GridSpec:
    """Read and validate a grid TOML file (errors name the file and section)."""

    config = read_toml(path, what="grid file", syntax_fix="see examples/grid/default.toml")
    return parse_grid(config, source=Path(path).name)


# ---------------------------------------------------------------------------------------------------- simulators
def simulate_closed_population(
    population: int,
    occasions: int,
    capture_probability: float,
    *,
    heterogeneity: float = 0.0,
    time_variation: float = 0.0,
    behaviour: float = 0.0,
    seed: int,
) -> np.ndarray:
    """Capture histories (observed rows only, 0/1 uint8) of a closed population with known size.

    logit p_ij = logit(p) + e_i + a_j + b * 1[i caught before occasion j], e_i ~ N(0, heterogeneity^2),
    a_j evenly spaced from -time_variation to +time_variation. With all extras zero this is model M0.
    """
    rng = np.random.default_rng(seed)
    base = math.log(capture_probability / (1.0 - capture_probability))
    individual = rng.normal(0.0, heterogeneity, population) if heterogeneity > 0 else np.zeros(population)
    trend = np.linspace(-time_variation, time_variation, occasions) if occasions > 1 else np.zeros(1)
    uniforms = rng.random((population, occasions))
    caught = np.zeros((population, occasions), dtype=np.uint8)
    seen = np.zeros(population, dtype=bool)
    for j in range(occasions):
        eta = base + individual + trend[j] + behaviour * seen
        p = 1.0 / (1.0 + np.exp(-eta))
        hit = uniforms[:, j] < p
        caught[:, j] = hit
        seen |= hit
    return caught[seen]


# ---------------------------------------------------------------------------------------------------- replicates
def _nsum_replicate(task: tuple[dict[str, Any], dict[str, Any], float, int, int]) -> list[dict[str, Any]]:
    """One simulated survey, every NSUM estimator with its bootstrap interval."""

    params, fixed, level, replicate, seed = task
    n_psu = params["n_respondents"] // params["per_psu"]
    try:
        sim = simulate_ard(
            fixed["known_sizes"],
            {"hidden": fixed["hidden_size"]},
            fixed["population"],
            n_respondents=params["n_respondents"],
            degree_mu=params["degree_mu"],
            degree_sigma=params["degree_sigma"],
            barrier_rho=params["barrier_rho"] or None,
            transmission=params["transmission"] if params["transmission"] < 1 else None,
            n_strata=params["n_strata"],
            n_psu=n_psu,
            psu_sd=params["psu_sd"],
            seed=seed,
        )
    except HiddenpopError as exc:
        # e.g. a rare known group that no simulated respondent reports: every estimator fails this replicate
        return [{"replicate": replicate, "estimator": m, "truth": fixed["hidden_size"], "error": type(exc).__name__,
                 "warning": ""} for m in fixed["estimators"]]
    rows = []
    try:
        result = nsum.estimate(
            sim.ard, method=fixed["estimators"], bootstrap=fixed["bootstrap"], seed=seed % (2**32), level=level
        )
        error = ""
    except HiddenpopError as exc:
        result, error = None, type(exc).__name__
    for method in fixed["estimators"]:
        row = {"replicate": replicate, "estimator": method, "truth": fixed["hidden_size"], "error": error,
               "warning": "; ".join(result.warnings) if result is not None else ""}
        if result is not None:
            got = result.get("hidden", method)
            row |= {k: float(got[k]) for k in ("estimate", "lower", "upper")}
        rows.append(row)
    return rows


def _capture_replicate(task: tuple[dict[str, Any], dict[str, Any], float, int, int]) -> list[dict[str, Any]]:
    """One simulated closed population, every requested closed model with its log-transformed interval."""

    params, fixed, level, replicate, seed = task
    caught = simulate_closed_population(
        params["population"],
        params["occasions"],
        params["capture_probability"],
        heterogeneity=params["heterogeneity"],
        time_variation=params["time_variation"],
        behaviour=params["behaviour"],
        seed=seed,
    )
    rows = []
    histories = None
    if len(caught):
        histories = Histories.from_patterns(caught)
    for model in fixed["estimators"]:
        row: dict[str, Any] = {"replicate": replicate, "estimator": model, "truth": float(params["population"])}
        row["observed"] = len(caught)
        if histories is None:
            row["error"] = "no captures"
            rows.append(row)
            continue
        try:
            fit = fit_closed(histories, model)
            lower, upper = fit.log_ci(level) if math.isfinite(fit.stderr) else (math.nan, math.nan)
            row |= {"estimate": float(fit.abundance), "lower": float(lower), "upper": float(upper), "error": "",
                    "warning": "; ".join(fit.warnings)}
            if not fit.abundance >= len(caught):
                # an abundance below the number of distinct units seen is impossible: the fit failed (the model
                # says so in its warning); keep the raw value for inspection, out of the metrics
                row |= {"raw_estimate": row["estimate"], "estimate": math.nan, "lower": math.nan, "upper": math.nan,
                        "error": "estimate below the number observed"}
        except HiddenpopError as exc:
            row["error"] = type(exc).__name__
        rows.append(row)
    return rows


REPLICATE_FUNCTIONS = {"nsum": _nsum_replicate, "capture": _capture_replicate}


def _run_task(task: tuple[str, str, dict[str, Any], dict[str, Any], float, int, int]) -> list[dict[str, Any]]:
    family, scenario, params, fixed, level, replicate, seed = task
    rows = REPLICATE_FUNCTIONS[family]((params, fixed, level, replicate, seed))
    return [{"family": family, "scenario": scenario, "seed": seed, **row} for row in rows]


# ---------------------------------------------------------------------------------------------------- summary
def summarise(replicates: pd.DataFrame, level: float) -> pd.DataFrame:
    """Bias, RMSE, coverage (with Monte Carlo SE) and interval width per family, scenario and estimator."""
    if "warning" not in replicates:
        replicates = replicates.assign(warning="")
    rows = []
    for (family, scenario, estimator), group in replicates.groupby(
        ["family", "scenario", "estimator"], sort=False, dropna=False
    ):
        truth = float(group["truth"].iloc[0])
        estimate = group["estimate"].to_numpy(dtype=float)
        lower = group["lower"].to_numpy(dtype=float)
        upper = group["upper"].to_numpy(dtype=float)
        ok = np.isfinite(estimate)
        with_ci = ok & np.isfinite(lower) & np.isfinite(upper)
        est = estimate[ok]
        n_ok, n_ci = int(ok.sum()), int(with_ci.sum())
        covered = (lower[with_ci] <= truth) & (truth <= upper[with_ci])
        coverage = float(covered.mean()) if n_ci else math.nan
        rows.append(
            {
                "family": family,
                "scenario": scenario,
                "estimator": estimator,
                "replicates": len(group),
                "failed": len(group) - n_ok,
                "warned": int((group["warning"] != "").sum()),
                "without_interval": n_ok - n_ci,
                "truth": truth,
                "mean_estimate": float(est.mean()) if n_ok else math.nan,
                "bias": float(est.mean() - truth) if n_ok else math.nan,
                "relative_bias": float((est.mean() - truth) / truth) if n_ok else math.nan,
                "rmse": float(np.sqrt(np.mean((est - truth) ** 2))) if n_ok else math.nan,
                "relative_rmse": float(np.sqrt(np.mean((est - truth) ** 2)) / truth) if n_ok else math.nan,
                "bias_mcse": float(est.std(ddof=1) / math.sqrt(n_ok)) if n_ok > 1 else math.nan,
                "coverage": coverage,
                "coverage_mcse": float(math.sqrt(coverage * (1 - coverage) / n_ci)) if n_ci else math.nan,
                "relative_width": float(np.median((upper[with_ci] - lower[with_ci]) / truth)) if n_ci else math.nan,
                "level": level,
            }
        )
    return pd.DataFrame(rows)


def run_grid(
    spec: GridSpec,
    *,
    scheduler: str | None = SERIAL,
    progress: Any = None,
    n_workers: int | None = None,
) -> GridResult:
    """Run every (family, scenario, replicate) task through :func:`hiddenpop.parallel.map_replicates`."""
    family_seeds = spawn_seeds(spec.seed, len(FAMILIES))
    tasks = []
    for fam in spec.families:
        replicate_seeds = spawn_seeds(family_seeds[FAMILIES.index(fam.family)], spec.replicates)
        for scenario, params in fam.scenarios:
            for r in range(spec.replicates):
                tasks.append((fam.family, scenario, params, fam.fixed, spec.level, r + 1, replicate_seeds[r]))
    chunks = map_replicates(_run_task, tasks, scheduler=scheduler, progress=progress, n_workers=n_workers)
    records = [row for chunk in chunks for row in chunk]
    replicates = pd.DataFrame.from_records(records)
    for column in ("estimate", "lower", "upper", "observed", "raw_estimate"):
        if column not in replicates:
            replicates[column] = np.nan
    for column in ("error", "warning"):
        replicates[column] = replicates[column].fillna("") if column in replicates else ""
    params_table = pd.DataFrame(
        [
            {"family": fam.family, "scenario": name, **params}
            for fam in spec.families
            for name, params in fam.scenarios
        ]
    )
    for fam in spec.families:
        for key, kind in FAMILY_SPECS[fam.family][0].items():
            if kind is int and key in params_table:
                params_table[key] = params_table[key].astype("Int64")
    summary = summarise(replicates, spec.level).merge(params_table, on=["family", "scenario"], how="left")
    notes = [
        f"{spec.replicates} replicates per scenario; replicate r uses the same seed in every scenario "
        "(common random numbers); seeds from numpy SeedSequence.spawn of the grid seed",
        "coverage counts replicates with a finite interval; failed = replicates without a finite estimate "
        "(errors, or a capture abundance below the number of units observed); warned = fits that carried a warning",
    ]
    warnings = []
    failed = summary[summary["failed"] > 0]
    for row in failed.itertuples(index=False):
        warnings.append(
            f"{row.family} {row.scenario} {row.estimator}: {row.failed} of {row.replicates} replicates gave no "
            "finite estimate and are excluded from bias/RMSE"
        )
    settings = {
        "seed": spec.seed,
        "replicates": spec.replicates,
        "level": spec.level,
        "families": {fam.family: {"fixed": fam.fixed, "scenarios": dict(fam.scenarios)} for fam in spec.families},
    }
    return GridResult(summary=summary, replicates=replicates, settings=settings, notes=notes, warnings=warnings)


# ---------------------------------------------------------------------------------------------------- outputs
def plot_grid(summary: pd.DataFrame, family: str, path: str | Path) -> Path:
    """Dot plots of relative bias and coverage (with a Monte Carlo band) per scenario and estimator (PNG)."""
    # matplotlib is loaded only when this runs: importing it costs start-up time
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib is loaded only when this runs: importing it costs start-up time
    import matplotlib.pyplot as plt

    data = summary[summary["family"] == family]
    scenarios = list(dict.fromkeys(data["scenario"]))
    estimators = list(dict.fromkeys(data["estimator"]))
    height = max(3.0, 0.35 * len(scenarios) * max(1, len(estimators)) / 2 + 1.5)
    fig, axes = plt.subplots(1, 2, figsize=(11, height), sharey=True)
    y = np.arange(len(scenarios))
    offsets = np.linspace(-0.3, 0.3, len(estimators)) if len(estimators) > 1 else np.zeros(1)
    for k, est in enumerate(estimators):
        part = data[data["estimator"] == est].set_index("scenario").reindex(scenarios)
        axes[0].errorbar(part["relative_bias"], y + offsets[k], xerr=1.96 * part["bias_mcse"] / part["truth"],
                         fmt="o", ms=4, label=est)
        axes[1].errorbar(part["coverage"], y + offsets[k], xerr=1.96 * part["coverage_mcse"], fmt="o", ms=4)
    level = float(data["level"].iloc[0]) if len(data) else 0.95
    axes[0].axvline(0.0, color="grey", lw=1)
    axes[1].axvline(level, color="grey", lw=1)
    axes[0].set_yticks(y, scenarios)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("relative bias (mean estimate / truth - 1)")
    axes[1].set_xlabel(f"coverage of the nominal {level:.0%} interval")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{family}: bias and interval coverage with known truth (error bars: 95% Monte Carlo)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def summary_markdown(summary: pd.DataFrame) -> str:
    """The summary as Markdown tables, one per family (relative bias/RMSE/width in %, coverage with MC SE)."""
    parts = []
    for family, data in summary.groupby("family", sort=False):
        parts.append(f"#### {family}\n")
        parts.append("| scenario | estimator | rel. bias | rel. RMSE | coverage (MC SE) | median rel. width | failed | warned |")
        parts.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for row in data.itertuples(index=False):
            def pct(value: float) -> str:
                return "" if not math.isfinite(value) else f"{100 * value:+.1f}%"

            cover = "" if not math.isfinite(row.coverage) else f"{row.coverage:.3f} ({row.coverage_mcse:.3f})"
            width = "" if not math.isfinite(row.relative_width) else f"{100 * row.relative_width:.1f}%"
            rmse = "" if not math.isfinite(row.relative_rmse) else f"{100 * row.relative_rmse:.1f}%"
            parts.append(
                f"| {row.scenario} | {row.estimator} | {pct(row.relative_bias)} | {rmse} | {cover} | {width} | "
                f"{row.failed} | {row.warned} |"
            )
        parts.append("")
    return "\n".join(parts)


def write_grid(result: GridResult, out_dir: str | Path, *, provenance: dict[str, Any] | None = None) -> list[Path]:
    """Write ``summary.csv``, ``summary.json``, ``summary.md``, ``replicates.csv`` and one ``<family>.png`` each."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    atomic_write_text(out / "summary.csv", result.summary.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "replicates.csv", result.replicates.to_csv(index=False, lineterminator="\n"))
    payload = {
        "summary": result.summary.to_dict(orient="records"),
        "settings": result.settings,
        "notes": result.notes,
        "warnings": result.warnings,
        "provenance": provenance or {},
    }
    atomic_write_text(out / "summary.json", dumps(payload))
    atomic_write_text(out / "summary.md", summary_markdown(result.summary))
    written += [out / "summary.csv", out / "replicates.csv", out / "summary.json", out / "summary.md"]
    for family in dict.fromkeys(result.summary["family"]):
        written.append(plot_grid(result.summary, family, out / f"{family}.png"))
    return written


def grid_estimates(result: GridResult, spec: GridSpec) -> Estimates:
    """The grid as a result of the one output shape: no estimate rows, the summary as ``tables["summary"]``."""
    return Estimates.tables_only({"summary": result.summary}, seed=spec.seed,
                                 settings={"replicates": spec.replicates}, warnings=list(result.warnings),
                                 notes=list(result.notes))


def run_grid_file(path: str | Path, **kwargs: Any) -> GridResult:
    """Read a grid file and run it (convenience for the CLI and tests)."""
    return run_grid(read_grid(path), **kwargs)


__all__ = [
    "GridResult",
    "GridSpec",
    "grid_estimates",
    "parse_grid",
    "plot_grid",
    "read_grid",
    "run_grid",
    "run_grid_file",
    "simulate_closed_population",
    "summarise",
    "summary_markdown",
    "write_grid",
]
