"""``hiddenpop capture ...`` commands."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.capture.analyses import ClosedSpec, IntervalSpec
from hiddenpop.cli_common import FormatOption, OutOption, OutputFormat, emit
from hiddenpop.specs import typer_command

app = typer.Typer(no_args_is_help=True)

FileArgument = Annotated[Path, typer.Argument(help="capture data: 0/1 rows, 0/1 patterns + count, or nbcap,freq")]


def _parameter(name: str, annotation, default=inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


_FILE = [_parameter("file", FileArgument)]
_OUTPUT = [_parameter("fmt", FormatOption, OutputFormat.table), _parameter("out", OutOption, None)]


def _closed(file: Path, *, spec: ClosedSpec, fmt: OutputFormat, out: Path | None) -> None:
    """Fit the closed models (M0, Mt, Mh/Mth Chao, Poisson2, Darroch, Gamma3.5, Mb, Mbh) and compare them."""
    from hiddenpop.capture.analyses import closed_analysis, read_histories
    from hiddenpop.provenance import provenance

    histories = read_histories(file, spec)
    result = closed_analysis(histories, spec)
    result.provenance = provenance(inputs=[file], rcapture=spec.rcapture)
    emit(result.to_dict(), fmt, out, table=result.tables["models"],
         title=f"{histories.observed} units seen, t = {histories.occasions}")


def _interval(file: Path, *, spec: IntervalSpec, fmt: OutputFormat, out: Path | None) -> None:
    """Profile-likelihood interval for N (multinomial, Cormack's correction), with Wald and log-transformed."""
    from hiddenpop.capture.analyses import interval_analysis, read_histories
    from hiddenpop.provenance import provenance

    result = interval_analysis(read_histories(file, spec), spec)
    result.provenance = provenance(inputs=[file], model=spec.model, level=spec.level)
    table = result.table[["interval", "estimate", "lower", "upper"]].rename(columns={"estimate": "abundance"})
    emit(result.to_dict(), fmt, out, table=table, title=f"{spec.model}, level {spec.level:g}")


app.command("closed")(typer_command(ClosedSpec, _closed, leading=_FILE, trailing=_OUTPUT, command="closed"))
app.command("ci")(typer_command(IntervalSpec, _interval, leading=_FILE, trailing=_OUTPUT, command="ci"))


def _register_subfamilies() -> None:
    from hiddenpop.capture.cli_events import register as register_events
    from hiddenpop.capture.cli_lists import register as register_lists

    register_lists(app)
    register_events(app)


_register_subfamilies()
