"""``hiddenpop capture mse|coverage`` (multiple systems estimation for lists, sample coverage)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
