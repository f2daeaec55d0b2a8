"""The analyses of capture-history files over periods: Cormack's open-population model and the robust design.

See :mod:`hiddenpop.capture.analyses`. The robust design (which fits the closed family's models within periods)
is named through the events package's lazy exports, so an open-population fit does not import the closed
models."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from hiddenpop.capture import events
from hiddenpop.capture.events.open import open_population
from hiddenpop.capture.specs import OpenSpec, RobustSpec
from hiddenpop.data.io import read_table
from hiddenpop.errors import DataError
from hiddenpop.results import Estimates
from hiddenpop.specs import to_dict

__all__ = ["open_analysis", "robust_analysis"]


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
    result = events.robust_design(frame, periods=spec.periods, model=spec.model, count_column=count_column,
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
