"""Stratified multistage selection with probability proportional to size (PPS).

Stage 1 (primary sampling units, e.g. municipalities): within each stratum ``h``, ``n_h`` PSUs are drawn by
systematic PPS without replacement. With size measures ``M_i`` the first-stage inclusion probability is

    pi_i = n_h * M_i / sum_{j in h} M_j

Units with ``pi_i >= 1`` are *certainty* units: they are taken with probability 1, removed, and the
probabilities of the rest are recomputed with ``n_h`` reduced by the number of certainty units (repeated
until no probability exceeds 1). Systematic selection lays the remaining units end to end on a line with
lengths ``pi_i`` (total length exactly the number still to draw), draws one uniform start ``u`` in [0, 1) and
takes the units covering ``u, u + 1, u + 2, ...``. Every unit is then included with probability exactly
``pi_i`` and the sample size is fixed (Madow 1949). By default the list is put in random order first
(randomised systematic PPS, Goodman and Kish 1950; Hartley and Rao 1962); ``order="frame"`` keeps the frame
order, which gives implicit stratification by whatever the frame is sorted on.

Stage 2 (optional, e.g. barangays within a selected municipality): ``k`` secondary units per selected PSU by
the same systematic PPS, ``pi_{j|i} = k M_ij / M_i``.

Final stage: a fixed take of ``m`` interviews per selected area out of ``U`` eligible units (households),
``pi_{hh | area} = m / U``. The overall inclusion probability is the product over stages and the design
weight is its reciprocal. With ``M`` equal to ``U`` the design is self-weighting within a stratum.

Replacement (reserve) list: for every selected area, reserve areas are ranked by sequential PPS without
replacement among the units not selected (Efraimidis and Spirakis 2006: key ``u^(1/M)``, largest first). A
substitution changes the realised design; analysts usually give the reserve the weight of the unit it replaces
(recorded here as ``pi_psu`` of the reserve computed as if it had been drawn), which is an approximation to
document, not an unbiased design.

Assumptions and failure modes: the size measure must be positive and known for every unit (zero or missing
sizes are refused); joint inclusion probabilities of systematic PPS are not all positive, so unbiased
design-based variance estimation needs the with-replacement approximation (two or more PSUs per stratum) or
replicate weights; a stratum allocated fewer than two PSUs has no within-stratum variance estimate.

References: Cochran (1977) *Sampling Techniques*, ch. 9A; Sarndal, Swensson and Wretman (1992) *Model
Assisted Survey Sampling*, sections 3.6 and 4.3; Madow (1949) Ann. Math. Statist. 20, 333-354.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from hiddenpop.data.io import missing_column
from hiddenpop.errors import ConfigError, DataError, locate
from hiddenpop.results import Estimates

TOLERANCE = 1e-9


def pps_inclusion_probabilities(sizes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First-stage inclusion probabilities ``pi_i = n M_i / sum M`` with certainty units capped at 1.

    Returns ``(pi, certainty)``; ``pi`` sums to ``n`` exactly. Certainty units are found iteratively: once
    the largest units are taken with certainty, the rest share the remaining draws in proportion to size.
    """
    sizes = np.asarray(sizes, dtype=float)
    if sizes.ndim != 1 or np.any(~np.isfinite(sizes)) or np.any(sizes <= 0):
        raise DataError("PPS sizes must be finite and positive")
    if not (0 <= n <= len(sizes)):
        raise ConfigError(f"cannot select {n} units from {len(sizes)}")
    certainty = np.zeros(len(sizes), dtype=bool)
    while True:
        remaining = n - int(certainty.sum())
        pool = ~certainty
        if remaining == 0:
            pi = certainty.astype(float)
            return pi, certainty
        pi_pool = remaining * sizes[pool] / sizes[pool].sum()
        new = pi_pool >= 1.0 - TOLERANCE
        if not new.any():
            pi = certainty.astype(float)
            pi[pool] = pi_pool
            return pi, certainty
        idx = np.flatnonzero(pool)[new]
        certainty[idx] = True


def systematic_pps(
    sizes: np.ndarray, n: int, rng: np.random.Generator, *, order: str = "random"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` units by systematic PPS without replacement (certainty units taken first).

    Returns ``(selected_indices, pi, certainty)`` where ``selected_indices`` are positions in ``sizes`` in
    selection order, ``pi`` are the inclusion probabilities of all units and ``certainty`` flags units with
    ``pi = 1``. The sample size is exactly ``n`` and ``P(unit i selected) = pi_i`` for every unit.
    """
    if order not in ("random", "frame"):
        raise ConfigError(f"order must be 'random' or 'frame' (got {order!r})")
    pi, certainty = pps_inclusion_probabilities(sizes, n)
    chosen = list(np.flatnonzero(certainty))
    candidates = np.flatnonzero(~certainty & (pi > 0))
    remaining = n - len(chosen)
    if remaining > 0:
        if order == "random":
            candidates = candidates[rng.permutation(len(candidates))]
        cumulative = np.cumsum(pi[candidates])
        cumulative *= remaining / cumulative[-1]  # remove rounding drift: total length is exactly `remaining`
        start = rng.uniform(0.0, 1.0)
        points = start + np.arange(remaining)
        positions = np.searchsorted(cumulative, points, side="right")
        chosen.extend(candidates[positions].tolist())
    else:
        rng.uniform(0.0, 1.0)  # keep the random stream aligned whatever the certainty pattern
    return np.asarray(chosen, dtype=int), pi, certainty


def pps_reserve_order(sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of ``k`` reserve units ranked by sequential PPS without replacement (key ``u^(1/M)``)."""
    sizes = np.asarray(sizes, dtype=float)
    if k <= 0 or len(sizes) == 0:
        return np.zeros(0, dtype=int)
    keys = np.log(rng.uniform(size=len(sizes))) / sizes  # log(u^(1/M)) keeps precision for large M
    return np.argsort(-keys, kind="stable")[: min(k, len(sizes))]


def allocate_proportional(stratum_sizes: pd.Series, total: int) -> dict[str, int]:
    """Split ``total`` PSUs across strata in proportion to stratum size (largest remainder rounding)."""
    if total < 1:
        raise ConfigError(f"number of PSUs must be at least 1 (got {total})")
    shares = stratum_sizes / stratum_sizes.sum() * total
    base = np.floor(shares).astype(int)
    short = int(total - base.sum())
    order = np.argsort(-(shares - base).to_numpy(), kind="stable")
    base.iloc[order[:short]] += 1
    return {str(k): int(v) for k, v in base.items()}


def _validate_frame(
    frame: pd.DataFrame, source: str | None, columns: list[str], numeric: list[str]
) -> pd.DataFrame:
    for column in columns:
        if column not in frame.columns:
            raise missing_column(source, column, frame.columns)
    out = frame.copy()
    for column in columns:
        missing = out[column].isna() | (out[column].astype(str).str.strip() == "")
        if missing.any():
            row = int(np.flatnonzero(missing.to_numpy())[0]) + 1
            raise DataError(f"{locate(source, row, column)}value is missing; every frame row needs it")
    for column in numeric:
        values = pd.to_numeric(out[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values) | (values <= 0)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise DataError(
                f"{locate(source, row, column)}size must be a positive number; fix the frame or drop the unit "
                "from it explicitly (units with zero size cannot be selected by PPS)"
            )
        out[column] = values.astype(float)
    return out


def select_pps(
    frame: pd.DataFrame,
    *,
    stratum: str,
    psu: str,
    size: str,
    psus: int | Mapping[str, int],
    take: int,
    ssu: str | None = None,
    ssus_per_psu: int = 1,
    units: str | None = None,
    reserves: int = 0,
    order: str = "random",
    seed: int,
    source: str | None = None,
) -> Estimates:
    """Stratified multistage PPS selection (see module docstring).

    Parameters
    ----------
    frame:
        One row per PSU, or (with ``ssu``) one row per secondary unit with its PSU in column ``psu``.
    stratum, psu, size:
        Column names: explicit stratum, PSU identifier, size measure (of the row's unit).
    psus:
        Total number of PSUs (allocated to strata in proportion to stratum size) or a mapping stratum -> n_h.
    take:
        Interviews per selected area (final stage), e.g. 24 households per barangay.
    ssu, ssus_per_psu:
        Optional secondary unit column and how many to draw per selected PSU.
    units:
        Column with the number of eligible final units in each area (defaults to ``size``).
    reserves:
        Reserve (replacement) areas per selected area, ranked.
    seed:
        Seed for ``numpy.random.default_rng``.

    Returns ``Estimates`` with a per-stratum table (expected and selected counts) and auxiliary tables
    ``selection`` (one row per selected area with ``pi_psu``, ``pi_ssu``, ``pi_within``, ``pi_overall`` and
    ``design_weight``) and ``reserves``.
    """
    if take < 1:
        raise ConfigError(f"take (interviews per area) must be at least 1 (got {take})")
    if ssus_per_psu < 1:
        raise ConfigError(f"secondary units per PSU must be at least 1 (got {ssus_per_psu})")
    if reserves < 0:
        raise ConfigError(f"reserves must be 0 or more (got {reserves})")
    units = units or size
    key_columns = [stratum, psu] + ([ssu] if ssu else [])
    data = _validate_frame(frame, source, [*key_columns, size, units], sorted({size, units}))
    for column in key_columns:
        data[column] = data[column].astype(str).str.strip()
    # identity checks
    id_columns = [psu, ssu] if ssu else [psu]
    duplicated = data.duplicated(subset=id_columns, keep="first")
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 1
        what = "secondary unit" if ssu else "PSU"
        raise DataError(
            f"{locate(source, row, id_columns[-1])}duplicate {what}; each must appear once in the frame"
        )
    strata_of_psu = data.groupby(psu, sort=False)[stratum].nunique()
    if (strata_of_psu > 1).any():
        bad_psu = strata_of_psu[strata_of_psu > 1].index[0]
        row = int(np.flatnonzero((data[psu] == bad_psu).to_numpy())[1]) + 1
        raise DataError(
            f"{locate(source, row, stratum)}a PSU lies in more than one stratum; strata must nest PSUs"
        )
    fractional = data[units] != np.floor(data[units])
    if fractional.any():
        row = int(np.flatnonzero(fractional.to_numpy())[0]) + 1
        raise DataError(
            f"{locate(source, row, units)}number of eligible units must be a whole number "
            "(pass --units COLUMN when the size measure is not a count)"
        )

    rows_of_psu = data.groupby([stratum, psu], sort=False).indices  # frame rows of each PSU, in frame order
    psu_table = (
        data.groupby([stratum, psu], sort=False)
        .agg(psu_size=(size, "sum"), n_rows=(size, "size"))
        .reset_index()
    )
    stratum_sizes = psu_table.groupby(stratum, sort=False)["psu_size"].sum()
    if isinstance(psus, Mapping):
        allocation = {str(k): int(v) for k, v in psus.items()}
        unknown = sorted(set(allocation) - set(stratum_sizes.index))
        if unknown:
            raise ConfigError(f"allocation names strata not in the frame: {unknown}")
        missing = sorted(set(stratum_sizes.index) - set(allocation))
        if missing:
            raise ConfigError(f"allocation gives no PSU count for strata {missing}; give 0 to skip a stratum")
    else:
        allocation = allocate_proportional(stratum_sizes, int(psus))

    rng = np.random.default_rng(seed)
    warnings: list[str] = []
    notes: list[str] = []
    selected_rows: list[dict] = []
    reserve_rows: list[dict] = []
    stratum_rows: list[dict] = []
    for stratum_value in stratum_sizes.index:  # frame order of first appearance: reproducible
        n_h = allocation[str(stratum_value)]
        members = psu_table[psu_table[stratum] == stratum_value].reset_index(drop=True)
        if n_h > len(members):
            raise ConfigError(
                f"stratum {stratum_value!s} is allocated {n_h} PSUs but has only {len(members)} in the frame; "
                "lower its allocation"
            )
        if 0 < n_h < 2:
            warnings.append(
                f"stratum {stratum_value!s} has {n_h} PSU selected: no within-stratum variance estimate is possible "
                "(collapse strata for variance estimation)"
            )
        if n_h == 0:
            stratum_rows.append(
                {
                    "quantity": "psus_selected",
                    "method": "systematic PPS",
                    "estimate": 0,
                    "stratum": stratum_value,
                    "psus_in_frame": len(members),
                    "certainty": 0,
                }
            )
            continue
        chosen, pi, certain = systematic_pps(members["psu_size"].to_numpy(), n_h, rng, order=order)
        stratum_rows.append(
            {
                "quantity": "psus_selected",
                "method": "systematic PPS",
                "estimate": len(chosen),
                "stratum": stratum_value,
                "psus_in_frame": len(members),
                "certainty": int(certain.sum()),
                "expected": float(pi.sum()),
            }
        )
        if certain.any():
            warnings.append(
                f"stratum {stratum_value!s}: {int(certain.sum())} certainty PSU(s) (size share above 1/{n_h}); with a "
                "fixed take their interviews carry smaller weights than the rest, so the stratum is not "
                "self-weighting; consider making large PSUs their own stratum with a larger take"
            )
        if ssu is None:
            unchosen = np.setdiff1d(np.arange(len(members)), chosen)
            reserve_idx = unchosen[
                pps_reserve_order(members["psu_size"].to_numpy()[unchosen], reserves * len(chosen), rng)
            ]
            for rank, idx in enumerate(reserve_idx, start=1):
                reserve_rows.append(
                    {
                        "stratum": stratum_value,
                        "psu": members.loc[idx, psu],
                        "reserve_rank": rank,
                        "size": members.loc[idx, "psu_size"],
                        "pi_psu": float(pi[idx]),
                    }
                )
        for selection_order, idx in enumerate(chosen, start=1):
            psu_id = members.loc[idx, psu]
            areas = data.iloc[rows_of_psu[(stratum_value, psu_id)]].reset_index(drop=True)
            base = {
                "stratum": stratum_value,
                "psu": psu_id,
                "psu_size": members.loc[idx, "psu_size"],
                "pi_psu": float(pi[idx]),
                "certainty": bool(certain[idx]),
                "psu_order": selection_order,
            }
            if ssu is None:
                area_list = [(areas.iloc[0], 1.0)]
            else:
                k = min(ssus_per_psu, len(areas))
                if k < ssus_per_psu:
                    warnings.append(
                        f"PSU {psu_id!s} has {len(areas)} secondary units, fewer than the {ssus_per_psu} requested: "
                        "all taken"
                    )
                ssu_chosen, ssu_pi, _ = systematic_pps(areas[size].to_numpy(), k, rng, order=order)
                area_list = [(areas.iloc[j], float(ssu_pi[j])) for j in ssu_chosen]
                unchosen = np.setdiff1d(np.arange(len(areas)), ssu_chosen)
                reserve_idx = unchosen[pps_reserve_order(areas[size].to_numpy()[unchosen], reserves * k, rng)]
                for rank, j in enumerate(reserve_idx, start=1):
                    reserve_rows.append(
                        {
                            "stratum": stratum_value,
                            "psu": psu_id,
                            "ssu": areas.loc[j, ssu],
                            "reserve_rank": rank,
                            "size": areas.loc[j, size],
                            "pi_psu": float(pi[idx]),
                            "pi_ssu": float(ssu_pi[j]),
                        }
                    )
            for area, pi_ssu in area_list:
                eligible = float(area[units])
                m = take
                if take > eligible:
                    warnings.append(
                        f"an area in PSU {psu_id!s} has {int(eligible)} eligible units, fewer than the take of {take}: "
                        "all taken"
                    )
                    m = int(eligible)
                pi_within = m / eligible
                overall = float(pi[idx]) * pi_ssu * pi_within
                row = dict(base)
                if ssu is not None:
                    row["ssu"] = area[ssu]
                    row["pi_ssu"] = pi_ssu
                row.update(
                    {
                        "eligible_units": eligible,
                        "take": m,
                        "pi_within": pi_within,
                        "pi_overall": overall,
                        "design_weight": 1.0 / overall,
                    }
                )
                selected_rows.append(row)
    selection = pd.DataFrame(selected_rows)
    reserve_table = pd.DataFrame(reserve_rows)
    if reserves and len(reserve_table) < reserves * len(selection):
        notes.append(
            f"{reserves * len(selection) - len(reserve_table)} reserve slots could not be filled: too few unselected units"
        )
    n_interviews = int(selection["take"].sum()) if len(selection) else 0
    table_rows = [
        *stratum_rows,
        {"quantity": "areas_selected", "method": "systematic PPS", "estimate": len(selection)},
        {"quantity": "interviews_planned", "method": "fixed take", "estimate": n_interviews},
        {
            "quantity": "eligible_units_ht",
            "method": "Horvitz-Thompson",
            "estimate": float((selection["take"] * selection["design_weight"]).sum())
            if len(selection)
            else 0.0,
        },
    ]
    return Estimates.from_rows(
        table_rows,
        settings={
            "stratum": stratum,
            "psu": psu,
            "size": size,
            "ssu": ssu,
            "ssus_per_psu": ssus_per_psu,
            "units": units,
            "take": take,
            "allocation": allocation,
            "reserves": reserves,
            "order": order,
        },
        seed=seed,
        warnings=list(dict.fromkeys(warnings)),
        notes=notes,
        tables={"selection": selection, "reserves": reserve_table},
        diagnostics={
            "total_size": float(stratum_sizes.sum()),
            "weight_cv": float(selection["design_weight"].std(ddof=0) / selection["design_weight"].mean())
            if len(selection)
            else math.nan,
        },
    )


def read_allocation(frame: pd.DataFrame, source: str) -> dict[str, int]:
    """PSUs per stratum from a table with columns stratum, psus (whole numbers >= 0)."""
    for column in ("stratum", "psus"):
        if column not in frame.columns:
            raise DataError(f"{locate(source)}allocation needs columns stratum, psus; missing {column!r}")
    plan = {}
    counts = pd.to_numeric(frame["psus"], errors="coerce")
    for i, (stratum, count) in enumerate(zip(frame["stratum"], counts, strict=True)):
        if pd.isna(count) or count < 0 or count != int(count):
            raise DataError(f"{locate(source, i + 1, 'psus')}PSU count must be a whole number >= 0")
        plan[str(stratum).strip()] = int(count)
    return plan
