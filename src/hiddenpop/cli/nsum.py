"""``hiddenpop nsum ...`` commands: ``estimate``, ``consistency``, ``visibility`` and ``degree-ratio`` (the Bayesian
models register under ``bayes``).

The options come from the specs in :mod:`hiddenpop.nsum.specs`; the commands read the survey, call
:mod:`hiddenpop.nsum.analyses` and print ``Estimates.to_dict()`` (``--format json``), the tidy table
(``--format csv``) or a table for people.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hiddenpop.cli.common import OUTPUT, OutputFormat, emit, parameter, parse_csv_list
from hiddenpop.data.ard import read_ard
from hiddenpop.errors import ConfigError
from hiddenpop.nsum.analyses import consistency_analysis, scale_up_analysis
from hiddenpop.nsum.estimators import Prevalence
from hiddenpop.nsum.specs import (
    ConsistencySpec,
    GameOfContactsOptions,
    GameOfContactsSpec,
    KnownGroupRatioSpec,
    NsumSpec,
    SurveyConsistencySpec,
    SurveyKnownGroupRatioSpec,
    SurveyNsumSpec,
    SurveyOptions,
)
from hiddenpop.nsum.visibility import degree_ratio_from_known, game_of_contacts_file
from hiddenpop.provenance import provenance
from hiddenpop.specs import project, typer_command

SurveyArg = Annotated[
    Path, typer.Argument(help="survey file: CSV, Parquet, Excel, SPSS .sav or Stata .dta", show_default=False)
]
KnownOption = Annotated[Path, typer.Option("--known", help="known sizes table with columns group,size")]
PopulationOption = Annotated[
    float, typer.Option("--population", help="scale-up base: total population (or the summed groups' population)")
]
HiddenOption = Annotated[
    list[str] | None, typer.Option("--hidden", help="hidden-group column (repeat: --hidden a --hidden b)")
]
DegreeColumnsOption = Annotated[
    str | None,
    typer.Option("--degree-columns", help="summation degree: comma-separated columns whose sum is the degree"),
]
SumOption = Annotated[list[str] | None, typer.Option("--sum", help="derived sum NAME=A+B (repeatable)")]
RatioOption = Annotated[list[str] | None, typer.Option("--ratio", help="derived ratio NAME=A/B (repeatable)")]
PrevalenceOption = Annotated[
    list[str] | None, typer.Option("--prevalence", help="NAME=QUANTITY:BASE[:PER] (repeatable)")
]


SURVEY_INPUTS = [parameter("survey", SurveyArg), parameter("known", KnownOption),
                 parameter("population", PopulationOption)]


def read_survey(survey: Path, known: Path, population: float, hidden: list[str] | None, options: SurveyOptions,
                degree_columns: str | None = None):
    """The survey as the ARD contract, read with the spec's reading options."""
    if not population > 0:
        raise ConfigError("--population must be a positive number")
    return read_ard(survey, known=known, population=population, hidden=hidden or [], weights=options.weights,
                    strata=options.strata, psu=options.psu, id_column=options.id, missing=options.missing,
                    degree_columns=parse_csv_list(degree_columns) or None, topcode=options.topcode)


def _split(spec: str, sep: str, option: str, example: str) -> tuple[str, str]:
    if sep not in spec:
        raise ConfigError(f"{option} {spec!r}: expected {example}")
    left, right = spec.split(sep, 1)
    left, right = left.strip(), right.strip()
    if not left or not right:
        raise ConfigError(f"{option} {spec!r}: expected {example}")
    return left, right


def parse_derived(sums: list[str], ratios: list[str], prevalence: list[str] | None = None) -> dict[str, Any]:
    """``--sum NAME=A+B``, ``--ratio NAME=A/B`` and ``--prevalence NAME=QUANTITY:BASE[:PER]`` as the estimators'
    ``sums``, ``ratios`` and ``prevalence`` arguments (shared by ``nsum estimate`` and ``nsum bayes``)."""
    sums_d = {}
    for spec in sums:
        name, parts = _split(spec, "=", "--sum", "NAME=GROUP+GROUP (e.g. victims=child_nonlive+child_livestream)")
        sums_d[name] = [p.strip() for p in parts.split("+")]
        if any(not p for p in sums_d[name]):
            raise ConfigError(f"--sum {spec!r}: empty group name")
    ratios_d = {}
    for spec in ratios:
        name, parts = _split(spec, "=", "--ratio", "NAME=NUMERATOR/DENOMINATOR")
        ratios_d[name] = _split(parts, "/", "--ratio", "NAME=NUMERATOR/DENOMINATOR")
        if "/" in ratios_d[name][1]:
            raise ConfigError(f"--ratio {spec!r}: expected NAME=NUMERATOR/DENOMINATOR (one '/')")
    prev_d = {}
    for spec in prevalence or []:
        name, parts = _split(spec, "=", "--prevalence", "NAME=QUANTITY:BASE[:PER] (e.g. victims_per_100=victims:38e6:100)")
        fields = parts.split(":")
        if len(fields) not in (2, 3):
            raise ConfigError(f"--prevalence {spec!r}: expected NAME=QUANTITY:BASE[:PER]")
        try:
            base = float(fields[1])
            per = float(fields[2]) if len(fields) == 3 else 1.0
        except ValueError:
            raise ConfigError(f"--prevalence {spec!r}: BASE and PER must be numbers") from None
        prev_d[name] = Prevalence(fields[0].strip(), base, per)
    return {"sums": sums_d, "ratios": ratios_d, "prevalence": prev_d}


def _table(result, fmt: OutputFormat, extra: tuple[str, ...] = ("interval",)):
    """Full tidy table for csv; the core columns (plus a few) for people."""
    if fmt == OutputFormat.csv:
        return result.table
    columns = ["quantity", "method", "estimate", "se", "lower", "upper", "level", *extra]
    return result.table[[c for c in columns if c in result.table.columns]]


def _estimate(survey: Path, known: Path, population: float, *, spec: SurveyNsumSpec, hidden: list[str] | None,
              degree_columns: str | None, sum_: list[str] | None, ratio: list[str] | None,
              prevalence: list[str] | None, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Scale-up estimates of hidden groups with design-based (rescaled bootstrap) intervals, the degree
    distribution and the leave-one-out consistency of the known groups."""
    if not hidden:
        raise ConfigError("name at least one hidden group with --hidden COL (repeat for more)")
    ard = read_survey(survey, known, population, hidden, project(spec, SurveyOptions), degree_columns)
    derived = parse_derived(sum_ or [], ratio or [], prevalence or [])
    result = scale_up_analysis(ard, project(spec, NsumSpec), **derived)
    result.provenance = provenance(inputs=[survey, known], command="nsum estimate")
    emit(result.to_dict(), fmt, out, table=_table(result, fmt), title="Network scale-up estimates")


def _consistency(survey: Path, known: Path, population: float, *, spec: SurveyConsistencySpec,
                 hidden: list[str] | None, degree_columns: str | None, fmt: OutputFormat, out: Path | None,
                 quiet: bool) -> None:
    """Leave-one-out internal consistency of the known groups (held-out estimate vs known size)."""
    ard = read_survey(survey, known, population, hidden, project(spec, SurveyOptions), degree_columns)
    result = consistency_analysis(ard, project(spec, ConsistencySpec))
    result.provenance = provenance(inputs=[survey, known], command="nsum consistency")
    emit(result.to_dict(), fmt, out, table=_table(result, fmt, extra=("known_size", "ratio", "flag")),
         title="Leave-one-out internal consistency")


GameArg = Annotated[
    Path, typer.Argument(help="game-of-contacts survey of the hidden population, one row per respondent: CSV, "
                              "Parquet, Excel, SPSS .sav or Stata .dta", show_default=False)
]


def _declarations(result, fmt: OutputFormat, out: Path | None) -> None:
    """For people: the [visibility.NAME] tables to paste into a study file, after the estimates."""
    if fmt == OutputFormat.table and out is None and result.diagnostics.get("declaration"):
        sys.stdout.write("\nPaste into the study file:\n\n" + result.diagnostics["declaration"])
        sys.stdout.flush()


def _visibility(survey: Path, *, spec: GameOfContactsSpec, fmt: OutputFormat, out: Path | None,
                quiet: bool) -> None:
    """Transmission rate tau and degree ratio delta from a game-of-contacts survey of the hidden population, with
    bootstrap intervals and the [visibility.NAME] declarations (Beta for tau, lognormal for delta) they imply."""
    result = game_of_contacts_file(survey, project(spec, GameOfContactsOptions), name=spec.name)
    result.provenance = provenance(inputs=[survey], command="nsum visibility")
    emit(result.to_dict(), fmt, out, table=_table(result, fmt, extra=("distribution",)),
         title="Visibility factors from the game of contacts")
    _declarations(result, fmt, out)


def _degree_ratio(survey: Path, known: Path, population: float, *, spec: SurveyKnownGroupRatioSpec,
                  hidden: list[str] | None, degree_columns: str | None, fmt: OutputFormat, out: Path | None,
                  quiet: bool) -> None:
    """The hidden group's degree ratio delta predicted from the general survey alone, from reference known groups
    assumed to resemble it, with the [visibility.NAME] declaration (lognormal) it implies."""
    ard = read_survey(survey, known, population, hidden, project(spec, SurveyOptions), degree_columns)
    options = project(spec, KnownGroupRatioSpec)
    result = degree_ratio_from_known(ard, options.reference, level=options.level, name=options.name)
    result.provenance = provenance(inputs=[survey, known], command="nsum degree-ratio")
    emit(result.to_dict(), fmt, out, table=_table(result, fmt, extra=("distribution",)),
         title="Degree ratio from reference known groups")
    _declarations(result, fmt, out)


_GROUPS = [parameter("hidden", HiddenOption, None), parameter("degree_columns", DegreeColumnsOption, None)]
_DERIVED = [parameter("sum_", SumOption, None), parameter("ratio", RatioOption, None),
            parameter("prevalence", PrevalenceOption, None)]


def register(app: typer.Typer) -> None:
    """Add ``estimate``, ``consistency``, ``visibility`` and ``degree-ratio`` to ``nsum``."""
    app.command("estimate")(typer_command(SurveyNsumSpec, _estimate, leading=SURVEY_INPUTS,
                                          trailing=_GROUPS + _DERIVED + OUTPUT, command="estimate"))
    app.command("consistency")(typer_command(SurveyConsistencySpec, _consistency, leading=SURVEY_INPUTS,
                                             trailing=_GROUPS + OUTPUT, command="consistency"))

    app.command("visibility")(typer_command(GameOfContactsSpec, _visibility, leading=[parameter("survey", GameArg)],
                                            trailing=OUTPUT, command="visibility"))
    app.command("degree-ratio")(typer_command(SurveyKnownGroupRatioSpec, _degree_ratio, leading=SURVEY_INPUTS,
                                              trailing=_GROUPS + OUTPUT, command="degree_ratio"))
