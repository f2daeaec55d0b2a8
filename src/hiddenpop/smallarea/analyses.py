"""The small-area analyses as every interface runs them: an area table and a spec in, one result out.

* :func:`pool_analysis` -- the partially pooled model (:class:`~hiddenpop.smallarea.pooling.PooledModel`) with
  its grouped cross-validation;
* :func:`extrapolate_analysis` -- the machine-learning extrapolation
  (:func:`~hiddenpop.smallarea.extrapolate.extrapolate`), with the pooled model in its cross-validation table;
* both end in :func:`compare_to_national`: the population-weighted rate the areas imply against the national
  interval, and the calibration the spec asks for.

The result's ``tables`` hold ``areas`` (one row per area, the published table), ``importance`` (per data stream),
``cv`` (per learner) and ``tuning``; ``diagnostics["national"]`` the comparison with the national rate and
``diagnostics["cv"]`` how the folds were grouped. ``hiddenpop smallarea pool|extrapolate`` and a study's
``[analyses.smallarea]`` both call these functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from hiddenpop.errors import ConfigError
from hiddenpop.results import Estimates
from hiddenpop.smallarea.areas import AreaTable
from hiddenpop.smallarea.extrapolate import extrapolate
from hiddenpop.smallarea.national import calibrate, national_consistency
from hiddenpop.smallarea.pooling import PooledModel, cross_validate_pooled
from hiddenpop.smallarea.specs import ExtrapolateSpec, PoolSpec
from hiddenpop.specs import to_dict

__all__ = ["AREA_COLUMNS", "compare_to_national", "extrapolate_analysis", "pool_analysis"]

#: Columns of the published per-area table, in this order, where the method produced them.
AREA_COLUMNS = ("area", "estimate", "lower", "upper", "method", "surveyed", "level", "se", "direct", "direct_se",
                "lower_observed", "upper_observed", "estimate_unbenchmarked", "lower_unbenchmarked",
                "upper_unbenchmarked")
National = tuple[float, float, float]
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """A progress callback that shows nothing."""


def _pooled_model(spec: PoolSpec | ExtrapolateSpec):
    if isinstance(spec, PoolSpec):
        return PooledModel(spatial=spec.spatial, level=spec.level, engine=spec.engine, warmup=spec.warmup,
                           draws=spec.draws, chains=spec.chains, seed=spec.seed,
                           sampling_variance=spec.sampling_variance)
    return PooledModel(level=spec.level, seed=spec.seed)


def pool_analysis(areas: AreaTable, spec: PoolSpec, *, national: National | None = None,
                  progress: Progress = _quiet) -> Estimates:
    """Partially pooled estimates for every area, cross-validated when ``spec.cv``, compared with ``national``."""
    model = _pooled_model(spec)
    progress("fitting the pooled model")
    result = model.fit(areas)
    if spec.cv:
        progress("grouped cross-validation of the pooled model")
        table, grouping = cross_validate_pooled(areas, model, folds=spec.folds, seed=spec.seed)
        result.tables["cv"] = table
        result.diagnostics["cv"] = {"grouping": grouping, "folds": spec.folds}
    result.settings = {**to_dict(spec), **result.settings}
    return compare_to_national(result, areas, national, spec)


def extrapolate_analysis(areas: AreaTable, spec: ExtrapolateSpec, *, national: National | None = None,
                         progress: Progress = _quiet) -> Estimates:
    """LightGBM and ridge compared by grouped CV, the chosen learner's estimates for every area with conformal
    intervals, the pooled model in the CV table when ``spec.compare_pooled``, compared with ``national``."""
    progress("tuning and cross-validating LightGBM and ridge")
    result = extrapolate(areas, model=spec.model, level=spec.level, folds=spec.folds, repeats=spec.repeats,
                         seed=spec.seed)
    if spec.compare_pooled:
        progress("cross-validating the pooled model")
        pooled, _ = cross_validate_pooled(areas, _pooled_model(spec), folds=spec.folds, seed=spec.seed)
        result.tables["cv"] = pd.concat([result.tables["cv"], pooled], ignore_index=True)
    result.diagnostics["cv"] = {"grouping": result.settings["grouping"], "folds": result.settings["folds"]}
    result.settings = {**to_dict(spec), **result.settings}
    return compare_to_national(result, areas, national, spec)


def compare_to_national(result: Estimates, areas: AreaTable, national: National | None,
                        spec: PoolSpec | ExtrapolateSpec) -> Estimates:
    """The rate the areas imply (population-weighted) against the national (estimate, lower, upper) rate, the
    calibration ``spec.benchmark`` asks for, and the published per-area table ``tables["areas"]``."""
    table = result.table.copy()
    population = areas.populations()
    comparison: dict[str, Any] = national_consistency(table["estimate"].to_numpy(), population, national,
                                                      draws=result.extras.get("draws"), level=spec.level)
    if national is not None and not comparison["within_national_interval"]:
        result.warnings.append(
            f"the population-weighted sum of area estimates ({comparison['implied_rate']:.4g}) is outside the "
            f"national interval [{national[1]:.4g}, {national[2]:.4g}]")
    if spec.benchmark != "none":
        if national is None:
            raise ConfigError(f"benchmark={spec.benchmark!r} needs the national estimate (--national "
                              "ESTIMATE,LOWER,UPPER, or [analyses.nsum] in a study)")
        table, adjustment = calibrate(table, population, national[0], method=spec.benchmark)
        comparison["benchmark"] = adjustment
        if "warning" in adjustment:
            result.warnings.append(adjustment["warning"])
    published = table[[c for c in AREA_COLUMNS if c in table.columns]].copy()
    if areas.name is not None:
        published.insert(1, "name", areas.frame[areas.name].to_numpy())
    if areas.region is not None:
        published.insert(2 if areas.name else 1, "region", areas.frame[areas.region].to_numpy())
    result.table = table
    result.tables["areas"] = published
    result.tables.setdefault("importance", pd.DataFrame(columns=["stream", "importance"]))
    result.diagnostics["national"] = comparison
    result.diagnostics.pop("mcmc", None)
    return result
