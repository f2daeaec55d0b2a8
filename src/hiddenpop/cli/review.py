"""``hiddenpop review ...`` commands: size, sample, estimate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import FormatOption, OutOption, OutputFormat, SeedOption, emit
from hiddenpop.data.io import missing_column

DEFAULT_SEED = 20200101


def count_reviews(
    reviews,
    *,
    status: str,
    positive: list[str],
    negative: list[str],
    unknown: list[str],
    unit: str | None = None,
    source: str | None = None,
) -> tuple[int, int, int]:
    """Count positive/negative/unknown reviews in a one-row-per-unit review file (validated, values never echoed)."""
    import numpy as np

    from hiddenpop.errors import ConfigError, DataError, locate

    if status not in reviews.columns:
        raise missing_column(source, status, reviews.columns, role="review status")
    lists = {
        "positive": [v.lower() for v in positive],
        "negative": [v.lower() for v in negative],
        "unknown": [v.lower() for v in unknown],
    }
    seen: dict[str, str] = {}
    for name, values in lists.items():
        for value in values:
            if value in seen:
                raise ConfigError(f"category {value!r} is listed as both {seen[value]} and {name}")
            seen[value] = name
    if not lists["positive"] or not lists["negative"]:
        raise ConfigError(
            "give the positive and negative categories (--positive, --negative; --unknown optional)"
        )
    if unit is not None:
        if unit not in reviews.columns:
            raise missing_column(source, unit, reviews.columns, role="unit")
        duplicated = reviews[unit].duplicated(keep="first") & reviews[unit].notna()
        if duplicated.any():
            row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 1
            raise DataError(
                f"{locate(source, row, unit)}unit appears more than once; the review sample is by unit, not by "
                "report: give one status per unit"
            )
    counts = {"positive": 0, "negative": 0, "unknown": 0}
    for i, value in enumerate(reviews[status].tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
            raise DataError(
                f"{locate(source, i + 1, status)}status is missing; record an explicit unknown category "
                "(and list it with --unknown) rather than leaving the cell empty"
            )
        category = seen.get(str(value).strip().lower())
        if category is None:
            raise DataError(
                f"{locate(source, i + 1, status)}status is not one of the categories given with --positive "
                f"{positive}, --negative {negative}, --unknown {unknown}; add it to one of them"
            )
        counts[category] += 1
    return counts["positive"], counts["negative"], counts["unknown"]


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("size")
    def size_command(
        margin: Annotated[float, typer.Option("--margin", help="target half-width")] = 0.05,
        confidence: Annotated[float, typer.Option("--confidence", help="confidence level")] = 0.95,
        population: Annotated[
            float | None, typer.Option("--population", help="distinct units in the frame (FPC)")
        ] = None,
        proportion: Annotated[
            float, typer.Option("--proportion", help="anticipated share (0.5 = worst case)")
        ] = 0.5,
        expected_unknown: Annotated[
            float,
            typer.Option(
                "--expected-unknown", help="share of reviews expected to be unknown; inflates units to draw"
            ),
        ] = 0.0,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Units to review for a share within +/- margin (finite population correction when --population)."""
        from hiddenpop.design.sample_size import sample_size

        result = sample_size(
            margin,
            confidence=confidence,
            proportion=proportion,
            population=population,
            expected_unknown=expected_unknown,
        )
        emit(result.to_dict(), fmt, out, table=result.table, title="review size")

    @app.command("sample")
    def sample_command(
        units_file: Annotated[
            Path, typer.Argument(help="list of units or reports (pseudonymised unless --key-file)")
        ],
        unit: Annotated[str, typer.Option("--unit", help="unit identifier column (e.g. ip)")],
        n: Annotated[int | None, typer.Option("--n", help="units to sample")] = None,
        margin: Annotated[
            float | None, typer.Option("--margin", help="or: size for this margin (with FPC)")
        ] = None,
        confidence: Annotated[float, typer.Option("--confidence", help="with --margin")] = 0.95,
        expected_unknown: Annotated[float, typer.Option("--expected-unknown", help="with --margin")] = 0.0,
        key_file: Annotated[
            Path | None, typer.Option("--key-file", help="pseudonymise raw identifiers with this key")
        ] = None,
        seed: SeedOption = DEFAULT_SEED,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Seeded simple random sample of distinct units (by unit, never by report).

        --format csv writes the sampled pseudonyms with their inclusion probabilities.
        """
        from hiddenpop.data.io import read_table
        from hiddenpop.design.sample_size import sample_size
        from hiddenpop.errors import ConfigError
        from hiddenpop.privacy import KEY_ENV, load_key
        from hiddenpop.provenance import provenance
        from hiddenpop.review.sampling import sample_units

        if (n is None) == (margin is None):
            raise ConfigError("give exactly one of --n or --margin")
        # a key from --key-file or the environment, as every identifier reader; none = input already pseudonymised
        key = load_key(key_file) if key_file is not None or os.environ.get(KEY_ENV) else None
        data = read_table(units_file)
        size_note = None
        if margin is not None:
            if unit not in data.columns:
                raise missing_column(units_file.name, unit, data.columns, role="unit")
            population = int(data[unit].nunique(dropna=True))
            plan = sample_size(
                margin, confidence=confidence, population=population, expected_unknown=expected_unknown
            )
            n = min(int(plan.estimate("sample_size_to_draw")), population)
            size_note = f"sample size {n} from margin {margin} at {confidence:.0%} confidence with FPC (N = {population})"
        result = sample_units(data, unit=unit, n=n, seed=seed, key=key, source=units_file.name)
        if size_note:
            result.notes.append(size_note)
        result.provenance = provenance(inputs=[units_file], command="review sample", seed=seed)
        main = result.tables["sample"] if fmt == OutputFormat.csv else result.table
        emit(result.to_dict(), fmt, out, table=main, title="review sample")

    @app.command("estimate")
    def estimate_command(
        reviews: Annotated[Path | None, typer.Argument(help="review file: one row per reviewed unit")] = None,
        status: Annotated[str, typer.Option("--status", help="status column in the review file")] = "status",
        positive: Annotated[
            str | None, typer.Option("--positive", help="comma-separated positive categories")
        ] = None,
        negative: Annotated[
            str | None, typer.Option("--negative", help="comma-separated negative categories")
        ] = None,
        unknown: Annotated[
            str | None, typer.Option("--unknown", help="comma-separated unknown categories")
        ] = None,
        unit: Annotated[
            str | None, typer.Option("--unit", help="unit column: checks one row per unit")
        ] = None,
        positive_count: Annotated[
            int | None, typer.Option("--positive-count", help="instead of a file: positives")
        ] = None,
        negative_count: Annotated[int | None, typer.Option("--negative-count", help="negatives")] = None,
        unknown_count: Annotated[int, typer.Option("--unknown-count", help="unknowns")] = 0,
        level: Annotated[float, typer.Option("--level", help="confidence level")] = 0.95,
        total: Annotated[
            float | None,
            typer.Option("--total", help="capture-recapture total (e.g. IPs) to multiply by the share"),
        ] = None,
        total_se: Annotated[float | None, typer.Option("--total-se", help="its standard error")] = None,
        total_lower: Annotated[
            float | None, typer.Option("--total-lower", help="or its interval: lower limit")
        ] = None,
        total_upper: Annotated[float | None, typer.Option("--total-upper", help="upper limit")] = None,
        total_level: Annotated[
            float, typer.Option("--total-level", help="level of the total's interval")
        ] = 0.95,
        total_dist: Annotated[str, typer.Option("--total-dist", help="lognormal or normal")] = "lognormal",
        draws: Annotated[int, typer.Option("--draws", help="Monte Carlo draws")] = 100_000,
        seed: SeedOption = DEFAULT_SEED,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Share with Wilson and Clopper-Pearson intervals; unknowns as bounds and as missing at random.

        With --total, also the number of positive units (total x share) with both uncertainties simulated.
        """
        from hiddenpop.cli.common import parse_csv_list
        from hiddenpop.errors import ConfigError
        from hiddenpop.provenance import provenance
        from hiddenpop.review.proportion import combine_with_total, estimate_share

        if reviews is not None:
            if positive_count is not None or negative_count is not None or unknown_count:
                raise ConfigError("give either a review file or --positive-count/--negative-count, not both")
            from hiddenpop.data.io import read_table

            x, y, u = count_reviews(
                read_table(reviews),
                status=status,
                positive=parse_csv_list(positive),
                negative=parse_csv_list(negative),
                unknown=parse_csv_list(unknown),
                unit=unit,
                source=reviews.name,
            )
        else:
            if positive_count is None or negative_count is None:
                raise ConfigError(
                    "give a review file, or --positive-count and --negative-count (and --unknown-count)"
                )
            x, y, u = positive_count, negative_count, unknown_count
        if total is None:
            if total_se is not None or total_lower is not None or total_upper is not None:
                raise ConfigError("--total-se/--total-lower/--total-upper need --total")
            result = estimate_share(x, y, u, level=level)
        else:
            result = combine_with_total(
                x,
                y,
                u,
                total=total,
                total_se=total_se,
                total_lower=total_lower,
                total_upper=total_upper,
                total_level=total_level,
                distribution=total_dist,
                level=level,
                draws=draws,
                seed=seed,
            )
        result.provenance = provenance(
            inputs=[reviews] if reviews is not None else [],
            command="review estimate",
            seed=seed if total is not None else None,
        )
        emit(result.to_dict(), fmt, out, table=result.table, title="review estimate")
