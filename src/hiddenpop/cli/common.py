"""Pieces every CLI command shares: output formats, atomic writes, progress bars and option types.

Commands print JSON with a stable schema (``--format json``), a CSV of the main tidy table (``--format csv``) or
a human table (``--format table``, the default). ``--out FILE`` writes the same content to a file atomically.
Progress bars go to stderr so stdout stays machine-readable; ``--quiet`` hides them.
"""

from __future__ import annotations

import inspect
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from hiddenpop.errors import ConfigError
from hiddenpop.formatting import column_label, display_table, fit_columns
from hiddenpop.outputs import atomic_write_text, dumps

T = TypeVar("T")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[OutputFormat, typer.Option("--format", help="table (for people), json or csv")]
def _writable_file(value: Path | None) -> Path | None:
    """``--out FILE`` is checked when the command line is read, before any work: a folder, a missing folder that
    cannot be created or a place the user cannot write is one clear error, not a failure after the computation."""
    if value is None:
        return None
    if value.is_dir():
        raise ConfigError(f"--out {value} is a folder; give a file name, e.g. {value / 'result.json'}")
    folder = value.resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise ConfigError(f"--out {value}: cannot create the folder {folder}; choose another path") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {value}: cannot write in {folder}; choose another path")
    if value.exists() and not os.access(value, os.W_OK):
        raise ConfigError(f"--out {value}: the file exists and is read-only; choose another path")
    return value


OutOption = Annotated[Path | None, typer.Option("--out", help="write the output to this file instead of stdout",
                                                callback=_writable_file)]
SeedOption = Annotated[int, typer.Option("--seed", help="random seed (same seed, same numbers)")]
QuietOption = Annotated[bool, typer.Option("--quiet", help="no progress bars")]
ForceOption = Annotated[bool, typer.Option("--force", help="write into an existing folder that hiddenpop did not "
                                           "write, beside its files (none of them is deleted or overwritten)")]


def parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """One input or interface option of a spec-built command (see :func:`hiddenpop.specs.typer_command`)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def option(name: str, kind: Any, help: str, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """A command input of type ``kind`` given as ``--name`` (underscores written as dashes); no default: required."""
    return parameter(name, Annotated[kind, typer.Option("--" + name.replace("_", "-"), help=help)], default)


#: How a spec-built command writes its result: ``--format``, ``--out FILE``, ``--quiet``.
OUTPUT = [parameter("fmt", FormatOption, OutputFormat.table), parameter("out", OutOption, None),
          parameter("quiet", QuietOption, False)]


def render_table(frame: pd.DataFrame, title: str | None = None, width: int | None = None) -> str:
    """A plain, aligned text table (no colour codes, so it pipes and diffs cleanly), numbers and column names as
    :mod:`hiddenpop.formatting` writes them. It fits ``width`` characters (default: the terminal's width, or
    ``COLUMNS``; piped output is not cut), leaving out secondary columns with a note saying which."""


    names, rows = display_table(frame)
    if width is None:
        width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else (
            shutil.get_terminal_size().columns if sys.stdout.isatty() else 200)
    kept = fit_columns(names, rows, width)
    table = Table(title=title, show_lines=False)
    index = [names.index(n) for n in kept]
    for name in kept:
        numeric = name in ("estimate", "interval") or (name in frame.columns
                                                        and pd.api.types.is_numeric_dtype(frame[name]))
        table.add_column(column_label(name), justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*[row[i] for i in index])
    console = Console(width=max(width, 40), record=True, file=open(os.devnull, "w"), color_system=None)
    console.print(table)
    text = console.export_text()
    left_out = [column_label(n) for n in names if n not in kept]
    if left_out:
        note = (f"({len(left_out)} column(s) left out to fit {width} characters: {', '.join(left_out)}; "
                "--format csv or --format json shows every column)")
        text += textwrap.fill(note, max(width, 40)) + "\n"
    return text


def emit(
    payload: dict[str, Any],
    fmt: OutputFormat,
    out: Path | None,
    *,
    table: pd.DataFrame | None = None,
    title: str | None = None,
) -> None:
    """Print or write a command's result in the requested format.

    ``payload`` is the JSON object; ``table`` is the main tidy table used for csv and table output (defaults
    to ``payload["estimates"]`` when that is a list of records).
    """
    if table is None and isinstance(payload.get("estimates"), list):
        table = pd.DataFrame(payload["estimates"])
    if fmt == OutputFormat.json:
        text = dumps(payload)
    elif fmt == OutputFormat.csv:
        if table is None:
            raise ConfigError("this command has no tabular output; use --format json")
        text = table.to_csv(index=False, lineterminator="\n")
    else:
        parts = []
        if table is not None:
            parts.append(render_table(table, title=title))
        for key in ("warnings", "notes"):
            items = payload.get(key) or []
            if items:
                parts.append(f"{key.capitalize()}:\n" + "\n".join(f"  - {w}" for w in items) + "\n")
        if table is None:
            parts.append(dumps(payload))
        text = "\n".join(parts)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write_text(out, text)
        print(f"wrote {out}", file=sys.stderr)


@contextmanager
def counter(description: str, *, total: int | None = None, quiet: bool = False) -> Iterator[Callable[[int, int | None],
                                                                                                    None]]:
    """A Rich progress bar on stderr for work with a count; yields ``advance(done, total)``. Silent when ``quiet``."""
    if quiet:
        yield lambda done, total=None: None
        return

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(done: int, total: int | None = None) -> None:
            bar.update(task, completed=done, **({} if total is None else {"total": total}))

        yield advance


def progress(items: Iterable[T], *, total: int | None, description: str, quiet: bool = False) -> Iterator[T]:
    """Iterate with the progress bar of :func:`counter`."""
    with counter(description, total=total, quiet=quiet) as advance:
        for done, item in enumerate(items, start=1):
            yield item
            advance(done)


@contextmanager
def status(quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """The one progress display of long steps without a natural count: yields a callback that an analysis calls
    with what it is doing, shown as a spinner on stderr (stdout stays machine-readable); silent when ``quiet``."""
    if quiet:
        yield lambda _: None
        return

    with Console(stderr=True).status("") as display:
        yield display.update


@contextmanager
def spinner(description: str, quiet: bool = False) -> Iterator[None]:
    """A status spinner on stderr showing one description for the whole block."""
    with status(quiet) as show:
        show(description)
        yield


def parse_csv_list(value: str | None) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]`` (empty items rejected)."""
    if value is None:
        return []
    items = [v.strip() for v in value.split(",")]
    if any(not v for v in items):
        raise ConfigError(f"empty item in comma-separated list {value!r}")
    return items
