"""``hiddenpop capture events|histories|open`` (report logs, rolling windows, open populations)."""

from __future__ import annotations

import glob
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import (
    ForceOption,
    FormatOption,
    OutOption,
    OutputFormat,
    QuietOption,
    SeedOption,
    emit,
)
from hiddenpop.outputs import check_output_folder, list_files, write_output_folder

FilesArgument = Annotated[list[str], typer.Argument(help="report-log files (CSV or Parquet; globs allowed)")]
IdOption = Annotated[str, typer.Option("--id", help="identifier column (e.g. the IP address); pseudonymised at read")]
IdKindOption = Annotated[
    str, typer.Option("--id-kind", help="what --id holds: ip (spellings canonicalised, invalid addresses counted "
                      "and dropped) or text")
]
TimeOption = Annotated[str, typer.Option("--time", help="timestamp column (ISO 8601; offsets honoured)")]
CountryColumnOption = Annotated[str | None, typer.Option("--country-column", help="country column")]
CountryOption = Annotated[str | None, typer.Option("--country", help="keep only this country code, e.g. PH")]
ExcludeOption = Annotated[
    list[str] | None, typer.Option("--exclude", help="drop rows with COLUMN=VALUE (repeatable), e.g. category=viral")
]
DedupeOption = Annotated[str, typer.Option("--dedupe", help="one record per identifier per day|week|none")]
OccasionOption = Annotated[str, typer.Option("--occasion", help="occasion length, e.g. 7D, 28D, 4W")]
OccasionsOption = Annotated[int, typer.Option("--occasions", help="occasions per window, e.g. 4 (or 13)")]
StepOption = Annotated[str | None, typer.Option("--step", help="window step, e.g. 1D; 'none' = back-to-back windows")]
StartOption = Annotated[str | None, typer.Option("--start", help="first day kept (YYYY-MM-DD, local)")]
EndOption = Annotated[str | None, typer.Option("--end", help="last day kept (YYYY-MM-DD, local)")]
KeyOption = Annotated[
    Path | None, typer.Option("--key-file", help="pseudonymisation key file (else env HIDDENPOP_KEY); required")
]
TimezoneOption = Annotated[str, typer.Option("--timezone", help="time zone of calendar days, e.g. Asia/Manila")]
InputTimezoneOption = Annotated[
    str, typer.Option("--input-timezone", help="time zone of timestamps written without an offset")
]
Ipv6Option = Annotated[bool, typer.Option("--exclude-ipv6", help="drop IPv6 identifiers (IPv4 study)")]
DirOption = Annotated[Path | None, typer.Option("--out", help="write all outputs into this directory")]
MemoryOption = Annotated[
    str | None, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 3GB (larger data spill to disk)")
]
TempDirOption = Annotated[Path | None, typer.Option("--temp-dir", help="where DuckDB may spill (default: its own)")]
ThreadsOption = Annotated[
    int | None, typer.Option("--threads", min=1, help="DuckDB worker threads (default: one per core)")
]


def _date(value: str | None, option: str) -> date | None:
    from hiddenpop.errors import ConfigError

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r}: use a date such as 2017-01-01") from None


def _ingest(files, identifier, time, country_column, country, exclude, dedupe, start, end, key_file, timezone,
            input_timezone, exclude_ipv6, quiet, memory_limit=None, temp_dir=None, threads=None, id_kind="text"):
    from hiddenpop.capture.events.cleaning import CleaningRules, parse_exclusions
    from hiddenpop.capture.events.reader import read_events
    from hiddenpop.cli.common import spinner
    from hiddenpop.privacy import load_key

    key = load_key(key_file)
    rules = CleaningRules(
        country_column=country_column, country=country, exclude=parse_exclusions(exclude),
        start=_date(start, "--start"), end=_date(end, "--end"), dedupe=dedupe, exclude_ipv6=exclude_ipv6,
        timezone=timezone, input_timezone=input_timezone, identifier_kind=id_kind,
    )
    with spinner("reading and pseudonymising report logs", quiet=quiet):
        return read_events(files, identifier=identifier, time=time, key=key, rules=rules, threads=threads,
                           memory_limit=memory_limit, temp_directory=None if temp_dir is None else str(temp_dir))


def _print_key_warnings(log) -> None:
    """Key warnings on stderr once the run has succeeded (a failing run prints only its one error line)."""
    for warning in log.key_warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _settings(log, **extra):
    return {"rules": log.rules.to_dict(), "key_fingerprint": log.key_fingerprint, "engine": log.engine, **extra}


def _write_dir(out: Path, fmt: OutputFormat, frames: dict, payload: dict) -> list[Path]:
    from hiddenpop.cli.common import atomic_write_text, dumps

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


def _check_out(out: Path | None, files: list[str], force: bool) -> Path | None:
    """The output folder, checked before any reading: never an input's folder, never a user's folder unless --force."""
    if out is None:
        return None
    inputs = [match for pattern in files for match in (glob.glob(pattern) or [pattern])]
    return check_output_folder(out, protect=[p for p in inputs if Path(p).exists()], force=force)


def _report_written(out: Path, notes: list[str]) -> None:
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {len(list_files(out))} files to {out}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("events")
    def events_command(
        files: FilesArgument,
        identifier: IdOption,
        time: TimeOption,
        id_kind: IdKindOption = "text",
        country_column: CountryColumnOption = None,
        country: CountryOption = None,
        exclude: ExcludeOption = None,
        dedupe: DedupeOption = "day",
        occasion: OccasionOption = "7D",
        occasions: OccasionsOption = 4,
        step: StepOption = "1D",
        start: StartOption = None,
        end: EndOption = None,
        estimator: Annotated[str, typer.Option("--estimator", help="closed model name or 'coverage'")] = (
            "Mth Chao (LB)"),
        base: Annotated[float | None, typer.Option("--base", help="prevalence base, e.g. 5485000 IPv4 addresses")] = None,
        interval: Annotated[str, typer.Option("--interval", help="log (Chao 1987) or wald")] = "log",
        level: Annotated[float, typer.Option("--level", help="confidence level")] = 0.95,
        bootstrap: Annotated[int, typer.Option("--bootstrap", help="bootstrap replicates (coverage)")] = 200,
        seed: SeedOption = 1,
        key_file: KeyOption = None,
        timezone: TimezoneOption = "UTC",
        input_timezone: InputTimezoneOption = "UTC",
        exclude_ipv6: Ipv6Option = False,
        memory_limit: MemoryOption = None,
        temp_dir: TempDirOption = None,
        threads: ThreadsOption = None,
        fmt: FormatOption = OutputFormat.table,
        out: DirOption = None,
        quiet: QuietOption = False,
        force: ForceOption = False,
    ) -> None:
        """Report logs -> cleaning audit -> rolling windows -> estimate per window (series, audit, PNG, HTML)."""
        from hiddenpop.capture.events.rolling import (
            plot_series_html,
            plot_series_png,
            rolling_series,
            window_counts,
        )
        from hiddenpop.cli.common import progress
        from hiddenpop.errors import ConfigError
        from hiddenpop.provenance import provenance

        if not 0 < level < 1:
            raise ConfigError(f"--level must be between 0 and 1, got {level}")
        out = _check_out(out, files, force)
        log = _ingest(files, identifier, time, country_column, country, exclude, dedupe, start, end, key_file,
                      timezone, input_timezone, exclude_ipv6, quiet, memory_limit, temp_dir, threads, id_kind)
        plan, counts = window_counts(log, occasion=occasion, occasions=occasions, step=step)
        result = rolling_series(
            counts, plan, log.origin, estimator=estimator, base=base, level=level, interval=interval,
            bootstrap=bootstrap, seed=seed, audit=log.audit,
            iterate=lambda items, total: progress(items, total=total, description="windows", quiet=quiet),
        )
        result.provenance = provenance(inputs=log.inputs, **_settings(log, **result.settings))
        result.notes.extend(log.notes)
        result.warnings.extend(w for w in log.key_warnings if w not in result.warnings)
        _print_key_warnings(log)
        payload = result.to_dict()
        series = result.tables["series"]
        if out is None:
            emit(payload, fmt, None, table=series, title=f"{result.settings['estimator']} per window")
            return
        title = f"{result.settings['estimator']}: {occasions} x {occasion} occasions, step {plan.step_days}D"

        def write(folder: Path) -> None:
            _write_dir(folder, fmt, {"series": series, "audit": log.audit}, payload)
            plot_series_png(series, folder / "series.png", title=title)
            plot_series_html(series, folder / "series.html", title=title)

        _report_written(out, write_output_folder(out, "capture events", write, force=force))

    @app.command("histories")
    def histories_command(
        files: FilesArgument,
        identifier: IdOption,
        time: TimeOption,
        id_kind: IdKindOption = "text",
        country_column: CountryColumnOption = None,
        country: CountryOption = None,
        exclude: ExcludeOption = None,
        dedupe: DedupeOption = "day",
        occasion: OccasionOption = "7D",
        occasions: OccasionsOption = 4,
        step: StepOption = None,
        start: StartOption = None,
        end: EndOption = None,
        key_file: KeyOption = None,
        timezone: TimezoneOption = "UTC",
        input_timezone: InputTimezoneOption = "UTC",
        exclude_ipv6: Ipv6Option = False,
        memory_limit: MemoryOption = None,
        temp_dir: TempDirOption = None,
        threads: ThreadsOption = None,
        fmt: FormatOption = OutputFormat.table,
        out: DirOption = None,
        quiet: QuietOption = False,
        force: ForceOption = False,
    ) -> None:
        """Report logs -> capture-history counts per window (window_start, window_end, history, count) + audit.

        With one window (e.g. thirteen 4-week occasions over a year and no --step) the output feeds
        ``hiddenpop capture open``.
        """
        from hiddenpop.capture.events.occasions import pattern_table
        from hiddenpop.capture.events.rolling import window_counts
        from hiddenpop.provenance import provenance

        out = _check_out(out, files, force)
        log = _ingest(files, identifier, time, country_column, country, exclude, dedupe, start, end, key_file,
                      timezone, input_timezone, exclude_ipv6, quiet, memory_limit, temp_dir, threads, id_kind)
        plan, counts = window_counts(log, occasion=occasion, occasions=occasions, step=step)
        table = pattern_table(counts, plan, log.origin)
        payload = {
            "histories": table.to_dict(orient="records"),
            "audit": log.audit.to_dict(orient="records"),
            "windows": plan.to_dict(),
            "warnings": list(log.key_warnings),
            "provenance": provenance(inputs=log.inputs, **_settings(log, **plan.to_dict())),
        }
        _print_key_warnings(log)
        if out is None:
            emit(payload, fmt, None, table=table, title="history counts per window")
            return
        notes = write_output_folder(
            out, "capture histories", lambda folder: _write_dir(folder, fmt, {"histories": table, "audit": log.audit},
                                                                  payload), force=force)
        _report_written(out, notes)

    @app.command("open")
    def open_command(
        file: Annotated[Path, typer.Argument(help="histories: 0/1 period columns + count column, one row each")],
        count_column: Annotated[str | None, typer.Option("--count-column", help="count column (default freq)")] = None,
        capture: Annotated[str, typer.Option("--capture", help="up (unconstrained p*) or ep (equal p*)")] = "up",
        exclude_history: Annotated[
            list[str] | None, typer.Option("--exclude-history", help="history to treat as missing, e.g. 100000")
        ] = None,
        no_constraint: Annotated[
            bool, typer.Option("--allow-negative", help="do not fix negative gammas at the boundary")
        ] = False,
        level: Annotated[float, typer.Option("--level", help="confidence level")] = 0.95,
        window: Annotated[
            str | None, typer.Option("--window", help="for `histories` output: the window_start to use")
        ] = None,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Cormack (1989) open-population log-linear model (Rcapture openp): p*, phi, N, births, total."""
        from hiddenpop.capture.events.open import open_population
        from hiddenpop.data.io import read_table
        from hiddenpop.errors import ConfigError
        from hiddenpop.provenance import provenance

        if not 0 < level < 1:
            raise ConfigError(f"--level must be between 0 and 1, got {level}")
        frame = read_table(file)
        if "history" in frame.columns:  # long output of `capture histories`
            frame = _from_long(frame, window, file)
            count_column = "count"
        elif count_column is None:
            candidates = [c for c in ("freq", "count", "n", "Freq", "frequency") if c in frame.columns]
            count_column = candidates[0] if candidates else None
        result = open_population(frame, count_column=count_column, capture=capture,
                                 constrain_negative=not no_constraint, exclude=exclude_history, level=level)
        result.provenance = provenance(inputs=[file], **result.settings)
        emit(result.to_dict(), fmt, out, table=result.table.drop(columns=["level"]),
             title=f"Cormack open-population model, deviance {result.diagnostics['deviance']:.3f} on "
                   f"{result.diagnostics['df']} df")


def _from_long(frame, window, file):
    import pandas as pd

    from hiddenpop.errors import DataError

    for column in ("history", "count"):
        if column not in frame.columns:
            raise DataError(f"{file}: column {column!r} not found")
    if "window_start" in frame.columns:
        starts = frame["window_start"].astype(str).unique()
        if window is None and len(starts) > 1:
            raise DataError(f"{file}: {len(starts)} windows in the file; choose one with --window YYYY-MM-DD")
        if window is not None:
            frame = frame[frame["window_start"].astype(str) == window]
            if frame.empty:
                raise DataError(f"{file}: no rows for --window {window}")
    import math

    labels = frame["history"].astype(str).str.strip()
    # all 2^K - 1 histories are listed per window, so K follows from the row count (CSV readers drop leading 0s)
    width = max(round(math.log2(len(frame) + 1)), int(labels.str.len().max()))
    bits = pd.DataFrame([list(map(int, s.zfill(width))) for s in labels], columns=[f"p{j + 1}" for j in range(width)])
    bits["count"] = frame["count"].to_numpy()
    return bits
