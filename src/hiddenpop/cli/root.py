"""The one command-line interface: ``hiddenpop <family> <verb> INPUTS [options]``.

Each family's commands live in their own module of this package; :data:`COMMANDS` names them, and a module is
imported only when one of its commands runs (``hiddenpop --help`` reads the names and one-line helps from here and
imports no family). :func:`main` turns every user-fixable error into one line on stderr with exit code 2 (no
traceback). Unexpected errors print only their type (never their text, which could quote data) unless
``HIDDENPOP_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import typer
from typer.core import TyperGroup

from hiddenpop import __version__
from hiddenpop.errors import HiddenpopError, InternalError


@dataclass(frozen=True)
class Entry:
    """One top-level command: a group filled by ``register(app)`` of each module, or a single command added to
    the root by ``register_root(app)`` of its module. ``help`` is what ``hiddenpop --help`` shows (a test checks it
    against the loaded command's own help)."""
    help: str
    modules: tuple[str, ...]
    group: bool = True


#: Every top-level command, in the order ``hiddenpop --help`` lists them.
COMMANDS: dict[str, Entry] = {
    "plan": Entry("Recommend an NSUM survey size for a target precision under assumed barrier and transmission "
                  "effects.", ("hiddenpop.cli.simulate",), group=False),
    "run": Entry("Run every analysis a study file names and write tables, figures, report.html and "
                 "manifest.json.", ("hiddenpop.cli.study",), group=False),
    "demo": Entry("Generate the bundled synthetic study (Study 2's shape), run it end to end and print the "
                  "headline.", ("hiddenpop.cli.study",), group=False),
    "nsum": Entry("Network scale-up: degrees, estimators, Bayesian models, diagnostics.",
                  ("hiddenpop.cli.nsum", "hiddenpop.cli.nsum_bayes")),
    "capture": Entry("Capture-recapture and multiple systems estimation.",
                     ("hiddenpop.cli.capture", "hiddenpop.cli.capture_events")),
    "smallarea": Entry("Municipality-level estimates: direct, pooled, extrapolated.", ("hiddenpop.cli.smallarea",)),
    "design": Entry("Survey design: sample size, PPS selection, weights.", ("hiddenpop.cli.design",)),
    "review": Entry("Sample review: sample size and shares with unknowns.", ("hiddenpop.cli.review",)),
    "cases": Entry("Coded case-file summaries with small-cell suppression.", ("hiddenpop.cli.cases",)),
    "compare": Entry("Cross-country comparison of referral counts: rates, ratios, ranking.",
                     ("hiddenpop.cli.compare",)),
    "simulate": Entry("Simulation with known truth: validation grids.", ("hiddenpop.cli.simulate",)),
    "privacy": Entry("Keys and output scanning.", ("hiddenpop.cli.privacy",)),
    "datasets": Entry("Bundled public reference datasets: list them, export them.", ("hiddenpop.cli.datasets",)),
}


def build(name: str, args: list[str] | None = None) -> Any:
    """The click command for the top-level ``name``, with its modules imported and registered.

    For a group whose first argument is a subcommand, modules are imported in order only until one registers that
    subcommand: ``nsum estimate`` does not load the Bayesian models' module. Otherwise (no arguments, an option such
    as ``--help`` first, an unknown subcommand) every module is loaded, so the group lists them all.
    """
    entry = COMMANDS[name]
    holder = typer.Typer(no_args_is_help=True)
    wanted = args[0] if entry.group and args and not args[0].startswith("-") else None
    for module in entry.modules:
        getattr(import_module(module), "register" if entry.group else "register_root")(holder)
        if wanted is not None and wanted in {info.name for info in holder.registered_commands}:
            break
    if entry.group:
        command = typer.main.get_group(holder)
        command.name, command.help = name, entry.help
        return command
    return typer.main.get_group(holder).get_command(None, name)


class _Listed(typer.core.TyperCommand):
    """A top-level command as ``hiddenpop --help`` lists it; running it builds the real one first."""
    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        return build(self.name, args).make_context(info_name, args, parent=parent, **extra)


class _Root(TyperGroup):
    """The root group: the commands of :data:`COMMANDS`, built only when invoked."""
    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS:
            return _Listed(name=cmd_name, help=COMMANDS[cmd_name].help, callback=None)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="hiddenpop",
    cls=_Root,
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


def complete_app() -> typer.Typer:
    """The whole command line with every module loaded, for documentation and the tests that walk every
    command (the lazy root would show them only as they are invoked)."""
    full = typer.Typer(name="hiddenpop", no_args_is_help=True, add_completion=False)
    full.callback()(_root)
    for name, entry in COMMANDS.items():
        if entry.group:
            group = typer.Typer(no_args_is_help=True)
            for module in entry.modules:
                import_module(module).register(group)
            full.add_typer(group, name=name, help=entry.help)
        elif name not in {info.name for info in full.registered_commands}:
            for module in entry.modules:
                import_module(module).register_root(full)
    return full


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
