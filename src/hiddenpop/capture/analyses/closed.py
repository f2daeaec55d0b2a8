"""The analyses of capture histories: the closed family compared, one model's profile interval, single source.

See :mod:`hiddenpop.capture.analyses`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hiddenpop.capture.closed.averaging import CRITERIA, model_average
from hiddenpop.capture.closed.descriptive_stats import descriptive
from hiddenpop.capture.closed.models import closedp
from hiddenpop.capture.closed.profile import profile_ci
from hiddenpop.capture.closed.single import single_source
from hiddenpop.capture.core.histories import Histories, parse_occasions
from hiddenpop.capture.specs import ClosedSpec, HistoriesOptions, IntervalSpec, SingleSpec
from hiddenpop.data.io import read_table
from hiddenpop.results import Estimates
from hiddenpop.specs import to_dict

__all__ = ["closed_analysis", "interval_analysis", "read_histories", "single_analysis"]


def read_histories(path: str | Path, options: HistoriesOptions) -> Histories:
    """Read a capture file with the reading options of a spec."""
    source = Path(path).name
    occasions = None if options.occasions is None else parse_occasions(options.occasions, source)
    return Histories.from_file(path, count_column=options.count_column, occasions=occasions)


def closed_analysis(histories: Histories, spec: ClosedSpec) -> Estimates:
    """Every closed model that suits the histories, compared in one table; see :func:`closedp`."""
    result = closedp(histories, rcapture=spec.rcapture, normal=spec.normal, t0=spec.t0)
    result.tables["descriptive"] = descriptive(histories)
    level = float(result.table["level"].iloc[0])
    averages = []
    for criterion in CRITERIA:
        average = model_average(result.table, histories.observed, criterion=criterion, level=level)
        for table in (result.table, result.tables["models"]):  # the tidy table and Rcapture's layout
            names = table["method"] if "method" in table.columns else table["model"]
            table[f"{criterion}_weight"] = names.map(average["weights"])
        averages.append({k: v for k, v in average.items() if k != "weights"})
    result.tables["model_average"] = pd.DataFrame(averages)
    result.settings = {**to_dict(spec), **result.settings}
    return result


def interval_analysis(histories: Histories, spec: IntervalSpec) -> Estimates:
    """Profile-likelihood interval for ``spec.model`` with the Wald and log-transformed intervals as rows."""
    result = profile_ci(histories, spec.model, spec.level, t0=spec.t0).to_estimates()
    result.settings = {**to_dict(spec), **result.settings}
    result.diagnostics = {"observed": histories.observed, "occasions": histories.occasions}
    return result


def single_analysis(path: str | Path, spec: SingleSpec) -> Estimates:
    """The single-source estimators of a file with one row per unit seen (see :mod:`.closed.single`)."""
    path = Path(path)
    result = single_source(read_table(path), count_column=spec.count_column, covariates=spec.covariate,
                           models=spec.model, level=spec.level, source=path.name)
    result.settings = to_dict(spec)
    return result
