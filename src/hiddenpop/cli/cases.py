"""``hiddenpop cases summarize``: counts, shares and cross-tabs of coded case files, small cells suppressed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cases.specs import CasesSpec
from hiddenpop.cases.summary import summarize_files
from hiddenpop.cli.common import OUTPUT, OutputFormat, emit, parameter
from hiddenpop.provenance import provenance
from hiddenpop.specs import typer_command

CasesArgument = Annotated[Path, typer.Argument(help="coded case file: one row per case")]
CodebookOption = Annotated[
    Path, typer.Option("--codebook", help="CSV: column, role, type[, label, levels, missing, separator]")]
#: Columns of the table shown to people (the csv and json outputs have every column).
COMPACT = ["role", "variable", "category", "method", "count", "n_valid", "estimate", "lower", "upper", "suppressed"]


def _summarize(cases: Path, *, spec: CasesSpec, codebook: Path, fmt: OutputFormat, out: Path | None,
               quiet: bool) -> None:
    """Counts, shares with Wilson intervals, means with t intervals and cross-tabs by role; small cells hidden."""
    result = summarize_files(cases, codebook, spec)
    result.provenance = provenance(inputs=[cases, codebook], command="cases summarize")
    shown = result.table
    if fmt == OutputFormat.table:
        shown = shown[[c for c in COMPACT if c in shown.columns]]
    emit(result.to_dict(), fmt, out, table=shown, title="cases summarize")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("summarize")(typer_command(CasesSpec, _summarize, leading=[parameter("cases", CasesArgument)],
                                           trailing=[parameter("codebook", CodebookOption), *OUTPUT],
                                           command="summarize"))
