"""``hiddenpop compare referrals``: referral counts by receiving country and region, rates and rate ratios with
exact intervals, the probability of ranking first, and each agency's part; small cells suppressed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import OUTPUT, OutputFormat, emit, parameter
from hiddenpop.compare.analyses import compare_files
from hiddenpop.compare.specs import CompareSpec
from hiddenpop.provenance import provenance
from hiddenpop.specs import typer_command

ReferralsArgument = Annotated[Path, typer.Argument(help="referral table: one row per agency and country (with a "
                                                        "count), or per report and country (with --id)")]
BaseOption = Annotated[Path | None, typer.Option("--base-file", help="CSV with columns country,base (population, "
                                                                      "children or internet users) for rates")]
#: Columns of the table shown to people (the csv and json outputs have every column).
COMPACT = ["quantity", "name", "count", "estimate", "lower", "upper", "unit", "p_first", "rank_lower",
           "rank_upper", "p_value", "suppressed"]


def _referrals(referrals: Path, *, spec: CompareSpec, base_file: Path | None, fmt: OutputFormat, out: Path | None,
               quiet: bool) -> None:
    """Counts or rates per receiving country with exact Poisson intervals, ratios to the focus country with exact
    conditional intervals, the probability of ranking first, regions and leave-one-agency-out."""

    result = compare_files(referrals, spec, base_file=base_file)
    result.provenance = provenance(inputs=[p for p in (referrals, base_file) if p is not None],
                                   command="compare referrals")
    shown = result.table
    if fmt == OutputFormat.table:
        shown = shown[[c for c in COMPACT if c in shown.columns]]
    emit(result.to_dict(), fmt, out, table=shown, title="compare referrals")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("referrals")(typer_command(CompareSpec, _referrals,
                                           leading=[parameter("referrals", ReferralsArgument)],
                                           trailing=[parameter("base_file", BaseOption, None), *OUTPUT],
                                           command="referrals"))
