"""``hiddenpop smallarea ...`` commands: direct, pool, extrapolate, synth.

``pool`` and ``extrapolate`` print (or write to ``--out DIR``) one JSON object::

    {"areas": [{"area", "estimate", "lower", "upper", "method", "surveyed", ...}],
     "importance": [{"stream", "importance", ...}],
     "cv": {"grouping", "folds", "table": [{"method", "rmse", "rmse_log", "coverage", "mean_width", ...}]},
     "national": {"implied_rate", "national_estimate", "within_national_interval", "benchmark", ...},
     "warnings": [...], "notes": [...], "settings": {...}, "diagnostics": {...}, "provenance": {...}}

With ``--out DIR`` the command writes ``result.json``, ``areas.csv``, ``importance.csv``, ``cv.csv`` and, when
``--geometry`` is given, ``map.html`` (a self-contained Plotly choropleth).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from hiddenpop.cli.common import (
    ForceOption,
    FormatOption,
    OutOption,
    OutputFormat,
    QuietOption,
    SeedOption,
    emit,
    parse_csv_list,
)
from hiddenpop.errors import ConfigError
from hiddenpop.outputs import check_output_folder, list_files, write_output_folder


class Spatial(StrEnum):
    auto = "auto"
    bym2 = "bym2"
    iid = "iid"


class Engine(StrEnum):
    importance = "importance"
    nuts = "nuts"


class SamplingVariance(StrEnum):
    pooled = "pooled"
    gvf = "gvf"
    direct = "direct"


class Model(StrEnum):
    best = "best"
    lightgbm = "lightgbm"
    ridge = "ridge"


class Benchmark(StrEnum):
    none = "none"
    scale = "scale"
    logit = "logit"


class Impute(StrEnum):
    median = "median"
    region_median = "region-median"
    error = "error"


AreasArg = Annotated[Path, typer.Argument(help="area table: one row per area (CSV, Parquet, Excel, SPSS, Stata)")]
IdOption = Annotated[str, typer.Option("--id", help="area id column")]
TargetOption = Annotated[str, typer.Option("--target", help="direct prevalence rate (empty where not surveyed)")]
TargetSeOption = Annotated[str | None, typer.Option("--target-se", help="standard error of the target")]
PopulationOption = Annotated[str | None, typer.Option("--population", help="population base column")]
RegionOption = Annotated[str | None, typer.Option("--region", help="parent region column (CV groups)")]
NameOption = Annotated[str | None, typer.Option("--name", help="area name column (not a covariate)")]
StreamsOption = Annotated[Path | None, typer.Option("--streams", help="STREAMS.toml: stream = [columns]")]
AdjacencyOption = Annotated[Path | None, typer.Option("--adjacency", help="table of neighbour pairs (two id columns)")]
GeometryOption = Annotated[Path | None, typer.Option("--geometry", help="GeoJSON of the areas (map, neighbours)")]
GeometryKeyOption = Annotated[str | None, typer.Option("--geometry-key", help="feature property with the area id")]
ImputeOption = Annotated[Impute, typer.Option("--impute", help="missing covariates: median, region-median, error")]
LevelOption = Annotated[float, typer.Option("--level", help="interval level")]
NationalOption = Annotated[
    str | None, typer.Option("--national", help="national rate as ESTIMATE,LOWER,UPPER (e.g. from `direct`)")
]
BenchmarkOption = Annotated[Benchmark, typer.Option("--benchmark", help="adjust to the national estimate")]
OutDirOption = Annotated[Path | None, typer.Option("--out", help="write result.json, areas.csv, ... to this folder")]


def _national(value: str | None) -> tuple[float, float, float] | None:
    if value is None:
        return None
    parts = parse_csv_list(value)
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        raise ConfigError(
            "--national takes three numbers: ESTIMATE,LOWER,UPPER (rates, e.g. 0.0076,0.0068,0.0087)"
        ) from None
    if len(numbers) != 3:
        raise ConfigError("--national takes three numbers: ESTIMATE,LOWER,UPPER")
    return numbers  # type: ignore[return-value]


def _read(areas_path, id_, target, target_se, population, region, name, streams, adjacency, geometry,
          geometry_key, impute):
    from hiddenpop.smallarea.areas import read_areas

    return read_areas(
        areas_path, id=id_, target=target, target_se=target_se, population=population, region=region, name=name,
        streams=streams, adjacency=adjacency, geometry=geometry, geometry_key=geometry_key, impute=impute.value,
    )


def _check_out(out: Path | None, inputs: list, force: bool) -> Path | None:
    """The output folder, checked before any work: never an input's folder, never a user's folder unless --force."""
    if out is None:
        return None
    return check_output_folder(out, protect=[p for p in inputs if p is not None], force=force)


def _finish(result, areas, *, national, benchmark_method, level, fmt, out, command, inputs, cv=None,
            importance=None, extra_settings=None, force=False) -> None:
    """Consistency check, optional benchmarking, output (stdout or folder)."""
    import pandas as pd

    from hiddenpop.provenance import provenance
    from hiddenpop.smallarea.national import calibrate, national_consistency

    table = result.table.copy()
    population = areas.populations()
    draws = result.extras.get("draws")
    consistency = national_consistency(table["estimate"].to_numpy(), population, national, draws=draws, level=level)
    warnings = list(result.warnings)
    if national is not None and not consistency["within_national_interval"]:
        warnings.append(
            f"the population-weighted sum of area estimates ({consistency['implied_rate']:.4g}) is outside the "
            f"national interval [{national[1]:.4g}, {national[2]:.4g}]"
        )
    if benchmark_method != Benchmark.none:
        if national is None:
            raise ConfigError("--benchmark needs --national ESTIMATE,LOWER,UPPER")
        table, adjustment = calibrate(table, population, national[0], method=benchmark_method.value)
        consistency["benchmark"] = adjustment
        if "warning" in adjustment:
            warnings.append(adjustment["warning"])
    keep = ["area", "estimate", "lower", "upper", "method", "surveyed", "level", "se", "direct", "direct_se",
            "lower_observed", "upper_observed", "estimate_unbenchmarked", "lower_unbenchmarked",
            "upper_unbenchmarked"]
    areas_table = table[[c for c in keep if c in table.columns]]
    if areas.name is not None:
        areas_table.insert(1, "name", areas.frame[areas.name].to_numpy())
    if areas.region is not None:
        areas_table.insert(2 if areas.name else 1, "region", areas.frame[areas.region].to_numpy())
    importance = importance if importance is not None else pd.DataFrame(columns=["stream", "importance"])
    payload: dict[str, Any] = {
        "command": f"smallarea {command}",
        "areas": areas_table,
        "importance": importance,
        "cv": cv or {},
        "national": consistency,
        "warnings": warnings,
        "notes": result.notes,
        "settings": {**result.settings, **(extra_settings or {})},
        "seed": result.seed,
        "diagnostics": {k: v for k, v in result.diagnostics.items() if k != "mcmc"},
        "provenance": provenance(inputs=[p for p in inputs if p is not None], command=command),
    }
    if out is None:
        emit(payload, fmt, None, table=areas_table, title=f"smallarea {command}")
        return
    from hiddenpop.cli.common import atomic_write_text, dumps
    from hiddenpop.smallarea.maps import choropleth_html

    def write(folder: Path) -> None:
        atomic_write_text(folder / "result.json", dumps(payload))
        atomic_write_text(folder / "areas.csv", areas_table.to_csv(index=False, lineterminator="\n"))
        atomic_write_text(folder / "importance.csv",
                          pd.DataFrame(importance).to_csv(index=False, lineterminator="\n"))
        if cv:
            atomic_write_text(folder / "cv.csv", pd.DataFrame(cv["table"]).to_csv(index=False, lineterminator="\n"))
        if areas.geometry is not None:
            atomic_write_text(folder / "map.html", choropleth_html(areas_table, areas.geometry, areas.geometry_key,
                                                                   title=f"prevalence ({command})"))

    notes = write_output_folder(out, f"smallarea {command}", write, force=force)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {', '.join(str(out / w) for w in list_files(out))}", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("direct")
    def direct_command(
        survey: Annotated[Path, typer.Argument(help="survey file: one row per household respondent")],
        area: Annotated[str, typer.Option("--area", help="area (municipality) column")],
        hidden: Annotated[str, typer.Option("--hidden", help="hidden-group ARD column")],
        known: Annotated[str, typer.Option("--known", help="known-group ARD columns, comma-separated")],
        roster: Annotated[str, typer.Option("--roster", help="roster count columns, same order as --known")],
        household_size: Annotated[str, typer.Option("--household-size", help="household size column")],
        weight: Annotated[str | None, typer.Option("--weight", help="household weight column")] = None,
        strata: Annotated[str | None, typer.Option("--strata", help="stratum column (national bootstrap)")] = None,
        missing: Annotated[str, typer.Option("--missing", help="missing ARD answers: zero or drop")] = "zero",
        replicates: Annotated[int, typer.Option("--replicates", help="bootstrap replicates")] = 1000,
        min_respondents: Annotated[int, typer.Option("--min-respondents")] = 10,
        min_roster_members: Annotated[int, typer.Option("--min-roster-members")] = 10,
        level: LevelOption = 0.9,
        seed: SeedOption = 0,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Direct prevalence per surveyed area, known-group sizes from household rosters, bootstrap intervals."""
        from hiddenpop.data.io import read_table
        from hiddenpop.provenance import provenance
        from hiddenpop.smallarea.direct import direct_estimates

        frame = read_table(survey)
        result = direct_estimates(
            frame, area=area, hidden=hidden, known=parse_csv_list(known), roster=parse_csv_list(roster),
            household_size=household_size, weight=weight, strata=strata, level=level, replicates=replicates,
            min_respondents=min_respondents, min_roster_members=min_roster_members, missing=missing, seed=seed,
            source=survey.name,
        )
        table = result.table
        areas_table = table[table["quantity"] == "prevalence"].drop(columns=["quantity"]).copy()
        areas_table["surveyed"] = True
        first = ["area", "estimate", "se", "lower", "upper", "level", "method", "surveyed", "sparse", "flag"]
        areas_table = areas_table[first + [c for c in areas_table.columns if c not in first]]
        national = table[table["quantity"] == "national prevalence"].iloc[0]
        payload = {
            "command": "smallarea direct",
            "areas": areas_table,
            "national": {k: national[k] for k in ("estimate", "se", "lower", "upper", "level", "respondents",
                                                  "population")},
            "warnings": result.warnings,
            "notes": result.notes,
            "settings": result.settings,
            "seed": result.seed,
            "diagnostics": result.diagnostics,
            "provenance": provenance(inputs=[survey], command="direct"),
        }
        emit(payload, fmt, out, table=areas_table, title="direct estimates (roster known sizes)")

    @app.command("pool")
    def pool_command(
        areas_path: AreasArg,
        id_: IdOption,
        target: TargetOption,
        target_se: TargetSeOption = None,
        population: PopulationOption = None,
        region: RegionOption = None,
        name: NameOption = None,
        streams: StreamsOption = None,
        adjacency: AdjacencyOption = None,
        geometry: GeometryOption = None,
        geometry_key: GeometryKeyOption = None,
        impute: ImputeOption = Impute.median,
        spatial: Annotated[Spatial, typer.Option("--spatial", help="auto (BYM2 if neighbours), bym2, iid")] = (
            Spatial.auto
        ),
        engine: Annotated[Engine, typer.Option("--engine", help="hyper-parameter sampler")] = Engine.importance,
        draws: Annotated[int, typer.Option("--draws", help="posterior draws")] = 1000,
        sampling_variance: Annotated[
            SamplingVariance,
            typer.Option("--sampling-variance", help="smooth the target SEs: pooled (equal relative variance), gvf, "
                         "or direct (as given)"),
        ] = SamplingVariance.pooled,
        cross_validate: Annotated[bool, typer.Option("--cv/--no-cv", help="grouped CV of the pooled model")] = True,
        folds: Annotated[int, typer.Option("--folds", help="cross-validation folds")] = 5,
        national: NationalOption = None,
        benchmark_method: BenchmarkOption = Benchmark.none,
        level: LevelOption = 0.9,
        seed: SeedOption = 0,
        fmt: FormatOption = OutputFormat.table,
        out: OutDirOption = None,
        force: ForceOption = False,
        quiet: QuietOption = False,
    ) -> None:
        """Partially pooled (hierarchical Bayesian, optional BYM2) prevalence for every area."""
        from hiddenpop.cli.common import spinner
        from hiddenpop.smallarea.pooling import PooledModel, cross_validate_pooled

        out = _check_out(out, [areas_path, streams, adjacency, geometry], force)
        national_values = _national(national)
        areas = _read(areas_path, id_, target, target_se, population, region, name, streams, adjacency, geometry,
                      geometry_key, impute)
        model = PooledModel(spatial=spatial.value, level=level, engine=engine.value, draws=draws, seed=seed,
                            sampling_variance=sampling_variance.value)
        with spinner("fitting the pooled model", quiet=quiet):
            result = model.fit(areas)
        cv = None
        if cross_validate:
            with spinner("grouped cross-validation", quiet=quiet):
                cv_table, grouping = cross_validate_pooled(areas, model, folds=folds, seed=seed)
            cv = {"grouping": grouping, "folds": folds, "table": cv_table}
        _finish(result, areas, national=national_values, benchmark_method=benchmark_method, level=level, fmt=fmt,
                out=out, force=force, command="pool", inputs=[areas_path, streams, adjacency, geometry], cv=cv,
                importance=result.tables["importance"])

    @app.command("extrapolate")
    def extrapolate_command(
        areas_path: AreasArg,
        id_: IdOption,
        target: TargetOption,
        target_se: TargetSeOption = None,
        population: PopulationOption = None,
        region: RegionOption = None,
        name: NameOption = None,
        streams: StreamsOption = None,
        adjacency: AdjacencyOption = None,
        geometry: GeometryOption = None,
        geometry_key: GeometryKeyOption = None,
        impute: ImputeOption = Impute.median,
        model: Annotated[
            Model, typer.Option("--model", help="learner for the area estimates (best = lower grouped-CV RMSE)")
        ] = Model.best,
        folds: Annotated[int, typer.Option("--folds", help="grouped cross-validation folds")] = 5,
        repeats: Annotated[int, typer.Option("--repeats", help="permutations per stream and fold")] = 10,
        compare_pooled: Annotated[
            bool, typer.Option("--compare-pooled/--no-compare-pooled", help="add the pooled model to the CV table")
        ] = True,
        national: NationalOption = None,
        benchmark_method: BenchmarkOption = Benchmark.none,
        level: LevelOption = 0.9,
        seed: SeedOption = 0,
        fmt: FormatOption = OutputFormat.table,
        out: OutDirOption = None,
        force: ForceOption = False,
        quiet: QuietOption = False,
    ) -> None:
        """Machine-learning extrapolation (LightGBM, ridge) with conformal intervals and stream importance."""
        import pandas as pd

        from hiddenpop.cli.common import spinner
        from hiddenpop.smallarea.extrapolate import extrapolate
        from hiddenpop.smallarea.pooling import PooledModel, cross_validate_pooled

        out = _check_out(out, [areas_path, streams, adjacency, geometry], force)
        national_values = _national(national)
        areas = _read(areas_path, id_, target, target_se, population, region, name, streams, adjacency, geometry,
                      geometry_key, impute)
        with spinner("tuning and cross-validating LightGBM and ridge", quiet=quiet):
            result = extrapolate(areas, model=model.value, level=level, folds=folds, repeats=repeats, seed=seed)
        cv_table = result.tables["cv"]
        if compare_pooled:
            with spinner("cross-validating the pooled model", quiet=quiet):
                pooled_cv, _ = cross_validate_pooled(areas, PooledModel(level=level, seed=seed), folds=folds,
                                                     seed=seed)
            cv_table = pd.concat([cv_table, pooled_cv], ignore_index=True)
        cv = {"grouping": result.settings["grouping"], "folds": result.settings["folds"], "table": cv_table,
              "tuning": result.tables["tuning"]}
        _finish(result, areas, national=national_values, benchmark_method=benchmark_method, level=level, fmt=fmt,
                out=out, command="extrapolate", inputs=[areas_path, streams, adjacency, geometry], cv=cv, force=force,
                importance=result.tables["importance"])

    @app.command("synth")
    def synth_command(
        out: Annotated[Path, typer.Argument(help="folder to write the synthetic country into")],
        areas_rows: Annotated[int, typer.Option("--rows", help="grid rows (areas = rows x cols)")] = 40,
        areas_cols: Annotated[int, typer.Option("--cols", help="grid columns")] = 40,
        surveyed: Annotated[int, typer.Option("--surveyed", help="surveyed areas")] = 150,
        respondents: Annotated[int, typer.Option("--respondents", help="respondents per surveyed area")] = 24,
        seed: SeedOption = 20221,
        force: ForceOption = False,
    ) -> None:
        """Write a synthetic country (areas, survey, streams, adjacency, geometry, truth) and its direct estimates."""
        import json

        from hiddenpop.cli.common import atomic_write_text
        from hiddenpop.simulate.country import synthetic_country
        from hiddenpop.smallarea.direct import direct_estimates

        out = check_output_folder(out, force=force)
        country = synthetic_country(n_rows=areas_rows, n_cols=areas_cols, n_surveyed=surveyed,
                                    respondents_per_area=respondents, seed=seed)
        direct = direct_estimates(country.survey, area="area_id", hidden="know_hidden", known=country.known_columns,
                                  roster=country.roster_columns, household_size="household_size", weight="weight",
                                  seed=seed)
        rows = direct.table[direct.table["quantity"] == "prevalence"]
        targets = rows[["area", "estimate", "se"]].rename(
            columns={"area": "area_id", "estimate": "direct_rate", "se": "direct_se"}
        )
        areas = country.areas.merge(targets, on="area_id", how="left")
        files = {
            "areas.csv": areas.to_csv(index=False, lineterminator="\n"),
            "survey.csv": country.survey.to_csv(index=False, lineterminator="\n"),
            "truth.csv": country.truth.to_csv(index=False, lineterminator="\n"),
            "adjacency.csv": country.adjacency.to_csv(index=False, lineterminator="\n"),
            "streams.toml": country.streams_toml(),
            "areas.geojson": json.dumps(country.geometry),
        }
        notes = write_output_folder(
            out, "smallarea synth", lambda folder: [atomic_write_text(folder / name, text) for name, text in files.items()],
            force=force)
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        national = direct.table[direct.table["quantity"] == "national prevalence"].iloc[0]
        typer.echo(
            f"wrote {', '.join(files)} to {out}; direct national rate {national['estimate']:.5f} "
            f"[{national['lower']:.5f}, {national['upper']:.5f}] (90%), truth {country.national_prevalence:.5f}",
            err=True,
        )
