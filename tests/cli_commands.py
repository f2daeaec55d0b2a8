"""The commands of the command line, found by walking the Typer application, and the one in-process way to run
one (shared by the test modules; ``run_cli`` in conftest runs it in a subprocess)."""

from __future__ import annotations

import typer

from hiddenpop.cli.root import complete_app

#: How to write a result: command-line only, never what is computed.
INTERFACE = {"fmt", "out", "out_dir", "quiet", "force", "help", "scheduler"}  # scheduler: results are identical
#: What a command reads, and where a study file declares the same thing instead.
COMMAND_INPUTS = {
    "survey": "[survey] file", "known": "[known_sizes] file", "population": "[populations] / smallarea key",
    "hidden": "[hidden.NAME] / nsum_bayes key 'hidden'", "degree_columns": "[degrees.NAME] method = 'summation'",
    "sum_": "[combine.NAME]", "ratio": "[ratios.NAME]", "prevalence": "[combine.NAME] base and per",
    "save_posterior": "(the command line only: a study run keeps no posterior file)",
    "areas_path": "smallarea key 'file'", "id_": "smallarea key 'id'", "region": "smallarea key 'region'",
    "target": "the direct rates the study computes for smallarea key 'target'", "target_se": "(the same)",
    "streams": "[analyses.smallarea.streams]", "national": "the [analyses.nsum] estimate of the target",
    "name": "(the command line only: area names for the table)",
    "adjacency": "(the command line only: neighbours)", "geometry": "(the command line only: the map)",
    "geometry_key": "(the command line only: the map)",
    "files": "report_log key 'files'", "identifier": "report_log key 'id'", "time": "report_log key 'time'",
    "key_file": "[privacy] key_file",
    "memory_limit": "(the command line only: DuckDB resources)", "temp_dir": "(the command line only: DuckDB)",
    "threads": "(the command line only: DuckDB resources)",
    "cases": "cases key 'file'", "codebook": "cases key 'codebook'",
    "referrals": "compare key 'file'", "base_file": "compare key 'base_file'",
    # commands a study does not run: design, review and the like read their files and columns as given
    "frame": "-", "stratum": "-", "psu": "-", "size": "-", "allocation": "-", "ssu": "-", "units": "-",
    "reserves_out": "-", "sample": "-", "probability": "-", "base_weight": "-", "respondent": "-", "cells": "-",
    "margins": "-", "units_file": "-", "unit": "-", "reviews": "-", "status": "-",
    "positive": "-", "negative": "-", "unknown": "-", "positive_count": "-", "negative_count": "-",
    "unknown_count": "-",
    "area": "[survey] area", "known_columns": "[degrees.NAME] groups", "roster": "-", "household_size": "-",
    "weights": "[survey] weights", "strata": "[survey] strata",
}


def run_main(capsys, *args) -> tuple[int | None, str, str]:
    """Run the CLI in-process (the same ``main`` as the console script); returns (exit code, stdout, stderr)."""
    import pytest

    from hiddenpop.cli import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def spec_commands() -> list[tuple[str, object, type]]:
    """(command path, click command, spec) for every command whose function was built from a spec."""
    callbacks = {}

    def walk_typer(group: typer.Typer, path: str) -> None:
        for info in group.registered_commands:
            name = info.name or info.callback.__name__.replace("_", "-")
            callbacks[f"{path} {name}".strip()] = info.callback
        for sub in group.registered_groups:
            walk_typer(sub.typer_instance, f"{path} {sub.name}".strip())

    app = complete_app()
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


def options_section() -> str:
    """The option tables of docs/cli.md, one per spec-built command."""
    from hiddenpop.specs import options_markdown

    return "".join(f"### `hiddenpop {path}`\n\n{options_markdown(spec)}\n" for path, _, spec in spec_commands())


def study_blocks() -> dict[str, str]:
    """The generated option tables of docs/study-file.md, by the name in their marker comment."""
    from hiddenpop.nsum.specs import GameOfContactsOptions, SurveyOptions
    from hiddenpop.specs import options_markdown
    from hiddenpop.study.schema import ANALYSIS_SPECS, STUDY_WIDE

    blocks = {"survey": options_markdown(SurveyOptions),
              "game_of_contacts": options_markdown(GameOfContactsOptions, skip=STUDY_WIDE)}
    blocks.update({name: options_markdown(spec, skip=STUDY_WIDE) for name, spec in ANALYSIS_SPECS.items()})
    return blocks


def marked(name: str, table: str) -> str:
    return f"<!-- options of {name}: generated by tests/cli_commands.py -->\n{table}<!-- end of {name} -->"


if __name__ == "__main__":  # python tests/cli_commands.py: rewrite the option tables of the docs
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    cli = docs / "cli.md"
    text = cli.read_text()
    start = text.index("### `hiddenpop ")
    cli.write_text(text[:start] + options_section().rstrip("\n") + "\n")
    study = docs / "study-file.md"
    text = study.read_text()
    for name, table in study_blocks().items():
        pattern = re.compile(rf"<!-- options of {name}: .*?<!-- end of {name} -->", re.S)
        text = pattern.sub(marked(name, table).replace("\\", "\\\\"), text)
    study.write_text(text)
