"""Network scale-up surveys with known truth.

:func:`simulate_ard` draws a survey of "how many X do you know?" answers from a stated model, with a stratified
cluster design and design weights, and returns the validated :class:`~hiddenpop.data.ard.ARD` together with an
:class:`ARDTruth` record of every true value. :func:`simulate_national_ard` gives a national household survey (11 occupations,
4 child age bands and 4 hidden groups; 3,600 respondents in 150 PSUs within 15 strata) with synthetic sizes.

Model (each part switchable)
----------------------------
* Degrees: d_i = floor(LogNormal(mu + s_h, sigma)), with an optional stratum shift s_h ~ N(0, stratum_degree_sd).
* Random mixing (default): y_ik ~ Binomial(d_i, p_k), p_k = N_k / N.
* Barrier effects (``barrier_rho``): q_ik ~ Beta(p_k (1/rho_k - 1), (1 - p_k)(1/rho_k - 1)), y_ik ~ Binomial(d_i, q_ik),
  so E q = p_k and Var q = rho_k p_k (1 - p_k) (Maltiel et al. 2015). Mean-preserving: the basic estimators stay
  consistent but become noisier.
* Transmission error (``transmission``): for hidden group k, y_ik ~ Binomial(d_i, tau_k q_ik); respondents only
  know about a share tau_k of the members they know. The basic estimators then target tau_k N_k.
* Clustering: for hidden groups the probability is multiplied by a PSU effect m_c = exp(u_c), u_c ~ N(-s^2/2, s^2)
  with s = ``psu_sd`` (E m_c = 1), which produces intra-cluster correlation without bias.
* Design: strata of unequal population share (Dirichlet), equal allocation of PSUs and of respondents per PSU, so
  design weights w_i = N * share_h / n_h vary by stratum, times a PSU factor U(0.8, 1.2) mimicking PPS selection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.data.ard import ARD
from hiddenpop.errors import ConfigError
from hiddenpop.lazy import deprecated_aliases

#: Known groups of a national household survey: adult occupations (sizes are illustrative).
OCCUPATION_SIZES: dict[str, float] = {
    "doctors": 95_000,
    "lawyers": 64_000,
    "teachers": 950_000,
    "drivers": 2_400_000,
    "nurses": 620_000,
    "guards": 780_000,
    "students": 3_300_000,
    "construction_workers": 3_900_000,
    "bpo_workers": 1_500_000,
    "sari_sari_owners": 1_150_000,
    "social_workers": 32_000,
}
#: Synthetic child age bands (their sum is the child population used as the summation base).
CHILD_BAND_SIZES: dict[str, float] = {
    "children_0_2": 6_300_000,
    "children_3_5": 6_500_000,
    "children_6_12": 14_700_000,
    "children_13_17": 10_400_000,
}
#: Hidden groups: children used for non-live material or livestreams, and the adults who force them (synthetic sizes).
HIDDEN_GROUP_SIZES: dict[str, float] = {
    "child_nonlive": 300_000,
    "child_livestream": 171_000,
    "adult_nonlive": 150_000,
    "adult_livestream": 82_000,
}
NATIONAL_POPULATION = 113_771_856


@dataclass
class ARDTruth:
    """Every true value behind a simulated survey (for bias and coverage checks)."""

    population: float
    known_sizes: pd.Series
    hidden_sizes: pd.Series
    degrees: np.ndarray
    degree_mu: float
    degree_sigma: float
    barrier_rho: dict[str, float] | None
    transmission: dict[str, float] | None
    psu_effects: np.ndarray | None
    settings: dict[str, Any] = field(default_factory=dict)

    def reportable_sizes(self) -> pd.Series:
        """tau_k N_k: what the basic estimators target under transmission error (N_k when there is none)."""
        tau = self.transmission or {}
        return pd.Series({k: v * tau.get(k, 1.0) for k, v in self.hidden_sizes.items()}, dtype=float)

    def to_dict(self) -> dict[str, Any]:
        return {
            "population": self.population,
            "known_sizes": self.known_sizes.to_dict(),
            "hidden_sizes": self.hidden_sizes.to_dict(),
            "mean_degree": float(np.mean(self.degrees)),
            "degree_mu": self.degree_mu,
            "degree_sigma": self.degree_sigma,
            "barrier_rho": self.barrier_rho,
            "transmission": self.transmission,
            "settings": self.settings,
        }


@dataclass
class SimulatedARD:
    """A simulated survey: the validated ARD, the raw survey table and known-sizes table, and the truth."""

    ard: ARD
    truth: ARDTruth
    frame: pd.DataFrame
    known_table: pd.DataFrame


@dataclass
class SimulatedArrays:
    """Raw simulated arrays: counts (n x K, columns ``groups``), design and truth."""

    counts: np.ndarray
    groups: list[str]
    hidden: list[str]
    known: list[str]
    extra: list[str]
    weights: np.ndarray
    stratum: np.ndarray
    psu: np.ndarray
    clustered: bool
    design_weights: bool
    truth: ARDTruth

    def frame(self) -> pd.DataFrame:
        """The survey table as a fieldwork file would hold it."""
        n = len(self.counts)
        frame = pd.DataFrame({"respondent": np.arange(1, n + 1)})
        frame["stratum"] = [f"S{h + 1:02d}" for h in self.stratum]
        frame["psu"] = [f"P{c + 1:03d}" for c in self.psu]
        frame["weight"] = self.weights
        for j, g in enumerate(self.groups):
            frame[g] = self.counts[:, j]
        return frame


def _per_group(value: float | Mapping[str, float] | None, groups: list[str], name: str) -> dict[str, float] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        unknown = set(value) - set(groups)
        if unknown:
            raise ConfigError(f"{name} names groups that are not simulated: {sorted(unknown)}")
        return {g: float(value[g]) for g in groups if g in value}
    return {g: float(value) for g in groups}


def simulate_ard_arrays(
    known_sizes: Mapping[str, float],
    hidden_sizes: Mapping[str, float],
    population: float,
    *,
    n_respondents: int = 1_000,
    degree_mu: float = 5.0,
    degree_sigma: float = 0.8,
    barrier_rho: float | Mapping[str, float] | None = None,
    transmission: float | Mapping[str, float] | None = None,
    n_strata: int = 1,
    n_psu: int | None = None,
    psu_sd: float = 0.0,
    stratum_degree_sd: float = 0.0,
    design_weights: bool = True,
    extra_groups: Mapping[str, float] | None = None,
    seed: int,
) -> SimulatedArrays:
    """The arrays behind :func:`simulate_ard`, without building tables (fast, for simulation studies).

    Same random stream as :func:`simulate_ard`: with the same seed, ``counts`` equals the group columns of
    ``simulate_ard(...).frame``.

    Parameters
    ----------
    known_sizes, hidden_sizes:
        True sizes N_k of the known and hidden groups.
    population:
        Total population N.
    n_respondents, n_strata, n_psu:
        Sample size and design. ``n_psu`` must be a multiple of ``n_strata`` and divide ``n_respondents``;
        ``None`` means every respondent is their own PSU (no clustering).
    degree_mu, degree_sigma:
        Log-normal degree parameters (Maltiel et al.'s prior range is mu in (3, 8), sigma in (0.25, 2)).
    barrier_rho:
        Beta dispersion rho_k in (0, 1) for every group (a number) or per group (a mapping); ``None`` = random
        mixing.
    transmission:
        tau_k in (0, 1] for hidden groups (a number for all or a mapping); ``None`` = perfect transmission.
    psu_sd, stratum_degree_sd:
        Cluster heterogeneity of hidden-group exposure and stratum shifts of mean log-degree.
    extra_groups:
        Further groups answered by respondents (e.g. child age bands with their sizes) that are neither known
        nor hidden in the returned ARD; they appear in ``frame`` and in ``truth.settings['extra_groups']``.
    seed:
        Seed for ``numpy.random.default_rng``; same seed, same survey.

    """
    rng = np.random.default_rng(seed)
    known = {str(k): float(v) for k, v in known_sizes.items()}
    hidden = {str(k): float(v) for k, v in hidden_sizes.items()}
    extra = {str(k): float(v) for k, v in (extra_groups or {}).items()}
    groups = [*known, *extra, *hidden]
    if len(set(groups)) != len(groups):
        raise ConfigError("a group name appears in more than one of known_sizes, extra_groups and hidden_sizes")
    sizes = np.array([{**known, **extra, **hidden}[g] for g in groups])
    if population <= 0 or np.any(sizes <= 0) or np.any(sizes >= population):
        raise ConfigError("every group size must be positive and smaller than the population")
    if n_respondents < 2:
        raise ConfigError("n_respondents must be at least 2")
    if n_psu is None:
        n_psu_eff = n_respondents
    else:
        n_psu_eff = int(n_psu)
    if n_psu_eff % n_strata or n_respondents % n_psu_eff:
        raise ConfigError("n_psu must be a multiple of n_strata and divide n_respondents")
    psu_per_stratum = n_psu_eff // n_strata
    per_psu = n_respondents // n_psu_eff
    rho = _per_group(barrier_rho, groups, "barrier_rho")
    if rho is not None and any(not 0 < r < 1 for r in rho.values()):
        raise ConfigError("barrier_rho must lie strictly between 0 and 1")
    tau = _per_group(transmission, list(hidden), "transmission")
    if tau is not None and any(not 0 < t <= 1 for t in tau.values()):
        raise ConfigError("transmission rates must lie in (0, 1]")

    psu_index = np.repeat(np.arange(n_psu_eff), per_psu)
    stratum_of_psu = np.repeat(np.arange(n_strata), psu_per_stratum)
    stratum_index = stratum_of_psu[psu_index]

    stratum_shift = rng.normal(0.0, stratum_degree_sd, n_strata) if stratum_degree_sd > 0 else np.zeros(n_strata)
    log_degree = rng.normal(degree_mu + stratum_shift[stratum_index], degree_sigma)
    degrees = np.floor(np.exp(log_degree))

    base = sizes / population
    prob = np.broadcast_to(base, (n_respondents, len(groups))).copy()
    psu_effects = None
    hidden_cols = np.array([g in hidden for g in groups])
    if psu_sd > 0:
        psu_effects = np.exp(rng.normal(-0.5 * psu_sd**2, psu_sd, n_psu_eff))
        prob[:, hidden_cols] *= psu_effects[psu_index][:, None]
    prob = np.clip(prob, 0.0, 1.0)
    if rho is not None:
        rho_vec = np.array([rho.get(g, np.nan) for g in groups])
        has = ~np.isnan(rho_vec)
        concentration = 1.0 / rho_vec[has] - 1.0
        mean = np.clip(prob[:, has], 1e-12, 1 - 1e-12)
        prob[:, has] = rng.beta(mean * concentration, (1.0 - mean) * concentration)
    if tau is not None:
        for j, g in enumerate(groups):
            if g in tau:
                prob[:, j] *= tau[g]
    counts = rng.binomial(degrees.astype(np.int64)[:, None], prob)

    shares = rng.dirichlet(np.full(n_strata, 5.0)) if n_strata > 1 else np.ones(1)
    stratum_n = np.bincount(stratum_index, minlength=n_strata)
    weights = population * shares[stratum_index] / stratum_n[stratum_index]
    if design_weights and n_psu is not None:
        weights = weights * rng.uniform(0.8, 1.2, n_psu_eff)[psu_index]

    truth = ARDTruth(
        population=float(population),
        known_sizes=pd.Series(known, dtype=float),
        hidden_sizes=pd.Series(hidden, dtype=float),
        degrees=degrees,
        degree_mu=float(degree_mu),
        degree_sigma=float(degree_sigma),
        barrier_rho=rho,
        transmission=tau,
        psu_effects=psu_effects,
        settings={
            "n_respondents": n_respondents,
            "n_strata": n_strata,
            "n_psu": n_psu,
            "psu_sd": psu_sd,
            "stratum_degree_sd": stratum_degree_sd,
            "extra_groups": extra,
            "seed": seed,
        },
    )
    return SimulatedArrays(
        counts=counts,
        groups=groups,
        hidden=list(hidden),
        known=list(known),
        extra=list(extra),
        weights=weights,
        stratum=stratum_index,
        psu=psu_index,
        clustered=n_psu is not None,
        design_weights=design_weights,
        truth=truth,
    )



def simulate_ard(
    known_sizes: Mapping[str, float],
    hidden_sizes: Mapping[str, float],
    population: float,
    *,
    seed: int,
    **design: Any,
) -> SimulatedARD:
    """Draw an ARD survey with known truth (see the module docstring for the model).

    ``design`` takes the keywords of :func:`simulate_ard_arrays` (sample size, strata and PSUs, degree
    distribution, barrier and transmission effects, extra groups), described there; same seed, same survey.
    """
    arrays = simulate_ard_arrays(known_sizes, hidden_sizes, population, seed=seed, **design)
    frame = arrays.frame()
    known = arrays.truth.known_sizes
    known_table = pd.DataFrame({"group": list(known.index), "size": list(known.to_numpy())})
    ard = ARD.from_frame(
        frame.drop(columns=arrays.extra),
        known=known_table,
        population=population,
        hidden=arrays.hidden,
        weights="weight" if arrays.design_weights else None,
        strata="stratum" if arrays.truth.settings["n_strata"] > 1 else None,
        psu="psu" if arrays.clustered else None,
        id_column="respondent",
        source="simulated survey",
    )
    return SimulatedARD(ard=ard, truth=arrays.truth, frame=frame, known_table=known_table)


def simulate_national_ard(
    *,
    seed: int,
    barrier_rho: float | Mapping[str, float] | None = None,
    transmission: float | Mapping[str, float] | None = None,
    n_respondents: int = 3_600,
    n_psu: int = 150,
    n_strata: int = 15,
    degree_mu: float = 5.0,
    degree_sigma: float = 0.8,
    psu_sd: float = 0.3,
) -> SimulatedARD:
    """A national household network survey: 11 occupations (known) + 4 child age bands + 4 hidden groups,
    3,600 respondents, 150 PSUs in 15 strata, population 113,771,856 (the shape of the 2022 Philippine OSEC
    survey). Sizes are synthetic.

    The child age bands are included as known groups too, so the same ARD supports the known-population
    (adult) degree over the occupations and the summation (child) degree over the bands:
    ``degree(ard, method="summation", columns=list(CHILD_BAND_SIZES), population=sum of band sizes)``.
    """
    return simulate_ard(
        known_sizes={**OCCUPATION_SIZES, **CHILD_BAND_SIZES},
        hidden_sizes=HIDDEN_GROUP_SIZES,
        population=NATIONAL_POPULATION,
        n_respondents=n_respondents,
        n_psu=n_psu,
        n_strata=n_strata,
        degree_mu=degree_mu,
        degree_sigma=degree_sigma,
        barrier_rho=barrier_rho,
        transmission=transmission,
        psu_sd=psu_sd,
        stratum_degree_sd=0.15,
        seed=seed,
    )


# The names these had when they were called after the study that first used them; removed in the next release.
__getattr__ = deprecated_aliases(__name__, {
    "STUDY2_OCCUPATIONS": "OCCUPATION_SIZES",
    "STUDY2_CHILD_BANDS": "CHILD_BAND_SIZES",
    "STUDY2_HIDDEN": "HIDDEN_GROUP_SIZES",
    "STUDY2_POPULATION": "NATIONAL_POPULATION",
    "simulate_study2_ard": "simulate_national_ard",
})
