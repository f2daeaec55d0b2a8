"""Small-cell suppression of published tables.

:func:`suppress_small_cells` blanks counts below a threshold (default 5) in published tables and marks them, so a
reader cannot single out a respondent, a victim or a case; with ``complementary=True`` a column with a single
hidden cell gets a second one hidden, so a hidden cell cannot be recovered from a published column total.
:func:`suppress_linked_cells` does the same for counts published in several linked tables (margins, regions and
their countries, totals with one part left out): it hides a second member of every sum that has one hidden.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

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


def suppress_linked_cells(
    values: Mapping[Hashable, int],
    relations: Iterable[tuple[Hashable, Sequence[Hashable]]],
    threshold: int = DEFAULT_SUPPRESSION_THRESHOLD,
    *,
    prefer: Mapping[Hashable, int] | None = None,
) -> tuple[set[Hashable], set[Hashable]]:
    """Which cells of a set of linked published tables to hide: counts in 1..threshold-1 (primary), then enough
    others that no hidden count can be recovered by subtraction.

    ``values`` holds every published count by key; each relation ``(total, parts)`` says that the published
    count ``total`` is the sum of the published counts ``parts`` (a margin and its cells, a region and its
    countries, a total and one cell plus the rest). A relation with exactly one hidden member would give that
    member away, so a second one is hidden: the visible positive member with the lowest ``prefer`` rank (default
    0), then the smallest count, then the first in ``values``. This repeats over every relation until none has a
    single hidden member (or none can get a second one). Zeros are published and never chosen. Returns the
    primary and the complementary keys.
    """
    prefer = prefer or {}
    order = {key: position for position, key in enumerate(values)}
    linked = [(total, tuple(parts)) for total, parts in relations]
    for total, parts in linked:
        for key in (total, *parts):
            if key not in order:
                raise KeyError(f"relation member {key!r} has no value")
    primary = {key for key, value in values.items() if 0 < value < threshold}
    hidden = set(primary)
    changed = True
    while changed:
        changed = False
        for total, parts in linked:
            members = (total, *parts)
            if sum(member in hidden for member in members) != 1:
                continue
            candidates = [member for member in members if member not in hidden and values[member] > 0]
            if not candidates:
                continue
            hidden.add(min(candidates, key=lambda m: (prefer.get(m, 0), values[m], order[m])))
            changed = True
    return primary, hidden - primary
