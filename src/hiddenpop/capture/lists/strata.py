"""Multiple systems estimation by stratum, combined into one total.

Lists often overlap differently in different places or groups (a regional NGO list barely touches the other
regions). :func:`stratified` estimates each stratum on its own with one model class, checks each for what the
class needs, and adds the strata up:

* Log-linear procedures (``stepwise``, ``aic``, ``bic``): each stratum runs the whole selection on ``bootstrap``
  multinomial resamples of its own histories, with its own seed; replicate i of the total is the sum of the
  strata's replicates i (a stratified bootstrap: strata are resampled independently, as they were observed).
  The interval is the percentile interval of those sums.
* ``latent``: each stratum's posterior draws of N; the total's draws are the sums of draws of the same index
  (the strata's posteriors are independent, so these are draws from the total's posterior).

A stratum is **not estimable** when the data cannot say anything about its unseen people: a list with nobody in the
stratum, or nobody on two or more lists (no overlap: every model's estimate is unbounded). Such strata are
reported with the reason and the number seen, never dropped; the total then covers the estimable strata only, its
row says which strata it leaves out, and the people seen in those strata are a floor to add. A stratum whose
overlaps are sparse (fewer than :data:`SPARSE_OVERLAP` people on two or more lists) is estimated with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.capture.lists.coverage import pattern_counts
from hiddenpop.capture.lists.data import list_data
from hiddenpop.capture.lists.latent import fit_latent_class
from hiddenpop.capture.lists.models import mse
from hiddenpop.capture.lists.procedures import LATENT_CLASSES, PROCEDURES
from hiddenpop.data.io import missing_column, read_table
from hiddenpop.errors import ConfigError, HiddenpopError
from hiddenpop.parallel import spawn_seeds
from hiddenpop.results import Estimates

__all__ = ["SPARSE_OVERLAP", "STRATIFIED_CLASSES", "stratified"]

#: fewer people than this on two or more lists makes a stratum's estimate fragile (a warning)
SPARSE_OVERLAP = 20
#: the model classes a stratified estimate can use
STRATIFIED_CLASSES = (*PROCEDURES, "latent")


def _frame(data: Any) -> tuple[pd.DataFrame, str]:
    if isinstance(data, pd.DataFrame):
        return data, "data"
    if isinstance(data, str | Path):
        return read_table(data), Path(data).name
    raise ConfigError(f"stratified list data must be a file path or a DataFrame, got {type(data).__name__}")


def _not_estimable(cells: Any) -> str | None:
    on_list = cells.counts @ cells.patterns
    if np.any(on_list == 0):
        return "a list has nobody in this stratum"
    if cells.counts[cells.patterns.sum(axis=1) >= 2].sum() == 0:
        return "nobody is on two or more lists (no overlap), so nothing is known about the unseen"
    return None


def stratified(
    data: Any,
    stratum: str,
    *,
    model: str = "stepwise",
    count_column: str | None = None,
    bootstrap: int = 500,
    seed: int = 1,
    level: float = 0.95,
    latent_classes: int = LATENT_CLASSES,
    draws: int = 1000,
    start_at_mode: bool = False,
    quiet: bool = True,
) -> Estimates:
    """Estimate every stratum of ``data`` (the column ``stratum`` names each row's stratum) with ``model`` and
    combine them (module docstring). Rows: one per stratum, then the total (``stratum`` = ``"total"``)."""
    if model not in STRATIFIED_CLASSES:
        raise ConfigError(f"model {model!r} cannot be stratified; choose from {', '.join(STRATIFIED_CLASSES)}")
    frame, source = _frame(data)
    if stratum not in frame.columns:
        raise missing_column(source, stratum, frame.columns, role="stratum", error=ConfigError)
    if model != "latent" and bootstrap < 50:
        raise ConfigError("a stratified log-linear total needs its interval from the bootstrap: give bootstrap "
                          f">= 50 (got {bootstrap})")
    labels = frame[stratum]
    if labels.isna().any():
        row = int(np.flatnonzero(labels.isna().to_numpy())[0]) + 2
        raise ConfigError(f"{source}: row {row}, column {stratum!r}: empty stratum; give every row a stratum")
    labels = labels.astype(str)
    lists = frame.drop(columns=[stratum])
    pattern_counts(lists, count_column=count_column, source=source)  # validates every row, with its row number
    strata = sorted(labels.unique())
    seeds = spawn_seeds(seed, len(strata))
    rows, warnings, totals, left_out, floor = [], [], [], [], 0.0
    for name, stratum_seed in zip(strata, seeds, strict=True):
        part = lists.loc[labels == name]
        cells = list_data(pattern_counts(part, count_column=count_column, source=f"{source} stratum {name}"))
        observed = cells.observed
        reason = _not_estimable(cells)
        base = {"quantity": "population", "stratum": name, "observed": observed, "level": level}
        if reason is None:
            try:
                if model == "latent":
                    fit, draws_n = fit_latent_class(cells, classes=latent_classes, draws=draws, warmup=draws,
                                                    seed=stratum_seed, level=level,
                                                    start_at_mode=start_at_mode, quiet=quiet)
                else:
                    fit = mse(cells, model, bootstrap=bootstrap, seed=stratum_seed, level=level)
                    draws_n = fit.tables["bootstrap"]["abundance"].to_numpy()
            except HiddenpopError as exc:
                reason = " ".join(str(exc).split())
        if reason is not None:
            rows.append(base | {"method": f"{model} (not estimable)", "estimate": np.nan, "lower": np.nan,
                                "upper": np.nan, "status": f"not estimable: {reason}"})
            warnings.append(f"stratum {name} ({observed:.0f} seen): not estimable: {reason}")
            left_out.append(name)
            floor += observed
            continue
        row = fit.table.iloc[0]
        overlap = float(cells.counts[cells.patterns.sum(axis=1) >= 2].sum())
        status = "warnings" if fit.warnings else "ok"
        if overlap < SPARSE_OVERLAP:
            status = "warnings"
            warnings.append(f"stratum {name}: only {overlap:.0f} people on two or more lists; the estimate is "
                            "fragile")
        warnings.extend(f"stratum {name}: {w}" for w in fit.warnings)
        rows.append(base | {"method": str(row["method"]), "estimate": float(row["estimate"]),
                            "lower": float(row["lower"]), "upper": float(row["upper"]), "status": status})
        totals.append(np.asarray(draws_n, dtype=float).reshape(-1))
    total = _total(rows, totals, model, level, left_out, floor)
    if left_out:
        warnings.insert(0, f"the total covers the estimable strata only: {', '.join(left_out)} could not be "
                           f"estimated; add at least the {floor:.0f} people seen there")
    return Estimates.from_rows(
        [*rows, total],
        settings={"model": model, "stratum": stratum, "bootstrap": bootstrap if model != "latent" else None,
                  "draws": draws if model == "latent" else None, "level": level},
        seed=seed,
        warnings=warnings,
        diagnostics={"strata": len(strata), "not_estimable": left_out, "floor_not_estimable": floor},
    )


def _total(rows: list[dict[str, Any]], totals: list[np.ndarray], model: str, level: float, left_out: list[str],
           floor: float) -> dict[str, Any]:
    observed = float(sum(r["observed"] for r in rows))
    covered = "all strata" if not left_out else f"estimable strata (excludes {', '.join(left_out)})"
    base = {"quantity": "population", "stratum": "total", "observed": observed, "level": level,
            "method": f"{model}, sum over {covered}"}
    if not totals:
        return base | {"estimate": np.nan, "lower": np.nan, "upper": np.nan,
                       "status": "not estimable: no stratum could be estimated"}
    summed = np.sum(np.vstack(totals), axis=0)
    finite = summed[np.isfinite(summed)]
    tail = (1 - level) / 2
    lower, upper = np.quantile(finite, [tail, 1 - tail])
    estimate = float(sum(r["estimate"] for r in rows if np.isfinite(r["estimate"])))
    if model == "latent":
        estimate = float(np.median(finite))
    status = "ok" if not left_out else (f"partial: excludes {', '.join(left_out)}; {floor:.0f} people seen there "
                                        "are not in this total")
    return base | {"estimate": estimate, "lower": float(lower), "upper": float(upper), "status": status}
