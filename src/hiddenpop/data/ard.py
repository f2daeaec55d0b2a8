"""The ARD contract: aggregated relational data ("how many X do you know?") plus what is needed to scale it up.

An :class:`ARD` holds one validated survey of respondents x groups, the known group sizes, the total population
(the scale-up base), the hidden groups to estimate, and optional survey-design columns (weights, strata, PSUs).
It is built once at the edge, by :func:`read_ard` from a file or by :meth:`ARD.from_frame` from a DataFrame, and
handed to every network scale-up method (``hiddenpop.nsum``, the Bayesian models, small-area estimation).

Validation raises :class:`~hiddenpop.errors.DataError` (bad data) or :class:`~hiddenpop.errors.ConfigError`
(bad settings) with the file, 1-based data row and column, and what to do. Identifiers and free-text cell values
are never quoted in messages. Nothing is silently dropped, coerced or clipped: the missing-answer policy and
top-coding are explicit settings, and the counts they affect are recorded in ``ARD.notes``/``ARD.missing_counts``/
``ARD.topcoded_cells``.

Stable API (other method families build on it)
----------------------------------------------
``ARD`` fields: ``respondent_ids`` (str array, never output), ``counts`` (float DataFrame, one column per used
group, no missing values), ``known_sizes`` (float Series group -> size), ``population`` (float), ``hidden``
(list), ``weights``/``strata``/``psu`` (arrays or ``None``), ``source`` (file name or label), ``rows`` (the
1-based data row of each respondent in the source, for error messages), ``degree_columns`` (summation columns or
``None``), ``topcode``, ``missing``, ``missing_counts``, ``dropped_respondents``, ``topcoded_cells``,
``ignored_columns``, ``notes``, ``warnings``. Properties: ``n``, ``known``, ``groups``, ``design_weights``
(weights or ones), ``weighted``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.data.io import header_looks_like_data, missing_column, read_table
from hiddenpop.errors import ConfigError, DataError, locate

MISSING_POLICIES = ("zero", "drop")


@dataclass
class ARD:
    """A validated network scale-up survey. Build it with :func:`read_ard` or :meth:`ARD.from_frame`.

    ``counts`` has one float column per group used (known groups, hidden groups and summation degree columns,
    in that order, each once) and one row per respondent kept; it contains no missing values (the ``missing``
    policy has been applied) and known-group answers are already top-coded when ``topcode`` is set.
    """

    respondent_ids: np.ndarray
    counts: pd.DataFrame
    known_sizes: pd.Series
    population: float
    hidden: list[str]
    weights: np.ndarray | None = None
    strata: np.ndarray | None = None
    psu: np.ndarray | None = None
    source: str = "survey"
    rows: np.ndarray | None = None
    degree_columns: list[str] | None = None
    topcode: int | None = None
    missing: str = "zero"
    missing_counts: dict[str, int] = field(default_factory=dict)
    dropped_respondents: int = 0
    topcoded_cells: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    weight_column: str | None = None
    strata_column: str | None = None
    psu_column: str | None = None

    # ------------------------------------------------------------------ convenience
    @property
    def n(self) -> int:
        """Number of respondents kept."""
        return len(self.counts)

    @property
    def known(self) -> list[str]:
        """Known groups, in the order of ``known_sizes``."""
        return [str(g) for g in self.known_sizes.index]

    @property
    def groups(self) -> list[str]:
        return [str(c) for c in self.counts.columns]

    @property
    def weighted(self) -> bool:
        return self.weights is not None

    @property
    def design_weights(self) -> np.ndarray:
        """Survey weights, or ones when the survey is unweighted."""
        return np.ones(self.n) if self.weights is None else np.asarray(self.weights, dtype=float)

    def y(self, group: str) -> np.ndarray:
        """The answers for one group as a float array."""
        if group not in self.counts.columns:
            raise ConfigError(f"group {group!r} is not in this survey's counts; available: {self.groups}")
        return self.counts[group].to_numpy(dtype=float)

    def subset(self, mask: np.ndarray, note: str | None = None) -> ARD:
        """A copy restricted to respondents where ``mask`` is true (e.g. one area for direct estimates)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.n,):
            raise ConfigError(f"subset mask has shape {mask.shape}; expected ({self.n},)")

        def pick(a):
            return None if a is None else np.asarray(a)[mask]

        notes = [*self.notes, note] if note else list(self.notes)
        return replace(
            self,
            respondent_ids=self.respondent_ids[mask],
            counts=self.counts.loc[mask].reset_index(drop=True),
            weights=pick(self.weights),
            strata=pick(self.strata),
            psu=pick(self.psu),
            rows=pick(self.rows),
            notes=notes,
            warnings=list(self.warnings),
        )

    def describe(self) -> dict[str, Any]:
        """JSON-safe description of the contract (no identifiers)."""
        return {
            "source": self.source,
            "respondents": self.n,
            "known_groups": self.known,
            "hidden_groups": list(self.hidden),
            "degree_columns": self.degree_columns,
            "population": self.population,
            "sum_known_sizes": float(self.known_sizes.sum()),
            "weights": self.weight_column if self.weighted else None,
            "strata": self.strata_column,
            "psu": self.psu_column,
            "missing_policy": self.missing,
            "missing_answers": dict(self.missing_counts),
            "dropped_respondents": self.dropped_respondents,
            "topcode": self.topcode,
            "topcoded_cells": dict(self.topcoded_cells),
            "ignored_columns": list(self.ignored_columns),
        }

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        known: Mapping[str, float] | pd.Series | pd.DataFrame | str | Path,
        population: float,
        hidden: Sequence[str] = (),
        *,
        weights: str | None = None,
        strata: str | None = None,
        psu: str | None = None,
        id_column: str | None = None,
        missing: str = "zero",
        degree_columns: Sequence[str] | None = None,
        topcode: int | None = None,
        source: str = "survey",
    ) -> ARD:
        """Validate an in-memory survey table and build the contract.

        Parameters
        ----------
        frame:
            One row per respondent; columns named after groups hold the "how many do you know" answers.
        known:
            Known group sizes: a mapping/Series group -> size, a DataFrame with ``group`` and ``size`` columns,
            or the path of such a table.
        population:
            The scale-up base N (total population; for the summation method, the population the summed groups
            make up, e.g. all children).
        hidden:
            Survey columns whose sizes are to be estimated.
        weights, strata, psu:
            Names of the survey-design columns (optional). Weights must be > 0.
        id_column:
            Respondent id column (must be unique); ids are kept for linkage only and never output.
        missing:
            ``"zero"``: a missing answer counts as "knows nobody" (the networkreporting convention);
            ``"drop"``: respondents with any missing answer in a used column are removed. Either way the number
            affected is recorded.
        degree_columns:
            Columns summed for the summation degree (e.g. the four child age bands).
        topcode:
            Answers to known-group questions above this value are set to it (the field uses 30); the number of
            cells changed is recorded. Hidden-group answers are never top-coded.
        """
        return _build(
            frame,
            known=known,
            population=population,
            hidden=hidden,
            weights=weights,
            strata=strata,
            psu=psu,
            id_column=id_column,
            missing=missing,
            degree_columns=degree_columns,
            topcode=topcode,
            source=source,
        )


def read_ard(
    path: str | Path,
    known: Mapping[str, float] | pd.Series | pd.DataFrame | str | Path,
    population: float,
    hidden: Sequence[str] = (),
    **options: Any,
) -> ARD:
    """Read a survey file (CSV, Parquet, Excel, SPSS ``.sav``, Stata ``.dta``) and validate it as ARD.

    ``options`` are those of :meth:`ARD.from_frame` (``weights``, ``strata``, ``psu``, ``id_column``, ``missing``,
    ``degree_columns``, ``topcode``). Error messages name the survey file (or the known-sizes file), the 1-based
    data row and the column.
    """
    path = Path(path)
    return ARD.from_frame(read_table(path), known, population, hidden, source=path.name, **options)


# ---------------------------------------------------------------------- known sizes
def read_known_sizes(known: Mapping[str, float] | pd.Series | pd.DataFrame | str | Path) -> tuple[pd.Series, str]:
    """Known group sizes as a float Series (group -> size) plus the label used in error messages.

    A file or DataFrame needs a ``size`` column and a ``group`` column; a two-column table whose first column
    has another name (e.g. networkreporting's ``known.popn``) is read as (group, size).
    """
    if isinstance(known, (str, Path)):
        path = Path(known)
        table = read_table(path)
        label = path.name
    elif isinstance(known, pd.DataFrame):
        table = known.copy()
        label = "known sizes"
    elif isinstance(known, (pd.Series, Mapping)):
        series = pd.Series(known) if not isinstance(known, pd.Series) else known
        table = pd.DataFrame({"group": [str(g) for g in series.index], "size": list(series.to_numpy())})
        label = "known sizes"
    else:
        raise ConfigError("known sizes must be a file path, a DataFrame with group,size columns or a mapping")
    lower = {c.lower(): c for c in table.columns}
    if "size" in lower and "group" in lower:
        group_col, size_col = lower["group"], lower["size"]
    elif table.shape[1] == 2 and "size" in lower:
        size_col = lower["size"]
        group_col = next(c for c in table.columns if c != size_col)
    else:
        raise DataError(
            f"{label}: expected columns 'group' and 'size' (found {list(table.columns)}); "
            "rename the header to group,size"
        )
    if len(table) == 0:
        raise DataError(f"{label}: no known groups listed; add one row per known group (group,size)")
    groups = table[group_col]
    sizes_raw = table[size_col]
    sizes = pd.to_numeric(sizes_raw, errors="coerce")
    for i in range(len(table)):
        row = i + 1
        if pd.isna(groups.iloc[i]) or str(groups.iloc[i]).strip() == "":
            raise DataError(f"{locate(label, row, group_col)}group name is empty; name the survey column")
        if pd.isna(sizes.iloc[i]):
            what = "is missing" if pd.isna(sizes_raw.iloc[i]) else "is not a number"
            raise DataError(f"{locate(label, row, size_col)}known size {what}; give the group's size as a number")
        if not np.isfinite(sizes.iloc[i]) or sizes.iloc[i] <= 0:
            raise DataError(f"{locate(label, row, size_col)}known size must be a positive number; fix the size")
    names = [str(g).strip() for g in groups]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DataError(
                f"{locate(label, i + 1, group_col)}group {name!r} is listed twice (first at row {seen[name]}); "
                "keep one row per group"
            )
        seen[name] = i + 1
    return pd.Series(sizes.to_numpy(dtype=float), index=pd.Index(names, name="group"), name="size"), label


# ---------------------------------------------------------------------- builder
def _suggest(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _require_column(frame: pd.DataFrame, column: str, source: str, role: str) -> None:
    if column not in frame.columns and header_looks_like_data(frame.columns):
        raise missing_column(source, column, frame.columns, role=f"named as {role}")
    if column not in frame.columns:
        raise DataError(
            f"{source}: column {column!r} (named as {role}) is not in the survey{_suggest(column, frame.columns)}; "
            f"check the spelling against the header"
        )


def numeric_counts(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    """Parse one ARD column as numbers, raising DataError at the first bad cell (value never echoed)."""
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw):
        raise DataError(f"{locate(source, None, column)}holds true/false values, expected counts; recode as numbers")
    if pd.api.types.is_datetime64_any_dtype(raw) or pd.api.types.is_timedelta64_dtype(raw):
        raise DataError(
            f"{locate(source, 1, column)}holds dates, expected counts (Excel may have formatted the cells as dates); "
            "format the column as numbers and re-export"
        )
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = values.isna() & raw.notna()
    if pd.api.types.is_object_dtype(raw) or pd.api.types.is_string_dtype(raw):
        blank = raw.astype("string").str.strip().fillna("") == ""
        bad = bad & ~blank
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise DataError(
            f"{locate(source, row, column)}answer is not a number; counts must be whole numbers >= 0 "
            "(leave the cell empty if the answer is missing)"
        )
    arr = values.to_numpy()
    finite = np.isfinite(arr) | np.isnan(arr)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0]) + 1
        raise DataError(f"{locate(source, row, column)}answer is infinite; counts must be whole numbers >= 0")
    negative = arr < 0
    if negative.any():
        row = int(np.flatnonzero(negative)[0]) + 1
        raise DataError(
            f"{locate(source, row, column)}negative count ({arr[row - 1]:g}); counts must be whole numbers >= 0 "
            "(recode refusals/don't-know codes as missing)"
        )
    fractional = np.isfinite(arr) & (arr != np.floor(arr))
    if fractional.any():
        row = int(np.flatnonzero(fractional)[0]) + 1
        raise DataError(
            f"{locate(source, row, column)}fractional count ({arr[row - 1]:g}); counts must be whole numbers >= 0"
        )
    return pd.Series(arr, index=frame.index, name=column)


def _build(
    frame: pd.DataFrame,
    *,
    known,
    population,
    hidden,
    weights,
    strata,
    psu,
    id_column,
    missing,
    degree_columns,
    topcode,
    source,
) -> ARD:
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError("the survey must be a pandas DataFrame")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    if missing not in MISSING_POLICIES:
        raise ConfigError(f"missing={missing!r} is not a policy; use one of {list(MISSING_POLICIES)}")
    try:
        population = float(population)
    except (TypeError, ValueError):
        raise ConfigError("population must be a number (the total population, the scale-up base)") from None
    if not np.isfinite(population) or population <= 0:
        raise ConfigError("population must be a positive finite number (the scale-up base)")
    if topcode is not None:
        if isinstance(topcode, bool) or not float(topcode).is_integer() or topcode < 1:
            raise ConfigError("topcode must be a whole number >= 1 (the field uses 30)")
        topcode = int(topcode)
    if len(frame) == 0:
        raise DataError(f"{source}: the survey has no respondents (no data rows)")

    known_sizes, known_label = read_known_sizes(known)
    hidden = [str(h) for h in hidden]
    degree_columns = None if degree_columns is None else [str(c) for c in degree_columns]
    if degree_columns is not None and len(degree_columns) == 0:
        degree_columns = None

    # ----- column roles
    if len(set(hidden)) != len(hidden):
        dup = next(h for h in hidden if hidden.count(h) > 1)
        raise ConfigError(f"hidden group {dup!r} is named twice; name each hidden group once")
    for h in hidden:
        _require_column(frame, h, source, "a hidden group")
        if h in known_sizes.index:
            raise ConfigError(
                f"group {h!r} is both hidden and in the known sizes ({known_label}); a group is either known or "
                "estimated"
            )
    for row, group in enumerate(known_sizes.index, start=1):
        if group not in frame.columns:
            raise DataError(
                f"{locate(known_label, row, 'group')}known group {group!r} is not a column of {source}"
                f"{_suggest(group, frame.columns)}; rename the group to match the survey header or remove the row"
            )
    for c in degree_columns or []:
        _require_column(frame, c, source, "a degree (summation) column")
        if c in hidden:
            raise ConfigError(f"column {c!r} is both a hidden group and a degree column; choose one role")
    design = {"weights": weights, "strata": strata, "psu": psu, "id": id_column}
    for role, column in design.items():
        if column is not None:
            _require_column(frame, column, source, f"the {role} column")
    role_of = {}
    for role, column in design.items():
        if column is None:
            continue
        if column in role_of:
            raise ConfigError(f"column {column!r} is used as both {role_of[column]} and {role}; choose one role")
        if column in known_sizes.index or column in hidden or column in (degree_columns or []):
            raise ConfigError(f"column {column!r} is named as {role} and also as a group; choose one role")
        role_of[column] = role

    groups = list(dict.fromkeys([*known_sizes.index, *hidden, *(degree_columns or [])]))
    used = set(groups) | set(role_of)
    ignored = [c for c in frame.columns if c not in used]

    # ----- known sizes vs population
    for row, (group, size) in enumerate(known_sizes.items(), start=1):
        if size >= population:
            raise DataError(
                f"{locate(known_label, row, 'size')}known size of {group!r} ({size:,.0f}) is not smaller than the "
                f"population ({population:,.0f}); check the size or --population"
            )
    if known_sizes.sum() > population:
        # Groups may overlap, so this is a warning, not an error.
        pass

    # ----- counts
    counts = pd.DataFrame({g: numeric_counts(frame, g, source) for g in groups}, index=frame.index)
    too_large = counts.to_numpy() > population
    missing_mask = counts.isna()
    missing_counts = {g: int(missing_mask[g].sum()) for g in groups if missing_mask[g].any()}
    notes: list[str] = []
    warnings: list[str] = []
    if too_large.any() and population > 1:
        # a head-count base (a proportion-scale base of 1 or less, as in textbook examples, admits any count)
        row, col = (int(i) for i in np.argwhere(too_large)[0])
        raise DataError(
            f"{locate(source, row + 1, groups[col])}count larger than the population base ({population:,.0f}), "
            f"which no respondent can know ({int(too_large.sum())} such answer(s)); fix the answer, recode a "
            "missing-value code such as 99999 as missing, or check --population"
        )
    keep = np.ones(len(frame), dtype=bool)
    dropped = 0
    if missing_counts:
        total_missing = sum(missing_counts.values())
        detail = ", ".join(f"{g}: {k}" for g, k in missing_counts.items())
        if missing == "zero":
            counts = counts.fillna(0.0)
            notes.append(
                f"missing='zero': {total_missing} missing answer(s) counted as 0 ({detail})"
            )
        else:
            keep = ~missing_mask.any(axis=1).to_numpy()
            dropped = int((~keep).sum())
            notes.append(
                f"missing='drop': {dropped} respondent(s) with a missing answer removed ({detail})"
            )
    # ----- design columns (validated on all rows, so row numbers match the file)
    weight_values = None
    if weights is not None:
        raw = frame[weights]
        w = pd.to_numeric(raw, errors="coerce").astype(float).to_numpy()
        bad = np.flatnonzero(~np.isfinite(w) | (w <= 0))
        if bad.size:
            row = int(bad[0]) + 1
            what = "missing" if pd.isna(raw.iloc[bad[0]]) else "not a positive number"
            raise DataError(
                f"{locate(source, row, weights)}weight is {what}; weights must be > 0 (fix the weight or remove "
                "the respondent)"
            )
        weight_values = w
    label_arrays = {}
    for role, column in (("stratum", strata), ("PSU", psu), ("respondent id", id_column)):
        if column is None:
            continue
        raw = frame[column]
        blank = raw.isna() | (raw.astype("string").str.strip().fillna("") == "")
        if blank.any():
            row = int(np.flatnonzero(blank.to_numpy())[0]) + 1
            raise DataError(f"{locate(source, row, column)}{role} is missing; every respondent needs one")
        label_arrays[role] = raw.astype("string").str.strip().to_numpy(dtype=object).astype(str)
    if id_column is not None:
        ids = label_arrays["respondent id"]
        dup = pd.Series(ids).duplicated(keep="first").to_numpy()
        if dup.any():
            row = int(np.flatnonzero(dup)[0]) + 1
            first = int(np.flatnonzero(ids == ids[row - 1])[0]) + 1
            raise DataError(
                f"{locate(source, row, id_column)}duplicate respondent id (same as row {first}); ids must be unique "
                "- remove the repeated interview or fix the id"
            )
    else:
        ids = np.array([str(i) for i in range(1, len(frame) + 1)])

    rows = np.arange(1, len(frame) + 1)
    counts = counts.loc[keep].reset_index(drop=True)
    if len(counts) == 0:
        raise DataError(f"{source}: no respondents left after missing='drop'; use missing='zero' or fix the data")

    # ----- top-coding (known groups only)
    topcoded: dict[str, int] = {}
    if topcode is not None:
        for g in known_sizes.index:
            over = counts[g].to_numpy() > topcode
            if over.any():
                topcoded[g] = int(over.sum())
                counts[g] = np.minimum(counts[g].to_numpy(), topcode)
        total = sum(topcoded.values())
        notes.append(f"top-coded {total} known-group answer(s) at {topcode}" + (
            f" ({', '.join(f'{g}: {k}' for g, k in topcoded.items())})" if topcoded else ""))

    # ----- a known group nobody reports
    for row, group in enumerate(known_sizes.index, start=1):
        if counts[group].sum() == 0:
            raise DataError(
                f"{locate(source, None, group)}known group {group!r} is reported by nobody (every answer is 0 or "
                f"missing); its size carries no information - remove it from {known_label} (row {row})"
            )
    for h in hidden:
        if counts[h].sum() == 0:
            warnings.append(f"hidden group {h!r}: every answer is 0, so its scale-up estimate is 0")
    if ignored:
        notes.append(f"ignored {len(ignored)} survey column(s) not named as known, hidden or design: {', '.join(ignored)}")
    if known_sizes.sum() > population:
        warnings.append(
            f"known sizes sum to {known_sizes.sum():,.0f}, more than the population {population:,.0f}; "
            "fine if groups overlap, otherwise check the sizes"
        )

    def pick(a):
        return None if a is None else np.asarray(a)[keep]

    strata_values = pick(label_arrays.get("stratum"))
    psu_values = pick(label_arrays.get("PSU"))
    return ARD(
        respondent_ids=np.asarray(ids)[keep],
        counts=counts,
        known_sizes=known_sizes,
        population=population,
        hidden=hidden,
        weights=pick(weight_values),
        strata=strata_values,
        psu=psu_values,
        source=source,
        rows=rows[keep],
        degree_columns=degree_columns,
        topcode=topcode,
        missing=missing,
        missing_counts=missing_counts,
        dropped_respondents=dropped,
        topcoded_cells=topcoded,
        ignored_columns=ignored,
        notes=notes,
        warnings=warnings,
        weight_column=weights,
        strata_column=strata,
        psu_column=psu,
    )
