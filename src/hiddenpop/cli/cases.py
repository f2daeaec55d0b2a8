"""``hiddenpop cases ...`` commands: summarize."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import FormatOption, OutOption, OutputFormat, emit


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("summarize")
    def summarize_command(
        cases: Annotated[Path, typer.Argument(help="coded case file: one row per case")],
        codebook: Annotated[
            Path,
            typer.Option("--codebook", help="CSV: column, role, type[, label, levels, missing, separator]"),
        ],
        threshold: Annotated[
            int, typer.Option("--threshold", help="suppress counts below this (privacy)")
        ] = 5,
        level: Annotated[float, typer.Option("--level", help="confidence level")] = 0.95,
        by: Annotated[
            str | None,
            typer.Option("--by", help="cross-tabulate every coded column by this categorical column"),
        ] = None,
        crosstab: Annotated[
            list[str] | None,
            typer.Option("--crosstab", help="ROW:COLUMN pair to cross-tabulate (repeatable)"),
        ] = None,
        free_text: Annotated[
            str, typer.Option("--free-text", help="drop (with a note) or refuse free-text columns")
        ] = "drop",
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Counts, shares with Wilson intervals, means with t intervals and cross-tabs by role; small cells hidden."""
        from hiddenpop.cases.summary import read_codebook, summarize_cases
        from hiddenpop.data.io import read_table
        from hiddenpop.errors import ConfigError
        from hiddenpop.provenance import provenance

        pairs = []
        for item in crosstab or []:
            parts = item.split(":")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise ConfigError(f"--crosstab expects ROW:COLUMN (got {item!r})")
            pairs.append((parts[0].strip(), parts[1].strip()))
        entries = read_codebook(read_table(codebook, as_text=True), source=codebook.name)
        result = summarize_cases(
            read_table(cases, as_text=True),
            entries,
            threshold=threshold,
            level=level,
            by=by,
            crosstabs=pairs,
            free_text=free_text,
            source=cases.name,
            codebook_source=codebook.name,
        )
        result.provenance = provenance(inputs=[cases, codebook], command="cases summarize")
        shown = result.table
        if fmt == OutputFormat.table:
            compact = [
                "role",
                "variable",
                "category",
                "method",
                "count",
                "n_valid",
                "estimate",
                "lower",
                "upper",
                "suppressed",
            ]
            shown = shown[[c for c in compact if c in shown.columns]]
        emit(result.to_dict(), fmt, out, table=shown, title="cases summarize")
