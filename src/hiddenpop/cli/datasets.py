"""``hiddenpop datasets list|export``: the bundled public reference datasets."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop import datasets
from hiddenpop.cli.common import FormatOption, OutputFormat, emit
from hiddenpop.errors import ConfigError
from hiddenpop.results import Estimates


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    @app.command("list")
    def list_command(fmt: FormatOption = OutputFormat.table) -> None:
        """The bundled datasets with their source and licence."""
        table = datasets.list()[["name", "family", "format", "description", "source", "licence"]]
        listing = Estimates.tables_only({"datasets": table})
        emit(listing.to_dict(), fmt, None, table=table, title="Bundled datasets")

    @app.command("export")
    def export_command(
        names: Annotated[list[str], typer.Argument(help="dataset names (see `hiddenpop datasets list`)")],
        out_dir: Annotated[Path, typer.Option("--out-dir", help="folder to write NAME.csv files into")] = Path("."),
    ) -> None:
        """Copy datasets to NAME.csv files (an existing file is never overwritten)."""
        sources = [datasets.path(name) for name in names]  # unknown names fail before anything is written
        targets = [out_dir / f"{name}.csv" for name in names]
        taken = [t for t in targets if t.exists()]
        if taken:
            raise ConfigError(f"{taken[0]} already exists; remove it or choose another --out-dir")
        out_dir.mkdir(parents=True, exist_ok=True)
        for source, target in zip(sources, targets, strict=True):
            shutil.copyfile(source, target)
            print(f"wrote {target}", file=sys.stderr)
