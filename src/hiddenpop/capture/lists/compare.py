"""Every class of multiple systems estimation on one set of lists, side by side.

Estimates from overlapping lists move with the model class more than any one interval admits (on the UK 2013
five lists: about 11,000 from stepwise log-linear selection, 20,000-25,000 from BIC over hierarchical models or
a latent-class model). :func:`compare_classes` fits each class on the same data and returns one table: estimate,
interval, how the interval was made, the class's own warnings and a one-line diagnostic. The headline is the
class the caller named beforehand (``headline``), never the one with the most convenient number.

Classes (:data:`MODEL_CLASSES`): ``independence`` (main-effects log-linear model), ``stepwise``, ``aic`` and
``bic`` (log-linear selection, :func:`hiddenpop.capture.lists.models.mse`), ``latent`` (Dirichlet-process latent
classes, :mod:`hiddenpop.capture.lists.latent`) and ``graphs`` (decomposable-graph model averaging,
:mod:`hiddenpop.capture.lists.graphs`). A class that cannot be fitted on these data is a row with its reason,
not a missing row.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.capture.lists.data import list_data
from hiddenpop.capture.lists.graphs import graph_averaging
from hiddenpop.capture.lists.latent import latent_class
from hiddenpop.capture.lists.models import mse
from hiddenpop.capture.lists.procedures import CONCENTRATION_PRIOR, LATENT_CLASSES, MODEL_CLASSES
from hiddenpop.errors import ConfigError, HiddenpopError
from hiddenpop.results import Estimates

__all__ = ["MODEL_CLASSES", "compare_classes"]

COLUMNS = ["class", "method", "estimate", "lower", "upper", "level", "interval", "headline", "status", "diagnostic"]


def _row(kind: str, method: str, result: Estimates | None, row: dict[str, Any] | None, interval: str,
         diagnostic: str, level: float, failure: str | None = None) -> dict[str, Any]:
    if failure is not None:
        return {"class": kind, "method": method, "estimate": np.nan, "lower": np.nan, "upper": np.nan,
                "level": level, "interval": "none", "status": f"not estimated: {failure}", "diagnostic": ""}
    status = "warnings" if result is not None and result.warnings else "ok"
    return {"class": kind, "method": method, "estimate": float(row["estimate"]), "lower": float(row["lower"]),
            "upper": float(row["upper"]), "level": level, "interval": interval, "status": status,
            "diagnostic": diagnostic}


def compare_classes(
    data: Any,
    *,
    headline: str,
    classes: Sequence[str] = MODEL_CLASSES,
    count_column: str | None = None,
    bootstrap: int = 0,
    seed: int = 1,
    level: float = 0.95,
    latent_classes: int = LATENT_CLASSES,
    concentration: tuple[float, float] = CONCENTRATION_PRIOR,
    draws: int = 1000,
    delta: float | None = None,
    start_at_mode: bool = False,
    quiet: bool = True,
) -> Estimates:
    """Fit every class in ``classes`` on ``data`` and return them side by side (module docstring).

    ``headline`` must be one of ``classes``: its row is flagged and its estimate is the one to report. Each
    class's warnings come back prefixed with its name. Log-linear classes use a ``bootstrap``-replicate BCa
    interval when ``bootstrap`` > 0 (else the profile interval, conditional on the selected model); the latent
    class runs 4 chains of ``draws`` warmup and ``draws`` sampling iterations (started at the posterior mode with
    ``start_at_mode``, :func:`hiddenpop.capture.lists.latent.latent_class`); graph averaging uses the
    hyper-Dirichlet prior ``delta`` per cell (default 2^-lists, dga's recommendation: with 0.5 the prior alone
    fills the empty cells of a sparse table and the saturated graph wins) and is exhaustive up to five lists."""
    unknown = [c for c in classes if c not in MODEL_CLASSES]
    if unknown:
        raise ConfigError(f"unknown model class(es) {unknown}; choose from {', '.join(MODEL_CLASSES)}")
    if headline not in classes:
        raise ConfigError(f"the headline class {headline!r} must be one of the classes compared "
                          f"({', '.join(classes)})")
    table = list_data(data, count_column=count_column)
    rows, warnings, details = [], [], {}
    log_linear: dict[str, Estimates] = {}

    def fit_log_linear(kind: str) -> tuple[Estimates, dict[str, Any], str, str, list[str]]:
        procedure = "stepwise" if kind == "independence" else kind
        if procedure not in log_linear:
            log_linear[procedure] = mse(table, procedure, bootstrap=bootstrap, seed=seed, level=level)
        result = log_linear[procedure]
        row = result.table.iloc[1 if kind == "independence" else 0].to_dict()
        diagnostic = (f"AIC {row['aic']:.1f}, deviance {row['deviance']:.1f} on {int(row['df'])} df; "
                      f"effects: {row['selected']}")
        return result, row, str(row["interval"]), diagnostic, [] if kind == "independence" else result.warnings

    def fit_latent(_: str) -> tuple[Estimates, dict[str, Any], str, str, list[str]]:
        result = latent_class(table, classes=latent_classes, concentration=concentration, draws=draws,
                              warmup=draws, seed=seed, level=level, start_at_mode=start_at_mode, quiet=quiet)
        gates = result.diagnostics["convergence"]
        diagnostic = (f"R-hat {gates['max_rhat']:.3f} (worst: {gates['max_rhat_parameter']}), "
                      f"{gates['divergences']} divergent of {gates['transitions']}")
        return result, result.table.iloc[0].to_dict(), "posterior quantiles", diagnostic, result.warnings

    def fit_graphs(_: str) -> tuple[Estimates, dict[str, Any], str, str, list[str]]:
        prior = 2.0 ** -table.lists if delta is None else delta
        result = graph_averaging(table.patterns, table.counts, names=table.names, delta=prior, level=level,
                                 seed=seed)
        top = result.tables["graphs"].iloc[0]
        diagnostic = f"top graph {top['graph']} (posterior {top['posterior']:.2f})"
        if result.settings["search"] == "mcmc":
            found = result.diagnostics
            diagnostic += (f"; MC^3 search over {found['graphs_visited']:,} graphs, chains agree to "
                           f"{found['chain_spread']:.2%}")
        # the posterior median, as for the latent class
        return result, result.table.iloc[1].to_dict(), "posterior quantiles", diagnostic, result.warnings

    fitters = {"latent": fit_latent, "graphs": fit_graphs}

    def attempt(kind: str) -> Any:
        try:
            return fitters.get(kind, fit_log_linear)(kind)
        except HiddenpopError as exc:
            return exc

    # The latent-class sampler runs in a second thread while this one fits the other classes: its compilation
    # and sampling run in XLA, outside the interpreter lock, and the log-linear and graph fits need the
    # interpreter. Each class's numbers are those of a fit on its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = {kind: pool.submit(attempt, kind) for kind in classes if kind == "latent"}
        outcomes = {kind: attempt(kind) for kind in classes if kind not in pending}
        outcomes.update({kind: future.result() for kind, future in pending.items()})
    for kind in classes:
        outcome = outcomes[kind]
        if isinstance(outcome, HiddenpopError):
            reason = " ".join(str(outcome).split())
            method = {"latent": "latent class", "graphs": "graph averaging"}.get(kind, f"MSE {kind}")
            rows.append(_row(kind, method, None, None, "", "", level, failure=reason))
            warnings.append(f"{kind}: not estimated ({reason})")
            continue
        result, row, interval, diagnostic, own = outcome
        # a row's status is its own class's: the independence row shares the stepwise fit but not its warnings
        rows.append(_row(kind, str(row["method"]), result if own else None, row, interval, diagnostic, level))
        warnings.extend(f"{kind}: {w}" for w in own)
        details[kind] = result
    frame = pd.DataFrame(rows)
    frame["headline"] = frame["class"] == headline
    frame = frame[COLUMNS]
    headline_row = frame.loc[frame["headline"]].iloc[0]
    if not np.isfinite(headline_row["estimate"]):
        warnings.insert(0, f"the headline class ({headline}) could not be estimated on these data; "
                           "no headline is reported")
    finite = frame.loc[np.isfinite(frame["estimate"]), "estimate"]
    spread = float(finite.max() / finite.min()) if len(finite) > 1 and finite.min() > 0 else np.nan
    if np.isfinite(spread) and spread > 1.5:
        warnings.append(f"the classes disagree: the largest estimate is {spread:.1f} times the smallest; the "
                        "choice of model class matters more than any one interval shows")
    result = Estimates(
        table=frame.rename(columns={"class": "model_class"}).assign(quantity="population"),
        settings={"headline": headline, "classes": list(classes), "bootstrap": bootstrap, "level": level,
                  "latent_classes": latent_classes, "concentration_prior": list(concentration), "draws": draws,
                  "delta": 2.0 ** -table.lists if delta is None else delta},
        seed=seed,
        warnings=warnings,
        diagnostics={"observed": table.observed, "lists": list(table.names), "spread": spread},
        tables={f"{kind}_{name}": extra for kind, fit in details.items()
                for name, extra in fit.tables.items() if name in ("graphs", "path", "classes")},
    )
    return result

