"""Survey weights: base weights, non-response adjustment within cells, raking to known margins.

Base weight
    ``d_i = 1 / pi_i`` where ``pi_i`` is the overall inclusion probability (product over stages; see
    :mod:`hiddenpop.design.selection`). ``0 < pi_i <= 1`` is required.

Non-response adjustment (weighting-class method)
    Within adjustment cell ``c`` (e.g. stratum x area type), respondents carry the weight of the cell's
    non-respondents:

        f_c = sum_{i in c} d_i / sum_{i in c, responded} d_i,      w_i = f_c d_i for respondents, 0 otherwise.

    Assumes responses are missing at random within cells (response propensity constant inside a cell). Fails
    when a cell has no respondents (refused: collapse cells) and inflates variance when ``f_c`` is large
    (flagged above ``max_factor``).

Raking (iterative proportional fitting, Deming and Stephan 1940)
    Adjust weights so that weighted totals match known population margins for several categorical
    variables at once. Each cycle visits each variable ``v`` and multiplies the weights of units at level
    ``l`` by ``T_{v,l} / sum_{i: v_i = l} w_i``. The limit (when it exists) minimises the raking
    (Kullback-Leibler) distance ``sum w_i log(w_i / d_i) - w_i + d_i`` subject to the margins (Deville and
    Sarndal 1992): a generalised regression-type calibration estimator. Convergence is declared when every
    margin is matched to relative error ``tolerance``. Fails (does not converge) when margins are
    inconsistent (different grand totals across variables), when a margin level has no respondents, or when
    sample cells are so sparse that the margins cannot be met with positive weights.

The Kish approximate design effect from unequal weights is ``deff_w = n sum w^2 / (sum w)^2`` and the
effective sample size ``n / deff_w`` (Kish 1965, section 11.7).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from hiddenpop.data.io import missing_column
from hiddenpop.errors import ConfigError, DataError, locate
from hiddenpop.results import Estimates

TRUE_VALUES = {"1", "true", "yes", "y", "t"}
FALSE_VALUES = {"0", "false", "no", "n", "f"}


def base_weights(probabilities: pd.Series, *, source: str | None = None) -> pd.Series:
    """``1 / pi`` with validation (``pi`` numeric, ``0 < pi <= 1``)."""
    values = pd.to_numeric(probabilities, errors="coerce")
    bad = values.isna() | ~np.isfinite(values) | (values <= 0) | (values > 1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise DataError(
            f"{locate(source, row, str(probabilities.name))}selection probability must be a number in (0, 1]; "
            "check the selection output (probabilities, not weights)"
        )
    return 1.0 / values.astype(float)


def _as_flag(values: pd.Series, column: str, source: str | None) -> np.ndarray:
    text = values.astype("string").str.strip().str.lower()
    flags = np.zeros(len(values), dtype=bool)
    for i, item in enumerate(text):
        if item is pd.NA or item is None:
            raise DataError(
                f"{locate(source, i + 1, column)}response status is missing; use 1 (responded) or 0"
            )
        if item in TRUE_VALUES:
            flags[i] = True
        elif item not in FALSE_VALUES:
            raise DataError(
                f"{locate(source, i + 1, column)}response status must be 1/0, yes/no or true/false"
            )
    return flags


def _key(frame: pd.DataFrame, columns: list[str], source: str | None) -> pd.Series:
    for column in columns:
        if column not in frame.columns:
            raise missing_column(source, column, frame.columns)
        missing = frame[column].isna()
        if missing.any():
            row = int(np.flatnonzero(missing.to_numpy())[0]) + 1
            raise DataError(
                f"{locate(source, row, column)}value is missing; every row needs a cell/margin level"
            )
    if len(columns) == 1:
        return frame[columns[0]].astype(str).str.strip()
    return frame[columns].astype(str).apply(lambda r: " x ".join(v.strip() for v in r), axis=1)


def nonresponse_adjust(
    weights: np.ndarray, responded: np.ndarray, cells: pd.Series, *, max_factor: float = 3.0
) -> tuple[np.ndarray, pd.DataFrame, list[str]]:
    """Weighting-class non-response adjustment. Returns (adjusted weights, per-cell table, warnings)."""
    frame = pd.DataFrame({"cell": cells.to_numpy(), "w": weights, "r": responded})
    frame["w_resp"] = frame["w"] * frame["r"]
    per_cell = frame.groupby("cell", sort=True).agg(
        units=("w", "size"),
        respondents=("r", "sum"),
        weight_all=("w", "sum"),
        weight_respondents=("w_resp", "sum"),
    )
    empty = per_cell[per_cell["respondents"] == 0]
    if len(empty):
        raise DataError(
            f"non-response cell(s) {list(empty.index)} have no respondents: the adjustment is undefined; "
            "collapse them with a neighbouring cell (fewer or coarser --cells columns)"
        )
    per_cell["factor"] = per_cell["weight_all"] / per_cell["weight_respondents"]
    per_cell["response_rate_weighted"] = 1.0 / per_cell["factor"]
    factor = per_cell["factor"].reindex(frame["cell"]).to_numpy()
    adjusted = np.where(responded, weights * factor, 0.0)
    warnings = [
        f"non-response cell {cell!s} has adjustment factor {f:.2f} > {max_factor:g} (weighted response rate "
        f"{1 / f:.0%}): high variance and dependence on the missing-at-random-within-cell assumption"
        for cell, f in per_cell["factor"].items()
        if f > max_factor
    ]
    return adjusted, per_cell.reset_index(), warnings


def rake(
    weights: np.ndarray,
    levels: Mapping[str, np.ndarray],
    targets: Mapping[str, Mapping[str, float]],
    *,
    max_iter: int = 200,
    tolerance: float = 1e-8,
) -> tuple[np.ndarray, pd.DataFrame, bool]:
    """Iterative proportional fitting of ``weights`` to ``targets[variable][level]`` totals.

    ``levels[variable]`` gives each unit's level (as strings). Units with weight 0 (non-respondents) stay at
    0. Returns (raked weights, history table with the largest relative margin error after each cycle,
    converged flag).
    """
    w = np.asarray(weights, dtype=float).copy()
    coded = {}
    for variable, values in levels.items():
        names = list(targets[variable])
        index = {name: k for k, name in enumerate(names)}
        codes = np.array([index[v] for v in values], dtype=int)
        target = np.array([float(targets[variable][n]) for n in names])
        coded[variable] = (codes, target, names)
    history = []
    converged = False

    def worst() -> float:
        err = 0.0
        for codes, target, _ in coded.values():
            achieved = np.bincount(codes, weights=w, minlength=len(target))
            err = max(err, float(np.max(np.abs(achieved - target) / target)))
        return err

    for iteration in range(1, max_iter + 1):
        for codes, target, names in coded.values():
            achieved = np.bincount(codes, weights=w, minlength=len(target))
            if np.any(achieved <= 0):
                empty = [names[k] for k in np.flatnonzero(achieved <= 0)]
                raise DataError(
                    f"raking: margin level(s) {empty} have no respondents with positive weight; collapse them "
                    "with a neighbouring level in the margins and the data"
                )
            w *= (target / achieved)[codes]
        error = worst()
        history.append({"iteration": iteration, "max_relative_error": error})
        if error < tolerance:
            converged = True
            break
    return w, pd.DataFrame(history), converged


def read_margins(margins: pd.DataFrame, *, source: str | None = None) -> dict[str, dict[str, float]]:
    """Margins table with columns ``variable, level, total`` -> nested dict (validated)."""
    for column in ("variable", "level", "total"):
        if column not in margins.columns:
            raise DataError(
                f"{locate(source)}margins need columns variable, level, total; missing {column!r}"
            )
    out: dict[str, dict[str, float]] = {}
    totals = pd.to_numeric(margins["total"], errors="coerce")
    for i, (variable, level, total) in enumerate(
        zip(margins["variable"], margins["level"], totals, strict=True)
    ):
        if pd.isna(variable) or pd.isna(level):
            raise DataError(
                f"{locate(source, i + 1, 'variable' if pd.isna(variable) else 'level')}value is missing"
            )
        if pd.isna(total) or not np.isfinite(total) or total <= 0:
            raise DataError(f"{locate(source, i + 1, 'total')}margin total must be a positive number")
        variable, level = str(variable).strip(), str(level).strip()
        if level in out.setdefault(variable, {}):
            raise DataError(f"{locate(source, i + 1, 'level')}duplicate level for variable {variable!r}")
        out[variable][level] = float(total)
    return out


def compute_weights(
    sample: pd.DataFrame,
    *,
    probability: str | None = None,
    base_weight: str | None = None,
    respondent: str | None = None,
    cells: list[str] | None = None,
    margins: Mapping[str, Mapping[str, float]] | None = None,
    max_iter: int = 200,
    tolerance: float = 1e-8,
    max_factor: float = 3.0,
    source: str | None = None,
) -> Estimates:
    """Base weights -> non-response adjustment -> raking, with a report at each step.

    Give either ``probability`` (column of overall inclusion probabilities) or ``base_weight`` (column of
    design weights). ``respondent`` (0/1 column) and ``cells`` switch on the non-response adjustment;
    ``margins`` (variable -> level -> population total) switches on raking. Returns ``Estimates`` with rows
    ``sum_of_weights``, ``kish_design_effect``, ``effective_sample_size``, ``raking_iterations`` and the tables
    ``weights`` (input rows plus ``base_weight``, ``nonresponse_weight``, ``final_weight``), ``nonresponse``
    (per cell), ``raking_history`` and ``margins`` (target vs achieved before and after raking).
    """
    if (probability is None) == (base_weight is None):
        raise ConfigError("give exactly one of --probability (selection probabilities) or --base-weight")
    if len(sample) == 0:
        raise DataError(f"{locate(source)}the sample has no rows")
    column = probability or base_weight
    if column not in sample.columns:
        raise missing_column(source, column, sample.columns)
    if probability is not None:
        d = base_weights(sample[probability], source=source).to_numpy()
    else:
        values = pd.to_numeric(sample[base_weight], errors="coerce")
        bad = values.isna() | ~np.isfinite(values) | (values < 1)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise DataError(
                f"{locate(source, row, base_weight)}design weight must be a number >= 1 (1 / probability)"
            )
        d = values.to_numpy(dtype=float)
    warnings: list[str] = []
    notes: list[str] = []
    out = sample.copy()
    out["base_weight"] = d
    w = d.copy()
    responded = np.ones(len(sample), dtype=bool)
    nr_table = pd.DataFrame()
    if respondent is not None:
        if respondent not in sample.columns:
            raise missing_column(source, respondent, sample.columns, role="respondent flag")
        responded = _as_flag(sample[respondent], respondent, source)
        cell_key = _key(sample, cells, source) if cells else pd.Series(["all"] * len(sample))
        w, nr_table, nr_warnings = nonresponse_adjust(w, responded, cell_key, max_factor=max_factor)
        warnings.extend(nr_warnings)
        notes.append(
            f"{int((~responded).sum())} non-respondent rows kept with final weight 0; "
            f"{int(responded.sum())} respondents carry their weight"
            + ("" if cells else " (one adjustment cell: no --cells given)")
        )
    elif cells:
        raise ConfigError("--cells needs --respondent (the column saying who responded)")
    out["nonresponse_weight"] = w
    margin_rows: list[dict] = []
    history = pd.DataFrame()
    converged = True
    iterations = 0
    if margins:
        levels = {}
        for variable, target in margins.items():
            if variable not in sample.columns:
                raise missing_column(source, variable, sample.columns, role="margin variable")
            values = sample[variable]
            text = values.astype("string").str.strip()
            missing = values.isna().to_numpy() & responded
            if missing.any():
                i = int(np.flatnonzero(missing)[0])
                raise DataError(
                    f"{locate(source, i + 1, variable)}value is missing; raking needs every respondent's level"
                )
            unknown = ~text.isin(list(target)).fillna(False).to_numpy(dtype=bool) & responded
            if unknown.any():
                i = int(np.flatnonzero(unknown)[0])
                raise DataError(
                    f"{locate(source, i + 1, variable)}level is not in the margins for {variable!r} "
                    f"(levels there: {sorted(target)}); add it to the margins or recode the data"
                )
            levels[variable] = np.where(responded, text.fillna("").to_numpy(dtype=object), next(iter(target)))
        grand = {v: sum(t.values()) for v, t in margins.items()}
        spread = (max(grand.values()) - min(grand.values())) / max(grand.values())
        if spread > 1e-6:
            warnings.append(
                f"margin grand totals differ across variables (by {spread:.2%}): raking cannot match all margins "
                f"exactly; totals: { {k: round(v, 3) for k, v in grand.items()} }"
            )
        before = w.copy()
        w, history, converged = rake(w, levels, margins, max_iter=max_iter, tolerance=tolerance)
        iterations = len(history)
        if not converged:
            warnings.append(
                f"raking did not converge in {max_iter} cycles (largest relative margin error "
                f"{history['max_relative_error'].iloc[-1]:.2e}); check margins for consistency and sparse cells"
            )
        for variable, target in margins.items():
            codes = levels[variable]
            for level, total in target.items():
                mask = (codes == level) & responded
                margin_rows.append(
                    {
                        "variable": variable,
                        "level": level,
                        "target": total,
                        "respondents": int(mask.sum()),
                        "before_raking": float(before[mask].sum()),
                        "after_raking": float(w[mask].sum()),
                    }
                )
    out["final_weight"] = w
    final = w[responded]
    n = len(final)
    deff = float(n * np.sum(final**2) / np.sum(final) ** 2)
    ratio = final / d[responded]
    table_rows = [
        {"quantity": "sum_of_weights", "method": "final weights", "estimate": float(final.sum())},
        {"quantity": "respondents", "method": "final weights", "estimate": n},
        {"quantity": "kish_design_effect", "method": "Kish (1965) 1 + CV^2", "estimate": deff},
        {"quantity": "effective_sample_size", "method": "Kish (1965) n / deff", "estimate": n / deff},
        {
            "quantity": "raking_iterations",
            "method": "iterative proportional fitting",
            "estimate": iterations,
            "converged": converged,
        },
    ]
    return Estimates.from_rows(
        table_rows,
        settings={
            "probability": probability,
            "base_weight": base_weight,
            "respondent": respondent,
            "cells": cells,
            "margins": {k: dict(v) for k, v in (margins or {}).items()},
            "max_iter": max_iter,
            "tolerance": tolerance,
            "max_factor": max_factor,
        },
        warnings=warnings,
        notes=notes,
        diagnostics={
            "raking_converged": converged,
            "weight_min": float(final.min()),
            "weight_max": float(final.max()),
            "weight_max_over_min": float(final.max() / final.min()) if final.min() > 0 else math.inf,
            "adjustment_ratio_min": float(ratio.min()),
            "adjustment_ratio_max": float(ratio.max()),
        },
        tables={
            "weights": out,
            "nonresponse": nr_table,
            "raking_history": history,
            "margins": pd.DataFrame(margin_rows),
        },
    )
