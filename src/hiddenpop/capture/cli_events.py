"""``hiddenpop capture events|histories|open`` (report logs, rolling windows, open populations)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
