"""A synthetic country with known municipal prevalence, secondary data streams and a household survey.

The generator exists so that every small-area method can be checked against the truth: it builds

* ``n_rows x n_cols`` square areas (default 40 x 40 = 1,600 municipalities) grouped into contiguous regions
  (nearest of ``n_regions`` random centres, default 17), with rook adjacency and GeoJSON squares;
* populations (log-normal, larger in urban places);
* four latent area traits (urbanicity, deprivation, outward connection, a "risk" trait), each a smooth spatial
  field plus local noise, and 20+ observed covariates in named data streams, each a noisy mix of the traits
  (so streams are correlated, as real secondary data are);
* a true prevalence surface ``log p_a = log p0 + sum_j beta_j z_aj + s_a + e_a`` driven by the covariates of a
  few *driving streams* (``z`` standardised), a smooth spatial field ``s`` and small area noise ``e``;
* a survey of ``n_surveyed`` areas drawn with probability proportional to population (systematic PPS), with
  ``respondents_per_area`` households each: household size, a roster of members in 11 occupation groups, and
  aggregated relational data (how many people the respondent knows in each occupation and in the hidden
  group). Respondent degrees are log-normal; reports are Poisson given degree (random mixing within the
  area), optionally with a transmission rate below one.

Everything is driven by one ``numpy.random.Generator`` seeded with ``seed``: same seed, same country.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.smallarea.direct import direct_estimates

#: Occupation groups asked about in study 2, with their national share of the population.
OCCUPATION_SHARES: dict[str, float] = {
    "doctor": 0.0012,
    "lawyer": 0.0006,
    "teacher": 0.009,
    "driver": 0.025,
    "nurse": 0.004,
    "guard": 0.008,
    "student": 0.16,
    "construction": 0.03,
    "bpo_worker": 0.012,
    "store_owner": 0.015,
    "social_worker": 0.001,
}

#: stream -> {column: (loadings on (urban, deprivation, connection, risk), idiosyncratic sd, scale, shift)}
#: A column's value is ``shift + scale * (loadings @ traits + sd * noise)``; scales only make units plausible.
_STREAM_SPEC: dict[str, dict[str, tuple[tuple[float, float, float, float], float, float, float]]] = {
    "demographics": {
        "log_population_density": ((0.9, -0.1, 0.1, 0.0), 0.4, 1.2, 5.5),
        "share_children_pct": ((-0.5, 0.5, 0.0, 0.0), 0.6, 3.0, 38.0),
    },
    "ict_access": {
        "internet_access_pct": ((0.7, -0.5, 0.2, 0.0), 0.5, 12.0, 45.0),
        "mobile_ownership_pct": ((0.5, -0.4, 0.2, 0.0), 0.6, 8.0, 70.0),
    },
    "birth_registration": {"birth_registration_pct": ((0.3, -0.6, 0.0, 0.0), 0.6, 5.0, 88.0)},
    "marriage_registration": {"marriage_rate_per_1000": ((0.2, -0.2, 0.0, 0.0), 0.9, 1.5, 5.0)},
    "poverty": {"poverty_incidence_pct": ((-0.3, 0.6, 0.0, 0.3), 0.7, 9.0, 25.0)},
    "conflict": {"conflict_incidents_per_10k": ((-0.1, 0.4, 0.0, 0.0), 0.9, 1.0, 2.0)},
    "wealth": {"relative_wealth_index": ((0.6, -0.7, 0.1, 0.0), 0.4, 0.5, 0.0)},
    "commuting": {"commuting_zone_share": ((0.6, 0.0, 0.2, 0.0), 0.7, 0.15, 0.35)},
    "health_workers": {"health_workers_per_10k": ((0.5, -0.3, 0.0, 0.0), 0.7, 4.0, 12.0)},
    "health_sites": {"health_sites_per_10k": ((0.2, -0.2, 0.0, 0.0), 0.9, 1.0, 3.0)},
    "municipal_finance": {
        "tax_revenue_per_capita": ((0.7, -0.4, 0.0, 0.0), 0.5, 300.0, 900.0),
        "income_class": ((-0.6, 0.3, 0.0, 0.0), 0.6, 1.2, 3.5),
    },
    "schools": {
        "schools_per_10k": ((-0.4, 0.2, 0.0, 0.0), 0.8, 2.0, 8.0),
        "enrolment_rate_pct": ((0.3, -0.5, 0.0, 0.0), 0.7, 4.0, 90.0),
    },
    "roads": {"road_density_km_per_km2": ((0.8, -0.2, 0.0, 0.0), 0.5, 0.6, 1.5)},
    "land_cover": {
        "built_up_pct": ((0.9, 0.0, 0.0, 0.0), 0.4, 6.0, 10.0),
        "cropland_pct": ((-0.6, 0.3, 0.0, 0.0), 0.7, 10.0, 35.0),
    },
    "social_programmes": {"cash_transfer_households_pct": ((-0.2, 0.7, 0.0, 0.0), 0.6, 7.0, 20.0)},
    "remittance": {"remittance_outlets_per_10k": ((0.3, 0.0, 0.6, 0.2), 0.7, 1.5, 4.0)},
    "covid_response": {"covid_cases_per_10k": ((0.6, 0.0, 0.2, 0.0), 0.8, 40.0, 150.0)},
    "migration": {"overseas_workers_pct": ((0.0, 0.2, 0.7, 0.0), 0.7, 2.0, 6.0)},
    "telecoms": {"cell_towers_per_10k": ((0.6, -0.2, 0.1, 0.0), 0.7, 1.5, 5.0)},
    "suspicious_transactions": {"str_reports_per_10k": ((0.2, 0.0, 0.3, 0.6), 0.7, 3.0, 8.0)},
    "night_lights": {"night_lights_radiance": ((0.9, -0.2, 0.0, 0.0), 0.4, 4.0, 8.0)},
}

#: Columns that drive the true prevalence, with their effect per standard deviation on the log scale.
DRIVERS: dict[str, float] = {
    "poverty_incidence_pct": 0.40,
    "remittance_outlets_per_10k": 0.30,
    "str_reports_per_10k": 0.40,
}


@dataclass
class SyntheticCountry:
    """A synthetic country: area table, streams, adjacency, geometry, survey and the truth.

    ``areas`` has one row per area: ``area_id, name, region, population, centroid_x, centroid_y`` and the
    covariates; ``truth`` has ``area_id, prevalence, hidden_size, surveyed, inclusion_probability``;
    ``survey`` has one row per household respondent (``area_id``, ``weight``, ``household_size``,
    ``roster_<group>``, ``know_<group>``, ``know_hidden``).
    """

    areas: pd.DataFrame
    streams: dict[str, list[str]]
    driving_streams: list[str]
    adjacency: pd.DataFrame
    geometry: dict[str, Any]
    survey: pd.DataFrame
    truth: pd.DataFrame
    national_prevalence: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def known_columns(self) -> list[str]:
        return [f"know_{g}" for g in OCCUPATION_SHARES]

    @property
    def roster_columns(self) -> list[str]:
        return [f"roster_{g}" for g in OCCUPATION_SHARES]

    def streams_toml(self) -> str:
        """The stream mapping as a STREAMS.toml text (``stream = ["column", ...]``)."""
        lines = ["# data stream -> covariate columns", "[streams]"]
        for name, columns in self.streams.items():
            lines.append(f"{name} = [{', '.join(repr(c).replace(chr(39), chr(34)) for c in columns)}]")
        return "\n".join(lines) + "\n"


def _smooth_field(x: np.ndarray, y: np.ndarray, lengthscale: float, rng: np.random.Generator) -> np.ndarray:
    """A unit-variance smooth Gaussian field by random Fourier features (squared-exponential kernel)."""
    n_features = 300
    omega = rng.normal(0.0, 1.0 / lengthscale, size=(n_features, 2))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n_features)
    features = np.sqrt(2.0 / n_features) * np.cos(np.column_stack([x, y]) @ omega.T + phase)
    values = features @ rng.normal(size=n_features)
    return (values - values.mean()) / values.std()


def _systematic_pps(size: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Systematic PPS selection of ``n`` units (random order); returns (selected indices, inclusion probs).

    Units whose size would give an inclusion probability >= 1 are taken with certainty and the rest are
    re-scaled, repeatedly, so every probability is at most one.
    """
    size = np.asarray(size, dtype=float)
    certain = np.zeros(size.size, dtype=bool)
    while True:
        remaining = n - certain.sum()
        prob = np.where(certain, 1.0, remaining * size / size[~certain].sum())
        newly = (prob >= 1.0) & ~certain
        if not newly.any():
            break
        certain |= newly
    order = rng.permutation(np.flatnonzero(~certain))
    cumulative = np.cumsum(prob[order])
    start = rng.uniform(0.0, 1.0)
    points = start + np.arange(round(cumulative[-1]))
    picked = order[np.searchsorted(cumulative, points)]
    selected = np.sort(np.concatenate([np.flatnonzero(certain), picked]))
    return selected, prob


def synthetic_country(
    *,
    n_rows: int = 40,
    n_cols: int = 40,
    n_regions: int = 17,
    n_surveyed: int = 150,
    respondents_per_area: int = 24,
    base_prevalence: float = 0.006,
    spatial_sd: float = 0.30,
    area_noise_sd: float = 0.12,
    mean_degree: float = 250.0,
    degree_sdlog: float = 0.6,
    transmission: float = 1.0,
    seed: int = 20221,
) -> SyntheticCountry:
    """Generate a synthetic country (see the module docstring); ``seed`` fixes every random draw."""
    if n_surveyed > n_rows * n_cols:
        raise ValueError("n_surveyed exceeds the number of areas")
    rng = np.random.default_rng(seed)
    n_areas = n_rows * n_cols
    row, col = np.divmod(np.arange(n_areas), n_cols)
    x = (col + 0.5) / n_cols
    y = (row + 0.5) / n_rows

    centres = rng.uniform(0.05, 0.95, size=(n_regions, 2))
    distance = (x[:, None] - centres[:, 0]) ** 2 + (y[:, None] - centres[:, 1]) ** 2
    region_index = distance.argmin(axis=1)
    # every region keeps at least one area: relabel the non-empty ones consecutively
    used = np.unique(region_index)
    region_index = np.searchsorted(used, region_index)
    region_names = np.array([f"R{i + 1:02d}" for i in range(used.size)])

    traits = np.column_stack(
        [
            0.8 * _smooth_field(x, y, 0.12, rng) + 0.6 * rng.normal(size=n_areas),
            0.8 * _smooth_field(x, y, 0.20, rng) + 0.6 * rng.normal(size=n_areas),
            0.7 * _smooth_field(x, y, 0.25, rng) + 0.7 * rng.normal(size=n_areas),
            0.6 * _smooth_field(x, y, 0.15, rng) + 0.8 * rng.normal(size=n_areas),
        ]
    )
    population = np.round(np.exp(9.9 + 0.55 * traits[:, 0] + rng.normal(0.0, 0.55, size=n_areas))).astype(int)
    population = np.maximum(population, 1500)

    area_ids = np.array([f"A{i + 1:04d}" for i in range(n_areas)])
    areas = pd.DataFrame(
        {
            "area_id": area_ids,
            "name": [f"Municipality {i + 1}" for i in range(n_areas)],
            "region": region_names[region_index],
            "population": population,
            "centroid_x": np.round(x, 4),
            "centroid_y": np.round(y, 4),
        }
    )
    streams: dict[str, list[str]] = {"location": ["centroid_x", "centroid_y"]}
    for stream, columns in _STREAM_SPEC.items():
        streams[stream] = list(columns)
        for column, (loadings, noise_sd, scale, shift) in columns.items():
            latent = traits @ np.asarray(loadings) + noise_sd * rng.normal(size=n_areas)
            areas[column] = np.round(shift + scale * latent, 4)
    driving_streams = [s for s, cols in streams.items() if any(c in DRIVERS for c in cols)]

    linear = np.zeros(n_areas)
    for column, effect in DRIVERS.items():
        values = areas[column].to_numpy()
        linear += effect * (values - values.mean()) / values.std()
    spatial = spatial_sd * _smooth_field(x, y, 0.10, rng)
    log_prevalence = np.log(base_prevalence) + linear + spatial + area_noise_sd * rng.normal(size=n_areas)
    prevalence = np.exp(log_prevalence)
    hidden_size = prevalence * population

    selected, inclusion = _systematic_pps(population.astype(float), n_surveyed, rng)
    surveyed = np.zeros(n_areas, dtype=bool)
    surveyed[selected] = True

    # area-specific occupation shares vary mildly with urbanicity (official counts do not exist per area)
    shares = np.array(list(OCCUPATION_SHARES.values()))
    urban = traits[:, 0] / traits[:, 0].std()
    area_shares = shares[None, :] * np.exp(0.25 * urban[:, None] + 0.15 * rng.normal(size=(n_areas, shares.size)))

    n_resp = respondents_per_area
    resp_area = np.repeat(selected, n_resp)
    household_size = 1 + rng.poisson(3.2, size=resp_area.size)
    cell_probs = area_shares[resp_area]
    other = 1.0 - cell_probs.sum(axis=1, keepdims=True)
    roster = np.stack(
        [rng.multinomial(h, np.append(p, o)) for h, p, o in zip(household_size, cell_probs, other[:, 0], strict=True)]
    )[:, :-1]
    degree = np.exp(np.log(mean_degree) - degree_sdlog**2 / 2 + degree_sdlog * rng.normal(size=resp_area.size))
    know = rng.poisson(degree[:, None] * cell_probs)
    know_hidden = rng.poisson(degree * prevalence[resp_area] * transmission)
    households = population / 4.2
    weight = (1.0 / inclusion[resp_area]) * households[resp_area] / n_resp

    survey = pd.DataFrame({"area_id": area_ids[resp_area], "weight": np.round(weight, 3)})
    survey["household_size"] = household_size
    for j, group in enumerate(OCCUPATION_SHARES):
        survey[f"roster_{group}"] = roster[:, j]
    for j, group in enumerate(OCCUPATION_SHARES):
        survey[f"know_{group}"] = know[:, j]
    survey["know_hidden"] = know_hidden

    truth = pd.DataFrame(
        {
            "area_id": area_ids,
            "prevalence": prevalence,
            "hidden_size": hidden_size,
            "surveyed": surveyed,
            "inclusion_probability": np.minimum(inclusion, 1.0),
        }
    )
    adjacency = _rook_adjacency(area_ids, n_rows, n_cols)
    geometry = _square_geojson(area_ids, row, col, n_rows, n_cols)
    settings = {
        "n_areas": n_areas,
        "n_regions": int(used.size),
        "n_surveyed": int(surveyed.sum()),
        "respondents_per_area": n_resp,
        "base_prevalence": base_prevalence,
        "spatial_sd": spatial_sd,
        "area_noise_sd": area_noise_sd,
        "drivers": DRIVERS,
        "mean_degree": mean_degree,
        "transmission": transmission,
        "seed": seed,
    }
    return SyntheticCountry(
        areas=areas,
        streams=streams,
        driving_streams=driving_streams,
        adjacency=adjacency,
        geometry=geometry,
        survey=survey,
        truth=truth,
        national_prevalence=float(hidden_size.sum() / population.sum()),
        settings=settings,
    )


def areas_with_direct_rates(country: SyntheticCountry, *, seed: int) -> tuple[pd.DataFrame, Any]:
    """The country's area table with the direct rate and its standard error of each surveyed area
    (``direct_rate``, ``direct_se``; empty elsewhere), and the direct estimates themselves
    (:func:`hiddenpop.smallarea.direct.direct_estimates`, with the national row)."""

    direct = direct_estimates(country.survey, area="area_id", hidden="know_hidden", known=country.known_columns,
                              roster=country.roster_columns, household_size="household_size", weight="weight",
                              seed=seed)
    rows = direct.table[direct.table["quantity"] == "prevalence"]
    targets = rows[["area", "estimate", "se"]].rename(columns={"area": "area_id", "estimate": "direct_rate",
                                                               "se": "direct_se"})
    return country.areas.merge(targets, on="area_id", how="left"), direct


def country_files(country: SyntheticCountry, *, seed: int) -> tuple[dict[str, str], pd.Series]:
    """The files of a synthetic country as text (areas with their direct rates, survey, truth, adjacency, streams,
    geometry) and the direct national estimate (a row of :func:`hiddenpop.smallarea.direct.direct_estimates`)."""

    areas, direct = areas_with_direct_rates(country, seed=seed)
    files = {
        "areas.csv": areas.to_csv(index=False, lineterminator="\n"),
        "survey.csv": country.survey.to_csv(index=False, lineterminator="\n"),
        "truth.csv": country.truth.to_csv(index=False, lineterminator="\n"),
        "adjacency.csv": country.adjacency.to_csv(index=False, lineterminator="\n"),
        "streams.toml": country.streams_toml(),
        "areas.geojson": json.dumps(country.geometry),
    }
    return files, direct.table[direct.table["quantity"] == "national prevalence"].iloc[0]


def _rook_adjacency(area_ids: np.ndarray, n_rows: int, n_cols: int) -> pd.DataFrame:
    index = np.arange(n_rows * n_cols).reshape(n_rows, n_cols)
    pairs = np.concatenate(
        [
            np.column_stack([index[:, :-1].ravel(), index[:, 1:].ravel()]),
            np.column_stack([index[:-1, :].ravel(), index[1:, :].ravel()]),
        ]
    )
    return pd.DataFrame({"area": area_ids[pairs[:, 0]], "neighbour": area_ids[pairs[:, 1]]})


def _square_geojson(area_ids: np.ndarray, row: np.ndarray, col: np.ndarray, n_rows: int, n_cols: int) -> dict:
    """Square polygons in a lon/lat box (an imaginary archipelago-sized country)."""
    lon0, lat0, dlon, dlat = 118.0, 5.0, 8.0 / n_cols, 14.0 / n_rows
    features = []
    for area, r, c in zip(area_ids, row, col, strict=True):
        west, south = lon0 + c * dlon, lat0 + r * dlat
        ring = [[west, south], [west + dlon, south], [west + dlon, south + dlat], [west, south + dlat], [west, south]]
        ring = [[round(a, 5), round(b, 5)] for a, b in ring]
        features.append(
            {"type": "Feature", "properties": {"area_id": str(area)}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        )
    return {"type": "FeatureCollection", "features": features}
