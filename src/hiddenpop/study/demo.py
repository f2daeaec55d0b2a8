"""The bundled synthetic study, shaped like Study 2 ("Scale of Harm", reference year 2022).

:func:`write_demo_study` draws a synthetic country with known truth and writes a complete study folder:

* ``data/survey.csv``: 3,600 respondents (24 in each of 150 surveyed areas, 10 areas in each of 15 strata, areas
  drawn with probability proportional to size), with design weights, strata and PSUs, answers for 11 occupations,
  4 child age bands and 4 hidden groups;
* ``data/known_sizes.csv``: sizes of the 15 known groups;
* ``data/casework.csv``: victims brought to safety and suspects arrested per surveyed area;
* ``data/report_log.csv``: a small tipline-style report log with synthetic IP addresses (from the benchmarking
  range 198.18.0.0/15, never real), duplicates, missing and foreign identifiers and a flagged category;
* ``data/cases.csv`` and ``data/codebook.csv``: 92 coded case files (codes only) and their codebook;
* ``data/areas.csv``: every area of the country (id, invented name) with population bases and covariates grouped
  in data streams;
* ``data/areas.geojson``: area boundaries for the map (Voronoi cells of the area centroids, keyed by area id);
* ``data/referrals.csv`` and ``data/child_population.csv``: referrals from four invented law-enforcement agencies
  to 15 receiving countries by year (2010-2017), drawn from known rates per child in which the Philippines leads,
  and an approximate child population per country (plus one country with no referral) for the rates;
* ``keys/demo-key.txt``: a pseudonymisation key derived from the seed (for the demo only; real studies use
  ``hiddenpop privacy keygen``);
* ``truth.json``: the true totals the data were drawn from, so the report can be read against them;
* ``study.toml``: the study file (identical to ``examples/demo/study.toml`` for the full profile).

How the answers are drawn: each respondent has a lognormal adult network size (median about 245) and a lognormal
child network size (median about 40). Known-group answers are Poisson with mean degree x group share; the
"social workers" group is recalled at 60% (so the leave-one-out diagnostic has something to find). Hidden-group
answers are Poisson with mean degree x the respondent's area prevalence x a transmission rate of 0.85 (people
under-report what they know), so design-based estimates are expected to fall about 15% below the truth.
Everything is drawn from one ``numpy.random.default_rng(seed)``: the same seed writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenpop.outputs import atomic_write_text, check_output_folder, install_output_folder, partial_folder
from hiddenpop.simulate.geometry import feature_collection, voronoi_cells
from hiddenpop.study.runner import RunOutcome, run_study
from hiddenpop.study.schema import load_study

POPULATION = 113_771_856
CHILDREN = 44_600_000
ADULTS = POPULATION - CHILDREN
IPV4_BASE = 5_485_000
OCCUPATIONS = {
    "doctors": 150_000,
    "lawyers": 60_000,
    "teachers": 950_000,
    "drivers": 2_400_000,
    "nurses": 520_000,
    "guards": 610_000,
    "students": 3_100_000,
    "construction_workers": 3_900_000,
    "bpo_workers": 1_500_000,
    "sari_sari_owners": 1_250_000,
    "social_workers": 45_000,
}
CHILD_BANDS = {"children_0_2": 7_200_000, "children_3_5": 7_300_000, "children_6_12": 17_000_000,
               "children_13_17": 13_100_000}
RECALL = {"social_workers": 0.6}
VICTIM_RATE = 0.0105  # child victims per child, national
TRAFFICKER_RATE = 0.0019  # traffickers per adult, national (about 3.5 victims per trafficker)
LIVE_SHARE = 0.45
STREAMS = {
    "poverty": ["poverty_incidence", "relative_wealth"],
    "connectivity": ["ict_access", "mobile_subscriptions"],
    "night_lights": ["night_lights"],
    "remittances": ["remittance_outlets", "migration_rate"],
    "financial_reports": ["suspicious_transactions"],
    "schools": ["schools_per_1000", "enrolment_rate"],
    "health": ["health_workers_per_1000"],
}


@dataclass(frozen=True)
class World:
    """How the synthetic country behaves and what its study file declares (the demo's own values by default).

    ``transmission`` is the true reporting rate behind every hidden-group answer; ``barrier`` the variance of a
    mean-one Gamma factor on each respondent's exposure to each hidden group (0: networks mix at random);
    ``degree_sigma`` the spread of the log adult network sizes; ``casework_rate`` the share of victims and
    traffickers in surveyed areas that casework reaches; ``tau_prior`` the transmission rate the study file
    declares in [visibility.transmission], or ``casework(c)`` to calibrate it against the casework counts with
    completeness c (one table for the victims, one for the traffickers).
    """

    transmission: float = 0.85
    barrier: float = 0.0
    degree_sigma: float = 0.55
    casework_rate: float = 0.005
    tau_prior: str = "beta(17, 3)"
    tau_source: str = ("assumed for the demo (mean 0.85, sd 0.08); a real study derives it from casework with "
                       "hiddenpop.nsum.bayes.calibration")


@dataclass(frozen=True)
class Profile:
    """Size of the synthetic study. ``full`` is Study 2's shape; ``quick`` keeps tests fast."""

    name: str
    strata: int
    areas_per_stratum: int
    surveyed_per_stratum: int
    respondents_per_area: int
    bootstrap: int
    chains: int
    warmup: int
    draws: int
    report_weeks: int
    report_ips: int
    bayes: bool = True  # the test profile leaves MCMC out (Bayesian NSUM and pooled area model)
    bayes_nsum: bool = True


PROFILES = {
    "full": Profile("full", 15, 40, 10, 24, 1000, 4, 500, 1000, 52, 4000),
    "quick": Profile("quick", 5, 12, 6, 24, 200, 1, 200, 200, 12, 600),
    "test": Profile("test", 4, 10, 5, 24, 100, 1, 100, 100, 12, 500, bayes=False),
}


def demo_key(seed: int) -> str:
    """A deterministic demo key (64 hex characters) so reruns give identical pseudonyms. Demo only."""
    return hashlib.sha256(f"hiddenpop-demo-key-{seed}".encode()).hexdigest()


def run_demo(out: str | Path, *, seed: int = 20220101, profile: str = "full",
             progress: Callable[[str], None] | None = None, force: bool = False) -> RunOutcome:
    """Write the synthetic study to ``out/study``, run it into ``out/run`` and return the run's outcome.

    ``out`` is an output folder like any other (:mod:`hiddenpop.outputs`): built in a hidden sibling and moved
    into place at the end; a folder hiddenpop did not write is refused unless ``force``.
    """
    out = check_output_folder(out, force=force)
    partial = partial_folder(out)
    try:
        study_path = write_demo_study(partial / "study", seed=seed, profile=profile)
        outcome = run_study(load_study(study_path), partial / "run", progress=progress)
        notes = install_output_folder(partial, out, command="demo", force=force)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return replace(outcome, folder=out / "run", notes=outcome.notes + notes)


def write_demo_study(folder: str | Path, *, seed: int = 20220101, profile: str | Profile = "full",
                     world: World = World()) -> Path:
    """Draw the synthetic study and write it under ``folder``; returns the path of ``study.toml``."""
    spec = PROFILES[profile] if isinstance(profile, str) else profile
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "keys").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    areas = _areas(rng, spec)
    # Names come from their own stream so that adding them left every other draw of the study unchanged.
    areas.insert(1, "name", _area_names(np.random.default_rng([seed, 7]), len(areas)))
    survey, surveyed = _survey(rng, spec, areas, world)
    casework = _casework(rng, areas.loc[surveyed], world.casework_rate)
    report_log, log_truth = _report_log(rng, spec)
    cases, codebook = _case_files(rng, 92)
    # The lists come from their own stream, so adding them left every other draw of the study unchanged.
    lists = _lists(np.random.default_rng([seed, 13]), int(areas["victims"].sum()))
    # Referrals come from their own stream, so adding them left every other draw of the study unchanged.
    referrals, children_by_country = _referrals(np.random.default_rng([seed, 11]))

    def write_csv(frame: pd.DataFrame, name: str) -> None:
        atomic_write_text(folder / "data" / name, frame.to_csv(index=False, lineterminator="\n",
                                                               float_format="%.6g"))

    write_csv(survey, "survey.csv")
    known = pd.DataFrame({"group": list(OCCUPATIONS) + list(CHILD_BANDS),
                          "size": list(OCCUPATIONS.values()) + list(CHILD_BANDS.values())})
    write_csv(known, "known_sizes.csv")
    write_csv(casework, "casework.csv")
    write_csv(report_log, "report_log.csv")
    write_csv(cases, "cases.csv")
    write_csv(codebook, "codebook.csv")
    write_csv(lists, "lists.csv")
    write_csv(referrals, "referrals.csv")
    write_csv(children_by_country, "child_population.csv")
    public = areas.drop(columns=["victims", "traffickers", "relative_risk"])
    write_csv(public, "areas.csv")
    atomic_write_text(folder / "data" / "areas.geojson", json.dumps(_area_polygons(areas), separators=(",", ":"))
                      + "\n")
    key_path = folder / "keys" / "demo-key.txt"
    atomic_write_text(key_path, demo_key(seed) + "\n")
    key_path.chmod(0o600)  # a key file only its owner can read, as `hiddenpop privacy keygen` writes one

    truth = {
        "victims": int(areas["victims"].sum()),
        "traffickers": int(areas["traffickers"].sum()),
        "children": CHILDREN,
        "adults": ADULTS,
        "transmission": world.transmission,
        "report_log_active_identifiers": log_truth,
        "lists_seen": int(lists["count"].sum()),
        "referrals_per_100000_children": dict(REFERRAL_RATES),
    }
    truth["victims_per_trafficker"] = truth["victims"] / truth["traffickers"]
    atomic_write_text(folder / "truth.json", json.dumps(truth, indent=2) + "\n")
    study_path = folder / "study.toml"
    atomic_write_text(study_path, study_toml(seed=seed, spec=spec, world=world))
    return study_path


# --------------------------------------------------------------------------------------------- the country
def _areas(rng: np.random.Generator, spec: Profile) -> pd.DataFrame:
    n_areas = spec.strata * spec.areas_per_stratum
    stratum = np.repeat(np.arange(1, spec.strata + 1), spec.areas_per_stratum)
    raw_population = rng.lognormal(np.log(60_000), 0.8, n_areas)
    population = np.round(raw_population / raw_population.sum() * POPULATION).astype(np.int64)
    population[-1] += POPULATION - population.sum()
    child_share = np.clip(rng.normal(CHILDREN / POPULATION, 0.03, n_areas), 0.25, 0.5)
    expected_children = population * child_share
    children = np.round(expected_children * CHILDREN / expected_children.sum()).astype(np.int64)
    children[-1] += CHILDREN - children.sum()
    adults = population - children

    # Covariates: correlated through two latent factors (deprivation, connectivity).
    deprivation = rng.normal(size=n_areas)
    connectivity = 0.4 * deprivation + rng.normal(size=n_areas)
    noise = rng.normal(size=(n_areas, 11)) * 0.6
    z = {
        "poverty_incidence": deprivation + noise[:, 0],
        "relative_wealth": -deprivation + noise[:, 1],
        "ict_access": connectivity + noise[:, 2],
        "mobile_subscriptions": connectivity + noise[:, 3],
        "night_lights": -0.5 * deprivation + noise[:, 4],
        "remittance_outlets": 0.5 * connectivity + noise[:, 5],
        "migration_rate": 0.3 * deprivation + noise[:, 6],
        "suspicious_transactions": 0.6 * connectivity + noise[:, 7],
        "schools_per_1000": rng.normal(size=n_areas),
        "enrolment_rate": -0.3 * deprivation + noise[:, 9],
        "health_workers_per_1000": rng.normal(size=n_areas),
    }
    # Truth: prevalence driven by poverty, remittances and suspicious transactions, plus area noise.
    log_risk = (0.35 * z["poverty_incidence"] + 0.3 * z["remittance_outlets"]
                + 0.3 * z["suspicious_transactions"] + rng.normal(0, 0.25, n_areas))
    relative_risk = np.exp(log_risk)
    victim_rate = VICTIM_RATE * relative_risk * CHILDREN / np.sum(relative_risk * children)
    trafficker_rate = TRAFFICKER_RATE * relative_risk * ADULTS / np.sum(relative_risk * adults)
    frame = pd.DataFrame({
        "area_id": [f"A{i:04d}" for i in range(1, n_areas + 1)],
        "region": [f"R{s:02d}" for s in stratum],
        "population": population,
        "children": children,
        "adults": adults,
    })
    scales = {"poverty_incidence": (22, 9), "relative_wealth": (0, 1), "ict_access": (55, 15),
              "mobile_subscriptions": (110, 25), "night_lights": (8, 3), "remittance_outlets": (4, 1.5),
              "migration_rate": (6, 2), "suspicious_transactions": (15, 6), "schools_per_1000": (1.2, 0.3),
              "enrolment_rate": (88, 5), "health_workers_per_1000": (2.5, 0.8)}
    for name, values in z.items():
        centre, spread = scales[name]
        frame[name] = np.round(centre + spread * values, 3)
    # Centroids: each region a cluster inside a country-sized box (for the area map; no real geography).
    centre_lon = rng.uniform(118, 126, spec.strata)[stratum - 1]
    centre_lat = rng.uniform(6, 18, spec.strata)[stratum - 1]
    frame["longitude"] = np.round(centre_lon + rng.normal(0, 0.45, n_areas), 4)
    frame["latitude"] = np.round(centre_lat + rng.normal(0, 0.45, n_areas), 4)
    frame["relative_risk"] = relative_risk
    frame["victims"] = rng.poisson(victim_rate * children)
    frame["traffickers"] = rng.poisson(trafficker_rate * adults)
    frame["surveyed"] = False
    return frame


_SYLLABLES = ("ba", "ca", "da", "ga", "la", "ma", "na", "pa", "ra", "sa", "ta", "lu", "mi", "no", "ri", "to",
              "be", "ke", "lo", "si", "yo", "an", "el", "on", "ur", "ti", "vo", "qui", "nor", "san")


def _area_names(rng: np.random.Generator, n: int) -> list[str]:
    """Invented, distinct place names (two or three syllables), so the map and tables read like a country."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        word = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))
        if word not in seen:
            seen.add(word)
            names.append(word.capitalize())
    return names


def _area_polygons(areas: pd.DataFrame) -> dict:
    """Boundaries for the demo map: the Voronoi cells of the area centroids inside the country's box."""

    points = areas[["longitude", "latitude"]].to_numpy(dtype=float)
    box = (float(points[:, 0].min()) - 0.6, float(points[:, 1].min()) - 0.6,
           float(points[:, 0].max()) + 0.6, float(points[:, 1].max()) + 0.6)
    cells = voronoi_cells(points, box)
    return feature_collection(list(areas["area_id"]), cells, key="area_id", names=list(areas["name"]))


def _pps_systematic(rng: np.random.Generator, sizes: np.ndarray, n: int) -> np.ndarray:
    """Systematic PPS selection of ``n`` units (sizes below the interval; otherwise certainty units)."""
    cumulative = np.cumsum(sizes)
    interval = cumulative[-1] / n
    points = rng.uniform(0, interval) + interval * np.arange(n)
    chosen = np.searchsorted(cumulative, points, side="right")
    return np.unique(chosen)


def _survey(rng: np.random.Generator, spec: Profile, areas: pd.DataFrame,
            world: World) -> tuple[pd.DataFrame, np.ndarray]:
    chosen: list[int] = []
    inclusion = np.zeros(len(areas))
    for region, rows in areas.groupby("region", sort=True).groups.items():
        del region
        index = np.asarray(rows)
        sizes = areas.loc[index, "adults"].to_numpy(dtype=float)
        picked = _pps_systematic(rng, sizes, spec.surveyed_per_stratum)
        while len(picked) < spec.surveyed_per_stratum:  # a very large area drawn twice: top up at random
            extra = rng.choice(np.setdiff1d(np.arange(len(index)), picked))
            picked = np.unique(np.append(picked, extra))
        chosen.extend(index[picked])
        inclusion[index] = np.minimum(1.0, spec.surveyed_per_stratum * sizes / sizes.sum())
    chosen_index = np.array(sorted(chosen))
    areas.loc[chosen_index, "surveyed"] = True
    per_area = spec.respondents_per_area
    area_rows = np.repeat(chosen_index, per_area)
    n = len(area_rows)
    adults = areas["adults"].to_numpy()[area_rows]
    children = areas["children"].to_numpy()[area_rows]
    base_weight = adults / (inclusion[area_rows] * per_area)
    weight = base_weight * rng.uniform(0.85, 1.15, n)  # non-response adjustment noise

    adult_degree = rng.lognormal(np.log(245), world.degree_sigma, n)
    child_degree = rng.lognormal(np.log(40), 0.6, n)
    columns: dict[str, np.ndarray] = {}
    for group, size in OCCUPATIONS.items():
        columns[group] = rng.poisson(adult_degree * size / POPULATION * RECALL.get(group, 1.0))
    for band, size in CHILD_BANDS.items():
        columns[band] = rng.poisson(child_degree * size / CHILDREN)
    victim_share = areas["victims"].to_numpy()[area_rows] / children
    # An adult network counts people of all ages, so traffickers are a share of the area's whole population.
    trafficker_share = areas["traffickers"].to_numpy()[area_rows] / areas["population"].to_numpy()[area_rows]
    # Hidden groups: a respondent's network mixes mostly with their own area; answers are under-reported.
    tau = world.transmission
    exposure = {"children": child_degree * victim_share, "adults": adult_degree * trafficker_share}
    hidden = {f"{who}_{kind}": (who, share) for who in ("children", "adults")
              for kind, share in (("nonlive", 1 - LIVE_SHARE), ("live", LIVE_SHARE))}
    for column, (who, share) in hidden.items():
        columns[column] = tau * exposure[who] * share
        if world.barrier > 0:  # drawn only then, so the demo's own data keep their random stream
            columns[column] = columns[column] * rng.gamma(1.0 / world.barrier, world.barrier, n)
    for column in hidden:
        columns[column] = rng.poisson(columns[column])
    survey = pd.DataFrame({
        "respondent_id": [f"R{i:05d}" for i in range(1, n + 1)],
        "stratum": areas["region"].to_numpy()[area_rows],
        "area_id": areas["area_id"].to_numpy()[area_rows],
        "psu": areas["area_id"].to_numpy()[area_rows],
        "weight": np.round(weight, 3),
        **columns,
    })
    return survey, chosen_index


def _casework(rng: np.random.Generator, surveyed: pd.DataFrame, rate: float) -> pd.DataFrame:
    return pd.DataFrame({
        "area_id": surveyed["area_id"].to_numpy(),
        "population": surveyed["population"].to_numpy(),
        "children": surveyed["children"].to_numpy(),
        "victims_rescued": rng.poisson(surveyed["victims"].to_numpy() * rate),
        "suspects_arrested": rng.poisson(surveyed["traffickers"].to_numpy() * rate),
    })


def _report_log(rng: np.random.Generator, spec: Profile) -> tuple[pd.DataFrame, int]:
    """Daily reports from a population of IPs with heterogeneous, slowly growing activity."""
    days = spec.report_weeks * 7
    n_ips = spec.report_ips
    start_day = rng.integers(0, days // 2, n_ips)  # IPs join over the period (growth)
    lifetime = rng.integers(28, days + 1, n_ips)
    rate = rng.gamma(0.8, 0.05, n_ips)  # reports per active day
    active_days = np.clip(np.minimum(start_day + lifetime, days) - start_day, 1, None)
    counts = rng.poisson(rate * active_days)
    ip_index = np.repeat(np.arange(n_ips), counts)
    day = start_day[ip_index] + (rng.uniform(size=ip_index.size) * active_days[ip_index]).astype(int)
    seconds = rng.integers(0, 86_400, ip_index.size)
    duplicates = rng.uniform(size=ip_index.size) < 0.15  # same IP reported twice the same day
    ip_index = np.concatenate([ip_index, ip_index[duplicates]])
    day = np.concatenate([day, day[duplicates]])
    seconds = np.concatenate([seconds, rng.integers(0, 86_400, int(duplicates.sum()))])
    order = np.lexsort((seconds, day))
    ip_index, day, seconds = ip_index[order], day[order], seconds[order]
    n = ip_index.size
    ip_text = np.array([f"198.{18 + i // 65_536}.{(i // 256) % 256}.{i % 256}" for i in range(n_ips)])
    address = ip_text[ip_index].astype(object)
    address[rng.uniform(size=n) < 0.03] = ""
    country = np.where(rng.uniform(size=n) < 0.05, "XX", "PH")
    category = np.where(rng.uniform(size=n) < 0.04, "viral", "exploitation")
    timestamps = pd.Timestamp("2022-01-03", tz="UTC") + pd.to_timedelta(day * 86_400 + seconds, unit="s")
    frame = pd.DataFrame({
        "report_id": [f"T{i:07d}" for i in range(1, n + 1)],
        "reported_at": timestamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ip_address": address,
        "country": country,
        "category": category,
    })
    return frame, int(np.unique(ip_index).size)


#: The demo's four lists of child victims: the share of victims in each catchability class and each class's
#: chance of being on each list (police casework, NGO referrals, hotline reports, child-protection services).
#: The hard class is seen often enough (4-7% a list) for four lists to identify the mixture; at about 1% a list it
#: is nearly invisible, every model class misses it and latent-class chains settle in different arrangements.
LIST_NAMES = ("police", "ngo", "hotline", "protection")
LIST_CLASSES = ((0.25, (0.20, 0.15, 0.12, 0.25)), (0.75, (0.05, 0.06, 0.04, 0.07)))


def _lists(rng: np.random.Generator, victims: int) -> pd.DataFrame:
    """Aggregated list histories of the victims: a few are easy to find on every list, most hard on all (the
    heterogeneity that biases log-linear models low and that latent classes are built for)."""
    shares = np.array([share for share, _ in LIST_CLASSES])
    catch = np.array([probabilities for _, probabilities in LIST_CLASSES])
    members = rng.multinomial(victims, shares)
    codes = np.zeros(1 << len(LIST_NAMES), dtype=np.int64)
    weights = 1 << np.arange(len(LIST_NAMES))
    for size, probabilities in zip(members, catch, strict=True):
        caught = rng.random((size, len(LIST_NAMES))) < probabilities
        codes += np.bincount(caught.astype(np.int64) @ weights, minlength=len(codes))
    histories = np.array([[(code >> j) & 1 for j in range(len(LIST_NAMES))] for code in range(1, len(codes))])
    frame = pd.DataFrame(histories, columns=list(LIST_NAMES))
    frame["count"] = codes[1:]
    return frame


def _case_files(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coded law-enforcement case files (Study 1 coded 92) and their codebook; codes only, no free text."""

    def pick(levels: list[str], weights: list[float], size: int = n) -> np.ndarray:
        return rng.choice(np.array(levels, dtype=object), size=size, p=np.array(weights) / np.sum(weights))

    def multi(options: list[str], probability: list[float]) -> list[str]:
        chosen = rng.uniform(size=(n, len(options))) < np.array(probability)
        return [";".join(o for o, keep in zip(options, row, strict=True) if keep) for row in chosen]

    youngest = rng.integers(2, 18, n).astype(object)
    youngest[rng.uniform(size=n) < 0.1] = -9  # not recorded
    cases = pd.DataFrame({
        "case_id": [f"C{i:03d}" for i in range(1, n + 1)],
        "source": pick(["referral", "investigation", "both"], [0.55, 0.3, 0.15]),
        "victims": 1 + rng.poisson(1.6, n),
        "victim_sex": pick(["female", "male", "both", "unknown"], [0.62, 0.12, 0.2, 0.06]),
        "victim_youngest_age": youngest,
        "trafficker_relationship": pick(["parent", "other relative", "neighbour", "other", "not recorded"],
                                        [0.41, 0.26, 0.12, 0.13, 0.08]),
        "trafficker_sex": pick(["female", "male", "unknown"], [0.6, 0.33, 0.07]),
        "customer_country": pick(["US", "UK", "AU", "other", "unknown"], [0.35, 0.14, 0.12, 0.24, 0.15]),
        "payment_channels": multi(["remittance", "online wallet", "bank", "crypto"], [0.7, 0.35, 0.15, 0.05]),
        "platforms": multi(["messaging app", "social media", "video chat"], [0.8, 0.45, 0.3]),
    })
    codebook = pd.DataFrame([
        ("case_id", "case", "id", "case file id", "", "", ""),
        ("source", "case", "categorical", "source of the case file", "referral;investigation;both", "", ""),
        ("victims", "victim", "numeric", "victims identified in the case", "", "", ""),
        ("victim_sex", "victim", "categorical", "sex of the victims", "female;male;both", "unknown", ""),
        ("victim_youngest_age", "victim", "numeric", "age of the youngest victim", "", "-9", ""),
        ("trafficker_relationship", "trafficker", "categorical", "trafficker's relationship to the victim",
         "parent;other relative;neighbour;other", "not recorded", ""),
        ("trafficker_sex", "trafficker", "categorical", "sex of the main trafficker", "female;male", "unknown", ""),
        ("customer_country", "customer", "categorical", "customer's country", "US;UK;AU;other", "unknown", ""),
        ("payment_channels", "offending_process", "multi_select", "payment channels used",
         "remittance;online wallet;bank;crypto", "", ";"),
        ("platforms", "offending_process", "multi_select", "platforms used",
         "messaging app;social media;video chat", "", ";"),
    ], columns=["column", "role", "type", "label", "levels", "missing", "separator"])
    return cases, codebook


#: Referrals per 100,000 children over 2010-2017 that the demo's agencies would make to each country (the truth
#: behind data/referrals.csv), and the approximate number of children (under 18) in each, rounded.
REFERRAL_RATES = {"PHL": 1.0, "KHM": 0.2, "THA": 0.15, "ROU": 0.08, "DOM": 0.08, "COL": 0.05, "UKR": 0.05,
                  "MYS": 0.05, "MEX": 0.03, "VNM": 0.03, "LKA": 0.03, "KEN": 0.02, "IDN": 0.01, "BRA": 0.01,
                  "IND": 0.004, "LAO": 0.0}
CHILDREN_BY_COUNTRY = {"PHL": 40_000_000, "KHM": 6_000_000, "THA": 14_000_000, "ROU": 3_600_000,
                       "DOM": 3_800_000, "COL": 15_000_000, "UKR": 8_000_000, "MYS": 9_000_000, "MEX": 38_000_000,
                       "VNM": 24_000_000, "LKA": 6_000_000, "KEN": 24_000_000, "IDN": 80_000_000,
                       "BRA": 52_000_000, "IND": 440_000_000, "LAO": 2_800_000}
#: Four invented agencies and the share of each country's referrals each makes (rows add up to 1).
AGENCIES = ("Agency A", "Agency B", "Agency C", "Agency D")


def _referrals(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Referrals by agency, receiving country and year: Poisson counts of each country's rate x children, spread
    over the years with growth (as in Study 1, most referrals came after 2014) and over the agencies with shares
    that differ by agency; only non-zero rows are written, as agencies report them."""
    years = np.arange(2010, 2018)
    growth = np.exp(0.35 * (years - years[0]))
    growth = growth / growth.sum()
    rows = []
    for country, rate in REFERRAL_RATES.items():
        expected = rate * CHILDREN_BY_COUNTRY[country] / 100_000
        shares = rng.dirichlet(np.full(len(AGENCIES), 2.0))
        counts = rng.poisson(expected * np.outer(shares, growth))
        for a, agency in enumerate(AGENCIES):
            for y, year in enumerate(years):
                if counts[a, y]:
                    rows.append((agency, country, int(year), int(counts[a, y])))
    frame = pd.DataFrame(rows, columns=["agency", "country", "year", "referrals"])
    frame = frame.sort_values(["agency", "year", "country"], kind="stable").reset_index(drop=True)
    children = pd.DataFrame({"country": list(CHILDREN_BY_COUNTRY), "base": list(CHILDREN_BY_COUNTRY.values())})
    return frame, children


# --------------------------------------------------------------------------------------------- the study file
def _bayes_switch(spec: Profile) -> str:
    if not spec.bayes:
        return "enabled = false  # no MCMC in the test profile\n"
    if not spec.bayes_nsum:
        return "enabled = false  # too slow at full size for now; run it with `hiddenpop nsum bayes` or the quick demo\n"
    return ""


def _visibility_tables(world: World) -> str:
    if not world.tau_prior.startswith("casework("):
        return (f'[visibility.transmission]\nfactor = "transmission_rate"\ndistribution = "{world.tau_prior}"\n'
                f'source = "{world.tau_source}"\n')
    completeness = float(world.tau_prior[len("casework("):-1])
    tables = []
    for name, role, base in (("victims", "victims", "children"), ("traffickers", "suspects", "population")):
        tables.append(f'[visibility.{name}]\nfactor = "transmission_rate"\ngroups = ["{name}"]\n'
                      f'casework = "{role}"\nbase_column = "{base}"\ncompleteness = {completeness:g}\n'
                      f'source = "{world.tau_source}"\n')
    return "\n".join(tables)


def study_toml(*, seed: int, spec: Profile, world: World = World()) -> str:
    """The demo's study file text (the full profile is committed as ``examples/demo/study.toml``)."""
    occupations = ", ".join(f'"{g}"' for g in OCCUPATIONS)
    bands = ", ".join(f'"{g}"' for g in CHILD_BANDS)
    streams = "\n".join(f"{name} = [{', '.join(repr(c).replace(chr(39), chr(34)) for c in cols)}]"
                        for name, cols in STREAMS.items())
    quick = spec.name != "full"
    profile_note = f" ({spec.name} profile)" if quick else ""
    return f'''# Synthetic "Scale of Harm"-shaped study (reference year 2022). Generated by `hiddenpop demo`
# ({spec.name} profile); every number in the data is drawn from a known truth (truth.json).
# Reference: docs/study-file.md

[study]
name = "Synthetic Scale of Harm study{profile_note}"
description = """A synthetic national household survey of {spec.strata * spec.surveyed_per_stratum * spec.respondents_per_area:,} adults in \
{spec.strata * spec.surveyed_per_stratum} areas ({spec.strata} strata, areas drawn with probability proportional to size, \
{spec.respondents_per_area} interviews per area), with casework counts, a small report log and area covariates. \
The data are invented; the true totals are in truth.json beside this file."""
reference_year = 2022
seed = {seed}
level = 0.95

[privacy]
suppression_threshold = 5
key_file = "keys/demo-key.txt"

[populations]
total = {POPULATION}
children = {CHILDREN}
adults = {ADULTS}

[survey]
file = "data/survey.csv"
id = "respondent_id"
weights = "weight"
strata = "stratum"
psu = "psu"
area = "area_id"
missing = "zero"
topcode = 30

[known_sizes]
file = "data/known_sizes.csv"

# Adult network size from the occupation groups (known-population method), scaled to the whole population.
[degrees.adult]
method = "known_population"
groups = [{occupations}]
base = "total"

# Child network size by the summation method: the four age bands add up to every child the respondent knows.
[degrees.child]
method = "summation"
groups = [{bands}]
base = "children"

[hidden.children_nonlive]
degree = "child"
label = "Children used to produce non-live material"

[hidden.children_live]
degree = "child"
label = "Children used in livestreams"

[hidden.adults_nonlive]
degree = "adult"
label = "Adults forcing children to produce non-live material"

[hidden.adults_live]
degree = "adult"
label = "Adults forcing children to livestream"

[combine.victims]
groups = ["children_nonlive", "children_live"]
base = "children"
per = 100
label = "Child victims"
headline = "nsum"
why = "the design-based estimate carries the survey design and the visibility model through one bootstrap"

[combine.traffickers]
groups = ["adults_nonlive", "adults_live"]
base = "adults"
per = 1000
label = "Adult traffickers"
headline = "nsum"
why = "the same analysis as the victims, so the ratio below divides their joint draws; the Bayesian model is shown beside it"

[ratios.victims_per_trafficker]
numerator = "victims"
denominator = "traffickers"
label = "Victims per trafficker"

# The visibility model, declared once for every analysis: people know of, and report, about 85% of the
# exploitation they are connected to. The survey cannot identify this rate (it informs only tau x N); the
# design-based bootstrap draws it once per replicate, the Bayesian model takes it as its prior.
{_visibility_tables(world)}
[analyses.nsum]
method = "mle"
bootstrap = {spec.bootstrap}

# {spec.chains} chain(s) x {spec.draws} draws after {spec.warmup} warm-up.
[analyses.nsum_bayes]
{_bayes_switch(spec)}model = "combined"
degree = "adult"
hidden = ["adults_nonlive", "adults_live"]
chains = {spec.chains}
warmup = {spec.warmup}
draws = {spec.draws}
# a slightly larger NUTS step than the 0.8 default: half the leapfrog steps per draw, no divergences here
target_accept = 0.65
# quantile residuals by stratum show barrier effects that differ between strata (cheap: no refit)
residuals_by = "stratum"
# kfold = 5 would compare kfold_models by cross-validation with folds of whole PSUs: 5 refits per model, so off

[analyses.casework]
file = "data/casework.csv"
area = "area_id"
victims = "victims_rescued"
suspects = "suspects_arrested"

[analyses.report_log]
files = ["data/report_log.csv"]
id = "ip_address"
time = "reported_at"
country_column = "country"
country = "PH"
exclude = {{ category = "viral" }}
dedupe = "day"
occasion = "7D"
occasions = 4
step = "28D"
estimator = "Mth Chao (LB)"
base = {IPV4_BASE}

[analyses.cases]
file = "data/cases.csv"
codebook = "data/codebook.csv"
by = "trafficker_sex"

[analyses.mse]
# four agencies' lists of child victims; the latent-class model is the headline, chosen before any result
file = "data/lists.csv"
quantity = "victims"
select = "stepwise"
compare = true
headline = "{'latent' if spec.bayes else 'bic'}"
{'draws = ' + str(max(spec.draws, 300)) if spec.bayes else 'classes = ["independence", "stepwise", "aic", "bic", "graphs"]  # no MCMC in the test profile'}

# Referrals from four agencies to 15 receiving countries (2010-2017), compared per 100,000 children. Their
# names are listed so they may be published; any other agency name in the file would be refused.
[analyses.compare]
file = "data/referrals.csv"
base_file = "data/child_population.csv"
count = "referrals"
agency = "agency"
agencies = ["Agency A", "Agency B", "Agency C", "Agency D"]
period = "year"
focus = "PHL"
base_label = "children"

[analyses.smallarea]
file = "data/areas.csv"
id = "area_id"
name = "name"
geometry = "data/areas.geojson"
population = "children"
region = "region"
target = "victims"
methods = {'["pool", "extrapolate"]' if spec.bayes else '["extrapolate"]  # no pooled model in the test profile'}
level = 0.9
{'' if spec.bayes else 'compare_pooled = false' + chr(10)}
[analyses.smallarea.streams]
{streams}
'''
