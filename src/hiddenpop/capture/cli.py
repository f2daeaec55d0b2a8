"""``hiddenpop capture ...`` commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


def _register_subfamilies() -> None:
    from hiddenpop.capture.cli_events import register as register_events
    from hiddenpop.capture.cli_lists import register as register_lists

    register_lists(app)
    register_events(app)


_register_subfamilies()
