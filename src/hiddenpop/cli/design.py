"""``hiddenpop design ...`` commands: sample-size, select, weights (options from :mod:`hiddenpop.design.specs`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import OUTPUT, OutputFormat, emit, option, parameter, parse_csv_list
from hiddenpop.data.io import read_table
from hiddenpop.design.precision import sample_size_analysis
from hiddenpop.design.selection import read_allocation, select_pps
from hiddenpop.design.specs import SampleSizeSpec, SelectSpec, WeightsSpec
from hiddenpop.design.weights import compute_weights, read_margins
from hiddenpop.errors import ConfigError
from hiddenpop.outputs import atomic_write_text
from hiddenpop.provenance import provenance
from hiddenpop.specs import typer_command

FrameArgument = Annotated[Path, typer.Argument(help="sampling frame (CSV, Excel, Parquet, ...): one row per PSU or SSU")]
SELECT_INPUTS = [
    option("stratum", str, "stratum column"),
    option("psu", str, "primary sampling unit id column"),
    option("size", str, "size measure column (e.g. households)"),
    option("allocation", Path | None, "CSV with columns stratum, psus (instead of --psus)", None),
    option("ssu", str | None, "secondary unit column (frame rows are SSUs)", None),
    option("units", str | None, "eligible final units per area (default: --size)", None),
    option("reserves_out", Path | None, "also write the reserve list CSV here", None),
]
SampleArgument = Annotated[
    Path, typer.Argument(help="sample file: one row per selected unit (respondents and non-respondents)")]
WEIGHTS_INPUTS = [
    option("probability", str | None, "column of overall selection probabilities", None),
    option("base_weight", str | None, "column of design weights (instead of --probability)", None),
    option("respondent", str | None, "0/1 column: did the unit respond", None),
    option("cells", str | None, "comma-separated columns forming non-response cells", None),
    option("margins", Path | None, "CSV with columns variable, level, total", None),
]


def _sample_size(*, spec: SampleSizeSpec, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Sample size for a proportion given a margin, or the margin given a sample size (--n)."""
    result = sample_size_analysis(spec)
    emit(result.to_dict(), fmt, out, table=result.table, title="design sample-size")


def _select(frame: Path, *, spec: SelectSpec, stratum: str, psu: str, size: str, allocation: Path | None,
            ssu: str | None, units: str | None, reserves_out: Path | None, fmt: OutputFormat, out: Path | None,
            quiet: bool) -> None:
    """Stratified multistage PPS selection (systematic, without replacement) with a reserve list.

    --format csv writes the selected areas with their selection probabilities and design weights.
    """
    if (spec.psus is None) == (allocation is None):
        raise ConfigError("give exactly one of --psus (total, proportional allocation) or --allocation FILE")
    plan = spec.psus if allocation is None else read_allocation(read_table(allocation), allocation.name)
    result = select_pps(read_table(frame), stratum=stratum, psu=psu, size=size, psus=plan, take=spec.take, ssu=ssu,
                        ssus_per_psu=spec.ssus_per_psu, units=units, reserves=spec.reserves, order=spec.order,
                        seed=spec.seed, source=frame.name)
    result.provenance = provenance(inputs=[p for p in (frame, allocation) if p is not None],
                                   command="design select", seed=spec.seed)
    if reserves_out is not None:
        atomic_write_text(reserves_out, result.tables["reserves"].to_csv(index=False, lineterminator="\n"))
    main = result.tables["selection"] if fmt == OutputFormat.csv else result.table
    emit(result.to_dict(), fmt, out, table=main, title="design select")


def _weights(sample: Path, *, spec: WeightsSpec, probability: str | None, base_weight: str | None,
             respondent: str | None, cells: str | None, margins: Path | None, fmt: OutputFormat, out: Path | None,
             quiet: bool) -> None:
    """Base weights, non-response adjustment within cells, raking to known margins.

    --format csv writes the sample with base_weight, nonresponse_weight and final_weight columns.
    """
    targets = read_margins(read_table(margins), source=margins.name) if margins is not None else None
    result = compute_weights(read_table(sample), probability=probability, base_weight=base_weight,
                             respondent=respondent, cells=parse_csv_list(cells) or None, margins=targets,
                             max_iter=spec.max_iter, tolerance=spec.tolerance, max_factor=spec.max_factor,
                             source=sample.name)
    result.provenance = provenance(inputs=[p for p in (sample, margins) if p is not None], command="design weights")
    main = result.tables["weights"] if fmt == OutputFormat.csv else result.table
    emit(result.to_dict(), fmt, out, table=main, title="design weights")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("sample-size")(typer_command(SampleSizeSpec, _sample_size, trailing=OUTPUT, command="sample-size"))
    app.command("select")(typer_command(SelectSpec, _select, leading=[parameter("frame", FrameArgument)],
                                        trailing=[*SELECT_INPUTS, *OUTPUT], command="select"))
    app.command("weights")(typer_command(WeightsSpec, _weights, leading=[parameter("sample", SampleArgument)],
                                         trailing=[*WEIGHTS_INPUTS, *OUTPUT], command="weights"))
