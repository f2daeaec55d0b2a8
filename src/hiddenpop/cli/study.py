"""Top-level ``hiddenpop run`` and ``hiddenpop demo``."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import ForceOption, QuietOption, dumps, render_table
from hiddenpop.formatting import format_interval, format_value, kind_for
from hiddenpop.study.demo import run_demo
from hiddenpop.study.runner import run_study
from hiddenpop.study.schema import load_study


def _progress(quiet: bool):
    def report(step: str) -> None:
        if not quiet:
            print(f"  running {step} ...", file=sys.stderr, flush=True)

    return report


def _exit_on_terminate() -> None:
    """Turn SIGTERM into a normal exit so the runner removes its partial folder (as it does on Ctrl-C)."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _print_outcome(outcome, as_json: bool) -> None:
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    headline = outcome.headline
    if as_json:
        sys.stdout.write(dumps({"run": str(outcome.folder), "report": str(outcome.folder / "report.html"),
                                "headline": headline.to_dict(orient="records"),
                                "analyses": {n: r.status for n, r in outcome.results.items()},
                                "warnings": outcome.manifest["warnings"]}))
        return

    shown = headline[["label"]].rename(columns={"label": "quantity"}).copy()
    kinds = [kind_for("estimate", unit) for unit in headline["unit"]]
    shown["estimate"] = [format_value(v, k) for v, k in zip(headline["estimate"], kinds, strict=True)]
    shown["interval"] = [format_interval(lo, up, k) for lo, up, k in zip(headline["lower"], headline["upper"], kinds,
                                                                         strict=True)]
    shown["from"] = headline["analysis"]
    level = headline["level"].dropna()
    title = f"Headline estimates ({format_value(level.iloc[0], 'percent')} intervals)" if len(level) else \
        "Headline estimates"
    sys.stdout.write(render_table(shown, title=title))
    statuses = ", ".join(f"{name}: {result.status}" for name, result in outcome.results.items())
    sys.stdout.write(f"\nAnalyses: {statuses}\n")
    if outcome.manifest["warnings"]:
        sys.stdout.write(f"{len(outcome.manifest['warnings'])} warning(s); see the report's technical appendix.\n")
    sys.stdout.write(f"Report: {outcome.folder / 'report.html'}")
    sys.stdout.write(" (also report.pdf and summary.docx)\n" if (outcome.folder / "report.pdf").is_file() else "\n")


def register_root(app: typer.Typer) -> None:
    """Add the top-level ``run`` and ``demo`` to ``app``."""
    @app.command("run")
    def run(
        study_file: Annotated[Path, typer.Argument(help="the study file (study.toml)")],
        out: Annotated[Path | None, typer.Option("--out", help="run folder (default: runs/NAME beside the "
                                                 "study file); a previous run there is replaced atomically")] = None,
        json_output: Annotated[bool, typer.Option("--json", help="print the headline as JSON")] = False,
        quiet: QuietOption = False,
        force: ForceOption = False,
    ) -> None:
        """Run every analysis a study file names and write tables, figures, report.html and manifest.json."""
        study = load_study(study_file)
        _exit_on_terminate()
        outcome = run_study(study, out, progress=_progress(quiet), force=force)
        _print_outcome(outcome, json_output)

    @app.command("demo")
    def demo(
        out: Annotated[Path, typer.Option("--out", help="folder for the generated study and its run")] = Path(
            "demo-run"),
        seed: Annotated[int, typer.Option("--seed", help="seed for the synthetic data and every analysis")] = 20220101,
        quick: Annotated[bool, typer.Option("--quick", help="a smaller study (tests, quick looks)")] = False,
        json_output: Annotated[bool, typer.Option("--json", help="print the headline as JSON")] = False,
        quiet: QuietOption = False,
        force: ForceOption = False,
    ) -> None:
        """Generate the bundled synthetic study (Study 2's shape), run it end to end and print the headline."""
        _exit_on_terminate()
        outcome = run_demo(out, seed=seed, profile="quick" if quick else "full", progress=_progress(quiet),
                           force=force)
        _print_outcome(outcome, json_output)
