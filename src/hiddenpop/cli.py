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
from hiddenpop.errors import HiddenpopError

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


def _family(module: str, name: str, help_text: str) -> None:
    import importlib

    family = typer.Typer(no_args_is_help=True)
    importlib.import_module(module).register(family)
    app.add_typer(family, name=name, help=help_text)


def _register() -> None:
    """Assemble the families. Heavy libraries (JAX, LightGBM, DuckDB) are imported inside commands only."""
    from hiddenpop.capture.cli import app as capture_app
    from hiddenpop.nsum.cli import app as nsum_app
    from hiddenpop.privacy_cli import register as register_privacy
    from hiddenpop.simulate.cli import register as register_simulate
    from hiddenpop.study.cli import register as register_study

    app.add_typer(nsum_app, name="nsum", help="Network scale-up: degrees, estimators, Bayesian models, diagnostics.")
    app.add_typer(capture_app, name="capture", help="Capture-recapture and multiple systems estimation.")
    _family("hiddenpop.smallarea.cli", "smallarea", "Municipality-level estimates: direct, pooled, extrapolated.")
    _family("hiddenpop.design.cli", "design", "Survey design: sample size, PPS selection, weights.")
    _family("hiddenpop.review.cli", "review", "Sample review: sample size and shares with unknowns.")
    _family("hiddenpop.cases.cli", "cases", "Coded case-file summaries with small-cell suppression.")
    simulate_app = typer.Typer(no_args_is_help=True)
    app.add_typer(simulate_app, name="simulate", help="Simulation with known truth: validation grids.")
    register_simulate(simulate_app, root=app)
    privacy_app = typer.Typer(no_args_is_help=True)
    app.add_typer(privacy_app, name="privacy", help="Keys and output scanning.")
    register_privacy(privacy_app)
    register_study(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except HiddenpopError as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
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


if __name__ == "__main__":  # pragma: no cover
    main()
