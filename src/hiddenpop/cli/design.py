"""``hiddenpop design ...`` commands: sample-size, select, weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import FormatOption, OutOption, OutputFormat, SeedOption, emit

DEFAULT_SEED = 20230101


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("sample-size")
    def sample_size_command(
        margin: Annotated[float | None, typer.Option("--margin", help="target half-width, e.g. 0.05")] = None,
        n: Annotated[
            int | None, typer.Option("--n", help="completed interviews: report the margin instead")
        ] = None,
        confidence: Annotated[float, typer.Option("--confidence", help="confidence level")] = 0.95,
        proportion: Annotated[
            float, typer.Option("--proportion", help="anticipated proportion (0.5 = worst case)")
        ] = 0.5,
        population: Annotated[
            float | None,
            typer.Option("--population", help="population size N (finite population correction)"),
        ] = None,
        design_effect: Annotated[
            float,
            typer.Option("--deff", "--design-effect", help="design effect (1 = simple random sampling)"),
        ] = 1.0,
        response_rate: Annotated[
            float, typer.Option("--response-rate", help="expected response rate, inflates units to draw")
        ] = 1.0,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Sample size for a proportion given a margin, or the margin given a sample size (--n)."""
        from hiddenpop.design.sample_size import margin_of_error, sample_size
        from hiddenpop.errors import ConfigError

        if (margin is None) == (n is None):
            raise ConfigError("give exactly one of --margin (solve for n) or --n (solve for the margin)")
        if n is not None:
            if response_rate != 1.0:
                raise ConfigError("--response-rate applies when solving for n (--margin), not with --n")
            result = margin_of_error(
                n,
                confidence=confidence,
                proportion=proportion,
                population=population,
                design_effect=design_effect,
            )
        else:
            result = sample_size(
                margin,
                confidence=confidence,
                proportion=proportion,
                population=population,
                design_effect=design_effect,
                response_rate=response_rate,
            )
        emit(result.to_dict(), fmt, out, table=result.table, title="design sample-size")

    @app.command("select")
    def select_command(
        frame: Annotated[
            Path, typer.Argument(help="sampling frame (CSV, Excel, Parquet, ...): one row per PSU or SSU")
        ],
        stratum: Annotated[str, typer.Option("--stratum", help="stratum column")],
        psu: Annotated[str, typer.Option("--psu", help="primary sampling unit id column")],
        size: Annotated[str, typer.Option("--size", help="size measure column (e.g. households)")],
        take: Annotated[int, typer.Option("--take", help="interviews per selected area (final stage)")],
        psus: Annotated[
            int | None, typer.Option("--psus", help="total PSUs, allocated proportionally to stratum size")
        ] = None,
        allocation: Annotated[
            Path | None, typer.Option("--allocation", help="CSV with columns stratum, psus")
        ] = None,
        ssu: Annotated[
            str | None, typer.Option("--ssu", help="secondary unit column (frame rows are SSUs)")
        ] = None,
        ssus_per_psu: Annotated[int, typer.Option("--ssus-per-psu", help="SSUs drawn per selected PSU")] = 1,
        units: Annotated[
            str | None, typer.Option("--units", help="eligible final units per area (default: --size)")
        ] = None,
        reserves: Annotated[int, typer.Option("--reserves", help="reserve areas per selected area")] = 1,
        order: Annotated[
            str,
            typer.Option("--order", help="random (randomised systematic) or frame (implicit stratification)"),
        ] = "random",
        reserves_out: Annotated[
            Path | None, typer.Option("--reserves-out", help="also write the reserve list CSV here")
        ] = None,
        seed: SeedOption = DEFAULT_SEED,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Stratified multistage PPS selection (systematic, without replacement) with a reserve list.

        --format csv writes the selected areas with their selection probabilities and design weights.
        """
        import pandas as pd

        from hiddenpop.cli.common import atomic_write_text
        from hiddenpop.data.io import read_table
        from hiddenpop.design.selection import select_pps
        from hiddenpop.errors import ConfigError, DataError, locate
        from hiddenpop.provenance import provenance

        if (psus is None) == (allocation is None):
            raise ConfigError(
                "give exactly one of --psus (total, proportional allocation) or --allocation FILE"
            )
        plan: int | dict[str, int]
        inputs = [frame]
        if allocation is not None:
            alloc = read_table(allocation)
            for column in ("stratum", "psus"):
                if column not in alloc.columns:
                    raise DataError(
                        f"{locate(allocation.name)}allocation needs columns stratum, psus; missing {column!r}"
                    )
            plan = {}
            counts = pd.to_numeric(alloc["psus"], errors="coerce")
            for i, (stratum_name, count) in enumerate(zip(alloc["stratum"], counts, strict=True)):
                if pd.isna(count) or count < 0 or count != int(count):
                    raise DataError(
                        f"{locate(allocation.name, i + 1, 'psus')}PSU count must be a whole number >= 0"
                    )
                plan[str(stratum_name).strip()] = int(count)
            inputs.append(allocation)
        else:
            plan = int(psus)
        data = read_table(frame)
        result = select_pps(
            data,
            stratum=stratum,
            psu=psu,
            size=size,
            psus=plan,
            take=take,
            ssu=ssu,
            ssus_per_psu=ssus_per_psu,
            units=units,
            reserves=reserves,
            order=order,
            seed=seed,
            source=frame.name,
        )
        result.provenance = provenance(inputs=inputs, command="design select", seed=seed)
        if reserves_out is not None:
            atomic_write_text(
                reserves_out, result.tables["reserves"].to_csv(index=False, lineterminator="\n")
            )
        main = result.tables["selection"] if fmt == OutputFormat.csv else result.table
        emit(result.to_dict(), fmt, out, table=main, title="design select")

    @app.command("weights")
    def weights_command(
        sample: Annotated[
            Path,
            typer.Argument(help="sample file: one row per selected unit (respondents and non-respondents)"),
        ],
        probability: Annotated[
            str | None, typer.Option("--probability", help="column of overall selection probabilities")
        ] = None,
        base_weight: Annotated[
            str | None,
            typer.Option("--base-weight", help="column of design weights (instead of --probability)"),
        ] = None,
        respondent: Annotated[
            str | None, typer.Option("--respondent", help="0/1 column: did the unit respond")
        ] = None,
        cells: Annotated[
            str | None, typer.Option("--cells", help="comma-separated columns forming non-response cells")
        ] = None,
        margins: Annotated[
            Path | None, typer.Option("--margins", help="CSV with columns variable, level, total")
        ] = None,
        max_iter: Annotated[int, typer.Option("--max-iter", help="raking cycles at most")] = 200,
        tolerance: Annotated[
            float, typer.Option("--tolerance", help="raking: largest relative margin error allowed")
        ] = 1e-8,
        max_factor: Annotated[
            float, typer.Option("--max-factor", help="warn when a non-response factor exceeds this")
        ] = 3.0,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Base weights, non-response adjustment within cells, raking to known margins.

        --format csv writes the sample with base_weight, nonresponse_weight and final_weight columns.
        """
        from hiddenpop.cli.common import parse_csv_list
        from hiddenpop.data.io import read_table
        from hiddenpop.design.weights import compute_weights, read_margins
        from hiddenpop.provenance import provenance

        data = read_table(sample)
        targets = read_margins(read_table(margins), source=margins.name) if margins is not None else None
        result = compute_weights(
            data,
            probability=probability,
            base_weight=base_weight,
            respondent=respondent,
            cells=parse_csv_list(cells) or None,
            margins=targets,
            max_iter=max_iter,
            tolerance=tolerance,
            max_factor=max_factor,
            source=sample.name,
        )
        result.provenance = provenance(
            inputs=[p for p in (sample, margins) if p is not None], command="design weights"
        )
        main = result.tables["weights"] if fmt == OutputFormat.csv else result.table
        emit(result.to_dict(), fmt, out, table=main, title="design weights")
