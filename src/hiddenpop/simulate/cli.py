"""``hiddenpop simulate ...`` and top-level ``hiddenpop plan``."""

from __future__ import annotations

import typer


def register(app: typer.Typer, root: typer.Typer | None = None) -> None:
    """Add ``simulate`` commands to ``app`` and top-level ``plan`` to ``root``."""
