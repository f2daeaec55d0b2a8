"""Capture histories: the one input contract for closed and open capture-recapture models.

Three input shapes are accepted, all turned into the same :class:`Histories` object:

* **individual rows** (Rcapture ``dfreq = FALSE``): one row per unit, one 0/1 column per occasion or list;
* **patterns with a count column** (Rcapture ``dfreq = TRUE``): distinct 0/1 patterns and how many units had
  each pattern (rows with count 0 are allowed and carry no information);
* **capture-count frequencies** (Rcapture ``dtype = "nbcap"``): columns ``nbcap, freq`` giving f_k, the number
  of units caught exactly k times, with the number of occasions t given separately (possibly infinite, for
  continuous-time captures). Only models that depend on k alone (M0 and the Mh family) can use this shape.

Everything downstream keys on the 0/1 pattern, never on row order: patterns are aggregated and stored sorted
by their binary code (occasion 1 is the most significant bit). The unobserved all-zero history is never
allowed in the input.

Notation used by the estimators (Otis et al. 1978; Rivest & Baillargeon 2007):

* n: number of distinct units seen;  n_j: units caught on occasion j;
* f_k: units caught exactly k times (k = 1..t);
* u_j: units caught for the first time on occasion j;  v_j: units caught for the last time on occasion j.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenpop.data.io import read_table
from hiddenpop.errors import ConfigError, DataError, ModelError, locate
from hiddenpop.special import gammaln

#: Column names recognised as the count column of a pattern table when ``count_column`` is not given.
COUNT_COLUMN_NAMES = ("freq", "count", "n", "frequency", "counts", "y")

#: Largest t for which the 2^t - 1 observable cells may be enumerated (2^20 cells = 8 MB per float column).
MAX_ENUMERATED_OCCASIONS = 20


def all_patterns(occasions: int) -> np.ndarray:
    """The 2^t - 1 observable histories as a (2^t - 1, t) uint8 array in canonical order.

    Row r (0-based) is the binary expansion of r + 1 with occasion 1 as the most significant bit, so the
    all-zero history (code 0) is excluded and ``pattern_codes`` maps a pattern to row ``code - 1``.
    """
    if occasions > MAX_ENUMERATED_OCCASIONS:
        raise ModelError(
            f"cannot enumerate 2^{occasions} - 1 capture histories; use the sufficient-statistics fit "
            "(hiddenpop.capture.closed.sufficient), which works for any number of occasions"
        )
    codes = np.arange(1, 2**occasions, dtype=np.int64)
    shifts = np.arange(occasions - 1, -1, -1, dtype=np.int64)
    return ((codes[:, None] >> shifts[None, :]) & 1).astype(np.uint8)


def pattern_codes(patterns: np.ndarray) -> np.ndarray:
    """Binary code of each 0/1 row (occasion 1 most significant); only for t <= 62."""
    t = patterns.shape[1]
    if t > 62:
        raise ModelError("pattern codes are only defined for t <= 62 occasions")
    weights = (1 << np.arange(t - 1, -1, -1, dtype=np.int64)).astype(np.int64)
    return patterns.astype(np.int64) @ weights


def _sort_patterns(patterns: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate duplicate patterns and sort lexicographically (= by binary code), dropping zero counts."""
    keep = counts > 0
    patterns, counts = patterns[keep], counts[keep]
    if len(patterns) == 0:
        return patterns, counts
    unique, inverse = np.unique(patterns, axis=0, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=counts, minlength=len(unique)).astype(np.int64)
    return unique.astype(np.uint8), summed


@dataclass(frozen=True)
class Histories:
    """Capture data in one of two forms: distinct 0/1 patterns with counts, or capture-count frequencies.

    Attributes
    ----------
    patterns:
        (m, t) uint8 array of distinct observed histories, sorted by binary code; ``None`` for frequency data.
    counts:
        (m,) int64 number of units with each pattern (all > 0); for frequency data, f_1..f_K.
    occasions:
        t, the number of occasions/lists; ``math.inf`` allowed for frequency data (continuous time).
    labels:
        occasion/list names (``c1..ct`` when none were given).
    source:
        file name the data came from (for messages), or ``None``.
    """

    patterns: np.ndarray | None
    counts: np.ndarray
    occasions: float
    labels: tuple[str, ...] = ()
    source: str | None = None
    notes: tuple[str, ...] = field(default=())

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_patterns(
        cls,
        patterns: np.ndarray | list,
        counts: np.ndarray | list | None = None,
        labels: list[str] | tuple[str, ...] | None = None,
        source: str | None = None,
        count_label: str = "count",
    ) -> Histories:
        """Histories from 0/1 rows (individuals when ``counts`` is None) and optional counts per row.

        Raises :class:`DataError` for non-0/1 cells, all-zero rows, negative or fractional counts, or fewer
        than 2 occasions. Rows are 1-based in messages.
        """
        array = np.asarray(patterns, dtype=float)
        if array.ndim != 2:
            raise DataError(f"{locate(source)}capture histories must be a 2-D table of 0/1 values")
        t = array.shape[1]
        labels = tuple(labels) if labels is not None else tuple(f"c{j + 1}" for j in range(t))
        if t < 2:
            raise DataError(f"{locate(source)}need at least 2 occasions (0/1 columns), found {t}")
        if array.shape[0] == 0:
            raise DataError(f"{locate(source)}no capture histories; the table has no data rows")
        bad = ~np.isin(array, (0.0, 1.0))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DataError(
                f"{locate(source, int(row) + 1, labels[col])}capture cells must be 0 or 1 "
                "(1 = caught on this occasion/list); recode the value"
            )
        if counts is None:
            count_array = np.ones(array.shape[0], dtype=np.int64)
        else:
            raw = np.asarray(counts, dtype=float)
            if raw.shape != (array.shape[0],):
                raise DataError(f"{locate(source)}need one count per history row")
            _check_counts(raw, source, count_label)
            count_array = raw.astype(np.int64)
        zero_rows = array.sum(axis=1) == 0
        if zero_rows.any():
            row = int(np.flatnonzero(zero_rows)[0]) + 1
            raise DataError(
                f"{locate(source, row)}all-zero capture history: a unit never caught cannot be in the data "
                "(that count is what the models estimate); remove the row"
            )
        sorted_patterns, sorted_counts = _sort_patterns(array.astype(np.uint8), count_array)
        if sorted_counts.sum() == 0:
            raise DataError(f"{locate(source)}all counts are zero; no unit was observed")
        return cls(sorted_patterns, sorted_counts, t, labels, source)

    @classmethod
    def from_frequencies(
        cls,
        frequencies: np.ndarray | list,
        occasions: float,
        nbcap: np.ndarray | list | None = None,
        source: str | None = None,
        count_label: str = "freq",
        nbcap_label: str = "nbcap",
    ) -> Histories:
        """Capture-count frequency data: f_k units caught exactly k times (k = ``nbcap``, default 1..K).

        ``occasions`` is t (an int >= 2 or ``math.inf``). k must be a positive integer <= t and appear once.
        ``count_label`` / ``nbcap_label`` are the file's column names, used in error messages.
        """
        t = parse_occasions(occasions, source)
        freq = np.asarray(frequencies, dtype=float)
        ks = np.arange(1, len(freq) + 1, dtype=float) if nbcap is None else np.asarray(nbcap, dtype=float)
        if ks.shape != freq.shape or freq.ndim != 1:
            raise DataError(f"{locate(source)}need one frequency per capture count")
        for i, k in enumerate(ks):
            if not np.isfinite(k) or k != round(k) or k < 1:
                raise DataError(
                    f"{locate(source, i + 1, nbcap_label)}capture counts must be whole numbers >= 1 "
                    "(the all-zero history is never observed)"
                )
            if k > t:
                raise DataError(f"{locate(source, i + 1, nbcap_label)}capture count exceeds the {t} occasions")
        _check_counts(freq, source, count_label)
        if len(set(ks.tolist())) != len(ks):
            dup = int(np.flatnonzero(pd.Series(ks).duplicated().to_numpy())[0]) + 1
            raise DataError(f"{locate(source, dup, nbcap_label)}capture count listed twice; give each k once")
        size = int(ks.max()) if len(ks) else 0
        if math.isfinite(t):
            size = int(t)
        f = np.zeros(size, dtype=np.int64)
        f[ks.astype(int) - 1] = freq.astype(np.int64)
        if f.sum() == 0:
            raise DataError(f"{locate(source)}all frequencies are zero; no unit was observed")
        if not math.isfinite(t):
            last = int(np.flatnonzero(f)[-1]) + 1
            f = f[:last]
        return cls(None, f, t, (), source)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        count_column: str | None = None,
        occasions: float | None = None,
        source: str | None = None,
    ) -> Histories:
        """Detect the shape of ``frame`` (individual rows, patterns + count, or ``nbcap, freq``) and read it."""
        columns = [str(c) for c in frame.columns]
        lower = {c.lower(): c for c in columns}
        if "nbcap" in lower:
            freq_col = count_column or next((lower[c] for c in COUNT_COLUMN_NAMES if c in lower), None)
            if freq_col is None or freq_col not in columns:
                raise DataError(f"{locate(source)}capture-count data need a 'freq' column next to 'nbcap'")
            if occasions is None:
                raise ConfigError(
                    f"{locate(source)}capture-count (nbcap) data need the number of occasions: "
                    "give --occasions T (or inf for continuous time)"
                )
            nb = _numeric_column(frame, lower["nbcap"], source)
            fr = _numeric_column(frame, freq_col, source)
            return cls.from_frequencies(
                fr, occasions, nbcap=nb, source=source, count_label=freq_col, nbcap_label=lower["nbcap"]
            )
        if count_column is not None and count_column not in columns:
            raise ConfigError(f"{locate(source)}count column {count_column!r} not found; columns are {columns}")
        if count_column is None:
            guessed = [lower[c] for c in COUNT_COLUMN_NAMES if c in lower]
            # a guessed count column must not itself be a 0/1 occasion column (e.g. a list called "n")
            if guessed and guessed[0] == columns[-1]:
                values = pd.to_numeric(frame[guessed[0]], errors="coerce")
                if not values.isin([0, 1]).all():
                    count_column = guessed[0]
        occasion_cols = [c for c in columns if c != count_column]
        patterns = np.empty((len(frame), len(occasion_cols)))
        for j, col in enumerate(occasion_cols):
            patterns[:, j] = _numeric_column(frame, col, source)
        counts = None if count_column is None else _numeric_column(frame, count_column, source)
        if occasions is not None and float(occasions) != len(occasion_cols):
            raise ConfigError(
                f"{locate(source)}--occasions {occasions} given but the file has {len(occasion_cols)} 0/1 columns"
            )
        return cls.from_patterns(
            patterns, counts, labels=occasion_cols, source=source, count_label=count_column or "count"
        )

    @classmethod
    def from_file(cls, path: str | Path, count_column: str | None = None, occasions: float | None = None) -> Histories:
        """Read any supported table file (see :func:`hiddenpop.data.io.read_table`) and detect its shape."""

        frame = read_table(path)
        return cls.from_frame(frame, count_column=count_column, occasions=occasions, source=Path(path).name)

    # ------------------------------------------------------------------ basic statistics
    @property
    def is_frequency_only(self) -> bool:
        """True for capture-count (nbcap) data: occasion-specific models cannot be fitted."""
        return self.patterns is None

    @property
    def t(self) -> float:
        return self.occasions

    @property
    def observed(self) -> int:
        """n, the number of distinct units seen."""
        return int(self.counts.sum())

    def frequencies(self) -> np.ndarray:
        """f_k for k = 1..t (k = 1..max observed when t is infinite), as int64."""
        if self.patterns is None:
            return self.counts.copy()
        k = self.patterns.sum(axis=1).astype(np.int64)
        return np.bincount(k, weights=self.counts, minlength=int(self.occasions) + 1)[1:].astype(np.int64)

    def _require_patterns(self, what: str) -> np.ndarray:
        if self.patterns is None:
            raise ModelError(
                f"{what} needs the capture histories; capture-count (nbcap) data only support M0 and Mh models"
            )
        return self.patterns

    def occasion_totals(self) -> np.ndarray:
        """n_j, units caught on occasion j."""
        p = self._require_patterns("occasion totals")
        return (p.astype(np.int64) * self.counts[:, None]).sum(axis=0)

    def first_captures(self) -> np.ndarray:
        """u_j, units caught for the first time on occasion j."""
        p = self._require_patterns("first captures")
        first = p.argmax(axis=1)
        return np.bincount(first, weights=self.counts, minlength=p.shape[1]).astype(np.int64)

    def last_captures(self) -> np.ndarray:
        """v_j, units caught for the last time on occasion j."""
        p = self._require_patterns("last captures")
        last = p.shape[1] - 1 - p[:, ::-1].argmax(axis=1)
        return np.bincount(last, weights=self.counts, minlength=p.shape[1]).astype(np.int64)

    def capture_counts(self) -> np.ndarray:
        """k(omega) for each stored pattern."""
        return self._require_patterns("capture counts").sum(axis=1).astype(np.int64)

    def cell_counts(self) -> np.ndarray:
        """Y over all 2^t - 1 observable cells in :func:`all_patterns` order (zeros included)."""
        p = self._require_patterns("the full table of histories")
        t = p.shape[1]
        if t > MAX_ENUMERATED_OCCASIONS:
            all_patterns(t)  # raises the explanatory ModelError
        y = np.zeros(2**t - 1, dtype=np.int64)
        y[pattern_codes(p) - 1] = self.counts
        return y

    def log_factorial_sum(self) -> float:
        """sum over observed patterns of log(Y_omega!) (the constant in R's Poisson AIC)."""

        return float(gammaln(self.counts + 1.0).sum())

    def ylogy_sum(self) -> float:
        """sum over observed patterns of Y log Y (enters the Poisson deviance)."""
        y = self.counts.astype(float)
        return float((y * np.log(y)).sum())

    def select(self, occasions: list[int]) -> Histories:
        """The histories restricted to a subset of occasions (units never caught on them are dropped)."""
        p = self._require_patterns("selecting occasions")
        sub = p[:, occasions]
        keep = sub.sum(axis=1) > 0
        labels = tuple(self.labels[j] for j in occasions)
        return Histories.from_patterns(sub[keep], self.counts[keep], labels=labels, source=self.source)

    def to_frame(self) -> pd.DataFrame:
        """Patterns with a ``freq`` column (or ``nbcap, freq`` for frequency data)."""
        if self.patterns is None:
            k = np.arange(1, len(self.counts) + 1)
            keep = self.counts > 0
            return pd.DataFrame({"nbcap": k[keep], "freq": self.counts[keep]})
        frame = pd.DataFrame(self.patterns.astype(int), columns=list(self.labels))
        frame["freq"] = self.counts
        return frame


def parse_occasions(occasions: float | str, source: str | None = None) -> float:
    """The number of occasions t from a number or text: a whole number >= 2, or infinity ("inf")."""
    if isinstance(occasions, str):
        text = occasions.strip().lower()
        if text in ("inf", "infinity", "infinite"):
            return math.inf
        try:
            occasions = float(text)
        except ValueError:
            raise ConfigError(f"{locate(source)}occasions must be a whole number >= 2 or 'inf', got {text!r}") from None
    value = float(occasions)
    if math.isinf(value) and value > 0:
        return math.inf
    if not math.isfinite(value) or value != round(value) or value < 2:
        raise ConfigError(f"{locate(source)}occasions must be a whole number >= 2 or 'inf'")
    return int(value)


#: Counts above this are not exact in floating point (2^53), and none is plausible for people or addresses.
MAX_COUNT = 2**53


def _check_counts(values: np.ndarray, source: str | None, column: str) -> None:
    for i, v in enumerate(values):
        if np.isfinite(v) and v > MAX_COUNT:
            raise DataError(f"{locate(source, i + 1, column)}count too large to be exact (above 2^53); correct the "
                            f"'{column}' value")
        if not np.isfinite(v):
            raise DataError(f"{locate(source, i + 1, column)}count is missing; enter 0 in '{column}' or remove the row")
        if v < 0:
            raise DataError(f"{locate(source, i + 1, column)}counts cannot be negative; correct the '{column}' value")
        if v != round(v):
            raise DataError(f"{locate(source, i + 1, column)}counts must be whole numbers; correct the '{column}' value")


def _numeric_column(frame: pd.DataFrame, column: str, source: str | None) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise DataError(f"{locate(source, row, column)}not a number; capture data must be numeric")
    missing = frame[column].isna()
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0]) + 1
        raise DataError(f"{locate(source, row, column)}missing value; fill it in (0 or 1, or a count)")
    return values.to_numpy(dtype=float)
