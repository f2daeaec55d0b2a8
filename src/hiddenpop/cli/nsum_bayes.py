"""``hiddenpop nsum bayes`` (Bayesian network scale-up models).

    hiddenpop nsum bayes survey.csv --known known.csv --population 1e6 --model barrier --hidden y_group3 \\
        --chains 4 --warmup 1000 --draws 1000 --seed 1 --format json

With ``--weights`` (and ``--strata``, ``--psu``) the fit is the survey-weighted pseudo-posterior with the design
adjustment of Williams & Savitsky (2021) (``--no-design-adjust``: without it); ``--unweighted`` ignores the design.

The options come from :class:`hiddenpop.nsum.specs.BayesSpec`; the command calls
:func:`hiddenpop.nsum.bayes.analyses.bayes_analysis` and prints ``Estimates.to_dict()``: rows with the posterior
median as ``estimate``, the 2.5% and 97.5% quantiles, ``rhat``, ``ess_bulk``, ``ess_tail``; the convergence gates
in ``diagnostics``; ``tables`` ``ppc``, ``rootogram``, ``degrees``, ``tau_sensitivity``, ``residuals`` (randomized
quantile residuals, by ``--residuals-by`` column), with ``--kfold K`` ``kfold`` and ``kfold_folds`` (K-fold
cross-validation of ``--kfold-models`` with folds of whole ``--psu`` clusters), and ``correlation`` and
``covariate_effects`` for the correlated and uncorrelated models, whose covariates are survey columns named by
``--x-columns GROUP=COLUMN``, ``--z-global`` and ``--z-subpop``.

Parallel chains: the command calls ``numpyro.set_host_device_count(chains)`` before JAX starts, so chains run on
separate CPU devices; if JAX was already initialised they run vectorised on one device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import OUTPUT, OutputFormat, emit, parameter
from hiddenpop.cli.nsum import SURVEY_INPUTS, HiddenOption, RatioOption, SumOption, parse_derived
from hiddenpop.data.ard import ARD
from hiddenpop.data.io import read_table
from hiddenpop.errors import ConfigError
from hiddenpop.mcmc.nuts import enable_compilation_cache
from hiddenpop.nsum.bayes.analyses import bayes_analysis, check_spec, prepare_chains
from hiddenpop.nsum.bayes.crossval import respondent_column
from hiddenpop.nsum.covariates import survey_covariates
from hiddenpop.nsum.specs import BayesSpec, SurveyBayesSpec
from hiddenpop.provenance import provenance
from hiddenpop.specs import project, typer_command

SavePosteriorOption = Annotated[
    Path | None, typer.Option("--save-posterior", help="write the ArviZ InferenceData to FILE.nc")
]


def _bayes(survey: Path, known: Path, population: float, *, spec: SurveyBayesSpec, hidden: list[str] | None,
           sum_: list[str] | None, ratio: list[str] | None, save_posterior: Path | None, fmt: OutputFormat,
           out: Path | None, quiet: bool) -> None:
    """Fit a Bayesian network scale-up model by NUTS (NumPyro) and report posterior summaries."""
    options = project(spec, BayesSpec)
    check_spec(options)
    if not population > 0:
        raise ConfigError("--population must be a positive number")
    if save_posterior is not None and save_posterior.suffix != ".nc":
        raise ConfigError("--save-posterior must name a NetCDF file ending in .nc")
    derived = parse_derived(sum_ or [], ratio or [])
    sums, ratios = derived["sums"], derived["ratios"]
    # read and validate before JAX starts: input errors come back at once
    table = read_table(survey)
    ard = ARD.from_frame(table, known, population, hidden or [], source=survey.name, missing=spec.missing,
                         weights=spec.weights, psu=spec.psu, strata=spec.strata)
    if not hidden:
        raise ConfigError("no hidden group to estimate: name one with --hidden COLUMN")
    covariate = None if spec.residuals_by is None else respondent_column(table, spec.residuals_by, ard.rows,
                                                                         survey.name)
    covariates = survey_covariates(survey, ard.rows, options.x_columns, options.z_global, options.z_subpop)
    prepare_chains(options)

    enable_compilation_cache()
    result = bayes_analysis(ard, options, hidden=hidden, sums=sums or None, ratios=ratios or None, quiet=quiet,
                            covariate=covariate, covariates=covariates)
    result.notes = list(ard.notes) + result.notes
    result.warnings = list(ard.warnings) + result.warnings
    result.settings["missing"] = spec.missing
    if save_posterior is not None:
        tmp = save_posterior.with_name(f".{save_posterior.name}.tmp")
        save_posterior.parent.mkdir(parents=True, exist_ok=True)
        result.extras["idata"].to_netcdf(str(tmp))
        tmp.replace(save_posterior)
        result.notes.append(f"posterior saved to {save_posterior.name}")
    result.provenance = provenance(inputs=[survey, known], command="nsum bayes")
    table = result.table
    if fmt != OutputFormat.csv:
        table = table[["quantity", "estimate", "lower", "upper", "mean", "sd", "rhat", "ess_bulk", "ess_tail"]]
    emit(result.to_dict(), fmt, out, table=table, title=f"Bayesian NSUM, {spec.model} model")
    if not result.diagnostics.get("passed", True):
        typer.echo("warning: the fit failed the convergence gates; see warnings", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``bayes`` command to the ``nsum`` Typer app."""
    inputs = [parameter("hidden", HiddenOption, None), parameter("sum_", SumOption, None),
              parameter("ratio", RatioOption, None), parameter("save_posterior", SavePosteriorOption, None)]
    app.command("bayes")(typer_command(SurveyBayesSpec, _bayes, leading=SURVEY_INPUTS, trailing=inputs + OUTPUT,
                                       command="bayes"))
