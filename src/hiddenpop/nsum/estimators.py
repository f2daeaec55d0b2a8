"""Design-based network scale-up estimators with rescaled-bootstrap intervals.

Notation: respondents i with design weights w_i (1 when unweighted), degree d_i (see :mod:`hiddenpop.nsum.degrees`)
with scale-up base N, answers y_iH about hidden group H.

* **Killworth MLE** (``"mle"``, ratio of sums; Killworth et al. 1998b):
  N_H = N * sum_i w_i y_iH / sum_i w_i d_i. The MLE of N_H under y_iH ~ Binomial(d_i, N_H / N) with
  d_i known; zero-degree respondents are kept (they add nothing to either sum).
  Killworth standard error: se = N * sqrt(p (1 - p) / sum_i w~_i d_i), p = sum w y / sum w d, with weights
  rescaled to mean 1 (w~ = w n / sum w) so that sum w~ d counts "trials" as in the unweighted formula. It
  ignores the uncertainty in d_i, the survey design and any overdispersion, so it is usually too small; the
  rescaled bootstrap is the interval to report.
* **PIMLE** (``"pimle"``, plug-in MLE, mean of ratios; Killworth et al. 1998a):
  N_H = N * sum_{i: d_i>0} w_i (y_iH / d_i) / sum_{i: d_i>0} w_i. Respondents with d_i = 0 are dropped
  (reported). Gives every respondent equal say, so low-degree respondents with a hidden contact dominate;
  more variable and, with small degrees, biased upwards.
* **Mean of sums** (``"mos"``; Habecker et al. 2015): the PIMLE form with the mean-of-sums degree
  d_i = (N / L) sum_k y_ik / N_k over the same known groups.
* **Generalized NSUM**: any of the above divided by (degree ratio x transmission rate x frame ratio), see
  :mod:`hiddenpop.nsum.adjust`.
* **Recall correction** (``recall="loglinear"``): before the factors, each group is inverted through the recall
  curve fitted on the known groups with the same estimator and degree (:mod:`hiddenpop.nsum.recall`); the curve is
  refitted on every bootstrap replicate. The Killworth SE, which knows nothing of the curve, is then not given.

Assumptions shared by all: respondents' networks are random samples of the population (no barrier effects),
respondents know and report accurately which contacts belong to each group (no transmission or recall error),
the known sizes are right, and the hidden group's members are as well connected as everyone else (degree ratio
one) unless adjusted. When these fail the estimators are biased, and the bootstrap interval, which reflects only
sampling variability, does not cover the truth: barrier effects mostly add variance, transmission error and a low
degree ratio bias the estimate downward by the factor tau (resp. delta).

Derived quantities (sums of hidden groups, ratios between them, prevalence against a population base) are
computed from the group estimates on the full sample and on every bootstrap replicate, so their percentile
intervals respect the correlation between groups (the same respondents answer every question).

Uncertainty: the Rao-Wu rescaled bootstrap (m_h = n_h - 1) over strata and PSUs
(:mod:`hiddenpop.design.replicate`). Every estimator above is a ratio of weighted totals of per-respondent
variables, so a replicate estimate needs only replicate totals, computed through PSU totals: the whole bootstrap
is one matrix product. The degree is recomputed from the replicate's own answers automatically because it is a
per-respondent quantity. Known sizes and N are treated as fixed; the visibility factors
(:mod:`hiddenpop.nsum.adjust`) are constants or distributions drawn once per replicate.

:func:`visibility_sensitivity` re-scales the same replicates with one factor held at each value of a grid, and
:func:`break_even` gives the factor value at which an estimate would fall to a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.data.ard import ARD
from hiddenpop.design.replicate import rescaled_bootstrap
from hiddenpop.distributions import normal_quantile
from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.nsum.adjust import FACTORS, Adjustments, as_adjustments
from hiddenpop.nsum.degrees import Degree, degree, degree_label, degree_summary
from hiddenpop.nsum.recall import STEEP_INVERSE, RecallFit, check_recall, curve_table, fit_recall
from hiddenpop.nsum.specs import METHODS
from hiddenpop.results import Estimates


@dataclass
class Prevalence:
    """A prevalence quantity: ``quantity`` per ``per`` members of a population of size ``base``."""

    quantity: str
    base: float
    per: float = 1.0


def _methods(method: str | Sequence[str]) -> list[str]:
    methods = [method] if isinstance(method, str) else list(method)
    if not methods:
        raise ConfigError("give at least one method (mle, pimle or mos)")
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"method {m!r} is not one of {list(METHODS)}")
    return list(dict.fromkeys(methods))


def _degrees_for(
    ard: ARD, hidden: list[str], deg: Degree | Mapping[str, Degree] | None
) -> dict[str, Degree]:
    if deg is None:
        if ard.degree_columns:
            default = degree(ard, "summation")
        else:
            default = degree(ard, "known_population")
        return {h: default for h in hidden}
    chosen = {h: deg for h in hidden} if isinstance(deg, Degree) else dict(deg)
    missing = [h for h in hidden if h not in chosen]
    if missing:
        raise ConfigError(f"no degree given for hidden group(s) {missing}")
    for h in hidden:
        if not isinstance(chosen[h], Degree) or len(chosen[h].values) != ard.n:
            raise ConfigError(
                f"the degree for {h!r} must be a Degree computed from this survey ({ard.n} respondents); "
                "use hiddenpop.nsum.degrees(ard, ...)"
            )
    return {h: chosen[h] for h in hidden}


def _method_degree(d: Degree, method: str, ard: ARD, cache: dict) -> Degree:
    """The degree a method uses: MoS replaces the known-population degree by the mean-of-sums degree."""
    if method != "mos":
        return d
    if d.method == "summation":
        raise ConfigError(
            "method 'mos' defines its own degree from known groups; it cannot use a summation degree "
            "(drop --degree-columns or use mle/pimle)"
        )
    key = (tuple(d.columns), d.population)
    if key not in cache:
        cache[key] = degree(ard, "mean_of_sums", columns=d.columns, population=d.population)
    return cache[key]


def _normalise_derived(
    hidden: list[str],
    sums: Mapping[str, Sequence[str]] | None,
    ratios: Mapping[str, tuple[str, str]] | None,
    prevalence: Mapping[str, Prevalence | tuple] | None,
) -> tuple[dict[str, list[str]], dict[str, tuple[str, str]], dict[str, Prevalence]]:
    names = set(hidden)
    sums_n: dict[str, list[str]] = {}
    for name, parts in (sums or {}).items():
        parts = [str(p) for p in parts]
        if name in names:
            raise ConfigError(f"derived quantity name {name!r} is already used; choose another name")
        for p in parts:
            if p not in hidden:
                raise ConfigError(f"sum {name!r}: {p!r} is not a hidden group being estimated ({hidden})")
        if len(parts) < 1:
            raise ConfigError(f"sum {name!r} needs at least one hidden group")
        sums_n[name] = parts
        names.add(name)
    ratios_n: dict[str, tuple[str, str]] = {}
    for name, pair in (ratios or {}).items():
        if len(pair) != 2:
            raise ConfigError(f"ratio {name!r} needs (numerator, denominator)")
        num, den = str(pair[0]), str(pair[1])
        if name in names:
            raise ConfigError(f"derived quantity name {name!r} is already used; choose another name")
        for p in (num, den):
            if p not in names:
                raise ConfigError(f"ratio {name!r}: {p!r} is neither a hidden group nor a sum defined before it")
        ratios_n[name] = (num, den)
        names.add(name)
    prev_n: dict[str, Prevalence] = {}
    for name, spec in (prevalence or {}).items():
        spec = spec if isinstance(spec, Prevalence) else Prevalence(*spec)
        if name in names:
            raise ConfigError(f"derived quantity name {name!r} is already used; choose another name")
        if spec.quantity not in names:
            raise ConfigError(f"prevalence {name!r}: {spec.quantity!r} is not a hidden group or derived quantity")
        if not (np.isfinite(spec.base) and spec.base > 0 and np.isfinite(spec.per) and spec.per > 0):
            raise ConfigError(f"prevalence {name!r}: base and per must be positive numbers")
        prev_n[name] = spec
        names.add(name)
    return sums_n, ratios_n, prev_n


def _derive(
    values: dict[str, np.ndarray],
    sums: dict[str, list[str]],
    ratios: dict[str, tuple[str, str]],
    prevalence: dict[str, Prevalence],
) -> dict[str, np.ndarray]:
    out = dict(values)
    for name, parts in sums.items():
        out[name] = np.sum([out[p] for p in parts], axis=0)
    for name, (num, den) in ratios.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = np.where(out[den] > 0, out[num] / np.where(out[den] > 0, out[den], 1.0), np.nan)
    for name, spec in prevalence.items():
        out[name] = out[spec.quantity] / spec.base * spec.per
    return out


def estimate(
    ard: ARD,
    method: str | Sequence[str] = "mle",
    *,
    hidden: Sequence[str] | None = None,
    degree: Degree | Mapping[str, Degree] | None = None,
    weighted: bool | None = None,
    adjustments: Adjustments | Mapping[str, Any] | None = None,
    sums: Mapping[str, Sequence[str]] | None = None,
    ratios: Mapping[str, tuple[str, str]] | None = None,
    prevalence: Mapping[str, Prevalence | tuple] | None = None,
    bootstrap: int = 0,
    seed: int | None = None,
    level: float = 0.95,
    recall: str = "none",
    recall_sizes: Mapping[str, float] | None = None,
) -> Estimates:
    """Scale-up estimates of the hidden groups (and derived quantities) with design-based intervals.

    Parameters
    ----------
    ard:
        The validated survey.
    method:
        ``"mle"``, ``"pimle"``, ``"mos"`` or a list of them (one table row per quantity and method).
    hidden:
        Hidden groups to estimate (default ``ard.hidden``).
    degree:
        A :class:`Degree` for all groups or a mapping group -> Degree (e.g. a summation child degree for the
        victim groups and a known-population adult degree for the trafficker groups). Default: summation over
        ``ard.degree_columns`` when set, else known-population over all known groups; base ``ard.population``.
    weighted:
        Use the survey weights (default: when the ARD has weights).
    adjustments:
        Generalized NSUM factors (:class:`~hiddenpop.nsum.adjust.Adjustments`).
    sums, ratios, prevalence:
        Derived quantities: ``sums={"victims": ["child_nonlive", "child_livestream"]}``,
        ``ratios={"victims_per_trafficker": ("victims", "traffickers")}``,
        ``prevalence={"victims_per_100_children": Prevalence("victims", base=38e6, per=100)}``.
    bootstrap:
        Number of rescaled-bootstrap replicates (0: no bootstrap; the MLE then gets a Wald interval from the
        Killworth SE and the other rows have no interval).
    seed:
        Required when ``bootstrap > 0``.
    level:
        Interval level.
    recall:
        ``"none"`` or ``"loglinear"``: correct every hidden group through the recall curve fitted on the known
        groups (:mod:`hiddenpop.nsum.recall`), refitted on every bootstrap replicate. The result then carries
        ``tables["recall"]`` (known groups, hidden groups and the fitted curve with its band) and
        ``diagnostics["recall"]``.
    recall_sizes:
        Sizes of degree columns that are not known groups of ``ard`` (e.g. the age bands of a summation degree,
        which are not top-coded as known groups are), for the recall curve of the groups that degree scales.
    """
    deg_arg = degree
    methods = _methods(method)
    hidden = list(ard.hidden if hidden is None else hidden)
    if not hidden:
        raise ConfigError("no hidden groups to estimate; name them with hidden=[...] (--hidden COL)")
    for h in hidden:
        if h not in ard.counts.columns:
            raise ConfigError(f"hidden group {h!r} is not in the survey's counts; available: {ard.groups}")
    if not 0 < level < 1:
        raise ConfigError("level must be between 0 and 1 (e.g. 0.95)")
    check_recall(recall)
    sizes = {**{str(g): float(v) for g, v in (recall_sizes or {}).items()},
             **{str(g): float(v) for g, v in ard.known_sizes.items()}}
    bad = [g for g, v in sizes.items() if not (np.isfinite(v) and v > 0)]
    if bad:
        raise ConfigError(f"recall_sizes: the size of {bad} must be a positive number")
    if isinstance(bootstrap, bool) or int(bootstrap) != bootstrap or bootstrap < 0:
        raise ConfigError("bootstrap must be a whole number of replicates >= 0")
    bootstrap = int(bootstrap)
    if bootstrap and seed is None:
        raise ConfigError("the bootstrap needs an explicit seed (seed=..., --seed S)")
    if 0 < bootstrap < 100:
        raise ConfigError("use at least 100 bootstrap replicates (1,000 or more for 95% percentile intervals)")
    adjust = as_adjustments(adjustments)
    sums_n, ratios_n, prev_n = _normalise_derived(hidden, sums, ratios, prevalence)
    use_weights = ard.weighted if weighted is None else bool(weighted)
    if use_weights and not ard.weighted:
        raise ConfigError("weighted=True but the survey has no weight column (--weights COL)")
    w = ard.design_weights if use_weights else np.ones(ard.n)
    degrees = _degrees_for(ard, hidden, deg_arg)

    factors = None
    random_factors = adjust.is_random(hidden)
    # one draw of every declared factor per replicate, shared by the groups it covers (constants stay constant)
    multipliers = (adjust.multipliers(hidden, bootstrap, seed) if bootstrap and random_factors
                   else {h: adjust.factor(h) for h in hidden})
    visibility: dict[str, Any] = {"adjustments": adjust, "point": {}, "replicates": {}, "seed": seed,
                                  "derived": (sums_n, ratios_n, prev_n), "level": level}
    warnings = list(ard.warnings)
    notes = list(ard.notes)
    if bootstrap:
        factors = rescaled_bootstrap(ard.n, strata=ard.strata, psu=ard.psu, replicates=bootstrap, seed=seed)
        warnings.extend(factors.warnings)
        notes.extend(factors.notes)
        if ard.psu is None:
            notes.append("no PSU column: each respondent is treated as its own PSU in the bootstrap")
    alpha = 1.0 - level
    z = float(normal_quantile(1.0 - alpha / 2.0))
    rows: list[dict[str, Any]] = []
    replicate_frames: dict[str, pd.DataFrame] = {}
    mos_cache: dict = {}
    degree_info: dict[str, Any] = {}
    failed_total = 0
    recall_tables: list[pd.DataFrame] = []
    recall_info: dict[str, dict[str, Any]] = {}
    for m in methods:
        columns: list[np.ndarray] = []
        meta: dict[str, dict[str, Any]] = {}
        for h in hidden:
            d_obj = _method_degree(degrees[h], m, ard, mos_cache)
            label = degree_label(d_obj)
            if label not in degree_info:
                degree_info[label] = degree_summary(d_obj, w if use_weights else None)
            d = d_obj.values
            y = ard.y(h)
            if m == "mle":
                a, b = y, d
                used = ard.n
                dropped = 0
            else:
                positive = d > 0
                a = np.where(positive, y / np.where(positive, d, 1.0), 0.0)
                b = positive.astype(float)
                used = int(positive.sum())
                dropped = ard.n - used
                if used == 0:
                    raise ModelError(f"{m}: every respondent has degree 0; no estimate is possible")
            meta[h] = {
                "a": len(columns),
                "b": len(columns) + 1,
                "degree": d_obj,
                "used": used,
                "dropped": dropped,
                "factor": adjust.factor(h),
                "y": y,
            }
            columns.extend([a, b])
        # the known groups estimated as if hidden, with each hidden group's degree: the recall curve's points
        recall_columns = _recall_columns(ard, m, hidden, meta, columns, sizes) if recall != "none" else {}
        matrix = np.column_stack(columns)
        point_totals = (w[:, None] * matrix).sum(axis=0)
        totals = factors.replicate_totals(matrix, w) if factors is not None else None  # (R, m)
        fits = {label: _fit_recall(m, label, info, point_totals, totals)
                for label, info in recall_columns.items()}
        group_point: dict[str, np.ndarray] = {}
        uncorrected: dict[str, float] = {}
        for h in hidden:
            info = meta[h]
            den = point_totals[info["b"]]
            if den <= 0:
                raise ModelError(f"{m}: the degrees of the respondents sum to 0; no scale-up estimate for {h!r}")
            basic = info["degree"].population * point_totals[info["a"]] / den
            if fits:
                uncorrected[h] = basic
                basic = fits[info["recall"]].correct(basic)
            visibility["point"].setdefault(m, {})[h] = basic
            group_point[h] = np.array(basic * info["factor"])
        point = _derive(group_point, sums_n, ratios_n, prev_n)
        if fits:
            _recall_outputs(fits, meta, uncorrected, m, level, recall_tables, recall_info, warnings)
        reps = None
        if totals is not None:
            basic_reps = {}
            with np.errstate(divide="ignore", invalid="ignore"):
                for h in hidden:
                    info = meta[h]
                    den = totals[:, info["b"]]
                    basic_reps[h] = np.where(
                        den > 0, info["degree"].population * totals[:, info["a"]] / np.where(den > 0, den, 1.0), np.nan
                    )
                    if fits:
                        basic_reps[h] = fits[info["recall"]].correct_replicates(basic_reps[h])
            visibility["replicates"][m] = basic_reps
            group_reps = {h: basic_reps[h] * multipliers[h] for h in hidden}
            reps = _derive(group_reps, sums_n, ratios_n, prev_n)
            replicate_frames[m] = pd.DataFrame(reps)
            failed = int(np.isnan(np.column_stack(list(group_reps.values()))).any(axis=1).sum())
            failed_total += failed
        for q, value in point.items():
            row: dict[str, Any] = {
                "quantity": q,
                "method": m,
                "estimate": float(value),
                "se": np.nan,
                "lower": np.nan,
                "upper": np.nan,
                "level": level,
            }
            if q in meta:
                info = meta[q]
                d_obj = info["degree"]
                row.update(
                    {
                        "degree_method": d_obj.method,
                        "population_base": d_obj.population,
                        "respondents_used": info["used"],
                        "zero_degree_dropped": info["dropped"],
                        "adjustment_factor": info["factor"],
                        "total_connections": float(np.sum(w * info["y"])),
                        "degree_total": float(point_totals[info["b"]]) if m == "mle" else np.nan,
                    }
                )
                if m == "mle" and recall == "none":
                    w_norm = w * (ard.n / w.sum())
                    p = float(np.sum(w * info["y"]) / np.sum(w * d_obj.values))
                    sum_d = float(np.sum(w_norm * d_obj.values))
                    row["killworth_se"] = d_obj.population * np.sqrt(max(p * (1 - p), 0.0) / sum_d) * info["factor"]
            else:
                row["degree_method"] = "derived"
            if reps is not None:
                r = reps[q]
                r = r[np.isfinite(r)]
                if r.size >= 2:
                    row["se"] = float(np.std(r, ddof=1))
                    lo, hi = np.quantile(r, [alpha / 2.0, 1.0 - alpha / 2.0])
                    row["lower"], row["upper"] = float(lo), float(hi)
                row["interval"] = "percentile rescaled bootstrap"
                row["replicates"] = int(r.size)
            elif m == "mle" and q in meta and recall == "none":
                row["se"] = row["killworth_se"]
                row["lower"] = row["estimate"] - z * row["se"]
                row["upper"] = row["estimate"] + z * row["se"]
                row["interval"] = "Wald (Killworth SE)"
            else:
                row["interval"] = "none (use bootstrap)"
            rows.append(row)
        if m in ("pimle", "mos"):
            dropped = {meta[h]["dropped"] for h in hidden}
            for k in sorted(dropped):
                if k:
                    notes.append(f"{m}: {k} respondent(s) with degree 0 dropped (their ratio y/d is undefined)")
    if failed_total:
        warnings.append(
            f"{failed_total} bootstrap replicate estimate(s) were undefined (degree sum 0 in the replicate) and "
            "were left out of the intervals"
        )
    if recall != "none" and not bootstrap:
        warnings.append("recall correction without a bootstrap: no interval (the Killworth SE knows nothing of the "
                        "curve's uncertainty); use bootstrap replicates (--bootstrap 1000)")
    elif recall != "none":
        notes.append("recall correction: each hidden group divided through the log-linear recall curve of the known "
                     "groups at its own size; the curve is refitted on every bootstrap replicate")
    if not bootstrap:
        notes.append("no bootstrap: the MLE interval is Wald with the Killworth SE, which ignores the survey "
                     "design and degree uncertainty; use bootstrap replicates for design-based intervals")
    if random_factors and bootstrap:
        notes.append("generalized NSUM: estimates divided by degree ratio x transmission rate x frame ratio; each "
                     "declared distribution is drawn once per bootstrap replicate, so the intervals carry its "
                     "uncertainty (point estimates use each factor's mean)")
    elif random_factors:
        warnings.append("the declared visibility factors are distributions but there is no bootstrap: the "
                        "interval ignores their uncertainty; use bootstrap replicates (--bootstrap 1000)")
    elif not adjust.is_identity(hidden):
        notes.append("generalized NSUM: estimates divided by degree ratio x transmission rate x frame ratio "
                     "(constants: intervals are conditional on them)")
    zero_counts = {label: info["zero_degree_respondents"] for label, info in degree_info.items()}
    diagnostics = {
        "degrees": degree_info,
        "zero_degree_respondents": zero_counts,
        "respondents": ard.n,
        "weighted": use_weights,
        "bootstrap": None
        if factors is None
        else {
            "replicates": bootstrap,
            "psus": factors.n_psu,
            "strata": len(np.unique(factors.stratum_of_psu)),
            "failed_replicates": failed_total,
            "m_h": "n_h - 1",
        },
        "survey": ard.describe(),
    }
    if recall_info:
        diagnostics["recall"] = recall_info
    settings = {
        "methods": methods,
        "hidden": hidden,
        "weighted": use_weights,
        "bootstrap": bootstrap,
        "level": level,
        "adjustments": adjust.describe(hidden),
        "visibility": adjust.assumptions(level),
        "sums": sums_n,
        "ratios": {k: list(v) for k, v in ratios_n.items()},
        "prevalence": {k: vars(v) for k, v in prev_n.items()},
        "recall": recall,
    }
    return Estimates(
        table=pd.DataFrame(rows),
        settings=settings,
        seed=seed if bootstrap else None,
        warnings=list(dict.fromkeys(warnings)),
        diagnostics=diagnostics,
        notes=list(dict.fromkeys(notes)),
        extras={"replicates": replicate_frames, "degrees": degrees, "visibility": visibility},
        tables={"recall": pd.concat(recall_tables, ignore_index=True)} if recall_tables else {},
    )


def _recall_columns(ard: ARD, method: str, hidden: list[str], meta: dict[str, dict[str, Any]],
                    columns: list[np.ndarray], sizes: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Append, once per degree the hidden groups use, the numerator and denominator columns of each group that
    degree is built from (its known groups; a summation degree's columns, which then need known sizes), estimated
    by ``method`` with that degree; records in ``meta[h]["recall"]`` which curve corrects group h."""
    out: dict[str, dict[str, Any]] = {}
    for h in hidden:
        d_obj = meta[h]["degree"]
        label = degree_label(d_obj)
        meta[h]["recall"] = label
        if label in out:
            continue
        known = list(d_obj.columns)
        unsized = [k for k in known if k not in sizes]
        if unsized:
            raise ConfigError(f"the recall curve is fitted on the groups the degree of {h!r} is built from, and "
                              f"{unsized} have no known size; add their sizes to the known sizes or use recall "
                              "'none'")
        d = d_obj.values
        positive = d > 0
        start = len(columns)
        for k in known:
            y = ard.y(k)
            if method == "mle":
                columns.extend([y, d])
            else:
                columns.extend([np.where(positive, y / np.where(positive, d, 1.0), 0.0), positive.astype(float)])
        out[label] = {"start": start, "degree": d_obj, "known": known, "sizes": [sizes[k] for k in known]}
    return out


def _fit_recall(method: str, label: str, info: dict[str, Any], point_totals: np.ndarray,
                totals: np.ndarray | None) -> RecallFit:
    known = info["known"]
    base = info["degree"].population
    start = info["start"]
    num = np.arange(start, start + 2 * len(known), 2)
    den = point_totals[num + 1]
    if np.any(den <= 0):
        raise ModelError(f"{method}: the degrees of the respondents sum to 0; no recall curve")
    estimates = base * point_totals[num] / den
    reps = None
    if totals is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            reps = base * totals[:, num] / totals[:, num + 1]
    fit = fit_recall(known, np.array(info["sizes"]), estimates, base, reps,
                     label=f"{method}: ")
    if not 1.0 + fit.slope > 0:
        raise ModelError(f"{method}: the fitted recall slope is {fit.slope:.2f}, at or below -1 (reports fall as "
                         "groups grow), so the curve cannot be inverted; use recall 'none' and check the known groups")
    return fit


def _recall_outputs(fits: dict[str, RecallFit], meta: dict[str, dict[str, Any]], uncorrected: dict[str, float],
                    method: str, level: float, tables: list[pd.DataFrame], info: dict[str, dict[str, Any]],
                    warnings: list[str]) -> None:
    """The curve table and summary of each fit, and warnings for extrapolation and a steep inverse."""
    for label, fit in fits.items():
        groups = [h for h in uncorrected if meta[h]["recall"] == label]
        corrected = {h: fit.correct(uncorrected[h]) for h in groups}
        tables.append(curve_table(fit, {h: (uncorrected[h], corrected[h]) for h in groups}, method=method,
                                  degree=label, level=level))
        info.setdefault(method, {})[label] = {**fit.summary(), "uncorrected": {h: float(uncorrected[h]) for h in groups},
                                              "corrected": corrected}
        low, high = fit.sizes.min(), fit.sizes.max()
        for h in groups:
            if not low <= corrected[h] <= high:
                warnings.append(f"{method}: the recall-corrected size of {h!r} ({corrected[h]:.4g}) lies outside the "
                                f"known groups' sizes ({low:.4g} to {high:.4g}): the curve is extrapolated there, "
                                "so the correction is an assumption, not a calibration")
        if 1.0 + fit.slope < STEEP_INVERSE:
            warnings.append(f"{method}: the recall slope is {fit.slope:.2f}, close to -1: the correction magnifies "
                            "small differences in the hidden groups' reports; check the known groups")


def _scaled(result: Estimates, method: str, fixed: Mapping[str, float] | None,
            replicates: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Point values and replicates of every quantity of ``method`` with the given factors held fixed."""
    visibility = result.extras["visibility"]
    adjust: Adjustments = visibility["adjustments"]
    sums, ratios, prevalence = visibility["derived"]
    basic = visibility["point"][method]
    groups = list(basic)
    point = {}
    for group in groups:
        means = {**adjust.for_group(group), **(fixed or {})}
        point[group] = np.array(basic[group] / math.prod(means.values()))
    point = _derive(point, sums, ratios, prevalence)
    if not replicates or method not in visibility["replicates"]:
        return point, None
    basic_reps = visibility["replicates"][method]
    size = len(next(iter(basic_reps.values())))
    if adjust.is_random(groups):
        multipliers = adjust.multipliers(groups, size, visibility["seed"], fixed=fixed)
    else:
        multipliers = {g: float(point[g] / basic[g]) for g in groups}
    reps = _derive({g: basic_reps[g] * multipliers[g] for g in groups}, sums, ratios, prevalence)
    return point, reps


def visibility_sensitivity(result: Estimates, factor: str, grid: Sequence[float],
                           quantities: Sequence[str] | None = None) -> pd.DataFrame:
    """Every estimate with ``factor`` held at each value of ``grid`` (the other factors as declared).

    Replicates are re-scaled, not re-drawn from the survey: each row's interval comes from the same bootstrap
    replicates (and the same draws of the other factors) as the main table.
    """
    if factor not in FACTORS:
        raise ConfigError(f"unknown factor {factor!r}; use one of {', '.join(FACTORS)}")
    if any(not (np.isfinite(v) and v > 0) for v in grid):
        raise ConfigError("every value of a sensitivity grid must be a positive number")
    level = result.extras["visibility"]["level"]
    alpha = 1.0 - level
    rows = []
    for method in result.extras["visibility"]["point"]:
        for value in grid:
            point, reps = _scaled(result, method, {factor: float(value)}, replicates=True)
            for quantity, estimate_value in point.items():
                if quantities is not None and quantity not in quantities:
                    continue
                row = {"factor": factor, "value": float(value), "quantity": quantity, "method": method,
                       "estimate": float(estimate_value), "lower": np.nan, "upper": np.nan, "level": level}
                if reps is not None:
                    finite = reps[quantity][np.isfinite(reps[quantity])]
                    if finite.size >= 2:
                        row["lower"], row["upper"] = (float(v) for v in np.quantile(finite, [alpha / 2,
                                                                                             1 - alpha / 2]))
                rows.append(row)
    return pd.DataFrame(rows, columns=["factor", "value", "quantity", "method", "estimate", "lower", "upper",
                                       "level"])


def break_even(result: Estimates, quantity: str, factor: str, threshold: float,
               method: str | None = None) -> dict[str, Any] | None:
    """The value of ``factor`` at which the point estimate of ``quantity`` equals ``threshold``.

    A sum of groups scales as A + B / f in the factor f (A: its groups the factor does not cover), so the
    break-even value is B / (threshold - A). Returns ``None`` when the estimate does not depend on the factor or
    never reaches the threshold; otherwise the value and, when one declaration covers every group that depends on
    the factor, the probability that declaration gives to values beyond it (the estimate would then be below
    the threshold).
    """
    method = method or next(iter(result.extras["visibility"]["point"]))
    at_one, _ = _scaled(result, method, {factor: 1.0}, replicates=False)
    at_half, _ = _scaled(result, method, {factor: 0.5}, replicates=False)
    b = float(at_half[quantity] - at_one[quantity])
    a = float(at_one[quantity]) - b
    if not b > 0 or not threshold > a:
        return None
    value = b / (threshold - a)
    adjust: Adjustments = result.extras["visibility"]["adjustments"]
    sums = result.extras["visibility"]["derived"][0]
    groups = sums.get(quantity, [quantity])
    declarations = {id(d): d for g in groups if factor in (applying := adjust.applying(g))
                    for d in [applying[factor]]}
    probability = None
    if len(declarations) == 1:
        probability = next(iter(declarations.values())).distribution.probability_above(value)
    return {"quantity": quantity, "factor": factor, "threshold": float(threshold), "value": float(value),
            "probability_beyond": probability}
