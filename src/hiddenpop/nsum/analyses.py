"""The network scale-up analyses as every interface runs them: a spec of options in, one result out.

* :func:`scale_up_analysis` -- the design-based estimate (:func:`~hiddenpop.nsum.estimators.estimate`) with what
  a reader needs beside it: the distribution of each degree (``tables["degrees"]``, ``tables["degree_histogram"]``)
  and the leave-one-out consistency of the known groups behind each known-population degree
  (``tables["consistency"]``, ``diagnostics["consistency"]``, flagged groups as warnings).
* :func:`consistency_analysis` -- the consistency check alone.

The command line and the study file both call these, so they print the same numbers, tables and warnings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hiddenpop.data.ard import ARD
from hiddenpop.nsum.adjust import FACTORS, Adjustments, Fixed
from hiddenpop.nsum.degrees import Degree, degree_summary
from hiddenpop.nsum.degrees import degree as make_degree
from hiddenpop.nsum.diagnostics import consistency
from hiddenpop.nsum.estimators import Prevalence, estimate, visibility_sensitivity
from hiddenpop.nsum.specs import ConsistencySpec, NsumSpec
from hiddenpop.results import Estimates
from hiddenpop.specs import to_dict

__all__ = ["consistency_analysis", "degree_histogram", "scale_up_analysis", "sensitivity_grid"]

#: Summary statistics of a degree that go into the one-row-per-degree table.
_SUMMARY_KEYS = ("method", "population_base", "respondents", "min", "q1", "median", "mean", "q3", "max",
                 "sum", "zero_degree_respondents", "weighted_mean")


def _weighted(spec: ConsistencySpec) -> bool | None:
    """The estimators' ``weighted`` argument: off when asked, else the survey's own (weights when it has them)."""
    return False if spec.unweighted else None


def scale_up_analysis(
    ard: ARD,
    spec: NsumSpec,
    *,
    hidden: Sequence[str] | None = None,
    degrees: Mapping[str, Degree] | None = None,
    group_degree: Mapping[str, str] | None = None,
    checks: Mapping[str, tuple[Sequence[str], float]] | None = None,
    sums: Mapping[str, Sequence[str]] | None = None,
    ratios: Mapping[str, tuple[str, str]] | None = None,
    prevalence: Mapping[str, Prevalence | tuple] | None = None,
    adjustments: Adjustments | None = None,
    recall_sizes: Mapping[str, float] | None = None,
) -> Estimates:
    """Scale-up estimates of the hidden groups with the degree and consistency tables beside them.

    ``adjustments`` is the visibility model (default: the spec's factors for every group). The result carries
    the declared factors (``tables["visibility"]``) and, with a bootstrap, every estimate across each factor's
    plausible range (``tables["visibility_sensitivity"]``, see :func:`sensitivity_grid`).

    ``degrees`` names the degrees in use (default: one, summation over ``ard.degree_columns`` when set, else
    known-population over every known group); ``recall_sizes`` gives the sizes of degree columns that are not
    known groups (a summation degree's), which the recall curve needs (``spec.recall``); ``group_degree`` says which degree scales each hidden group
    (default: the first degree for every group). ``checks`` names the consistency checks to run, each as
    (known groups, population base); by default one over every known group when the degree is a
    known-population one and there are at least two known groups.
    """
    if degrees is None:
        method = "summation" if ard.degree_columns else "known_population"
        degrees = {method: make_degree(ard, method)}
    names = list(degrees)
    groups = list(ard.hidden if hidden is None else hidden)
    chosen = {group: degrees[(group_degree or {}).get(group, names[0])] for group in groups}
    weighted = _weighted(spec)
    result = estimate(
        ard, list(spec.method), hidden=groups, degree=chosen, weighted=weighted,
        adjustments=adjustments if adjustments is not None else spec.adjustments(),
        sums=sums, ratios=ratios, prevalence=prevalence, bootstrap=spec.bootstrap, seed=spec.seed,
        level=spec.level, recall=spec.recall, recall_sizes=recall_sizes,
    )
    use_weights = ard.weighted and not spec.unweighted
    weights = ard.design_weights if use_weights else None
    summaries = {name: degree_summary(values, weights) for name, values in degrees.items()}
    result.tables["degrees"] = pd.DataFrame(
        [{"degree": name, **{k: s[k] for k in _SUMMARY_KEYS if k in s}} for name, s in summaries.items()])
    result.tables["degree_histogram"] = pd.concat(
        [degree_histogram(name, values.values) for name, values in degrees.items()], ignore_index=True)
    result.diagnostics["degrees"] = {name: {k: v for k, v in s.items() if not isinstance(v, (list, dict))}
                                     for name, s in summaries.items()}
    if checks is None:
        checks = {}
        if len(ard.known) >= 2 and not ard.degree_columns:
            checks = {names[0]: (list(ard.known), float(ard.population))}
    _add_consistency(result, ard, spec, checks)
    _add_visibility(result, spec)
    result.settings = {**to_dict(spec), **result.settings}
    if adjustments is not None:  # the factors came from the caller's model, not the spec's options
        for factor in FACTORS:
            result.settings.pop(factor, None)
    return result


#: The range a sensitivity table spans for a factor declared as a constant (or not at all).
DEFAULT_RANGES = {"transmission_rate": (0.5, 1.0), "degree_ratio": (0.5, 1.5), "frame_ratio": (0.8, 1.2)}
#: The factors whose sensitivity a scale-up analysis tabulates (the frame ratio is rarely uncertain).
SENSITIVITY_FACTORS = ("transmission_rate", "degree_ratio")


def sensitivity_grid(adjust: Adjustments, factor: str, points: int = 11) -> list[float]:
    """Values of ``factor`` spanning its plausible range: the 1% to 99% quantiles of its declared distribution(s),
    else :data:`DEFAULT_RANGES` (widened to include a declared constant). A transmission rate stops at 1."""
    low, high = DEFAULT_RANGES[factor]
    declared = [d.distribution for d in adjust.declared if d.factor == factor]
    random = [d for d in declared if not isinstance(d, Fixed)]
    if random:
        low = min(float(d.quantiles([0.01])[0]) for d in random)
        high = max(float(d.quantiles([0.99])[0]) for d in random)
    for distribution in declared:
        low, high = min(low, distribution.mean), max(high, distribution.mean)
    if factor == "transmission_rate":
        high = min(high, 1.0)
    return [float(v) for v in np.round(np.linspace(low, high, points), 4)]


def _add_visibility(result: Estimates, spec: NsumSpec) -> None:
    adjust: Adjustments = result.extras["visibility"]["adjustments"]
    result.tables["visibility"] = pd.DataFrame(adjust.assumptions(spec.level),
                                               columns=["name", "factor", "label", "distribution", "mean", "lower",
                                                        "upper", "level", "groups", "source"])
    if spec.bootstrap:
        result.tables["visibility_sensitivity"] = pd.concat(
            [visibility_sensitivity(result, factor, sensitivity_grid(adjust, factor))
             for factor in SENSITIVITY_FACTORS], ignore_index=True)


def _add_consistency(result: Estimates, ard: ARD, spec: ConsistencySpec,
                     checks: Mapping[str, tuple[Sequence[str], float]]) -> None:
    tables, summary = [], {}
    for name, (groups, population) in checks.items():
        check = consistency(ard, known=list(groups), population=population, weighted=_weighted(spec),
                            flag_ratio=spec.flag_ratio)
        table = check.table.rename(columns={"quantity": "group"})
        table.insert(0, "degree", name)
        tables.append(table)
        summary[name] = {k: check.diagnostics[k] for k in ("are", "mae", "rmse", "flagged") if k in check.diagnostics}
        result.warnings.extend(w for w in check.warnings if w not in result.warnings)
    if tables:
        result.tables["consistency"] = pd.concat(tables, ignore_index=True)
        result.diagnostics["consistency"] = summary


def consistency_analysis(ard: ARD, spec: ConsistencySpec, *, known: Sequence[str] | None = None,
                         population: float | None = None) -> Estimates:
    """Leave-one-out consistency of the known groups (held-out estimate against the known size)."""
    result = consistency(ard, known=known, population=population, weighted=_weighted(spec),
                         flag_ratio=spec.flag_ratio)
    result.settings = {**to_dict(spec), **result.settings}
    return result


def degree_histogram(name: str, values: np.ndarray, bins: int = 30) -> pd.DataFrame:
    """Respondents per degree bin: equal-width bins up to the 99th percentile, then, when some degrees lie above
    it, one more row from there to the largest degree (``open_ended``), so every bin's edges hold its degrees."""
    values = np.asarray(values, dtype=float)
    top = float(np.quantile(values, 0.99)) if values.size else 1.0
    edges = np.linspace(0.0, max(top, 1.0), bins + 1)
    above = values > edges[-1]
    counts, _ = np.histogram(values[~above], bins=edges)
    frame = pd.DataFrame({"degree": name, "bin_left": edges[:-1], "bin_right": edges[1:], "respondents": counts,
                          "open_ended": False})
    if above.any():
        tail = pd.DataFrame({"degree": [name], "bin_left": [edges[-1]], "bin_right": [float(values.max())],
                             "respondents": [int(above.sum())], "open_ended": [True]})
        frame = pd.concat([frame, tail], ignore_index=True)
    return frame
