"""The area table contract: one row per area, covariates grouped into named data streams, optional neighbours.

An :class:`AreaTable` is built once at the edge (:func:`read_areas` from files, :meth:`AreaTable.from_frame` from
memory) and handed to the pooling, extrapolation and benchmarking methods. It holds

* ``frame``: the validated table (one row per area, ``id`` unique and never missing);
* the roles: ``id``, optional ``name``, ``region`` (parent region, used as the cross-validation group),
  ``population`` (positive, the base that turns rates into counts), ``target`` (the direct prevalence rate where
  surveyed, empty elsewhere) and ``target_se`` (its standard error);
* ``covariates``: every other numeric column, or those named in the stream mapping;
* ``streams``: data-stream name -> covariate columns (from STREAMS.toml; a covariate not mapped is its own
  stream);
* ``neighbours``: an optional list of index pairs (from an adjacency table or derived from GeoJSON polygons that
  share a vertex) and ``geometry`` (a GeoJSON FeatureCollection) for maps.

Missing covariate values follow an explicit policy (``impute="median"`` fills a column's median,
``"region-median"`` the median of the area's region (the column median where the region has none),
``"error"`` refuses); every filled cell is counted in ``notes``. Constant covariates carry no information and
are removed, with a note. Nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.data.io import read_table, read_toml
from hiddenpop.errors import ConfigError, DataError, locate
from hiddenpop.smallarea.specs import IMPUTE_POLICIES


@dataclass
class AreaTable:
    """A validated table of areas (see the module docstring)."""

    frame: pd.DataFrame
    id: str
    covariates: list[str]
    streams: dict[str, list[str]]
    name: str | None = None
    region: str | None = None
    population: str | None = None
    target: str | None = None
    target_se: str | None = None
    neighbours: np.ndarray | None = None
    geometry: dict[str, Any] | None = None
    geometry_key: str | None = None
    source: str = "areas"
    impute: str = "median"
    imputed_cells: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ accessors
    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> np.ndarray:
        return self.frame[self.id].to_numpy(dtype=str)

    @property
    def surveyed(self) -> np.ndarray:
        """True where the area has a direct estimate (target not missing)."""
        if self.target is None:
            return np.zeros(self.n, dtype=bool)
        return self.frame[self.target].notna().to_numpy()

    def x(self, standardise: bool = True) -> np.ndarray:
        """Covariate matrix (areas x covariates), imputed; standardised to mean 0, sd 1 by default."""
        values = self.frame[self.covariates].to_numpy(dtype=float)
        if standardise:
            values = (values - values.mean(axis=0)) / values.std(axis=0)
        return values

    def y(self) -> np.ndarray:
        if self.target is None:
            raise ConfigError("this method needs a target column (--target)")
        return self.frame[self.target].to_numpy(dtype=float)

    def y_se(self) -> np.ndarray | None:
        return None if self.target_se is None else self.frame[self.target_se].to_numpy(dtype=float)

    def populations(self) -> np.ndarray | None:
        return None if self.population is None else self.frame[self.population].to_numpy(dtype=float)

    def groups(self) -> np.ndarray | None:
        return None if self.region is None else self.frame[self.region].astype(str).to_numpy()

    def stream_of(self) -> dict[str, str]:
        return {c: s for s, cols in self.streams.items() for c in cols}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        id: str,
        target: str | None = None,
        target_se: str | None = None,
        population: str | None = None,
        region: str | None = None,
        name: str | None = None,
        streams: Mapping[str, Sequence[str]] | None = None,
        covariates: Sequence[str] | None = None,
        adjacency: pd.DataFrame | None = None,
        geometry: dict[str, Any] | None = None,
        geometry_key: str | None = None,
        impute: str = "median",
        source: str = "areas",
        streams_source: str = "streams",
        adjacency_source: str = "adjacency",
    ) -> AreaTable:
        """Validate an in-memory area table. Parameters mirror the CLI options (see :func:`read_areas`)."""
        return _build(
            frame,
            id_column=id,
            target=target,
            target_se=target_se,
            population=population,
            region=region,
            name=name,
            streams=streams,
            covariates=covariates,
            adjacency=adjacency,
            geometry=geometry,
            geometry_key=geometry_key,
            impute=impute,
            source=source,
            streams_source=streams_source,
            adjacency_source=adjacency_source,
        )


def read_streams(path: str | Path) -> dict[str, list[str]]:
    """Read STREAMS.toml: ``stream = ["col", ...]`` at top level or under a ``[streams]`` table."""
    path = Path(path)
    data = read_toml(path, what="streams file", missing_fix="check --streams",
                     syntax_fix='write lines like: poverty = ["poverty_pct"]')
    if "streams" in data and isinstance(data["streams"], dict):
        data = data["streams"]
    streams: dict[str, list[str]] = {}
    for stream, columns in data.items():
        if isinstance(columns, str):
            columns = [columns]
        if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
            raise ConfigError(
                f"{path.name}: stream {stream!r} must map to a non-empty list of column names, e.g. "
                f"{stream} = [\"column_a\", \"column_b\"]"
            )
        streams[str(stream)] = [c.strip() for c in columns]
    if not streams:
        raise ConfigError(f"{path.name}: no streams defined")
    return streams


def read_geometry(path: str | Path) -> dict[str, Any]:
    """Read a GeoJSON FeatureCollection of (Multi)Polygons."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: geometry file not found; check --geometry")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path.name}: not valid JSON (line {exc.lineno}); expected a GeoJSON FeatureCollection") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise DataError(f"{path.name}: expected a GeoJSON FeatureCollection with a 'features' list")
    return data


def read_areas(
    path: str | Path,
    *,
    streams: str | Path | Mapping[str, Sequence[str]] | None = None,
    adjacency: str | Path | None = None,
    geometry: str | Path | None = None,
    **options: Any,
) -> AreaTable:
    """Read and validate an area table (CSV, Parquet, Excel, SPSS, Stata).

    Parameters
    ----------
    id:
        Area id column (unique, never missing).
    target, target_se:
        Direct prevalence rate (empty where not surveyed) and its standard error.
    population:
        Population base of each area (positive).
    region:
        Parent region (used to group areas in cross-validation).
    name:
        Area name (kept for output, never a covariate).
    streams:
        STREAMS.toml path or a mapping stream -> columns. Default: every other numeric column is its own stream.
    adjacency:
        Table of neighbour pairs: two columns of area ids (first two columns are used).
    geometry:
        GeoJSON FeatureCollection; ``geometry_key`` names the feature property holding the area id (default:
        the ``id`` column name). Without ``adjacency``, neighbours are polygons sharing a vertex.
    impute:
        Missing-covariate policy: ``"median"``, ``"region-median"`` or ``"error"``.
    """
    path = Path(path)
    streams_source = "streams"
    if isinstance(streams, (str, Path)):
        streams_source = Path(streams).name
        streams = read_streams(streams)
    adjacency_frame = None
    adjacency_source = "adjacency"
    if adjacency is not None:
        adjacency_frame = read_table(adjacency)
        adjacency_source = Path(adjacency).name
    geometry_data = read_geometry(geometry) if geometry is not None else None
    return AreaTable.from_frame(read_table(path), streams=streams, adjacency=adjacency_frame, geometry=geometry_data,
                                source=path.name, streams_source=streams_source, adjacency_source=adjacency_source,
                                **options)


# ---------------------------------------------------------------------- validation
def _numeric_column(frame: pd.DataFrame, column: str, source: str, role: str) -> pd.Series:
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    blank = raw.isna()
    if pd.api.types.is_object_dtype(raw) or pd.api.types.is_string_dtype(raw):
        blank = blank | (raw.astype("string").str.strip().fillna("") == "")
    bad = values.isna() & ~blank
    bad = bad | ~np.isfinite(values.fillna(0.0))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise DataError(f"{locate(source, row, column)}{role} is not a finite number; fix the cell or leave it empty")
    return values


def _build(
    frame: pd.DataFrame,
    *,
    id_column: str,
    target,
    target_se,
    population,
    region,
    name,
    streams,
    covariates,
    adjacency,
    geometry,
    geometry_key,
    impute,
    source,
    streams_source,
    adjacency_source,
) -> AreaTable:
    if impute not in IMPUTE_POLICIES:
        raise ConfigError(f"impute={impute!r} is not a policy; use one of {list(IMPUTE_POLICIES)}")
    frame = frame.reset_index(drop=True).copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"{source}: the area table has no rows")
    roles = {"--id": id_column, "--target": target, "--target-se": target_se, "--population": population,
             "--region": region, "--name": name}
    used: dict[str, str] = {}
    for option, column in roles.items():
        if column is None:
            continue
        if column not in frame.columns:
            raise DataError(f"{source}: column {column!r} (given as {option}) is not in the table; check the header")
        if column in used:
            raise ConfigError(f"column {column!r} is given as both {used[column]} and {option}; one role per column")
        used[column] = option
    if target_se is not None and target is None:
        raise ConfigError("--target-se needs --target")
    notes: list[str] = []
    warnings: list[str] = []

    # ----- ids
    raw_ids = frame[id_column]
    blank = raw_ids.isna() | (raw_ids.astype("string").str.strip().fillna("") == "")
    if blank.any():
        row = int(np.flatnonzero(blank.to_numpy())[0]) + 1
        raise DataError(f"{locate(source, row, id_column)}area id is missing; every area needs an id")
    ids = raw_ids.astype("string").str.strip()
    frame[id_column] = ids.astype(str)
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0]) + 1
        first = int(np.flatnonzero((ids == ids.iloc[row - 1]).to_numpy())[0]) + 1
        raise DataError(
            f"{locate(source, row, id_column)}duplicate area id (same as row {first}); one row per area - merge or "
            "remove the repeated row"
        )

    # ----- target, its standard error, population
    if target is not None:
        y = _numeric_column(frame, target, source, "target")
        arr = y.to_numpy()
        bad = np.isfinite(arr) & ((arr < 0) | (arr > 1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(
                f"{locate(source, row, target)}target rate outside [0, 1]; the target is a prevalence rate "
                "(hidden members per person), not a count"
            )
        frame[target] = y
        if y.notna().sum() < 10:
            raise DataError(f"{source}: column {target!r} has {int(y.notna().sum())} values; at least 10 surveyed "
                            "areas are needed to learn anything")
        if y.notna().all():
            warnings.append("every area has a target value: there are no unsurveyed areas to predict")
    if target_se is not None:
        se = _numeric_column(frame, target_se, source, "target standard error")
        has_y = frame[target].notna().to_numpy()
        missing_se = has_y & se.isna().to_numpy()
        if missing_se.any():
            row = int(np.flatnonzero(missing_se)[0]) + 1
            raise DataError(f"{locate(source, row, target_se)}standard error missing where the target is given; "
                            "give both or neither")
        bad = has_y & (se.to_numpy() < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"{locate(source, row, target_se)}negative standard error")
        orphan = ~has_y & se.notna().to_numpy()
        if orphan.any():
            notes.append(f"{int(orphan.sum())} standard error value(s) without a target were ignored")
        frame[target_se] = se.where(has_y)
    if population is not None:
        pop = _numeric_column(frame, population, source, "population")
        bad = pop.isna().to_numpy() | (pop.to_numpy() <= 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"{locate(source, row, population)}population missing or not positive; every area "
                            "needs its population base")
        frame[population] = pop
    if region is not None:
        reg = frame[region]
        blank = reg.isna() | (reg.astype("string").str.strip().fillna("") == "")
        if blank.any():
            row = int(np.flatnonzero(blank.to_numpy())[0]) + 1
            raise DataError(f"{locate(source, row, region)}region is missing; every area needs its parent region")
        frame[region] = reg.astype("string").str.strip().astype(str)

    # ----- covariates and streams
    role_columns = set(used)
    if streams is not None:
        streams = {str(s): [str(c) for c in cols] for s, cols in dict(streams).items()}
        seen: dict[str, str] = {}
        for stream, cols in streams.items():
            for column in cols:
                if column not in frame.columns:
                    raise ConfigError(f"{streams_source}: stream {stream!r} names column {column!r}, which is not "
                                      f"in {source}; fix the name or remove it")
                if column in role_columns:
                    raise ConfigError(f"{streams_source}: stream {stream!r} names column {column!r}, which is "
                                      f"{used[column]}; a covariate cannot also be the id/target/population")
                if column in seen:
                    raise ConfigError(f"{streams_source}: column {column!r} is in streams {seen[column]!r} and "
                                      f"{stream!r}; each covariate belongs to one stream")
                seen[column] = stream
        candidate = list(seen)
    elif covariates is not None:
        candidate = [str(c) for c in covariates]
    else:
        candidate = [c for c in frame.columns if c not in role_columns]
    numeric: list[str] = []
    skipped: list[str] = []
    for column in candidate:
        raw = frame[column]
        if pd.api.types.is_bool_dtype(raw):
            frame[column] = raw.astype(float)
            numeric.append(column)
            continue
        values = pd.to_numeric(raw, errors="coerce")
        blank = raw.isna()
        if pd.api.types.is_object_dtype(raw) or pd.api.types.is_string_dtype(raw):
            blank = blank | (raw.astype("string").str.strip().fillna("") == "")
        bad = values.isna() & ~blank
        if bad.any():
            if streams is not None or covariates is not None:
                row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
                raise DataError(f"{locate(source, row, column)}covariate value is not a number; fix it or leave "
                                "the cell empty (missing values follow --impute)")
            skipped.append(column)
            continue
        if blank.all():
            raise DataError(f"{locate(source, None, column)}covariate is empty in every row; remove the column")
        frame[column] = values.astype(float)
        numeric.append(column)
    if skipped:
        notes.append(f"{len(skipped)} non-numeric column(s) not used as covariates: {', '.join(skipped)}")
    constant = [c for c in numeric if frame[c].nunique(dropna=True) < 2]
    if constant:
        numeric = [c for c in numeric if c not in constant]
        notes.append(f"{len(constant)} constant covariate(s) removed (no information): {', '.join(constant)}")
    if not numeric:
        raise DataError(f"{source}: no numeric covariate columns; the pooled and ML methods need covariates")
    if streams is None:
        streams = {c: [c] for c in numeric}
    else:
        streams = {s: [c for c in cols if c in numeric] for s, cols in streams.items()}
        emptied = [s for s, cols in streams.items() if not cols]
        streams = {s: cols for s, cols in streams.items() if cols}
        if emptied:
            notes.append(f"stream(s) left with no usable covariate: {', '.join(emptied)}")
    in_streams = {c for cols in streams.values() for c in cols}
    for column in numeric:
        if column not in in_streams:
            streams[column] = [column]

    # ----- missing covariates (explicit policy, reported)
    imputed: dict[str, int] = {}
    for column in numeric:
        missing = frame[column].isna()
        if not missing.any():
            continue
        if impute == "error":
            row = int(np.flatnonzero(missing.to_numpy())[0]) + 1
            raise DataError(f"{locate(source, row, column)}covariate is missing; fill it, or choose an imputation "
                            "policy (--impute median or region-median)")
        fill = pd.Series(frame[column].median(), index=frame.index)
        if impute == "region-median" and region is not None:
            by_region = frame.groupby(region)[column].transform("median")
            fill = by_region.fillna(fill)
        frame.loc[missing, column] = fill[missing]
        imputed[column] = int(missing.sum())
    if imputed:
        total = sum(imputed.values())
        detail = ", ".join(f"{c}: {k}" for c, k in imputed.items())
        policy = impute if not (impute == "region-median" and region is None) else "median (no --region given)"
        notes.append(f"imputed {total} missing covariate value(s) by {policy} ({detail})")
        share = total / (len(frame) * len(numeric))
        if share > 0.1:
            warnings.append(f"{share:.0%} of covariate values were imputed; predictions lean on the imputation")

    # ----- neighbours
    ids_array = frame[id_column].to_numpy(dtype=str)
    index_of = {a: i for i, a in enumerate(ids_array)}
    neighbours = None
    if geometry is not None:
        geometry_key = geometry_key or id_column
        geometry = _check_geometry(geometry, geometry_key, index_of, warnings)
    if adjacency is not None:
        neighbours = _adjacency_pairs(adjacency, index_of, adjacency_source)
    elif geometry is not None:
        neighbours = _pairs_from_geometry(geometry, geometry_key, index_of)
        notes.append(f"neighbours derived from the geometry (polygons sharing a vertex): {len(neighbours)} pairs")
    if neighbours is not None:
        degree = np.bincount(neighbours.ravel(), minlength=len(frame))
        islands = int((degree == 0).sum())
        if islands:
            notes.append(f"{islands} area(s) have no neighbour; the spatial effect there is the unstructured part only")

    return AreaTable(
        frame=frame,
        id=id_column,
        covariates=numeric,
        streams=streams,
        name=name,
        region=region,
        population=population,
        target=target,
        target_se=target_se,
        neighbours=neighbours,
        geometry=geometry,
        geometry_key=geometry_key,
        source=source,
        impute=impute,
        imputed_cells=imputed,
        notes=notes,
        warnings=warnings,
    )


def _adjacency_pairs(table: pd.DataFrame, index_of: dict[str, int], source: str) -> np.ndarray:
    if table.shape[1] < 2:
        raise DataError(f"{source}: the adjacency table needs two columns of area ids (area, neighbour)")
    first, second = table.columns[:2]
    pairs = []
    for column in (first, second):
        raw = table[column]
        blank = raw.isna() | (raw.astype("string").str.strip().fillna("") == "")
        if blank.any():
            row = int(np.flatnonzero(blank.to_numpy())[0]) + 1
            raise DataError(f"{locate(source, row, str(column))}area id is missing")
        values = raw.astype("string").str.strip().to_numpy(dtype=str)
        unknown = np.array([v not in index_of for v in values])
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0]) + 1
            raise DataError(f"{locate(source, row, str(column))}area id is not in the area table; fix the id or "
                            "remove the pair")
        pairs.append(np.array([index_of[v] for v in values]))
    pairs = np.column_stack(pairs)
    loops = pairs[:, 0] == pairs[:, 1]
    if loops.any():
        row = int(np.flatnonzero(loops)[0]) + 1
        raise DataError(f"{locate(source, row, None)}an area is listed as its own neighbour; remove the pair")
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0)


def _check_geometry(geometry: dict[str, Any], key: str, index_of: dict[str, int], warnings: list[str]) -> dict:
    seen = set()
    for number, feature in enumerate(geometry["features"], start=1):
        props = feature.get("properties") or {}
        if key not in props:
            raise DataError(f"geometry, feature {number}: property {key!r} (the area id) is missing; set "
                            "--geometry-key to the property holding the area id")
        kind = (feature.get("geometry") or {}).get("type")
        if kind not in ("Polygon", "MultiPolygon"):
            raise DataError(f"geometry, feature {number}: geometry type {kind!r}; areas must be Polygon or "
                            "MultiPolygon")
        seen.add(str(props[key]).strip())
    missing = [a for a in index_of if a not in seen]
    if missing:
        warnings.append(f"{len(missing)} area(s) have no polygon in the geometry and are left off the map")
    return geometry


def _pairs_from_geometry(geometry: dict[str, Any], key: str, index_of: dict[str, int]) -> np.ndarray:
    """Queen contiguity: two areas are neighbours when their polygons share a vertex (coordinates to 1e-7)."""
    owners: dict[tuple[float, float], set[int]] = {}
    for feature in geometry["features"]:
        area = str(feature["properties"][key]).strip()
        if area not in index_of:
            continue
        geom = feature["geometry"]
        polygons = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        for polygon in polygons:
            for ring in polygon:
                for lon, lat, *_ in ring:
                    owners.setdefault((round(lon, 7), round(lat, 7)), set()).add(index_of[area])
    pairs = {(a, b) for shared in owners.values() for a in shared for b in shared if a < b}
    return np.array(sorted(pairs), dtype=int).reshape(-1, 2)
