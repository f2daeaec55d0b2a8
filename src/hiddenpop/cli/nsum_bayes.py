"""``hiddenpop nsum bayes`` (Bayesian network scale-up models).

    hiddenpop nsum bayes survey.csv --known known.csv --population 1e6 --model barrier --hidden y_group3 \\
        --chains 4 --warmup 1000 --draws 1000 --seed 1 --format json

``--format json`` prints one object::

    {"estimates": [{"quantity", "method", "estimate" (posterior median), "se" (= sd), "lower", "upper" (2.5% and
                    97.5% quantiles), "level", "mean", "sd", "rhat", "ess_bulk", "ess_tail", "parameter",
                    "passed_gates"}, ...],
     "diagnostics": {"passed", "max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "ebfmi", ...},
     "warnings": [...], "notes": [...], "settings": {...}, "seed": S,
     "tables": {"ppc": [...], "rootogram": [...], "degrees": [...], "tau_sensitivity": [...]},
     "provenance": {...}}

Parallel chains: the command calls ``numpyro.set_host_device_count(chains)`` before JAX starts, so chains run on
separate CPU devices; if JAX was already initialised they run vectorised on one device.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import FormatOption, OutOption, OutputFormat, QuietOption, emit
from hiddenpop.errors import ConfigError


class ModelName(StrEnum):
    basic = "basic"
    degree = "degree"
    barrier = "barrier"
    transmission = "transmission"
    combined = "combined"
    overdispersed = "overdispersed"


class Likelihood(StrEnum):
    binomial = "binomial"
    poisson = "poisson"


class Missing(StrEnum):
    zero = "zero"
    drop = "drop"


def _pair(spec: str, option: str) -> tuple[float, float]:
    parts = [p.strip() for p in spec.split(",")]
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{option} {spec!r}: expected two numbers A,B (e.g. 2,8)") from None
    return a, b


def _named(specs: list[str], sep: str, option: str, example: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(f"{option} {spec!r}: expected {example}")
        name, rest = (s.strip() for s in spec.split("=", 1))
        parts = [p.strip() for p in rest.split(sep)]
        if not name or any(not p for p in parts):
            raise ConfigError(f"{option} {spec!r}: expected {example}")
        out[name] = parts
    return out


def register(app: typer.Typer) -> None:
    """Add the ``bayes`` command to the ``nsum`` Typer app."""

    @app.command("bayes")
    def bayes_command(
        survey: Annotated[Path, typer.Argument(help="survey file (CSV, Parquet, Excel, SPSS, Stata)")],
        known: Annotated[Path, typer.Option("--known", help="known sizes table with columns group,size")],
        population: Annotated[float, typer.Option("--population", help="total population N")],
        model: Annotated[ModelName, typer.Option("--model", help="which Bayesian model")] = ModelName.combined,
        hidden: Annotated[
            list[str] | None, typer.Option("--hidden", help="hidden-group column (repeat for several)")
        ] = None,
        chains: Annotated[int, typer.Option("--chains", min=1, help="MCMC chains")] = 4,
        warmup: Annotated[int, typer.Option("--warmup", min=1, help="warmup iterations per chain")] = 1000,
        draws: Annotated[int, typer.Option("--draws", min=1, help="kept draws per chain")] = 1000,
        seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same numbers)")] = 1,
        tau_prior: Annotated[
            str | None, typer.Option("--tau-prior", help="Beta prior A,B on the transmission rate of hidden groups")
        ] = None,
        likelihood: Annotated[
            Likelihood, typer.Option("--likelihood", help="poisson (default; fast, sufficient statistics) or binomial "
                                     "(the NSUM package's, continuous degree; slow at survey scale)")
        ] = Likelihood.poisson,
        sum_: Annotated[list[str] | None, typer.Option("--sum", help="posterior sum NAME=A+B (repeatable)")] = None,
        ratio: Annotated[
            list[str] | None, typer.Option("--ratio", help="posterior ratio NAME=NUM/DEN (repeatable)")
        ] = None,
        tau_grid: Annotated[
            str | None, typer.Option("--tau-grid", help="sensitivity table over assumed tau, e.g. 0.25,0.5,0.75,1")
        ] = None,
        missing: Annotated[Missing, typer.Option("--missing", help="missing answers: zero or drop respondent")] = (
            Missing.zero
        ),
        save_posterior: Annotated[
            Path | None, typer.Option("--save-posterior", help="write the ArviZ InferenceData to FILE.nc")
        ] = None,
        fmt: FormatOption = OutputFormat.table,
        out: OutOption = None,
        quiet: QuietOption = False,
    ) -> None:
        """Fit a Bayesian network scale-up model by NUTS (NumPyro) and report posterior summaries."""
        if not population > 0:
            raise ConfigError("--population must be a positive number")
        if save_posterior is not None and save_posterior.suffix != ".nc":
            raise ConfigError("--save-posterior must name a NetCDF file ending in .nc")
        taus = None
        if tau_grid:
            try:
                taus = [float(t) for t in tau_grid.split(",")]
            except ValueError:
                raise ConfigError(f"--tau-grid {tau_grid!r}: expected numbers separated by commas") from None
        tau_pair = _pair(tau_prior, "--tau-prior") if tau_prior else None
        sums = _named(sum_ or [], "+", "--sum", "NAME=GROUP+GROUP")
        ratios = {}
        for name, parts in _named(ratio or [], "/", "--ratio", "NAME=NUMERATOR/DENOMINATOR").items():
            if len(parts) != 2:
                raise ConfigError(f"--ratio {name}: expected NAME=NUMERATOR/DENOMINATOR")
            ratios[name] = (parts[0], parts[1])

        if tau_pair is not None and model not in (ModelName.transmission, ModelName.combined):
            raise ConfigError("--tau-prior applies to the transmission and combined models only")
        # read and validate before JAX starts: input errors come back at once
        from hiddenpop.data.ard import read_ard
        from hiddenpop.nsum.bayes import MODELS, Priors
        from hiddenpop.nsum.bayes._common import from_ard

        ard = read_ard(survey, known=known, population=population, hidden=hidden or [], missing=missing.value)
        data = from_ard(ard, hidden=hidden or None)
        if not data.hidden_groups:
            raise ConfigError("no hidden group to estimate: name one with --hidden COLUMN")
        priors = (Priors() if tau_pair is None else Priors(tau=tau_pair)).validate()
        import numpyro

        numpyro.set_host_device_count(max(1, chains))
        from hiddenpop.nsum.bayes._common import enable_compilation_cache
        from hiddenpop.nsum.bayes.calibration import tau_sensitivity
        from hiddenpop.provenance import provenance

        enable_compilation_cache()
        cls = MODELS[model.value]
        if model == ModelName.overdispersed:
            instance = cls(priors)
        else:
            instance = cls(priors, likelihood=likelihood.value)
        result = instance.fit(data, chains=chains, warmup=warmup, draws=draws, seed=seed, sums=sums or None,
                              ratios=ratios or None, quiet=quiet)
        result.notes = list(ard.notes) + result.notes
        result.warnings = list(ard.warnings) + result.warnings
        if taus:
            result.tables["tau_sensitivity"] = tau_sensitivity(result, taus, sums=sums or None,
                                                               ratios=ratios or None)
        if save_posterior is not None:
            tmp = save_posterior.with_name(f".{save_posterior.name}.tmp")
            save_posterior.parent.mkdir(parents=True, exist_ok=True)
            result.extras["idata"].to_netcdf(str(tmp))
            tmp.replace(save_posterior)
            result.notes.append(f"posterior saved to {save_posterior.name}")
        body = result.to_dict()
        payload = {
            "estimates": body["estimates"],
            "diagnostics": body["diagnostics"],
            "warnings": body["warnings"],
            "notes": body["notes"],
            "settings": body["settings"],
            "seed": body["seed"],
            "tables": body["tables"],
            "provenance": provenance(inputs=[survey, known], model=model.value, seed=seed, chains=chains,
                                     warmup=warmup, draws=draws),
        }
        table = result.table
        if fmt != OutputFormat.csv:
            columns = ["quantity", "estimate", "lower", "upper", "mean", "sd", "rhat", "ess_bulk", "ess_tail"]
            table = table[columns]
        emit(payload, fmt, out, table=table, title=f"Bayesian NSUM, {model.value} model")
        if not result.diagnostics.get("passed", True):
            typer.echo("warning: the fit failed the convergence gates; see warnings", err=True)
