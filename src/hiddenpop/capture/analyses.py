"""The capture-recapture analyses as every interface runs them: options declared once, one result.

Each analysis is a spec (its options, with defaults, help and bounds; declared in :mod:`hiddenpop.capture.specs`)
and a function ``analysis(data, spec) -> Estimates``. The command line and the study file build the spec from their own
syntax and call the same function, so they get the same numbers, tables and warnings.

* :func:`closed_analysis` -- the closed family in one comparison table (Rcapture's ``closedp``) with AIC and
  BIC weights, the model-averaged abundance (``tables["model_average"]``, Buckland et al. 1997), and the
  descriptive statistics f_k, u_j, v_j, n_j as ``tables["descriptive"]``.
* :func:`interval_analysis` -- the profile-likelihood interval for one model, beside the Wald and
  log-transformed intervals.
* :func:`mse_analysis` -- multiple systems estimation with a named selection procedure (:func:`mse`).
* :func:`coverage_analysis` -- the sample-coverage estimators, for overlapping lists or capture occasions.
* :func:`read_log` -- a report log read, pseudonymised and cleaned with a spec's reading options;
  :func:`events_analysis` -- its rolling-window estimates; :func:`histories_analysis` -- its capture-history
  counts per window (for ``capture open``, or with primary periods for ``capture robust``).
* :func:`robust_analysis` -- the robust design (primary periods of closed secondary occasions) on a histories
  file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from hiddenpop.capture.closed.averaging import CRITERIA, model_average
from hiddenpop.capture.closed.descriptive_stats import descriptive
from hiddenpop.capture.closed.models import closedp
from hiddenpop.capture.closed.profile import profile_ci
from hiddenpop.capture.closed.single import single_source
from hiddenpop.capture.core.histories import Histories, parse_occasions
from hiddenpop.capture.events.cleaning import CleaningRules, parse_exclusions
from hiddenpop.capture.events.occasions import (
    pattern_table,
    robust_history_counts,
    robust_history_table,
    robust_plan,
)
from hiddenpop.capture.events.open import open_population
from hiddenpop.capture.events.reader import read_events
from hiddenpop.capture.events.robust import robust_design
from hiddenpop.capture.events.rolling import rolling_series, window_counts
from hiddenpop.capture.lists.compare import compare_classes
from hiddenpop.capture.lists.coverage import coverage_mth, sample_coverage
from hiddenpop.capture.lists.models import mse
from hiddenpop.capture.lists.procedures import LATENT_CHAINS
from hiddenpop.capture.lists.strata import stratified
from hiddenpop.capture.specs import (
    ClosedSpec,
    CoverageSpec,
    EventsSpec,
    HistoriesOptions,
    HistoriesSpec,
    IntervalSpec,
    LogOptions,
    MSESpec,
    OpenSpec,
    RobustSpec,
    SingleSpec,
)
from hiddenpop.data.io import read_table
from hiddenpop.errors import ConfigError, DataError
from hiddenpop.mcmc.nuts import host_devices
from hiddenpop.provenance import provenance
from hiddenpop.results import Estimates
from hiddenpop.specs import to_dict

__all__ = ["closed_analysis", "coverage_analysis", "events_analysis", "fits_latent", "histories_analysis",
           "interval_analysis", "mse_analysis", "open_analysis", "read_histories", "read_log", "robust_analysis", "single_analysis"]

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


def fits_latent(spec: MSESpec) -> bool:
    """Whether ``spec`` fits the latent-class model (by NUTS, with JAX)."""
    headline = spec.select if spec.headline == "selected" else spec.headline
    return (spec.compare and "latent" in spec.classes) or (spec.stratum is not None and headline == "latent")


def mse_analysis(data: Any, spec: MSESpec, quiet: bool = True) -> Estimates:
    """Multiple systems estimate of ``data`` (a path, a DataFrame or list data) with ``spec``'s procedure, or
    with ``spec.compare`` every model class side by side (:func:`hiddenpop.capture.lists.compare.compare_classes`)."""
    headline = spec.select if spec.headline == "selected" else spec.headline
    if fits_latent(spec):
        host_devices(LATENT_CHAINS)
    if spec.stratum is not None:
        if spec.compare:
            raise ConfigError("--compare and --stratum cannot be combined; compare the classes on each stratum's "
                              "rows, or stratify one class (--headline)")
        result = stratified(data, spec.stratum, model=headline, count_column=spec.count_column,
                            bootstrap=spec.bootstrap, seed=spec.seed, level=spec.level,
                            latent_classes=spec.latent_classes, draws=spec.draws,
                            start_at_mode=spec.latent_start_at_mode, quiet=quiet)
        result.settings = {**to_dict(spec), **result.settings}
        return result
    if spec.compare:
        result = compare_classes(
            data, headline=headline, classes=spec.classes,
            count_column=spec.count_column, bootstrap=spec.bootstrap, seed=spec.seed, level=spec.level,
            latent_classes=spec.latent_classes, draws=spec.draws, delta=spec.delta,
            start_at_mode=spec.latent_start_at_mode, quiet=quiet)
        result.settings = {**to_dict(spec), **result.settings}
        return result
    result = mse(data, spec.select, p_threshold=spec.p_threshold, max_order=spec.max_order,
                 bootstrap=spec.bootstrap, seed=spec.seed, level=spec.level, top_models=spec.top_models,
                 count_column=spec.count_column)
    result.settings = {**to_dict(spec), **result.settings}
    return result


def coverage_analysis(data: Any, spec: CoverageSpec) -> Estimates:
    """Sample-coverage estimators of ``data`` for overlapping lists or for capture occasions (``spec.kind``)."""
    estimator = sample_coverage if spec.kind == "lists" else coverage_mth
    result = estimator(data, count_column=spec.count_column, bootstrap=spec.bootstrap, seed=spec.seed,
                       level=spec.level)
    result.settings = {**to_dict(spec), **result.settings}
    return result


def single_analysis(path: str | Path, spec: SingleSpec) -> Estimates:
    """The single-source estimators of a file with one row per unit seen (see :mod:`.closed.single`)."""
    path = Path(path)
    result = single_source(read_table(path), count_column=spec.count_column, covariates=spec.covariate,
                           models=spec.model, level=spec.level, source=path.name)
    result.settings = to_dict(spec)
    return result


def _day(value: str | None, key: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{key} {value!r}: use a date such as 2017-01-01") from None


def cleaning_rules(spec: LogOptions) -> Any:
    """The cleaning rules a spec's reading options describe."""
    return CleaningRules(country_column=spec.country_column, country=spec.country,
                         exclude=parse_exclusions(list(spec.exclude)), start=_day(spec.start, "start"),
                         end=_day(spec.end, "end"), dedupe=spec.dedupe, exclude_ipv6=spec.exclude_ipv6,
                         timezone=spec.timezone, input_timezone=spec.input_timezone, identifier_kind=spec.id_kind)


def read_log(paths: Sequence[str | Path], spec: LogOptions, *, identifier: str, time: str, key: Any,
             threads: int | None = None, memory_limit: str | None = None,
             temp_directory: str | None = None) -> Any:
    """A report log read, pseudonymised (``key``) and cleaned with the spec's reading options, its audit kept."""
    return read_events(paths, identifier=identifier, time=time, key=key, rules=cleaning_rules(spec),
                       threads=threads, memory_limit=memory_limit, temp_directory=temp_directory)


def _log_settings(log: Any, spec: LogOptions) -> dict[str, Any]:
    """The spec's values as settings, with the excluded values replaced by their labels (``column=value #1``
    and a keyed hash): a value given to --exclude may itself be an identifier and is never written."""
    return {**to_dict(spec), "exclude": log.rules.exclusion_labels()}


def _log_provenance(log: Any, settings: dict[str, Any]) -> dict[str, Any]:
    return provenance(inputs=log.inputs, rules=log.rules.to_dict(), key_fingerprint=log.key_fingerprint,
                      engine=log.engine, **settings)


def events_analysis(log: Any, spec: EventsSpec, *, iterate: Callable | None = None) -> Estimates:
    """One closed-population estimate per rolling window of ``log``: ``tables["series"]`` (the series),
    ``tables["audit"]`` (the cleaning audit), the key's warnings among the warnings."""
    plan, counts = window_counts(log, occasion=spec.occasion, occasions=spec.occasions, step=spec.step,
                                 estimator=spec.estimator)
    result = rolling_series(counts, plan, log.origin, estimator=spec.estimator, base=spec.base, level=spec.level,
                            interval=spec.interval, bootstrap=spec.bootstrap, seed=spec.seed, audit=log.audit,
                            iterate=iterate)
    result.settings = {**_log_settings(log, spec), **result.settings}
    result.diagnostics["windows"] = plan.to_dict()
    result.provenance = _log_provenance(log, result.settings)
    result.notes.extend(log.notes)
    result.warnings.extend(w for w in log.key_warnings if w not in result.warnings)
    return result


def histories_analysis(log: Any, spec: HistoriesSpec) -> Estimates:
    """Capture-history counts per window of ``log`` (``tables["histories"]``: window_start, window_end, history,
    count, zero cells included) with the cleaning audit; no estimate is made (``capture open`` makes one).

    With ``spec.periods`` (robust design) each window is ``periods`` primary periods of ``spec.occasions``
    occasions, and the table lists the histories seen with one 0/1 column per occasion (``p2_3``: period 2,
    occasion 3) and their count, for ``capture robust``."""
    if spec.periods is not None:
        plan = robust_plan(log.first_day, log.last_day, occasion=spec.occasion, occasions=spec.occasions,
                           periods=spec.periods, step=spec.step)
        table = robust_history_table(robust_history_counts(log.iter_pairs(), plan), plan, spec.periods, log.origin)
        windows = {**plan.to_dict(), "primary_periods": spec.periods, "secondary_occasions": spec.occasions}
    else:
        plan, counts = window_counts(log, occasion=spec.occasion, occasions=spec.occasions, step=spec.step)
        table = pattern_table(counts, plan, log.origin)
        windows = plan.to_dict()
    result = Estimates.tables_only({"histories": table, "audit": log.audit},
                                   settings=_log_settings(log, spec), diagnostics={"windows": windows},
                                   warnings=list(log.key_warnings), notes=list(log.notes))
    result.provenance = _log_provenance(log, result.settings)
    return result


def open_analysis(path: str | Path, spec: OpenSpec) -> Estimates:
    """Cormack's open-population model on a histories file: 0/1 period columns with a count, or the long output
    of ``capture histories`` (one window, chosen with ``spec.window`` when the file holds several)."""
    frame = read_table(path)
    count_column = spec.count_column
    if "history" in frame.columns:  # long output of `capture histories`
        frame = _from_long(frame, spec.window, Path(path).name)
        count_column = "count"
    elif count_column is None:
        candidates = [c for c in ("freq", "count", "n", "Freq", "frequency") if c in frame.columns]
        count_column = candidates[0] if candidates else None
    result = open_population(frame, count_column=count_column, capture=spec.capture,
                             constrain_negative=not spec.allow_negative, exclude=list(spec.exclude_history) or None,
                             level=spec.level, drop_unidentified=spec.drop_unidentified)
    result.settings = {**to_dict(spec), **result.settings}
    return result


def robust_analysis(path: str | Path, spec: RobustSpec) -> Estimates:
    """The robust design on a histories file: one 0/1 column per secondary occasion (period 1's first) with a
    count, or the output of ``capture histories --periods`` (one window, chosen with ``spec.window`` when the file
    holds several)."""
    frame = read_table(path)
    source = Path(path).name
    count_column = spec.count_column
    if "window_start" in frame.columns:  # output of `capture histories --periods`
        frame = _one_window(frame, spec.window, source).drop(columns=["window_start", "window_end"], errors="ignore")
        count_column = count_column or "count"
    elif count_column is None:
        candidates = [c for c in ("freq", "count", "n", "Freq", "frequency") if c in frame.columns]
        count_column = candidates[0] if candidates else None
    result = robust_design(frame, periods=spec.periods, model=spec.model, count_column=count_column,
                           constrain_negative=not spec.allow_negative, level=spec.level, source=source)
    result.settings = {**to_dict(spec), **result.settings}
    return result


def _one_window(frame: pd.DataFrame, window: str | None, file: str) -> pd.DataFrame:
    """The rows of one window of a ``capture histories`` output (the only one, or the one named ``window``)."""
    starts = frame["window_start"].astype(str).unique()
    if window is None and len(starts) > 1:
        raise DataError(f"{file}: {len(starts)} windows in the file; choose one with --window YYYY-MM-DD")
    if window is not None:
        frame = frame[frame["window_start"].astype(str) == window]
        if frame.empty:
            raise DataError(f"{file}: no rows for --window {window}")
    return frame


def _from_long(frame: pd.DataFrame, window: str | None, file: str) -> pd.DataFrame:
    """The long output of ``capture histories`` (one window) as 0/1 period columns and a count."""
    for column in ("history", "count"):
        if column not in frame.columns:
            raise DataError(f"{file}: column {column!r} not found")
    if "window_start" in frame.columns:
        frame = _one_window(frame, window, file)
    labels = frame["history"].astype(str).str.strip()
    # all 2^K - 1 histories are listed per window, so K follows from the row count (CSV readers drop leading 0s)
    width = max(round(math.log2(len(frame) + 1)), int(labels.str.len().max()))
    bits = pd.DataFrame([list(map(int, s.zfill(width))) for s in labels], columns=[f"p{j + 1}" for j in range(width)])
    bits["count"] = frame["count"].to_numpy()
    return bits
