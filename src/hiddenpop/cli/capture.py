"""``hiddenpop capture ...`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hiddenpop import mcmc
from hiddenpop.capture import analyses
from hiddenpop.capture.specs import ClosedSpec, CoverageSpec, IntervalSpec, MSESpec, SingleSpec
from hiddenpop.cli.common import OUTPUT, OutputFormat, emit, parameter, spinner
from hiddenpop.provenance import provenance
from hiddenpop.specs import typer_command

FileArgument = Annotated[Path, typer.Argument(help="capture data: 0/1 rows, 0/1 patterns + count, or nbcap,freq")]
ListsArgument = Annotated[
    Path, typer.Argument(help="list data: one 0/1 column per list, plus a count column (freq/count/n) if aggregated")
]


_FILE = [parameter("file", FileArgument)]
_LISTS = [parameter("file", ListsArgument)]


def _closed(file: Path, *, spec: ClosedSpec, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Fit the closed models (M0, Mt, Mh/Mth Chao, Poisson2, Darroch, Gamma3.5, Mb, Mbh) and compare them."""
    histories = analyses.read_histories(file, spec)
    result = analyses.closed_analysis(histories, spec)
    result.provenance = provenance(inputs=[file], rcapture=spec.rcapture)
    emit(result.to_dict(), fmt, out, table=result.tables["models"],
         title=f"{histories.observed} units seen, t = {histories.occasions}")


def _interval(file: Path, *, spec: IntervalSpec, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Profile-likelihood interval for N (multinomial, Cormack's correction), with Wald and log-transformed."""
    result = analyses.interval_analysis(analyses.read_histories(file, spec), spec)
    result.provenance = provenance(inputs=[file], model=spec.model, level=spec.level)
    table = result.table[["interval", "estimate", "lower", "upper"]].rename(columns={"estimate": "abundance"})
    emit(result.to_dict(), fmt, out, table=table, title=f"{spec.model}, level {spec.level:g}")


def _mse(file: Path, *, spec: MSESpec, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Multiple systems estimate with model selection; every number names its procedure and threshold. With
    --compare, every model class side by side and the headline flagged."""
    if analyses.fits_latent(spec):
        mcmc.enable_compilation_cache()  # the latent-class sampler's compilation is a large part of a run
    busy = quiet or (spec.bootstrap == 0 and not spec.compare)
    with spinner("fitting every model class" if spec.compare else f"selecting a model ({spec.select}) and fitting",
                 quiet=busy):
        result = analyses.mse_analysis(file, spec)
    result.provenance = provenance(inputs=[file], **result.settings)
    if spec.stratum is not None:
        columns = ["stratum", "method", "observed", "estimate", "lower", "upper", "status"]
        emit(result.to_dict(), fmt, out, table=result.table[columns],
             title=f"{result.diagnostics['strata']} strata of {spec.stratum}")
        return
    lists = result.diagnostics["lists"]
    title = f"{int(result.diagnostics['observed'])} cases on {len(lists)} lists"
    if spec.compare:
        columns = ["model_class", "method", "estimate", "lower", "upper", "interval", "headline", "status",
                   "diagnostic"]
        emit(result.to_dict(), fmt, out, table=result.table[columns], title=title)
        return
    columns = ["method", "selected", "estimate", "se", "lower", "upper", "level", "deviance", "df", "aic", "bic",
               "interval"]
    emit(result.to_dict(), fmt, out, table=result.table[columns], title=title)


def _coverage(file: Path, *, spec: CoverageSpec, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Sample-coverage estimators with bootstrap standard errors and log-transformed intervals."""
    result = analyses.coverage_analysis(file, spec)
    result.provenance = provenance(inputs=[file], **result.settings)
    columns = ["method", "estimate", "se", "lower", "upper", "level"]
    title = f"sample coverage ({spec.kind}): Ĉ = {result.diagnostics['coverage']:.3f}"
    emit(result.to_dict(), fmt, out, table=result.table[columns], title=title)


def _single(file: Path, *, spec: SingleSpec, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Single-source estimators from the number of times each unit was seen: zero-truncated Poisson, geometric and
    negative binomial regressions, one-inflated Poisson and geometric regressions, Zelterman, Chao."""
    result = analyses.single_analysis(file, spec)
    result.provenance = provenance(inputs=[file], **result.settings)
    columns = ["method", "estimate", "se", "lower", "upper", "level"]
    emit(result.to_dict(), fmt, out, table=result.table[columns],
         title=f"{result.diagnostics['observed']} units seen (single source)")


SingleArgument = Annotated[Path, typer.Argument(help="one row per unit seen: the times it was seen, covariates")]


def register(app: typer.Typer) -> None:
    """Add the closed-population, list and single-source commands to ``capture``."""
    app.command("closed")(typer_command(ClosedSpec, _closed, leading=_FILE, trailing=OUTPUT, command="closed"))
    app.command("ci")(typer_command(IntervalSpec, _interval, leading=_FILE, trailing=OUTPUT, command="ci"))
    app.command("mse")(typer_command(MSESpec, _mse, leading=_LISTS, trailing=OUTPUT, command="mse"))
    app.command("single")(typer_command(SingleSpec, _single, leading=[parameter("file", SingleArgument)],
                                        trailing=OUTPUT, command="single"))
    app.command("coverage")(typer_command(CoverageSpec, _coverage, leading=_LISTS, trailing=OUTPUT,
                                          command="coverage"))
