"""The open model's total ever present against the Jolly-Seber expected counts (closed form)."""

from __future__ import annotations

import numpy as np
import pytest

from hiddenpop.capture.events.open import open_population
from openpop import jolly_seber_cells


@pytest.mark.parametrize("periods", [3, 4, 5])
def test_total_ever_present_counts_every_unit_but_the_unidentified_ends(periods):
    """Fitted to exact Jolly-Seber expected counts, the "up" total is the units seen plus the never-seen ones,
    except units present in period 1 only or period I only (p*_1, p*_I unidentified). At I = 3 the never-seen part
    is the single term exp(u + gamma1 + gamma3); the negative terms of the closed form begin at I = 4."""
    rng = np.random.default_rng(periods)
    survival = rng.uniform(0.5, 0.9, periods - 1)
    births = rng.uniform(100, 300, periods - 1)
    p = rng.uniform(0.3, 0.6, periods)
    cells, unseen = jolly_seber_cells(periods, 1000.0, survival, births, p)
    result = open_population(cells, periods=periods, constrain_negative=False)
    assert result.diagnostics["deviance"] == pytest.approx(0.0, abs=1e-8)
    expected = cells.sum() + sum(v for key, v in unseen.items() if key not in ((1, 1), (periods, periods)))
    assert result.estimate("total_ever_present") == pytest.approx(expected, rel=1e-9)
    middle = result.table[(result.table["quantity"] == "survival")]["estimate"].to_numpy()[:-1]
    np.testing.assert_allclose(middle, survival[:-1], rtol=1e-8)
