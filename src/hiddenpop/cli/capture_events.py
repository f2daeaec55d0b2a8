"""``hiddenpop capture events|histories|open|robust`` (report logs, rolling windows, open populations, the robust
design).

``events`` and ``histories`` take their options from :mod:`hiddenpop.capture.specs` (``EventsSpec``,
``HistoriesSpec``: reading and cleaning the log, the windows, the estimator) and call
:mod:`hiddenpop.capture.analyses`; ``--out-dir DIR`` writes the series (or histories) and the cleaning audit as
CSV (or JSON with ``--format json``) beside ``result.json``, and for ``events`` a PNG and an HTML figure.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.capture import analyses, events
from hiddenpop.capture.specs import EventsSpec, HistoriesSpec, OpenSpec, RobustSpec
from hiddenpop.cli.common import (
    OUTPUT,
    ForceOption,
    OutputFormat,
    emit,
    parameter,
    progress,
    spinner,
)
from hiddenpop.errors import ConfigError
from hiddenpop.outputs import atomic_write_text, check_output_folder, dumps, list_files, write_output_folder
from hiddenpop.privacy import load_key
from hiddenpop.provenance import provenance
from hiddenpop.specs import typer_command

OpenFileArgument = Annotated[
    Path, typer.Argument(help="histories: 0/1 period columns + count column, or `capture histories` output")]
RobustFileArgument = Annotated[
    Path, typer.Argument(help="histories: one 0/1 column per secondary occasion (period 1's first) + count column, "
                              "or `capture histories --periods` output")]
FilesArgument = Annotated[list[str], typer.Argument(help="report-log files (CSV or Parquet; globs allowed)")]
IdOption = Annotated[str, typer.Option("--id", help="identifier column (e.g. the IP address); pseudonymised at read")]
TimeOption = Annotated[str, typer.Option("--time", help="timestamp column (ISO 8601; offsets honoured)")]
KeyOption = Annotated[
    Path | None, typer.Option("--key-file", help="pseudonymisation key file (else env HIDDENPOP_KEY); required")
]
OutDirOption = Annotated[Path | None, typer.Option("--out-dir", help="write all outputs into this folder")]
MemoryOption = Annotated[
    str | None, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 3GB (larger data spill to disk)")
]
TempDirOption = Annotated[Path | None, typer.Option("--temp-dir", help="where DuckDB may spill (default: its own)")]
ThreadsOption = Annotated[
    int | None, typer.Option("--threads", min=1, help="DuckDB threads, and the most worker processes for hashing, counting and fitting (default: one per core)")
]

_LOG_INPUTS = [parameter("files", FilesArgument)]
_LOG_OPTIONS = [parameter("identifier", IdOption), parameter("time", TimeOption),
                parameter("key_file", KeyOption, None), parameter("memory_limit", MemoryOption, None),
                parameter("temp_dir", TempDirOption, None), parameter("threads", ThreadsOption, None)]
_FOLDER_OUTPUT = [*OUTPUT[:2], parameter("out_dir", OutDirOption, None), parameter("force", ForceOption, False),
                  OUTPUT[2]]


def _read(files, spec, identifier, time, key_file, memory_limit, temp_dir, threads, quiet):
    key = load_key(key_file)
    with spinner("reading and pseudonymising report logs", quiet=quiet):
        return analyses.read_log(files, spec, identifier=identifier, time=time, key=key, threads=threads,
                        memory_limit=memory_limit, temp_directory=None if temp_dir is None else str(temp_dir))


def _print_key_warnings(log) -> None:
    """Key warnings on stderr once the run has succeeded (a failing run prints only its one error line)."""
    for warning in log.key_warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _write_dir(out: Path, fmt: OutputFormat, frames: dict, payload: dict) -> list[Path]:
    written = []
    for name, frame in frames.items():
        if fmt == OutputFormat.json:
            path = out / f"{name}.json"
            atomic_write_text(path, dumps(frame.to_dict(orient="records")))
        else:
            path = out / f"{name}.csv"
            atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
        written.append(path)
    path = out / "result.json"
    atomic_write_text(path, dumps(payload))
    written.append(path)
    return written


def _check_out(out: Path | None, out_dir: Path | None, files: list[str], force: bool) -> Path | None:
    """The output folder, checked before any reading: never an input's folder, never a user's folder unless --force."""
    if out is not None and out_dir is not None:
        raise ConfigError("give --out FILE or --out-dir DIR, not both")
    if out_dir is None:
        return None
    inputs = [match for pattern in files for match in (glob.glob(pattern) or [pattern])]
    return check_output_folder(out_dir, protect=[p for p in inputs if Path(p).exists()], force=force,
                               option="--out-dir")


def _report_written(out: Path, notes: list[str]) -> None:
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {len(list_files(out))} files to {out}", file=sys.stderr)


def _events(files: list[str], *, spec: EventsSpec, identifier: str, time: str, key_file: Path | None,
            memory_limit: str | None, temp_dir: Path | None, threads: int | None, fmt: OutputFormat,
            out: Path | None, out_dir: Path | None, force: bool, quiet: bool) -> None:
    """Report logs -> cleaning audit -> rolling windows -> estimate per window (series, audit, PNG, HTML)."""
    out_dir = _check_out(out, out_dir, files, force)
    log = _read(files, spec, identifier, time, key_file, memory_limit, temp_dir, threads, quiet)
    result = analyses.events_analysis(log, spec, iterate=lambda items, total: progress(items, total=total,
                                                                              description="windows", quiet=quiet))
    _print_key_warnings(log)
    series = result.tables["series"]
    if out_dir is None:
        emit(result.to_dict(), fmt, out, table=series, title=f"{result.settings['estimator']} per window")
        return
    step = result.diagnostics["windows"].get("step_days")
    title = f"{result.settings['estimator']}: {spec.occasions} x {spec.occasion} occasions, step {step}D"

    def write(folder: Path) -> None:
        _write_dir(folder, fmt, {"series": series, "audit": log.audit}, result.to_dict())
        events.plot_series_png(series, folder / "series.png", title=title)
        events.plot_series_html(series, folder / "series.html", title=title)

    _report_written(out_dir, write_output_folder(out_dir, "capture events", write, force=force))


def _histories(files: list[str], *, spec: HistoriesSpec, identifier: str, time: str, key_file: Path | None,
               memory_limit: str | None, temp_dir: Path | None, threads: int | None, fmt: OutputFormat,
               out: Path | None, out_dir: Path | None, force: bool, quiet: bool) -> None:
    """Report logs -> capture-history counts per window (window_start, window_end, history, count) + audit.

    With one window (e.g. thirteen 4-week occasions over a year and no --step) the output feeds
    ``hiddenpop capture open``.
    """
    out_dir = _check_out(out, out_dir, files, force)
    log = _read(files, spec, identifier, time, key_file, memory_limit, temp_dir, threads, quiet)
    result = analyses.histories_analysis(log, spec)
    _print_key_warnings(log)
    table = result.tables["histories"]
    if out_dir is None:
        emit(result.to_dict(), fmt, out, table=table, title="history counts per window")
        return
    notes = write_output_folder(
        out_dir, "capture histories",
        lambda folder: _write_dir(folder, fmt, {"histories": table, "audit": log.audit}, result.to_dict()),
        force=force)
    _report_written(out_dir, notes)


def _open(file: Path, *, spec: OpenSpec, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Cormack (1989) open-population log-linear model (Rcapture openp): p*, phi, N, births, total."""
    result = analyses.open_analysis(file, spec)
    result.provenance = provenance(inputs=[file], **result.settings)
    emit(result.to_dict(), fmt, out, table=result.table.drop(columns=["level", "reason"]),
         title=f"Cormack open-population model, deviance {result.diagnostics['deviance']:.3f} on "
               f"{result.diagnostics['df']} df")


def _robust(file: Path, *, spec: RobustSpec, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Robust design (Pollock 1982; log-linear, Rivest & Daigle 2004; Rcapture robustd): per-period N, p*, survival,
    arrivals, total."""
    result = analyses.robust_analysis(file, spec)
    result.provenance = provenance(inputs=[file], **result.settings)
    diagnostics = result.diagnostics
    emit(result.to_dict(), fmt, out, table=result.table.drop(columns=["level"]),
         title=f"{result.table['method'].iloc[0]}, deviance {diagnostics['deviance']:.3f}, AIC {diagnostics['aic']:.3f}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("events")(typer_command(EventsSpec, _events, leading=_LOG_INPUTS,
                                        trailing=_LOG_OPTIONS + _FOLDER_OUTPUT, command="events"))
    app.command("histories")(typer_command(HistoriesSpec, _histories, leading=_LOG_INPUTS,
                                           trailing=_LOG_OPTIONS + _FOLDER_OUTPUT, command="histories"))

    app.command("open")(typer_command(OpenSpec, _open, leading=[parameter("file", OpenFileArgument)],
                                      trailing=OUTPUT, command="open"))
    app.command("robust")(typer_command(RobustSpec, _robust, leading=[parameter("file", RobustFileArgument)],
                                        trailing=OUTPUT, command="robust"))
