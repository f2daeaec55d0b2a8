"""Known-group diagnostics: leave-one-out internal consistency and recall-bias checks.

**Leave-one-out internal consistency** (Killworth et al. 1998b; Feehan & Salganik's ``nsum.internal.consistency``):
for each known group j, pretend its size is unknown, recompute every degree from the other known groups,

    d_i^(-j) = N * sum_{k != j} y_ik / (S - N_j),

and scale up N_j^ = N * sum_i w_i y_ij / sum_i w_i d_i^(-j). The table compares N_j^ with N_j: error, relative
error |N_j^ - N_j| / N_j and the ratio N_j^ / N_j, with summaries (mean absolute relative error "are",
mean absolute error, root mean squared error). If the method worked perfectly every ratio would be near 1.

Reading it: a ratio far above 1 means respondents report more members of j than its size implies (the size is
too small, or j is over-recalled / highly visible); far below 1 means under-recall, low visibility (barrier or
transmission effects) or a size that is too large. Such groups are **flagged** (ratio outside
[1/flag_ratio, flag_ratio], default 2) and are candidates for removal from the known set.

**Recall-bias check**: the field's recurring pattern (Killworth et al. 2003; McCormick, Salganik & Zheng 2010) is
that small groups are over-reported and large groups under-reported. We regress log(N_j^ / N_j) on log N_j across
known groups; a clearly negative slope (reported with its standard error) is that pattern.

Assumptions and failure modes: the held-out estimate inherits every NSUM assumption; with few known groups the
degree changes a lot when one is removed; it checks consistency among known groups, not the hidden groups'
visibility, so a clean table does not rule out transmission error for the hidden groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.data.ard import ARD
from hiddenpop.errors import ConfigError
from hiddenpop.nsum.degrees import degree, degree_summary
from hiddenpop.results import Estimates


def consistency(
    ard: ARD,
    *,
    known: Sequence[str] | None = None,
    weighted: bool | None = None,
    flag_ratio: float = 2.0,
    population: float | None = None,
) -> Estimates:
    """Leave-one-out internal consistency of the known groups (see the module docstring).

    Returns ``Estimates`` whose table has one row per held-out group (``quantity`` = group, ``method`` =
    ``"mle leave-one-out"``) with extra columns ``known_size, error, abs_error, relative_error, ratio, flag``;
    ``diagnostics`` carries ``are``, ``mae``, ``rmse``, ``mse``, the recall-bias slope and the flagged groups;
    ``tables["consistency"]`` is the same table.
    """
    groups = list(ard.known if known is None else known)
    if len(groups) < 2:
        raise ConfigError("leave-one-out consistency needs at least 2 known groups")
    for g in groups:
        if g not in ard.known_sizes.index:
            raise ConfigError(f"{g!r} is not a known group; known groups are {ard.known}")
    if not flag_ratio > 1:
        raise ConfigError("flag_ratio must be > 1 (e.g. 2: flag held-out estimates off by more than a factor 2)")
    base = float(ard.population if population is None else population)
    use_weights = ard.weighted if weighted is None else bool(weighted)
    if use_weights and not ard.weighted:
        raise ConfigError("weighted=True but the survey has no weight column (--weights COL)")
    w = ard.design_weights if use_weights else np.ones(ard.n)
    rows: list[dict[str, Any]] = []
    for j in groups:
        others = [g for g in groups if g != j]
        d = degree(ard, "known_population", columns=others, population=base)
        denominator = float(np.sum(w * d.values))
        size = float(ard.known_sizes[j])
        if denominator <= 0:
            estimate = np.nan
        else:
            estimate = base * float(np.sum(w * ard.y(j))) / denominator
        error = estimate - size
        rows.append(
            {
                "quantity": j,
                "method": "mle leave-one-out",
                "estimate": estimate,
                "known_size": size,
                "error": error,
                "abs_error": abs(error),
                "relative_error": abs(error) / size,
                "ratio": estimate / size,
                "zero_degree_respondents": int(d.zero.sum()),
            }
        )
    table = pd.DataFrame(rows)
    ratio = table["ratio"].to_numpy()
    flag = np.where(
        ratio > flag_ratio,
        "over-reported (size too small or over-recalled)",
        np.where(ratio < 1.0 / flag_ratio, "under-reported (size too large, under-recalled or low visibility)", ""),
    )
    table["flag"] = flag
    finite = table.dropna(subset=["estimate"])
    diagnostics: dict[str, Any] = {
        "are": float(finite["relative_error"].mean()),
        "mae": float(finite["abs_error"].mean()),
        "mse": float((finite["error"] ** 2).mean()),
        "rmse": float(np.sqrt((finite["error"] ** 2).mean())),
        "flag_ratio": flag_ratio,
        "flagged": [g for g, f in zip(table["quantity"], flag, strict=True) if f],
        "weighted": use_weights,
    }
    warnings: list[str] = []
    for g, f, r in zip(table["quantity"], flag, ratio, strict=True):
        if f:
            warnings.append(f"known group {g!r}: held-out estimate is {r:.2f} x its size - {f}")
    positive = finite[finite["ratio"] > 0]
    if len(positive) >= 3:
        x = np.log(positive["known_size"].to_numpy())
        yv = np.log(positive["ratio"].to_numpy())
        xc = x - x.mean()
        slope = float(np.sum(xc * (yv - yv.mean())) / np.sum(xc**2))
        resid = yv - yv.mean() - slope * xc
        se = float(np.sqrt(np.sum(resid**2) / (len(x) - 2) / np.sum(xc**2))) if len(x) > 2 else np.nan
        diagnostics["recall_bias"] = {
            "slope_log_ratio_on_log_size": slope,
            "se": se,
            "groups": len(positive),
            "reading": "negative slope: small groups over-reported and large groups under-reported (the estimate "
                       "can correct for it with recall = 'loglinear')",
        }
    full = degree(ard, "known_population", columns=groups, population=base)
    diagnostics["degrees"] = degree_summary(full, w if use_weights else None)
    return Estimates(
        table=table,
        settings={"known": groups, "weighted": use_weights, "flag_ratio": flag_ratio, "population": base},
        warnings=[*ard.warnings, *warnings],
        diagnostics=diagnostics,
        notes=list(ard.notes),
        tables={"consistency": table},
    )
