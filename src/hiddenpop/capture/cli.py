"""``hiddenpop capture ...`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli_common import FormatOption, OutOption, OutputFormat, emit

app = typer.Typer(no_args_is_help=True)

FileArgument = Annotated[Path, typer.Argument(help="capture data: 0/1 rows, 0/1 patterns + count, or nbcap,freq")]
CountOption = Annotated[
    str | None, typer.Option("--count-column", help="name of the count column (default: freq/count/n... if present)")
]
OccasionsOption = Annotated[
    str | None, typer.Option("--occasions", help="number of occasions t for nbcap,freq data ('inf' allowed)")
]


def _read(path: Path, count_column: str | None, occasions: str | None):
    from hiddenpop.capture.histories import Histories, _parse_occasions

    t = None if occasions is None else _parse_occasions(occasions, path.name)
    return Histories.from_file(path, count_column=count_column, occasions=t)


@app.command("closed")
def closed_command(
    file: FileArgument,
    count_column: CountOption = None,
    occasions: OccasionsOption = None,
    rcapture: Annotated[
        bool, typer.Option("--rcapture", help="reproduce Rcapture 1.4-4's printed numbers (R glm path, its Mbh se)")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Fit the closed models (M0, Mt, Mh/Mth Chao, Poisson2, Darroch, Gamma3.5, Mb, Mbh) and compare them."""
    import pandas as pd

    from hiddenpop.capture.closed import closedp
    from hiddenpop.capture.descriptive import descriptive
    from hiddenpop.provenance import provenance

    histories = _read(file, count_column, occasions)
    result = closedp(histories, rcapture=rcapture)
    fits = result.extras["fits"]
    payload = {
        "observed": histories.observed,
        "occasions": histories.occasions,
        "models": [f.as_row() for f in fits],
        "descriptive": descriptive(histories).to_dict(orient="list"),
        "notes": result.notes,
        "provenance": provenance(inputs=[file], rcapture=rcapture),
    }
    table = pd.DataFrame([f.as_row() | {"warnings": "; ".join(f.warnings)} for f in fits])
    emit(payload, fmt, out, table=table, title=f"{histories.observed} units seen, t = {histories.occasions}")


@app.command("ci")
def ci_command(
    file: FileArgument,
    model: Annotated[str, typer.Option("--model", help="closed model name, e.g. 'Mth Chao (LB)', 'M0', 'Mh Gamma2'")],
    level: Annotated[float, typer.Option("--level", help="confidence level")] = 0.95,
    count_column: CountOption = None,
    occasions: OccasionsOption = None,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Profile-likelihood interval for N (multinomial, Cormack's correction), with Wald and log-transformed."""
    import pandas as pd

    from hiddenpop.capture.profile import profile_ci
    from hiddenpop.errors import ConfigError

    if not 0 < level < 1:
        raise ConfigError(f"--level must be between 0 and 1 (e.g. 0.95), got {level}")
    histories = _read(file, count_column, occasions)
    ci = profile_ci(histories, model, level)
    wald = ci.wald()
    logt = ci.log_transformed()
    payload = {
        "model": ci.model,
        "abundance": ci.poisson_abundance,
        "lower": ci.lower,
        "upper": ci.upper,
        "level": level,
        "stderr": ci.stderr,
        "multinomial_abundance": ci.multinomial_abundance,
        "wald": {"lower": wald[0], "upper": wald[1]},
        "log_transformed": {"lower": logt[0], "upper": logt[1]},
        "warnings": ci.warnings,
    }
    table = pd.DataFrame(
        [
            {"interval": "profile likelihood", "abundance": ci.poisson_abundance, "lower": ci.lower, "upper": ci.upper},
            {"interval": "Wald", "abundance": ci.poisson_abundance, "lower": wald[0], "upper": wald[1]},
            {"interval": "log-transformed", "abundance": ci.poisson_abundance, "lower": logt[0], "upper": logt[1]},
        ]
    )
    emit(payload, fmt, out, table=table, title=f"{ci.model}, level {level:g}")


def _register_subfamilies() -> None:
    from hiddenpop.capture.cli_events import register as register_events
    from hiddenpop.capture.cli_lists import register as register_lists

    register_lists(app)
    register_events(app)


_register_subfamilies()
