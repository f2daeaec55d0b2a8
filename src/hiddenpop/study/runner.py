"""Run a study end to end and write one run folder, atomically.

``run_study(study, out)`` executes the analyses the study file asks for (each one calls its family's public API;
see :mod:`hiddenpop.study.steps`), then writes::

    out/
      tables/NAME.csv and tables/NAME.parquet   tidy tables (small cells suppressed per [privacy])
      figures/NAME.png and figures/NAME.svg      static figures
      report.html                                self-contained report (plotly.js inlined once)
      report.pdf                                 the report printed by headless Chromium (A4, page numbers)
      summary.docx                               headline, map, key comparison, caveats, methods (editable)
      study.toml                                 a copy of the study file (excluded report-log values redacted)
      manifest.json                              versions, settings, seeds, SHA-256 of inputs and of every output,
                                                 warnings, timings

Atomicity and safety (:mod:`hiddenpop.outputs`): everything is built in a hidden sibling folder
``.NAME.partial-XXXX`` and moved to ``out`` only at the very end. An existing ``out`` is replaced only if hiddenpop
wrote it (its marker lists its files; only those are removed); any other non-empty folder is refused unless
``--force``. A run that fails or is interrupted leaves ``out`` as it was before and removes its partial folder when
it can; a run killed outright leaves only a hidden ``.partial`` folder, never a folder that looks complete.

Reproducibility: tables, figures, the report and its exports and ``manifest.json`` are byte-identical for the same
inputs and seed; timings live in the manifest under the separate key ``"timings"`` (and only there), so comparisons
can drop that one key.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hiddenpop.errors import ConfigError, HiddenpopError, InternalError, ModelError
from hiddenpop.outputs import (
    atomic_write_text,
    check_output_folder,
    dumps,
    install_output_folder,
    partial_folder,
)
from hiddenpop.privacy import load_key
from hiddenpop.provenance import input_record, output_record, package_versions
from hiddenpop.specs import fields_of
from hiddenpop.study.context import RunContext, StepResult
from hiddenpop.study.report import render_report
from hiddenpop.study.report.content import (
    caveats,
    headline_items,
    headline_table,
    level_text,
    methods_paragraph,
)
from hiddenpop.study.report.exports import print_pdf, write_docx
from hiddenpop.study.report.figures import build_figures
from hiddenpop.study.schema import Study
from hiddenpop.study.steps import TITLES, pipeline
from hiddenpop.study.tables import Published, assemble_tables

MANIFEST_SCHEMA = "hiddenpop.run-manifest/1"


@dataclass
class RunOutcome:
    folder: Path
    headline: pd.DataFrame
    results: dict[str, StepResult]
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def default_out(study: Study) -> Path:
    return study.folder / "runs" / _slug(study.name)


def _slug(text: str) -> str:
    cleaned = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(part for part in cleaned.split("-") if part) or "study"


def run_study(
    study: Study,
    out: str | Path | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    steps: list[tuple[str, Callable[[RunContext], StepResult]]] | None = None,
    force: bool = False,
) -> RunOutcome:
    """Run every enabled analysis of ``study`` and write the run folder ``out`` atomically.

    ``out`` follows the rules of :mod:`hiddenpop.outputs`: a folder hiddenpop did not write is refused unless
    ``force`` (and then nothing in it is deleted or overwritten); ``out`` is never the study folder, an input
    or a parent of either.
    """
    out = check_output_folder(out if out is not None else default_out(study),
                              protect=[study.folder, *study.input_files()], force=force)
    read = _data_inputs(study)
    hashed = input_record(read)
    partial = partial_folder(out)
    try:
        started = time.perf_counter()
        context, published, timings = execute(study, steps=steps, progress=progress)
        _write_tables(partial / "tables", published.tables)
        figures = _write_figures(partial / "figures", context, published)
        manifest = _manifest(context, published, timings, read, hashed)
        context.report_progress("report")
        tic = time.perf_counter()
        html = render_report(context, published, manifest, figures)
        atomic_write_text(partial / "report.html", html)
        _write_summary(partial, context, published)
        timings["report"] = round(time.perf_counter() - tic, 3)
        context.report_progress("report.pdf")
        tic = time.perf_counter()
        missing = print_pdf(partial / "report.html", partial / "report.pdf")
        timings["pdf"] = round(time.perf_counter() - tic, 3)
        manifest["notes"] = [note for note in (missing, _copy_study_file(study, partial)) if note]
        manifest["outputs"] = output_record(partial)
        timings["total"] = round(time.perf_counter() - started, 3)
        manifest["timings"] = timings
        # The manifest is written last: a folder with a manifest is a finished run.
        atomic_write_text(partial / "manifest.json", dumps(manifest))
        _check_unchanged(read, hashed)
        notes = install_output_folder(partial, out, command="run", force=force)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return RunOutcome(folder=out, headline=published.tables["headline"], results=context.results,
                      manifest=manifest, notes=manifest["notes"] + notes)


def execute(study: Study, *, steps: list[tuple[str, Callable[[RunContext], StepResult]]] | None = None,
            progress: Callable[[str], None] | None = None) -> tuple[RunContext, Published, dict[str, float]]:
    """Run the study's analyses (or ``steps``) and assemble the published tables, writing nothing; returns the
    run context, the tables and each step's seconds."""
    context = RunContext(study=study, report_progress=progress or (lambda message: None))
    timings: dict[str, float] = {}
    for name, function in steps if steps is not None else pipeline(study):
        context.report_progress(name)
        tic = time.perf_counter()
        result = _run_step(name, function, context)
        result.seconds = time.perf_counter() - tic
        timings[name] = round(result.seconds, 3)
        context.results[name] = result
    return context, assemble_tables(context), timings


def _run_step(name: str, function: Callable[[RunContext], StepResult], context: RunContext) -> StepResult:
    """Run one analysis. Input and settings errors (DataError, ConfigError, PrivacyError) stop the run: the user
    must fix them. A model that cannot be fitted with these data (ModelError) is recorded as the step's ``error``
    status and the run goes on, so the report shows it. Any other exception is a fault in hiddenpop: the run stops
    with an :class:`InternalError` naming the step and the exception type (never its text, which could quote data),
    and nothing is written."""
    title = TITLES.get(name, name)
    try:
        return function(context)
    except ModelError as exc:
        return StepResult(name=name, title=title, status="error", message=f"the model could not be fitted: {exc}")
    except ConfigError as exc:
        raise ConfigError(in_study_terms(str(exc), name, context.study)) from None
    except HiddenpopError:
        raise
    except Exception as exc:
        if os.environ.get("HIDDENPOP_DEBUG") == "1":
            raise
        raise InternalError(f"internal error in the analysis {name!r} ({type(exc).__name__}); nothing was written. "
                            "Please report it; HIDDENPOP_DEBUG=1 shows the traceback (it may quote input data)"
                            ) from None


def in_study_terms(message: str, analysis: str, study: Study) -> str:
    """A family's error in the words of the study file: each command-line flag of the analysis's options becomes
    ``[analyses.NAME] key``, and the message names the study file (the user wrote keys, not flags)."""
    spec = study.specs.get(analysis)
    if spec is None:
        return message
    names = {}
    for info in fields_of(spec):
        for flag in (info.flag, *info.aliases):
            names[flag] = info.name
    translated = re.sub(r"--[a-z][a-z0-9-]*", lambda m: (f"[analyses.{analysis}] {names[m.group(0)]}"
                                                        if m.group(0) in names else m.group(0)), message)
    if translated == message or study.path.name in translated:
        return translated
    return f"{study.path.name}, {translated}"


def _write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        frame = _portable(table)
        atomic_write_text(folder / f"{name}.csv", frame.to_csv(index=False, lineterminator="\n"))
        frame.to_parquet(folder / f"{name}.parquet", index=False)


def _portable(table: pd.DataFrame) -> pd.DataFrame:
    """Columns with mixed Python objects (e.g. suppressed cells as NA in a count column) become numeric or text,
    so the Parquet schema is stable from run to run."""
    frame = table.reset_index(drop=True).copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            values = frame[column]
            non_missing = values.dropna()
            if len(non_missing) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                        for v in non_missing):
                frame[column] = pd.to_numeric(values).astype("Float64")
            elif len(non_missing) and all(isinstance(v, bool) for v in non_missing):
                frame[column] = values.astype("boolean")
            else:
                frame[column] = values.map(lambda v: None if v is None or v is pd.NA or v != v else str(v))
    return frame


def _write_summary(folder: Path, context: RunContext, published: Published) -> None:
    """``summary.docx``: the words and numbers of the report's summary, with its map and key comparison."""
    tables = published.tables
    items = headline_items(context, tables["headline"])
    write_docx(folder / "summary.docx", title=context.study.name, items=items, table=headline_table(items),
               caveats=caveats(context, tables), methods=methods_paragraph(context.study),
               figures={name: folder / "figures" / f"{name}.png" for name in ("map", "comparison")},
               level=level_text(context.study.level))


def _copy_study_file(study: Study, folder: Path) -> str:
    """Copy the study file into the run folder, each report-log ``exclude`` value replaced by ``value #N`` (a
    value to exclude can itself be an identifier). Returns a note when the copy is not made."""

    text = study.path.read_text(encoding="utf-8")
    exclude = tomllib.loads(text).get("analyses", {}).get("report_log", {}).get("exclude", [])
    pairs = exclude.items() if isinstance(exclude, dict) else (str(item).partition("=")[::2] for item in exclude)
    for number, (column, value) in enumerate(pairs, start=1):
        if not value:
            continue
        for quote in ('"', "'"):
            text = text.replace(f"{quote}{value}{quote}", f'"value #{number}"')
            text = text.replace(f"{quote}{column}={value}{quote}", f'"{column}=value #{number}"')
        if value in text:
            return (f"{study.path.name} was not copied into the run folder: an excluded report-log value (#{number}) "
                    "also appears elsewhere in it and could not be redacted")
    atomic_write_text(folder / study.path.name, text)
    return ""


def _write_figures(folder: Path, context: RunContext, published: Any) -> dict[str, Any]:
    """Render the static PNGs and collect the interactive figures for the report."""
    folder.mkdir(parents=True, exist_ok=True)
    return build_figures(context, published, folder)


def _data_inputs(study: Study) -> list[Path]:
    """The files a run reads, the key file excepted: the manifest records the key only as a fingerprint."""
    return [path for path in study.input_files() if path != study.key_file]


def _check_unchanged(paths: list[Path], records: list[dict[str, Any]]) -> None:
    """The inputs still hold the bytes hashed when the run started, so the manifest names what was read."""
    for path, record in zip(paths, input_record(paths), strict=True):
        if record["sha256"] != records[paths.index(path)]["sha256"]:
            raise ConfigError(f"{path.name} changed while the run was reading it; nothing was written; rerun when "
                              "the file is no longer being written")


def _manifest(context: RunContext, published: Any, timings: dict[str, float], read: list[Path],
              hashed: list[dict[str, Any]]) -> dict[str, Any]:
    study = context.study
    inputs = [dict(record) for record in hashed]
    for record, path in zip(inputs, read, strict=True):
        try:
            record["path"] = str(path.relative_to(study.folder))
        except ValueError:
            record["path"] = path.name
    key_fingerprint = None
    if study.key_file is not None:
        key_fingerprint = load_key(study.key_file).fingerprint
    analyses = {}
    for name, result in context.results.items():
        analyses[name] = {
            "title": result.title,
            "status": result.status,
            "message": result.message,
            "settings": result.estimates.settings if result.estimates is not None else {},
            "seed": result.estimates.seed if result.estimates is not None else None,
            "warnings": result.warnings,
            "notes": result.notes,
        }
    return {
        "schema": MANIFEST_SCHEMA,
        "study": study.name,
        "study_file": study.path.name,
        "seed": study.seed,
        "level": study.level,
        "versions": package_versions(),
        "settings": study.settings(),
        "inputs": inputs,
        "privacy": {
            "suppression_threshold": study.suppression_threshold,
            "suppressed_cells": published.suppressed_cells,
            "key_fingerprint": key_fingerprint,
        },
        "analyses": analyses,
        "tables": sorted(published.tables),
        "warnings": published.warnings,
        "timings": timings,
    }


def read_manifest(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
