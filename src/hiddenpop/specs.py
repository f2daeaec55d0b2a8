"""Options declared once: an analysis's settings as a frozen dataclass, and every interface derived from it.

An analysis declares its options as a *spec*: a frozen dataclass whose fields carry their default, help text and
bounds (``opt``), with choices written as ``Literal[...]``::

    @dataclass(frozen=True, kw_only=True)
    class ClosedSpec:
        rcapture: bool = opt(False, "reproduce Rcapture's printed numbers")
        level: float = opt(0.95, "confidence level", min=0, max=1, inclusive=False)

From that one declaration come

* :func:`validate` -- one check of types, choices and bounds, raising :class:`ConfigError` in one message form
  ("option 'level' must be ... ; got ...");
* :func:`cli_parameters` / :func:`typer_command` -- the command's ``--kebab-case`` options with the same defaults,
  help, choices and bounds (Typer reads the generated ``__signature__``);
* :func:`from_table` -- the spec from a study-file table, with "did you mean" for a misspelt key;
* :func:`json_schema` and :func:`options_markdown` -- the schema and the option table in the docs.

Specs hold only JSON-friendly values (bool, int, float, str, ``None``, tuples of those), so ``to_dict(spec)`` is
what an estimator records as its settings.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import types
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from hiddenpop.errors import ConfigError

__all__ = [
    "DEFAULT_SEED",
    "MAX_SEED",
    "REQUIRED",
    "OptionInfo",
    "cli_help",
    "cli_parameters",
    "fields_of",
    "from_table",
    "json_schema",
    "opt",
    "options_markdown",
    "project",
    "seed_option",
    "to_dict",
    "typer_command",
    "validate",
]

_META = "hiddenpop"
DEFAULT_SEED = 1  # the one default seed of every analysis that draws random numbers
MAX_SEED = 2**32 - 1  # seeds are 32-bit unsigned, which every random generator used here accepts
REQUIRED: Any = dataclasses.MISSING  # opt(REQUIRED, ...) declares an option without a default


@dataclasses.dataclass(frozen=True)
class OptionInfo:
    """Everything an interface needs to know about one option."""

    name: str
    kind: type  # bool, int, float or str (the element type for tuples)
    default: Any
    help: str
    optional: bool = False  # None is allowed
    multiple: bool = False  # a tuple of values; the CLI repeats the flag
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    inclusive: bool = True  # whether min and max themselves are allowed
    required: bool = False  # no default: every interface must be given a value
    aliases: tuple[str, ...] = ()  # deprecated command-line spellings, accepted for one release
    parse: Callable[[str], Any] | None = None  # a text option's own grammar: raises ConfigError when malformed

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def describe_bounds(self) -> str:
        if self.min is None and self.max is None:
            return ""
        low = "" if self.min is None else f"{_number(self.min)} {'<=' if self.inclusive else '<'} "
        high = "" if self.max is None else f" {'<=' if self.inclusive else '<'} {_number(self.max)}"
        return f"{low}{self.name}{high}"


def _number(value: float) -> str:
    """A bound or value as people write it: whole numbers in full, others to 6 significant digits."""
    if float(value).is_integer() and abs(value) < 1e18:
        return str(int(value))
    return f"{value:g}"


def opt(default: Any, help: str, *, min: float | None = None, max: float | None = None,
        inclusive: bool = True, aliases: tuple[str, ...] = (), parse: Callable[[str], Any] | None = None) -> Any:
    """A spec field with its default, help text and optional numeric bounds.

    ``aliases`` are older command-line spellings (e.g. ``"--deg-ratio"``) still accepted for one release; the help
    lists them after the flag, and they have no study-file key. ``parse`` checks a text option's grammar (e.g. a
    distribution written ``beta(17, 3)``): it raises :class:`ConfigError` saying what is wrong, without the value.
    """
    metadata = {_META: {"help": help, "min": min, "max": max, "inclusive": inclusive, "aliases": aliases,
                        "parse": parse}}
    if isinstance(default, (list, dict, set)):
        raise TypeError("spec defaults must be immutable (use a tuple)")
    if default is REQUIRED:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _unwrap(annotation: Any) -> tuple[Any, bool, bool]:
    """(element annotation, optional?, multiple?) of a field's annotation."""
    optional = False
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        if len(args) != 1:
            raise TypeError(f"unsupported spec annotation {annotation!r}")
        annotation = args[0]
    multiple = False
    if get_origin(annotation) is tuple:
        args = get_args(annotation)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"spec tuples are written tuple[T, ...], got {annotation!r}")
        annotation, multiple = args[0], True
    return annotation, optional, multiple


def seed_option(help: str = "random seed (same seed, same numbers)") -> Any:
    """The seed field every spec that draws random numbers declares: default DEFAULT_SEED, 0..MAX_SEED."""
    return opt(DEFAULT_SEED, help, min=0, max=MAX_SEED)


def fields_of(spec: type | Any) -> list[OptionInfo]:
    """The options a spec class (or instance) declares, in declaration order."""
    cls = spec if isinstance(spec, type) else type(spec)
    hints = get_type_hints(cls)
    infos = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META)
        if meta is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with opt()")
        annotation, optional, multiple = _unwrap(hints[f.name])
        choices = None
        if get_origin(annotation) is Literal:
            choices = tuple(str(c) for c in get_args(annotation))
            kind: type = str
        elif annotation in (bool, int, float, str):
            kind = annotation
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: unsupported type {annotation!r}")
        required = f.default is dataclasses.MISSING
        infos.append(OptionInfo(name=f.name, kind=kind, default=None if required else f.default, help=meta["help"],
                                optional=optional, multiple=multiple, choices=choices, min=meta["min"],
                                max=meta["max"], inclusive=meta["inclusive"], required=required,
                                aliases=meta["aliases"], parse=meta["parse"]))
    return infos


def project(spec: Any, spec_cls: type) -> Any:
    """The part of ``spec`` that ``spec_cls`` declares (a command's options often join several specs)."""
    return spec_cls(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(spec_cls)})


def to_dict(spec: Any) -> dict[str, Any]:
    """The spec's values as a JSON-friendly dict (tuples become lists)."""
    return {f.name: list(v) if isinstance(v := getattr(spec, f.name), tuple) else v for f in dataclasses.fields(spec)}


# ------------------------------------------------------------------------------------------------ validation
def _check_value(info: OptionInfo, value: Any, where: str, flags: bool = False) -> Any:
    """The value converted to the option's type, or ConfigError in the one message form."""
    label = f"{where}option {info.flag}" if flags else f"{where}key {info.name!r}"
    if value is None:
        if info.optional:
            return None
        raise ConfigError(f"{label} needs a value ({info.help})")
    if info.multiple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{label} must be a list of values ({info.help}); got {_kind_of(value)}")
        return tuple(_check_one(info, item, label) for item in value)
    return _check_one(info, value, label)


def _kind_of(value: Any) -> str:
    """What a value is, in the words of the study-file docs (never the value itself)."""
    for python_type, word in ((bool, "true/false"), (str, "text"), (int, "a whole number"), (float, "a number"),
                              (list, "a list"), (tuple, "a list"), (dict, "a table")):
        if isinstance(value, python_type):
            return word
    return type(value).__name__


def _check_one(info: OptionInfo, value: Any, label: str) -> Any:
    kind = info.kind
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false ({info.help}); got {_kind_of(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{label} must be a whole number ({info.help}); got {_kind_of(value)}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label} must be a number ({info.help}); got {_kind_of(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{label} must be a finite number")
    elif kind is str:
        if isinstance(value, StrEnum):
            value = value.value
        if not isinstance(value, str):
            raise ConfigError(f"{label} must be text ({info.help}); got {_kind_of(value)}")
        if info.choices is not None and value not in info.choices:
            hint = difflib.get_close_matches(value, info.choices, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{label} must be one of {', '.join(map(repr, info.choices))}; "
                              f"got {value!r}{suggestion}")
        if info.parse is not None:
            try:
                info.parse(value)
            except ConfigError as error:
                raise ConfigError(f"{label}: {error}") from None
        return value
    low_ok = info.min is None or (value >= info.min if info.inclusive else value > info.min)
    high_ok = info.max is None or (value <= info.max if info.inclusive else value < info.max)
    if not (low_ok and high_ok):
        raise ConfigError(f"{label} must satisfy {info.describe_bounds()}; got {_number(value)}")
    return value


def validate(spec: Any, *, where: str = "", flags: bool = False) -> Any:
    """Check every field of ``spec``; returns a spec with values converted to their declared types.

    Messages name the option as a study-file key (``key 'level'``), or as a command-line flag when ``flags``.
    """
    values = {info.name: _check_value(info, getattr(spec, info.name), where, flags) for info in fields_of(spec)}
    return dataclasses.replace(spec, **values)


def from_table(spec_cls: type, table: Mapping[str, Any], *, where: str = "",
               ignore: tuple[str, ...] = ()) -> Any:
    """Build and validate a spec from a study-file table; an unknown key is an error with "did you mean".

    ``where`` prefixes messages (e.g. ``"study.toml, [analyses.mse]: "``); keys in ``ignore`` belong to the
    table's caller (e.g. ``enabled``).
    """
    infos = fields_of(spec_cls)
    names = [info.name for info in infos]
    for key in table:
        if key in ignore or key in names:
            continue
        hint = difflib.get_close_matches(key, [*names, *ignore], n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; allowed keys: {', '.join(names)}"
        raise ConfigError(f"{where}unknown key {key!r}{suggestion}")
    for info in infos:
        if info.required and info.name not in table:
            raise ConfigError(f"{where}key {info.name!r} is required ({info.help})")
    values = {k: v for k, v in table.items() if k in names}
    for info in infos:  # in a study file a single value stands for a list of one (method = "mle")
        if info.multiple and isinstance(values.get(info.name), (str, bool, int, float)):
            values[info.name] = (values[info.name],)
    return validate(spec_cls(**values), where=where)


# ------------------------------------------------------------------------------------------------ command line
def _cli_annotation(info: OptionInfo, command: str) -> Any:
    """The Typer annotation of one option: ``Annotated[T, typer.Option(...)]``."""
    import typer  # the command line's library: families and notebooks that read a spec never load it

    if info.multiple:  # read as text: each value may hold several, separated by commas (see _split_values)
        kind: Any = list[str]
    elif info.choices is not None:
        kind = StrEnum(f"{command}_{info.name}".title().replace("_", ""), {c: c for c in info.choices})
    else:
        kind = info.kind
    if info.optional:
        kind = kind | None
    flag = info.flag if info.kind is not bool else f"{info.flag}/--no-{info.flag[2:]}"
    return Annotated[kind, typer.Option(flag, *info.aliases, help=cli_help(info))]


def cli_help(info: OptionInfo) -> str:
    """An option's ``--help`` text: its help, its bounds, and for lists how to give several values.

    Bounds are shown here rather than enforced by the command-line parser: :func:`validate` checks them, so every
    bad value gets the same one-line error from every interface.
    """
    text = info.help
    if info.describe_bounds():
        text = f"{text} [{info.describe_bounds()}]"
    if info.multiple and (info.kind is not str or info.choices):
        allowed = f"; one or more of {', '.join(info.choices)}" if info.choices else ""
        text = f"{text} (repeat the option or separate values with commas{allowed})"
    elif info.multiple:
        text = f"{text} (repeat the option for several)"
    return text


def _split_values(info: OptionInfo, given: list[str]) -> tuple[Any, ...]:
    """A repeatable option's values: ``--x 1 --x 2`` and ``--x 1,2`` both give (1, 2), converted to its type.

    Free text (a string option without choices, such as ``--exclude category=a,b``) is never split."""
    if info.kind is str and info.choices is None:
        return tuple(str(value) for value in given)
    items = [item.strip() for value in given for item in str(value).split(",")]
    if any(not item for item in items):
        raise ConfigError(f"option {info.flag} has an empty value; give values separated by commas, e.g. 1,2")
    if info.kind is str:
        return tuple(items)
    try:
        return tuple(info.kind(item) for item in items)
    except ValueError:
        word = "whole numbers" if info.kind is int else "numbers"
        raise ConfigError(f"option {info.flag} takes {word} (repeat the option or separate them with commas)") \
            from None


def cli_parameters(spec_cls: type, *, command: str = "") -> list[inspect.Parameter]:
    """One keyword parameter per option, for a command's ``__signature__``."""
    params = []
    for info in fields_of(spec_cls):
        default = ... if info.required else info.default
        if info.multiple and not info.required:
            default = list(default) if default is not None else None
        params.append(inspect.Parameter(info.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=_cli_annotation(info, command or spec_cls.__name__)))
    return params


def typer_command(spec_cls: type, run: Callable[..., Any], *, leading: list[inspect.Parameter] | None = None,
                  trailing: list[inspect.Parameter] | None = None, command: str = "") -> Callable[..., Any]:
    """A function Typer can register: its options are the spec's fields.

    ``leading`` (inputs, e.g. the FILE argument) and ``trailing`` (interface options such as ``--format``) are
    passed to ``run`` by name together with ``spec=``, the validated spec built from the option values.
    """
    leading, trailing = leading or [], trailing or []
    names = [info.name for info in fields_of(spec_cls)]

    infos = {info.name: info for info in fields_of(spec_cls)}

    def command_function(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names}
        values = {k: _split_values(infos[k], v) if isinstance(v, list) else v for k, v in values.items()}
        spec = validate(spec_cls(**values), flags=True)
        return run(spec=spec, **kwargs)

    positional = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in leading]
    keyword = cli_parameters(spec_cls, command=command) + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                                                          for p in trailing]
    command_function.__signature__ = inspect.Signature(positional + keyword)  # type: ignore[attr-defined]
    command_function.spec = spec_cls  # type: ignore[attr-defined]  # lets tests find every spec-driven command
    command_function.__doc__ = run.__doc__
    command_function.__name__ = getattr(run, "__name__", "command")
    return command_function


# ------------------------------------------------------------------------------------------------ documentation
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def json_schema(spec_cls: type) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the spec's study-file table."""
    properties: dict[str, Any] = {}
    for info in fields_of(spec_cls):
        item: dict[str, Any] = {"type": _JSON_TYPES[info.kind]}
        if info.choices is not None:
            item["enum"] = list(info.choices)
        if info.min is not None:
            item["minimum" if info.inclusive else "exclusiveMinimum"] = info.min
        if info.max is not None:
            item["maximum" if info.inclusive else "exclusiveMaximum"] = info.max
        if info.multiple:
            item = {"type": "array", "items": item}
        if info.optional:
            item = {"anyOf": [item, {"type": "null"}]}
        item["description"] = info.help
        default = list(info.default) if isinstance(info.default, tuple) else info.default
        if default is not None:
            item["default"] = default
        properties[info.name] = item
    required = [info.name for info in fields_of(spec_cls) if info.required]
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


_KIND_WORDS = {bool: "true or false", int: "whole number", float: "number", str: "text"}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def options_markdown(spec_cls: type, skip: tuple[str, ...] = ()) -> str:
    """The option table for the docs: study-file key, command-line flag, default, allowed values, meaning."""
    lines = ["| study-file key | command line | default | allowed | meaning |", "|---|---|---|---|---|"]
    for info in fields_of(spec_cls):
        if info.name in skip:
            continue
        if info.choices:
            allowed = ", ".join(f"`{c}`" for c in info.choices)
        else:
            allowed = info.describe_bounds() or _KIND_WORDS[info.kind]
        if info.multiple:
            allowed = f"list of {allowed}"
        default = "required" if info.required else "none" if info.default is None else f"`{_toml_value(info.default)}`"
        lines.append(f"| `{info.name}` | `{info.flag}` | {default} | {allowed} | {info.help} |")
    return "\n".join(lines) + "\n"
