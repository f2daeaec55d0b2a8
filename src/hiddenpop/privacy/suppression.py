"""Small-cell suppression of published tables.

:func:`suppress_small_cells` blanks counts below a threshold (default 5) in published tables and marks them, so a
reader cannot single out a respondent, a victim or a case; with ``complementary=True`` a column with a single
hidden cell gets a second one hidden, so a hidden cell cannot be recovered from a published column total.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

DEFAULT_SUPPRESSION_THRESHOLD = 5


def suppress_small_cells(
    table: pd.DataFrame,
    count_columns: Iterable[str],
    threshold: int = DEFAULT_SUPPRESSION_THRESHOLD,
    *,
    dependent_columns: dict[str, Iterable[str]] | None = None,
    complementary: bool = False,
) -> tuple[pd.DataFrame, int]:
    """Blank counts in ``count_columns`` that are >0 and below ``threshold``.

    ``dependent_columns`` maps a count column to columns derived from it (shares, means, intervals) that must be
    blanked in the same rows. With ``complementary`` (for tables whose column totals are published elsewhere), a
    column with exactly one blanked cell gets a second one blanked too, its smallest other positive cell, so that
    no blanked count can be recovered as the total minus the published cells. Returns the published table
    (suppressed cells become ``NA`` and a boolean ``suppressed`` column marks affected rows) and the number of
    suppressed cells.
    """
    published = table.copy()
    dependent_columns = dependent_columns or {}
    suppressed_rows = np.zeros(len(published), dtype=bool)
    n_cells = 0
    for column in count_columns:
        values = pd.to_numeric(published[column], errors="coerce")
        small = (values > 0) & (values < threshold)
        small = small.fillna(False).to_numpy(dtype=bool).copy()
        if complementary and small.sum() == 1:
            candidates = np.flatnonzero((values.fillna(0).to_numpy() > 0) & ~small)
            if candidates.size:  # the smallest other positive cell; the first of equals
                small[candidates[np.argmin(values.to_numpy()[candidates])]] = True
        if small.any():
            n_cells += int(small.sum())
            published[column] = published[column].astype("object")
            published.loc[small, column] = pd.NA
            for dep in dependent_columns.get(column, []):
                published[dep] = published[dep].astype("object")
                published.loc[small, dep] = pd.NA
            suppressed_rows |= small
    published["suppressed"] = suppressed_rows
    return published, n_cells
