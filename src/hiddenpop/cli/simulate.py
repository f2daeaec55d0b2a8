"""``hiddenpop simulate ...`` and top-level ``hiddenpop plan``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import (
    OUTPUT,
    ForceOption,
    FormatOption,
    OutputFormat,
    QuietOption,
    counter,
    emit,
    parameter,
)
from hiddenpop.data.ard import read_known_sizes
from hiddenpop.outputs import check_output_folder, list_files, write_output_folder
from hiddenpop.provenance import provenance
from hiddenpop.simulate.grid import grid_estimates, read_grid, run_grid, write_grid
from hiddenpop.simulate.plan import plan_analysis
from hiddenpop.simulate.specs import PlanSpec, StudySimulationSpec
from hiddenpop.specs import typer_command
from hiddenpop.study.validation import simulate_study

SchedulerOption = Annotated[
    str,
    typer.Option(
        "--scheduler",
        help="where replicates run: serial, local (a temporary Dask LocalCluster) or a Dask address "
        "tcp://HOST:PORT; results are identical either way",
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``simulate grid`` and ``simulate study`` to ``app``."""
    @app.command("grid")
    def grid_command(
        grid_file: Annotated[Path, typer.Argument(help="grid TOML (see examples/grid/default.toml)")],
        out_dir: Annotated[Path, typer.Option("--out-dir", help="output folder for tables and plots")] = Path(
            "grid-results"),
        scheduler: SchedulerOption = "local",
        workers: Annotated[int | None, typer.Option("--workers", help="LocalCluster worker processes")] = None,
        fmt: FormatOption = OutputFormat.table,
        force: ForceOption = False,
        quiet: QuietOption = False,
    ) -> None:
        """Run an estimator x scenario validation grid; write bias, RMSE and coverage tables (CSV/JSON) and PNGs."""
        out_dir = check_output_folder(out_dir, protect=[grid_file], force=force, option="--out-dir")
        spec = read_grid(grid_file)
        with counter(f"grid: {spec.n_tasks} simulated datasets", quiet=quiet) as advance:
            result = run_grid(spec, scheduler=scheduler, progress=advance, n_workers=workers)
        record = provenance(inputs=[grid_file], seed=spec.seed, replicates=spec.replicates,
                            command=f"hiddenpop simulate grid {grid_file.name}")
        notes = write_output_folder(out_dir, "simulate grid", lambda folder: write_grid(result, folder,
                                                                                       provenance=record),
                                    force=force)
        columns = ["family", "scenario", "estimator", "relative_bias", "relative_rmse", "coverage", "failed"]
        estimates = grid_estimates(result, spec)
        estimates.provenance = record
        emit(estimates.to_dict(), fmt, None, table=result.summary[columns],
             title=f"validation grid ({spec.replicates} replicates)")
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"wrote {len(list_files(out_dir))} files to {out_dir}", file=sys.stderr)

    app.command("study")(typer_command(StudySimulationSpec, _study,
                                       trailing=[parameter("scheduler", SchedulerOption, "serial"), *OUTPUT],
                                       command="simulate study"))


KnownOption = Annotated[Path | None, typer.Option("--known", help="known sizes CSV (group,size); default: the "
                                                  "synthetic national survey's occupations")]


def _study(*, spec: StudySimulationSpec, scheduler: str, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Run the whole study pipeline on synthetic countries with known truth: headline bias and coverage for
    victims, traffickers and their ratio, per scenario (docs/validation.md)."""
    total = len(spec.scenario) * spec.countries
    with counter(f"simulate study: {total} synthetic countries", quiet=quiet) as advance:
        result = simulate_study(spec, scheduler=scheduler, progress=advance)
    columns = ["scenario", "quantity", "countries", "stopped", "relative_bias", "bias_mcse", "coverage",
               "coverage_mcse"]
    emit(result.to_dict(), fmt, out, table=result.tables["summary"][columns],
         title=f"study validation ({spec.countries} countries per scenario)")


def _plan(*, spec: PlanSpec, known: Path | None, scheduler: str, fmt: OutputFormat, out: Path | None,
          quiet: bool) -> None:
    """Recommend an NSUM survey size for a target precision under assumed barrier and transmission effects."""
    known_map = None
    if known is not None:
        known_sizes, _ = read_known_sizes(known)
        known_map = {str(k): float(v) for k, v in known_sizes.items()}
    result = plan_analysis(spec, known_sizes=known_map, scheduler=scheduler)
    columns = ["n_respondents", "estimate", "relative_bias", "relative_rmse", "coverage", "meets_target"]
    table = result.table[columns].rename(columns={"estimate": "relative_half_width"})
    emit(result.to_dict(), fmt, out, table=table, title=f"survey size for +/-{spec.target:g} (relative half-width)")


def register_root(app: typer.Typer) -> None:
    """Add the top-level ``plan`` to ``app``."""
    inputs = [parameter("known", KnownOption, None), parameter("scheduler", SchedulerOption, "serial")]
    app.command("plan")(typer_command(PlanSpec, _plan, trailing=[*inputs, *OUTPUT], command="plan"))
