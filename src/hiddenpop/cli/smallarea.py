"""``hiddenpop smallarea ...`` commands: direct, pool, extrapolate, synth.

``pool`` and ``extrapolate`` take their options from :mod:`hiddenpop.smallarea.specs`, call
:mod:`hiddenpop.smallarea.analyses` and print ``Estimates.to_dict()``: ``tables.areas`` (one row per area),
``tables.importance`` (per data stream), ``tables.cv`` (per learner), ``diagnostics.national`` (the implied
national rate against the national interval, and any calibration). ``--out FILE`` writes that output to a file;
``--out-dir DIR`` writes ``result.json``, ``areas.csv``, ``importance.csv``, ``cv.csv`` and, with ``--geometry``,
``map.html`` (a self-contained Plotly choropleth).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from hiddenpop.cli.common import (
    OUTPUT,
    ForceOption,
    OutputFormat,
    SeedOption,
    emit,
    parameter,
    parse_csv_list,
    status,
)
from hiddenpop.data.io import read_table
from hiddenpop.errors import ConfigError
from hiddenpop.outputs import atomic_write_text, check_output_folder, dumps, list_files, write_output_folder
from hiddenpop.provenance import provenance
from hiddenpop.simulate.country import country_files, synthetic_country
from hiddenpop.smallarea.analyses import extrapolate_analysis, pool_analysis
from hiddenpop.smallarea.areas import read_areas
from hiddenpop.smallarea.direct import direct_analysis
from hiddenpop.smallarea.maps import choropleth_html
from hiddenpop.smallarea.specs import DirectSpec, ExtrapolateSpec, PoolSpec
from hiddenpop.specs import typer_command

SurveyArgument = Annotated[Path, typer.Argument(help="survey file: one row per household respondent")]
AreasArg = Annotated[Path, typer.Argument(help="area table: one row per area (CSV, Parquet, Excel, SPSS, Stata)")]
IdOption = Annotated[str, typer.Option("--id", help="area id column")]
TargetOption = Annotated[str, typer.Option("--target", help="direct prevalence rate (empty where not surveyed)")]
TargetSeOption = Annotated[str | None, typer.Option("--target-se", help="standard error of the target")]
PopulationOption = Annotated[str | None, typer.Option("--population-column", "--population",
                                                      help="population base column of each area")]
RegionOption = Annotated[str | None, typer.Option("--region", help="parent region column (CV groups)")]
NameOption = Annotated[str | None, typer.Option("--name", help="area name column (not a covariate)")]
StreamsOption = Annotated[Path | None, typer.Option("--streams", help="STREAMS.toml: stream = [columns]")]
AdjacencyOption = Annotated[Path | None, typer.Option("--adjacency", help="table of neighbour pairs (two id columns)")]
GeometryOption = Annotated[Path | None, typer.Option("--geometry", help="GeoJSON of the areas (map, neighbours)")]
GeometryKeyOption = Annotated[str | None, typer.Option("--geometry-key", help="feature property with the area id")]
LevelOption = Annotated[float, typer.Option("--level", help="interval level")]
NationalOption = Annotated[
    str | None, typer.Option("--national", help="national rate as ESTIMATE,LOWER,UPPER (e.g. from `direct`)")
]
OutDirOption = Annotated[Path | None, typer.Option("--out-dir", help="write result.json, areas.csv, ... to this "
                                                                    "folder")]


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

    return read_areas(
        areas_path, id=id_, target=target, target_se=target_se, population=population, region=region, name=name,
        streams=streams, adjacency=adjacency, geometry=geometry, geometry_key=geometry_key, impute=impute,
    )


def _write_folder(out_dir: Path, result, areas, command: str, force: bool) -> None:
    """The result as files: result.json, areas.csv, importance.csv, cv.csv and the map when there is geometry."""


    def csv(frame) -> str:
        return pd.DataFrame(frame).to_csv(index=False, lineterminator="\n")

    def write(folder: Path) -> None:
        atomic_write_text(folder / "result.json", dumps(result.to_dict()))
        atomic_write_text(folder / "areas.csv", csv(result.tables["areas"]))
        atomic_write_text(folder / "importance.csv", csv(result.tables["importance"]))
        if "cv" in result.tables:
            atomic_write_text(folder / "cv.csv", csv(result.tables["cv"]))
        if areas.geometry is not None:
            atomic_write_text(folder / "map.html", choropleth_html(result.tables["areas"], areas.geometry,
                                                                   areas.geometry_key,
                                                                   title=f"prevalence ({command})"))

    for note in write_output_folder(out_dir, f"smallarea {command}", write, force=force):
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {', '.join(str(out_dir / w) for w in list_files(out_dir))}", err=True)


def _area_command(command: str):
    """The run function of ``pool`` or ``extrapolate``: read, check the output folder, call the analysis, emit."""
    def run(areas_path: Path, *, spec, id_: str, target: str, target_se: str | None, population: str | None,
            region: str | None, name: str | None, streams: Path | None, adjacency: Path | None,
            geometry: Path | None, geometry_key: str | None, national: str | None, fmt: OutputFormat,
            out: Path | None, out_dir: Path | None, force: bool, quiet: bool) -> None:

        inputs = [p for p in (areas_path, streams, adjacency, geometry) if p is not None]
        if out is not None and out_dir is not None:
            raise ConfigError("give --out FILE or --out-dir DIR, not both")
        if out_dir is not None:
            out_dir = check_output_folder(out_dir, protect=inputs, force=force, option="--out-dir")
        national_values = _national(national)
        areas = _read(areas_path, id_, target, target_se, population, region, name, streams, adjacency, geometry,
                      geometry_key, spec.impute)
        analysis = pool_analysis if command == "pool" else extrapolate_analysis
        with status(quiet) as progress:
            result = analysis(areas, spec, national=national_values, progress=progress)
        result.provenance = provenance(inputs=inputs, command=f"smallarea {command}")
        if out_dir is None:
            emit(result.to_dict(), fmt, out, table=result.tables["areas"], title=f"smallarea {command}")
        else:
            _write_folder(out_dir, result, areas, command, force)

    run.__doc__ = {"pool": "Partially pooled (hierarchical Bayesian, optional BYM2) prevalence for every area.",
                   "extrapolate": "Machine-learning extrapolation (LightGBM, ridge) with conformal intervals and "
                                  "stream importance."}[command]
    run.__name__ = command
    return run


_AREA_INPUTS = [parameter("areas_path", AreasArg)]
_AREA_OPTIONS = [
    parameter("id_", IdOption), parameter("target", TargetOption), parameter("target_se", TargetSeOption, None),
    parameter("population", PopulationOption, None), parameter("region", RegionOption, None),
    parameter("name", NameOption, None), parameter("streams", StreamsOption, None),
    parameter("adjacency", AdjacencyOption, None), parameter("geometry", GeometryOption, None),
    parameter("geometry_key", GeometryKeyOption, None), parameter("national", NationalOption, None),
]
_AREA_OUTPUT = [*OUTPUT[:2], parameter("out_dir", OutDirOption, None), parameter("force", ForceOption, False),
                OUTPUT[2]]


DIRECT_INPUTS = [
    parameter("area", Annotated[str, typer.Option("--area", help="area (municipality) column")]),
    parameter("hidden", Annotated[str, typer.Option("--hidden", help="hidden-group ARD column")]),
    parameter("known_columns", Annotated[str, typer.Option("--known-columns", "--known", help="known-group ARD "
                                                           "columns, comma-separated")]),
    parameter("roster", Annotated[str, typer.Option("--roster", help="roster count columns, same order as "
                                                    "--known-columns")]),
    parameter("household_size", Annotated[str, typer.Option("--household-size", help="household size column")]),
    parameter("weights", Annotated[str | None, typer.Option("--weights", "--weight", help="household weight "
                                                            "column")], None),
    parameter("strata", Annotated[str | None, typer.Option("--strata", help="stratum column (national "
                                                           "bootstrap)")], None),
]


def _direct(survey: Path, *, spec: DirectSpec, area: str, hidden: str, known_columns: str, roster: str,
            household_size: str, weights: str | None, strata: str | None, fmt: OutputFormat, out: Path | None,
            quiet: bool) -> None:
    """Direct prevalence per surveyed area, known-group sizes from household rosters, bootstrap intervals."""
    result = direct_analysis(read_table(survey), spec, area=area, hidden=hidden,
                             known=parse_csv_list(known_columns), roster=parse_csv_list(roster),
                             household_size=household_size, weights=weights, strata=strata, source=survey.name)
    result.provenance = provenance(inputs=[survey], command="smallarea direct")
    emit(result.to_dict(), fmt, out, table=result.tables["areas"], title="direct estimates (roster known sizes)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("direct")(typer_command(DirectSpec, _direct, leading=[parameter("survey", SurveyArgument)],
                                        trailing=[*DIRECT_INPUTS, *OUTPUT], command="direct"))
    app.command("pool")(typer_command(PoolSpec, _area_command("pool"), leading=_AREA_INPUTS,
                                      trailing=_AREA_OPTIONS + _AREA_OUTPUT, command="pool"))
    app.command("extrapolate")(typer_command(ExtrapolateSpec, _area_command("extrapolate"), leading=_AREA_INPUTS,
                                             trailing=_AREA_OPTIONS + _AREA_OUTPUT, command="extrapolate"))

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
        out = check_output_folder(out, force=force, option="OUT")
        country = synthetic_country(n_rows=areas_rows, n_cols=areas_cols, n_surveyed=surveyed,
                                    respondents_per_area=respondents, seed=seed)
        files, national = country_files(country, seed=seed)
        notes = write_output_folder(
            out, "smallarea synth", lambda folder: [atomic_write_text(folder / name, text) for name, text in files.items()],
            force=force)
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        typer.echo(
            f"wrote {', '.join(files)} to {out}; direct national rate {national['estimate']:.5f} "
            f"[{national['lower']:.5f}, {national['upper']:.5f}] (90%), truth {country.national_prevalence:.5f}",
            err=True,
        )
