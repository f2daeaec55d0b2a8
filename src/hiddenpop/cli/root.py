"""The one command-line interface: ``hiddenpop <family> <verb> INPUTS [options]``.

Each method family defines its sub-commands in its own ``cli.py``; this module assembles them and turns every
user-fixable error into one line on stderr with exit code 2 (no traceback). Unexpected errors print only their
type (never their text, which could quote data) unless ``HIDDENPOP_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

import typer

from hiddenpop import __version__
from hiddenpop.errors import HiddenpopError, InternalError

app = typer.Typer(
    name="hiddenpop",
    help="Estimate the size of hidden populations from network scale-up surveys, report logs and lists.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"hiddenpop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    """hiddenpop command line."""


def _group(name: str, help_text: str) -> typer.Typer:
    group = typer.Typer(no_args_is_help=True)
    app.add_typer(group, name=name, help=help_text)
    return group


def _register() -> None:
    """Assemble the families. Heavy libraries (JAX, LightGBM, DuckDB) are imported inside commands only."""
    from hiddenpop.cli import cases, compare, datasets, design, privacy, review, simulate, smallarea, study
    from hiddenpop.cli.capture import app as capture_app
    from hiddenpop.cli.nsum import app as nsum_app
    from hiddenpop.cli.nsum_bayes import register as register_bayes

    register_bayes(nsum_app)
    app.add_typer(nsum_app, name="nsum", help="Network scale-up: degrees, estimators, Bayesian models, diagnostics.")
    app.add_typer(capture_app, name="capture", help="Capture-recapture and multiple systems estimation.")
    smallarea.register(_group("smallarea", "Municipality-level estimates: direct, pooled, extrapolated."))
    design.register(_group("design", "Survey design: sample size, PPS selection, weights."))
    review.register(_group("review", "Sample review: sample size and shares with unknowns."))
    cases.register(_group("cases", "Coded case-file summaries with small-cell suppression."))
    compare.register(_group("compare", "Cross-country comparison of referral counts: rates, ratios, ranking."))
    simulate.register(_group("simulate", "Simulation with known truth: validation grids."), root=app)
    privacy.register(_group("privacy", "Keys and output scanning."))
    datasets.register(_group("datasets", "Bundled public reference datasets: list them, export them."))
    study.register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except HiddenpopError as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except InternalError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("HIDDENPOP_DEBUG") == "1":
            raise
        print(
            f"error: internal error ({type(exc).__name__}); please report it. "
            "Set HIDDENPOP_DEBUG=1 to see the traceback (it may quote input data).",
            file=sys.stderr,
        )
        sys.exit(1)
