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


def _register() -> None:
    from hiddenpop.nsum.cli import app as nsum_app

    app.add_typer(nsum_app, name="nsum", help="Network scale-up: degrees, estimators, diagnostics.")


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
    except Exception as exc:  # noqa: BLE001
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
