"""Shared fixtures: one synthetic country (full size, fixed seed), its direct estimates and the fitted models.

Fits are session-scoped so the whole family pays for each model once.
"""

from __future__ import annotations

import pytest

from hiddenpop.simulate.country import synthetic_country
from hiddenpop.smallarea.areas import AreaTable
from hiddenpop.smallarea.direct import direct_estimates

COUNTRY_SEED = 20221


@pytest.fixture(scope="session")
def country():
    return synthetic_country(seed=COUNTRY_SEED)


@pytest.fixture(scope="session")
def direct(country):
    return direct_estimates(
        country.survey, area="area_id", hidden="know_hidden", known=country.known_columns,
        roster=country.roster_columns, household_size="household_size", weight="weight", seed=1, replicates=1000,
    )


@pytest.fixture(scope="session")
def area_table(country, direct):
    rows = direct.table[direct.table["quantity"] == "prevalence"]
    targets = rows[["area", "estimate", "se"]].rename(columns={"area": "area_id", "estimate": "target",
                                                               "se": "target_se"})
    frame = country.areas.merge(targets, on="area_id", how="left")
    return AreaTable.from_frame(frame, id="area_id", target="target", target_se="target_se", population="population",
                                region="region", name="name", streams=country.streams, adjacency=country.adjacency)


@pytest.fixture(scope="session")
def national_interval(direct):
    row = direct.get("national prevalence")
    return float(row["estimate"]), float(row["lower"]), float(row["upper"])


@pytest.fixture(scope="session")
def pooled(area_table):
    from hiddenpop.smallarea.pooling import pooled_estimates

    return pooled_estimates(area_table, seed=3, draws=1000)


@pytest.fixture(scope="session")
def ml(area_table):
    from hiddenpop.smallarea.extrapolate import extrapolate

    return extrapolate(area_table, seed=3, repeats=5)

