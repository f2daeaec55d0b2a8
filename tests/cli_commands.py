"""The commands of the command line, found by walking the Typer application (shared by several test modules)."""

from __future__ import annotations

import typer

from hiddenpop.cli import app


def spec_commands() -> list[tuple[str, object, type]]:
    """(command path, click command, spec) for every command whose function was built from a spec."""
    callbacks = {}

    def walk_typer(group: typer.Typer, path: str) -> None:
        for info in group.registered_commands:
            name = info.name or info.callback.__name__.replace("_", "-")
            callbacks[f"{path} {name}".strip()] = info.callback
        for sub in group.registered_groups:
            walk_typer(sub.typer_instance, f"{path} {sub.name}".strip())

    walk_typer(app, "")
    commands = {}

    def walk_click(command, path: str) -> None:
        if hasattr(command, "commands"):  # a group (Typer 0.29 vendors its own click classes)
            for name, sub in command.commands.items():
                walk_click(sub, f"{path} {name}".strip())
        else:
            commands[path] = command

    walk_click(typer.main.get_command(app), "")
    return [(path, commands[path], callback.spec) for path, callback in sorted(callbacks.items())
            if getattr(callback, "spec", None) is not None]
