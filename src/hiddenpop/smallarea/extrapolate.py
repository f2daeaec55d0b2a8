"""Machine-learning extrapolation from secondary data streams, with conformal intervals and stream importance.

Two learners predict the log direct prevalence from the covariates of the surveyed areas:

* **LightGBM** gradient-boosted trees (shallow trees, shrinkage, row and column subsampling), and
* a **ridge** regression on standardised covariates (the regularised linear baseline).

Both are tuned on a small grid by *grouped* cross-validation: folds never split a group (the parent region, or
another grouping the user passes), so the reported error is the error of predicting areas in a region the model
has not seen, which is what extrapolating to unsurveyed municipalities asks of it. Tuning and the comparison
share the folds, so the table is slightly optimistic for the tuned learners (the grids are small).

Intervals
---------
*For a new direct estimate*: cross-conformal ("CV+", Barber et al. 2021) intervals from MAPIE's
``CrossConformalRegressor`` with the same grouped folds; they cover a held-out *direct estimate* with the stated
probability (up to the CV+ finite-sample slack) and are reported as ``lower_observed``/``upper_observed``.

*For the true rate* (when standard errors of the targets are given): a direct estimate is the truth plus
sampling noise, ``log yhat_a = theta_a + e_a`` with ``sd(e_a) = s_a``, so intervals calibrated on direct
estimates are too wide for ``theta``. With out-of-fold residuals ``r_a = log yhat_a - f_-k(x_a)`` the model-error
variance ``sigma_m^2`` solves ``sum_a r_a^2 / (sigma_m^2 + s_a^2) = n`` (a moment equation as in Fay-Herriot);
the studentised scores ``|r_a| / sqrt(sigma_m^2 + s_a^2)`` are conformalised (their ``ceil((n+1) level)``-th
smallest value ``q``), and the interval for ``theta`` at any area is ``f(x) +- q sigma_m``. This keeps the
distribution-free calibration of the score's scale while removing the known sampling noise; it assumes the
model error and the sampling error have the same shape up to scale (exact for normal errors).

For surveyed areas the reported estimate is the composite ``c_a = gamma_a log yhat_a + (1 - gamma_a) f(x_a)``
with ``gamma_a = sigma_m^2 / (sigma_m^2 + s_a^2)`` (the Fay-Herriot weight with the ML prediction as the
synthetic part) and a normal interval with variance ``gamma_a s_a^2``. Rates are log-normal means:
``exp(f + sigma_m^2 / 2)`` (unsurveyed) and ``exp(c_a + gamma_a s_a^2 / 2)`` (surveyed), so that sums over areas
are not biased down by the back-transform; without standard errors, Duan's smearing factor ``mean exp(r_a)``.

Importance
----------
*Grouped permutation importance* per data stream: in each held-out fold, all columns of one stream are permuted
together (the same row shuffle), and the increase in mean squared error (log scale) is averaged over folds and
repeats. Permuting a whole stream asks "how much worse are predictions without this source of data?", which is
the question a programme deciding which data to keep buying needs. Correlated streams share credit: if two
streams carry the same signal, each looks less important than the pair. *SHAP* summaries come from LightGBM's
exact TreeSHAP contributions (``pred_contrib=True``), summed over a stream's columns: the mean absolute
contribution says how much the stream moves the fitted predictions (in-sample, not predictive value).

References: Barber, Candes, Ramdas & Tibshirani (2021) Ann. Statist. 49 (jackknife+/CV+); Fay & Herriot (1979);
Lundberg et al. (2020) Nat. Mach. Intell. 2 (TreeSHAP); Roberts et al. (2017) Ecography 40 (spatial CV).

Fails when unsurveyed areas lie outside the covariate range of the surveyed ones (trees extrapolate flat), when
there are too few groups for grouped folds (at least 3 needed), and when the targets' noise dwarfs the signal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.brent import find_root
from hiddenpop.distributions import normal_quantile
from hiddenpop.errors import ConfigError
from hiddenpop.results import Estimates
from hiddenpop.smallarea.areas import AreaTable
from hiddenpop.smallarea.specs import LEARNERS
from hiddenpop.smallarea.targets import grouped_folds, log_targets

LIGHTGBM_GRID = [
    {"num_leaves": leaves, "min_child_samples": child, "n_estimators": trees}
    for leaves in (4, 8)
    for child in (8, 16)
    for trees in (150, 400)
]
RIDGE_ALPHAS = tuple(np.logspace(-1, 3.5, 10))
MODELS = LEARNERS


def _lightgbm(params: dict[str, Any], seed: int):
    # LightGBM is loaded only when this runs: importing it costs start-up time
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        learning_rate=0.03,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.7,
        reg_lambda=1.0,
        min_split_gain=0.0,
        n_jobs=1,
        verbose=-1,
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        **params,
    )


def _ridge(alpha: float):
    # scikit-learn is loaded only when this runs: importing it costs start-up time
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


def _candidates(model: str, seed: int) -> list[tuple[dict[str, Any], Any]]:
    if model == "lightgbm":
        return [(params, _lightgbm(params, seed)) for params in LIGHTGBM_GRID]
    return [({"alpha": float(a)}, _ridge(float(a))) for a in RIDGE_ALPHAS]


def _oof(estimator, x: np.ndarray, y: np.ndarray, splits) -> tuple[np.ndarray, list]:
    # scikit-learn is loaded only when this runs: importing it costs start-up time
    from sklearn.base import clone

    prediction = np.empty_like(y)
    fitted = []
    for train, test in splits:
        model = clone(estimator).fit(x[train], y[train])
        prediction[test] = model.predict(x[test])
        fitted.append(model)
    return prediction, fitted


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) level)``-th smallest score (infinite when n is too small for the level)."""
    n = scores.size
    k = math.ceil((n + 1) * level)
    return float(np.inf) if k > n else float(np.sort(scores)[k - 1])


def model_error_variance(residuals: np.ndarray, sampling_var: np.ndarray) -> float:
    """``sigma_m^2`` solving ``sum r^2 / (sigma_m^2 + s^2) = n`` (0 when the residuals are all noise)."""

    n = residuals.size

    def excess(v: float) -> float:
        return float(np.sum(residuals**2 / (v + sampling_var)) - n)

    if excess(0.0) <= 0:
        return 0.0
    upper = float(np.mean(residuals**2)) + 1e-12
    while excess(upper) > 0:
        upper *= 2
    return find_root(excess, 0.0, upper)


@dataclass
class LearnerResult:
    name: str
    params: dict[str, Any]
    estimator: Any
    oof: np.ndarray
    fold_models: list
    tuning: pd.DataFrame


def tune(model: str, x: np.ndarray, y: np.ndarray, splits, seed: int) -> LearnerResult:
    """Pick the grid point with the lowest grouped-CV mean squared error."""
    rows, best = [], None
    for params, estimator in _candidates(model, seed):
        prediction, fitted = _oof(estimator, x, y, splits)
        mse = float(np.mean((prediction - y) ** 2))
        rows.append({"model": model, **{k: v for k, v in params.items()}, "cv_rmse_log": math.sqrt(mse)})
        if best is None or mse < best[0]:
            best = (mse, params, estimator, prediction, fitted)
    _, params, estimator, prediction, fitted = best
    return LearnerResult(model, params, estimator, prediction, fitted, pd.DataFrame(rows))


def permutation_importance_by_stream(
    learner: LearnerResult, x: np.ndarray, y: np.ndarray, splits, streams: dict[str, list[int]], repeats: int,
    seed: int,
) -> pd.DataFrame:
    """Out-of-fold grouped permutation importance (increase in MSE, log scale) for each stream."""
    rng = np.random.default_rng(seed)
    base = float(np.mean((learner.oof - y) ** 2))
    increases = {s: np.zeros(repeats) for s in streams}
    for (_, test), model in zip(splits, learner.fold_models, strict=True):
        x_test = x[test]
        for r in range(repeats):
            order = rng.permutation(test.size)
            for stream, index in streams.items():
                shuffled = x_test.copy()
                shuffled[:, index] = x_test[order][:, index]
                err = model.predict(shuffled) - y[test]
                increases[stream][r] += float(np.sum(err**2))
    rows = []
    for stream, totals in increases.items():
        gain = totals / y.size - base
        rows.append({"stream": stream, "importance": float(gain.mean()), "importance_sd": float(gain.std(ddof=1))})
    table = pd.DataFrame(rows).sort_values("importance", ascending=False).reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    table["model"] = learner.name
    return table


def shap_by_stream(booster_model, x_all: np.ndarray, streams: dict[str, list[int]]) -> dict[str, float]:
    """Mean absolute TreeSHAP contribution of each stream (columns summed), over all areas."""
    contrib = np.asarray(booster_model.predict(x_all, pred_contrib=True))[:, :-1]
    return {s: float(np.mean(np.abs(contrib[:, index].sum(axis=1)))) for s, index in streams.items()}


def extrapolate(
    areas: AreaTable,
    *,
    model: str = "best",
    level: float = 0.9,
    folds: int = 5,
    repeats: int = 10,
    seed: int = 0,
) -> Estimates:
    """Tune and compare LightGBM and ridge by grouped CV; predict every area with intervals; rank the streams.

    ``model="best"`` (default) reports the learner with the lower grouped-CV RMSE on the log scale.

    Returns ``Estimates`` with one row per area for the chosen ``model`` (``quantity="prevalence"``, column
    ``area``, ``surveyed``, ``lower_observed``/``upper_observed``), and tables ``cv`` (per learner: RMSE on the
    log and rate scales, coverage and mean width of the observation intervals on held-out areas), ``importance``
    (per stream, for the chosen model, with ``shap_mean_abs`` for LightGBM), ``importance_all`` (both learners)
    ``tuning`` (the grid) and ``areas_all`` (the per-area rows of both learners). ``extras`` holds the fitted
    learners.
    """
    if model not in (*MODELS, "best"):
        raise ConfigError(f"model={model!r}; use one of {[*MODELS, 'best']}")
    if not 0.5 < level < 1:
        raise ConfigError(f"level must be between 0.5 and 1 (got {level})")
    # MAPIE is loaded only when this runs: importing it costs start-up time
    from mapie.regression import CrossConformalRegressor
    from sklearn.base import clone

    y_log_all, s_log_all, usable, notes = log_targets(areas)
    index = np.flatnonzero(usable)
    x_all = areas.x()
    x, y = x_all[index], y_log_all[index]
    s2 = None if s_log_all is None else s_log_all[index] ** 2
    group_all = areas.groups()
    groups = None if group_all is None else group_all[index]
    warnings = list(areas.warnings)
    if groups is None:
        warnings.append("no --region: cross-validation folds are random, not grouped, so the CV error and "
                        "conformal intervals are optimistic for areas unlike the surveyed ones")
    splits = grouped_folds(groups, y.size, folds, seed)
    stream_index = {s: [areas.covariates.index(c) for c in cols] for s, cols in areas.streams.items()}

    learners = {name: tune(name, x, y, splits, seed) for name in MODELS}
    cv_rows, importance_tables, per_model = [], [], {}
    for name, learner in learners.items():
        final = clone(learner.estimator).fit(x, y)
        conformal = CrossConformalRegressor(
            estimator=clone(learner.estimator), confidence_level=level, method="plus", cv=_predefined(splits, y.size),
            random_state=seed,
        )
        conformal.fit_conformalize(x, y)
        _, bounds = conformal.predict_interval(x_all)
        observed_lower, observed_upper = bounds[:, 0, 0], bounds[:, 1, 0]
        prediction = final.predict(x_all)
        residual = y - learner.oof
        # held-out interval check: conformal recomputed inside each outer training set (nested, honest)
        covered, width = _nested_conformal_check(learner, x, y, splits, level, seed)
        cv_rows.append(
            {
                "method": "LightGBM" if name == "lightgbm" else "ridge",
                "n": int(y.size),
                "folds": len(splits),
                "rmse_log": float(np.sqrt(np.mean(residual**2))),
                "rmse": float(np.sqrt(np.mean((np.exp(learner.oof) - np.exp(y)) ** 2))),
                "coverage": covered,
                "mean_width": width,
                "level": level,
                "params": ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in learner.params.items()),
            }
        )
        importance = permutation_importance_by_stream(learner, x, y, splits, stream_index, repeats, seed)
        if name == "lightgbm":
            shap = shap_by_stream(final, x_all, stream_index)
            importance["shap_mean_abs"] = importance["stream"].map(shap)
        importance["columns"] = importance["stream"].map(lambda s: ", ".join(areas.streams[s]))
        importance_tables.append(importance)
        per_model[name] = (final, prediction, observed_lower, observed_upper, residual)

    cv = pd.DataFrame(cv_rows)
    if model == "best":
        model = min(MODELS, key=lambda name: float(np.mean((learners[name].oof - y) ** 2)))
        notes.append(f"--model best: {model} has the lowest grouped-CV RMSE (log scale)")
    diagnostics: dict[str, Any] = {"model": model, "params": learners[model].params, "folds": len(splits)}
    tables_by_model = {}
    for name in MODELS:
        table, info, extra_warnings = _area_table(name, per_model[name], areas, index, y, s2, level)
        tables_by_model[name] = table
        if name == model:
            diagnostics.update(info)
            warnings.extend(extra_warnings)
    table = tables_by_model[model]
    if s2 is not None:
        notes.append("intervals for the true rate: studentised cross-validation residuals with the known sampling "
                     "noise removed; lower_observed/upper_observed are MAPIE CV+ intervals for a new direct estimate")
    else:
        warnings.append("no --target-se: intervals are MAPIE CV+ intervals for a new direct estimate, which include "
                        "sampling noise and are conservative for the true rate")
    importance_all = pd.concat(importance_tables, ignore_index=True)
    chosen = importance_all[importance_all["model"] == model].reset_index(drop=True)
    tuning = pd.concat([learner.tuning for learner in learners.values()], ignore_index=True)
    return Estimates(
        table=table,
        settings={"model": model, "level": level, "folds": len(splits), "repeats": repeats,
                  "grouping": areas.region or "random folds", "target_se": areas.target_se is not None,
                  "covariates": len(areas.covariates), "streams": len(areas.streams)},
        seed=seed,
        warnings=warnings,
        notes=list(areas.notes) + notes,
        diagnostics=diagnostics,
        tables={"cv": cv, "importance": chosen, "importance_all": importance_all, "tuning": tuning,
                "areas_all": pd.concat(tables_by_model.values(), ignore_index=True)},
        extras={"learners": {name: per_model[name][0] for name in per_model}},
    )


def _area_table(name: str, fitted, areas: AreaTable, index: np.ndarray, y: np.ndarray, s2: np.ndarray | None,
                level: float) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """Per-area estimates and intervals for one learner (see the module docstring for the formulas)."""
    _, prediction, observed_lower, observed_upper, residual = fitted
    lower_log, upper_log = observed_lower.copy(), observed_upper.copy()
    label = "LightGBM" if name == "lightgbm" else "ridge"
    info: dict[str, Any] = {}
    warnings: list[str] = []
    method = np.full(areas.n, f"{label} + conformal", dtype=object)
    if s2 is not None:
        sigma_m2 = model_error_variance(residual, s2)
        scores = np.abs(residual) / np.sqrt(sigma_m2 + s2)
        q = conformal_quantile(scores, level)
        half = q * math.sqrt(sigma_m2)
        lower_log, upper_log = prediction - half, prediction + half
        info = {"model_error_sd_log": math.sqrt(sigma_m2), "studentised_quantile": q,
                "median_sampling_sd_log": float(np.sqrt(np.median(s2)))}
        if sigma_m2 == 0:
            warnings.append("out-of-fold residuals are no larger than the sampling noise: the model error is "
                            "estimated as 0 and truth intervals collapse to the prediction; treat with care")
        # composite (Fay-Herriot-type) estimates where a direct estimate exists
        gamma = sigma_m2 / (sigma_m2 + s2)
        composite = gamma * y + (1 - gamma) * prediction[index]
        half_direct = _normal_quantile(1 - (1 - level) / 2) * np.sqrt(gamma * s2)
        lower_log[index], upper_log[index] = composite - half_direct, composite + half_direct
        # rates: the mean of a log-normal, exp(centre + variance / 2), not its median exp(centre)
        rate = np.exp(prediction + sigma_m2 / 2)
        rate[index] = np.exp(composite + gamma * s2 / 2)
        method[index] = f"{label} composite"
    else:
        rate = np.exp(prediction) * float(np.mean(np.exp(residual)))  # Duan's smearing back-transform
    table = pd.DataFrame(
        {
            "quantity": "prevalence",
            "method": method,
            "area": areas.ids,
            "estimate": rate,
            "lower": np.exp(lower_log),
            "upper": np.exp(upper_log),
            "level": level,
            "prediction": np.exp(prediction),
            "lower_observed": np.exp(observed_lower),
            "upper_observed": np.exp(observed_upper),
            "surveyed": areas.surveyed,
            "direct": areas.y(),
        }
    )
    return table, info, warnings


def _normal_quantile(p: float) -> float:
    return float(normal_quantile(p))


def _predefined(splits, n: int):
    """The folds as a scikit-learn ``PredefinedSplit`` (MAPIE accepts cross-validator objects only)."""
    # scikit-learn is loaded only when this runs: importing it costs start-up time
    from sklearn.model_selection import PredefinedSplit

    test_fold = np.full(n, -1)
    for k, (_, test) in enumerate(splits):
        test_fold[test] = k
    return PredefinedSplit(test_fold)


def _nested_conformal_check(learner: LearnerResult, x, y, splits, level: float, seed: int) -> tuple[float, float]:
    """Coverage and mean width (rate scale) of CV+ observation intervals on each held-out fold, with the
    conformal calibration redone inside the fold's training areas (grouped inner folds where possible)."""
    # MAPIE is loaded only when this runs: importing it costs start-up time
    from mapie.regression import CrossConformalRegressor
    from sklearn.base import clone

    hits, widths = [], []
    for k, (train, test) in enumerate(splits):
        inner = _inner_splits(train, splits, k)
        conformal = CrossConformalRegressor(estimator=clone(learner.estimator), confidence_level=level,
                                            method="plus", cv=_predefined(inner, train.size), random_state=seed)
        conformal.fit_conformalize(x[train], y[train])
        _, bounds = conformal.predict_interval(x[test])
        lower, upper = bounds[:, 0, 0], bounds[:, 1, 0]
        hits.append((lower <= y[test]) & (y[test] <= upper))
        widths.append(np.exp(upper) - np.exp(lower))
    return float(np.mean(np.concatenate(hits))), float(np.mean(np.concatenate(widths)))


def _inner_splits(train: np.ndarray, splits, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner folds for the training part of outer fold ``k``: the other outer folds' test sets, re-indexed."""
    position = {a: i for i, a in enumerate(train)}
    inner = []
    for j, (_, test) in enumerate(splits):
        if j == k:
            continue
        inner_test = np.array([position[a] for a in test])
        inner_train = np.setdiff1d(np.arange(train.size), inner_test)
        inner.append((inner_train, inner_test))
    return inner
