"""``hiddenpop capture mse|coverage`` (multiple systems estimation for lists, sample coverage)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from hiddenpop.cli_common import FormatOption, OutOption, OutputFormat, QuietOption, emit

FileArgument = Annotated[
    Path,
    typer.Argument(
        help="list data: one 0/1 column per list, plus a count column (freq/count/n) if aggregated"
    ),
]
CountOption = Annotated[
    str | None,
    typer.Option("--count-column", help="name of the count column (default: freq/count/n... if present)"),
]
LevelOption = Annotated[float, typer.Option("--level", help="confidence level of the intervals")]


class Procedure(StrEnum):
    aic = "aic"
    stepwise = "stepwise"
    bic = "bic"


class CoverageKind(StrEnum):
    lists = "lists"
    occasions = "occasions"


def _number(value: Any) -> Any:
    import math

    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("mse")
    def mse_command(
        file: FileArgument,
        select: Annotated[
            Procedure,
            typer.Option(
                "--select",
                help="aic: Silverman's UK procedure; stepwise: Chan, Silverman & Vincent (2021); "
                "bic: minimum BIC over hierarchical models (Silverman, Chan & Vincent 2024)",
            ),
        ],
        p_threshold: Annotated[
            float | None,
            typer.Option("--p-threshold", help="p-value threshold (default 0.05 for aic, 0.02 for stepwise)"),
        ] = None,
        max_order: Annotated[
            int | None,
            typer.Option("--max-order", help="bic only: highest interaction order searched (default 2 or 3)"),
        ] = None,
        bootstrap: Annotated[
            int,
            typer.Option(
                "--bootstrap", help="bootstrap replicates for a BCa interval (0 = profile interval)"
            ),
        ] = 0,
        seed: Annotated[int, typer.Option("--seed", help="random seed for the bootstrap")] = 1,
        level: LevelOption = 0.95,
        top_models: Annotated[
            int | None,
            typer.Option(
                "--top-models", help="bic bootstrap: models (best on the data) refitted per replicate"
            ),
        ] = None,
        count_column: CountOption = None,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
        quiet: QuietOption = False,
    ) -> None:
        """Multiple systems estimate with model selection; every number names its procedure and threshold."""
        from hiddenpop.capture.mse import mse
        from hiddenpop.cli_common import spinner
        from hiddenpop.errors import ConfigError
        from hiddenpop.provenance import provenance

        if not 0 < level < 1:
            raise ConfigError(f"--level must be between 0 and 1 (e.g. 0.95), got {level}")
        if bootstrap < 0:
            raise ConfigError(f"--bootstrap must be 0 or more, got {bootstrap}")
        with spinner(f"selecting a model ({select.value}) and fitting", quiet=quiet or bootstrap == 0):
            result = mse(
                file,
                select.value,
                p_threshold=p_threshold,
                max_order=max_order,
                bootstrap=bootstrap,
                seed=seed,
                level=level,
                top_models=top_models,
                count_column=count_column,
            )
        row = result.table.iloc[0]
        main = result.table.iloc[1]
        payload = {
            "selected": result.diagnostics["selected"],
            "abundance": float(row["estimate"]),
            "stderr": float(row["se"]),
            "lower": _number(float(row["lower"])),
            "upper": _number(float(row["upper"])),
            "level": level,
            "deviance": float(row["deviance"]),
            "df": int(row["df"]),
            "aic": float(row["aic"]),
            "bic": float(row["bic"]),
            "procedure": select.value,
            "threshold": result.settings["p_threshold"],
            "max_order": result.settings["max_order"] if select == Procedure.bic else None,
            "interval": row["interval"],
            "multinomial_abundance": _number(float(row["multinomial_estimate"])),
            "conditional_interval": {
                "method": row["conditional_interval"],
                "lower": _number(float(row["conditional_lower"])),
                "upper": _number(float(row["conditional_upper"])),
            },
            "observed": int(row["observed"]),
            "lists": result.diagnostics["lists"],
            "minus_infinity_terms": result.diagnostics["neg_inf_terms"],
            "main_effects_only": {
                "abundance": float(main["estimate"]),
                "stderr": float(main["se"]),
                "multinomial_abundance": _number(float(main["multinomial_estimate"])),
                "lower": _number(float(main["lower"])),
                "upper": _number(float(main["upper"])),
                "aic": float(main["aic"]),
                "bic": float(main["bic"]),
            },
            "bootstrap": {
                "replicates": bootstrap,
                "seed": seed if bootstrap else None,
                "acceleration": result.diagnostics.get("bca_acceleration"),
                "failed": result.diagnostics.get("bootstrap_failed"),
                "models_per_replicate": result.diagnostics.get("bootstrap_models"),
            },
            "path": result.tables["path"].to_dict(orient="records"),
            "warnings": result.warnings,
            "notes": result.notes,
            "provenance": provenance(
                inputs=[file],
                select=select.value,
                p_threshold=p_threshold,
                max_order=max_order,
                bootstrap=bootstrap,
                seed=seed,
                level=level,
            ),
        }
        columns = [
            "method",
            "selected",
            "estimate",
            "se",
            "lower",
            "upper",
            "level",
            "deviance",
            "df",
            "aic",
            "bic",
            "interval",
        ]
        emit(
            payload,
            fmt,
            out,
            table=result.table[columns],
            title=f"{payload['observed']} cases on {len(payload['lists'])} lists",
        )

    @app.command("coverage")
    def coverage_command(
        file: FileArgument,
        kind: Annotated[
            CoverageKind,
            typer.Option(
                "--kind",
                help="lists: CARE1 estimators for overlapping lists (Chao et al. 2001); "
                "occasions: the M_th occasion version (Chao, Lee & Jeng 1992)",
            ),
        ] = CoverageKind.lists,
        bootstrap: Annotated[
            int, typer.Option("--bootstrap", help="parametric bootstrap replicates for the standard errors")
        ] = 200,
        seed: Annotated[int, typer.Option("--seed", help="random seed for the bootstrap")] = 1,
        level: LevelOption = 0.95,
        count_column: CountOption = None,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
    ) -> None:
        """Sample-coverage estimators with bootstrap standard errors and log-transformed intervals."""
        from hiddenpop.capture.coverage import coverage_mth, sample_coverage
        from hiddenpop.provenance import provenance

        estimator = sample_coverage if kind == CoverageKind.lists else coverage_mth
        result = estimator(file, count_column=count_column, bootstrap=bootstrap, seed=seed, level=level)
        columns = ["method", "estimate", "se", "lower", "upper", "level"]
        payload = {
            "kind": kind.value,
            "observed": int(result.diagnostics["observed"]),
            "coverage": result.diagnostics["coverage"],
            "estimators": [
                {k: _number(v) for k, v in record.items()}
                for record in result.table[columns].to_dict(orient="records")
            ],
            "bootstrap": bootstrap,
            "seed": seed if bootstrap else None,
            "diagnostics": result.diagnostics,
            "warnings": result.warnings,
            "notes": result.notes,
            "provenance": provenance(
                inputs=[file], kind=kind.value, bootstrap=bootstrap, seed=seed, level=level
            ),
        }
        if "dependence" in result.tables:
            payload["dependence"] = result.tables["dependence"].to_dict(orient="records")
        emit(
            payload,
            fmt,
            out,
            table=result.table[columns],
            title=f"sample coverage ({kind.value}): Ĉ = {result.diagnostics['coverage']:.3f}",
        )
