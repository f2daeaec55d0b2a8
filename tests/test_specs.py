"""Options declared once (hiddenpop.specs): validation, the study-file table, the schema, and every command built
from a spec agreeing with it option by option."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Literal

import pytest
import typer
from typer.testing import CliRunner

from cli_commands import COMMAND_INPUTS, INTERFACE, spec_commands
from hiddenpop.cli import app, main
from hiddenpop.errors import ConfigError
from hiddenpop.specs import (
    REQUIRED,
    cli_help,
    fields_of,
    from_table,
    json_schema,
    opt,
    options_markdown,
    to_dict,
    typer_command,
)


@dataclass(frozen=True, kw_only=True)
class ToySpec:
    model: str = opt(REQUIRED, "which model")
    select: Literal["aic", "bic"] = opt("aic", "selection rule")
    replicates: int = opt(100, "bootstrap replicates", min=0, max=10_000)
    level: float = opt(0.95, "interval level", min=0, max=1, inclusive=False)
    exact: bool = opt(False, "use the exact method")
    column: str | None = opt(None, "count column")
    hidden: tuple[str, ...] = opt((), "hidden groups")


def _toy_app(seen: list) -> typer.Typer:
    toy = typer.Typer()

    def run(*, spec: ToySpec) -> None:
        seen.append(spec)

    toy.command("fit")(typer_command(ToySpec, run, command="fit"))

    @toy.command("other")
    def other() -> None:  # a second command keeps Typer from collapsing the app into one command
        """Unused."""

    return toy


def test_fields_are_read_with_types_choices_bounds_and_requiredness():
    infos = {info.name: info for info in fields_of(ToySpec)}
    assert infos["model"].required and infos["model"].default is None
    assert infos["select"].choices == ("aic", "bic") and infos["select"].kind is str
    assert (infos["replicates"].min, infos["replicates"].max, infos["replicates"].kind) == (0, 10_000, int)
    assert infos["level"].inclusive is False and infos["level"].kind is float
    assert infos["column"].optional and infos["hidden"].multiple
    assert to_dict(ToySpec(model="x", hidden=("a", "b")))["hidden"] == ["a", "b"]


def test_study_table_builds_the_spec_and_refuses_bad_values():
    spec = from_table(ToySpec, {"model": "Mt", "select": "bic", "level": 0.9, "hidden": ["a"]}, ignore=("enabled",))
    assert spec == ToySpec(model="Mt", select="bic", level=0.9, hidden=("a",))
    with pytest.raises(ConfigError, match="unknown key 'replicate'; did you mean 'replicates'"):
        from_table(ToySpec, {"model": "M0", "replicate": 3})
    with pytest.raises(ConfigError, match="key 'model' is required"):
        from_table(ToySpec, {})
    with pytest.raises(ConfigError, match=r"key 'select' must be one of 'aic', 'bic'; got 'bc' \(did you mean"):
        from_table(ToySpec, {"model": "M0", "select": "bc"})
    with pytest.raises(ConfigError, match="key 'replicates' must satisfy 0 <= replicates <= 10000; got 10001"):
        from_table(ToySpec, {"model": "M0", "replicates": 10_001})
    with pytest.raises(ConfigError, match="must satisfy 0 < level < 1; got 1"):
        from_table(ToySpec, {"model": "M0", "level": 1})
    with pytest.raises(ConfigError, match="must be a whole number"):
        from_table(ToySpec, {"model": "M0", "replicates": 2.5})
    with pytest.raises(ConfigError, match="must be true or false"):
        from_table(ToySpec, {"model": "M0", "exact": "yes"})
    with pytest.raises(ConfigError, match="must be a list"):
        from_table(ToySpec, {"model": "M0", "hidden": {"a": 1}})
    assert from_table(ToySpec, {"model": "M0", "hidden": "a"}).hidden == ("a",)  # a single value: a list of one


def test_command_line_and_study_table_give_the_same_spec():
    seen: list = []
    runner = CliRunner()
    result = runner.invoke(_toy_app(seen), ["fit", "--model", "Mt", "--select", "bic", "--replicates", "7",
                                            "--level", "0.9", "--exact", "--hidden", "a", "--hidden", "b"])
    assert result.exit_code == 0, result.output
    table = tomllib.loads('model = "Mt"\nselect = "bic"\nreplicates = 7\nlevel = 0.9\nexact = true\n'
                          'hidden = ["a", "b"]\n')
    assert seen == [from_table(ToySpec, table)]
    defaults = runner.invoke(_toy_app(seen), ["fit", "--model", "M0"])
    assert defaults.exit_code == 0 and seen[-1] == ToySpec(model="M0")


@pytest.mark.parametrize("args", [["--model", "M0", "--select", "bogus"], ["--model", "M0", "--replicates", "-1"],
                                  ["--model", "M0", "--level", "1.5"], []])
def test_command_line_refuses_what_the_spec_refuses(args):
    seen: list = []
    result = CliRunner().invoke(_toy_app(seen), ["fit", *args])
    assert result.exit_code != 0 and not seen


def test_schema_and_docs_table_come_from_the_spec():
    schema = json_schema(ToySpec)
    assert schema["required"] == ["model"] and schema["additionalProperties"] is False
    assert schema["properties"]["select"]["enum"] == ["aic", "bic"]
    assert schema["properties"]["level"]["exclusiveMaximum"] == 1
    assert schema["properties"]["hidden"]["type"] == "array"
    table = options_markdown(ToySpec)
    assert all(f"`--{info.name}`" in table for info in fields_of(ToySpec))


SPEC_COMMANDS = spec_commands()


def test_spec_driven_commands_exist():
    assert {"capture closed", "capture ci", "capture mse", "capture coverage"} <= {path for path, _, _ in SPEC_COMMANDS}


#: Options of spec-built commands that are not analysis options: how to write the result, and the inputs a
#: command reads (files, columns, groups, derived quantities), which a study file declares in its own tables.
INPUTS = set(COMMAND_INPUTS)


def _required_args(spec, skip: str = "") -> list[str]:
    def value(info) -> str:
        return info.choices[0] if info.choices else "1" if info.kind in (int, float) else "x"

    return [arg for other in fields_of(spec) if other.required and other.name != skip
            for arg in (other.flag, value(other))]


def _placeholder(command) -> list[str]:
    """A file argument that does not exist, when the command takes one (options are checked before reading)."""
    return ["no-such-file.csv"] if any(p.param_type_name == "argument" for p in command.params) else []


@pytest.mark.parametrize(("path", "command", "spec"), SPEC_COMMANDS, ids=[p for p, _, _ in SPEC_COMMANDS])
def test_every_spec_option_is_a_command_option_with_the_same_default_help_and_choices(path, command, spec):
    options = {p.name: p for p in command.params if p.param_type_name == "option"}
    for info in fields_of(spec):
        assert info.name in options, f"{path}: option {info.flag} missing"
        option = options[info.name]
        assert info.flag in option.opts
        assert option.help == cli_help(info) and info.help in option.help
        assert option.required == info.required
        if not info.required:
            default = list(info.default) if isinstance(info.default, tuple) else info.default
            assert option.default == default or (default == [] and option.default is None)
        if info.choices is not None and not info.multiple:
            result = CliRunner().invoke(app, [*path.split(), *_placeholder(command), *_required_args(spec, info.name),
                                              info.flag, "bogus"])
            assert result.exit_code == 2, result.output
            assert all(choice in result.output for choice in info.choices), result.output
    extra = set(options) - {info.name for info in fields_of(spec)} - INTERFACE - INPUTS
    assert not extra, f"{path}: options {sorted(extra)} are not declared in {spec.__name__}"


@pytest.mark.parametrize(("path", "command", "spec"), SPEC_COMMANDS, ids=[p for p, _, _ in SPEC_COMMANDS])
def test_every_bound_is_enforced_on_the_command_line_in_one_line(path, command, spec, capsys):
    """A value outside an option's bounds is refused before any input is read, in the one message form."""
    bounded = [info for info in fields_of(spec) if info.kind in (int, float) and info.min is not None]
    for info in bounded:
        below = info.min - 1 if info.inclusive else info.min
        value = str(int(below)) if info.kind is int else repr(float(below))
        other = [a for a in command.params if a.param_type_name == "option" and a.required and a.name in INPUTS]
        inputs = [arg for a in other for arg in (a.opts[0], "1")]
        with pytest.raises(SystemExit) as stop:
            main([*path.split(), *_placeholder(command), *inputs, *_required_args(spec, info.name), info.flag,
                  value])
        stderr = capsys.readouterr().err
        assert stop.value.code == 2, (info.flag, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: option {info.flag} must"), (info.flag, lines)
