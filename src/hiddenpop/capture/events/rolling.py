"""Estimators per rolling window, the prevalence series and its figures.

For every window the history counts (:mod:`hiddenpop.capture.events.occasions`) are handed to one estimator:

* any closed model of :mod:`hiddenpop.capture.closed.models` by its Rcapture name (default ``"Mth Chao (LB)"``:
  time effects plus Chao's lower-bound heterogeneity terms, Rivest & Baillargeon 2007). The interval is
  Chao's (1987) log-transformed interval ``[n + (N-n)/C, n + (N-n)C]``, which never goes below the number
  observed; ``interval="wald"`` gives ``N +- z se`` (what Study 1 published);
* ``"coverage"``: the M_th sample-coverage estimator (Chao, Lee & Jeng 1992) of
  :func:`hiddenpop.capture.lists.coverage.coverage_mth`, with a seeded parametric bootstrap per window.

Prevalence: ``per_10000 = estimate / base * 10,000`` (e.g. ``base = 5,485,000`` IPv4 addresses).

How to read the series: a lower-bound estimator (Chao) is biased *downwards* when catchability is
heterogeneous, so the series is a floor, not a central estimate; M0/Mt intervals only cover the truth when
identifiers are equally catchable; within a window the population is assumed closed, so windows much longer
than identifiers' active periods overstate the number present at any one time (they count everyone present at
some point in the window). Windows where the model cannot be fitted (no recaptures, too few identifiers) get
missing estimates and a warning rather than stopping the series.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.capture.closed.models import fit_closed, parse_model
from hiddenpop.capture.closed.single import SINGLE_MODELS, SINGLE_NAMES, frequency_row, one_inflation_partner
from hiddenpop.capture.core.histories import Histories, all_patterns
from hiddenpop.capture.core.intervals import log_transformed_ci
from hiddenpop.capture.events.occasions import (
    DEFAULT_ESTIMATOR,
    INTERVALS,
    WindowPlan,
    plan_windows,
    window_day_frequencies,
    window_pattern_counts,
)
from hiddenpop.capture.events.reader import array_batches, identifier_ranges, read_events
from hiddenpop.capture.lists.coverage import coverage_mth
from hiddenpop.distributions import two_sided_z
from hiddenpop.errors import ConfigError, HiddenpopError
from hiddenpop.outputs import atomic_write_text
from hiddenpop.parallel import even_ranges, imap_shared, map_shared, single_thread_blas, worker_limit
from hiddenpop.provenance import provenance
from hiddenpop.results import Estimates

COVERAGE_NAMES = ("coverage", "sample coverage", "mth coverage")
SERIES_COLUMNS = ["window_start", "window_end", "observed", "estimate", "se", "lower", "upper", "per_10000",
                  "model", "warnings"]
PER = 10_000


def _resolve(estimator: str) -> tuple[str, Any]:
    """The estimator's display name and what fits it: a closed-model spec, ``None`` (sample coverage) or a
    single-source model name (:func:`is_single_source`)."""
    if estimator.strip().lower() in COVERAGE_NAMES:
        return "Nhat (Mth coverage)", None
    if is_single_source(estimator):
        model = estimator.strip().lower()
        return f"{SINGLE_NAMES[model]} (days seen)", model
    try:
        spec = parse_model(estimator)
    except HiddenpopError as exc:
        raise ConfigError(f"--estimator {estimator!r}: {exc}; or use 'coverage' or a single-source estimator "
                          f"({', '.join(SINGLE_MODELS)})") from None
    return spec.name, spec


def is_single_source(estimator: str) -> bool:
    """Whether ``estimator`` names a single-source estimator, which reads each window's frequencies of days seen
    (:func:`~hiddenpop.capture.events.occasions.window_day_frequencies`) instead of its capture histories."""
    return estimator.strip().lower() in SINGLE_MODELS


def estimate_window(counts: np.ndarray, occasions: int, estimator: str = DEFAULT_ESTIMATOR, *,
                    level: float = 0.95, interval: str = "log", bootstrap: int = 200,
                    seed: int | None = 1) -> dict:
    """One window: ``counts`` indexed by history code (length 2^K, entry 0 ignored), or for a single-source
    estimator by the number of days seen (length W + 1, entry 0 ignored). Returns a series row; a one-inflated
    single-source estimator adds ``band_lower``/``band_upper``, the sizes of its two one-inflation orders."""

    name, spec = _resolve(estimator)
    counts = np.asarray(counts, dtype=np.int64)
    observed = int(counts[1:].sum())
    row = {"observed": observed, "estimate": math.nan, "se": math.nan, "lower": math.nan, "upper": math.nan,
           "model": name, "warnings": ""}
    if isinstance(spec, str) and one_inflation_partner(spec):
        row.update(band_lower=math.nan, band_upper=math.nan)
    if observed == 0:
        row["warnings"] = "no identifier observed in this window"
        return row
    try:
        if isinstance(spec, str):
            fitted = frequency_row(counts, model=spec, level=level)
            estimate, se = float(fitted["estimate"]), float(fitted["se"])
            notes = [fitted["warnings"]] if fitted.get("warnings") else []
            partner = one_inflation_partner(spec)
            if partner and math.isfinite(estimate):
                other = float(frequency_row(counts, model=partner, level=level)["estimate"])
                if math.isfinite(other):
                    row.update(band_lower=min(estimate, other), band_upper=max(estimate, other))
            if not math.isfinite(estimate):
                row["warnings"] = f"not estimable: {'; '.join(notes) or 'the fit failed'}"
                return row
        elif spec is None:
            histories = _histories(counts, occasions)
            result = coverage_mth(histories, bootstrap=bootstrap, seed=seed, level=level)
            est = result.get("population", name)
            estimate, se = float(est["estimate"]), float(est["se"])
            notes = result.warnings
        else:
            engine = "enumerate" if occasions <= 10 else "auto"
            fit = fit_closed(_histories(counts, occasions), spec, engine=engine)
            estimate, se = fit.abundance, fit.stderr
            notes = list(fit.warnings)
    except (HiddenpopError, np.linalg.LinAlgError, FloatingPointError, ValueError) as exc:
        row["warnings"] = f"not estimable: {' '.join(str(exc).split())}"
        return row
    if not (math.isfinite(estimate) and math.isfinite(se)):
        row.update(estimate=estimate if math.isfinite(estimate) else math.nan)
        notes = [*notes, "standard error not finite"]
        lower = upper = math.nan
    elif interval == "wald":
        z = two_sided_z(level)
        lower, upper = estimate - z * se, estimate + z * se
    else:
        lower, upper = log_transformed_ci(observed, estimate, se, level) if estimate > observed else (
            float(observed), float(observed))
    row.update(estimate=estimate, se=se, lower=lower, upper=upper, warnings="; ".join(notes))
    return row


def _histories(counts: np.ndarray, occasions: int) -> Histories:
    keep = counts[1:] > 0
    return Histories.from_patterns(all_patterns(occasions)[keep], counts[1:][keep])


def rolling_series(
    counts: np.ndarray,
    plan: WindowPlan,
    origin,
    *,
    estimator: str = DEFAULT_ESTIMATOR,
    base: float | None = None,
    level: float = 0.95,
    interval: str = "log",
    bootstrap: int = 200,
    seed: int | None = 1,
    audit: pd.DataFrame | None = None,
    iterate: Callable | None = None,
    workers: int | None = None,
) -> Estimates:
    """Estimate every window and return the series as :class:`Estimates`.

    ``.tables["series"]`` has exactly the columns ``window_start, window_end, observed, estimate, se, lower,
    upper, per_10000, model, warnings`` (and ``one_inflation_lower/upper`` for a one-inflated estimator);
    ``.table`` has one row per window (quantity ``"abundance"``) with the same information plus
    ``per_10000_lower/upper``; ``.tables["audit"]`` the cleaning audit when given. ``iterate(rows, total)`` wraps
    the iterator of window rows (e.g. a progress bar). From :data:`WINDOWS_PER_WORKER` windows per core the
    windows are fitted by forked processes, at most ``workers`` (default: one per core); the rows are the same.
    """
    if interval not in INTERVALS:
        raise ConfigError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if base is not None and not base > 0:
        raise ConfigError(f"--base must be a positive population size, got {base}")
    name, spec = _resolve(estimator)
    single = isinstance(spec, str)
    width = plan.window_days + 1 if single else 2**plan.occasions
    if np.ndim(counts) != 2 or np.shape(counts)[1] != width:
        raise ConfigError(f"estimator {estimator!r} needs {'days-seen frequencies' if single else 'history counts'} "
                          f"per window ({width} columns), got an array of shape {np.shape(counts)}; count them with "
                          "window_counts(..., estimator=...)")
    starts = plan.starts
    origin = pd.Timestamp(origin)
    options = {"estimator": estimator, "level": level, "interval": interval, "bootstrap": bootstrap, "seed": seed}
    rows = _window_rows(np.asarray(counts), plan.occasions, options, worker_limit(workers))
    if iterate is not None:
        rows = iterate(rows, starts.size)
    series = pd.DataFrame(list(rows))
    band = series[["band_lower", "band_upper"]] if "band_lower" in series else None
    series.insert(0, "window_start", (origin + pd.to_timedelta(starts, unit="D")).strftime("%Y-%m-%d"))
    series.insert(1, "window_end",
                  (origin + pd.to_timedelta(starts + plan.window_days - 1, unit="D")).strftime("%Y-%m-%d"))
    scale = PER / base if base else math.nan
    series["per_10000"] = series["estimate"] * scale
    series = series[SERIES_COLUMNS]
    if band is not None:
        series = series.assign(one_inflation_lower=band["band_lower"].to_numpy(),
                               one_inflation_upper=band["band_upper"].to_numpy())
    table = series.rename(columns={"model": "method"}).copy()
    table["quantity"] = "abundance"
    table["level"] = level
    table["per_10000_lower"] = series["lower"] * scale
    table["per_10000_upper"] = series["upper"] * scale
    flagged = int((series["warnings"] != "").sum())
    failed = int(series["estimate"].isna().sum())
    warnings = []
    if failed:
        warnings.append(f"{failed} of {len(series)} windows could not be estimated (see the warnings column)")
    if flagged - failed > 0:
        warnings.append(f"{flagged - failed} windows carry estimator warnings (see the warnings column)")
    notes = [
        f"{len(series)} windows of {plan.occasions} occasions x {plan.occasion_days} days, step {plan.step_days} days",
        "interval: " + ("Chao (1987) log-transformed" if interval == "log" and name != "Nhat (Mth coverage)"
                        else "Wald" if interval == "wald" else "bootstrap, log-transformed"),
    ]
    if single:
        notes.append(f"single-source counts: the number of distinct days (1 to {plan.window_days}) with a report of "
                     "each identifier in the window; days are the pipeline's unit of sighting")
    if band is not None:
        notes.append("one-inflation band per window (columns one_inflation_lower/upper): the sizes of the two "
                     "one-inflation orders, which fit the counts alike; report the band, not one end")
    if name == "Nhat (Mth coverage)" and plan.occasions <= 5:
        notes.append(
            f"sample coverage with {plan.occasions} occasions: biased upwards when catchability is homogeneous "
            "(+33% in our simulation with four occasions); compare with Mth Chao (LB)"
        )
    if "Chao" in name:
        notes.append("Chao (LB) models give a lower bound under heterogeneous catchability: read the series as a floor")
    tables = {"series": series}
    if audit is not None:
        tables["audit"] = audit
    return Estimates(
        table=table,
        settings={"estimator": name, "base": base, "level": level, "interval": interval, **plan.to_dict(),
                  "bootstrap": bootstrap if name == "Nhat (Mth coverage)" else None},
        seed=seed if name == "Nhat (Mth coverage)" else None,
        warnings=warnings,
        notes=notes,
        diagnostics={"windows": len(series), "windows_not_estimable": failed},
        tables=tables,
    )


def plot_series_png(series: pd.DataFrame, path: str | Path, *, title: str | None = None,
                    per_10000: bool = False) -> Path:
    """Line and interval band of the series (matplotlib, PNG)."""
    # matplotlib is loaded only when this runs: importing it costs start-up time
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib is loaded only when this runs: importing it costs start-up time
    import matplotlib.pyplot as plt

    x = pd.to_datetime(series["window_start"])
    scale = (series["per_10000"] / series["estimate"]).median() if per_10000 else 1.0
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.fill_between(x, series["lower"] * scale, series["upper"] * scale, alpha=0.25, label="interval")
    ax.plot(x, series["estimate"] * scale, lw=1.4, label=f"estimate ({series['model'].iloc[0]})")
    ax.plot(x, series["observed"] * scale, lw=0.9, ls="--", color="grey", label="observed identifiers")
    ax.set_xlabel("window start")
    ax.set_ylabel("per 10,000" if per_10000 else "identifiers")
    ax.set_title(title or "Rolling estimate")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_series_html(series: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Interactive Plotly figure as one self-contained HTML file (plotly.js inlined once)."""
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go

    x = series["window_start"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=series["upper"], line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=series["lower"], fill="tonexty", line={"width": 0}, name="interval",
                             fillcolor="rgba(31,119,180,0.25)"))
    fig.add_trace(go.Scatter(x=x, y=series["estimate"], name="estimate", line={"color": "rgb(31,119,180)"},
                             customdata=np.column_stack([series["window_end"], series["per_10000"]]),
                             hovertemplate="%{x} to %{customdata[0]}<br>%{y:,.0f} (%{customdata[1]:.2f} per 10,000)"))
    fig.add_trace(go.Scatter(x=x, y=series["observed"], name="observed", line={"dash": "dash", "color": "grey"}))
    fig.update_layout(title=title or "Rolling estimate", xaxis_title="window start", yaxis_title="identifiers",
                      template="plotly_white")
    path = Path(path)
    # a fixed element id (Plotly draws a random one), so the same series always gives the same file
    atomic_write_text(path, fig.to_html(include_plotlyjs=True, full_html=True, div_id="rolling-series"))
    return path


#: Windows each worker process estimates at least: ``n_windows // WINDOWS_PER_WORKER`` forked processes (at most one
#: per core) fit contiguous chunks of windows, so by two from 400 windows. Every window has its own seed
#: (``seed + w``), so the rows do not depend on the number of processes.
WINDOWS_PER_WORKER = 200
#: Chunks of windows per worker process: results come back chunk by chunk, in window order, for progress bars.
CHUNKS_PER_WORKER = 16


def _window_rows(counts: np.ndarray, occasions: int, options: dict[str, Any], limit: int):
    """Each window's series row (:func:`estimate_window`), in window order, as an iterator; many windows are fitted
    by up to ``limit`` forked processes in chunks (:data:`WINDOWS_PER_WORKER`)."""
    n = counts.shape[0]
    workers = min(limit, n // WINDOWS_PER_WORKER)
    if workers <= 1:
        with single_thread_blas():  # tiny matrices: threads only add contention
            yield from (_estimate(counts, occasions, options, w) for w in range(n))
        return
    ranges = even_ranges(n, workers * CHUNKS_PER_WORKER)
    for chunk in imap_shared(_estimate_range, (counts, occasions, options), ranges, workers=workers):
        yield from chunk


def _estimate_range(shared: tuple, bounds: tuple[int, int]) -> list[dict]:
    counts, occasions, options = shared
    with single_thread_blas():
        return [_estimate(counts, occasions, options, w) for w in range(*bounds)]


def _estimate(counts: np.ndarray, occasions: int, options: dict[str, Any], w: int) -> dict:
    """Window ``w``'s row; its seed is ``seed + w``."""
    seed = options["seed"]
    return estimate_window(counts[w], occasions, options["estimator"], level=options["level"],
                           interval=options["interval"], bootstrap=options["bootstrap"],
                           seed=None if seed is None else seed + w)


#: (identifier, day) pairs each worker process counts at least: windows are counted by ``n_pairs //
#: PAIRS_PER_WORKER`` forked processes (at most one per core; each counts the histories of a range of identifiers and
#: the counts add up), so by two from 2 million pairs. Below that, starting processes costs more than it saves.
PAIRS_PER_WORKER = 1_000_000


def window_counts(log, *, occasion: str | int = "7D", occasions: int = 4, step: str | int | None = "1D",
                  on_batch: Callable[[int], None] | None = None, batch_rows: int = 2_000_000,
                  estimator: str = DEFAULT_ESTIMATOR):
    """Plan the windows over an :class:`~hiddenpop.capture.events.reader.EventLog` and count what ``estimator``
    reads in each window: capture histories, or for a single-source estimator the frequencies of days seen.

    Pairs held in memory (``log.pair_arrays``) are split into ranges of whole identifiers, one per forked worker
    process (:data:`PAIRS_PER_WORKER`; no more processes than the log's DuckDB threads, ``--threads``); counts are
    integers summed over the ranges, the same for any number of processes.
    """

    plan = plan_windows(log.first_day, log.last_day, occasion=occasion, occasions=occasions, step=step)
    counter = window_day_frequencies if is_single_source(estimator) else window_pattern_counts
    arrays = log.pair_arrays
    limit = worker_limit(log.engine.get("threads"))
    workers = min(limit, log.n_pairs // PAIRS_PER_WORKER) if arrays is not None else 1
    if workers <= 1:
        return plan, counter(log.iter_pairs(batch_rows), plan, on_batch=on_batch)
    ranges = identifier_ranges(arrays[0], workers)
    parts = map_shared(_count_range, (counter, *arrays, plan, batch_rows), ranges, workers=len(ranges))
    if on_batch is not None:
        for start, stop in ranges:
            on_batch(stop - start)
    return plan, np.sum(parts, axis=0)


def _count_range(shared: tuple, bounds: tuple[int, int]) -> np.ndarray:
    counter, codes, days, plan, batch_rows = shared
    start, stop = bounds
    return counter(array_batches(codes[start:stop], days[start:stop], batch_rows), plan)


def report_series(
    paths,
    *,
    identifier: str,
    time: str,
    key,
    rules=None,
    occasion: str | int = "7D",
    occasions: int = 4,
    step: str | int | None = "1D",
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
    **estimation: Any,
) -> Estimates:
    """The whole pipeline in one call: read + pseudonymise + clean, count histories per window, estimate.

    ``threads``, ``memory_limit`` and ``temp_directory`` bound DuckDB (see
    :func:`hiddenpop.capture.events.reader.connect`), and the threads in effect the worker processes too; ``estimation`` holds the options of :func:`rolling_series`
    (``estimator``, ``base``, ``level``, ``interval``, ``bootstrap``, ``seed``, ``iterate``). Returns its result with
    the cleaning audit in ``.tables["audit"]`` and provenance (input SHA-256, settings, key fingerprint) filled in.
    """
    log = read_events(paths, identifier=identifier, time=time, key=key, rules=rules, threads=threads,
                      memory_limit=memory_limit, temp_directory=temp_directory)
    plan, counts = window_counts(log, occasion=occasion, occasions=occasions, step=step,
                                 estimator=estimation.get("estimator", DEFAULT_ESTIMATOR))
    result = rolling_series(counts, plan, log.origin, audit=log.audit, workers=log.engine.get("threads"),
                            **estimation)
    result.provenance = provenance(inputs=log.inputs, rules=log.rules.to_dict(),
                                   key_fingerprint=log.key_fingerprint, engine=log.engine, **result.settings)
    result.notes.extend(log.notes)
    return result
