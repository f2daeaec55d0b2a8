"""``hiddenpop nsum ...`` commands: ``estimate`` and ``consistency`` (the Bayesian models register under ``bayes``).

``--format json`` prints one object::

    {"estimates": [{"quantity", "method", "estimate", "se", "lower", "upper", "level", ...}, ...],
     "degrees": {min, q1, median, mean, q3, max, sum, zero_degree_respondents, method, columns, ...},
     "diagnostics": {...}, "warnings": [...], "notes": [...], "settings": {...}, "seed": S, "provenance": {...}}
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from hiddenpop.cli.common import FormatOption, OutOption, OutputFormat, QuietOption, emit, parse_csv_list
from hiddenpop.errors import ConfigError

app = typer.Typer(no_args_is_help=True)


class MissingPolicy(StrEnum):
    zero = "zero"
    drop = "drop"


class Method(StrEnum):
    mle = "mle"
    pimle = "pimle"
    mos = "mos"


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
WeightsOption = Annotated[str | None, typer.Option("--weights", help="survey weight column (> 0)")]
StrataOption = Annotated[str | None, typer.Option("--strata", help="stratum column")]
PsuOption = Annotated[str | None, typer.Option("--psu", help="primary sampling unit (cluster) column")]
IdOption = Annotated[str | None, typer.Option("--id-column", help="respondent id column (must be unique)")]
DegreeColumnsOption = Annotated[
    str | None,
    typer.Option("--degree-columns", help="summation degree: comma-separated columns whose sum is the degree"),
]
TopcodeOption = Annotated[int | None, typer.Option("--topcode", help="top-code known-group answers at K (e.g. 30)")]
MissingOption = Annotated[MissingPolicy, typer.Option("--missing", help="missing answers: zero or drop respondent")]


def _population(value: float) -> float:
    if not value > 0:
        raise ConfigError("--population must be a positive number")
    return value


def _load(survey, known, population, hidden, weights, strata, psu, id_column, degree_columns, topcode, missing):
    from hiddenpop.data.ard import read_ard

    return read_ard(
        survey,
        known=known,
        population=_population(population),
        hidden=hidden or [],
        weights=weights,
        strata=strata,
        psu=psu,
        id_column=id_column,
        missing=missing.value,
        degree_columns=parse_csv_list(degree_columns) or None,
        topcode=topcode,
    )


def _split(spec: str, sep: str, option: str, example: str) -> tuple[str, str]:
    if sep not in spec:
        raise ConfigError(f"{option} {spec!r}: expected {example}")
    left, right = spec.split(sep, 1)
    left, right = left.strip(), right.strip()
    if not left or not right:
        raise ConfigError(f"{option} {spec!r}: expected {example}")
    return left, right


def _parse_derived(sums: list[str], ratios: list[str], prevalence: list[str]) -> dict[str, Any]:
    from hiddenpop.nsum.estimators import Prevalence

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
    prev_d = {}
    for spec in prevalence:
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


def _payload(result, degrees_summary, inputs, settings) -> dict[str, Any]:
    from hiddenpop.provenance import provenance

    body = result.to_dict()
    return {
        "estimates": body["estimates"],
        "degrees": degrees_summary,
        "diagnostics": body["diagnostics"],
        "warnings": body["warnings"],
        "notes": body["notes"],
        "settings": body["settings"],
        "seed": body["seed"],
        "tables": body["tables"],
        "provenance": provenance(inputs=inputs, **settings),
    }


def _table(result, fmt: OutputFormat, extra: tuple[str, ...] = ("interval",)):
    """Full tidy table for csv; the core columns (plus a few) for people."""
    if fmt == OutputFormat.csv:
        return result.table
    columns = ["quantity", "method", "estimate", "se", "lower", "upper", "level", *extra]
    return result.table[[c for c in columns if c in result.table.columns]]


def register(target: typer.Typer) -> None:
    """Add ``estimate`` and ``consistency`` to ``target`` (the ``nsum`` group)."""

    @target.command("estimate")
    def estimate_command(
        survey: SurveyArg,
        known: KnownOption,
        population: PopulationOption,
        hidden: HiddenOption = None,
        method: Annotated[
            list[Method] | None, typer.Option("--method", help="mle (default), pimle or mos; repeatable")
        ] = None,
        weights: WeightsOption = None,
        strata: StrataOption = None,
        psu: PsuOption = None,
        id_column: IdOption = None,
        degree_columns: DegreeColumnsOption = None,
        topcode: TopcodeOption = None,
        missing: MissingOption = MissingPolicy.zero,
        bootstrap: Annotated[
            int, typer.Option("--bootstrap", help="rescaled-bootstrap replicates (0: Killworth Wald interval only)")
        ] = 1000,
        seed: Annotated[int, typer.Option("--seed", help="random seed for the bootstrap")] = 1,
        level: Annotated[float, typer.Option("--level", help="interval level")] = 0.95,
        deg_ratio: Annotated[float, typer.Option("--deg-ratio", help="GNSUM degree ratio (divides the estimate)")] = 1.0,
        tx_rate: Annotated[float, typer.Option("--tx-rate", help="GNSUM transmission rate (divides)")] = 1.0,
        frame_ratio: Annotated[float, typer.Option("--frame-ratio", help="GNSUM frame ratio (divides)")] = 1.0,
        unweighted: Annotated[bool, typer.Option("--unweighted", help="ignore --weights in the estimator")] = False,
        sum_: Annotated[
            list[str] | None, typer.Option("--sum", help="derived sum NAME=A+B (repeatable)")
        ] = None,
        ratio: Annotated[list[str] | None, typer.Option("--ratio", help="derived ratio NAME=A/B (repeatable)")] = None,
        prevalence: Annotated[
            list[str] | None, typer.Option("--prevalence", help="NAME=QUANTITY:BASE[:PER] (repeatable)")
        ] = None,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
        quiet: QuietOption = False,
    ) -> None:
        """Scale-up estimates of hidden groups with design-based (rescaled bootstrap) intervals."""
        from hiddenpop.nsum.adjust import Adjustments
        from hiddenpop.nsum.degree import degree as make_degree
        from hiddenpop.nsum.degree import degree_summary
        from hiddenpop.nsum.diagnostics import consistency
        from hiddenpop.nsum.estimators import estimate

        if not hidden:
            raise ConfigError("name at least one hidden group with --hidden COL (repeat for more)")
        ard = _load(survey, known, population, hidden, weights, strata, psu, id_column, degree_columns, topcode, missing)
        methods = [m.value for m in (method or [Method.mle])]
        derived = _parse_derived(sum_ or [], ratio or [], prevalence or [])
        result = estimate(
            ard,
            methods,
            weighted=False if unweighted else None,
            adjustments=Adjustments(degree_ratio=deg_ratio, transmission_rate=tx_rate, frame_ratio=frame_ratio),
            bootstrap=bootstrap,
            seed=seed,
            level=level,
            **derived,
        )
        main_degree = make_degree(ard, "summation" if ard.degree_columns else "known_population")
        use_w = ard.weighted and not unweighted
        summary = degree_summary(main_degree, ard.design_weights if use_w else None)
        if len(ard.known) >= 2 and not ard.degree_columns:
            check = consistency(ard, weighted=use_w)
            result.diagnostics["consistency"] = {
                k: check.diagnostics[k] for k in ("are", "mae", "rmse", "flagged") if k in check.diagnostics
            }
            result.warnings.extend(w for w in check.warnings if w not in result.warnings)
        payload = _payload(
            result,
            summary,
            [survey, known],
            {"command": "nsum estimate", "methods": methods, "bootstrap": bootstrap, "seed": seed},
        )
        emit(payload, fmt, out, table=_table(result, fmt), title="Network scale-up estimates")

    @target.command("consistency")
    def consistency_command(
        survey: SurveyArg,
        known: KnownOption,
        population: PopulationOption,
        hidden: HiddenOption = None,
        weights: WeightsOption = None,
        strata: StrataOption = None,
        psu: PsuOption = None,
        id_column: IdOption = None,
        degree_columns: DegreeColumnsOption = None,
        topcode: TopcodeOption = None,
        missing: MissingOption = MissingPolicy.zero,
        flag_ratio: Annotated[
            float, typer.Option("--flag-ratio", help="flag groups whose held-out estimate is off by this factor")
        ] = 2.0,
        unweighted: Annotated[bool, typer.Option("--unweighted", help="ignore --weights")] = False,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
        quiet: QuietOption = False,
    ) -> None:
        """Leave-one-out internal consistency of the known groups (held-out estimate vs known size)."""
        from hiddenpop.nsum.diagnostics import consistency

        ard = _load(survey, known, population, hidden, weights, strata, psu, id_column, degree_columns, topcode, missing)
        result = consistency(ard, weighted=False if unweighted else None, flag_ratio=flag_ratio)
        payload = _payload(
            result,
            result.diagnostics.get("degrees", {}),
            [survey, known],
            {"command": "nsum consistency", "flag_ratio": flag_ratio},
        )
        emit(payload, fmt, out, table=_table(result, fmt, extra=("known_size", "ratio", "flag")),
             title="Leave-one-out internal consistency")


register(app)


def _register_subfamilies() -> None:
    from hiddenpop.cli.nsum_bayes import register as register_bayes

    register_bayes(app)


_register_subfamilies()
