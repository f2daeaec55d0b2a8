"""Capture occasions and rolling windows: pattern counts per window from (identifier, day) pairs.

A window starting on day ``s`` consists of ``K`` consecutive occasions of ``L`` days; occasion ``j`` (0-based)
covers days ``[s + jL, s + (j+1)L)``. An identifier's capture history in the window has bit ``j`` set when it
was reported on any day of occasion ``j``. Histories are coded as binary numbers with occasion 1 as the most
significant digit (``"1010"``: seen in occasions 1 and 3), the convention of :mod:`hiddenpop.capture.core.histories`.

Algorithm (no row per identifier per window is ever built)
    For one identifier, let ``a(t) = 1`` when it was reported on some day of ``[t, t + L)``. Then bit ``j`` of
    its history in window ``s`` is ``a(s + jL)``. ``a`` is a union of day intervals ("runs"): a report on day
    ``d`` switches ``a`` on for ``t in [d - L + 1, d]``, and reports at most ``L`` days apart merge into one run.
    So, as ``s`` moves, bit ``j`` switches on at ``first - (j+1)L + 1`` and off at ``last - jL + 1`` for every run
    ``[first, last]``. These 2K switch events per run are sorted by (identifier, s) (they are 2K already-sorted
    sequences, merged by a stable sort), and a running sum of ``+-2^(K-1-j)`` gives the identifier's history
    just after each event. Each event moves one identifier from the history before it to the history after it
    at window start ``s``: adding ``+1`` and ``-1`` to a (history x window-start) difference array and taking a
    cumulative sum over ``s`` gives the number of identifiers with each history in every window. The cost is
    proportional to the number of runs (at most the number of (identifier, day) pairs) times 2K, whatever the
    number of windows; batches of identifiers keep memory bounded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hiddenpop.errors import ConfigError

MAX_OCCASIONS = 16
#: How each window is estimated by default, and the interval forms of a window's estimate.
DEFAULT_ESTIMATOR = "Mth Chao (LB)"
INTERVALS = ("log", "wald")
#: Capture-probability forms of the open-population model: unconstrained or equal.
OPEN_CAPTURE = ("up", "ep")


#: Most secondary occasions in one primary period of the robust design (its 2^t - 1 sub-histories are enumerated).
MAX_SECONDARY = 16
#: Most occasions of a robust design in all (a history is coded as one 64-bit integer).
MAX_TOTAL_OCCASIONS = 62


def parse_periods(text: str | Sequence[int]) -> tuple[int, ...]:
    """Secondary occasions per primary period of a robust design: ``"5,5,5"`` (or a sequence) -> (5, 5, 5).

    Raises :class:`ConfigError` (without repeating the text) unless there are at least 2 periods of 2 to
    :data:`MAX_SECONDARY` occasions and at most :data:`MAX_TOTAL_OCCASIONS` occasions in all.
    """
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        if not all(p.isdigit() for p in parts):
            raise ConfigError("periods: give the secondary occasions of each primary period as whole numbers "
                              "separated by commas, e.g. 5,5,5")
        values = tuple(int(p) for p in parts)
    else:
        values = tuple(int(v) for v in text)
    if len(values) < 2:
        raise ConfigError("periods: the robust design needs at least 2 primary periods, e.g. 5,5,5")
    if any(v < 2 or v > MAX_SECONDARY for v in values):
        raise ConfigError(f"periods: each primary period needs between 2 and {MAX_SECONDARY} secondary occasions")
    if sum(values) > MAX_TOTAL_OCCASIONS:
        raise ConfigError(f"periods: at most {MAX_TOTAL_OCCASIONS} occasions in all")
    return values


def parse_days(text: str | int, option: str = "--occasion") -> int:
    """``"7D"`` -> 7, ``"4W"`` -> 28, ``"28"`` -> 28 (days; months are not fixed-length and are refused)."""
    if isinstance(text, (int, np.integer)):
        value = int(text)
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([dDwW]?)\s*", str(text))
        if not match:
            raise ConfigError(f"{option} {text!r}: give a number of days or weeks such as 7D, 28D or 4W")
        value = int(match.group(1)) * (7 if match.group(2).lower() == "w" else 1)
    if value < 1:
        raise ConfigError(f"{option} must be at least one day, got {text!r}")
    return value


@dataclass(frozen=True)
class WindowPlan:
    """Rolling windows: ``occasions`` occasions of ``occasion_days`` days, window starts every ``step_days``.

    ``starts`` are day numbers (relative to the event log's origin) of every complete window inside
    ``[first_day, last_day]``.
    """

    occasion_days: int
    occasions: int
    step_days: int
    first_day: int
    last_day: int

    @property
    def window_days(self) -> int:
        return self.occasion_days * self.occasions

    @property
    def starts(self) -> np.ndarray:
        last_start = self.last_day - self.window_days + 1
        if last_start < self.first_day:
            return np.empty(0, dtype=np.int64)
        return np.arange(self.first_day, last_start + 1, self.step_days, dtype=np.int64)

    @property
    def n_windows(self) -> int:
        return int(self.starts.size)

    def to_dict(self) -> dict:
        return {"occasion_days": self.occasion_days, "occasions": self.occasions, "step_days": self.step_days,
                "window_days": self.window_days, "n_windows": self.n_windows}


def plan_windows(first_day: int, last_day: int, *, occasion: str | int = "7D", occasions: int = 4,
                 step: str | int | None = "1D") -> WindowPlan:
    """Windows of ``occasions`` x ``occasion`` days from ``first_day`` every ``step`` (default one day).

    ``step=None`` (or ``"none"``) gives back-to-back (non-overlapping) windows.
    """
    occasion_days = parse_days(occasion, "--occasion")
    if not 2 <= int(occasions) <= MAX_OCCASIONS:
        raise ConfigError(f"--occasions must be between 2 and {MAX_OCCASIONS}, got {occasions}")
    if isinstance(step, str) and step.strip().lower() in ("none", "window"):
        step = None
    step_days = occasion_days * int(occasions) if step is None else parse_days(step, "--step")
    plan = WindowPlan(occasion_days, int(occasions), step_days, int(first_day), int(last_day))
    if plan.n_windows == 0:
        raise ConfigError(
            f"the date range has {last_day - first_day + 1} days, fewer than one window of {plan.window_days} days "
            f"({occasions} occasions of {occasion_days} days); widen --start/--end or shorten the occasions"
        )
    return plan


def history_labels(occasions: int) -> list[str]:
    """Labels of codes 0..2^K-1 (``format(code, '0Kb')``; occasion 1 first)."""
    return [format(code, f"0{occasions}b") for code in range(2**occasions)]


def _span_bits(s_lo: int, s_hi: int) -> int:
    return max(int(s_hi - s_lo + 2 - 1).bit_length(), 1)


def _run_templates(length: int, k: int) -> tuple[np.ndarray, ...]:
    """History transitions of an identifier with a single run ``[first, last]`` and no other report nearby.

    For run length ``r = last - first`` the 2K switch events occur in an order that depends on ``r`` only up
    to ``r = (K-1)L``; positions are ``first - (j+1)L + 1`` (bit j on) and ``last - jL + 1`` (bit j off).
    Returns arrays indexed [min(r, (K-1)L), event]: anchor (0 = first, 1 = last), offset, before, after.
    """
    cap = (k - 1) * length
    n_events = 2 * k
    anchor = np.zeros((cap + 1, n_events), dtype=np.int64)
    offset = np.zeros_like(anchor)
    before = np.zeros_like(anchor)
    after = np.zeros_like(anchor)
    for r in range(cap + 1):
        events = []
        for j in range(k):
            bit = 1 << (k - 1 - j)
            events.append((-(j + 1) * length + 1, 0, -(j + 1) * length + 1, bit))
            events.append((r - j * length + 1, 1, -j * length + 1, -bit))
        events.sort(key=lambda e: e[0])
        state = 0
        for e, (_pos, anc, off, delta) in enumerate(events):
            anchor[r, e], offset[r, e], before[r, e] = anc, off, state
            state += delta
            after[r, e] = state
    return anchor, offset, before, after


def _accumulate_isolated(first, last, plan: WindowPlan, s_lo: int, s_hi: int, diff: np.ndarray,
                         templates: tuple[np.ndarray, ...]) -> None:
    """Runs with no other report of the same identifier within one window length: no sorting needed.

    Such runs are first counted in a (run length, first day) histogram; each template event then shifts a
    histogram row into the difference array, so the work grows with the number of distinct run lengths,
    not with the number of runs.
    """
    if first.size == 0:
        return
    anchor, offset, before, after = templates
    length = last - first
    f_min = int(first.min())
    width = int(first.max()) - f_min + 1
    histogram = np.bincount(length * width + (first - f_min))
    histogram = np.pad(histogram, (0, (-histogram.size) % width)).reshape(-1, width)
    columns = diff.shape[1]
    base = np.arange(width, dtype=np.int64) + f_min
    for r in np.flatnonzero(histogram.any(axis=1)):
        row = histogram[r].astype(float)
        index = min(int(r), anchor.shape[0] - 1)
        for e in range(anchor.shape[1]):
            position = base + offset[index, e] + (r if anchor[index, e] == 1 else 0)
            np.clip(position, s_lo, s_hi + 1, out=position)
            moved = np.bincount(position - s_lo, weights=row, minlength=columns).astype(np.int64)
            diff[after[index, e]] += moved
            diff[before[index, e]] -= moved


def _accumulate(codes: np.ndarray, days: np.ndarray, plan: WindowPlan, s_lo: int, s_hi: int,
                diff: np.ndarray, templates: tuple[np.ndarray, ...] | None = None) -> None:
    """Add one batch of sorted (code, day) pairs to the (history x window start) difference array.

    Runs far from any other run of the same identifier (no window can contain both) use precomputed
    transition templates; the rest are merged by one stable sort of int64 keys packing (identifier, window
    start, event type). ``diff`` has shape (2^K, 2^span_bits).
    """
    n = codes.size
    if n == 0:
        return
    length, k = plan.occasion_days, plan.occasions
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    np.logical_or(codes[1:] != codes[:-1], (days[1:] - days[:-1]) > length, out=new_run[1:])
    run_start = np.flatnonzero(new_run)
    run_end = np.empty_like(run_start)
    run_end[:-1] = run_start[1:] - 1
    run_end[-1] = n - 1
    first = days[run_start]
    last = days[run_end]
    owner = codes[run_start]
    del run_start, run_end, new_run
    if templates is not None:
        window = plan.window_days
        isolated = np.ones(first.size, dtype=bool)
        close = (owner[1:] == owner[:-1]) & ((first[1:] - last[:-1]) < window)
        isolated[1:] &= ~close
        isolated[:-1] &= ~close
        _accumulate_isolated(first[isolated], last[isolated], plan, s_lo, s_hi, diff, templates)
        keep = ~isolated
        first, last, owner = first[keep], last[keep], owner[keep]
        if first.size == 0:
            return
    span_bits = _span_bits(s_lo, s_hi)
    event_bits = 5  # event type: 2j (switch on) or 2j + 1 (switch off), j < 16
    keys = []
    for j in range(k):
        on = first - (j + 1) * length + 1
        off = last - j * length + 1
        inside = (off > s_lo) & (on <= s_hi)
        if not inside.any():
            continue
        base = owner[inside] << (span_bits + event_bits)
        on = (np.maximum(on[inside], s_lo) - s_lo) << event_bits
        off = (np.minimum(off[inside], s_hi + 1) - s_lo) << event_bits
        keys += [base | on | (2 * j), base | off | (2 * j + 1)]
    if not keys:
        return
    key = np.concatenate(keys)
    key.sort(kind="stable")
    lut = np.zeros(1 << event_bits, dtype=np.int64)
    for j in range(k):
        lut[2 * j] = 1 << (k - 1 - j)
        lut[2 * j + 1] = -(1 << (k - 1 - j))
    delta = lut[key & ((1 << event_bits) - 1)]
    after = np.cumsum(delta)
    s = (key >> event_bits) & ((1 << span_bits) - 1)
    del key
    before = after - delta
    del delta
    _move(diff, after, before, s, span_bits)


def _move(diff: np.ndarray, after: np.ndarray, before: np.ndarray, position: np.ndarray, span_bits: int) -> None:
    """Each event moves one identifier from state ``before`` to state ``after`` at window start ``position``: +1
    and -1 in the (state x window start) difference array. ``after`` and ``before`` are reused as scratch."""
    cells = diff.size
    after <<= span_bits
    after |= position
    diff += np.bincount(after, minlength=cells).reshape(diff.shape)
    before <<= span_bits
    before |= position
    diff -= np.bincount(before, minlength=cells).reshape(diff.shape)


def _sweep(pairs: Iterable[tuple[np.ndarray, np.ndarray]], plan: WindowPlan, states: int,
           accumulate: Callable[..., None], on_batch: Callable[[int], None] | None) -> np.ndarray:
    """Run ``accumulate(codes, days, s_lo, s_hi, diff)`` over every batch of pairs and read the (window x state)
    counts off the cumulative difference array (state 0, identifiers absent, is set to 0)."""
    starts = plan.starts
    s_lo, s_hi = int(starts[0]), int(starts[-1])
    diff = np.zeros((states, 1 << _span_bits(s_lo, s_hi)), dtype=np.int64)
    for codes, days in pairs:
        accumulate(np.asarray(codes, dtype=np.int64), np.asarray(days, dtype=np.int64), s_lo, s_hi, diff)
        if on_batch is not None:
            on_batch(int(codes.size))
    counts = np.cumsum(diff, axis=1)[:, starts - s_lo].T.copy()
    counts[:, 0] = 0
    return counts


def window_pattern_counts(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    plan: WindowPlan,
    *,
    on_batch: Callable[[int], None] | None = None,
    use_templates: bool = True,
) -> np.ndarray:
    """History counts per window: array (n_windows, 2^K), column = history code (column 0 is unused, 0).

    ``pairs`` yields batches of (identifier code, day) arrays sorted by code then day, distinct, with no
    identifier split across batches (:meth:`hiddenpop.capture.events.reader.EventLog.iter_pairs`).
    """
    templates = _run_templates(plan.occasion_days, plan.occasions) if use_templates else None
    return _sweep(pairs, plan, 2**plan.occasions,
                  lambda codes, days, s_lo, s_hi, diff: _accumulate(codes, days, plan, s_lo, s_hi, diff, templates),
                  on_batch)


def _accumulate_days(codes: np.ndarray, days: np.ndarray, window: int, s_lo: int, s_hi: int,
                     diff: np.ndarray) -> None:
    """Add one batch of sorted, distinct (code, day) pairs to the (days seen x window start) difference array.

    As the window start ``s`` moves, a report on day ``d`` enters the window at ``s = d - W + 1`` and leaves it at
    ``s = d + 1``; a running sum of +-1 over one identifier's events sorted by position is its number of days seen
    just after each event, and each event moves the identifier from one count to the next at that window start
    (the same difference-array scheme as :func:`_accumulate`, with counts in place of histories).
    """
    if codes.size == 0:
        return
    # reports in no window are left out; at one position leaves sort before entries (type bit 0 before 1), so the
    # running count never leaves [0, W] even where the first and last positions are clipped
    inside = (days >= s_lo) & (days - window + 1 <= s_hi)
    codes, days = codes[inside], days[inside]
    span_bits = _span_bits(s_lo, s_hi)
    enter = np.maximum(days - window + 1, s_lo) - s_lo
    leave = np.minimum(days + 1, s_hi + 1) - s_lo
    base = codes << (span_bits + 1)
    key = np.concatenate([base | (enter << 1) | 1, base | (leave << 1)])
    del enter, leave, base
    key.sort()
    delta = 2 * (key & 1) - 1
    after = np.cumsum(delta)  # each identifier's events sum to zero, so the running sum restarts at every identifier
    before = after - delta
    del delta
    position = (key >> 1) & ((1 << span_bits) - 1)
    del key
    _move(diff, after, before, position, span_bits)


def window_day_frequencies(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    plan: WindowPlan,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """How many identifiers were reported on exactly c distinct days of each window: array (n_windows, W + 1),
    column c = days seen (column 0 is unused, 0), W = the window's length in days. The input of the single-source
    estimators per window; ``pairs`` as for :func:`window_pattern_counts`."""
    window = plan.window_days
    return _sweep(pairs, plan, window + 1,
                  lambda codes, days, s_lo, s_hi, diff: _accumulate_days(codes, days, window, s_lo, s_hi, diff),
                  on_batch)


def day_frequencies_naive(codes: np.ndarray, days: np.ndarray, plan: WindowPlan) -> np.ndarray:
    """Reference implementation of :func:`window_day_frequencies`; for tests on small data only."""
    starts = plan.starts
    out = np.zeros((starts.size, plan.window_days + 1), dtype=np.int64)
    for w, s in enumerate(starts):
        inside = (days >= s) & (days < s + plan.window_days)
        seen = pd.Series(days[inside]).groupby(codes[inside]).nunique().to_numpy()
        out[w] += np.bincount(seen, minlength=plan.window_days + 1)
    out[:, 0] = 0
    return out


def pattern_counts_naive(codes: np.ndarray, days: np.ndarray, plan: WindowPlan) -> np.ndarray:
    """Reference implementation (one row per identifier per window); for tests on small data only."""
    starts = plan.starts
    out = np.zeros((starts.size, 2**plan.occasions), dtype=np.int64)
    for w, s in enumerate(starts):
        inside = (days >= s) & (days < s + plan.window_days)
        if not inside.any():
            continue
        occasion = (days[inside] - s) // plan.occasion_days
        bits = 1 << (plan.occasions - 1 - occasion)
        frame = pd.DataFrame({"code": codes[inside], "bits": bits})
        history = frame.groupby("code")["bits"].agg(lambda b: np.bitwise_or.reduce(np.unique(b)))
        out[w] += np.bincount(history.to_numpy(), minlength=2**plan.occasions)
    out[:, 0] = 0
    return out


def pattern_table(counts: np.ndarray, plan: WindowPlan, origin) -> pd.DataFrame:
    """Tidy long table: window_start, window_end, history, count (zero cells included, all 2^K - 1 histories)."""
    starts = plan.starts
    labels = history_labels(plan.occasions)
    origin = pd.Timestamp(origin)
    start_dates = (origin + pd.to_timedelta(starts, unit="D")).strftime("%Y-%m-%d")
    end_dates = (origin + pd.to_timedelta(starts + plan.window_days - 1, unit="D")).strftime("%Y-%m-%d")
    n_hist = 2**plan.occasions - 1
    codes = np.arange(2**plan.occasions - 1, 0, -1)
    return pd.DataFrame({
        "window_start": np.repeat(np.asarray(start_dates), n_hist),
        "window_end": np.repeat(np.asarray(end_dates), n_hist),
        "history": np.tile(np.asarray([labels[c] for c in codes]), starts.size),
        "count": counts[:, codes].ravel(),
    })


def robust_plan(first_day: int, last_day: int, *, occasion: str | int = "1D", occasions: int = 7, periods: int = 4,
                step: str | int | None = None) -> WindowPlan:
    """Robust-design windows: ``periods`` primary periods of ``occasions`` secondary occasions of ``occasion`` days
    (``"1D"``, 7, 4: four weeks of daily occasions), one window after another unless ``step`` is given.

    The plan's ``occasions`` is the total ``periods * occasions``; the primary period of occasion ``j`` (0-based) is
    ``j // occasions``.
    """
    occasion_days = parse_days(occasion, "--occasion")
    parse_periods([int(occasions)] * int(periods))
    total = int(occasions) * int(periods)
    if isinstance(step, str) and step.strip().lower() in ("none", "window"):
        step = None
    step_days = occasion_days * total if step is None else parse_days(step, "--step")
    plan = WindowPlan(occasion_days, total, step_days, int(first_day), int(last_day))
    if plan.n_windows == 0:
        raise ConfigError(
            f"the date range has {last_day - first_day + 1} days, fewer than one window of {plan.window_days} days "
            f"({periods} primary periods of {occasions} occasions of {occasion_days} days); widen --start/--end or "
            "use fewer or shorter periods"
        )
    return plan


def robust_history_counts(pairs: Iterable[tuple[np.ndarray, np.ndarray]],
                          plan: WindowPlan) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per window of ``plan``: the distinct capture histories seen (codes, occasion 1 most significant) and their
    counts, from (identifier code, day) batches sorted by code then day, no identifier split across batches.

    Only histories that occur are listed: with tens of occasions the 2^T - 1 possible histories cannot be.
    """
    starts = plan.starts
    found: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in starts]
    top = plan.occasions - 1
    for codes, days in pairs:
        codes = np.asarray(codes, dtype=np.int64)
        days = np.asarray(days, dtype=np.int64)
        for w, start in enumerate(starts):
            inside = (days >= start) & (days < start + plan.window_days)
            if not inside.any():
                continue
            owner = codes[inside]
            bits = np.left_shift(np.int64(1), top - (days[inside] - start) // plan.occasion_days)
            first = np.flatnonzero(np.concatenate([[True], owner[1:] != owner[:-1]]))
            histories = np.bitwise_or.reduceat(bits, first)
            values, counts = np.unique(histories, return_counts=True)
            found[w].append((values, counts))
    out = []
    for pieces in found:
        if not pieces:
            out.append((np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)))
            continue
        values = np.concatenate([v for v, _ in pieces])
        counts = np.concatenate([c for _, c in pieces])
        unique, inverse = np.unique(values, return_inverse=True)
        out.append((unique, np.bincount(inverse, weights=counts).astype(np.int64)))
    return out


def robust_history_table(found: list[tuple[np.ndarray, np.ndarray]], plan: WindowPlan, periods: int,
                         origin) -> pd.DataFrame:
    """Tidy table for ``capture robust``: window_start, window_end, one 0/1 column per occasion named
    ``p{period}_{occasion}`` (``p2_3``: third occasion of the second primary period), count; observed histories only,
    most frequent first within a window (ties by history)."""
    per_period = plan.occasions // periods
    names = [f"p{i + 1}_{j + 1}" for i in range(periods) for j in range(per_period)]
    origin = pd.Timestamp(origin)
    frames = []
    shifts = np.arange(plan.occasions - 1, -1, -1, dtype=np.int64)
    for start, (codes, counts) in zip(plan.starts, found, strict=True):
        order = np.lexsort((codes, -counts))
        codes, counts = codes[order], counts[order]
        bits = ((codes[:, None] >> shifts[None, :]) & 1).astype(np.int8)
        frame = pd.DataFrame(bits, columns=names)
        frame.insert(0, "window_start", (origin + pd.Timedelta(days=int(start))).strftime("%Y-%m-%d"))
        frame.insert(1, "window_end", (origin + pd.Timedelta(days=int(start) + plan.window_days - 1)).strftime(
            "%Y-%m-%d"))
        frame["count"] = counts
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
