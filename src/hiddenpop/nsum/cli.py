"""``hiddenpop nsum ...`` commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


def _register_subfamilies() -> None:
    from hiddenpop.nsum.bayes.cli import register as register_bayes

    register_bayes(app)


_register_subfamilies()
