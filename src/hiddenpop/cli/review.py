"""``hiddenpop review ...`` commands: size, sample, estimate (options from :mod:`hiddenpop.review.specs`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import OUTPUT, OutputFormat, emit, parameter, parse_csv_list
from hiddenpop.data.io import read_table
from hiddenpop.design.precision import sample_size
from hiddenpop.errors import ConfigError
from hiddenpop.privacy import load_key
from hiddenpop.privacy.keys import KEY_ENV
from hiddenpop.provenance import provenance
from hiddenpop.review.proportion import count_reviews, review_estimate
from hiddenpop.review.sampling import review_sample
from hiddenpop.review.specs import ReviewEstimateSpec, ReviewSampleSpec, ReviewSizeSpec
from hiddenpop.specs import typer_command

UnitsArgument = Annotated[Path, typer.Argument(help="list of units or reports (pseudonymised unless --key-file)")]
UnitOption = Annotated[str, typer.Option("--unit", help="unit identifier column (e.g. ip)")]
KeyOption = Annotated[Path | None, typer.Option("--key-file", help="pseudonymise raw identifiers with this key")]
ReviewsArgument = Annotated[Path | None, typer.Argument(help="review file: one row per reviewed unit")]
StatusOption = Annotated[str, typer.Option("--status", help="status column in the review file")]
CategoriesOption = {
    name: Annotated[str | None, typer.Option(f"--{name}", help=f"comma-separated {name} categories")]
    for name in ("positive", "negative", "unknown")
}
UnitCheckOption = Annotated[str | None, typer.Option("--unit", help="unit column: checks one row per unit")]
CountOption = {
    name: Annotated[int | None, typer.Option(f"--{name}-count", help=f"instead of a file: {name} reviews", min=0)]
    for name in ("positive", "negative", "unknown")
}


def _size(*, spec: ReviewSizeSpec, fmt: OutputFormat, out: Path | None, quiet: bool) -> None:
    """Units to review for a share within +/- margin (finite population correction when --population)."""
    result = sample_size(spec.margin, confidence=spec.confidence, proportion=spec.proportion,
                         population=spec.population, expected_unknown=spec.expected_unknown)
    emit(result.to_dict(), fmt, out, table=result.table, title="review size")


def _sample(units_file: Path, *, spec: ReviewSampleSpec, unit: str, key_file: Path | None, fmt: OutputFormat,
            out: Path | None, quiet: bool) -> None:
    """Seeded simple random sample of distinct units (by unit, never by report).

    --format csv writes the sampled pseudonyms with their inclusion probabilities.
    """
    # a key from --key-file or the environment, as every identifier reader; none = input already pseudonymised
    key = load_key(key_file) if key_file is not None or os.environ.get(KEY_ENV) else None
    result = review_sample(read_table(units_file), spec, unit=unit, key=key, source=units_file.name)
    result.provenance = provenance(inputs=[units_file], command="review sample", seed=spec.seed)
    main = result.tables["sample"] if fmt == OutputFormat.csv else result.table
    emit(result.to_dict(), fmt, out, table=main, title="review sample")


def _estimate(reviews: Path | None = None, *, spec: ReviewEstimateSpec, status: str, positive: str | None,
              negative: str | None, unknown: str | None, unit: str | None, positive_count: int | None,
              negative_count: int | None, unknown_count: int | None, fmt: OutputFormat, out: Path | None,
              quiet: bool) -> None:
    """Share with Wilson and Clopper-Pearson intervals; unknowns as bounds and as missing at random.

    With --total, also the number of positive units (total x share) with both uncertainties simulated.
    """
    if reviews is not None:
        if positive_count is not None or negative_count is not None or unknown_count:
            raise ConfigError("give either a review file or --positive-count/--negative-count, not both")

        counts = count_reviews(read_table(reviews), status=status, positive=parse_csv_list(positive),
                               negative=parse_csv_list(negative), unknown=parse_csv_list(unknown), unit=unit,
                               source=reviews.name)
    else:
        if positive_count is None or negative_count is None:
            raise ConfigError("give a review file, or --positive-count and --negative-count (and --unknown-count)")
        counts = (positive_count, negative_count, unknown_count or 0)
    result = review_estimate(*counts, spec)
    result.provenance = provenance(inputs=[reviews] if reviews is not None else [], command="review estimate",
                                   seed=spec.seed if spec.total is not None else None)
    emit(result.to_dict(), fmt, out, table=result.table, title="review estimate")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("size")(typer_command(ReviewSizeSpec, _size, trailing=OUTPUT, command="size"))
    app.command("sample")(typer_command(
        ReviewSampleSpec, _sample, leading=[parameter("units_file", UnitsArgument)],
        trailing=[parameter("unit", UnitOption), parameter("key_file", KeyOption, None), *OUTPUT],
        command="sample"))
    estimate_inputs = [parameter("status", StatusOption, "status"),
                       *(parameter(name, CategoriesOption[name], None) for name in CategoriesOption),
                       parameter("unit", UnitCheckOption, None),
                       *(parameter(f"{name}_count", CountOption[name], None) for name in CountOption)]
    app.command("estimate")(typer_command(
        ReviewEstimateSpec, _estimate, leading=[parameter("reviews", ReviewsArgument, None)],
        trailing=[*estimate_inputs, *OUTPUT], command="estimate"))
