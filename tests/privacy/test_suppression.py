"""Small-cell suppression that holds: no blanked count can be recovered from the published cells and totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from hiddenpop.privacy import suppress_small_cells


def test_the_subtraction_attack_on_one_blanked_cell_fails():
    table = pd.DataFrame({"area": ["a", "b", "c", "d"], "victims": [12, 3, 40, 7]})
    total = int(table["victims"].sum())  # published elsewhere (the headline)
    plain, _ = suppress_small_cells(table, ["victims"], 5)
    published = pd.to_numeric(plain["victims"], errors="coerce")
    assert total - published.sum() == 3  # without the complement, the hidden cell is the difference
    held, cells = suppress_small_cells(table, ["victims"], 5, complementary=True)
    blanked = held["victims"].isna()
    assert cells == 2 and blanked.sum() == 2 and held.loc[blanked, "area"].tolist() == ["b", "d"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=12), st.integers(2, 11))
def test_no_column_is_left_with_a_single_recoverable_blank(counts, threshold):
    table = pd.DataFrame({"count": counts})
    held, cells = suppress_small_cells(table, ["count"], threshold, complementary=True)
    blanked = held["count"].isna().to_numpy()
    values = np.asarray(counts)
    assert blanked.sum() == cells
    assert not np.any(blanked & (values == 0))  # zeros are published
    assert np.all(blanked[(values > 0) & (values < threshold)])  # every small cell is hidden
    if blanked.sum() == 1:  # one hidden cell is only allowed when nothing else could hide it
        assert np.count_nonzero(values[~blanked] > 0) == 0


# --------------------------------------------------------------------------------------------- linked tables
def _solvable(values, relations, hidden):
    """Relations left with exactly one hidden member whose other members include a positive visible count."""
    found = []
    for total, parts in relations:
        members = (total, *parts)
        if sum(m in hidden for m in members) == 1 and any(values[m] > 0 for m in members if m not in hidden):
            found.append(total)
    return found


def test_linked_tables_hide_a_second_cell_along_every_sum():
    """A 2 x 3 table with its row and column margins and a grand total: the single small cell (2) would be its
    row margin minus the others; a second cell in its row and in its column goes too, and then their margins'
    relations each hold two hidden cells."""
    from hiddenpop.privacy import suppress_linked_cells

    cells = {("a", "x"): 2, ("a", "y"): 30, ("a", "z"): 12, ("b", "x"): 40, ("b", "y"): 9, ("b", "z"): 20}
    values = {**cells, "a": 44, "b": 69, "x": 42, "y": 39, "z": 32, "all": 113}
    relations = [("a", [("a", c) for c in "xyz"]), ("b", [("b", c) for c in "xyz"]),
                 *[(c, [("a", c), ("b", c)]) for c in "xyz"], ("all", ["a", "b"]), ("all", ["x", "y", "z"])]
    primary, secondary = suppress_linked_cells(values, relations, 5)
    assert primary == {("a", "x")}
    hidden = primary | secondary
    assert _solvable(values, relations, hidden) == []
    # the subtraction attack: every row and column with a hidden cell has at least two
    assert ("a", "z") in hidden and ("b", "x") in hidden  # the smallest positive cells of row a and column x
    assert all(values[k] > 0 for k in hidden)


def test_a_preferred_cell_is_hidden_first():
    """Without a preference the smallest visible positive member is the complement; a preferred one goes first."""
    from hiddenpop.privacy import suppress_linked_cells

    values = {"total": 60, "agency": 3, "rest": 50, "other": 7}
    relations = [("total", ["agency", "rest", "other"])]
    assert suppress_linked_cells(values, relations, 5) == ({"agency"}, {"other"})
    assert suppress_linked_cells(values, relations, 5, prefer={"rest": -1}) == ({"agency"}, {"rest"})


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=2, max_size=5), min_size=2, max_size=5), st.integers(2, 8))
def test_no_linked_sum_is_left_with_one_recoverable_blank(grid, threshold):
    from hiddenpop.privacy import suppress_linked_cells

    width = min(len(row) for row in grid)
    grid = [row[:width] for row in grid]
    values = {(i, j): v for i, row in enumerate(grid) for j, v in enumerate(row)}
    values.update({("row", i): sum(row) for i, row in enumerate(grid)})
    values.update({("col", j): sum(row[j] for row in grid) for j in range(width)})
    values["all"] = sum(map(sum, grid))
    relations = [(("row", i), [(i, j) for j in range(width)]) for i in range(len(grid))]
    relations += [(("col", j), [(i, j) for i in range(len(grid))]) for j in range(width)]
    relations += [("all", [("row", i) for i in range(len(grid))]), ("all", [("col", j) for j in range(width)])]
    primary, secondary = suppress_linked_cells(values, relations, threshold)
    hidden = primary | secondary
    assert primary == {k for k, v in values.items() if 0 < v < threshold}
    assert not any(values[k] == 0 for k in hidden)
    assert _solvable(values, relations, hidden) == []
