"""``hiddenpop nsum bayes`` (Bayesian network scale-up models)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
