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
