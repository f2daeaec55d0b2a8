"""Multiple systems estimation (MSE) for overlapping lists: log-linear models chosen by three procedures.

A case appears on some of t lists; ``Y_ω`` counts cases with list history ω (2^t − 1 observable cells,
zeros included). A hierarchical Poisson log-linear model ``log μ_ω = γ + Σ_j β_j ω_j + Σ_{S ∈ terms} λ_S Π_{j∈S} ω_j``
is fitted to the observable cells and the unseen cell is extrapolated: ``N̂ = n + exp(γ̂)``, with the
multinomial-adjusted standard error ``se = sqrt(exp(γ̂) + exp(2γ̂) Var(γ̂))`` (Sanathanan 1972; as Rcapture).

Sparse data (lists that share nobody) are handled on the extended-MLE face (Fienberg & Rinaldo 2012; Chan,
Silverman & Vincent 2021): an interaction whose margin is zero is fixed at −∞, the cells containing it are
structural zeros, and the parameter is still counted in AIC/BIC. Existence and identifiability of the
extended MLE are checked by linear programming and a rank computation (:func:`check_extended_mle`).

Model selection (:func:`select_model`, :func:`mse`):

* ``aic`` — Silverman (2014) / Bales, Hesketh & Silverman (2015): from main effects, repeatedly add the two-list
  interaction with the lowest AIC; stop when the AIC does not improve or the new term's Wald p-value exceeds
  the threshold (0.05 in the UK study).
* ``stepwise`` — Chan, Silverman & Vincent (2021): add the two-list effect with the smallest one-sided Poisson
  p-value of its overlap count under the current model, among effects that keep the extended MLE existent and
  identifiable; stop when no p-value is below the threshold (default 0.02).
* ``bic`` — Silverman, Chan & Vincent (2024): minimum BIC over all hierarchical models up to a maximum order.

Bootstrap intervals repeat the whole selection in every replicate (multinomial resampling of the observed
cases) and use BCa with a delete-one jackknife acceleration over distinct histories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.capture.closed.profile import profile_ci_design
from hiddenpop.capture.core.terms import term_name
from hiddenpop.capture.lists.bootstrap import (
    bca_interval,
    jackknife_acceleration,
    selection_estimates,
)
from hiddenpop.capture.lists.data import ListData, list_data
from hiddenpop.capture.lists.existence import (
    split_terms,
)
from hiddenpop.capture.lists.fitting import LoglinearFit, fit_model
from hiddenpop.capture.lists.selection import resolve_settings, select_model
from hiddenpop.capture.lists.space import design_matrix
from hiddenpop.distributions import two_sided_z
from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.parallel import available_cores
from hiddenpop.results import Estimates

# Models refitted in every bootstrap replicate of the BIC procedure (the best ones on the original data).
DEFAULT_TOP_MODELS = {2: None, 3: None, 4: 20, 5: 100, 6: 100}
# Bootstrap plus jackknife selections from which ``workers=None`` uses every available CPU (forking a worker
# costs a few milliseconds; one stepwise selection about ten).
PARALLEL_MIN_SAMPLES = 64

__all__ = ["mse"]


def mse(
    data: Any,
    select: str = "stepwise",
    *,
    p_threshold: float | None = None,
    max_order: int | None = None,
    bootstrap: int = 0,
    seed: int | None = 1,
    level: float = 0.95,
    top_models: int | None = None,
    count_column: str | None = None,
    profile: bool = True,
    workers: int | None = None,
) -> Estimates:
    """Multiple systems estimate of the total population with a chosen selection procedure.

    Parameters
    ----------
    data:
        Path, DataFrame or :class:`ListData`: one 0/1 column per list plus an optional count column.
    select:
        ``"aic"`` (Silverman 2014; threshold default 0.05), ``"stepwise"`` (Chan, Silverman & Vincent 2021;
        default 0.02) or ``"bic"`` (Silverman, Chan & Vincent 2024; ``max_order`` default 2 for 3 or 6 lists,
        3 for 4-5 lists).
    bootstrap:
        Number of multinomial bootstrap replicates. Each replicate repeats the whole selection; the interval
        is BCa with a delete-one jackknife acceleration (over distinct histories, weighted by their counts).
        For ``bic`` each replicate chooses among the ``top_models`` best models on the original data
        (default: all for ≤ 3 lists, 20 for 4, 100 for 5-6), as in the published procedure.
        With ``bootstrap = 0`` the interval is the profile-likelihood interval of the selected model
        (conditional on the selection) when available, else a log-normal interval for the unseen count.
    workers:
        Processes that share the bootstrap and jackknife selections of ``aic`` and ``stepwise`` (``None``: every
        CPU this process may use, once there are at least ``PARALLEL_MIN_SAMPLES`` selections to run; ``1``:
        in this process). All resamples are drawn here first, so the results are the same for any number.
        Worker processes are forked, so they are used on Linux only, and not from a daemonic worker process
        or once JAX is loaded (:func:`hiddenpop.parallel.can_fork_workers`).
    Returns
    -------
    Estimates with one ``population`` row (procedure and threshold in the columns), the selection path in
    ``tables["path"]``, the candidate ranking for ``bic`` in ``tables["models"]`` and a
    ``main effects only`` comparison row.

    Assumptions: closed population over the period the lists cover; cases matched without error across lists;
    heterogeneity and list dependence representable by the log-linear interactions that were allowed
    (no highest-order interaction, which is never identifiable). Fails when lists barely overlap (estimates
    then rest on few overlapping cases and swing with the model), and when the selected model is one of many
    with similar fit but very different extrapolation; compare procedures and read the bootstrap interval.
    """
    data = list_data(data, count_column=count_column)
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers or workers < 1):
        raise ConfigError(f"workers must be a whole number ≥ 1, got {workers}")
    if bootstrap < 0 or int(bootstrap) != bootstrap:
        raise ConfigError(f"bootstrap must be a whole number ≥ 0, got {bootstrap}")
    if not 0 < level < 1:
        raise ConfigError(f"level must lie strictly between 0 and 1, got {level}")
    select, threshold, max_order = resolve_settings(data, select, p_threshold, max_order)
    notes: list[str] = []
    warnings: list[str] = []
    if select != "bic" and max_order is not None:
        notes.append(
            f"max_order={max_order} applies only to the bic procedure; {select} adds two-list effects"
        )
    selection = select_model(data, select, p_threshold=threshold, max_order=max_order)
    fit = selection.fit
    names = data.names
    selected = [term_name(t, names) for t in selection.order_added]
    main = fit_model(data, (), check=False)
    conditional = _conditional_interval(data, fit, level, profile)
    main_conditional = _conditional_interval(data, main, level, profile)
    warnings.extend(f"selected model: {w}" for w in conditional["warnings"])

    lower, upper, interval = conditional["lower"], conditional["upper"], conditional["interval"]
    diagnostics: dict[str, Any] = {}
    if bootstrap > 0:
        models = None
        if select == "bic":
            assert selection.candidates is not None
            limit = top_models if top_models is not None else DEFAULT_TOP_MODELS.get(data.lists)
            ranked = list(selection.candidates["terms"])
            models = ranked if limit is None else ranked[:limit]
            diagnostics["bootstrap_models"] = len(models)
        rng = np.random.default_rng(seed)
        samples = rng.multinomial(int(data.observed), data.counts / data.observed, size=bootstrap).astype(
            float
        )
        jack_samples = []
        rows = np.flatnonzero(data.counts > 0)
        for k in rows:
            counts = data.counts.copy()
            counts[k] -= 1
            jack_samples.append(counts)
        jackknife = np.full(len(data.counts), np.nan)
        if select == "bic":  # batched over the samples of each call, as before
            replicates = selection_estimates(data, samples, select, threshold, max_order, models)
            jackknife[rows] = selection_estimates(
                data, np.array(jack_samples), select, threshold, max_order, models
            )
        else:  # one selection per sample: bootstrap and jackknife share one pool of workers
            stacked = np.vstack([samples, np.array(jack_samples)])
            if workers is None:
                workers = available_cores() if len(stacked) >= PARALLEL_MIN_SAMPLES else 1
            values = selection_estimates(data, stacked, select, threshold, max_order, models, workers=workers)
            replicates, jackknife[rows] = values[:bootstrap], values[bootstrap:]
        failed = int((~np.isfinite(replicates)).sum())
        if failed:
            notes.append(
                f"{failed} of {bootstrap} bootstrap replicates had no selectable model and were left out"
            )
        if np.any(~np.isfinite(jackknife[rows])):
            acceleration = 0.0
            warnings.append(
                "some jackknife fits failed; BCa acceleration set to 0 (bias-corrected percentile)"
            )
        else:
            acceleration = jackknife_acceleration(np.nan_to_num(jackknife), data.counts)
        lower, upper, z0 = bca_interval(replicates, fit.abundance, acceleration, level)
        interval = "BCa bootstrap (selection repeated in every replicate)"
        share = float(np.mean(replicates[np.isfinite(replicates)] < fit.abundance))
        if share in (0.0, 1.0):
            warnings.append(
                "every bootstrap estimate fell on one side of the estimate; the BCa interval is unreliable"
            )
        diagnostics.update(
            {
                "bootstrap_replicates": bootstrap,
                "bootstrap_failed": failed,
                "bca_acceleration": acceleration,
                "bca_bias_correction": z0,
                "bootstrap_median": float(np.nanmedian(replicates)),
            }
        )
        tables_boot = pd.DataFrame({"replicate": np.arange(bootstrap), "abundance": replicates})
    else:
        tables_boot = None
        notes.append(
            f"interval: {interval}; it ignores model-selection uncertainty — use bootstrap for BCa intervals "
            "that repeat the selection"
        )

    if fit.neg_inf_terms:
        notes.append(
            "interactions fixed at −∞ (lists that share nobody; their cells are structural zeros): "
            + ", ".join(term_name(t, names) for t in fit.neg_inf_terms)
        )
    if fit.abundance > 1e6 * data.observed:
        warnings.append("estimate exceeds 10^6 times the number observed: the model extrapolates wildly")
    threshold_text = "none" if threshold is None else f"{threshold:g}"
    row = {
        "quantity": "population",
        "method": f"MSE {select} (threshold {threshold_text})"
        if select != "bic"
        else f"MSE bic (max order {max_order})",
        "estimate": fit.abundance,
        "se": fit.stderr,
        "lower": lower,
        "upper": upper,
        "level": level,
        "procedure": select,
        "threshold": threshold,
        "max_order": max_order if select == "bic" else None,
        "selected": ", ".join(selected) if selected else "main effects",
        "observed": data.observed,
        "deviance": fit.deviance,
        "df": fit.df,
        "aic": fit.aic,
        "bic": fit.bic,
        "interval": interval,
        "multinomial_estimate": conditional["multinomial"],
        "conditional_lower": conditional["lower"],
        "conditional_upper": conditional["upper"],
        "conditional_interval": conditional["interval"],
    }
    main_row = {
        "quantity": "population",
        "method": "MSE main effects only",
        "estimate": main.abundance,
        "se": main.stderr,
        "lower": main_conditional["lower"],
        "upper": main_conditional["upper"],
        "level": level,
        "procedure": "main effects",
        "threshold": None,
        "selected": "main effects",
        "observed": data.observed,
        "deviance": main.deviance,
        "df": main.df,
        "aic": main.aic,
        "bic": main.bic,
        "interval": main_conditional["interval"],
        "multinomial_estimate": main_conditional["multinomial"],
        "conditional_lower": main_conditional["lower"],
        "conditional_upper": main_conditional["upper"],
        "conditional_interval": main_conditional["interval"],
    }
    tables = {"path": _path_table(selection.path, names)}
    if selection.candidates is not None:
        tables["models"] = selection.candidates.drop(columns=["terms"]).head(200)
    if tables_boot is not None:
        tables["bootstrap"] = tables_boot
    diagnostics.update(
        {
            "lists": list(names),
            "observed": data.observed,
            "selected": selected,
            "neg_inf_terms": [term_name(t, names) for t in fit.neg_inf_terms],
            "parameters": fit.parameters,
            "dark_figure": fit.dark,
        }
    )
    return Estimates.from_rows(
        [row, main_row],
        settings={
            "select": select,
            "p_threshold": threshold,
            "max_order": max_order,
            "bootstrap": bootstrap,
            "level": level,
            "top_models": top_models,
        },
        seed=seed if bootstrap > 0 else None,
        warnings=warnings,
        notes=notes,
        diagnostics=diagnostics,
        tables=tables,
    )


def _path_table(path: list[dict[str, Any]], names: Sequence[str]) -> pd.DataFrame:
    rows = []
    for step in path:
        entry = dict(step)
        added = entry.get("added")
        entry["added"] = term_name(added, names) if isinstance(added, tuple) else added
        rows.append(entry)
    return pd.DataFrame(rows)


def _conditional_interval(data: ListData, fit: LoglinearFit, level: float, profile: bool) -> dict[str, Any]:
    """Interval for one model taken as fixed: profile likelihood (multinomial, Cormack's correction, via
    :func:`hiddenpop.capture.closed.profile.profile_ci_design` on the extended-MLE face), else log-normal for the
    unseen count. Returns lower, upper, interval label, the multinomial estimate and warnings."""
    out: dict[str, Any] = {"multinomial": float("nan"), "warnings": []}
    if profile and fit.ok:
        finite, _neg_inf, kept = split_terms(data, fit.terms)
        design = design_matrix(data.patterns, finite)[kept][:, 1:]
        try:
            result = profile_ci_design(design, data.counts[kept], level, observed=round(data.observed))
        except ModelError as exc:
            out["warnings"].append(f"no profile interval ({exc}); log-normal interval used")
        else:
            out.update(
                lower=result.lower,
                upper=result.upper,
                multinomial=result.multinomial_abundance,
                interval="profile likelihood (model taken as fixed)",
            )
            out["warnings"].extend(result.warnings)
            return out
    z = two_sided_z(level)
    sd = math.sqrt(fit.intercept_var) if np.isfinite(fit.intercept_var) else float("nan")
    out.update(
        lower=data.observed + math.exp(fit.intercept - z * sd),
        upper=data.observed + math.exp(fit.intercept + z * sd),
        interval="log-normal unseen count (model taken as fixed)",
    )
    return out
