"""``hiddenpop simulate ...`` and top-level ``hiddenpop plan``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import (
    FormatOption,
    OutOption,
    OutputFormat,
    QuietOption,
    SeedOption,
    emit,
    parse_csv_list,
)
from hiddenpop.errors import ConfigError

SchedulerOption = Annotated[
    str,
    typer.Option(
        "--scheduler",
        help="where replicates run: serial, local (a temporary Dask LocalCluster) or a Dask address "
        "tcp://HOST:PORT; results are identical either way",
    ),
]


def _progress_callback(quiet: bool, description: str):
    """A Rich progress bar on stderr driven by (done, total) callbacks; returns (callback, close)."""
    if quiet:
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    bar.start()
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


def register(app: typer.Typer, root: typer.Typer | None = None) -> None:
    """Add ``simulate`` commands to ``app`` and top-level ``plan`` to ``root``."""

    @app.command("grid")
    def grid_command(
        grid_file: Annotated[Path, typer.Argument(help="grid TOML (see examples/grid/default.toml)")],
        out: Annotated[Path, typer.Option("--out", help="output folder for tables and plots")] = Path("grid-results"),
        scheduler: SchedulerOption = "local",
        workers: Annotated[int | None, typer.Option("--workers", help="LocalCluster worker processes")] = None,
        fmt: FormatOption = OutputFormat.table,
        quiet: QuietOption = False,
    ) -> None:
        """Run an estimator x scenario validation grid; write bias, RMSE and coverage tables (CSV/JSON) and PNGs."""
        from hiddenpop.provenance import provenance
        from hiddenpop.simulate.grid import read_grid, run_grid, write_grid

        spec = read_grid(grid_file)
        callback, close = _progress_callback(quiet, f"grid: {spec.n_tasks} simulated datasets")
        try:
            result = run_grid(spec, scheduler=scheduler, progress=callback, n_workers=workers)
        finally:
            close()
        written = write_grid(
            result,
            out,
            provenance=provenance(inputs=[grid_file], seed=spec.seed, replicates=spec.replicates,
                                  command=f"hiddenpop simulate grid {grid_file.name}"),
        )
        columns = ["family", "scenario", "estimator", "relative_bias", "relative_rmse", "coverage", "failed"]
        payload = {
            "summary": result.summary.to_dict(orient="records"),
            "files": [p.name for p in written],
            "warnings": result.warnings,
            "notes": result.notes,
        }
        emit(payload, fmt, None, table=result.summary[columns], title=f"validation grid ({spec.replicates} replicates)")
        print(f"wrote {len(written)} files to {out}", file=sys.stderr)

    if root is None:
        return

    @root.command("plan")
    def plan_command(
        target: Annotated[float, typer.Option("--target", help="relative half-width of the interval, e.g. 0.2")],
        hidden_size: Annotated[float, typer.Option("--hidden-size", help="assumed size of the hidden group")],
        population: Annotated[float | None, typer.Option("--population", help="population (default: synthetic Study 2)")] = None,
        known: Annotated[Path | None, typer.Option("--known", help="known sizes CSV (group,size); default: synthetic Study 2 occupations")] = None,
        sizes: Annotated[str, typer.Option("--sizes", help="candidate survey sizes")] = "600,1200,2400,4800",
        barrier: Annotated[float, typer.Option("--barrier", help="barrier dispersion rho in [0,1)")] = 0.0,
        transmission: Annotated[float, typer.Option("--transmission", help="transmission rate tau in (0,1]")] = 1.0,
        no_adjust: Annotated[bool, typer.Option("--no-adjust", help="do not divide by the assumed transmission")] = False,
        degree_mu: Annotated[float, typer.Option("--degree-mu")] = 5.0,
        degree_sigma: Annotated[float, typer.Option("--degree-sigma")] = 0.8,
        per_psu: Annotated[int, typer.Option("--per-psu", help="interviews per PSU")] = 24,
        strata: Annotated[int, typer.Option("--strata")] = 5,
        psu_sd: Annotated[float, typer.Option("--psu-sd", help="PSU heterogeneity of hidden-group exposure")] = 0.3,
        replicates: Annotated[int, typer.Option("--replicates")] = 100,
        bootstrap: Annotated[int, typer.Option("--bootstrap")] = 200,
        seed: SeedOption = 1,
        scheduler: SchedulerOption = "serial",
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Recommend an NSUM survey size for a target precision under assumed barrier and transmission effects."""
        from hiddenpop.simulate.ard import NATIONAL_POPULATION, OCCUPATION_SIZES
        from hiddenpop.simulate.plan import plan_survey_size

        try:
            candidates = [int(s) for s in parse_csv_list(sizes)]
        except ValueError:
            raise ConfigError(f"--sizes must be whole numbers separated by commas, got {sizes!r}") from None
        if known is not None:
            from hiddenpop.data.ard import read_known_sizes

            known_sizes, _ = read_known_sizes(known)
            known_map = {str(k): float(v) for k, v in known_sizes.items()}
        else:
            known_map = dict(OCCUPATION_SIZES)
        result = plan_survey_size(
            target=target,
            hidden_size=hidden_size,
            population=population if population is not None else NATIONAL_POPULATION,
            known_sizes=known_map,
            sizes=candidates,
            barrier_rho=barrier,
            transmission=transmission,
            adjust_transmission=not no_adjust,
            degree_mu=degree_mu,
            degree_sigma=degree_sigma,
            per_psu=per_psu,
            n_strata=strata,
            psu_sd=psu_sd,
            replicates=replicates,
            bootstrap=bootstrap,
            seed=seed,
            scheduler=scheduler,
        )
        payload = result.to_dict()
        rec = result.diagnostics["recommended_n"]
        notes = list(result.notes)
        notes.insert(0, f"recommended survey size: {rec if rec is not None else 'none of the candidates'}; "
                        f"interpolated: {result.diagnostics['interpolated_n']}")
        payload["notes"] = notes
        columns = ["n_respondents", "estimate", "relative_bias", "relative_rmse", "coverage", "meets_target"]
        table = result.table[columns].rename(columns={"estimate": "relative_half_width"})
        emit(payload, fmt, out, table=table, title=f"survey size for +/-{target:g} (relative half-width)")
